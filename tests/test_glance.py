"""The street leader's first view (``/glance``, webapp/glance.py) in real headless Chromium.

A leader signs in through the form and lands on it; the figures on the page are the ones
``analysis.overview`` returns for that leader's scope (the Streamlit overview's functions),
formatted as the dashboard formats them; the grid outlines are drawn from ``/tiles`` on the
page's own Leaflet map; nothing is asked of the internet. Signed out, the page sends to the
sign-in form; other roles are sent to their dashboard and see none of its figures.
"""
from __future__ import annotations

import http.client
import secrets
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

from gis.db import owner_engine, transaction
from gis.scope import SYSTEM, use_scope
from tests.accounts import Account, browser_sign_in, session_token
from tests.test_ui_browser import SHOTS, Session, browser, server  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser

GRID_FEATURES_JS = """() => { var n = 0; if (!window.map) return 0;
    window.map.eachLayer(function (l) { if (l.options && l.options.className === 'wg-tiles-grids')
      for (var k in l._tiles) { var w = l._tiles[k].el._wg; if (w) n += w.features.length; } });
    return n; }"""
METRICS_JS = """() => Object.fromEntries(Array.from(document.querySelectorAll('.metric'))
    .map(m => [m.dataset.key, m.querySelector('.value').textContent]))"""


def _get(server: str, path: str, cookie: str | None = None) -> http.client.HTTPResponse:
    from gis.settings import get_settings

    parts = urlsplit(server)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    headers = {"Cookie": f"{get_settings().session_cookie}={cookie}"} if cookie else {}
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    r.body = r.read()  # type: ignore[attr-defined]
    return r


def expected_figures(account: Account) -> dict[str, str]:
    """What the page must show: the analysis' figures in the account's scope, formatted as the
    dashboard formats them (ui/fmt.py)."""
    from analysis import overview
    from layers import users as auth
    from ui.fmt import fmt_int, fmt_num, fmt_pct

    with use_scope(SYSTEM), transaction() as conn:
        scope = auth.get_user(conn, account.username).scope()
    with use_scope(scope), transaction() as conn:
        sub = str(overview.subdistricts(conn)["code"].iloc[0])
        fig = overview.figures(conn, sub)
        cov = overview.coverage_figures(conn, sub)
    out = {k: fmt_int(fig[k]) for k in ("communities", "grids", "buildings", "households", "residents", "full_time_workers",
                                          "grids_without_full_time", "grids_over_band", "grids_under_band")}
    out["households_per_full_time"] = fmt_num(fig["households_per_full_time"], 0)
    out.update({f"cov_{k}": fmt_pct(v) for k, v in cov.items()})
    return out


def _drawn(page, timeout_ms: int = 60000) -> int:
    page.wait_for_function(GRID_FEATURES_JS, timeout=timeout_ms, polling=50)
    page.wait_for_timeout(500)
    return int(page.evaluate(GRID_FEATURES_JS))


def test_leader_lands_on_the_first_view_with_the_analysis_figures(server: str, browser, demo: dict, accounts: dict) -> None:  # noqa: F811
    leader = accounts["leader"]
    s = Session(browser, height=1400)
    try:
        s.page.goto(server + "/signin")
        s.page.fill("#username", leader.username)
        s.page.fill("#password", leader.password)
        s.page.click("button[type=submit]")
        s.page.wait_for_url(lambda url: "/glance" in url, timeout=30000)
        drawn = _drawn(s.page)
        assert drawn >= demo["grids"] // 2, f"only {drawn} grid outlines drawn"
        shown = s.page.evaluate(METRICS_JS)
        want = expected_figures(leader)
        assert shown == want
        assert shown["grids"] == f"{demo['grids']:,}" and shown["buildings"] == f"{demo['buildings']:,}"
        body = s.page.inner_text("body")
        assert "街道总览" in body and "关键指标" in body and "地图" in body
        assert "户数标准：每格 300–500" in body and "一格一员" in body  # judged figures name their rule, as on the dashboard
        assert s.page.locator(".wg-tiles-grids canvas").count() > 0
        assert s.page.locator(".wg-legend").count() == 1
        assert any("/tiles/grids/" in u and st == 200 and n > 0 for u, st, n in s.tiles)
        assert not s.errors, s.errors
        s.shot("40_glance_leader")
        # the full dashboard one click away: the Streamlit overview with the same figures
        link = s.page.locator("#full-dashboard")
        assert link.inner_text() == "打开完整仪表盘"
        link.click()
        s.page.wait_for_url(lambda url: "/glance" not in url, timeout=30000)
        s.page.get_by_text("关键指标").first.wait_for(timeout=60000)
        s.wait_idle()
        frame = s.map_frame()
        assert frame.locator(".leaflet-container").count() == 1
        s.assert_offline()
    finally:
        s.close()


def test_first_view_in_english(server: str, browser, demo: dict, accounts: dict) -> None:  # noqa: F811
    s = Session(browser, height=1400)
    try:
        browser_sign_in(s.page, server, accounts["leader"], lang="en", landing=True)
        assert "/glance" in s.page.url and "lang=en" in s.page.url
        _drawn(s.page)
        body = s.page.inner_text("body")
        assert "Sub-district overview" in body and "Key figures" in body and "Open the full dashboard" in body
        assert "关键指标" not in body and "街道总览" not in body
        s.shot("41_glance_leader_en")
        s.assert_offline()
    finally:
        s.close()


def test_signed_out_goes_to_the_sign_in_form(server: str) -> None:  # noqa: F811
    r = _get(server, "/glance")
    assert r.status == 303 and r.headers["location"].startswith("/signin?") and "glance" in r.headers["location"]
    # an ended or made-up session: the page itself refuses it (the middleware only checks a cookie is there)
    r = _get(server, "/glance?lang=en", cookie=secrets.token_urlsafe(32))
    assert r.status == 303 and r.headers["location"].startswith("/signin?lang=en&next=/glance")
    assert "关键指标".encode() not in r.body


@pytest.mark.parametrize("role", ["worker", "secretary", "planner", "admin", "dispatcher"])
def test_other_roles_go_to_their_dashboard_and_see_nothing_of_it(server: str, accounts: dict, role: str) -> None:  # noqa: F811
    r = _get(server, "/glance", cookie=session_token(accounts[role]))
    assert r.status == 303 and r.headers["location"] == "/?lang=zh"
    assert b"metric" not in r.body and "关键指标".encode() not in r.body


def test_a_worker_signing_in_still_lands_on_the_dashboard(server: str, browser, accounts: dict) -> None:  # noqa: F811
    s = Session(browser, height=1000)
    try:
        browser_sign_in(s.page, server, accounts["worker"], landing=True)
        assert "/glance" not in s.page.url
        s.page.wait_for_selector('[data-testid="stMain"]', timeout=60000)
    finally:
        s.close()


def test_a_leader_of_one_community_sees_only_its_figures(server: str, browser, demo: dict, accounts: dict) -> None:  # noqa: F811
    """Row-level security cuts the page's figures as it cuts the dashboard's: a leader whose
    area is one community sees that community's counts, not the sub-district's."""
    from layers import users as auth

    with owner_engine().connect() as c:
        community = c.execute(text("SELECT code FROM communities ORDER BY code LIMIT 1")).scalar_one()
    narrow = Account("leader", "t_leader_one_community", secrets.token_urlsafe(12), communities=(community,))
    with use_scope(SYSTEM), transaction() as conn:
        if auth.get_user(conn, narrow.username) is None:
            auth.create_user(conn, narrow.username, narrow.password, "leader", communities=narrow.communities,
                             display_name="测试社区领导")
        else:
            auth.set_password(conn, narrow.username, narrow.password)
    s = Session(browser, height=1400)
    try:
        browser_sign_in(s.page, server, narrow, landing=True)
        assert "/glance" in s.page.url
        _drawn(s.page)
        shown = s.page.evaluate(METRICS_JS)
        assert shown == expected_figures(narrow)
        full = expected_figures(accounts["leader"])
        assert int(shown["buildings"].replace(",", "")) < int(full["buildings"].replace(",", ""))
    finally:
        s.close()


def test_the_first_view_links_the_leaders_screens() -> None:
    """Its links are the leader's screens of the dashboard, in the same order and words."""
    from ui.screens import ROLE_SCREENS
    from webapp import glance

    screens = ROLE_SCREENS["leader"]
    assert [key for _, key in glance.LEADER_SCREENS] == [title for _, title, _ in screens]
    assert [p for p, _ in glance.LEADER_SCREENS][1:] == [p for p, _, _ in screens][1:]
    assert set(glance.ROLES) == {r for r, s in ROLE_SCREENS.items() if s and s[0][0] == "overview"}


def _shown(body: bytes, key: str) -> str:
    import re

    m = re.search(rf'data-key="{key}"><div class="label">[^<]*</div><div class="value">([^<]*)</div>', body.decode())
    assert m, f"no figure {key} on the page"
    return m.group(1)


def test_an_edit_shows_on_the_first_view_at_once(server: str, demo: dict, accounts: dict) -> None:  # noqa: F811
    """The page keeps its reads a little while (as the dashboard does), but an edit is on it the
    next time it opens: the newest audit row is part of what it keeps them under."""
    from gis.db import app_engine
    from gis.scope import Scope

    cookie = session_token(accounts["leader"])
    before = int(_shown(_get(server, "/glance", cookie).body, "households").replace(",", ""))
    assert int(_shown(_get(server, "/glance", cookie).body, "households").replace(",", "")) == before  # kept
    leader = Scope(accounts["leader"].username, "leader")
    with owner_engine().connect() as c:
        bid = c.execute(text("SELECT id FROM buildings WHERE grid_id IS NOT NULL ORDER BY id LIMIT 1")).scalar_one()
    try:
        with use_scope(leader), app_engine().begin() as c:
            assert c.execute(text("UPDATE buildings SET households = households + 11 WHERE id = :i"), {"i": bid}).rowcount == 1
        after = _get(server, "/glance", cookie).body
        assert int(_shown(after, "households").replace(",", "")) == before + 11
        assert _shown(after, "households") == f"{before + 11:,}"  # formatted as the dashboard formats it
    finally:
        with owner_engine().begin() as c:
            c.execute(text("UPDATE buildings SET households = households - 11 WHERE id = :i"), {"i": bid})
