"""Capacitated variants of the three models: assignment columns for every pair,
Σ_i w_i x_ij ≤ C_j y_j, whole or split demand (see the package docstring)."""
from __future__ import annotations

import time

import numpy as np

from analysis.siting.inputs import INF, Prepared
from analysis.siting.mip import Mip, strip_x, trivial


def solve_capacitated(pr: Prepared, model: str, p: int | None, opts: dict) -> tuple[np.ndarray | None, dict, dict]:
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

    def build(objective: str, target: float | None = None) -> tuple[Mip, np.ndarray, np.ndarray, np.ndarray]:
        m = Mip()
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
        return np.zeros(n_new, bool), trivial(), {"pairs": (ai[:0], aj[:0], np.zeros(0))}
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
        res["phase1"] = strip_x(phase1)
        if not phase1["optimal"]:
            res["status"], res["optimal"] = (phase1["status"] if res["optimal"] else res["status"]), False
    if res["x"] is None:
        return None, res, {}
    share = res["x"][x]
    open_ = res["x"][y] > 0.5 if n_new else np.zeros(0, bool)
    keep = share > 1e-6
    return open_, res, {"pairs": (ai[keep], aj[keep], np.clip(share[keep], 0, 1))}
