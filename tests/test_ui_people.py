"""The people screens (issue 17): the worker records a visit in headless Chromium and sees their
register masked; the secretary's register is masked; the leader sees counts only; the
administrator answers "who looked at this person". Every screen read is in the access log."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from gis.scope import SYSTEM, use_scope
from layers import people
from tests.accounts import open_screen

MASKED = re.compile(r"\d{6}\*{8}[\dX]{4}")
FULL_ID = re.compile(r"(?<![\d*])\d{17}[\dX](?![\d*])")


def _log(username: str, action: str | None = None) -> int:
    with use_scope(SYSTEM), people.owner_transaction() as c:
        return int(c.execute(text("SELECT count(*) FROM person_access_log WHERE username = :u AND (CAST(:a AS text) IS NULL OR action = :a)"),
                             {"u": username, "a": action}).scalar_one())


def _body(at) -> str:
    parts = [m.value for m in at.markdown] + [m.value for m in at.caption] + [str(m.value) for m in at.info]
    parts += [m.label + " " + str(m.value) for m in at.metric] + [m.value for m in at.title] + [m.value for m in at.subheader]
    for df in at.dataframe:
        parts.append(df.value.to_string())
    return "\n".join(str(p) for p in parts)


def test_secretary_register_is_masked_and_every_row_logged(accounts):
    sec = accounts["secretary"]
    before = _log(sec.username, "list")
    at = open_screen(sec, "people")
    assert not at.exception, at.exception
    body = _body(at)
    assert "本社区人员登记（脱敏）" in body and "各网格逾期走访" in body and "巡查覆盖率" in body
    assert MASKED.search(body) and not FULL_ID.search(body)
    assert "None" not in body and "nan" not in body.lower().replace("nanjing", "")
    assert _log(sec.username, "list") - before > 0


def test_leader_sees_counts_only(accounts):
    lead = accounts["leader"]
    before = _log(lead.username)
    at = open_screen(lead, "people")
    assert not at.exception, at.exception
    body = _body(at)
    assert "这里只显示人数和比例" in body and "逾期率" in body
    assert not MASKED.search(body) and "某" not in body  # no ID, no name
    assert _log(lead.username) == before  # counts are not reads of a person


def test_admin_answers_who_looked_at_this_person(accounts):
    sec = accounts["secretary"]
    open_screen(sec, "people")  # the secretary lists the register
    with use_scope(SYSTEM), people.owner_transaction() as c:
        pid = c.execute(text("SELECT person_id FROM person_access_log WHERE username = :u ORDER BY id DESC LIMIT 1"),
                        {"u": sec.username}).scalar_one()
    at = open_screen(accounts["admin"], "access-log")
    at.number_input(key="access_person").set_value(int(pid)).run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert sec.username in set(table["用户"]) and set(table["人员编号"]) == {pid}
    assert "列表查看" in set(table["操作"])


def test_worker_screen_without_browser(accounts):
    w = accounts["worker"]
    at = open_screen(w, "visits")
    assert not at.exception, at.exception
    body = _body(at)
    assert "今日走访（按步行路线排序）" in body and "我的登记人员" in body
    assert MASKED.search(body) and not FULL_ID.search(body)


@pytest.mark.browser
def test_worker_records_a_visit_in_the_browser(server, browser, accounts):
    from tests.test_ui_browser import Session, _text

    w = accounts["worker"]
    s = Session(browser, height=3200)
    try:
        s.sign_in(server, w)
        s.open(f"{server}/visits", "今日走访（按步行路线排序）")
        # st.dataframe draws on a canvas; its cells are mirrored in an accessible (hidden) table
        s.page.locator('[data-testid="stDataFrame"] [role="gridcell"]', has_text=MASKED).first.wait_for(state="attached", timeout=30000)
        cells = "\n".join(s.page.locator('[data-testid="stDataFrame"] [role="gridcell"]').all_inner_texts())
        body = _text(s.page) + "\n" + cells
        assert MASKED.search(cells) and not FULL_ID.search(body), "register not masked"
        assert "步行路程" in body and "某" in cells
        frame = s.map_frame()
        assert frame is not None and frame.locator(".leaflet-container").count() == 1
        s.shot("people_01_worker_route")
        before = _log(w.username, "visit")
        form = s.page.locator('[data-testid="stForm"]')
        form.get_by_text("见到本人").click()
        form.locator("input[aria-label='情况记录']").fill("浏览器测试：上门见到本人")
        form.get_by_role("button", name="保存走访").click()
        s.page.get_by_text("走访已保存。").wait_for(timeout=60000)
        s.wait_idle()
        s.shot("people_02_worker_visit_saved")
        assert _log(w.username, "visit") == before + 1
        with use_scope(SYSTEM), people.owner_transaction() as c:
            row = c.execute(text("SELECT visitor, outcome, note FROM visits ORDER BY id DESC LIMIT 1")).one()
        assert tuple(row) == (w.username, "met", "浏览器测试：上门见到本人")
        s.assert_offline()
    finally:
        s.close()


@pytest.mark.browser
def test_secretary_register_masked_in_the_browser(server, browser, accounts):
    from tests.test_ui_browser import Session, _text

    s = Session(browser, height=3200)
    try:
        s.sign_in(server, accounts["secretary"])
        s.open(f"{server}/people", "本社区人员登记（脱敏）")
        s.page.locator('[data-testid="stDataFrame"] [role="gridcell"]', has_text=MASKED).first.wait_for(state="attached", timeout=30000)
        cells = "\n".join(s.page.locator('[data-testid="stDataFrame"] [role="gridcell"]').all_inner_texts())
        body = _text(s.page)
        s.shot("people_03_secretary_register")
        assert "各网格逾期走访" in body and "巡查覆盖率" in body
        assert MASKED.search(cells) and not FULL_ID.search(body + cells)
        s.assert_offline()
    finally:
        s.close()


from tests.test_ui_browser import browser, server  # noqa: E402,F401  (the shared browser fixtures)
