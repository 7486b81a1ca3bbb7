"""Cadres and assignment: rules on planted cases, the exact proposal on the demo, and
concurrent edits in two real database sessions."""
from __future__ import annotations

import json
import os
import subprocess
import threading

import pytest
from sqlalchemy import text

from analysis import staffing
from gis.db import owner_engine
from gis.settings import ROOT
from grid import staffing_plan
from grid.assign import AssignError, Conflict, assign, staff, target, unassign
from tests.conftest import count

GRID = "420106010002001"


def _ft(conn, grid):
    return [s["cadre_no"] for s in staff(conn, target(conn, grid)) if s["role"] == "full_time_worker"]


def test_demo_planted_gaps_are_found(demo, conn):
    gaps = staffing.gaps(conn)
    by_rule = gaps.groupby("rule").size().to_dict()
    assert by_rule["one_grid_one_worker"] == 5
    assert set(gaps[gaps.rule == "assigned_nowhere"].cadre_no) == {"C0078", "C0079"}
    far = gaps[gaps.rule == "worker_distance"]
    assert list(far.cadre_no) == ["C0039"] and far.iloc[0].value > 2000
    heavy = gaps[gaps.rule == "worker_load"].set_index("cadre_no")["value"]
    assert {"C0075", "C0076", "C0077"} <= set(heavy.index) and (heavy > 500).all()
    assert all(gaps.rule_name.str.len() > 0)  # every gap names its rule


def test_rules_on_planted_cases(demo, conn):
    worker = _ft(conn, GRID)[0]
    # part-time workers do not count toward 一格一员
    unassign(conn, worker, grid_code=GRID)
    assign(conn, "C0078", grid_code=GRID, role="part_time_worker")
    grids = staffing.grids(conn).set_index("code")
    assert grids.loc[GRID, "status"] == "no_worker"
    # a worker on three grids breaks the grid count and the load rule
    others = conn.execute(text("SELECT code FROM grids WHERE community_code = '420106010002' AND valid_to IS NULL AND grid_type = 'comprehensive' "
                               "AND code <> :g ORDER BY code LIMIT 3"), {"g": GRID}).scalars().all()
    for g in others:
        assign(conn, "C0079", grid_code=g, role="full_time_worker")
    row = staffing.workers(conn).set_index("cadre_no").loc["C0079"]
    assert row.grids == 3 and "max_grids_per_worker" in row.broken and "worker_load" in row.broken
    # moving a worker's home 5 km away breaks the distance rule
    conn.execute(text("UPDATE cadres SET geom = ST_Translate(geom, 0.05, 0) WHERE cadre_no = 'C0079'"))
    assert "worker_distance" in staffing.workers(conn).set_index("cadre_no").loc["C0079"].broken


def test_assignment_keeps_history_and_audit(demo, conn):
    worker = _ft(conn, GRID)[0]
    v0 = target(conn, GRID).version
    v1 = unassign(conn, worker, grid_code=GRID, expected_version=v0)
    v2 = assign(conn, "C0078", grid_code=GRID, expected_version=v1)
    assert v2 == v0 + 2
    assert _ft(conn, GRID) == ["C0078"]
    ended = conn.execute(text("""SELECT a.valid_to FROM assignments a JOIN cadres c ON c.id = a.cadre_id JOIN grids g ON g.id = a.grid_id
                                 WHERE c.cadre_no = :w AND g.code = :g AND g.valid_to IS NULL"""), {"w": worker, "g": GRID}).scalars().all()
    assert ended and all(v is not None for v in ended)
    logged = conn.execute(text("SELECT action, before, after FROM audit_log WHERE row_key = :k ORDER BY id"), {"k": f"grid:{GRID}"}).all()
    assert [r.action for r in logged] == ["unassign", "assign"]
    assert any(s["cadre_no"] == worker for s in logged[0].before["staff"]) and logged[1].after["cadre_no"] == "C0078"
    with pytest.raises(Conflict):
        assign(conn, "C0079", grid_code=GRID, expected_version=v0)  # stale version
    with pytest.raises(AssignError):
        unassign(conn, "C0079", grid_code=GRID)  # not assigned
    with pytest.raises(AssignError):
        assign(conn, "NOPE", grid_code=GRID)


def test_concurrent_edits_conflict_instead_of_overwriting(demo):
    """Two real sessions load version v and both assign a worker: the second is told."""
    engine = owner_engine()
    with engine.connect() as c:
        v = target(c, GRID).version
        before = count(c, "assignments", "valid_to IS NULL")
    first = engine.connect()
    tx = first.begin()
    assign(first, "C0078", grid_code=GRID, expected_version=v)  # holds the grid's row lock
    outcome: dict = {}

    def second() -> None:
        with engine.connect() as c2:
            try:
                with c2.begin():
                    assign(c2, "C0079", grid_code=GRID, expected_version=v)
                outcome["ok"] = True
            except Conflict as exc:
                outcome["conflict"] = exc

    t = threading.Thread(target=second)
    t.start()
    t.join(timeout=1.0)
    assert t.is_alive(), "the second session must wait for the first one's lock"
    tx.commit()
    t.join(timeout=30)
    first.close()
    try:
        exc = outcome.get("conflict")
        assert exc is not None and "ok" not in outcome
        assert exc.current == v + 1 and "C0078" in [s["cadre_no"] for s in exc.staff]
        assert "conflict" in str(exc) and "冲突" in str(exc)
        with engine.connect() as c:
            assert count(c, "assignments", "valid_to IS NULL") == before + 1
    finally:
        with engine.begin() as c:
            c.execute(text("""DELETE FROM assignments WHERE cadre_id = (SELECT id FROM cadres WHERE cadre_no = 'C0078')
                              AND grid_id = (SELECT id FROM grids WHERE code = :g AND valid_to IS NULL)"""), {"g": GRID})
            c.execute(text("UPDATE grids SET staff_version = :v WHERE code = :g AND valid_to IS NULL"), {"v": v, "g": GRID})
            c.execute(text("DELETE FROM audit_log WHERE row_key = :k"), {"k": f"grid:{GRID}"})


def test_proposal_fixes_what_can_be_fixed_and_reports_the_rest(demo, conn):
    plan = staffing_plan.propose(conn, time_limit=60)
    assert plan.status == "optimal" and plan.gap is None
    assert plan.changes and all(c.fixes for c in plan.changes)
    adds = {(c.cadre_no, c.grid_code) for c in plan.changes if c.action == "add"}
    # every grid without a worker gets one
    for g in staffing.gaps(conn).query("rule == 'one_grid_one_worker'").grid_code:
        assert any(grid == g for _, grid in adds), g
    # the idle workers are put to work, the distant one is moved off the far grid
    assert {"C0078", "C0079"} <= {w for w, _ in adds}
    assert ("C0039", "420106010004003") in {(c.cadre_no, c.grid_code) for c in plan.changes if c.action == "remove"}
    assert any("需增加" in u and "more full-time workers needed" in u for u in plan.unmet)
    staffing_plan.accept(conn, plan, actor="test")
    after = staffing.gaps(conn).groupby("rule").size().to_dict()
    assert "one_grid_one_worker" not in after and "assigned_nowhere" not in after and "worker_distance" not in after
    # what remains overloaded is exactly what the proposal said it could not fix
    still = set(staffing.gaps(conn).query("rule == 'worker_load'").cadre_no)
    said = {u.split("(")[1].split(")")[0] for u in plan.unmet if "still carries" in u}
    assert still == said


def test_accepting_part_of_a_stale_proposal_conflicts(demo, conn):
    plan = staffing_plan.propose(conn, "420106010002")
    add = next(i for i, c in enumerate(plan.changes) if c.action == "add")
    assign(conn, "C0143", grid_code=plan.changes[add].grid_code, role="volunteer")  # someone edits the grid meanwhile
    with pytest.raises(Conflict):
        staffing_plan.accept(conn, plan, which=[add])


def test_staffing_cli(demo):
    env = {**os.environ, "WANGGE_DB_NAME": os.environ.get("WANGGE_DB_NAME", "wangge_test")}
    run = lambda *a: subprocess.run([str(ROOT / ".venv/bin/wangge"), *a], capture_output=True, text=True, env=env, timeout=180)
    gaps = run("gaps", "staffing", "--json")
    assert gaps.returncode == 0, gaps.stderr
    body = json.loads(gaps.stdout)
    assert any(g["rule"] == "one_grid_one_worker" for g in body["gaps"]) and body["summary"][-1]["no_worker"] == 5
    plan = json.loads(run("assign", "propose", "--community", "420106010003", "--json").stdout)
    assert plan["status"] == "optimal" and plan["accepted"] is False and plan["changes"]
    bad = run("assign", "set", GRID, "NOPE", "--json")
    assert bad.returncode == 1 and "NOPE" in json.loads(bad.stdout)["message"]
    stale = run("assign", "remove", GRID, "C0078", "--expect-version", "9999", "--json")
    assert stale.returncode == 4 and json.loads(stale.stdout)["conflict"] is True


def test_state_equals_its_parts(demo, conn):
    """The staffing screen reads ``state()`` (each part computed once); it must equal the parts asked for
    one by one, for the sub-district and for one community."""
    import pandas as pd

    for community in (None, "420106010002"):
        now = staffing.state(conn, community)
        pd.testing.assert_frame_equal(now.gaps, staffing.gaps(conn, community))
        pd.testing.assert_frame_equal(now.summary, staffing.summary(conn, community))
        pd.testing.assert_frame_equal(now.workers, staffing.workers(conn, community))
        one = staffing.grids(conn, community)
        assert list(now.grids["code"]) == list(one["code"]) and list(now.grids["status"]) == list(one["status"])
        assert now.grids.geometry.geom_equals(one.geometry).all() and len(now.grids) > 0
