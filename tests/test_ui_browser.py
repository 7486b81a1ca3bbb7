"""End to end: the dashboard in headless Chromium, offline.

A ``streamlit run app.py`` is started on a free localhost port against the test
database with the demo loaded. Every request the browser makes to anything but that
server is aborted and recorded; each journey asserts the record is empty, so the
dashboard provably needs no network (no CDN, no basemap, no telemetry). Screenshots of
each screen go to ``tests/screenshots/`` (not committed) for a person to look at.

Chromium is Debian's (``/usr/bin/chromium``); Playwright downloads nothing.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from gis.db import owner_engine
from gis.settings import ROOT, get_settings

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("WANGGE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SHOTS = ROOT / "tests" / "screenshots"
LOCAL = ("http://127.0.0.1", "ws://127.0.0.1", "http://localhost", "ws://localhost", "data:", "blob:", "about:")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(demo: dict) -> Iterator[str]:
    """The dashboard, as a user starts it, on its own port, against the test database."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (BROWSER=1 scripts/bootstrap.sh system installs it)")
    port = _free_port()
    env = {**os.environ, "WANGGE_DB_NAME": get_settings().db_name}
    SHOTS.mkdir(parents=True, exist_ok=True)
    log = open(SHOTS / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.address", "127.0.0.1",
         "--server.headless", "true", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"streamlit exited: see {log.name}")
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


class Session:
    """A page with every non-local request blocked and recorded, and tile responses kept."""

    def __init__(self, browser, height: int = 2400):
        self.blocked: list[str] = []
        self.tiles: list[tuple[str, int, int]] = []
        self.errors: list[str] = []
        self.context = browser.new_context(viewport={"width": 1400, "height": height}, locale="zh-CN", accept_downloads=True)
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("response", self._response)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _route(self, route) -> None:
        url = route.request.url
        if url.startswith(LOCAL):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def _response(self, response) -> None:
        if "/tiles/" in response.url:
            # The header, not the body: reading bodies inside an event handler races the page.
            size = int(response.headers.get("content-length") or 0) if response.status == 200 else 0
            self.tiles.append((response.url, response.status, size))

    def sign_in(self, server: str, account, lang: str = "zh") -> None:
        """Through the real sign-in form; its HttpOnly cookie then goes with every page and tile."""
        from tests.accounts import browser_sign_in

        browser_sign_in(self.page, server, account, lang)

    def open(self, url: str, expect: str) -> None:
        """Go to ``url`` and wait until ``expect`` shows and the script has finished."""
        self.page.goto(url)
        self.page.get_by_text(expect).first.wait_for(timeout=60000)
        self.wait_idle()

    def wait_idle(self, timeout: float = 60) -> None:
        """Until the script has finished running (the status widget has gone)."""
        self.page.wait_for_timeout(400)
        self.page.wait_for_function(
            "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout * 1000)

    def map_frame(self, timeout: float = 30):
        """The first map's frame, once it is attached (a rerun may swap the iframe meanwhile)."""
        deadline = time.time() + timeout
        while True:
            self.page.wait_for_selector('iframe[title*="st_folium"]', timeout=timeout * 1000)
            handle = self.page.query_selector('iframe[title*="st_folium"]')
            frame = handle.content_frame() if handle is not None else None
            if frame is not None or time.time() > deadline:
                return frame
            time.sleep(0.3)

    def shot(self, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def close(self) -> None:
        self.context.close()

    def assert_offline(self) -> None:
        assert self.blocked == [], f"requests to the outside were attempted: {self.blocked}"
        assert self.errors == [], f"page errors: {self.errors}"


def _text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


# Features drawn by a tile layer: each tile canvas keeps the features it drew (ui/map.py).
DRAWN = """(name) => {
  var n = 0;
  window.map.eachLayer(function (l) {
    if (l.options && l.options.className === 'wg-tiles-' + name) {
      for (var k in l._tiles) { var w = l._tiles[k].el._wg; if (w) n += w.features.length; }
    }
  });
  return n;
}"""


def _wait_drawn(frame, what: str, at_least: int, timeout: float = 30) -> int:
    """Until ``at_least`` features of tile layer ``what`` are drawn (or elements match a CSS selector)."""
    deadline = time.time() + timeout
    n = 0
    while time.time() < deadline:
        if what in ("grids", "buildings", "communities", "roads"):
            n = frame.evaluate(DRAWN, what) if frame.evaluate("() => !!window.map") else 0
        else:
            n = frame.locator(what).count()
        if n >= at_least:
            return n
        time.sleep(0.3)
    return n


def test_sign_in_then_leader_overview(server: str, browser, demo: dict, accounts: dict) -> None:
    s = Session(browser)
    try:
        s.page.goto(server)  # no session: the sign-in form, nothing else
        s.page.wait_for_selector("#username", timeout=60000)
        assert "/signin" in s.page.url
        s.shot("00_sign_in")
        s.page.fill("#username", accounts["leader"].username)
        s.page.fill("#password", accounts["leader"].password)
        s.page.click("button[type=submit]")
        s.page.wait_for_url(lambda url: "/glance" in url, timeout=30000)  # the leader's first view (tests/test_glance.py) …
        s.page.click("#full-dashboard")  # … one click from the whole dashboard
        s.page.wait_for_url(lambda url: "/glance" not in url, timeout=30000)
        s.page.get_by_text("关键指标").wait_for(timeout=60000)
        s.wait_idle()
        frame = s.map_frame()
        paths = _wait_drawn(frame, "grids", at_least=demo["grids"] // 2)
        s.page.wait_for_timeout(1500)
        body = _text(s.page)
        assert "街道总览" in body and "关键指标" in body
        assert f"{demo['grids']}" in body  # the grid count among the figures
        assert "户数标准：每格 300–500" in body and "一格一员" in body  # judged figures name their rule
        assert paths >= demo["grids"] // 2, f"only {paths} grid outlines drawn"
        assert frame.locator(".wg-tiles-grids canvas").count() > 0  # drawn on canvases, one per tile
        assert frame.locator(".leaflet-container").count() == 1
        assert frame.locator(".wg-legend").count() == 1
        ok_tiles = [(u, size) for u, status, size in s.tiles if status == 200 and size > 0]
        assert any("/tiles/grids/" in u for u, _ in ok_tiles), s.tiles[:10]
        assert any("/tiles/buildings/" in u for u, _ in ok_tiles), "no building tile drawn at the overview's zoom"
        s.shot("01_leader_overview")
        s.assert_offline()
    finally:
        s.close()


# Where on screen a drawn building is: its tile-pixel bounds moved into container pixels.
BUILDING_POINT = """() => {
  var layer; window.map.eachLayer(function (l) { if (l.options && l.options.className === 'wg-tiles-buildings') layer = l; });
  var size = window.map.getSize(), ts = layer.getTileSize();
  for (var key in layer._tiles) {
    var t = layer._tiles[key], w = t.el._wg;
    if (!w) continue;
    for (var i = 0; i < w.features.length; i++) {
      var f = w.features[i], ring = f.geometry[0], x = 0, y = 0;
      if (!f.properties.h) continue;
      for (var j = 0; j < ring.length - 1; j++) { x += ring[j].x; y += ring[j].y; }
      x = x / (ring.length - 1) * w.k + t.coords.x * ts.x; y = y / (ring.length - 1) * w.k + t.coords.y * ts.y;
      var p = window.map.latLngToContainerPoint(window.map.unproject([x, y], t.coords.z));
      if (p.x > 60 && p.y > 60 && p.x < size.x - 260 && p.y < size.y - 60) return {x: p.x, y: p.y, id: f.id};
    }
  }
  return null;
}"""


def test_map_click_shows_attributes_by_id(server: str, browser, accounts: dict) -> None:
    """Clicking a building (a vector-tile feature with only id/use/has-households) shows
    its address, households and groups, looked up in the database by that id."""
    from gis.db import app_engine
    from layers.buildings import building_detail

    s = Session(browser)
    try:
        s.sign_in(server, accounts["leader"])
        s.open(f"{server}/", "街道总览")
        frame = s.map_frame()
        _wait_drawn(frame, "grids", at_least=20)
        s.page.wait_for_timeout(2000)
        target = frame.evaluate(BUILDING_POINT)
        assert target, "no building drawn in view"
        box = frame.locator(".leaflet-container").bounding_box()  # page coordinates, iframe included
        with app_engine().connect() as c:
            expected = building_detail(c, int(target["id"]))
        assert expected and expected["households"] > 0
        s.page.mouse.click(box["x"] + target["x"], box["y"] + target["y"])
        # st.dataframe draws on a canvas; its cells are mirrored in an accessible (hidden) table.
        s.page.get_by_text(expected["address"] or expected["source_id"]).first.wait_for(state="attached", timeout=30000)
        s.wait_idle()
        cells = s.page.locator('[data-testid="stDataFrame"]').first.locator('[role="gridcell"]').all_inner_texts()
        assert "楼栋" in cells and str(expected["households"]) in cells
        assert (expected["address"] or expected["source_id"]) in cells
        assert "65岁以上老人" not in cells  # a leader without the grant sees no per-building group counts
        s.shot("02_leader_map_click")
        s.assert_offline()
    finally:
        s.close()


def test_grid_worker_downloads_map_and_geojson(server: str, browser, accounts: dict, tmp_path: Path) -> None:
    s = Session(browser, height=2800)
    try:
        s.sign_in(server, accounts["worker"])
        s.open(f"{server}/", "我的网格")
        # Open the second grid of the list.
        s.page.locator('[data-testid="stSelectbox"]').first.click()
        options = s.page.locator('[role="option"]')
        options.nth(1).click()
        s.wait_idle()
        frame = s.map_frame()
        _wait_drawn(frame, "path.leaflet-interactive", at_least=3)
        s.page.wait_for_timeout(1500)
        body = _text(s.page)
        assert "我的网格" in body and "楼栋清单" in body and "网格员职责清单" in body
        assert "第02网格 · 我的网格" in s.page.locator("h1").first.inner_text()
        s.shot("03_grid_worker")
        with s.page.expect_download(timeout=60000) as dl:
            s.page.get_by_role("button", name="地图与清单 PNG").click()
        png = tmp_path / dl.value.suggested_filename
        dl.value.save_as(png)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20000
        (SHOTS / "04_grid_worker_print.png").write_bytes(png.read_bytes())
        with s.page.expect_download(timeout=60000) as dl:
            s.page.get_by_role("button", name="GeoJSON（手机地图）").click()
        gj = json.loads(Path(dl.value.path()).read_text(encoding="utf-8"))
        kinds = {f["properties"]["kind"] for f in gj["features"]}
        assert gj["type"] == "FeatureCollection" and {"本网格", "楼栋"} <= kinds
        with s.page.expect_download(timeout=60000) as dl:
            s.page.get_by_role("button", name="地图与清单 PDF").click()
        assert Path(dl.value.path()).read_bytes()[:5] == b"%PDF-"
        s.assert_offline()
    finally:
        s.close()


GOOD = {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}, "features": [
    {"type": "Feature", "properties": {"source_id": "UITEST-1", "name": "测试服务站一", "category": "社区服务站"},
     "geometry": {"type": "Point", "coordinates": [114.312, 30.546]}},
    {"type": "Feature", "properties": {"source_id": "UITEST-2", "name": "测试卫生站", "category": "health_station"},
     "geometry": {"type": "Point", "coordinates": [114.318, 30.549]}},
]}
BAD = {"type": "FeatureCollection", "crs": GOOD["crs"], "features": [
    {"type": "Feature", "properties": {"source_id": "UITEST-3", "name": "好的一行", "category": "幼儿园"},
     "geometry": {"type": "Point", "coordinates": [114.313, 30.547]}},
    {"type": "Feature", "properties": {"source_id": "UITEST-4", "name": "坏类别", "category": "火星基地"},
     "geometry": {"type": "Point", "coordinates": [114.314, 30.548]}},
    {"type": "Feature", "properties": {"source_id": None, "name": "缺编号", "category": "小学"},
     "geometry": {"type": "Point", "coordinates": [114.315, 30.549]}},
]}


def _facilities(where: str = "TRUE") -> int:
    with owner_engine().connect() as c:
        return int(c.execute(text(f"SELECT count(*) FROM facilities WHERE {where}")).scalar_one())


def _admin_import(s: Session, server: str, path: Path, accounts: dict) -> None:
    s.sign_in(server, accounts["admin"])
    s.open(f"{server}/", "数据导入")
    assert "数据导入" in _text(s.page)
    s.page.locator('[data-testid="stSelectbox"]').first.click()
    s.page.locator('[role="option"]', has_text="配套设施").first.click()
    s.wait_idle()
    s.page.locator('input[type="file"]').set_input_files(str(path))
    s.page.wait_for_timeout(800)
    s.page.get_by_role("button", name="导入", exact=True).click()


def test_admin_rejects_bad_file_naming_rows(server: str, browser, accounts: dict, tmp_path: Path) -> None:
    before = _facilities()
    s = Session(browser)
    try:
        # A name no file on the server should have: it is stored under a safe name.
        bad = tmp_path / "坏 文件;rm -rf (2).geojson"
        bad.write_text(json.dumps(BAD, ensure_ascii=False), encoding="utf-8")
        _admin_import(s, server, bad, accounts)
        s.page.get_by_text("导入失败，未写入任何数据").wait_for(timeout=60000)
        s.wait_idle()
        body = _text(s.page)
        assert "（2 个问题）" in body, body
        report = s.page.locator('[data-testid="stTable"]').first.inner_text()
        assert "坏_文件_rm_-rf_2.geojson" in report  # the safe name
        assert "UITEST-4" in report and "火星基地" in report  # row 2: its ID and the bad value
        assert "必填字段为空" in report and "source_id" in report  # row 3: no ID (in the screen's language, naming the column)
        rows = [line.split("\t") for line in report.splitlines()]
        assert {"2", "3"} <= {cell.strip() for row in rows for cell in row}
        s.shot("05_admin_import_rejected")
        assert _facilities() == before, "a rejected file wrote rows"
        assert _facilities("source_id LIKE 'UITEST-%'") == 0
        s.assert_offline()
    finally:
        s.close()


def test_admin_imports_good_file(server: str, browser, accounts: dict, tmp_path: Path) -> None:
    before = _facilities()
    s = Session(browser)
    try:
        good = tmp_path / "good_facilities.geojson"
        good.write_text(json.dumps(GOOD, ensure_ascii=False), encoding="utf-8")
        _admin_import(s, server, good, accounts)
        s.page.get_by_text("导入成功").wait_for(timeout=60000)
        s.wait_idle()
        body = _text(s.page)
        assert "2 条记录写入" in body and "图层状态" in body
        assert _facilities() == before + 2
        s.shot("06_admin_import_ok")
        s.assert_offline()
    finally:
        s.close()
        with owner_engine().begin() as c:  # leave the committed demo as it was
            c.execute(text("DELETE FROM facilities WHERE source_id LIKE 'UITEST-%'"))
            c.execute(text("DELETE FROM audit_log WHERE actor = 't_admin'"))


@pytest.mark.parametrize("role,expect", [
    ("secretary", ["社区概况", "本社区网格"]),
    ("planner", ["规划总览", "配套设施（按类别）"]),
])
def test_landing_screens(server: str, browser, accounts: dict, role: str, expect: list[str]) -> None:
    s = Session(browser)
    try:
        s.sign_in(server, accounts[role])
        s.open(f"{server}/", expect[0])
        frame = s.map_frame()
        assert _wait_drawn(frame, "grids", at_least=5) >= 5
        s.page.wait_for_timeout(1000)
        body = _text(s.page)
        for e in expect:
            assert e in body
        s.shot(f"07_{role}")
        s.assert_offline()
    finally:
        s.close()


def test_english(server: str, browser, accounts: dict) -> None:
    s = Session(browser)
    try:
        s.sign_in(server, accounts["leader"], lang="en")
        s.open(f"{server}/?lang=en", "Sub-district overview")
        frame = s.map_frame()
        _wait_drawn(frame, "grids", at_least=5)
        s.page.wait_for_timeout(1000)
        body = _text(s.page)
        assert "Sub-district overview" in body and "Household band: 300–500" in body
        assert "Grid status" in frame.locator(".wg-legend").text_content()  # folded by default: its rows are in the page
        s.shot("08_leader_english")
        s.assert_offline()
    finally:
        s.close()


RED = "#d7301f"  # ui/map.py COLOURS["no_worker"]


def test_leader_assigns_worker_and_gap_leaves_the_map(server: str, browser, accounts: dict) -> None:
    """The design card's core workflow: an unstaffed grid is red; the leader assigns an idle
    worker to it; after the rerun it is no longer red and the figure drops by one."""
    from gis.db import owner_engine

    s = Session(browser)
    with owner_engine().connect() as c:  # what the test adds is undone by id (the default worker is the least loaded one)
        last_assignment, last_audit = c.execute(text(
            "SELECT (SELECT coalesce(max(id), 0) FROM assignments), (SELECT coalesce(max(id), 0) FROM audit_log)")).one()
    try:
        s.sign_in(server, accounts["leader"])
        s.open(f"{server}/staffing", "人员缺口")
        frame = s.map_frame()
        red = f'path[fill="{RED}"]'
        before = _wait_drawn(frame, red, at_least=5)
        assert before == 5, f"{before} red grids"
        s.shot("30_leader_staffing")
        s.page.get_by_role("button", name="分配", exact=True).click()
        s.wait_idle()
        deadline = time.time() + 30
        after = before
        while time.time() < deadline and after != before - 1:
            try:  # the rerun replaces the map's frame
                after = s.map_frame().locator(red).count()
            except Exception:  # noqa: BLE001 - a detached frame mid-rerun: look again
                pass
            time.sleep(0.3)
        assert after == before - 1
        s.shot("31_leader_staffing_assigned")
        s.assert_offline()
    finally:
        s.close()
        with owner_engine().begin() as c:
            c.execute(text("""UPDATE grids SET staff_version = 0 WHERE valid_to IS NULL
                              AND id IN (SELECT grid_id FROM assignments WHERE id > :a)"""), {"a": last_assignment})
            c.execute(text("DELETE FROM assignments WHERE id > :a"), {"a": last_assignment})
            c.execute(text("DELETE FROM audit_log WHERE id > :l AND action = 'assign'"), {"l": last_audit})
