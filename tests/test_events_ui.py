"""Event screens under Streamlit's AppTest (issue 16 point 6): each role's screen opens in
Chinese with no error; the dispatcher files and dispatches, the unit handles, the worker
verifies, all through the screens' buttons, and the indicators show the case."""
from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from gis import scope as scopes
from gis.db import owner_engine, transaction
from gis.scope import SYSTEM, use_scope
from tests.accounts import Account, open_screen

PREFIX = "te_"


@pytest.fixture(scope="module")
def people(accounts) -> Iterator[dict[str, Account]]:
    from layers import users as auth
    from layers import events as ev

    made = {r: Account(r, PREFIX + r, secrets.token_urlsafe(12)) for r in ("dispatcher", "unit", "hotline")}
    with owner_engine().begin() as c:  # leftovers of an interrupted run
        c.execute(text("DELETE FROM user_sessions WHERE user_id IN (SELECT id FROM users WHERE username LIKE 'te\\_%')"))
        c.execute(text("DELETE FROM users WHERE username LIKE 'te\\_%'"))
    with use_scope(SYSTEM), transaction() as conn:
        for a in made.values():
            auth.create_user(conn, a.username, a.password, a.role, display_name=f"测试{a.role}")
        ev.set_unit_member(conn, made["unit"].username, "huanwei")
    yield {**accounts, **made}
    with owner_engine().begin() as c:
        scopes.apply(c.connection.dbapi_connection, SYSTEM)
        c.execute(text("DELETE FROM events WHERE description LIKE 'ui test%'"))
        c.execute(text("DELETE FROM event_unit_members WHERE username LIKE 'te\\_%'"))
        c.execute(text("DELETE FROM user_sessions WHERE user_id IN (SELECT id FROM users WHERE username LIKE 'te\\_%')"))
        c.execute(text("DELETE FROM users WHERE username LIKE 'te\\_%'"))


def texts(at) -> str:
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "success", "error", "warning", "metric"):
        for el in getattr(at, kind, []):
            parts.append(str(getattr(el, "value", "")) + " " + str(getattr(el, "label", "")))
    for kind in ("tabs", "selectbox", "radio", "text_area", "text_input", "button", "checkbox"):
        for el in getattr(at, kind, []):
            parts.append(str(getattr(el, "label", "")))
    return "\n".join(parts)


@pytest.mark.parametrize("role,path,words", [
    ("worker", "events", ("事件上报", "上报事件", "待我核查", "大类", "小类", "问题描述")),
    ("dispatcher", "dispatch", ("指挥调度", "待立案", "待派遣", "延期/缓办审批", "超期案件")),
    ("unit", "unit-cases", ("处置任务", "待处置")),
    ("hotline", "hotline", ("热线工单",)),
    ("leader", "event-kpi", ("案件考核", "应结案数", "结案率", "按期结案率", "近六个月趋势", "超期与督办案件", "查看网格案件")),
    ("secretary", "event-kpi", ("案件考核", "按期结案率")),
])
def test_screens_open_in_chinese(people, role, path, words):
    at = open_screen(people[role], path)
    assert not at.exception, at.exception
    shown = texts(at)
    for w in words:
        assert w in shown, (w, shown[:2000])
    assert "Traceback" not in shown and "None" not in shown and "nan" not in shown.lower().split()


def test_a_case_through_the_screens(people):
    from layers import events as ev

    worker = people["worker"]
    with use_scope(SYSTEM), owner_engine().begin() as c:
        scopes.apply(c.connection.dbapi_connection, SYSTEM)
        x, y = c.execute(text("SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM grids WHERE id = :g"),
                         {"g": worker.grids[0]}).one()
    from gis.scope import Scope

    with use_scope(Scope(user=worker.username, role="worker", grids=worker.grids)), transaction() as c:
        i = ev.report_event(c, "E0101", lon=x, lat=y, description="ui test 暴露垃圾")

    at = open_screen(people["dispatcher"], "dispatch")
    at.selectbox(key="in_pick").set_value(i).run()
    at.button(key=f"file_{i}").click().run()
    assert not at.exception and any("待派遣" in s.value for s in at.success), [s.value for s in at.error]
    at.selectbox(key="disp_pick").set_value(i).run()
    assert "建议派遣：环卫" in texts(at)
    at.button(key=f"disp_{i}").click().run()
    assert any("处置中" in s.value for s in at.success), [s.value for s in at.error]

    at = open_screen(people["unit"], "unit-cases")
    at.selectbox(key="unit_pick").set_value(i).run()
    at.button(key=f"h_{i}").click().run()  # no note: refused in words
    assert any("note" in e.value or "说明" in e.value or "处置" in e.value for e in at.error)
    at.text_area(key=f"hn_{i}").input("已清运").run()
    at.button(key=f"h_{i}").click().run()
    assert any("待核查" in s.value for s in at.success), [e.value for e in at.error]

    at = open_screen(worker, "events")
    at.selectbox(key="verify_pick").set_value(i).run()
    at.button(key=f"vp_{i}").click().run()
    assert any("待结案" in s.value for s in at.success), [e.value for e in at.error]

    at = open_screen(people["hotline"], "hotline")
    assert not at.exception


def test_english_when_chosen(people):
    """English only when chosen, and then no Chinese label on the event screens."""
    import re

    from streamlit.testing.v1 import AppTest

    from tests.accounts import SCRIPT, session_token

    at = AppTest.from_file(SCRIPT, default_timeout=120)
    at.query_params["lang"] = "en"
    at.session_state["wangge_session"] = session_token(people["dispatcher"])
    at.run()
    assert not at.exception
    shown = texts(at)
    for w in ("Dispatch", "Incoming", "To dispatch", "Approvals", "Overdue"):
        assert w in shown, w
    own = shown.replace(people["dispatcher"].username, "").replace("测试dispatcher", "").replace("中文", "")
    own = own.replace("语言 / Language", "")  # the language picker names both languages by design
    assert not re.search(r"[\u4e00-\u9fff]", own), re.findall(r".{0,20}[\u4e00-\u9fff].{0,20}", own)[:5]
