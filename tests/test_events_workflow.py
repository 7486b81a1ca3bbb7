"""The case lifecycle enforced by the database (issue 16 points 3, 7 and 9): allowed actions by
allowed roles, each stamped and audited; re-dispatch and rework counted; extensions and
deferrals approved; the reporter sealed; who sees which case."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from gis import scope as scopes
from gis.db import app_engine, owner_engine
from gis.scope import SYSTEM, Scope, use_scope
from layers import events as ev


@pytest.fixture(scope="module")
def place(demo) -> Iterator[dict]:
    """Grid A and a grid B of another community, a point inside each; a unit user of 环卫."""
    with use_scope(SYSTEM), owner_engine().begin() as c:
        rows = c.execute(text("""SELECT id, community_code, ST_X(ST_PointOnSurface(geom)) x, ST_Y(ST_PointOnSurface(geom)) y
                                 FROM grids WHERE valid_to IS NULL ORDER BY code""")).all()
        a = rows[0]
        b = next(r for r in rows if r.community_code != a.community_code)
        scopes.apply(c.connection.dbapi_connection, SYSTEM)
        c.execute(text("""INSERT INTO event_unit_members (username, unit_code) VALUES ('t_unit_hw', 'huanwei'), ('t_unit_cg', 'chengguan')
                          ON CONFLICT (username) DO UPDATE SET unit_code = EXCLUDED.unit_code"""))
    yield {"a": int(a.id), "b": int(b.id), "com_a": a.community_code.strip(), "ax": a.x, "ay": a.y, "bx": b.x, "by": b.y}
    with owner_engine().begin() as c:
        scopes.apply(c.connection.dbapi_connection, SYSTEM)
        c.execute(text("DELETE FROM event_unit_members WHERE username LIKE 't_unit_%'"))


def S(role: str, user: str | None = None, **kw) -> Scope:
    return Scope(user=user or f"t_{role}", role=role, **kw)


@pytest.fixture
def tx():
    """Act as different roles inside one app transaction that is rolled back."""
    with app_engine().connect() as c:
        t = c.begin()

        def as_(scope: Scope):
            scopes.apply(c.connection.dbapi_connection, scope)
            scopes.set_scope(scope)
            return c
        try:
            yield as_
        finally:
            t.rollback()
            scopes.set_scope(SYSTEM)


def test_full_lifecycle_with_rework_and_redispatch(place, tx):
    worker = S("worker", grids=(place["a"],))
    c = tx(worker)
    i = ev.report_event(c, "E0101", lon=place["ax"], lat=place["ay"], description="暴露垃圾一堆")
    with pytest.raises(ev.EventRefused, match="may not file"):
        ev.act(c, i, "file")
    c = tx(S("dispatcher"))
    assert ev.act(c, i, "file") == "filed"
    assert ev.act(c, i, "dispatch", unit="chengguan") == "dispatched"  # the wrong unit
    c = tx(S("unit", "t_unit_cg"))
    assert ev.act(c, i, "return", "不属于城管职责") == "filed"
    c = tx(S("dispatcher"))
    assert ev.propose_unit(c, i) == "huanwei"
    assert ev.act(c, i, "dispatch") == "dispatched"
    c = tx(S("unit", "t_unit_cg"))
    assert i in set(ev.events_in(c)["id"])  # once theirs: still in their history, but no longer theirs to handle
    with pytest.raises(ev.EventRefused, match="not found"):
        ev.act(c, i, "handle", "误操作")
    c = tx(S("unit", "t_unit_hw"))
    with pytest.raises(ev.EventRefused, match="note"):
        ev.act(c, i, "handle")
    assert ev.act(c, i, "handle", "已清运") == "handled"
    c = tx(worker)
    assert ev.act(c, i, "verify_fail", "仍有残留") == "dispatched"
    c = tx(S("unit", "t_unit_hw"))
    ev.act(c, i, "handle", "已彻底清运")
    c = tx(worker)
    assert ev.act(c, i, "verify_pass") == "verified"
    with pytest.raises(ev.EventRefused):
        ev.act(c, i, "close")
    c = tx(S("dispatcher"))
    assert ev.act(c, i, "close") == "closed"
    case = ev.get_case(c, i)
    assert (case["dispatch_count"], case["redispatch_count"], case["rework_count"]) == (2, 1, 1)
    assert case["unit_code"] == "huanwei" and case["handle_wmin"] is not None and case["on_time"] is True
    acts = [(t["action"], t["actor"], t["actor_role"]) for t in case["transitions"]]
    assert acts[0] == ("report", "t_worker", "worker") and acts[-1] == ("close", "t_dispatcher", "dispatcher")
    assert [a for a, _, _ in acts] == ["report", "file", "dispatch", "return", "dispatch", "handle", "verify_fail",
                                      "handle", "verify_pass", "close"]
    with pytest.raises(ev.EventRefused, match="cannot be"):
        ev.act(c, i, "file")
    c = tx(S("admin"))
    logged = c.execute(text("SELECT action FROM audit_log WHERE table_name = 'events' AND row_key = :k ORDER BY id"),
                       {"k": str(i)}).scalars().all()
    assert logged[0] == "event_report" and "event_verify_fail" in logged and logged[-1] == "event_close"


def test_direct_update_refused(place, tx):
    c = tx(S("worker", grids=(place["a"],)))
    i = ev.report_event(c, "E0303", lon=place["ax"], lat=place["ay"])
    with pytest.raises(DBAPIError, match="only through event_act"):
        with c.begin_nested():
            c.execute(text("UPDATE events SET status = 'closed' WHERE id = :i"), {"i": i})
    # a report is a report whatever the app sends
    c.execute(text("""INSERT INTO events (district_code, community_code, grid_id, kind, reported_by, status, closed_at)
                      SELECT district_code, community_code, id, 'x', 'someone else', 'closed', now() FROM grids WHERE id = :g"""),
              {"g": place["a"]})
    row = c.execute(text("SELECT status, closed_at, reported_by FROM events ORDER BY id DESC LIMIT 1")).one()
    assert row == ("reported", None, "t_worker")


def test_extension_and_deferral_need_approval(place, tx):
    c = tx(S("dispatcher"))
    i = ev.report_event(c, "E0303", lon=place["ax"], lat=place["ay"], source="video")
    ev.act(c, i, "file")
    ev.act(c, i, "dispatch")
    due = ev.get_case(c, i)["handle_due_at"]
    c = tx(S("unit", "t_unit_cg"))
    with pytest.raises(ev.EventRefused, match="may not approve"):
        ev.act(c, i, "approve")
    ev.act(c, i, "extend_request", "需要走拆除程序", hours=14)
    c = tx(S("dispatcher"))
    ev.act(c, i, "approve")
    case = ev.get_case(c, i)
    from gis.workclock import get_clock
    assert case["extension_count"] == 1 and get_clock().elapsed(due, case["handle_due_at"]) == pytest.approx(14 * 60)
    c = tx(S("unit", "t_unit_cg"))
    ev.act(c, i, "defer_request", "当事人住院")
    c = tx(S("leader"))
    assert ev.act(c, i, "approve") == "deferred"
    assert ev.act(c, i, "escalate", "领导督办") == "deferred" and ev.get_case(c, i)["escalated"]
    assert ev.act(c, i, "resume") == "dispatched"


def test_reject_and_duplicates(place, tx):
    c = tx(S("worker", grids=(place["a"],)))
    g = place["a"]
    first = ev.report_event(c, "E0503", lon=place["ax"], lat=place["ay"], grid_id=g)
    second = ev.report_event(c, "E0503", lon=place["ax"] + 0.0002, lat=place["ay"], grid_id=g)  # ~19 m east
    far = ev.report_event(c, "E0503", lon=place["ax"] + 0.002, lat=place["ay"], grid_id=g)  # ~190 m
    c = tx(S("dispatcher"))
    near = ev.duplicates(c, second)
    assert first in set(near["id"]) and far not in set(near["id"])
    with pytest.raises(ev.EventRefused, match="reason"):
        ev.act(c, far, "reject")
    assert ev.merge(c, second, first) == "rejected"
    case = ev.get_case(c, second)
    assert case["reject_reason"] == "duplicate" and case["duplicate_of"] == first


def test_who_sees_which_case(place, tx):
    c = tx(S("dispatcher"))
    ia = ev.report_event(c, "E0101", lon=place["ax"], lat=place["ay"])
    ib = ev.report_event(c, "E0101", lon=place["bx"], lat=place["by"])
    ev.act(c, ib, "file")
    ev.act(c, ib, "dispatch")  # to 环卫
    seen = lambda s: set(ev.events_in(tx(s))["id"]) & {ia, ib}  # noqa: E731
    assert seen(S("worker", grids=(place["a"],))) == {ia}
    assert seen(S("secretary", communities=(place["com_a"],))) == {ia}
    assert seen(S("unit", "t_unit_hw")) == {ib}
    assert seen(S("unit", "t_unit_cg")) == set()
    assert seen(S("leader")) == {ia, ib} and seen(S("hotline")) == {ia, ib}
    assert seen(S("planner")) == set()
    c = tx(S("worker", grids=(place["a"],)))
    with pytest.raises(ProgrammingError, match="row-level security"), c.begin_nested():
        ev.report_event(c, "E0101", lon=place["bx"], lat=place["by"])
    with pytest.raises(ev.EventRefused, match="not found"):
        ev.act(c, ib, "verify_pass")


def test_reporter_sealed_and_each_look_audited(place, tx):
    c = tx(S("hotline", "t_hotline"))
    i = ev.report_event(c, "E0601", lon=place["ax"], lat=place["ay"], source="hotline",
                        reporter={"name": "张三", "phone": "13800000000"})
    for role in ("worker", "unit", "dispatcher", "leader", "secretary"):
        c = tx(S(role, grids=(place["a"],), communities=(place["com_a"],)))
        with pytest.raises(ProgrammingError, match="permission denied"), c.begin_nested():
            c.execute(text("SELECT count(*) FROM event_reporters"))
        with pytest.raises(ev.EventRefused, match="sealed"):
            ev.reporter(c, i)
    c = tx(S("hotline", "t_hotline"))
    assert ev.reporter(c, i)["phone"] == "13800000000"
    c = tx(S("admin"))
    looks = c.execute(text("SELECT scope_user FROM audit_log WHERE action = 'event_reporter_read' AND row_key = :k"),
                      {"k": str(i)}).scalars().all()
    assert looks == ["t_hotline"]


def test_photos(place, tx):
    c = tx(S("worker", grids=(place["a"],)))
    i = ev.report_event(c, "E0101", lon=place["ax"], lat=place["ay"])
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
    pid = ev.add_photo(c, i, "report", "现场.png", png)
    assert ev.photo(c, pid) == ("image/png", png)
    with pytest.raises(ev.EventInvalid, match="not a JPEG or PNG"):
        ev.add_photo(c, i, "report", "x.exe", b"MZ\0\0")


def test_no_scope_no_rows(place):
    with use_scope(None), app_engine().connect() as c:
        for t in ("events", "event_transitions", "event_photos", "event_reporters", "event_allowed", "api_keys"):
            try:
                assert c.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() == 0
            except ProgrammingError as exc:
                assert "permission denied" in str(exc)
                c.rollback()
