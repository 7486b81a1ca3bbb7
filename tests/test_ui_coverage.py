"""The leader's coverage screen in headless Chromium, offline: camera sectors and the
uncovered road stretches are drawn on the map (one path per stored view and per gap), the
walking-access view draws every home coloured by reach, the GeoJSON download holds the
analysis' gaps, and no request leaves localhost. Screenshots: tests/screenshots/10_*.png.

Pattern and fixtures: tests/test_ui_browser.py (server on a free port, Chromium with every
non-local request blocked and recorded)."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from analysis import cameras, services
from gis.db import owner_engine
from gis.settings import get_settings
from tests.accounts import browser_sign_in
from tests.test_ui_browser import Session, _text, _wait_drawn, browser, server  # noqa: F401  (fixtures)
from tests.test_ui_coverage_apptest import clear_results, compute_all

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def results(demo: dict) -> Iterator[None]:
    compute_all()
    yield
    clear_results()


def _drawn_in_new_map(s: Session, what: str, at_least: int, gone: str, timeout: float = 60) -> tuple[int, int]:
    """Counts in the map that replaced the previous one (a new key draws a new iframe; the
    old one detaches while the page reruns): ``what`` and ``gone``."""
    from playwright.sync_api import Error

    deadline = time.time() + timeout
    n = 0
    while time.time() < deadline:
        try:
            frame = s.map_frame()
            n = _wait_drawn(frame, what, at_least=at_least, timeout=10)
            if n >= at_least:
                return n, frame.locator(gone).count()
        except Error:  # the frame went away under us: look again
            s.page.wait_for_timeout(500)
    return n, -1


def test_leader_coverage_map_draws_sectors_and_gaps(server: str, browser, accounts: dict, results: None) -> None:  # noqa: F811
    detail = get_settings().camera_detail_level
    with owner_engine().connect() as c:
        views = cameras.view_layer(c, detail)
        gaps = cameras.uncovered(c, None, detail)
        first = services.categories()[0]  # the category the screen opens with
        homes = services.home_layer(c, first)
    roads = int((gaps["kind"] == "road").sum())
    s = Session(browser, height=2600)
    try:
        browser_sign_in(s.page, server, accounts["leader"])
        s.open(f"{server}/coverage", "覆盖分析")
        frame = s.map_frame()
        drawn = _wait_drawn(frame, "path.wg-camera-views", at_least=len(views))
        assert drawn == len(views) > 100, f"{drawn} camera views drawn of {len(views)}"
        assert _wait_drawn(frame, "path.wg-uncovered-roads", at_least=roads) == roads > 10
        assert frame.locator("path.wg-uncovered-areas").count() == 0  # that layer starts switched off
        legend = frame.locator(".wg-legend").text_content()
        assert "未覆盖道路" in legend and "可视范围（在线，计入）" in legend
        body = _text(s.page)
        assert "雪亮工程" in body and "重点关注网格" in body and "计算时间" in body
        assert "数据已过期" not in body
        s.page.wait_for_timeout(1500)
        s.shot("10_leader_coverage")
        with s.page.expect_download(timeout=60000) as dl:
            s.page.get_by_role("button", name="下载 GeoJSON").click()
        gj = json.loads(Path(dl.value.path()).read_text(encoding="utf-8"))
        assert gj["type"] == "FeatureCollection" and len(gj["features"]) == len(gaps)
        assert sum(f["properties"]["kind"] == "road" for f in gj["features"]) == roads

        # walking access: every home of the chosen category's layer, coloured by reach
        s.page.get_by_text("步行可达", exact=True).first.click()
        s.wait_idle()
        n, views_left = _drawn_in_new_map(s, "path.wg-homes-reach", len(homes), "path.wg-camera-views")
        assert n == len(homes) > 1000
        assert views_left == 0
        s.page.wait_for_timeout(1000)
        s.shot("11_leader_coverage_walking")

        # standards: the communities filled by how many rules each fails
        s.page.get_by_text("社区达标", exact=True).first.click()
        s.wait_idle()
        n, homes_left = _drawn_in_new_map(s, "path.wg-compliance", 8, "path.wg-homes-reach")
        assert n == 8 and homes_left == 0
        s.assert_offline()
    finally:
        s.close()


def test_worker_sees_the_coverage_of_their_grid(server: str, browser, accounts: dict, results: None) -> None:  # noqa: F811
    """The worker's screen ends with their grid's coverage: the camera views over the grid
    and its unseen street stretches on a map of its own."""
    from layers.grids import grid_shape

    worker = accounts["worker"]
    gid = worker.grids[0]  # the first of the worker's grids opens first
    detail = get_settings().camera_detail_level
    with owner_engine().connect() as c:
        shape = grid_shape(c, gid)
        code = str(shape["code"].iloc[0]).strip() if "code" in shape else None
        community = c.execute(text("SELECT community_code, code FROM grids WHERE id = :i"), {"i": gid}).one()
        views = cameras.view_layer(c, detail, community.community_code.strip())
        gaps = cameras.uncovered(c, community.community_code.strip(), detail)
    code = code or community.code.strip()
    outline = shape.geometry.union_all()
    n_views = int(views.intersects(outline).sum())
    n_roads = int(((gaps["kind"] == "road") & (gaps["unit_code"].str.strip() == code)).sum())
    s = Session(browser, height=4200)
    try:
        browser_sign_in(s.page, server, worker)
        s.open(f"{server}/", "本网格覆盖情况")
        s.page.wait_for_selector('iframe[title*="st_folium"] >> nth=1', timeout=60000)
        frame = s.page.query_selector_all('iframe[title*="st_folium"]')[1].content_frame()
        assert _wait_drawn(frame, "path.wg-camera-views", at_least=n_views) == n_views > 0
        assert _wait_drawn(frame, "path.wg-uncovered-roads", at_least=n_roads) == n_roads > 0
        body = _text(s.page)
        assert "本网格各类设施步行可达" in body and "数据已过期" not in body
        s.page.get_by_text("本网格覆盖情况").first.scroll_into_view_if_needed()
        s.page.wait_for_timeout(1500)
        s.shot("12_worker_grid_coverage")
        s.assert_offline()
    finally:
        s.close()
