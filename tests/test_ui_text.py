"""The visible text of every screen of every role, in Chinese and in English, read in real
headless Chromium the way a street leader reads it.

Screens are enumerated from each role's navigation (the sidebar's links), not from a list
here, so a screen another developer adds is covered the day it is registered; the leader's
first view outside Streamlit (``/glance``, webapp/glance.py) is read too. Each page's
text is the main area's ``innerText`` (Material icon names removed: they are glyphs, not
words) plus the header and the drawn cells of every table (a Streamlit table is a canvas;
its cells are in an accessibility grid). The checks: no raw identifier (snake_case words,
``None``, ``NaN``, ``optimal``), no rule section numbers ("standards §"), no traceback, and
no text of the other language outside the names of places and people.
Screenshots of each go to ``tests/screenshots/text_*.png`` for a person to look at.
"""
from __future__ import annotations

import os
import re

import pytest
from sqlalchemy import text

from gis.db import owner_engine
from ui.screens import ROLE_SCREENS
from webapp.glance import ROLES as FIRST_VIEW_ROLES
from tests.test_ui_browser import SHOTS, Session, browser, server  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser

# every role of the navigation, the event roles too; WANGGE_TEXT_ROLES=worker,leader reads only those
ROLES = tuple(r for r in ROLE_SCREENS if not os.environ.get("WANGGE_TEXT_ROLES")
              or r in os.environ["WANGGE_TEXT_ROLES"].split(","))

# What a page holds besides the script's words: icon ligatures and names.
VISIBLE_JS = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  if (!main) return '';
  let text = main.innerText;
  for (const icon of main.querySelectorAll('[data-testid="stIconMaterial"], .material-symbols-rounded')) {
    const w = (icon.textContent || '').trim();
    if (w) text = text.split(w).join(' ');
  }
  const cells = Array.from(main.querySelectorAll('[data-testid="stDataFrame"] [role=columnheader], [data-testid="stDataFrame"] [role=gridcell], [data-testid="stDataFrameResizable"] [role=gridcell]'))
    .map(c => c.textContent);
  return text + '\\n' + cells.join('\\n');
}"""

RAW = [
    (re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b"), "snake_case identifier"),
    (re.compile(r"\b[a-z]+\.[a-z_]+[a-z]\b"), "untranslated label key"),
    (re.compile(r"\bNone\b"), "None"),
    (re.compile(r"\bNaN\b|\bnan\b"), "NaN"),
    (re.compile(r"\boptimal\b"), "solver status"),
    (re.compile(r"standards\s*§|§\s*\d"), "rule section number"),
    (re.compile(r"Traceback|File \"/|\.py\", line"), "traceback"),
    # a screen that failed shows a sentence and a reference number: words, but a failure all the same
    (re.compile(r"请把编号 \w+ 告诉系统管理员|give the administrator reference \w+"), "a failure (see the server log)"),
]
CJK = re.compile(r"[\u3400-\u9fff]+")
LATIN_WORD = re.compile(r"[A-Za-z]{3,}")
# Latin words a Chinese screen may show: formats, units, product and data names.
ZH_ALLOWED = {"PNG", "PDF", "CSV", "KML", "GeoJSON", "Excel", "GeoPackage", "Shapefile", "EPSG", "OpenStreetMap", "Leaflet",
              "OSM", "LSCP", "MCLP", "GCJ", "gcj", "bd09", "gcj02", "Wangge", "OIDC", "GB", "JSON", "xlsx", "csv", "geojson",
              "gpkg", "shp", "kml", "fgb", "zip", "xls", "dbf", "shx", "prj", "cpg", "DORI", "PTZ", "WGS", "CGCS", "ODbL",
              "HiGHS", "demo", "leader", "secretary", "worker", "planner", "admin", "KMZ", "URL", "API", "ID", "JPG", "JPEG"}
# Chinese an English screen may show besides names: the names of programmes and documents.
EN_ALLOWED = {"雪亮工程", "一标三实", "发改高技", "号", "低保"}
# A person's masked name (surname + 某, e.g. 邱某 or 邱某2930 in the demo) is a name: shown as it is.
MASKED_NAME = re.compile(r"[\u4e00-\u9fff]{1,2}某\d*")


def _names() -> set[str]:
    """Names of places, units and people (shown in their own language in both)."""
    with owner_engine().connect() as c:
        rows = c.execute(text("""
            SELECT name FROM subdistricts UNION SELECT name FROM communities UNION SELECT name FROM grids
            UNION SELECT name FROM cadres UNION SELECT name FROM facilities UNION SELECT name FROM cameras
            UNION SELECT address FROM buildings UNION SELECT name FROM roads
            UNION SELECT display_name FROM users UNION SELECT username FROM users
            UNION SELECT actor FROM audit_log UNION SELECT row_key FROM audit_log WHERE table_name = 'users' 
            UNION SELECT description FROM events""")).scalars()  # what a reporter wrote is shown as written
        return {r for r in rows if r}


FILE_NAME = re.compile(r"[\w\-.]+\.(?:csv|gpkg|geojson|json|xlsx|xls|shp|zip|kml|fgb|pbf|pdf|png)\b", re.IGNORECASE)


def problems(page_text: str, lang: str, names: set[str]) -> list[str]:
    """What a reader should not meet on a screen in ``lang`` (names and file names aside)."""
    rest = page_text
    for n in sorted(names, key=len, reverse=True):
        rest = rest.replace(n, " ")
    rest = FILE_NAME.sub(" ", rest)
    rest = MASKED_NAME.sub(" ", rest)
    found = [f"{why}: {m.group(0)!r}" for rx, why in RAW for m in rx.finditer(rest)]
    if lang == "zh":
        found += [f"English word on a Chinese screen: {w!r}" for w in LATIN_WORD.findall(rest)
                  if w not in ZH_ALLOWED and not w.startswith("demo_") and not w.startswith("t_")]
    else:
        for w in EN_ALLOWED:
            rest = rest.replace(w, " ")
        found += [f"Chinese on an English screen: {w!r}" for w in CJK.findall(rest)]
    return sorted(set(found))


def settle(page, timeout_s: float = 120) -> str:
    """The page's visible text once the script has finished and the text stopped growing
    (a long screen is streamed in parts; the status widget alone can go quiet between them)."""
    import time

    deadline, last, same = time.time() + timeout_s, None, 0
    while time.time() < deadline:
        page.wait_for_timeout(1200)
        running = page.evaluate("() => !!document.querySelector('[data-testid=\"stStatusWidget\"]')")
        body = page.evaluate(VISIBLE_JS)
        same = same + 1 if (body == last and not running) else 0
        if same >= 2:
            return body
        last = body
    return last or ""


def _links(page, expected: int) -> list[str]:
    """The role's screens as its navigation lists them (one screen: no navigation is drawn)."""
    if expected > 1:
        page.wait_for_selector('[data-testid="stSidebarNav"] a', timeout=60000)
    return page.locator('[data-testid="stSidebarNav"] a').evaluate_all("els => els.map(e => e.href)") or [page.url]


@pytest.fixture(scope="module")
def analysed(demo: dict) -> None:
    """The coverage analyses computed, as ``make demo`` does, so their screens show figures."""
    from analysis import cameras, compliance, services
    from gis.db import app_engine
    from gis.scope import SYSTEM, use_scope
    from gis.settings import get_settings

    with use_scope(SYSTEM):
        with app_engine().begin() as c:
            cameras.refresh(c, get_settings().camera_detail_level, full=True)
        with app_engine().begin() as c:
            services.refresh(c, full=True)
        with app_engine().begin() as c:
            compliance.refresh(c)


@pytest.fixture(scope="module")
def cases(accounts: dict):
    """A few cases at every stage a screen lists (the demo has none): one reported by the worker,
    one filed and dispatched to the sanitation unit, one urgent from the hotline with its sealed
    reporter, so the queues, tables and maps of the event screens are read with rows in them."""
    from gis import scope as scopes
    from gis.db import transaction
    from gis.scope import SYSTEM, Scope, use_scope
    from layers import events as ev

    worker = accounts["worker"]
    with owner_engine().connect() as c:
        x, y = c.execute(text("SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM grids WHERE id = :g"),
                         {"g": worker.grids[0]}).one()
    with use_scope(Scope(user=worker.username, role="worker", grids=worker.grids)), transaction() as c:
        ev.report_event(c, "E0101", lon=x, lat=y, description="文字检查：小区门口垃圾堆放")
        moved = ev.report_event(c, "E0101", lon=x, lat=y, description="文字检查：路边垃圾未清运")
    with use_scope(SYSTEM), transaction() as c:
        ev.report_event(c, "E0101", lon=x, lat=y, description="文字检查：市民来电反映垃圾", source="hotline", urgent=True,
                        reporter={"name": "张三", "phone": "13800000000"})
    with use_scope(Scope(user=accounts["dispatcher"].username, role="dispatcher")), transaction() as c:
        ev.act(c, moved, "file", class_code="E0101")
        ev.act(c, moved, "dispatch", unit="huanwei")
    yield
    with owner_engine().begin() as c:
        scopes.apply(c.connection.dbapi_connection, SYSTEM)
        c.execute(text("DELETE FROM events WHERE description LIKE '文字检查：%'"))


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_screen_reads_cleanly(server: str, browser, accounts: dict, analysed: None, cases: None, lang: str) -> None:  # noqa: F811
    names = _names()
    report: dict[str, list[str]] = {}
    seen = 0
    for role in ROLES:
        s = Session(browser, height=2400)
        try:
            s.sign_in(server, accounts[role], lang)
            s.page.wait_for_selector('[data-testid="stMain"]', timeout=120000)
            s.wait_idle(120)
            links = _links(s.page, len(ROLE_SCREENS[role]))
            assert len(links) == len(ROLE_SCREENS[role]), f"{role}: navigation shows {len(links)} screens"
            for i, url in enumerate(links):
                s.page.goto(url.split("?")[0] + f"?lang={lang}")
                s.page.wait_for_selector('[data-testid="stMain"]', timeout=120000)
                body = settle(s.page)
                s.shot(f"text_{role}_{i}_{lang}")
                assert len(body.strip()) > 20, f"{role} {url}: empty screen"
                seen += 1
                if found := problems(body, lang, names):
                    report[f"{role} {url}"] = found
            if role in FIRST_VIEW_ROLES:  # the leader's first view outside Streamlit (webapp/glance.py)
                url = f"{server}/glance?lang={lang}"
                s.page.goto(url)
                s.page.wait_for_selector(".wg-legend", timeout=120000)
                # the header's words too, not its language switch (named in its own language, as the
                # dashboard's "语言 / Language" picker in the sidebar, which is not read either)
                body = "\n".join([s.page.inner_text("main"), s.page.inner_text("header .app"), s.page.inner_text("header .who")])
                s.shot(f"text_{role}_glance_{lang}")
                seen += 1
                if found := problems(body, lang, names):
                    report[f"{role} {url}"] = found
        finally:
            s.close()
    assert seen == sum(len(ROLE_SCREENS[r]) + (r in FIRST_VIEW_ROLES) for r in ROLES)
    assert not report, "\n".join(f"{where}:\n  " + "\n  ".join(p) for where, p in report.items())
