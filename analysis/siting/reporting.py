"""From a solver's answer to a ``SitingResult``: who is served by which site, coverage
before and after, walking figures, the unreachable and the unserved, the worst-served grids."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis.siting.inputs import Prepared
from analysis.siting.results import SitingResult
from gis.messages import msg


if TYPE_CHECKING:  # the models call this module; the type only names them
    from analysis.siting.models import SitingModel


def _wquantile(values: np.ndarray, weights: np.ndarray, q: float) -> float | None:
    ok = weights > 0
    if not ok.any():
        return None
    v, w = values[ok], weights[ok]
    order = np.argsort(v)
    cw = np.cumsum(w[order])
    return float(v[order][np.searchsorted(cw, q * cw[-1] - 1e-9)])


def build_result(pr: Prepared, model: SitingModel, open_new, res, extra, opts, total_s, notes, worst) -> SitingResult:
    p, capacitated = model.p, model.capacitated
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
            notes.append(msg("siting.before_ignores_capacity"))

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

    # what the model minimises or maximises, as the model itself defines it
    objective = model.objective_value(open_new=open_new, covered_weight=covered_weight, walked=w[ai] * share * ad,
                                      left_weight=unserved["weight"].sum() + unreachable["weight"].sum(),
                                      opts=opts) if has else None
    if not has:
        notes.append(msg("solver.no_solution", status=res["status"]))
    elif not res["optimal"]:
        notes.append(msg("solver.time_limit", gap=res["gap"]) if res["gap"] is not None
                     else msg("solver.not_optimal", status=res["status"]))
    if len(unreachable):
        notes.append(msg("siting.unreachable", points=len(unreachable), weight=unreachable["weight"].sum(), cutoff=pr.cutoff))
    details = {k: v for k, v in res.items() if k != "x"}
    return SitingResult(
        model=model.name, radius=pr.radius, cutoff=pr.cutoff, p=p, capacitated=capacitated, status=res["status"],
        gap=res["gap"], objective=objective, solver_objective=res["objective"], mip_gap_tolerance=opts["mip_gap"],
        time_limit=opts["time_limit"], build_seconds=max(total_s - res["seconds"], 0.0), solve_seconds=res["seconds"],
        has_solution=has, sites=sites if has else sites.iloc[0:0], assignment=assignment, total_weight=float(w.sum()),
        reachable_weight=float(w[pr.reach].sum()), covered_weight=covered_weight if has else 0.0,
        covered_before=covered_before, served_weight=served_weight if has else 0.0, mean_distance_m=mean_d if has else None,
        p95_distance_m=p95 if has else None, unreachable=unreachable, unserved=unserved, worst_grids=worst_grids,
        notes=notes, details=details)
