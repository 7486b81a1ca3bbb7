"""The worker's report and the leader's indicators in headless Chromium (issue 16 point 6),
offline, against ``streamlit run app.py`` (the fixtures of tests/test_ui_browser.py)."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from gis import scope as scopes
from gis.db import owner_engine
from gis.scope import SYSTEM, use_scope
from gis.workclock import BEIJING
from tests.test_ui_browser import Session, _text, browser, server  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser


@pytest.fixture
def cleanup():
    yield
    with owner_engine().begin() as c:
        scopes.apply(c.connection.dbapi_connection, SYSTEM)
        c.execute(text("DELETE FROM events WHERE description LIKE 'browser test%' OR external_id LIKE 'import:browser%'"))


def test_worker_reports_an_event_on_the_map(server: str, browser, accounts: dict, cleanup) -> None:
    worker = accounts["worker"]
    s = Session(browser, height=2600)
    try:
        s.sign_in(server, worker)
        s.open(f"{server}/events", "上报事件")
        frame = s.map_frame()
        frame.locator(".leaflet-container").wait_for(timeout=30000)
        s.page.wait_for_timeout(1500)
        box = frame.locator(".leaflet-container").bounding_box()
        s.page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        s.page.get_by_text("已选位置").first.wait_for(timeout=30000)
        s.wait_idle()
        s.page.get_by_label("问题描述").fill("browser test 井盖旁堆放垃圾")
        s.page.get_by_label("问题描述").blur()
        s.wait_idle()
        s.shot("events_01_worker_report")
        s.page.get_by_role("button", name="上报", exact=True).click()
        s.page.get_by_text("已上报，案件编号").first.wait_for(timeout=60000)
        s.wait_idle()
        s.shot("events_02_worker_reported")
        with owner_engine().connect() as c:
            scopes.apply(c.connection.dbapi_connection, SYSTEM)
            row = c.execute(text("""SELECT reported_by, status, class_code, grid_id FROM events
                                    WHERE description = 'browser test 井盖旁堆放垃圾'""")).one()
        assert (row.reported_by, row.status, row.class_code) == (worker.username, "reported", "E0101")
        assert row.grid_id in worker.grids
        shown = _text(s.page)
        assert "None" not in shown and "nan" not in shown
        s.assert_offline()
    finally:
        s.close()


def test_leader_reads_the_indicators(server: str, browser, accounts: dict, cleanup, tmp_path) -> None:
    from layers import event_import

    now = datetime.now(BEIJING)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    with owner_engine().connect() as c:
        x, y = c.execute(text("SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM grids WHERE valid_to IS NULL ORDER BY code LIMIT 1")).one()
    # two cases dispatched at the start of this month: one handled at once and closed, one left open (overdue)
    d = start + timedelta(hours=9)
    fmt = "%Y-%m-%d %H:%M"
    rows = [f"browser1,E0101,{x},{y},{(d - timedelta(minutes=20)).strftime(fmt)},{(d - timedelta(minutes=10)).strftime(fmt)},"
            f"{d.strftime(fmt)},{(d + timedelta(hours=1)).strftime(fmt)},{(d + timedelta(hours=2)).strftime(fmt)},"
            f"{(d + timedelta(hours=3)).strftime(fmt)},0,否",
            f"browser2,E0101,{x},{y},{(d - timedelta(minutes=20)).strftime(fmt)},{(d - timedelta(minutes=10)).strftime(fmt)},"
            f"{d.strftime(fmt)},,,,0,否"]
    f = tmp_path / "h.csv"
    f.write_text("id,class_code,lon,lat,reported_at,filed_at,dispatched_at,handled_at,verified_at,closed_at,rework_count,deferred\n"
                 + "\n".join(rows) + "\n", encoding="utf-8")
    with use_scope(SYSTEM), owner_engine().begin() as c:
        event_import.import_cases(c, f)
    s = Session(browser, height=3000)
    try:
        s.sign_in(server, accounts["leader"])
        s.open(f"{server}/event-kpi", "案件考核")
        s.page.get_by_text("查看网格案件").first.wait_for(timeout=60000)
        s.wait_idle()
        s.shot("events_03_leader_indicators")
        shown = _text(s.page)
        for w in ("本辖区合计", "应结案数", "结案率", "按期结案率", "返工率", "准确派遣率", "当前超期", "指标定义", "近六个月趋势",
                  "超期与督办案件", "查看网格案件"):
            assert w in shown, w
        s.page.get_by_text("指标定义").first.click()
        s.page.get_by_text("仍在时限内的未结案件不计入").first.wait_for(timeout=30000)
        s.wait_idle()
        shown = _text(s.page)
        if now - d > timedelta(days=2):  # the open case is past its 1-working-day limit
            assert "50.0%" in shown or "%" in shown
        assert "None" not in shown and "nan" not in shown and "Traceback" not in shown
        s.shot("events_03_leader_indicators")
        s.assert_offline()
    finally:
        s.close()


def test_dispatcher_sees_incoming_with_duplicates(server: str, browser, accounts: dict, cleanup) -> None:
    import secrets

    from layers import users as auth
    from gis.db import transaction
    from gis.scope import Scope
    from layers import events as ev
    from tests.accounts import Account

    disp = Account("dispatcher", "te_browser_disp", secrets.token_urlsafe(12))
    with owner_engine().begin() as c:
        c.execute(text("DELETE FROM user_sessions WHERE user_id IN (SELECT id FROM users WHERE username = 'te_browser_disp')"))
        c.execute(text("DELETE FROM users WHERE username = 'te_browser_disp'"))
    with use_scope(SYSTEM), transaction() as conn:
        auth.create_user(conn, disp.username, disp.password, "dispatcher", display_name="测试调度员")
    worker = accounts["worker"]
    with owner_engine().connect() as c:
        x, y = c.execute(text("SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM grids WHERE id = :g"),
                         {"g": worker.grids[0]}).one()
    with use_scope(Scope(user=worker.username, role="worker", grids=worker.grids)), transaction() as c:
        ev.report_event(c, "E0503", lon=x, lat=y, grid_id=worker.grids[0], description="browser test 乱堆物料 一")
        ev.report_event(c, "E0503", lon=x + 0.0001, lat=y, grid_id=worker.grids[0], description="browser test 乱堆物料 二")
    s = Session(browser, height=2400)
    try:
        s.sign_in(server, disp)
        s.open(f"{server}/", "指挥调度")  # the dispatcher's landing screen (a landing screen lives at /)
        s.page.get_by_text("附近 50 米内同类未结案件").first.wait_for(timeout=60000)
        s.wait_idle()
        shown = _text(s.page)
        s.page.get_by_text("距离（米）").first.wait_for(state="attached", timeout=30000)
        s.wait_idle()
        shown = _text(s.page)
        for w in ("待立案", "待派遣", "延期/缓办审批", "待结案", "超期案件", "合并为重复", "立案", "不予立案"):
            assert w in shown, w
        assert "None" not in shown and "nan" not in shown
        assert s.page.get_by_text("Page not found").count() == 0
        s.shot("events_04_dispatcher_incoming")
        s.assert_offline()
    finally:
        s.close()
        with owner_engine().begin() as c:
            c.execute(text("DELETE FROM user_sessions WHERE user_id IN (SELECT id FROM users WHERE username = 'te_browser_disp')"))
            c.execute(text("DELETE FROM users WHERE username = 'te_browser_disp'"))
