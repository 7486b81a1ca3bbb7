"""One result type for every siting model: status and gap as HiGHS gave them, the open
sites, every demand point's assignment, coverage figures and the worst-served grids."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gis.frames import records


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
        return {**self.summary(), "sites": records(self.sites), "worst_grids": records(self.worst_grids),
                "unreachable": records(self.unreachable), "unserved": records(self.unserved), "details": self.details}


def _round(v: float | None, nd: int = 1) -> float | None:
    return None if v is None or not np.isfinite(v) else round(float(v), nd)
