"""The uncapacitated p-median by Benders decomposition on the radius (distance-level) form.

For demand point i with candidates sorted by distance d_1 ≤ d_2 ≤ … and a fallback F_i
(its nearest existing site, else the unserved penalty), its walking cost given the open
sites is the convex piecewise-linear function max over α of
α·a_i − Σ_l max(0, α − d_l)·y_l (α ∈ {d_l} ∪ {F_i}; a_i = 1, or 1 − u_s where u_s says
demand set s is left unserved in the lexicographic form). The master keeps y, one θ_i
per demand point and only the cuts θ_i ≥ α·a_i − Σ_l max(0, α − d_l)·y_l that were
needed: first rounds on the LP relaxation (warm-started dual simplex, ``lp_rounds``), then
integer solutions near the LP optimum and reduced-cost fixing (``round_and_fix``), then
integer rounds (HiGHS MIP, ``integer_rounds``) until the master's bound meets the true cost
of its answer. The LP bound equals the classical strong p-median bound, at a fraction of
its size (no x_ij, no x_ij ≤ y_j rows).

``solve_pmedian`` runs the steps; ``Master`` holds what they share (the arrays the cuts
are made of, the HiGHS object, the best known solution and the bound).
"""
from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field

import highspy
import numpy as np

from analysis.siting.formulations import mclp_cover
from analysis.siting.heuristic import greedy
from analysis.siting.inputs import INF, Prepared, cover_rows
from analysis.siting.mip import Mip, strip_x, trivial
from gis.solver import new_solver

TOL = 1e-9


@dataclass
class Master:
    """The master problem and the per-demand-point levels its cuts are made of."""

    A: int  # demand points with a candidate closer than their fallback
    n_new: int
    xi: np.ndarray  # pairs sorted by (demand, distance, site): demand, new-site position, distance
    xj: np.ndarray
    xd: np.ndarray
    ai: np.ndarray  # pair -> active demand row
    starts: np.ndarray  # first pair of each active demand row
    ends: np.ndarray  # last pair of each active demand row
    wa: np.ndarray  # weight per active demand row
    Fa: np.ndarray  # fallback distance per active demand row
    lexu: np.ndarray  # may be left unserved (lexicographic form)
    set_of: np.ndarray  # demand row -> its covering set (lexicographic form)
    y: np.ndarray  # column indices
    th: np.ndarray
    u: np.ndarray
    const: float  # cost of the demand settled outside the master
    mip: Mip
    sets: list = field(default_factory=list)
    W: np.ndarray = field(default_factory=lambda: np.zeros(0))
    target: float = 0.0
    h: highspy.Highs | None = None
    best: tuple = ()  # (cost, y, u, cost per demand row)
    lb: float = -INF
    n_cuts: int = 0

    def levels(self, yv: np.ndarray, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per demand point: a_i, the tight α at yv, and the cost there."""
        A, xi, xj, xd, ai, starts = self.A, self.xi, self.xj, self.xd, self.ai, self.starts
        a = np.ones(A)
        if len(uv):
            a[self.lexu] = 1 - uv[self.set_of[self.lexu]]
        cum = np.cumsum(yv[xj])
        base = np.where(starts > 0, cum[starts - 1], 0.0)
        within = cum - base[ai]
        hit = within >= a[ai] - 1e-9
        pos = np.where(hit, np.arange(len(xi)), len(xi))
        first = np.minimum.reduceat(pos, starts)
        found = first < len(xi)
        alpha = np.where(found, xd[np.minimum(first, len(xi) - 1)], np.where(np.isfinite(self.Fa), self.Fa, xd[self.ends]))
        beta = np.maximum(alpha[ai] - xd, 0.0)
        cost = alpha * a - np.bincount(ai, weights=beta * yv[xj], minlength=A)
        return a, alpha, cost

    def cuts(self, alpha: np.ndarray, which: np.ndarray) -> tuple:
        """Rows θ_i + Σ (α − d_l) y_l (+ α u_s) ≥ α for the demand points ``which``."""
        ai, xd = self.ai, self.xd
        row_of = np.full(self.A, -1)
        row_of[which] = np.arange(len(which))
        sel = (row_of[ai] >= 0) & (xd < alpha[ai])
        rows = [row_of[ai[sel]], np.arange(len(which))]
        cols = [self.y[self.xj[sel]], self.th[which]]
        vals = [alpha[ai[sel]] - xd[sel], np.ones(len(which))]
        lu = which[self.lexu[which]]
        if len(lu):
            rows.append(row_of[lu])
            cols.append(self.u[self.set_of[lu]])
            vals.append(alpha[lu])
        return len(which), alpha[which], np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)

    def add_rows(self, n, lo, hi, r, c, v) -> None:
        order_ = np.argsort(r, kind="stable")
        r, c, v = r[order_], c[order_], v[order_]
        st = np.searchsorted(r, np.arange(n)).astype(np.int32)
        self.h.addRows(n, np.broadcast_to(np.asarray(lo, float), n).copy(), np.broadcast_to(np.asarray(hi, float), n).copy(),
                       len(v), st, c.astype(np.int32), v.astype(float))

    def add_cuts(self, alpha: np.ndarray, which: np.ndarray) -> None:
        n_, rhs, r, c, v = self.cuts(alpha, which)
        self.add_rows(n_, rhs, INF, r, c, v)
        self.n_cuts += n_

    def violated(self, thv: np.ndarray, cost: np.ndarray) -> np.ndarray:
        return np.flatnonzero(thv < cost - TOL * np.maximum(1.0, np.abs(cost)) - 1e-7)

    def true_cost(self, cost: np.ndarray) -> float:
        return float((self.wa * cost).sum()) + self.const


def build_master(pr: Prepared, p: int, opts: dict) -> tuple[Master | None, dict | None, tuple | None]:
    """The master with its first cuts and the start solution's cost as the best known.
    Returns (master, phase-1 info, early answer): the early answer when there is nothing to
    decide (no new site or no demand a new site could serve) or phase 1 found no solution."""
    inp = pr.inp
    w = inp.weight
    n_new = len(pr.new)
    ex = inp.existing[pr.pj]
    near_ex = np.full(inp.n_demand, INF)
    np.minimum.at(near_ex, pr.pi[ex], pr.pd_[ex])
    penalty = opts.get("unserved_penalty")
    lex = penalty is None
    phase1: dict = {}
    open1 = None
    if lex:
        open1, phase1, _ = mclp_cover(pr, p, {**opts, "time_limit": opts["time_limit"]}, radius=pr.cutoff)
        if open1 is None:
            return None, phase1, (None, phase1, {})
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
        return None, phase1, (np.zeros(n_new, bool), {**trivial(), "phase1": strip_x(phase1)}, {})
    ai = np.repeat(np.arange(A), np.diff(np.append(starts, len(xi))))
    ends = np.append(starts[1:], len(xi)) - 1
    wa, Fa = w[a_idx], F[a_idx]
    lexu = lex & ~np.isfinite(near_ex[a_idx])  # may be left unserved (lexicographic form)
    set_of = np.full(A, -1)
    m = Mip()
    y = m.cols(np.zeros(n_new), 0, 1)
    cap = np.where(np.isfinite(Fa), Fa, xd[ends])
    th = m.cols(wa, np.where(lexu, 0.0, xd[starts]), cap)  # θ_i ≥ d_1 unless it may go unserved
    m.rows(1, p, p, np.zeros(n_new), y, 1.0)
    u = np.zeros(0, np.int64)
    M = Master(A=A, n_new=n_new, xi=xi, xj=xj, xd=xd, ai=ai, starts=starts, ends=ends, wa=wa, Fa=Fa, lexu=lexu,
               set_of=set_of, y=y, th=th, u=u, const=const, mip=m)
    covered1 = None
    if lexu.any():
        sel = lexu[ai]
        sets, W, which = cover_rows(ai[sel], xj[sel], np.zeros(A))
        set_of[np.flatnonzero(lexu)] = which
        W = np.bincount(which, weights=wa[lexu], minlength=len(sets))
        u = m.cols(np.zeros(len(sets)), 0, 1)
        lens = np.array([len(s_) for s_ in sets])
        m.rows(len(sets), 1, INF, np.concatenate([np.arange(len(sets)), np.repeat(np.arange(len(sets)), lens)]),
               np.concatenate([u, y[np.concatenate([np.array(s_) for s_ in sets])]]), 1.0)  # u_s + Σ y ≥ 1
        covered1 = np.zeros(len(sets), bool)
        for k_, s_ in enumerate(sets):
            covered1[k_] = bool(open1[list(s_)].any())
        M.target = float(W[covered1].sum())
        m.rows(1, M.target * (1 - 1e-9) - 1e-9 - W.sum(), INF, np.zeros(len(sets)), u, -W)  # Σ W (1 − u) ≥ W*
        M.u, M.sets, M.W = u, sets, W

    # the first cuts: each demand point's nearest level, and the cuts at the start solution
    y0 = open1.astype(float) if lex else greedy(xi, xj, xd, w, Fa, np.searchsorted(a_idx, np.arange(inp.n_demand)).clip(0, A - 1),
                                                n_new, p).astype(float)
    u0 = np.zeros(len(u))
    if len(u):
        u0 = (~covered1).astype(float)
    _, alpha0, cost0 = M.levels(y0, u0)
    M.best = (M.true_cost(cost0), y0, u0, cost0)
    pending = [M.cuts(xd[starts], np.flatnonzero(lexu)), M.cuts(alpha0, np.arange(A))]
    h = new_solver()
    h.setOptionValue("random_seed", 0)
    for k_, v_ in (opts.get("highs") or {}).items():
        h.setOptionValue(k_, v_)
    cost_v = np.concatenate([c[0] for c in m._cols])
    lo_v = np.concatenate([c[1] for c in m._cols])
    hi_v = np.concatenate([c[2] for c in m._cols])
    empty_i, empty_f = np.array([], dtype=np.int32), np.array([], dtype=float)
    h.addCols(m.n_cols, cost_v, lo_v, hi_v, 0, empty_i, empty_i, empty_f)
    M.h = h
    r_all = np.concatenate([c[0] for c in m._coo])
    M.add_rows(m.n_rows, np.concatenate(m._rows_lo), np.concatenate(m._rows_hi), r_all,
               np.concatenate([c[1] for c in m._coo]), np.concatenate([c[2] for c in m._coo]))
    for n_, rhs, r, c, v in pending:
        M.add_rows(n_, rhs, INF, r, c, v)
    M.n_cuts = 2 * A
    return M, phase1, None


def lp_rounds(M: Master, deadline: float) -> int:
    """Cuts on the LP relaxation until none is violated or the bound tails off; returns the rounds run."""
    h = M.h
    scale = max(M.best[0], 1.0)
    rounds = 0
    last_lbs: list[float] = []
    while time.perf_counter() < deadline and rounds < 500:
        h.setOptionValue("time_limit", max(deadline - time.perf_counter(), 0.01))
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            break
        rounds += 1
        M.lb = max(M.lb, float(h.getInfo().objective_function_value) + M.const)
        x = np.array(h.getSolution().col_value)
        yv, thv, uv = x[M.y], x[M.th], x[M.u] if len(M.u) else np.zeros(0)
        _, alpha, cost = M.levels(yv, uv)
        viol = M.violated(thv, cost)
        if len(viol) == 0:
            break
        M.add_cuts(alpha, viol)
        last_lbs.append(M.lb)
        if len(last_lbs) > 8 and last_lbs[-1] - last_lbs[-9] <= 1e-6 * scale:
            break  # tailing off: let branching finish the job
    return rounds


def _evaluate(M: Master, open_sites: np.ndarray) -> None:
    """The true cost of opening ``open_sites``; kept if it beats the best known."""
    yv = np.zeros(M.n_new)
    yv[open_sites] = 1
    uv = np.zeros(len(M.u))
    if len(M.u):
        cov_s = np.array([bool(yv[list(s_)].any()) for s_ in M.sets])
        if float(M.W[cov_s].sum()) < M.target * (1 - 1e-9) - 1e-9:
            return
        uv = (~cov_s).astype(float)
    _, _, cost = M.levels(yv, uv)
    ub = M.true_cost(cost)
    if ub < M.best[0]:
        M.best = (ub, yv, uv, cost)


def round_and_fix(M: Master, p: int) -> int:
    """After the LP rounds: integer solutions near the LP optimum, reduced-cost fixing and
    dropping the cuts that are slack; returns how many sites were fixed."""
    h = M.h
    sol_ = h.getSolution()
    x = np.array(sol_.col_value)
    # integer solutions near the LP optimum: its sites at 1, completed from its
    # fractional sites (every completion when there are few, else greedily)
    xy = x[M.y]
    ones = np.flatnonzero(xy >= 1 - 1e-6)[:p]
    frac = np.flatnonzero((xy > 1e-6) & (xy < 1 - 1e-6))
    frac = frac[np.argsort(-xy[frac], kind="stable")][:30]
    r_ = p - len(ones)
    if 0 <= r_ <= len(frac) and math.comb(len(frac), r_) <= 300:
        for extra in itertools.combinations(frac.tolist(), r_):
            _evaluate(M, np.concatenate([ones, np.array(extra, dtype=np.int64)]))
    else:
        order_ = np.argsort(-xy, kind="stable")
        _evaluate(M, order_[:p])
    # reduced-cost fixing: a site whose reduced cost alone lifts the LP bound above the
    # best known cost cannot change in an improving solution (exact, the master LP
    # with its cuts being a relaxation of the whole problem)
    y = M.y
    rc = np.array(sol_.col_dual)[y]
    lp_obj = float(h.getInfo().objective_function_value) + M.const
    slack = M.best[0] - lp_obj + 1e-9 * abs(M.best[0])
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
    base_rows = M.mip.n_rows
    loose = np.flatnonzero(act[base_rows:] > lo_r[base_rows:] + 1e-6 * np.maximum(1.0, np.abs(lo_r[base_rows:]))) + base_rows
    if len(loose):
        h.deleteRows(len(loose), loose.astype(np.int32))
        M.n_cuts -= len(loose)
    return fixed


def integer_rounds(M: Master, deadline: float, mip_gap: float) -> tuple[str, bool, int, int]:
    """HiGHS MIP on the master, a cut round after each answer, until its bound meets the true
    cost of the best answer; returns (status, optimal, nodes, rounds)."""
    h = M.h
    n_new, y, u = M.n_new, M.y, M.u
    h.changeColsIntegrality(n_new, y.astype(np.int32), np.full(n_new, highspy.HighsVarType.kInteger, dtype=np.uint8))
    h.setOptionValue("mip_rel_gap", float(mip_gap))
    status, optimal = "time_limit", False
    nodes = rounds = 0
    while time.perf_counter() < deadline:
        # (no setSolution here: on a Highs object that has already solved the LP rounds,
        # HiGHS 1.16 then reported the start as "optimal" with another objective value;
        # the best solution is kept here instead, and only its true cost counts)
        h.setOptionValue("time_limit", max(deadline - time.perf_counter(), 0.01))
        h.run()
        rounds += 1
        info = h.getInfo()
        ms = h.getModelStatus()
        nodes += int(info.mip_node_count)
        if np.isfinite(info.mip_dual_bound):
            M.lb = max(M.lb, float(info.mip_dual_bound) + M.const)
        if info.primal_solution_status != 2:
            break
        x = np.array(h.getSolution().col_value)
        yv = np.round(x[y])
        uv = x[u] if len(u) else np.zeros(0)
        if len(u):  # the cheapest u for these sites: unserve only what the target allows
            uv = np.clip(np.round(uv, 9), 0, 1)
        _, alpha, cost = M.levels(yv, uv)
        ub = M.true_cost(cost)
        if ub < M.best[0]:
            M.best = (ub, yv, uv, cost)
        if ms == highspy.HighsModelStatus.kOptimal and M.best[0] - M.lb <= max(mip_gap * abs(M.best[0]), 1e-6):
            status, optimal = "optimal", True
            break
        thv = x[M.th]
        viol = M.violated(thv, cost)
        if ms != highspy.HighsModelStatus.kOptimal:
            status = "time_limit" if ms == highspy.HighsModelStatus.kTimeLimit else h.modelStatusToString(ms).lower().replace(" ", "_")
            break
        if len(viol) == 0:  # master optimal and consistent: its bound is the optimum
            M.lb = max(M.lb, M.best[0] if abs(ub - M.best[0]) < 1e-9 else M.lb)
            status, optimal = "optimal", True
            break
        M.add_cuts(alpha, viol)
    return status, optimal, nodes, rounds


def solve_pmedian(pr: Prepared, p: int, opts: dict) -> tuple[np.ndarray | None, dict, dict]:
    """The whole decomposition: master, LP rounds, rounding and fixing, integer rounds."""
    t_start = time.perf_counter()
    deadline = t_start + opts["time_limit"]
    M, phase1, early = build_master(pr, p, opts)
    if early is not None:
        return early
    n_lp = lp_rounds(M, deadline)
    lp_bound = M.lb
    fixed = 0
    if M.h.getModelStatus() == highspy.HighsModelStatus.kOptimal and n_lp:
        fixed = round_and_fix(M, p)
    status, optimal, nodes, n_mip = integer_rounds(M, deadline, opts["mip_gap"])
    seconds = time.perf_counter() - t_start
    ub, lb = M.best[0], M.lb
    gap = 0.0 if optimal else (None if not np.isfinite(lb) else max(ub - lb, 0.0) / max(abs(ub), 1e-12))
    if phase1 and not phase1.get("optimal"):
        optimal = False
        status = phase1["status"]
    res = {"status": status, "optimal": optimal, "gap": gap, "objective": ub, "bound": lb if np.isfinite(lb) else None,
           "x": None, "seconds": seconds, "nodes": nodes, "cols": M.mip.n_cols, "rows": M.mip.n_rows + M.n_cuts, "nonzeros": None,
           "method": "benders", "lp_rounds": n_lp, "mip_rounds": n_mip, "cuts": M.n_cuts,
           "lp_bound": lp_bound if np.isfinite(lp_bound) else None, "fixed_by_reduced_cost": fixed,
           "phase1": strip_x(phase1)}
    return M.best[1] > 0.5, res, {}
