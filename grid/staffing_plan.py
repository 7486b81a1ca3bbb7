"""Automatic assignment proposal: full-time workers to grids, solved exactly with HiGHS.

The model (a small mixed-integer programme per scope):

- x[w,g] ∈ {0,1}: worker w serves grid g. Candidates are pairs in the same community
  with the worker's home/office within the distance rule, plus every current pair.
- each comprehensive grid needs k_g = ⌈households / cap⌉ workers:
  Σ_w x[w,g] + first_g + extra_g ≥ k_g, where first_g ∈ [0,1] is "no worker at all"
  (一格一员, the most expensive thing to leave) and extra_g the missing second, third…
- a worker's load Σ_g x[w,g]·households_g/k_g ≤ cap + over_w, and Σ_g x[w,g] ≤ max grids;
- load ≤ L for every worker, so that a small weight on L evens workloads out.

Objective, in order of weight: uncovered grids, missing extra workers, households over
the cap, changes to current assignments, walking distance, the highest load. The
solver's status is reported as it is (optimal, or the gap when the time limit hit).
Whatever the optimum leaves unmet is said in words ("需增加2名专职网格员 in 首义社区").
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import highspy
import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from gis.measure import metric_srid
from gis.messages import msg
from gis.settings import get_settings
from gis.solver import new_solver
from grid.assign import assign, unassign
from layers.cadres import worker_ratio

W_FIRST, W_EXTRA, W_FAR, W_OVER, W_CHANGE, W_KM, W_MAXLOAD = 100_000.0, 10_000.0, 1_000.0, 10.0, 50.0, 1.0, 0.01


@dataclass
class Change:
    action: str  # add | remove
    cadre_no: str
    name: str
    grid_code: str
    community_code: str
    distance_m: float | None
    households_after: int  # the worker's load after the whole proposal
    fixes: str  # which rule it serves
    expected_version: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class StaffingProposal:
    scope: str | None
    status: str
    gap: float | None
    objective: float | None
    changes: list[Change] = field(default_factory=list)
    unmet: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"scope": self.scope, "status": self.status, "gap": self.gap, "objective": self.objective,
                "changes": [c.to_dict() for c in self.changes], "unmet": self.unmet}




def _inputs(conn: Connection, community: str | None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    srid = metric_srid(conn)
    grids = pd.read_sql(text("""
        SELECT g.id, g.code, g.community_code, c.name AS community_name, g.staff_version,
               coalesce((SELECT sum(households) FROM buildings b WHERE b.grid_id = g.id), 0)::int AS households
        FROM grids g JOIN communities c ON c.code = g.community_code
        WHERE g.valid_to IS NULL AND g.grid_type = 'comprehensive' AND (CAST(:c AS text) IS NULL OR g.community_code = :c)
        ORDER BY g.code"""), conn, params={"c": community})
    workers = pd.read_sql(text("""
        SELECT id, cadre_no, name, community_code FROM cadres
        WHERE role = 'full_time_worker' AND active AND (CAST(:c AS text) IS NULL OR community_code = :c OR id IN (
              SELECT a.cadre_id FROM assignments a JOIN grids g ON g.id = a.grid_id
              WHERE a.valid_to IS NULL AND g.community_code = :c))
        ORDER BY cadre_no"""), conn, params={"c": community})
    pairs = pd.read_sql(text(f"""
        SELECT w.id AS cadre_id, g.id AS grid_id,
               CASE WHEN w.geom IS NULL THEN NULL ELSE ST_Distance(ST_Transform(w.geom, {srid}), ST_Transform(g.geom, {srid})) END AS distance_m,
               EXISTS (SELECT 1 FROM assignments a WHERE a.cadre_id = w.id AND a.grid_id = g.id AND a.valid_to IS NULL
                       AND a.role = 'full_time_worker') AS current
        FROM cadres w JOIN grids g ON g.valid_to IS NULL AND g.grid_type = 'comprehensive'
        WHERE w.id = ANY(:w) AND g.id = ANY(:g)"""), conn, params={"w": workers["id"].tolist(), "g": grids["id"].tolist()})
    return grids, workers, pairs


def propose(conn: Connection, community: str | None = None, time_limit: float = 30.0) -> StaffingProposal:
    s = get_settings()
    cap, max_grids, max_d = s.worker_households_max, s.max_grids_per_worker, s.worker_max_distance_m
    grids, workers, pairs = _inputs(conn, community)
    gi = {gid: i for i, gid in enumerate(grids["id"])}
    wi = {wid: i for i, wid in enumerate(workers["id"])}
    wcomm = dict(zip(workers["id"], workers["community_code"]))
    gcomm = dict(zip(grids["id"], grids["community_code"]))
    ok = pairs["current"] | (
        (pairs["cadre_id"].map(wcomm).isna() | (pairs["cadre_id"].map(wcomm) == pairs["grid_id"].map(gcomm)))
        & (pairs["distance_m"].isna() | (pairs["distance_m"] <= max_d)))
    cand = pairs[ok].sort_values(["cadre_id", "grid_id"]).reset_index(drop=True)
    hh = grids["households"].to_numpy()
    k = np.maximum(1, np.ceil(hh / cap)).astype(int)
    n_x, n_g, n_w = len(cand), len(grids), len(workers)

    # columns: x (n_x) | first (n_g) | extra (n_g) | over (n_w) | L (1)
    d_km = cand["distance_m"].fillna(0).to_numpy() / 1000.0
    cost = np.concatenate([
        W_KM * d_km - W_CHANGE * cand["current"].to_numpy()  # keeping a current pair earns what changing it costs
        + W_FAR * (cand["distance_m"].fillna(0).to_numpy() > max_d),  # a kept far pair still breaks the distance rule
        np.full(n_g, W_FIRST), np.full(n_g, W_EXTRA), np.full(n_w, W_OVER), [W_MAXLOAD]])
    lower = np.zeros(len(cost))
    upper = np.concatenate([np.ones(n_x), np.ones(n_g), np.maximum(k - 1, 0), np.full(n_w, np.inf), [np.inf]])
    h = new_solver()
    h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("random_seed", 0)
    h.addCols(len(cost), cost, lower, upper, 0, np.array([], dtype=np.int32), np.array([], dtype=np.int32), np.array([]))
    h.changeColsIntegrality(n_x, np.arange(n_x, dtype=np.int32), np.full(n_x, highspy.HighsVarType.kInteger, dtype=np.uint8))
    rows_lo, rows_hi, starts, index, value = [], [], [], [], []

    def row(lo: float, hi: float, idx: list[int], val: list[float]) -> None:
        rows_lo.append(lo), rows_hi.append(hi), starts.append(len(index))
        index.extend(idx), value.extend(val)

    xg = cand["grid_id"].map(gi).to_numpy(dtype=np.int64)  # integer even with no candidates (an empty float array cannot index)
    xw = cand["cadre_id"].map(wi).to_numpy(dtype=np.int64)
    for g in range(n_g):  # coverage
        mine = np.flatnonzero(xg == g).tolist()
        row(float(k[g]), np.inf, mine + [n_x + g, n_x + n_g + g], [1.0] * len(mine) + [1.0, 1.0])
    share = hh[xg] / k[xg]
    for w in range(n_w):
        mine = np.flatnonzero(xw == w).tolist()
        row(-np.inf, float(cap), mine + [n_x + 2 * n_g + w], share[mine].tolist() + [-1.0])  # load ≤ cap + over
        row(-np.inf, float(max_grids), mine, [1.0] * len(mine))  # grids per worker
        row(-np.inf, 0.0, mine + [n_x + 2 * n_g + n_w], share[mine].tolist() + [-1.0])  # load ≤ L
    h.addRows(len(rows_lo), np.array(rows_lo), np.array(rows_hi), len(index),
              np.array(starts, dtype=np.int32), np.array(index, dtype=np.int32), np.array(value))
    h.run()
    model_status = h.getModelStatus()
    info = h.getInfo()
    status = h.modelStatusToString(model_status).lower()
    has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
    proposal = StaffingProposal(community, "optimal" if model_status == highspy.HighsModelStatus.kOptimal else status,
                                None if model_status == highspy.HighsModelStatus.kOptimal else float(info.mip_gap),
                                float(info.objective_function_value) if has_solution else None)
    if not has_solution:
        proposal.unmet.append(msg("solver.no_solution", status=status))
        return proposal
    sol = np.array(h.getSolution().col_value)
    chosen = sol[:n_x] > 0.5
    load = np.zeros(n_w)
    np.add.at(load, xw[chosen], share[chosen])
    current = cand["current"].to_numpy(dtype=bool)
    before = np.zeros(n_g, dtype=int)
    np.add.at(before, xg[current], 1)
    load_before = np.zeros(n_w)
    np.add.at(load_before, xw[current], (hh[xg] / np.maximum(before[xg], 1))[current])
    version = dict(zip(grids["id"], grids["staff_version"]))
    for i, r in cand.iterrows():
        if chosen[i] == bool(r["current"]):
            continue
        g, w = xg[i], xw[i]
        name = workers["name"].iloc[w]
        if chosen[i]:
            fixes = msg("plan.fix_first_worker") if before[g] == 0 else msg("plan.fix_takes_over")
        elif pd.notna(r["distance_m"]) and r["distance_m"] > max_d:
            fixes = msg("plan.fix_distance", name=name, distance=r["distance_m"])
        else:
            fixes = msg("plan.fix_load", name=name, before=load_before[w], after=load[w])
        proposal.changes.append(Change(
            "add" if chosen[i] else "remove", workers["cadre_no"].iloc[w], workers["name"].iloc[w], grids["code"].iloc[g],
            grids["community_code"].iloc[g], None if pd.isna(r["distance_m"]) else round(float(r["distance_m"]), 0),
            int(round(load[w])), fixes, int(version[grids["id"].iloc[g]])))
    proposal.changes.sort(key=lambda c: (c.action != "remove", c.grid_code, c.cadre_no))
    first, extra, over = sol[n_x:n_x + n_g], sol[n_x + n_g:n_x + 2 * n_g], sol[n_x + 2 * n_g:n_x + 2 * n_g + n_w]
    for comm, frame in grids.assign(first=first, extra=extra).groupby("community_code"):
        missing = int(round(frame["first"].sum() + frame["extra"].sum()))
        if missing:
            uncovered = frame.loc[frame["first"] > 0.5, "code"].tolist()
            name = frame["community_name"].iloc[0]
            proposal.unmet.append(msg("plan.more_workers_grids", community=name, code=comm, missing=missing, grids=", ".join(uncovered))
                                  if uncovered else msg("plan.more_workers", community=name, code=comm, missing=missing))

    for r in worker_ratio(conn, community).itertuples():
        if r.missing > 0 and community in (None, r.community_code):
            proposal.unmet.append(msg("plan.ratio_short", per=s.households_per_worker, community=r.community_name, missing=r.missing,
                                      households=r.households, workers=r.workers))
    for w in np.flatnonzero(over > 0.5):
        proposal.unmet.append(msg("plan.still_over", name=workers["name"].iloc[w], cadre=workers["cadre_no"].iloc[w], load=load[w], cap=cap))
    return proposal


def accept(conn: Connection, proposal: StaffingProposal, which: list[int] | None = None, actor: str | None = None) -> list[Change]:
    """Apply all changes, or those at the given positions; removals first. Each change names the
    grid version it was planned on, so a grid edited meanwhile raises ``Conflict``."""
    picked = [c for i, c in enumerate(proposal.changes) if which is None or i in which]
    seen: dict[str, int] = {}
    for c in sorted(picked, key=lambda c: c.action != "remove"):
        expected = seen.get(c.grid_code, c.expected_version)
        op = unassign if c.action == "remove" else assign
        seen[c.grid_code] = op(conn, c.cadre_no, grid_code=c.grid_code, expected_version=expected, actor=actor,
                               **({"role": "full_time_worker"} if c.action == "add" else {}))
    return picked


def workers_needed(households: int, cap: int) -> int:
    return max(1, math.ceil(households / cap))
