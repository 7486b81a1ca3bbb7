"""Where to put the next service centre: set covering, maximal covering and p-median,
with capacitated variants, formulated sparsely and solved exactly with HiGHS.

A small package split by job: ``inputs`` (the sparse input and its validation),
``models`` (one class per model, the registry, ``solve``), ``formulations`` (covering and
compact p-median), ``benders`` (the p-median decomposition), ``capacitated``, ``heuristic``
(greedy starts), ``mip`` (the HiGHS wrapper), ``results`` and ``reporting``.

The models work on an abstract sparse input (``SitingInput``), so that where the
numbers come from (the database, a file, a benchmark) is somebody else's business
(``analysis/siting_inputs.py`` builds it from PostGIS):

- demand points i with a weight w_i (households of a building, or residents over 65);
- sites j: candidates (may be opened) and existing facilities (stay open and count),
  each with a capacity (∞ when unknown or uncapacitated);
- pairs (i, j, d_ij): walking distances, only those within a cut-off (or the nearest k).
  A pair that is not listed is out of reach. Nothing is ever dense.

Models (y_j ∈ {0,1}: open candidate j; existing sites are open and are not counted):

- ``lscp``  set covering: fewest new sites so that every *reachable* demand point (one
  with some site, new or existing, within the radius) is within the radius of an open
  site. One row per distinct set of covering candidates (demand points with the same set
  share a row).
- ``mclp``  maximal covering: exactly p new sites maximising the weight within the
  radius; z_i ≤ Σ y_j, z_i ∈ [0,1] continuous (integral at the optimum).
- ``pmedian``  p new sites minimising the total weighted walking distance, every demand
  point assigned to an open site within the cut-off. Solved by Benders decomposition on
  the distance levels of each demand point (``benders.py``: y and one θ_i per demand
  point, cuts added as needed, same LP bound as the strong formulation). The compact
  strong formulation (x_ij ≤ y_j, x continuous) is kept as ``method="compact"`` for
  cross-checks; at 20,000 × 1,000 its LP alone outlasted minutes of dual simplex. Only
  pairs closer than the demand's nearest existing facility enter either model.
  Demand that p sites cannot bring within the cut-off is *not* traded against distance:
  by default the model is lexicographic (first the most weight served, as an MCLP with
  radius = cut-off, then the least distance with that weight served), so "unserved" means
  no choice of p sites could serve it. ``unserved_penalty=P`` instead charges P metres
  per unit of weight left unserved (the textbook penalty form, and what a dense
  cost matrix with P beyond the cut-off means).
- ``capacitated=True``: assignment columns x_ij for every pair, Σ_i w_i x_ij ≤ C_j y_j
  (existing sites too), x_ij ≤ y_j. A demand point goes whole to one site
  (``split_demand=False``, x binary) or may be split (x continuous). LSCP then first
  serves all the weight it can (an unserved household costs more than every new site
  together), MCLP maximises the weight served within the radius, p-median is
  lexicographic as above.

Status is the solver's, said plainly: ``optimal`` only when HiGHS proved it (to
``mip_gap``, default 1e-6 relative); a run stopped by the time limit is ``time_limit``
with the gap it reached, and never called optimal. Demand no site can reach is listed in
``unreachable``, not dropped.
"""
from __future__ import annotations

from analysis.siting.inputs import INF, SitingError, SitingInput
from analysis.siting.models import (REGISTRY, LSCP, MCLP, CapacitatedLSCP, CapacitatedMCLP, CapacitatedPMedian, PMedian,
                                    SitingModel, lscp, mclp, model_class, model_names, pmedian, register, solve)
from analysis.siting.results import SitingResult

MODELS = model_names()
MODEL_NAMES = {cls.name: f"{cls.label[0].split(' (')[0]} {cls.label[1]}" for (_, cap), cls in REGISTRY.items() if not cap}  # "中文 English"

__all__ = ["INF", "LSCP", "MCLP", "MODELS", "MODEL_NAMES", "REGISTRY", "CapacitatedLSCP", "CapacitatedMCLP",
           "CapacitatedPMedian", "PMedian", "SitingError", "SitingInput", "SitingModel", "SitingResult", "lscp", "mclp",
           "model_class", "model_names", "pmedian", "register", "solve"]
