"""One class per siting model, one calling convention (the way PySAL spopt shapes its models).

Every model is built from the same ``SitingInput`` (``Model(inp, radius, p, …)`` or
``Model.from_input(inp, …)``), validates its arguments on construction, and ``solve()``
returns one ``SitingResult`` with HiGHS's status and gap. A model says what it needs
(``needs_p``, ``uses_cutoff``), how it is optimised (``optimise``) and what its objective
is (``objective_value``); the rest (preparing the pairs, timing, reporting) is shared.

Adding a model (p-center, say) is one new subclass with ``@register``: the command line,
the planner's screen and ``solve(inp, "name", …)`` find it in ``REGISTRY``, keyed by
(name, capacitated).
"""
from __future__ import annotations

import time
from typing import ClassVar

import numpy as np

from analysis.siting.benders import solve_pmedian
from analysis.siting.capacitated import solve_capacitated
from analysis.siting.formulations import lscp_cover, mclp_cover, pmedian_compact
from analysis.siting.inputs import Prepared, SitingError, SitingInput, prepare
from analysis.siting.reporting import build_result
from analysis.siting.results import SitingResult
from gis.messages import msg


REGISTRY: dict[tuple[str, bool], type["SitingModel"]] = {}


def register(cls: type["SitingModel"]) -> type["SitingModel"]:
    """Make a model class known by its (name, capacitated) key."""
    REGISTRY[(cls.name, cls.capacitated)] = cls
    return cls


def model_names() -> tuple[str, ...]:
    """The model names, in the order they were registered (uncapacitated first)."""
    return tuple(dict.fromkeys(name for name, _ in REGISTRY))


class SitingModel:
    """The shared constructor and ``solve()``; subclasses define ``optimise`` and ``objective_value``."""

    name: ClassVar[str] = ""
    label: ClassVar[tuple[str, str]] = ("", "")  # (Chinese, English)
    needs_p: ClassVar[bool] = False  # p new sites (else p is ignored, with a note)
    uses_cutoff: ClassVar[bool] = False  # a cut-off apart from the radius (else cut-off = radius)
    capacitated: ClassVar[bool] = False

    def __init__(self, inp: SitingInput, radius: float | None = None, p: int | None = None, *,
                 cutoff: float | None = None, unserved_penalty: float | None = None, split_demand: bool = False,
                 method: str | None = None) -> None:
        """``radius`` defaults to the input's cut-off; ``cutoff`` (p-median) to the radius."""
        radius = float(inp.cutoff if radius is None else radius)
        if not np.isfinite(radius):
            raise SitingError("give a radius (the input has no cut-off)")
        cutoff = float(radius if cutoff is None else cutoff)
        if not self.uses_cutoff:
            cutoff = radius
        if unserved_penalty is not None and unserved_penalty < cutoff:
            raise SitingError("unserved_penalty must be at least the cut-off (being unserved costs at least the longest walk)")
        notes: list[str] = []
        if cutoff > inp.cutoff + 1e-9:
            notes.append(msg("siting.cutoff_capped", cutoff=inp.cutoff))
            cutoff = float(inp.cutoff)
        radius = min(radius, cutoff)
        n_new = int((~inp.existing).sum())
        if self.needs_p:
            if p is None:
                raise SitingError(f"{self.name} needs p (the number of new sites)")
            if p < 0:
                raise SitingError("p must be non-negative")
            if p > n_new:
                notes.append(msg("siting.p_capped", p=p, candidates=n_new))
                p = n_new
        elif p is not None:
            notes.append(msg("siting.p_ignored"))
            p = None
        self.inp, self.radius, self.cutoff, self.p = inp, radius, cutoff, p
        self.unserved_penalty, self.split_demand, self.method = unserved_penalty, split_demand, method
        self.notes = notes

    @classmethod
    def from_input(cls, inp: SitingInput, **kw) -> "SitingModel":
        return cls(inp, **kw)

    def solve(self, time_limit: float = 60.0, mip_gap: float = 1e-6, *, highs_options: dict | None = None,
              worst: int = 10) -> SitingResult:
        t0 = time.perf_counter()
        pr = prepare(self.inp, self.radius, self.cutoff)
        opts = {"time_limit": float(time_limit), "mip_gap": float(mip_gap), "unserved_penalty": self.unserved_penalty,
                "split_demand": self.split_demand, "highs": dict(highs_options or {}), "method": self.method}
        open_new, res, extra = self.optimise(pr, opts)
        total = time.perf_counter() - t0
        return build_result(pr, self, open_new, res, extra, opts, total, list(self.notes), worst)

    def optimise(self, pr: Prepared, opts: dict) -> tuple[np.ndarray | None, dict, dict]:
        """(open mask over the new sites or None, solver info, extra such as capacitated pairs)."""
        raise NotImplementedError

    def objective_value(self, *, open_new: np.ndarray, covered_weight: float, walked: np.ndarray, left_weight: float,
                        opts: dict) -> float:
        """The model's objective at its solution (called only when there is one)."""
        raise NotImplementedError


@register
class LSCP(SitingModel):
    """Set covering: the fewest new sites so that every reachable demand point is within the radius."""

    name = "lscp"
    label = ("集合覆盖 (LSCP)", "set covering (LSCP)")

    def optimise(self, pr, opts):
        return lscp_cover(pr, opts)

    def objective_value(self, *, open_new, covered_weight, walked, left_weight, opts):
        return float(open_new.sum())


@register
class MCLP(SitingModel):
    """Maximal covering: exactly p new sites maximising the weight within the radius."""

    name = "mclp"
    label = ("最大覆盖 (MCLP)", "maximal covering (MCLP)")
    needs_p = True

    def optimise(self, pr, opts):
        return mclp_cover(pr, self.p, opts)

    def objective_value(self, *, open_new, covered_weight, walked, left_weight, opts):
        return covered_weight


@register
class PMedian(SitingModel):
    """p new sites minimising the total weighted walk (Benders by default, ``method="compact"``
    for the strong compact formulation)."""

    name = "pmedian"
    label = ("p-中值", "p-median")
    needs_p = True
    uses_cutoff = True
    METHODS: ClassVar[dict] = {"benders": solve_pmedian, "compact": pmedian_compact}

    def optimise(self, pr, opts):
        return self.METHODS[opts.get("method") or "benders"](pr, self.p, opts)

    def objective_value(self, *, open_new, covered_weight, walked, left_weight, opts):
        objective = float(walked.sum())
        if opts.get("unserved_penalty") is not None:  # every household with no open site within the cut-off
            objective += float(opts["unserved_penalty"] * left_weight)
        return objective


class _Capacitated:
    """Mixin: the assignment-based model with capacities (``analysis/siting/capacitated.py``)."""

    capacitated = True

    def optimise(self, pr, opts):
        return solve_capacitated(pr, self.name, self.p, opts)


@register
class CapacitatedLSCP(_Capacitated, LSCP):
    """Set covering with capacities: first serve all the weight it can, then the fewest sites."""


@register
class CapacitatedMCLP(_Capacitated, MCLP):
    """Maximal covering with capacities: the most weight served within the radius."""


@register
class CapacitatedPMedian(_Capacitated, PMedian):
    """p-median with capacities (lexicographic unless a penalty is given)."""


def model_class(name: str, capacitated: bool = False) -> type[SitingModel]:
    cls = REGISTRY.get((name, bool(capacitated)))
    if cls is None:
        raise SitingError(f"unknown model {name!r}: one of {', '.join(model_names())}")
    return cls


def solve(inp: SitingInput, model: str, radius: float | None = None, p: int | None = None, *, capacitated: bool = False,
          cutoff: float | None = None, time_limit: float = 60.0, mip_gap: float = 1e-6,
          unserved_penalty: float | None = None, split_demand: bool = False, worst: int = 10,
          highs_options: dict | None = None, method: str | None = None) -> SitingResult:
    """Solve one siting model on ``inp`` by name (the command line's and the screens' way in)."""
    cls = model_class(model, capacitated)
    return cls(inp, radius, p, cutoff=cutoff, unserved_penalty=unserved_penalty, split_demand=split_demand,
               method=method).solve(time_limit, mip_gap, highs_options=highs_options, worst=worst)


def lscp(inp: SitingInput, radius: float | None = None, **kw) -> SitingResult:
    return solve(inp, "lscp", radius, **kw)


def mclp(inp: SitingInput, p: int, radius: float | None = None, **kw) -> SitingResult:
    return solve(inp, "mclp", radius, p, **kw)


def pmedian(inp: SitingInput, p: int, cutoff: float | None = None, **kw) -> SitingResult:
    return solve(inp, "pmedian", kw.pop("radius", cutoff), p, cutoff=cutoff, **kw)
