"""Indicators (issue 16 points 4 and 8): the "due" denominator, every formula against a
hand-counted history, and the SQL figures equal to those replayed from the transition log."""
from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from analysis import event_kpi as kpi
from gis import scope as scopes
from gis.db import app_engine, owner_engine
from gis.problems import ImportFailed
from gis.scope import SYSTEM, Scope, use_scope
from gis.workclock import BEIJING, get_clock
from layers import event_import, events as ev

HEADER = "id,class_code,lon,lat,reported_at,filed_at,dispatched_at,handled_at,verified_at,closed_at,rework_count,deferred\n"


@pytest.fixture
def owner(demo):
    with use_scope(SYSTEM), owner_engine().connect() as c:
        t = c.begin()
        scopes.apply(c.connection.dbapi_connection, SYSTEM)
        c.execute(text("DELETE FROM events"))  # this transaction only (rolled back)
        try:
            yield c
        finally:
            t.rollback()


def point(c, n=0):
    return c.execute(text("""SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)), code FROM grids
                             WHERE valid_to IS NULL ORDER BY code OFFSET :n LIMIT 1"""), {"n": n}).one()


def test_due_denominator_and_every_formula(owner, tmp_path):
    x, y, grid = point(owner)
    # March 2026 (Mon 2 Mar … ); exposed rubbish E0101: 1 working day (7 h) to handle
    rows = [
        # A: dispatched Mon 2 Mar 09:00 → due Tue 3 Mar 09:00; handled in time, closed 3 Mar 10:00
        "A,E0101,{x},{y},2026-03-02 08:40,2026-03-02 08:50,2026-03-02 09:00,2026-03-02 15:00,2026-03-02 16:00,2026-03-03 10:00,0,否",
        # B: due Tue 3 Mar 09:00; handled late (Wed), closed Wed; one rework
        "B,E0101,{x},{y},2026-03-02 08:40,2026-03-02 08:50,2026-03-02 09:00,2026-03-04 09:00,2026-03-04 10:00,2026-03-04 11:00,1,否",
        # C: still open, deadline passed (overdue now)
        "C,E0101,{x},{y},2026-03-05 08:40,2026-03-05 08:50,2026-03-05 09:00,,,,0,否",
        # D: illegal building (15 working days) dispatched 30 Mar: due 21 Apr, still open: not due in March
        "D,E0303,{x},{y},2026-03-30 08:40,2026-03-30 08:50,2026-03-30 09:00,,,,0,否",
        # E: closed early in March though due in April: due (and on time) in March
        "E,E0303,{x},{y},2026-03-10 08:40,2026-03-10 08:50,2026-03-10 09:00,2026-03-12 09:00,2026-03-12 10:00,2026-03-12 11:00,0,否",
        # F: approved deferral: not due
        "F,E0101,{x},{y},2026-03-05 08:40,2026-03-05 08:50,2026-03-05 09:00,,,,0,是",
        # G: reported, not filed
        "G,E0101,{x},{y},2026-03-05 08:40,,,,,,0,否",
    ]
    f = tmp_path / "history.csv"
    f.write_text(HEADER + "\n".join(r.format(x=x, y=y) for r in rows) + "\n", encoding="utf-8")
    assert event_import.import_cases(owner, f)["cases"] == 7
    s, e = kpi.month_range("2026-03")
    as_of = datetime(2026, 3, 31, 18, 0, tzinfo=BEIJING)
    row = kpi.indicators(owner, s, e, "grid", as_of).set_index("unit").loc[grid]
    assert (row.due, row.closed, row.closed_on_time) == (4, 3, 2)  # A, B, C, E due; A, B, E closed; A, E on time
    assert row.closure_rate == 0.75 and row.on_time_rate == 0.5
    assert (row.filed, row.reworked, row.rework_rate) == (6, 1, round(1 / 6, 6))
    assert (row.dispatched, row.dispatched_right, row.correct_dispatch_rate) == (6, 6, 1.0)
    assert (row.deferred_now, row.overdue_now) == (1, 1)  # F deferred; C overdue (D is inside its limit)
    clock = get_clock()
    hours = sorted([clock.elapsed(datetime(2026, 3, 2, 9, tzinfo=BEIJING), datetime(2026, 3, 2, 15, tzinfo=BEIJING)) / 60,
                    clock.elapsed(datetime(2026, 3, 2, 9, tzinfo=BEIJING), datetime(2026, 3, 4, 9, tzinfo=BEIJING)) / 60,
                    clock.elapsed(datetime(2026, 3, 10, 9, tzinfo=BEIJING), datetime(2026, 3, 12, 9, tzinfo=BEIJING)) / 60])
    assert hours == [4.0, 14.0, 14.0] and row.handling_hours_avg == round(sum(hours) / 3, 6)
    counts = ev.grid_case_counts(owner, s, e)
    assert int(counts.set_index("code").loc[grid, "cases"]) == 7 and int(counts["cases"].sum()) == 7  # the density theme
    # the naive "on time ÷ closed" would say 2/3; "closed ÷ reported" 3/7: neither is the rule
    assert kpi.indicators_from_log(owner, s, e, "grid", as_of).equals(kpi.indicators(owner, s, e, "grid", as_of))


def test_overdue_counts_only_late_open_cases(owner, tmp_path):
    x, y, grid = point(owner)
    f = tmp_path / "h.csv"
    f.write_text(HEADER + f"D,E0303,{x},{y},2026-03-30 08:40,2026-03-30 08:50,2026-03-30 09:00,,,,0,否\n", encoding="utf-8")
    event_import.import_cases(owner, f)
    s, e = kpi.month_range("2026-03")
    r = kpi.indicators(owner, s, e, "grid", datetime(2026, 3, 31, 18, tzinfo=BEIJING)).set_index("unit").loc[grid]
    assert r.overdue_now == 0 and r.due == 0 and r.closure_rate is None  # inside its limit: not due, no rate


def test_import_all_or_nothing(owner, tmp_path):
    x, y, _ = point(owner)
    f = tmp_path / "bad.csv"
    f.write_text(HEADER + f"A,E0101,{x},{y},2026-03-02 08:40,,,,,,0,否\n"
                 f"A,E9999,{x},{y},2026-03-02 08:40,2026-03-01 08:00,,,,,x,maybe\n"
                 f"C,E0101,0,0,2026-03-02 08:40,,,,,,0,否\n", encoding="utf-8")
    with pytest.raises(ImportFailed) as info:
        event_import.import_cases(owner, f)
    msgs = [(p.row, p.column) for p in info.value.problems]
    assert (3, "id") in msgs and (3, "class_code") in msgs and (3, "filed_at") in msgs and (3, "rework_count") in msgs
    assert (3, "deferred") in msgs
    assert owner.execute(text("SELECT count(*) FROM events")).scalar_one() == 0
    good = tmp_path / "good.csv"
    good.write_text(HEADER + f"C,E0101,0,0,2026-03-02 08:40,,,,,,0,否\n", encoding="utf-8")
    with pytest.raises(ImportFailed, match="no grid"):
        event_import.import_cases(owner, good)


def test_live_lifecycles_agree_with_the_log(owner):
    """Random lifecycles through event_act; SQL and the log replay agree at every level."""
    rng = random.Random(7)
    codes = ["E0101", "E0303", "C0101", "E0501", "E0601"]
    ids = []
    for n in range(40):
        x, y, _ = point(owner, n % 6)
        i = ev.report_event(owner, rng.choice(codes), lon=x, lat=y, urgent=rng.random() < 0.2)
        ids.append(i)
        path = rng.random()
        if path < 0.1:
            ev.act(owner, i, "reject", reason="not_case")
            continue
        ev.act(owner, i, "file")
        if path < 0.2:
            continue
        ev.act(owner, i, "dispatch", unit="chengguan" if rng.random() < 0.3 else None)
        if rng.random() < 0.3:
            ev.act(owner, i, "return", "错派")
            ev.act(owner, i, "dispatch")
        if rng.random() < 0.2:
            ev.act(owner, i, "extend_request", "需要时间", hours=rng.choice([2, 7, 21]))
            ev.act(owner, i, "approve")
        if rng.random() < 0.1:
            ev.act(owner, i, "defer_request", "暂缓")
            ev.act(owner, i, "approve")
            if rng.random() < 0.5:
                continue
            ev.act(owner, i, "resume")
        if rng.random() < 0.2:
            continue
        ev.act(owner, i, "handle", "已处置")
        while rng.random() < 0.3:
            ev.act(owner, i, "verify_fail", "未处置到位")
            ev.act(owner, i, "handle", "再次处置")
        ev.act(owner, i, "verify_pass")
        if rng.random() < 0.8:
            ev.act(owner, i, "close")
    now = datetime.now(BEIJING)
    for as_of in (now + timedelta(minutes=1), now + timedelta(days=40)):
        for level in kpi.LEVELS:
            sql = kpi.indicators(owner, now - timedelta(days=1), now + timedelta(days=60), level, as_of)
            log = kpi.indicators_from_log(owner, now - timedelta(days=1), now + timedelta(days=60), level, as_of)
            assert sql.equals(log), (level, sql.compare(log) if sql.shape == log.shape else (sql, log))
            assert sql["filed"].sum() == 36 or sql["filed"].sum() > 0
    far = kpi.indicators(owner, now - timedelta(days=1), now + timedelta(days=60), "subdistrict", now + timedelta(days=40))
    assert far["due"].sum() > 0 and far["closed"].sum() > 0


def test_indicators_follow_the_scope(demo):
    with app_engine().connect() as c, c.begin() as t:
        scopes.apply(c.connection.dbapi_connection, SYSTEM)
        x, y, grid = point(c)
        gid, other = c.execute(text("""SELECT (SELECT id FROM grids WHERE code = :c AND valid_to IS NULL),
                                              (SELECT id FROM grids WHERE code <> :c AND valid_to IS NULL ORDER BY code LIMIT 1)"""),
                               {"c": grid}).one()
        with use_scope(Scope(user="d", role="dispatcher")):
            scopes.apply(c.connection.dbapi_connection, Scope(user="d", role="dispatcher"))
            i = ev.report_event(c, "E0101", lon=x, lat=y, grid_id=gid)
            ev.act(c, i, "file")
        now = datetime.now(BEIJING)
        for grids, filed in (((other,), 0), ((gid,), 1)):
            scopes.apply(c.connection.dbapi_connection, Scope(user="w", role="worker", grids=grids))
            f = kpi.indicators(c, now - timedelta(hours=1), now + timedelta(hours=1), "grid")
            assert int(f["filed"].sum()) == filed and set(f["unit"]) <= {grid, ""} | ({grid} if filed else set())
        t.rollback()
