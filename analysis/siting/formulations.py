"""The uncapacitated formulations solved in one go: set covering (one row per distinct set of
covering candidates), maximal covering (p sites, z_i ≤ Σ y_j) and the compact strong
p-median (x_ij ≤ y_j; kept for cross-checks, ``method="compact"``; Benders is the default).

Each takes the prepared input and returns (open mask over new sites, solver info, extra)."""
from __future__ import annotations

import time

import numpy as np

from analysis.siting.heuristic import greedy
from analysis.siting.inputs import INF, Prepared, cover_rows
from analysis.siting.mip import Mip, strip_x, trivial


def lscp_cover(pr: Prepared, opts: dict) -> tuple[np.ndarray | None, dict, dict]:
    """Returns (open new-site mask over new sites, solver info, assignment override or {})."""
    inp = pr.inp
    cov = pr.pd_ <= pr.radius
    ci, cj = pr.pi[cov], pr.pj[cov]
    by_existing = np.zeros(inp.n_demand, bool)
    by_existing[ci[inp.existing[cj]]] = True
    todo = pr.reach & ~by_existing
    sel = todo[ci] & ~inp.existing[cj]
    sets, _, _ = cover_rows(ci[sel], pr.new_pos[cj[sel]], inp.weight)
    if not sets:
        return np.zeros(len(pr.new), bool), trivial(), {}
    used = np.unique(np.concatenate([np.array(s) for s in sets]))
    m = Mip()
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


def mclp_cover(pr: Prepared, p: int, opts: dict, radius: float | None = None) -> tuple[np.ndarray | None, dict, dict]:
    inp = pr.inp
    radius = pr.radius if radius is None else radius
    cov = pr.pd_ <= radius
    ci, cj = pr.pi[cov], pr.pj[cov]
    by_existing = np.zeros(inp.n_demand, bool)
    by_existing[ci[inp.existing[cj]]] = True
    todo = pr.reach & ~by_existing
    sel = todo[ci] & ~inp.existing[cj]
    n_new = len(pr.new)
    m = Mip()
    y = m.cols(np.zeros(n_new), 0, 1, integer=True)
    sets, w, _ = cover_rows(ci[sel], pr.new_pos[cj[sel]], inp.weight)
    if sets:
        z = m.cols(w, 0, 1)
        lens = np.array([len(s) for s in sets])
        rows = np.concatenate([np.arange(len(sets)), np.repeat(np.arange(len(sets)), lens)])
        cols = np.concatenate([z, y[np.concatenate([np.array(s) for s in sets])]])
        vals = np.concatenate([np.ones(len(sets)), -np.ones(lens.sum())])
        m.rows(len(sets), -INF, 0, rows, cols, vals)
    m.rows(1, p, p, np.zeros(n_new), y, 1.0)
    if n_new == 0:
        return np.zeros(0, bool), trivial(), {}
    # HiGHS's presolve probes every binary against the cardinality row; on covering models
    # that took 16 s of a 16.3 s solve on the demo (p=1), and never paid for itself here
    res = m.solve(True, opts["time_limit"], opts["mip_gap"], options={"presolve": "off", **opts["highs"]})
    if res["x"] is None:
        return None, res, {}
    return res["x"][y] > 0.5, res, {}


def pmedian_compact(pr: Prepared, p: int, opts: dict) -> tuple[np.ndarray | None, dict, dict]:
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
        open1, phase1, _ = mclp_cover(pr, p, opts, radius=pr.cutoff)
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
    m = Mip()
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
        return np.zeros(n_new, bool), trivial(), {"phase1": strip_x(phase1)}
    # A feasible start, so that a run stopped by the clock still has a solution and a gap:
    # phase 1's sites (lexicographic), else a greedy choice; each demand to its nearest open site.
    y0 = open1 if penalty is None else greedy(xi, xj, xd, w, fb_cost / np.maximum(w[a_idx], 1e-12), a_row, n_new, p)
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
    res["phase1"] = strip_x(phase1)
    if phase1 and not phase1.get("optimal"):
        res["status"] = phase1["status"] if res["optimal"] else res["status"]
        res["optimal"] = False
    if res["x"] is None:
        return None, res, {}
    return res["x"][y] > 0.5, res, {}
