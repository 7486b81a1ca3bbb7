"""Where to put the next service centre: set covering, maximal covering and p-median,
with capacitated variants, formulated sparsely and solved exactly with HiGHS.

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
  the distance levels of each demand point (``_pmedian_benders``: y and one θ_i per demand
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

import time
from dataclasses import dataclass, field
from typing import Any

import highspy
import numpy as np
import pandas as pd

from gis.errors import BadInput
from grid.staffing_plan import new_solver

MODELS = ("lscp", "mclp", "pmedian")
MODEL_NAMES = {"lscp": "集合覆盖 set covering (LSCP)", "mclp": "最大覆盖 maximal covering (MCLP)",
               "pmedian": "p-中值 p-median"}
INF = np.inf


class SitingError(BadInput):
    """Inputs the models cannot take (unknown model, missing p, inconsistent arrays)."""


# --- inputs -------------------------------------------------------------------------------

@dataclass
class SitingInput:
    """Demand points, sites and the sparse walking-distance table between them.

    Arrays are aligned: ``demand_*`` has one entry per demand point, ``site_*`` one per
    site, ``pair_*`` one per (demand, site) pair within ``cutoff``. ``pair_demand`` and
    ``pair_site`` are positions (0-based) into the demand and site arrays.
    """

    demand_id: np.ndarray
    weight: np.ndarray
    site_id: np.ndarray
    existing: np.ndarray
    capacity: np.ndarray
    pair_demand: np.ndarray
    pair_site: np.ndarray
    pair_distance: np.ndarray
    cutoff: float = INF  # pairs beyond this were not computed
    demand_group: np.ndarray | None = None  # e.g. the grid code of each demand point
    demand_label: np.ndarray | None = None  # e.g. the building's source_id / address
    site_name: np.ndarray | None = None
    demand_xy: np.ndarray | None = None  # (n, 2) lon/lat, for maps and exports
    site_xy: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.demand_id = np.asarray(self.demand_id)
        self.weight = np.asarray(self.weight, dtype=float)
        self.site_id = np.asarray(self.site_id)
        n, m = len(self.demand_id), len(self.site_id)
        self.existing = np.zeros(m, bool) if self.existing is None else np.asarray(self.existing, dtype=bool)
        cap = np.full(m, INF) if self.capacity is None else np.asarray(self.capacity, dtype=float)
        self.capacity = np.where(np.isnan(cap), INF, cap)
        self.pair_demand = np.asarray(self.pair_demand, dtype=np.int64)
        self.pair_site = np.asarray(self.pair_site, dtype=np.int64)
        self.pair_distance = np.asarray(self.pair_distance, dtype=float)
        if len(self.weight) != n or len(self.existing) != m or len(self.capacity) != m:
            raise SitingError("demand/site arrays have different lengths")
        if not (len(self.pair_demand) == len(self.pair_site) == len(self.pair_distance)):
            raise SitingError("pair arrays have different lengths")
        if len(self.pair_demand) and (self.pair_demand.min() < 0 or self.pair_demand.max() >= n
                                      or self.pair_site.min() < 0 or self.pair_site.max() >= m):
            raise SitingError("a pair points outside the demand or site arrays")
        if (self.weight < 0).any() or not np.isfinite(self.weight).all():
            raise SitingError("weights must be finite and non-negative")
        if len(self.pair_distance) and ((self.pair_distance < 0).any() or not np.isfinite(self.pair_distance).all()):
            raise SitingError("distances must be finite and non-negative")
        if (self.capacity < 0).any():
            raise SitingError("capacities must be non-negative")
        if len(pd.unique(self.demand_id)) != n or len(pd.unique(self.site_id)) != m:
            raise SitingError("demand and site ids must be unique")
        # one pair per (i, j): the shortest
        if len(self.pair_demand):
            key = self.pair_demand * m + self.pair_site
            order = np.lexsort((self.pair_distance, key))
            first = np.ones(len(order), bool)
            first[1:] = key[order][1:] != key[order][:-1]
            keep = order[first]
            self.pair_demand, self.pair_site, self.pair_distance = self.pair_demand[keep], self.pair_site[keep], self.pair_distance[keep]

    @property
    def n_demand(self) -> int:
        return len(self.demand_id)

    @property
    def n_sites(self) -> int:
        return len(self.site_id)

    @classmethod
    def from_frames(cls, demand: pd.DataFrame, sites: pd.DataFrame, pairs: pd.DataFrame, cutoff: float = INF,
                    **extra) -> SitingInput:
        """Build from frames: demand (id, weight[, group, label, lon, lat]), sites (id[, existing,
        capacity, name, lon, lat]) and pairs (demand_id, site_id, distance) keyed by the ids."""
        d_pos = pd.Series(np.arange(len(demand)), index=demand["id"].to_numpy())
        s_pos = pd.Series(np.arange(len(sites)), index=sites["id"].to_numpy())
        pi = d_pos.reindex(pairs["demand_id"].to_numpy()).to_numpy()
        pj = s_pos.reindex(pairs["site_id"].to_numpy()).to_numpy()
        if np.isnan(pi).any() or np.isnan(pj).any():
            raise SitingError("a pair names an unknown demand point or site")

        def col(frame, name, default=None):
            return frame[name].to_numpy() if name in frame.columns else default

        def xy(frame):
            return frame[["lon", "lat"]].to_numpy(float) if {"lon", "lat"} <= set(frame.columns) else None

        return cls(demand["id"].to_numpy(), demand["weight"].to_numpy(float), sites["id"].to_numpy(),
                   col(sites, "existing", np.zeros(len(sites), bool)), col(sites, "capacity", np.full(len(sites), INF)),
                   pi.astype(np.int64), pj.astype(np.int64), pairs["distance"].to_numpy(float), cutoff,
                   demand_group=col(demand, "group"), demand_label=col(demand, "label"), site_name=col(sites, "name"),
                   demand_xy=xy(demand), site_xy=xy(sites), **extra)

    def nearest(self, k: int) -> SitingInput:
        """The same input keeping, for each demand point, only its k nearest sites (and every
        existing site within the cut-off, which always stays open and counts)."""
        order = np.lexsort((self.pair_distance, self.pair_demand))
        pd_sorted = self.pair_demand[order]
        starts = np.searchsorted(pd_sorted, pd_sorted, side="left")
        rank = np.arange(len(order)) - starts
        keep = order[(rank < k) | self.existing[self.pair_site[order]]]
        keep.sort()
        return self._with_pairs(keep, {**self.meta, "nearest_k": k})

    def within(self, cutoff: float) -> SitingInput:
        keep = np.flatnonzero(self.pair_distance <= cutoff)
        out = self._with_pairs(keep, self.meta)
        out.cutoff = min(self.cutoff, cutoff)
        return out

    def _with_pairs(self, keep: np.ndarray, meta: dict) -> SitingInput:
        return SitingInput(self.demand_id, self.weight, self.site_id, self.existing, self.capacity, self.pair_demand[keep],
                           self.pair_site[keep], self.pair_distance[keep], self.cutoff, self.demand_group, self.demand_label,
                           self.site_name, self.demand_xy, self.site_xy, dict(meta))

    def subset_demand(self, mask: np.ndarray) -> SitingInput:
        """Only the demand points where ``mask`` is true (pairs renumbered)."""
        mask = np.asarray(mask, bool)
        new_pos = np.cumsum(mask) - 1
        keep = np.flatnonzero(mask[self.pair_demand])

        def sub(a):
            return None if a is None else a[mask]

        return SitingInput(self.demand_id[mask], self.weight[mask], self.site_id, self.existing, self.capacity,
                           new_pos[self.pair_demand[keep]], self.pair_site[keep], self.pair_distance[keep], self.cutoff,
                           sub(self.demand_group), sub(self.demand_label), self.site_name, sub(self.demand_xy),
                           self.site_xy, dict(self.meta))


# --- results ------------------------------------------------------------------------------

@dataclass
class SitingResult:
    model: str
    radius: float
    cutoff: float
    p: int | None
    capacitated: bool
    status: str  # optimal | time_limit | infeasible | … (HiGHS's model status, lower case)
    gap: float | None  # relative MIP gap reached (0 when proved optimal to the tolerance)
    objective: float | None  # lscp: new sites; mclp: weight within the radius; pmedian: weighted metres
    solver_objective: float | None
    mip_gap_tolerance: float
    time_limit: float
    build_seconds: float
    solve_seconds: float
    has_solution: bool
    sites: pd.DataFrame  # every open site: site_id, name, existing, new, capacity, assigned_weight, demand_points, lon, lat
    assignment: pd.DataFrame  # demand_id, site_id (None: unserved), share, distance_m, within_radius, group, weight
    total_weight: float
    reachable_weight: float
    covered_weight: float  # weight within the radius of an open site (capacity permitting)
    covered_before: float  # the same with only the existing sites
    served_weight: float  # weight assigned to an open site within the cut-off
    mean_distance_m: float | None  # weighted, over the served weight
    p95_distance_m: float | None  # weighted 95th percentile, over the served weight
    unreachable: pd.DataFrame  # demand points no site (new or existing) reaches within the cut-off
    unserved: pd.DataFrame  # reachable, but no open site serves them (not chosen, or capacity)
    worst_grids: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def new_sites(self) -> pd.DataFrame:
        return self.sites[self.sites["new"]]

    @property
    def coverage_share(self) -> float:
        return self.covered_weight / self.total_weight if self.total_weight else 1.0

    @property
    def is_optimal(self) -> bool:
        return self.status == "optimal"

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.model, "radius_m": self.radius, "cutoff_m": self.cutoff, "p": self.p, "capacitated": self.capacitated,
            "status": self.status, "gap": self.gap, "objective": self.objective, "mip_gap_tolerance": self.mip_gap_tolerance,
            "time_limit_s": self.time_limit, "build_s": round(self.build_seconds, 3), "solve_s": round(self.solve_seconds, 3),
            "new_sites": int(self.sites["new"].sum()) if len(self.sites) else 0,
            "open_sites": len(self.sites), "total_weight": self.total_weight, "reachable_weight": self.reachable_weight,
            "covered_weight": self.covered_weight, "coverage_share": round(self.coverage_share, 6),
            "covered_before": self.covered_before,
            "covered_before_share": round(self.covered_before / self.total_weight, 6) if self.total_weight else 1.0,
            "served_weight": self.served_weight, "mean_distance_m": _round(self.mean_distance_m),
            "p95_distance_m": _round(self.p95_distance_m),
            "unreachable_points": len(self.unreachable), "unreachable_weight": float(self.unreachable["weight"].sum()),
            "unserved_points": len(self.unserved), "unserved_weight": float(self.unserved["weight"].sum()),
            "notes": self.notes,
        }

    def to_dict(self) -> dict[str, Any]:
        def records(frame: pd.DataFrame) -> list[dict]:
            return frame.astype(object).where(frame.notna(), None).to_dict("records")

        return {**self.summary(), "sites": records(self.sites), "worst_grids": records(self.worst_grids),
                "unreachable": records(self.unreachable), "unserved": records(self.unserved), "details": self.details}


def _round(v: float | None, nd: int = 1) -> float | None:
    return None if v is None or not np.isfinite(v) else round(float(v), nd)


# --- the solver wrapper -------------------------------------------------------------------

class _Mip:
    """Columns and rows collected as numpy blocks, handed to HiGHS in one go (CSR rows)."""

    def __init__(self) -> None:
        self.n_cols = 0
        self.n_rows = 0
        self._cols: list[tuple[np.ndarray, np.ndarray, np.ndarray, bool]] = []
        self._rows_lo: list[np.ndarray] = []
        self._rows_hi: list[np.ndarray] = []
        self._coo: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def cols(self, cost, lo, hi, integer: bool = False) -> np.ndarray:
        cost = np.asarray(cost, float)
        n = len(cost)
        self._cols.append((cost, np.broadcast_to(np.asarray(lo, float), n).copy(),
                           np.broadcast_to(np.asarray(hi, float), n).copy(), integer))
        idx = np.arange(self.n_cols, self.n_cols + n)
        self.n_cols += n
        return idx

    def rows(self, n: int, lo, hi, row, col, val) -> np.ndarray:
        """n rows; entries (row in 0..n-1, column, value)."""
        self._rows_lo.append(np.broadcast_to(np.asarray(lo, float), n).copy())
        self._rows_hi.append(np.broadcast_to(np.asarray(hi, float), n).copy())
        row = np.asarray(row, np.int64) + self.n_rows
        self._coo.append((row, np.asarray(col, np.int64), np.broadcast_to(np.asarray(val, float), len(row)).copy()))
        idx = np.arange(self.n_rows, self.n_rows + n)
        self.n_rows += n
        return idx

    def solve(self, maximize: bool, time_limit: float, mip_gap: float, start: np.ndarray | None = None,
              options: dict | None = None) -> dict:
        h = new_solver()
        h.setOptionValue("time_limit", float(max(time_limit, 0.01)))
        h.setOptionValue("mip_rel_gap", float(mip_gap))
        h.setOptionValue("random_seed", 0)
        for k, v in (options or {}).items():
            h.setOptionValue(k, v)
        cost = np.concatenate([c[0] for c in self._cols]) if self._cols else np.zeros(0)
        lo = np.concatenate([c[1] for c in self._cols]) if self._cols else np.zeros(0)
        hi = np.concatenate([c[2] for c in self._cols]) if self._cols else np.zeros(0)
        integer = np.concatenate([np.full(len(c[0]), c[3]) for c in self._cols]) if self._cols else np.zeros(0, bool)
        empty_i, empty_f = np.array([], dtype=np.int32), np.array([], dtype=float)
        h.addCols(self.n_cols, cost, lo, hi, 0, empty_i, empty_i, empty_f)
        ints = np.flatnonzero(integer).astype(np.int32)
        if len(ints):
            h.changeColsIntegrality(len(ints), ints, np.full(len(ints), highspy.HighsVarType.kInteger, dtype=np.uint8))
        if self.n_rows:
            r = np.concatenate([c[0] for c in self._coo])
            c = np.concatenate([c[1] for c in self._coo])
            v = np.concatenate([c[2] for c in self._coo])
            order = np.argsort(r, kind="stable")
            r, c, v = r[order], c[order], v[order]
            starts = np.searchsorted(r, np.arange(self.n_rows)).astype(np.int32)
            h.addRows(self.n_rows, np.concatenate(self._rows_lo), np.concatenate(self._rows_hi), len(v),
                      starts, c.astype(np.int32), v)
        if maximize:
            h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        if start is not None:
            sol = highspy.HighsSolution()
            sol.col_value = list(map(float, start))
            sol.value_valid = True
            h.setSolution(sol)
        t0 = time.perf_counter()
        h.run()
        seconds = time.perf_counter() - t0
        status = h.getModelStatus()
        info = h.getInfo()
        has = info.primal_solution_status == 2  # kSolutionStatusFeasible
        optimal = status == highspy.HighsModelStatus.kOptimal
        name = "optimal" if optimal else ("time_limit" if status == highspy.HighsModelStatus.kTimeLimit
                                          else h.modelStatusToString(status).lower().replace(" ", "_"))
        gap = float(info.mip_gap) if has and np.isfinite(info.mip_gap) else None
        if optimal and gap is None:
            gap = 0.0
        x = np.array(h.getSolution().col_value) if has else None
        if has and abs(float(cost @ x) - info.objective_function_value) > 1e-6 * max(1.0, abs(info.objective_function_value)):
            # the solution HiGHS hands back must be the one it reports on; if not, say so
            optimal, name, gap = False, "inconsistent_solution", None
        return {"status": name, "optimal": optimal, "gap": gap, "objective": float(info.objective_function_value) if has else None,
                "bound": float(info.mip_dual_bound) if np.isfinite(info.mip_dual_bound) else None, "x": x, "seconds": seconds,
                "nodes": int(info.mip_node_count), "cols": self.n_cols, "rows": self.n_rows,
                "nonzeros": int(sum(len(c[0]) for c in self._coo))}


def _trivial(maximize: bool = False) -> dict:
    return {"status": "optimal", "optimal": True, "gap": 0.0, "objective": 0.0, "bound": 0.0, "x": np.zeros(0), "seconds": 0.0,
            "nodes": 0, "cols": 0, "rows": 0, "nonzeros": 0}


# --- the models ---------------------------------------------------------------------------

@dataclass
class _Prep:
    inp: SitingInput
    radius: float
    cutoff: float
    new: np.ndarray  # positions of candidate (new) sites
    new_pos: np.ndarray  # site position -> position among new sites (-1 for existing)
    pi: np.ndarray  # model pairs (≤ cutoff)
    pj: np.ndarray
    pd_: np.ndarray
    reach: np.ndarray  # demand reachable within the model's cut-off by any site


def _prep(inp: SitingInput, radius: float, cutoff: float) -> _Prep:
    keep = inp.pair_distance <= cutoff
    pi, pj, pdist = inp.pair_demand[keep], inp.pair_site[keep], inp.pair_distance[keep]
    new = np.flatnonzero(~inp.existing)
    new_pos = np.full(inp.n_sites, -1)
    new_pos[new] = np.arange(len(new))
    reach = np.zeros(inp.n_demand, bool)
    reach[pi] = True
    reach &= inp.weight > 0
    return _Prep(inp, radius, cutoff, new, new_pos, pi, pj, pdist, reach)


def _cover_rows(demand: np.ndarray, site: np.ndarray, weight: np.ndarray) -> tuple[list[tuple[int, ...]], np.ndarray, np.ndarray]:
    """Group demand points by their set of covering sites: (distinct sets, weight per set,
    set index per demand point in ``np.unique(demand)`` order)."""
    order = np.lexsort((site, demand))
    d, s = demand[order], site[order]
    uniq, starts = np.unique(d, return_index=True)
    bounds = np.append(starts, len(d))
    sets: dict[tuple[int, ...], int] = {}
    which = np.empty(len(uniq), np.int64)
    for k in range(len(uniq)):
        key = tuple(s[bounds[k]:bounds[k + 1]].tolist())
        which[k] = sets.setdefault(key, len(sets))
    w = np.zeros(len(sets))
    np.add.at(w, which, weight[uniq])
    return list(sets), w, which


def _lscp(pr: _Prep, opts: dict) -> tuple[np.ndarray | None, dict, dict]:
    """Returns (open new-site mask over new sites, solver info, assignment override or {})."""
    inp = pr.inp
    cov = pr.pd_ <= pr.radius
    ci, cj = pr.pi[cov], pr.pj[cov]
    by_existing = np.zeros(inp.n_demand, bool)
    by_existing[ci[inp.existing[cj]]] = True
    todo = pr.reach & ~by_existing
    sel = todo[ci] & ~inp.existing[cj]
    sets, _, _ = _cover_rows(ci[sel], pr.new_pos[cj[sel]], inp.weight)
    if not sets:
        return np.zeros(len(pr.new), bool), _trivial(), {}
    used = np.unique(np.concatenate([np.array(s) for s in sets]))
    m = _Mip()
    y = m.cols(np.ones(len(used)), 0, 1, integer=True)
    col_of = np.full(len(pr.new), -1)
    col_of[used] = y
    rows = np.concatenate([np.full(len(s), k) for k, s in enumerate(sets)])
    cols = col_of[np.concatenate([np.array(s) for s in sets])]
    m.rows(len(sets), 1, INF, rows, cols, 1.0)
    res = m.solve(False, opts["time_limit"], opts["mip_gap"], options=opts["highs"])
    if res["x"] is None:
        return None, res, {}
    open_ = np.zeros(len(pr.new), bool)
    open_[used] = res["x"][y] > 0.5
    return open_, res, {}


def _mclp(pr: _Prep, p: int, opts: dict, radius: float | None = None) -> tuple[np.ndarray | None, dict, dict]:
    inp = pr.inp
    radius = pr.radius if radius is None else radius
    cov = pr.pd_ <= radius
    ci, cj = pr.pi[cov], pr.pj[cov]
    by_existing = np.zeros(inp.n_demand, bool)
    by_existing[ci[inp.existing[cj]]] = True
    todo = pr.reach & ~by_existing
    sel = todo[ci] & ~inp.existing[cj]
    n_new = len(pr.new)
    m = _Mip()
    y = m.cols(np.zeros(n_new), 0, 1, integer=True)
    sets, w, _ = _cover_rows(ci[sel], pr.new_pos[cj[sel]], inp.weight)
    if sets:
        z = m.cols(w, 0, 1)
        lens = np.array([len(s) for s in sets])
        rows = np.concatenate([np.arange(len(sets)), np.repeat(np.arange(len(sets)), lens)])
        cols = np.concatenate([z, y[np.concatenate([np.array(s) for s in sets])]])
        vals = np.concatenate([np.ones(len(sets)), -np.ones(lens.sum())])
        m.rows(len(sets), -INF, 0, rows, cols, vals)
    m.rows(1, p, p, np.zeros(n_new), y, 1.0)
    if n_new == 0:
        return np.zeros(0, bool), _trivial(), {}
    # HiGHS's presolve probes every binary against the cardinality row; on covering models
    # that took 16 s of a 16.3 s solve on the demo (p=1), and never paid for itself here
    res = m.solve(True, opts["time_limit"], opts["mip_gap"], options={"presolve": "off", **opts["highs"]})
    if res["x"] is None:
        return None, res, {}
    return res["x"][y] > 0.5, res, {}


def _pmedian(pr: _Prep, p: int, opts: dict) -> tuple[np.ndarray | None, dict, dict]:
    """Uncapacitated p-median; lexicographic (served weight, then distance) unless a penalty is given."""
    inp = pr.inp
    n_new = len(pr.new)
    ex = inp.existing[pr.pj]
    near_ex = np.full(inp.n_demand, INF)  # distance to the nearest existing site within the cut-off
    np.minimum.at(near_ex, pr.pi[ex], pr.pd_[ex])
    penalty = opts.get("unserved_penalty")
    phase1: dict = {}
    target = None
    deadline = time.perf_counter() + opts["time_limit"]
    if penalty is None:
        # Phase 1: the most weight p new sites can bring within the cut-off (an MCLP, radius = cut-off).
        open1, phase1, _ = _mclp(pr, p, opts, radius=pr.cutoff)
        if open1 is None:
            return None, phase1, {}
        new_pair = ~ex
        covered = np.zeros(inp.n_demand, bool)
        covered[pr.pi[new_pair & open1[np.maximum(pr.new_pos[pr.pj], 0)]]] = True
        target = float(inp.weight[covered & pr.reach & ~np.isfinite(near_ex)].sum())
    # Columns: x_ij for new sites closer than the demand's nearest existing one.
    d_fall = np.where(np.isfinite(near_ex), near_ex, INF if penalty is None else penalty)
    use = (~ex) & (pr.pd_ < d_fall[pr.pi]) & pr.reach[pr.pi]
    xi, xj, xd = pr.pi[use], pr.new_pos[pr.pj[use]], pr.pd_[use]
    # Demand points with no such column are settled: existing site, or unserved (fixed).
    active = np.zeros(inp.n_demand, bool)
    active[xi] = True
    a_idx = np.flatnonzero(active)
    a_row = np.full(inp.n_demand, -1)
    a_row[a_idx] = np.arange(len(a_idx))
    w = inp.weight
    m = _Mip()
    y = m.cols(np.zeros(n_new), 0, 1, integer=True)
    x = m.cols(w[xi] * xd, 0, 1)
    fb_cost = np.where(np.isfinite(near_ex[a_idx]), near_ex[a_idx], 0.0 if penalty is None else penalty) * w[a_idx]
    f = m.cols(fb_cost, 0, 1)  # fallback: nearest existing site, or unserved
    m.rows(len(a_idx), 1, 1, np.concatenate([a_row[xi], np.arange(len(a_idx))]), np.concatenate([x, f]), 1.0)  # Σx + f = 1
    m.rows(len(xi), -INF, 0, np.concatenate([np.arange(len(xi))] * 2), np.concatenate([x, y[xj]]),
           np.concatenate([np.ones(len(xi)), -np.ones(len(xi))]))  # x_ij ≤ y_j
    m.rows(1, p, p, np.zeros(n_new), y, 1.0)
    if target is not None and target > 0:
        # weight served by new sites among demand with no existing site within the cut-off
        sel = ~np.isfinite(near_ex[xi])
        m.rows(1, target * (1 - 1e-9) - 1e-9, INF, np.zeros(sel.sum()), x[sel], w[xi[sel]])
    if n_new == 0 or len(xi) == 0:
        return np.zeros(n_new, bool), _trivial(), {"phase1": _strip(phase1)}
    # A feasible start, so that a run stopped by the clock still has a solution and a gap:
    # phase 1's sites (lexicographic), else a greedy choice; each demand to its nearest open site.
    y0 = open1 if penalty is None else _greedy(xi, xj, xd, w, fb_cost / np.maximum(w[a_idx], 1e-12), a_row, n_new, p)
    start = np.zeros(m.n_cols)
    start[y] = y0
    cand = np.flatnonzero(y0[xj])
    order = cand[np.lexsort((xd[cand], xi[cand]))]
    first = order[np.r_[True, xi[order][1:] != xi[order][:-1]]] if len(order) else order
    better = xd[first] < np.where(np.isfinite(near_ex[xi[first]]), near_ex[xi[first]], INF if penalty is None else penalty)
    start[x[first[better]]] = 1
    start[f] = 1
    start[f[a_row[xi[first[better]]]]] = 0
    left = deadline - time.perf_counter() if penalty is None else opts["time_limit"]
    res = m.solve(False, left, opts["mip_gap"], start=start, options=opts["highs"])
    res["phase1"] = _strip(phase1)
    if phase1 and not phase1.get("optimal"):
        res["status"] = phase1["status"] if res["optimal"] else res["status"]
        res["optimal"] = False
    if res["x"] is None:
        return None, res, {}
    return res["x"][y] > 0.5, res, {}


def _pmedian_benders(pr: _Prep, p: int, opts: dict) -> tuple[np.ndarray | None, dict, dict]:
    """Uncapacitated p-median by Benders decomposition on the radius (distance-level) form.

    For demand point i with candidates sorted by distance d_1 ≤ d_2 ≤ … and a fallback F_i
    (its nearest existing site, else the unserved penalty), its walking cost given the open
    sites is the convex piecewise-linear function max over α of
    α·a_i − Σ_l max(0, α − d_l)·y_l (α ∈ {d_l} ∪ {F_i}; a_i = 1, or 1 − u_s where u_s says
    demand set s is left unserved in the lexicographic form). The master keeps y, one θ_i
    per demand point and only the cuts θ_i ≥ α·a_i − Σ_l max(0, α − d_l)·y_l that were
    needed: first rounds on the LP relaxation (warm-started dual simplex), then integer
    rounds (HiGHS MIP, each started from the best known solution) until the master's bound
    meets the true cost of its answer. The LP bound equals the classical strong p-median
    bound, at a fraction of its size (no x_ij, no x_ij ≤ y_j rows)."""
    inp = pr.inp
    w = inp.weight
    n_new = len(pr.new)
    t_start = time.perf_counter()
    deadline = t_start + opts["time_limit"]
    ex = inp.existing[pr.pj]
    near_ex = np.full(inp.n_demand, INF)
    np.minimum.at(near_ex, pr.pi[ex], pr.pd_[ex])
    penalty = opts.get("unserved_penalty")
    lex = penalty is None
    phase1: dict = {}
    open1 = None
    target = 0.0
    if lex:
        open1, phase1, _ = _mclp(pr, p, {**opts, "time_limit": opts["time_limit"]}, radius=pr.cutoff)
        if open1 is None:
            return None, phase1, {}
    F = np.where(np.isfinite(near_ex), near_ex, INF if lex else penalty)
    use = (~ex) & (pr.pd_ < F[pr.pi]) & pr.reach[pr.pi]
    xi, xj, xd = pr.pi[use], pr.new_pos[pr.pj[use]], pr.pd_[use]
    order = np.lexsort((xj, xd, xi))
    xi, xj, xd = xi[order], xj[order], xd[order]
    a_idx, starts = np.unique(xi, return_index=True)
    A = len(a_idx)
    settled = pr.reach & ~np.isin(np.arange(inp.n_demand), a_idx)
    const = float((w[settled] * np.where(np.isfinite(near_ex[settled]), near_ex[settled], 0.0 if lex else (penalty or 0.0))).sum())
    if not lex:  # out of reach of every site: the penalty, as in the reported objective
        const += float(penalty * w[~pr.reach & (w > 0)].sum())
    if n_new == 0 or A == 0:
        return np.zeros(n_new, bool), {**_trivial(), "phase1": _strip(phase1)}, {}
    ai = np.repeat(np.arange(A), np.diff(np.append(starts, len(xi))))
    ends = np.append(starts[1:], len(xi)) - 1
    wa, Fa = w[a_idx], F[a_idx]
    lexu = lex & ~np.isfinite(near_ex[a_idx])  # may be left unserved (lexicographic form)
    set_of = np.full(A, -1)
    m = _Mip()
    y = m.cols(np.zeros(n_new), 0, 1)
    cap = np.where(np.isfinite(Fa), Fa, xd[ends])
    th = m.cols(wa, np.where(lexu, 0.0, xd[starts]), cap)  # θ_i ≥ d_1 unless it may go unserved
    m.rows(1, p, p, np.zeros(n_new), y, 1.0)
    u = np.zeros(0, np.int64)
    if lexu.any():
        sel = lexu[ai]
        sets, W, which = _cover_rows(ai[sel], xj[sel], np.zeros(A))
        set_of[np.flatnonzero(lexu)] = which
        W = np.bincount(which, weights=wa[lexu], minlength=len(sets))
        u = m.cols(np.zeros(len(sets)), 0, 1)
        lens = np.array([len(s_) for s_ in sets])
        m.rows(len(sets), 1, INF, np.concatenate([np.arange(len(sets)), np.repeat(np.arange(len(sets)), lens)]),
               np.concatenate([u, y[np.concatenate([np.array(s_) for s_ in sets])]]), 1.0)  # u_s + Σ y ≥ 1
        covered1 = np.zeros(len(sets), bool)
        for k_, s_ in enumerate(sets):
            covered1[k_] = bool(open1[list(s_)].any())
        target = float(W[covered1].sum())
        m.rows(1, target * (1 - 1e-9) - 1e-9 - W.sum(), INF, np.zeros(len(sets)), u, -W)  # Σ W (1 − u) ≥ W*

    def levels(yv: np.ndarray, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per demand point: a_i, the tight α at yv, and the cost there."""
        a = np.ones(A)
        if len(uv):
            a[lexu] = 1 - uv[set_of[lexu]]
        cum = np.cumsum(yv[xj])
        base = np.where(starts > 0, cum[starts - 1], 0.0)
        within = cum - base[ai]
        hit = within >= a[ai] - 1e-9
        pos = np.where(hit, np.arange(len(xi)), len(xi))
        first = np.minimum.reduceat(pos, starts)
        found = first < len(xi)
        alpha = np.where(found, xd[np.minimum(first, len(xi) - 1)], np.where(np.isfinite(Fa), Fa, xd[ends]))
        beta = np.maximum(alpha[ai] - xd, 0.0)
        cost = alpha * a - np.bincount(ai, weights=beta * yv[xj], minlength=A)
        return a, alpha, cost

    def cuts(alpha: np.ndarray, which: np.ndarray) -> tuple:
        """Rows θ_i + Σ (α − d_l) y_l (+ α u_s) ≥ α for the demand points ``which``."""
        row_of = np.full(A, -1)
        row_of[which] = np.arange(len(which))
        sel = (row_of[ai] >= 0) & (xd < alpha[ai])
        rows = [row_of[ai[sel]], np.arange(len(which))]
        cols = [y[xj[sel]], th[which]]
        vals = [alpha[ai[sel]] - xd[sel], np.ones(len(which))]
        lu = which[lexu[which]]
        if len(lu):
            rows.append(row_of[lu])
            cols.append(u[set_of[lu]])
            vals.append(alpha[lu])
        return len(which), alpha[which], np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)

    # the first cuts: each demand point's nearest level, and the cuts at the start solution
    y0 = open1.astype(float) if lex else _greedy(xi, xj, xd, w, Fa, np.searchsorted(a_idx, np.arange(inp.n_demand)).clip(0, A - 1),
                                                 n_new, p).astype(float)
    u0 = np.zeros(len(u))
    if len(u):
        u0 = (~covered1).astype(float)
    _, alpha0, cost0 = levels(y0, u0)
    best = (float((wa * cost0).sum()) + const, y0, u0, cost0)
    pending = [cuts(xd[starts], np.flatnonzero(lexu)), cuts(alpha0, np.arange(A))]
    h = new_solver()
    h.setOptionValue("random_seed", 0)
    for k_, v_ in (opts.get("highs") or {}).items():
        h.setOptionValue(k_, v_)
    cost_v = np.concatenate([c[0] for c in m._cols])
    lo_v = np.concatenate([c[1] for c in m._cols])
    hi_v = np.concatenate([c[2] for c in m._cols])
    empty_i, empty_f = np.array([], dtype=np.int32), np.array([], dtype=float)
    h.addCols(m.n_cols, cost_v, lo_v, hi_v, 0, empty_i, empty_i, empty_f)

    def add_rows(n, lo, hi, r, c, v) -> None:
        order_ = np.argsort(r, kind="stable")
        r, c, v = r[order_], c[order_], v[order_]
        st = np.searchsorted(r, np.arange(n)).astype(np.int32)
        h.addRows(n, np.broadcast_to(np.asarray(lo, float), n).copy(), np.broadcast_to(np.asarray(hi, float), n).copy(),
                  len(v), st, c.astype(np.int32), v.astype(float))

    r_all = np.concatenate([c[0] for c in m._coo])
    add_rows(m.n_rows, np.concatenate(m._rows_lo), np.concatenate(m._rows_hi), r_all,
             np.concatenate([c[1] for c in m._coo]), np.concatenate([c[2] for c in m._coo]))
    for n_, rhs, r, c, v in pending:
        add_rows(n_, rhs, INF, r, c, v)
    n_cuts = 2 * A
    scale = max(best[0], 1.0)
    tol = 1e-9
    lb = -INF
    lp_rounds = mip_rounds = 0
    status, optimal = "time_limit", False
    # LP rounds
    last_lbs: list[float] = []
    while time.perf_counter() < deadline and lp_rounds < 500:
        h.setOptionValue("time_limit", max(deadline - time.perf_counter(), 0.01))
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            break
        lp_rounds += 1
        lb = max(lb, float(h.getInfo().objective_function_value) + const)
        x = np.array(h.getSolution().col_value)
        yv, thv, uv = x[y], x[th], x[u] if len(u) else np.zeros(0)
        _, alpha, cost = levels(yv, uv)
        viol = np.flatnonzero(thv < cost - tol * np.maximum(1.0, np.abs(cost)) - 1e-7)
        if len(viol) == 0:
            break
        n_, rhs, r, c, v = cuts(alpha, viol)
        add_rows(n_, rhs, INF, r, c, v)
        n_cuts += n_
        last_lbs.append(lb)
        if len(last_lbs) > 8 and last_lbs[-1] - last_lbs[-9] <= 1e-6 * scale:
            break  # tailing off: let branching finish the job
    lp_bound = lb
    fixed = 0
    if h.getModelStatus() == highspy.HighsModelStatus.kOptimal and lp_rounds:
        sol_ = h.getSolution()
        x = np.array(sol_.col_value)
        # integer solutions near the LP optimum: its sites at 1, completed from its
        # fractional sites (every completion when there are few, else greedily)
        xy = x[y]
        ones = np.flatnonzero(xy >= 1 - 1e-6)[:p]
        frac = np.flatnonzero((xy > 1e-6) & (xy < 1 - 1e-6))
        frac = frac[np.argsort(-xy[frac], kind="stable")][:30]
        r_ = p - len(ones)

        def evaluate(open_sites: np.ndarray) -> None:
            nonlocal best
            yv = np.zeros(n_new)
            yv[open_sites] = 1
            uv = np.zeros(len(u))
            if len(u):
                cov_s = np.array([bool(yv[list(s_)].any()) for s_ in sets])
                if float(W[cov_s].sum()) < target * (1 - 1e-9) - 1e-9:
                    return
                uv = (~cov_s).astype(float)
            _, _, cost = levels(yv, uv)
            ub = float((wa * cost).sum()) + const
            if ub < best[0]:
                best = (ub, yv, uv, cost)

        import itertools
        import math
        if 0 <= r_ <= len(frac) and math.comb(len(frac), r_) <= 300:
            for extra in itertools.combinations(frac.tolist(), r_):
                evaluate(np.concatenate([ones, np.array(extra, dtype=np.int64)]))
        else:
            order_ = np.argsort(-xy, kind="stable")
            evaluate(order_[:p])
        # reduced-cost fixing: a site whose reduced cost alone lifts the LP bound above the
        # best known cost cannot change in an improving solution (exact, the master LP
        # with its cuts being a relaxation of the whole problem)
        rc = np.array(sol_.col_dual)[y]
        lp_obj = float(h.getInfo().objective_function_value) + const
        slack = best[0] - lp_obj + 1e-9 * abs(best[0])
        at0 = (x[y] <= 1e-9) & (rc > slack)
        at1 = (x[y] >= 1 - 1e-9) & (-rc > slack)
        if at0.any():
            idx = y[at0].astype(np.int32)
            h.changeColsBounds(len(idx), idx, np.zeros(len(idx)), np.zeros(len(idx)))
        if at1.any():
            idx = y[at1].astype(np.int32)
            h.changeColsBounds(len(idx), idx, np.ones(len(idx)), np.ones(len(idx)))
        fixed = int(at0.sum() + at1.sum())
        # drop cuts that are slack at the LP optimum (the base rows stay)
        act = np.array(sol_.row_value)
        lo_r = np.array(h.getLp().row_lower_)
        base_rows = m.n_rows
        loose = np.flatnonzero(act[base_rows:] > lo_r[base_rows:] + 1e-6 * np.maximum(1.0, np.abs(lo_r[base_rows:]))) + base_rows
        if len(loose):
            h.deleteRows(len(loose), loose.astype(np.int32))
            n_cuts -= len(loose)
    # integer rounds
    h.changeColsIntegrality(n_new, y.astype(np.int32), np.full(n_new, highspy.HighsVarType.kInteger, dtype=np.uint8))
    h.setOptionValue("mip_rel_gap", float(opts["mip_gap"]))
    nodes = 0
    while time.perf_counter() < deadline:
        # (no setSolution here: on a Highs object that has already solved the LP rounds,
        # HiGHS 1.16 then reported the start as "optimal" with another objective value;
        # the best solution is kept here instead, and only its true cost counts)
        h.setOptionValue("time_limit", max(deadline - time.perf_counter(), 0.01))
        h.run()
        mip_rounds += 1
        info = h.getInfo()
        ms = h.getModelStatus()
        nodes += int(info.mip_node_count)
        if np.isfinite(info.mip_dual_bound):
            lb = max(lb, float(info.mip_dual_bound) + const)
        if info.primal_solution_status != 2:
            break
        x = np.array(h.getSolution().col_value)
        yv = np.round(x[y])
        uv = x[u] if len(u) else np.zeros(0)
        if len(u):  # the cheapest u for these sites: unserve only what the target allows
            uv = np.clip(np.round(uv, 9), 0, 1)
        _, alpha, cost = levels(yv, uv)
        ub = float((wa * cost).sum()) + const
        if ub < best[0]:
            best = (ub, yv, uv, cost)
        if ms == highspy.HighsModelStatus.kOptimal and best[0] - lb <= max(opts["mip_gap"] * abs(best[0]), 1e-6):
            status, optimal = "optimal", True
            break
        thv = x[th]
        viol = np.flatnonzero(thv < cost - tol * np.maximum(1.0, np.abs(cost)) - 1e-7)
        if ms != highspy.HighsModelStatus.kOptimal:
            status = "time_limit" if ms == highspy.HighsModelStatus.kTimeLimit else h.modelStatusToString(ms).lower().replace(" ", "_")
            break
        if len(viol) == 0:  # master optimal and consistent: its bound is the optimum
            lb = max(lb, best[0] if abs(ub - best[0]) < 1e-9 else lb)
            status, optimal = "optimal", True
            break
        n_, rhs, r, c, v = cuts(alpha, viol)
        add_rows(n_, rhs, INF, r, c, v)
        n_cuts += n_
    seconds = time.perf_counter() - t_start
    ub = best[0]
    gap = 0.0 if optimal else (None if not np.isfinite(lb) else max(ub - lb, 0.0) / max(abs(ub), 1e-12))
    if phase1 and not phase1.get("optimal"):
        optimal = False
        status = phase1["status"]
    res = {"status": status, "optimal": optimal, "gap": gap, "objective": ub, "bound": lb if np.isfinite(lb) else None,
           "x": None, "seconds": seconds, "nodes": nodes, "cols": m.n_cols, "rows": m.n_rows + n_cuts, "nonzeros": None,
           "method": "benders", "lp_rounds": lp_rounds, "mip_rounds": mip_rounds, "cuts": n_cuts,
           "lp_bound": lp_bound if np.isfinite(lp_bound) else None, "fixed_by_reduced_cost": fixed,
           "phase1": _strip(phase1)}
    return best[1] > 0.5, res, {}


def _greedy(xi, xj, xd, w, fallback, a_row, n_new: int, p: int) -> np.ndarray:
    """p sites added one at a time, each the largest cut in weighted distance (sparse, vectorised)."""
    cur = fallback.copy()  # per active demand: distance now (existing site or the penalty)
    ri = a_row[xi]
    chosen = np.zeros(n_new, bool)
    for _ in range(p):
        save = np.bincount(xj, weights=w[xi] * np.maximum(cur[ri] - xd, 0), minlength=n_new)
        save[chosen] = -1
        j = int(np.argmax(save))
        chosen[j] = True
        mine = xj == j
        np.minimum.at(cur, ri[mine], xd[mine])
    return chosen


def _capacitated(pr: _Prep, model: str, p: int | None, opts: dict) -> tuple[np.ndarray | None, dict, dict]:
    """Assignment-based models with capacities: returns the open mask and the assignment (pair shares)."""
    inp = pr.inp
    w = inp.weight
    n_new = len(pr.new)
    radius_pairs = pr.pd_ <= (pr.radius if model in ("lscp", "mclp") else pr.cutoff)
    sel = radius_pairs & pr.reach[pr.pi] & (w[pr.pi] > 0)
    ai, aj, ad = pr.pi[sel], pr.pj[sel], pr.pd_[sel]
    active = np.unique(ai)
    a_row = np.full(inp.n_demand, -1)
    a_row[active] = np.arange(len(active))
    is_new = ~inp.existing[aj]
    split = opts.get("split_demand", False)
    deadline = time.perf_counter() + opts["time_limit"]

    def build(objective: str, target: float | None = None) -> tuple[_Mip, np.ndarray, np.ndarray, np.ndarray]:
        m = _Mip()
        y_cost = np.ones(n_new) if objective == "lscp" else np.zeros(n_new)
        y = m.cols(y_cost, 0, 1, integer=True)
        if objective == "lscp":
            unserved_cost = (n_new + 1) / max(w[w > 0].min(initial=1.0), 1e-9)
            x_cost, u_cost = np.zeros(len(ai)), unserved_cost * w[active]
        elif objective == "serve":  # maximise weight served (mclp, and phase 1 of p-median)
            x_cost, u_cost = w[ai], np.zeros(len(active))
        else:  # distance
            pen = opts.get("unserved_penalty")
            x_cost, u_cost = w[ai] * ad, (0.0 if pen is None else pen) * w[active]
        x = m.cols(x_cost, 0, 1, integer=not split)
        u = m.cols(u_cost, 0, 1)
        m.rows(len(active), 1, 1, np.concatenate([a_row[ai], np.arange(len(active))]), np.concatenate([x, u]), 1.0)
        # capacity: Σ_i w_i x_ij ≤ C_j y_j (new) or ≤ C_j (existing), only where finite
        sites_used = np.unique(aj)
        finite = sites_used[np.isfinite(inp.capacity[sites_used])]
        if len(finite):
            s_row = np.full(inp.n_sites, -1)
            s_row[finite] = np.arange(len(finite))
            pick = s_row[aj] >= 0
            rows = [s_row[aj[pick]]]
            cols = [x[pick]]
            vals = [w[ai[pick]]]
            newf = finite[~inp.existing[finite]]
            rows.append(s_row[newf])
            cols.append(y[pr.new_pos[newf]])
            vals.append(-inp.capacity[newf])
            hi = np.where(inp.existing[finite], inp.capacity[finite], 0.0)
            m.rows(len(finite), -INF, hi, np.concatenate(rows), np.concatenate(cols), np.concatenate(vals))
        k = np.flatnonzero(is_new)
        m.rows(len(k), -INF, 0, np.concatenate([np.arange(len(k))] * 2), np.concatenate([x[k], y[pr.new_pos[aj[k]]]]),
               np.concatenate([np.ones(len(k)), -np.ones(len(k))]))  # x_ij ≤ y_j
        if p is not None:
            m.rows(1, p, p, np.zeros(n_new), y, 1.0)
        if target is not None and target > 0:
            m.rows(1, target * (1 - 1e-9) - 1e-9, INF, np.zeros(len(x)), x, w[ai])
        return m, y, x, u

    if len(active) == 0 or (n_new == 0 and model != "lscp"):
        return np.zeros(n_new, bool), _trivial(), {"pairs": (ai[:0], aj[:0], np.zeros(0))}
    phase1: dict = {}
    target = None
    if model == "pmedian" and opts.get("unserved_penalty") is None:
        m, y, x, u = build("serve")
        phase1 = m.solve(True, opts["time_limit"], opts["mip_gap"], options=opts["highs"])
        if phase1["x"] is None:
            return None, phase1, {}
        target = float((phase1["x"][x] * w[ai]).sum())
    objective = {"lscp": "lscp", "mclp": "serve", "pmedian": "distance"}[model]
    m, y, x, u = build(objective, target)
    left = deadline - time.perf_counter() if phase1 else opts["time_limit"]
    res = m.solve(objective == "serve", left, opts["mip_gap"], options=opts["highs"])
    if phase1:
        res["phase1"] = _strip(phase1)
        if not phase1["optimal"]:
            res["status"], res["optimal"] = (phase1["status"] if res["optimal"] else res["status"]), False
    if res["x"] is None:
        return None, res, {}
    share = res["x"][x]
    open_ = res["x"][y] > 0.5 if n_new else np.zeros(0, bool)
    keep = share > 1e-6
    return open_, res, {"pairs": (ai[keep], aj[keep], np.clip(share[keep], 0, 1))}


def _strip(res: dict) -> dict:
    return {k: v for k, v in res.items() if k != "x"}


def solve(inp: SitingInput, model: str, radius: float | None = None, p: int | None = None, *, capacitated: bool = False,
          cutoff: float | None = None, time_limit: float = 60.0, mip_gap: float = 1e-6,
          unserved_penalty: float | None = None, split_demand: bool = False, worst: int = 10,
          highs_options: dict | None = None, method: str | None = None) -> SitingResult:
    """Solve one siting model on ``inp`` (see the module docstring). ``radius`` defaults to the
    input's cut-off; ``cutoff`` (p-median) to the radius."""
    if model not in MODELS:
        raise SitingError(f"unknown model {model!r}: one of {', '.join(MODELS)}")
    radius = float(inp.cutoff if radius is None else radius)
    if not np.isfinite(radius):
        raise SitingError("give a radius (the input has no cut-off)")
    cutoff = float(radius if cutoff is None else cutoff)
    if model != "pmedian":
        cutoff = radius
    if unserved_penalty is not None and unserved_penalty < cutoff:
        raise SitingError("unserved_penalty must be at least the cut-off (being unserved costs at least the longest walk)")
    notes: list[str] = []
    if cutoff > inp.cutoff + 1e-9:
        notes.append(f"distances were computed only to {inp.cutoff:.0f} m; pairs beyond are out of reach")
        cutoff = float(inp.cutoff)
    radius = min(radius, cutoff)
    n_new = int((~inp.existing).sum())
    if model in ("mclp", "pmedian"):
        if p is None:
            raise SitingError(f"{model} needs p (the number of new sites)")
        if p < 0:
            raise SitingError("p must be non-negative")
        if p > n_new:
            notes.append(f"p={p} is more than the {n_new} candidates: all are opened")
            p = n_new
    elif p is not None:
        notes.append("p is ignored by set covering (it finds the fewest sites)")
        p = None
    t0 = time.perf_counter()
    pr = _prep(inp, radius, cutoff)
    opts = {"time_limit": float(time_limit), "mip_gap": float(mip_gap), "unserved_penalty": unserved_penalty,
            "split_demand": split_demand, "highs": dict(highs_options or {}), "method": method}
    if capacitated:
        open_new, res, extra = _capacitated(pr, model, p if model != "lscp" else None, opts)
    elif model == "lscp":
        open_new, res, extra = _lscp(pr, opts)
    elif model == "mclp":
        open_new, res, extra = _mclp(pr, p, opts)
    else:
        method = opts.get("method") or "benders"
        open_new, res, extra = (_pmedian_benders if method == "benders" else _pmedian)(pr, p, opts)
    total = time.perf_counter() - t0
    return _result(pr, model, p, capacitated, open_new, res, extra, opts, total, notes, worst)


# --- reporting ----------------------------------------------------------------------------

def _wquantile(values: np.ndarray, weights: np.ndarray, q: float) -> float | None:
    ok = weights > 0
    if not ok.any():
        return None
    v, w = values[ok], weights[ok]
    order = np.argsort(v)
    cw = np.cumsum(w[order])
    return float(v[order][np.searchsorted(cw, q * cw[-1] - 1e-9)])


def _result(pr: _Prep, model, p, capacitated, open_new, res, extra, opts, total_s, notes, worst) -> SitingResult:
    inp = pr.inp
    w = inp.weight
    has = open_new is not None
    is_open = inp.existing.copy()
    if has:
        is_open[pr.new[open_new]] = True
    # assignment: (demand, site, share, distance)
    if has and capacitated:
        ai, aj, share = extra["pairs"]
        lookup = pd.Series(pr.pd_, index=pr.pi * inp.n_sites + pr.pj)
        ad = lookup.reindex(ai * inp.n_sites + aj).to_numpy()
    else:
        # nearest open site within the cut-off (ties: lower site position)
        ok = is_open[pr.pj]
        ci, cj, cd = pr.pi[ok], pr.pj[ok], pr.pd_[ok]
        order = np.lexsort((cj, cd, ci))
        ci, cj, cd = ci[order], cj[order], cd[order]
        first = np.ones(len(ci), bool)
        first[1:] = ci[1:] != ci[:-1]
        ai, aj, ad, share = ci[first], cj[first], cd[first], np.ones(first.sum())
        pos = w[ai] > 0
        ai, aj, ad, share = ai[pos], aj[pos], ad[pos], share[pos]
    ex_r = inp.existing[pr.pj] & (pr.pd_ <= pr.radius)
    before_mask = np.zeros(inp.n_demand, bool)  # within the radius of an existing site
    before_mask[pr.pi[ex_r]] = True
    before_mask &= w > 0
    served_share = np.zeros(inp.n_demand)
    np.add.at(served_share, ai, share)
    within = ad <= pr.radius + 1e-9
    covered_weight = float((w[ai] * share * within).sum())
    served_weight = float((w[ai] * share).sum())
    mean_d = float((w[ai] * share * ad).sum() / served_weight) if served_weight > 0 else None
    p95 = _wquantile(ad, w[ai] * share, 0.95)
    covered_before = float(w[before_mask].sum())  # the same with existing sites alone
    if capacitated:
        cap_note = inp.existing & np.isfinite(inp.capacity)
        if cap_note.any():
            notes.append("covered_before ignores capacities (existing sites only, within the radius)")

    def demand_frame(mask: np.ndarray, why: str | None = None) -> pd.DataFrame:
        idx = np.flatnonzero(mask)
        out = pd.DataFrame({"demand_id": inp.demand_id[idx], "weight": w[idx]})
        if inp.demand_group is not None:
            out["group"] = inp.demand_group[idx]
        if inp.demand_label is not None:
            out["label"] = inp.demand_label[idx]
        if why:
            out["why"] = why
        return out

    unreachable = demand_frame(~pr.reach & (w > 0), "no site within the cut-off")
    unserved_mask = pr.reach & (served_share < 1 - 1e-6) & has
    unserved = demand_frame(unserved_mask, "capacity" if capacitated else "no open site within the cut-off")
    if capacitated and len(unserved):
        unserved["weight"] = unserved["weight"] * (1 - served_share[unserved_mask])

    assign = pd.DataFrame({"demand_id": inp.demand_id[ai], "site_id": inp.site_id[aj], "share": share, "distance_m": ad,
                           "within_radius": within, "weight": w[ai] * share})
    assign["reason"] = None
    assign["covered_before"] = before_mask[ai]
    if inp.demand_group is not None:
        assign["group"] = inp.demand_group[ai]
    rest = pd.DataFrame({"demand_id": inp.demand_id[unserved_mask], "site_id": None,
                         "share": 1 - served_share[unserved_mask], "distance_m": np.nan, "within_radius": False,
                         "weight": w[unserved_mask] * (1 - served_share[unserved_mask]), "reason": "unserved"})
    gone = pd.DataFrame({"demand_id": inp.demand_id[~pr.reach & (w > 0)], "site_id": None, "share": 1.0, "distance_m": np.nan,
                         "within_radius": False, "weight": w[~pr.reach & (w > 0)], "reason": "unreachable"})
    for frame, mask in ((rest, unserved_mask), (gone, ~pr.reach & (w > 0))):
        frame["covered_before"] = before_mask[mask]
        if inp.demand_group is not None:
            frame["group"] = inp.demand_group[mask]
    assignment = pd.concat([f for f in (assign, rest, gone) if len(f)], ignore_index=True) if (len(assign) or len(rest) or len(gone)) else assign

    # sites
    open_idx = np.flatnonzero(is_open)
    load = np.zeros(inp.n_sites)
    np.add.at(load, aj, w[ai] * share)
    npts = np.zeros(inp.n_sites, int)
    np.add.at(npts, aj, 1)
    sites = pd.DataFrame({"site_id": inp.site_id[open_idx],
                          "name": inp.site_name[open_idx] if inp.site_name is not None else None,
                          "existing": inp.existing[open_idx], "new": ~inp.existing[open_idx],
                          "capacity": np.where(np.isfinite(inp.capacity[open_idx]), inp.capacity[open_idx], np.nan),
                          "assigned_weight": load[open_idx], "demand_points": npts[open_idx]})
    if inp.site_xy is not None:
        sites["lon"], sites["lat"] = inp.site_xy[open_idx, 0], inp.site_xy[open_idx, 1]
    sites = sites.sort_values(["existing", "assigned_weight"], ascending=[True, False]).reset_index(drop=True)

    # worst-served groups (grids)
    if inp.demand_group is not None and inp.n_demand:
        g = pd.DataFrame({"group": inp.demand_group, "weight": w})
        g["covered"] = 0.0
        cov_w = np.zeros(inp.n_demand)
        np.add.at(cov_w, ai, w[ai] * share * within)
        dist_w = np.zeros(inp.n_demand)
        np.add.at(dist_w, ai, w[ai] * share * ad)
        srv_w = np.zeros(inp.n_demand)
        np.add.at(srv_w, ai, w[ai] * share)
        g["covered"], g["dist_w"], g["served"] = cov_w, dist_w, srv_w
        grp = g.groupby("group").sum(numeric_only=True)
        grp = grp[grp["weight"] > 0]
        grp["uncovered"] = grp["weight"] - grp["covered"]
        grp["covered_share"] = grp["covered"] / grp["weight"]
        grp["mean_distance_m"] = np.where(grp["served"] > 0, grp["dist_w"] / grp["served"].where(grp["served"] > 0, 1), np.nan)
        worst_grids = (grp.sort_values(["covered_share", "uncovered"], ascending=[True, False]).head(worst)
                       .reset_index()[["group", "weight", "covered", "uncovered", "covered_share", "mean_distance_m"]])
    else:
        worst_grids = pd.DataFrame(columns=["group", "weight", "covered", "uncovered", "covered_share", "mean_distance_m"])

    if model == "lscp":
        objective = float(open_new.sum()) if has else None
    elif model == "mclp":
        objective = covered_weight if has else None
    else:
        objective = float((w[ai] * share * ad).sum()) if has else None
        if has and opts.get("unserved_penalty") is not None:  # every household with no open site within the cut-off
            objective += float(opts["unserved_penalty"] * (unserved["weight"].sum() + unreachable["weight"].sum()))
    if not has:
        notes.append(f"求解器未找到可行解 / the solver found no solution ({res['status']})")
    elif not res["optimal"]:
        notes.append(f"时间用尽，未证明最优 / stopped at the time limit, not proven optimal (gap {res['gap']:.2%})"
                     if res["gap"] is not None else f"not proven optimal ({res['status']})")
    if len(unreachable):
        notes.append(f"{len(unreachable)} demand points ({unreachable['weight'].sum():.0f}) have no site within "
                     f"{pr.cutoff:.0f} m: reported as unreachable")
    details = {k: v for k, v in res.items() if k != "x"}
    return SitingResult(
        model=model, radius=pr.radius, cutoff=pr.cutoff, p=p, capacitated=capacitated, status=res["status"],
        gap=res["gap"], objective=objective, solver_objective=res["objective"], mip_gap_tolerance=opts["mip_gap"],
        time_limit=opts["time_limit"], build_seconds=max(total_s - res["seconds"], 0.0), solve_seconds=res["seconds"],
        has_solution=has, sites=sites if has else sites.iloc[0:0], assignment=assignment, total_weight=float(w.sum()),
        reachable_weight=float(w[pr.reach].sum()), covered_weight=covered_weight if has else 0.0,
        covered_before=covered_before, served_weight=served_weight if has else 0.0, mean_distance_m=mean_d if has else None,
        p95_distance_m=p95 if has else None, unreachable=unreachable, unserved=unserved, worst_grids=worst_grids,
        notes=notes, details=details)


def lscp(inp: SitingInput, radius: float | None = None, **kw) -> SitingResult:
    return solve(inp, "lscp", radius, **kw)


def mclp(inp: SitingInput, p: int, radius: float | None = None, **kw) -> SitingResult:
    return solve(inp, "mclp", radius, p, **kw)


def pmedian(inp: SitingInput, p: int, cutoff: float | None = None, **kw) -> SitingResult:
    return solve(inp, "pmedian", kw.pop("radius", cutoff), p, cutoff=cutoff, **kw)
