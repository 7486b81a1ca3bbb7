"""Map rendering at city scale: PostGIS vector tiles against a folium GeoJSON layer.

What is timed: in headless Chromium (Debian's), for two views — ``open``, the whole
area fitted to the window as the dashboard opens, and ``z15``, the city centre at zoom 15
where buildings start to show (the dense, worst case for tiles) — from navigation start
to the first drawn map — every layer's tiles in view loaded and drawn, and for the baseline the
GeoJSON layer of all buildings added and drawn — read from ``performance.now()`` after
two animation frames, so a paint has happened.

Fair by construction: the same synthetic city (``bench/scale.py``) loaded through the
ordinary importers; the same map built by the dashboard's own component
(``ui.map.build``) with the same view and the same grid, community and road tiles; the only difference is the
building layer: vector tiles from ``/tiles/buildings`` (ours) against every building as
GeoJSON in the page, twice: ``folium`` — a ``folium.GeoJson`` layer as folium makes it
(SVG), the baseline the issue names — and ``geojson`` — the same data drawn on a canvas,
a stronger baseline (with only the three attributes the tiles carry, which favours both). Each page load uses a fresh browser context (no
cache); the two methods alternate; medians are reported. Pages, tiles and Leaflet come
from one local server process running ``webapp.tiles.routes()`` (uvicorn, as the
dashboard does), and every non-local request is blocked.

Also timed, for the record: the whole dashboard (``streamlit run app.py``, street
leader's page) from navigation to its map's grid outlines drawn, at the largest size, and in
the same run the leader's first view outside Streamlit (``/glance``, webapp/glance.py) the same
way (``--dashboard-only`` times only these two, on the city already in the database;
``--leader-pages streamlit`` only the Streamlit page, e.g. with ``--app-root`` of a checkout
that has no ``/glance``).

    WANGGE_DB_NAME=wangge_bench_map python -m bench.bench_map [--sizes 10000 50000 100000] [--repeat 3]

Writes bench/results/map.json and appends a line per size and view to bench/results/history.csv.
The database is emptied: its name must contain "bench".
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import common
from bench.common import LAYER_TABLES, ROOT, check_database, commit, owner_engine, signed_in

CHROMIUM = os.environ.get("WANGGE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 800}
ZOOM = 15


# --- data -------------------------------------------------------------------------------

def load_city(buildings: int, tmp: Path, seed: int = 0, log=print) -> dict:
    """Empty the database and import a synthetic city of ``buildings`` through the importers."""
    from sqlalchemy import text

    from bench.scale import LAYERS, generate, write_gpkg
    from layers.importer import import_file

    t0 = time.perf_counter()
    frames = generate(buildings=buildings, seed=seed)
    gpkg = write_gpkg(frames, tmp / f"city_{buildings}.gpkg")
    with owner_engine().begin() as c:
        c.execute(text(f"TRUNCATE {LAYER_TABLES} RESTART IDENTITY CASCADE"))
    t1 = time.perf_counter()
    for layer in LAYERS:
        import_file(layer, gpkg, source_layer=layer)
    with owner_engine().begin() as c:
        c.execute(text("ANALYZE"))
        counts = dict(c.execute(text(
            "SELECT 'buildings', count(*) FROM buildings UNION ALL SELECT 'grids', count(*) FROM grids "
            "UNION ALL SELECT 'roads', count(*) FROM roads")).all())
        x, y = c.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Centroid(ST_Extent(geom)::geometry) p FROM buildings) q")).one()
        w, s_, e, n = c.execute(text("SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM (SELECT ST_Extent(geom) b FROM communities) q")).one()
    log(f"  city of {buildings:,} buildings generated and imported in {time.perf_counter() - t0:.1f} s "
        f"(import {time.perf_counter() - t1:.1f} s): {counts}")
    return {"centre": (float(x), float(y)), "bounds": (float(w), float(s_), float(e), float(n)),
            "counts": {k: int(v) for k, v in counts.items()}}


def building_geojson() -> dict:
    """Every building as GeoJSON with the attributes the tiles carry (id, use, has households)."""
    from sqlalchemy import text


    with owner_engine().connect() as c:
        fc = c.execute(text("""
            SELECT json_build_object('type', 'FeatureCollection', 'features', json_agg(json_build_object(
              'type', 'Feature', 'properties', json_build_object('id', id, 'u', use, 'h', households > 0),
              'geometry', ST_AsGeoJSON(geom, 6)::json)))
            FROM buildings""")).scalar_one()
    return fc


# --- pages ------------------------------------------------------------------------------

FIRST_DRAWN = """
(function () {
  var pending = %(pending)d, done = false;
  window.__layersDone = [];
  function finish(name) {
    window.__layersDone.push([name, performance.now()]);
    pending -= 1;
    if (pending === 0 && !done) {
      done = true;
      requestAnimationFrame(function () { requestAnimationFrame(function () { window.__drawn = performance.now(); }); });
    }
  }
  %(hooks)s
})();
"""


def page(kind: str, centre: tuple[float, float], geojson: dict | None, zoom: int = ZOOM) -> str:
    """The bench page: the dashboard's map at ``centre``/``zoom``, buildings as tiles or as GeoJSON.

    ``tiles_cold``: the same as ``tiles`` with the server's tile cache bypassed (every tile
    made by PostGIS for this page load)."""
    from ui import map as wmap

    view = wmap.MapView(bounds=None, centre=centre, zoom=zoom,
                        tiles=("communities", "grids", "roads", "buildings") if kind.startswith("tiles") else ("communities", "grids", "roads"))
    m = wmap.build(view, "zh", basemap="none")
    if kind == "tiles_cold":
        for child in m._children.values():
            if isinstance(child, wmap.LocalVectorGrid):
                child.url += "&cache=0"
    from webapp.tiles import BUILDINGS_MIN_ZOOM

    # A layer below its minimum zoom loads no tile and fires no 'load': nothing to wait for.
    layers = [child for child in m._children.values() if isinstance(child, wmap.LocalVectorGrid)
              and not ("/buildings/" in child.url and zoom < BUILDINGS_MIN_ZOOM)]
    hooks = [f"{vg.get_name()}.once('load', function () {{ finish('{vg.url.split('/')[2]}'); }});" for vg in layers]
    if kind == "folium":
        # The literal baseline: a folium.GeoJson layer as folium makes it (SVG paths).
        import folium

        gj = folium.GeoJson(geojson, name="buildings", style_function=lambda f: {
            "weight": 0.6, "color": "#4b5563", "fillOpacity": 0.75, "fillColor": wmap.COLOURS["building"]})
        gj.add_to(m)
        # The layer control names every layer: it must come after this one in the page.
        for key, child in list(m._children.items()):
            if type(child).__name__ == "LayerControl":
                m._children.move_to_end(key)
        hooks.append(f"finish('{gj.get_name()}');")
    if kind == "geojson":
        # As folium.GeoJson does (the data inline in the page), but on a canvas renderer:
        # faster than SVG for many polygons, which favours the baseline.
        style = json.dumps({"weight": 0.6, "color": "#4b5563", "fillOpacity": 0.75, "fillColor": wmap.COLOURS["building"]})
        hooks.append(f"L.geoJSON({json.dumps(geojson, separators=(',', ':'))}, {{renderer: L.canvas(), style: {style}}})"
                     f".addTo({m.get_name()}); finish('geojson');")
    code = FIRST_DRAWN % {"pending": len(hooks), "hooks": "\n  ".join(hooks)}
    m.add_child(wmap._Js(code))
    return m.get_root().render()


# --- server -----------------------------------------------------------------------------

def serve(port: int, pages: Path) -> None:
    """Child process: the tile routes, the static files and the bench pages, on localhost."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    from webapp.tiles import routes, warm

    warm()  # as app.py's lifespan does
    app = Starlette(routes=[*routes(), Mount("/app/static", StaticFiles(directory=ROOT / "static")),
                            Mount("/bench", StaticFiles(directory=pages))])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing listening on {port}")


# --- browser ----------------------------------------------------------------------------

def bench_session() -> str:
    """A street leader's session for the benchmark's browser: tiles answer only signed-in users.

    The user ``bench_leader`` gets a fresh random password each run (nothing to keep)."""
    return signed_in("bench_leader", "leader", "bench_map")


def _signed_context(browser, url: str, session: str | None, **options):
    """A browser context carrying the session cookie for the server of ``url``."""
    from urllib.parse import urlsplit

    from gis.settings import get_settings

    ctx = browser.new_context(**options)
    if session:
        parts = urlsplit(url)
        ctx.add_cookies([{"name": get_settings().session_cookie, "value": session, "url": f"{parts.scheme}://{parts.netloc}"}])
    return ctx


def time_page(browser, url: str, timeout_s: float = 180, session: str | None = None) -> dict:
    """Milliseconds from navigation start to the first drawn map, in a fresh context."""
    blocked: list[str] = []
    tiles = {"n": 0, "bytes": 0}
    ctx = _signed_context(browser, url, session, viewport=VIEWPORT)

    def route(r):
        if r.request.url.startswith(("http://127.0.0.1", "data:", "blob:", "about:")):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    def response(resp):
        if "/tiles/" in resp.url and resp.status == 200:
            tiles["n"] += 1
            tiles["bytes"] += int(resp.headers.get("content-length") or 0)

    ctx.route("**/*", route)
    p = ctx.new_page()
    p.on("response", response)
    p.goto(url, wait_until="commit", timeout=timeout_s * 1000)
    p.wait_for_function("() => window.__drawn !== undefined", timeout=timeout_s * 1000, polling=50)
    drawn = p.evaluate("() => window.__drawn")
    nav = p.evaluate("() => { var n = performance.getEntriesByType('navigation')[0]; return n ? n.transferSize : 0; }")
    ctx.close()
    return {"ms": round(drawn, 1), "html_bytes": nav, "tiles": tiles["n"], "tile_bytes": tiles["bytes"], "blocked": blocked}


GRIDS_DRAWN_JS = """() => { var n = 0; if (!window.map) return false;
    window.map.eachLayer(function (l) { if (l.options && l.options.className === 'wg-tiles-grids')
      for (var k in l._tiles) { var w = l._tiles[k].el._wg; if (w) n += w.features.length; } });
    return n > 0; }"""


def _timed_page(browser, url: str, session: str | None, ctx, allowed: tuple[str, ...]):
    """A new page in ``ctx`` (or in a fresh signed-in context that lets only ``allowed`` URLs through:
    the caller closes it) recording each tile's request and response moments, and the clock they
    are measured on (milliseconds since this call)."""
    if ctx is None:
        ctx = _signed_context(browser, url, session, viewport={"width": 1400, "height": 1400})
        ctx.route("**/*", lambda r: r.continue_() if r.request.url.startswith(allowed) else r.abort())
    p = ctx.new_page()
    tiles: list[dict] = []
    started = time.perf_counter()

    def ms() -> float:
        return round((time.perf_counter() - started) * 1000, 1)

    def on_request(r):
        if "/tiles/" in r.url:
            tiles.append({"url": r.url.split("/tiles/")[1].split("?")[0], "req_ms": ms()})

    def on_response(r):
        if "/tiles/" in r.url:
            name = r.url.split("/tiles/")[1].split("?")[0]
            for t in tiles:
                if t["url"] == name and "resp_ms" not in t:
                    h = r.headers
                    t.update(resp_ms=ms(), status=r.status, cache=h.get("x-tile-cache"),
                             db_ms=float(h.get("server-timing", "db;dur=0").split("dur=")[-1] or 0),
                             bytes=int(h.get("content-length") or 0))
                    break

    p.on("request", on_request)
    p.on("response", on_response)
    return ctx, p, tiles, ms


def time_dashboard(browser, url: str, timeout_s: float = 180, session: str | None = None, ctx=None) -> dict:
    """The whole dashboard (street leader): navigation to its map's grid outlines drawn, with
    the moments in between (milliseconds from navigation): the page's HTML, the title (the
    script's first element on screen), the map's iframe, Leaflet's map made, the first and last
    tile request, and every tile's server time (``Server-Timing``) and cache verdict.

    ``ctx``: a browser context to reuse (a returning user: the browser's cache holds
    Streamlit's scripts); by default a fresh one (nothing cached in the browser)."""
    own = ctx is None
    ctx, p, tiles, ms = _timed_page(browser, url, session, ctx, ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:", "about:"))
    marks: dict[str, float] = {}
    p.goto(url, timeout=timeout_s * 1000, wait_until="commit")
    marks["html"] = ms()
    p.wait_for_selector("h1", timeout=timeout_s * 1000)
    marks["title"] = ms()
    p.wait_for_selector('iframe[title*="st_folium"]', timeout=timeout_s * 1000)
    marks["iframe"] = ms()
    frame = p.query_selector('iframe[title*="st_folium"]').content_frame()
    frame.wait_for_function("() => !!window.map", timeout=timeout_s * 1000, polling=20)
    marks["leaflet"] = ms()
    frame.wait_for_function(GRIDS_DRAWN_JS, timeout=timeout_s * 1000, polling=20)
    marks["drawn"] = ms()
    if tiles:
        marks["first_tile_request"] = min(t["req_ms"] for t in tiles)
        marks["last_tile_response"] = max(t.get("resp_ms", 0) for t in tiles)
    p.close()
    if own:
        ctx.close()
    done = [t for t in tiles if "db_ms" in t]
    return {"ms": marks["drawn"], "marks": marks, "tiles": len(done),
            "tile_db_ms_max": max((t["db_ms"] for t in done), default=None),
            "tile_db_ms_sum": round(sum(t["db_ms"] for t in done), 1),
            "tile_cache_hits": sum(1 for t in done if t["cache"] == "hit"),
            "tile_bytes": sum(t["bytes"] for t in done)}


# --- run --------------------------------------------------------------------------------

def run(sizes: list[int], repeat: int, dashboard: bool, record: bool, allow_any_db: bool, log=print) -> dict:
    from playwright.sync_api import sync_playwright

    database = check_database(allow_any_db, "wangge_bench_map")
    load_before = list(os.getloadavg())
    results: list[dict] = []
    dash: dict | None = None
    with tempfile.TemporaryDirectory(prefix="wangge-bench-map-") as tmp, sync_playwright() as pw:
        tmp_path = Path(tmp)
        pages = tmp_path / "pages"
        pages.mkdir()
        port = _free_port()
        server = subprocess.Popen([sys.executable, "-m", "bench.bench_map", "--serve", str(port), "--pages", str(pages)],
                                  cwd=ROOT, env=os.environ.copy())
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            _wait_port(port, server)
            session = bench_session()
            for n in sizes:
                city = load_city(n, tmp_path, log=log)
                t0 = time.perf_counter()
                gj = building_geojson()
                from ui.map import fit_zoom

                bounds = city["bounds"]
                views = {  # the dashboard's opening view (the whole area fitted), and zoom 15 where buildings show
                    "open": (((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2),
                             fit_zoom(bounds, VIEWPORT["width"], VIEWPORT["height"])),
                    "z15": (city["centre"], ZOOM),
                }
                for view, (centre, zoom) in views.items():
                    (pages / f"geojson_{n}_{view}.html").write_text(page("geojson", centre, gj, zoom), encoding="utf-8")
                    (pages / f"folium_{n}_{view}.html").write_text(page("folium", centre, gj, zoom), encoding="utf-8")
                    (pages / f"tiles_{n}_{view}.html").write_text(page("tiles", centre, None, zoom), encoding="utf-8")
                    (pages / f"tiles_cold_{n}_{view}.html").write_text(page("tiles_cold", centre, None, zoom), encoding="utf-8")
                log(f"  pages built in {time.perf_counter() - t0:.1f} s "
                    f"(GeoJSON page {(pages / f'geojson_{n}_z15.html').stat().st_size / 2**20:.1f} MB)")
                entry = {"buildings": n, "counts": city["counts"], "centre": city["centre"], "views": {}}
                for view, (centre, zoom) in views.items():
                    runs: dict[str, list[dict]] = {"tiles": [], "tiles_cold": [], "geojson": [], "folium": []}
                    for kind in ("tiles", "geojson"):  # untimed: the database's cache meets the new city
                        time_page(browser, f"http://127.0.0.1:{port}/bench/{kind}_{n}_{view}.html", session=session)
                    for i in range(repeat):
                        for kind in (("tiles", "tiles_cold", "geojson", "folium") if i % 2 == 0
                                     else ("folium", "geojson", "tiles_cold", "tiles")):
                            r = time_page(browser, f"http://127.0.0.1:{port}/bench/{kind}_{n}_{view}.html", session=session)
                            if r["blocked"]:
                                raise SystemExit(f"the {kind} page asked for outside resources: {r['blocked'][:3]}")
                            runs[kind].append(r)
                            log(f"  {n:>7,} {view:4s} z{zoom} {kind:8s} run {i + 1}: {r['ms']:8.0f} ms  "
                                f"(page {r['html_bytes'] / 2**20:.2f} MB, {r['tiles']} tiles {r['tile_bytes'] / 2**20:.2f} MB)")
                    ours = statistics.median(r["ms"] for r in runs["tiles"]) / 1000
                    base = statistics.median(r["ms"] for r in runs["geojson"]) / 1000
                    fol = statistics.median(r["ms"] for r in runs["folium"]) / 1000
                    cold = statistics.median(r["ms"] for r in runs["tiles_cold"]) / 1000
                    entry["views"][view] = {
                        "zoom": zoom, "centre": centre,
                        "tiles_s": round(ours, 3), "geojson_s": round(base, 3), "speedup": round(base / ours, 1),
                        "folium_svg_s": round(fol, 3), "speedup_vs_folium_svg": round(fol / ours, 1),
                        "folium_svg_runs_ms": [r["ms"] for r in runs["folium"]],
                        "tiles_uncached_s": round(cold, 3), "tiles_uncached_runs_ms": [r["ms"] for r in runs["tiles_cold"]],
                        "speedup_uncached": round(base / cold, 1), "speedup_uncached_vs_folium_svg": round(fol / cold, 1),
                        "tiles_runs_ms": [r["ms"] for r in runs["tiles"]], "geojson_runs_ms": [r["ms"] for r in runs["geojson"]],
                        "tiles_bytes": runs["tiles"][0]["tile_bytes"], "tiles_requests": runs["tiles"][0]["tiles"],
                        "geojson_page_bytes": runs["geojson"][0]["html_bytes"], "tiles_page_bytes": runs["tiles"][0]["html_bytes"],
                    }
                    log(f"  {n:>7,} {view} (z{zoom}): vector tiles {ours:.2f} s (uncached {cold:.2f} s), GeoJSON canvas {base:.2f} s ({base / ours:.1f}x), "
                        f"folium GeoJson SVG {fol:.2f} s ({fol / ours:.1f}x)")
                results.append(entry)
            if dashboard:
                dash = dashboard_time(browser, sizes[-1], repeat, session, log)
        finally:
            browser.close()
            server.terminate()
            server.wait(timeout=20)
    result = {
        "benchmark": "map",
        "what": "navigation -> first drawn map (all layers in view drawn), headless Chromium, two views: 'open' = the "
                "whole area fitted (as the dashboard opens), 'z15' = city centre at zoom 15 (buildings shown): buildings as "
                "PostGIS vector tiles (ours) vs one folium GeoJSON layer (baseline)",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit(("gis", "ui", "bench")), "database": database, "repeat": repeat, "viewport": VIEWPORT, "zoom": ZOOM,
        "aim": {"tiles_s_at_100000": 1.5, "speedup_at_50000": 7},
        "sizes": results, "dashboard": dash, "cpus": os.cpu_count(),
        # The machine is shared: what else was running matters for every figure above.
        "load_average_before_after": [load_before, list(os.getloadavg())],
    }
    if record:
        save(result)
    return result


APP_ROOT = ROOT  # --app-root: the dashboard of another checkout (the code before a change), same database


def _streamlit(port: int, log_path: Path) -> subprocess.Popen:
    env = {**os.environ, "WANGGE_PROFILE_RUNS": "true", "PYTHONPATH": str(APP_ROOT)}
    return subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true",
                             "--browser.gatherUsageStats", "false"], cwd=APP_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=log_path.open("a"))


def _runs_since(log_path: Path, offset: int) -> tuple[list[dict], int]:
    """The page runs the dashboard printed (``WANGGE_PROFILE_RUNS``) after ``offset`` bytes."""
    raw = log_path.read_bytes()
    runs = [json.loads(line.split("wangge-run ", 1)[1]) for line in raw[offset:].decode(errors="replace").splitlines()
            if "wangge-run " in line]
    return runs, len(raw)


def _breakdown(r: dict, runs: list[dict]) -> dict:
    """Where one page load's time went: browser moments, the script's runs, the tiles."""
    first = runs[0] if runs else {"ms": None, "parts": []}
    return {**r, "script_runs": len(runs), "script_ms": first["ms"], "script_parts": first["parts"],
            "later_runs_ms": [x["ms"] for x in runs[1:]]}


GLANCE_PATH = "/glance"  # webapp/signin.py GLANCE_PATH: the leader's first view outside Streamlit
PAGES = ("streamlit", "glance")


ALL_LAYERS_JS = """() => { var l = window.__wgLoaded || {}, names = ['grids', 'communities', 'roads'];
    if (window.map && window.map.getZoom() >= 15) names.push('buildings');
    for (var i = 0; i < names.length; i++) if (!l[names[i]]) return 0;
    return Math.max.apply(null, names.map(function (k) { return l[k]; })); }"""


def time_glance(browser, url: str, timeout_s: float = 180, session: str | None = None, ctx=None) -> dict:
    """The leader's first view (``/glance``, webapp/glance.py): navigation to its map's grid
    outlines drawn, as :func:`time_dashboard` times the Streamlit page, with the moments in
    between: the HTML, the figures on screen, Leaflet's map made, the first and last tile."""
    own = ctx is None
    ctx, p, tiles, ms = _timed_page(browser, url, session, ctx, ("http://127.0.0.1", "data:", "blob:", "about:"))
    marks: dict[str, float] = {}
    p.goto(url, timeout=timeout_s * 1000, wait_until="commit")
    marks["html"] = ms()
    if "/glance" not in p.url:
        raise SystemExit(f"{url} did not open the leader's first view (now at {p.url}): is the session a leader's?")
    p.wait_for_selector("#figures", timeout=timeout_s * 1000)
    marks["figures"] = ms()
    p.wait_for_function("() => !!window.map", timeout=timeout_s * 1000, polling=20)
    marks["leaflet"] = ms()
    p.wait_for_function(GRIDS_DRAWN_JS, timeout=timeout_s * 1000, polling=20)
    marks["drawn"] = ms()
    # the page asks for roads and buildings once the grids are in: when every layer in view was
    # (the page's own clock, from navigation start), so the whole map's time is on record too
    p.wait_for_function(ALL_LAYERS_JS, timeout=timeout_s * 1000, polling=50)
    marks["all_layers_loaded"] = round(p.evaluate(ALL_LAYERS_JS), 1)
    if tiles:
        marks["first_tile_request"] = min(t["req_ms"] for t in tiles)
        marks["last_tile_response"] = max(t.get("resp_ms", 0) for t in tiles)
    p.close()
    if own:
        ctx.close()
    done = [t for t in tiles if "db_ms" in t]
    return {"ms": marks["drawn"], "all_layers_ms": marks["all_layers_loaded"], "marks": marks, "tiles": len(done),
            "tile_db_ms_max": max((t["db_ms"] for t in done), default=None),
            "tile_db_ms_sum": round(sum(t["db_ms"] for t in done), 1),
            "tile_cache_hits": sum(1 for t in done if t["cache"] == "hit"),
            "tile_bytes": sum(t["bytes"] for t in done)}


def _timer(kind: str):
    return time_glance if kind == "glance" else time_dashboard


def _url(base: str, kind: str) -> str:
    return base + (GLANCE_PATH if kind == "glance" else "/")


def _context(browser, url: str, session: str):
    ctx = _signed_context(browser, url, session, viewport={"width": 1400, "height": 1400})
    ctx.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:", "about:")) else r.abort())
    return ctx


class _Served:
    """``streamlit run app.py`` on a free port for the ``with`` block (its log appended to ``log_path``)."""

    def __init__(self, log_path: Path):
        self.log_path = log_path

    def __enter__(self) -> str:
        port = _free_port()
        self.proc = _streamlit(port, self.log_path)
        try:
            _wait_port(port, self.proc)
        except BaseException:
            self.__exit__()
            raise
        time.sleep(3)  # the lifespan's warm-up of the tile connections finishes
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


def dashboard_time(browser, n: int, repeat: int, session: str, log=print, cold_restarts: int = 2,
                   pages: tuple[str, ...] = PAGES) -> dict:
    """The street leader's first map, on the city already loaded, for each of ``pages``: the
    Streamlit dashboard (``streamlit``: ``/``, the leader's overview; the baseline) and the
    leader's first view outside Streamlit (``glance``: ``/glance``), both served by one
    ``streamlit run app.py``.

    Cold: the first load after the dashboard process starts (its caches empty, its tile
    connections just opened), ``cold_restarts`` times per page, each page in a process of its
    own. Warm: ``repeat`` loads of each page (alternating) in one process after one untimed load
    of each, each in a fresh browser context; returning: ``repeat`` loads in one context per page
    (the browser's cache holds the scripts, as for someone who opened the page before).
    Returns the Streamlit page's figures at the top level (as before) and each page's under its name."""
    out: dict[str, dict] = {k: {"cold": [], "warm": [], "returning": []} for k in pages}
    with tempfile.TemporaryDirectory(prefix="wangge-bench-dash-") as tmp:
        log_path = Path(tmp) / "streamlit.log"
        log_path.touch()
        offset = 0

        def measure(kind: str, base: str, ctx=None) -> dict:
            nonlocal offset
            _, offset = _runs_since(log_path, offset)
            r = _timer(kind)(browser, _url(base, kind), session=session, ctx=ctx)
            time.sleep(1.0)
            runs, offset = _runs_since(log_path, offset)
            return _breakdown(r, runs)

        for restart in range(cold_restarts):
            for kind in (pages if restart % 2 == 0 else tuple(reversed(pages))):
                with _Served(log_path) as base:
                    r = measure(kind, base)
                out[kind]["cold"].append(r)
                log(f"  {kind} (leader, {n:,}) cold {restart + 1}: {r['ms']:.0f} ms {r['marks']} script {r['script_ms']} ms")
        with _Served(log_path) as base:
            for kind in pages:  # untimed: the process's first load of each page
                measure(kind, base)
            for i in range(repeat):
                for kind in (pages if i % 2 == 0 else tuple(reversed(pages))):
                    r = measure(kind, base)
                    out[kind]["warm"].append(r)
                    log(f"  {kind} warm {i + 1}: {r['ms']:.0f} ms {r['marks']} script {r['script_ms']} ms")
            for kind in pages:
                ctx = _context(browser, base, session)
                measure(kind, base, ctx)  # the browser's cache filled (untimed)
                for i in range(repeat):
                    r = measure(kind, base, ctx)
                    out[kind]["returning"].append(r)
                    log(f"  {kind} returning {i + 1}: {r['ms']:.0f} ms {r['marks']} script {r['script_ms']} ms")
                ctx.close()
    med = lambda xs: statistics.median(x["ms"] for x in xs) if xs else None  # noqa: E731
    summary = {k: {"cold_ms": med(v["cold"]), "warm_median_ms": med(v["warm"]), "returning_median_ms": med(v["returning"]),
                   "runs_ms": [x["ms"] for x in v["cold"] + v["warm"]], **v} for k, v in out.items()}
    for k, v in summary.items():  # the whole map (every layer in view loaded), where the page says
        for part in ("cold", "warm", "returning"):
            whole = [x["all_layers_ms"] for x in v[part] if x.get("all_layers_ms") is not None]
            v[f"{part}_all_layers_median_ms"] = statistics.median(whole) if whole else None
    base = summary.get("streamlit") or {"cold_ms": None, "warm_median_ms": None, "returning_median_ms": None,
                                        "runs_ms": [], "cold": [], "warm": [], "returning": []}
    return {"buildings": n, **base, "glance": summary.get("glance")}


def dashboard_only(repeat: int, record: bool, allow_any_db: bool, label: str = "", log=print,
                   pages: tuple[str, ...] = PAGES) -> dict:
    """The leader's dashboard on the city in the database (loaded beforehand, e.g. a 1,000,000-
    building GeoPackage imported under the heavy-job lock): cold, warm and returning, with the
    breakdown. Recorded into ``results/dashboard.json`` (one entry per size and label kept)."""
    from playwright.sync_api import sync_playwright
    from sqlalchemy import text

    database = check_database(allow_any_db, "wangge_bench_map")
    with owner_engine().connect() as c:
        n = int(c.execute(text("SELECT count(*) FROM buildings")).scalar_one())
        grids = int(c.execute(text("SELECT count(*) FROM grids")).scalar_one())
    load_before = list(os.getloadavg())
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            session = bench_session()
            dash = dashboard_time(browser, n, repeat, session, log, pages=pages)
        finally:
            browser.close()
    entry = {"label": label, "app_root": str(APP_ROOT), "date": datetime.now(UTC).isoformat(timespec="seconds"),
             "commit": commit(("gis", "ui", "webapp", "analysis", "layers", "migrations")), "database": database,
             "buildings": n, "grids": grids, "repeat": repeat, **dash,
             "load_average_before_after": [load_before, list(os.getloadavg())]}
    if dash["cold_ms"] is not None:
        log(f"dashboard ({label or 'now'}, {n:,} buildings): cold {dash['cold_ms']:.0f} ms, warm {dash['warm_median_ms']:.0f} ms, "
            f"returning {dash['returning_median_ms']:.0f} ms")
    if dash.get("glance"):
        g = dash["glance"]
        log(f"leader's first view /glance ({label or 'now'}, {n:,} buildings): cold {g['cold_ms']:.0f} ms, "
            f"warm {g['warm_median_ms']:.0f} ms, returning {g['returning_median_ms']:.0f} ms")
    if record:
        path = common.RESULTS / "dashboard.json"
        old = json.loads(path.read_text()) if path.exists() else {"benchmark": "dashboard", "what": (
            "the street leader's dashboard (streamlit run app.py, headless Chromium): navigation to the map's grid "
            "outlines drawn; cold = first load after the process starts, warm = later loads in fresh browser "
            "contexts, returning = later loads in one context (browser cache kept)"), "aim_ms": 1500, "entries": []}
        old["entries"].append(entry)
        old.setdefault("glance", "glance: the leader's first view outside Streamlit (/glance, webapp/glance.py), timed the "
                                 "same way in the same run; its history rows carry the Streamlit page as the baseline")
        key = lambda k: f"{k}_ms" if k == "cold" else f"{k}_median_ms"  # noqa: E731
        rows = [[entry["date"], f"dashboard-{k}{'-' + label if label else ''}", entry["commit"], n,
                 repeat, "", round(entry[key(k)] / 1000, 3), "", "", "", ""] for k in ("cold", "warm", "returning")
                if entry[key(k)] is not None]
        if entry.get("glance"):
            g = entry["glance"]
            rows += [[entry["date"], f"glance-{k}{'-' + label if label else ''}", entry["commit"], n, repeat,
                      round(entry[key(k)] / 1000, 3) if entry[key(k)] is not None else "", round(g[key(k)] / 1000, 3),
                      round(entry[key(k)] / g[key(k)], 1) if entry[key(k)] is not None else "", "", "", ""]
                     for k in ("cold", "warm", "returning")]
        common.save("dashboard", old, rows)
    return entry


def save(result: dict) -> None:
    rows = []
    for r in result["sizes"]:
        for view, v in r["views"].items():
            head = [result["date"], f"map-{view}", result["commit"], r["buildings"], result["repeat"]]
            rows.append(head + [v["geojson_s"], v["tiles_s"], v["speedup"], "", "", ""])
            rows.append([*head[:1], f"map-{view}-folium-svg", *head[2:], v["folium_svg_s"], v["tiles_s"],
                         v["speedup_vs_folium_svg"], "", "", ""])
            rows.append([*head[:1], f"map-{view}-uncached", *head[2:], v["geojson_s"], v["tiles_uncached_s"],
                         v["speedup_uncached"], "", "", ""])
    common.save("map", result, rows)


def main(argv: list[str] | None = None) -> dict | None:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_map", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-dashboard", action="store_true", help="skip timing the whole Streamlit page")
    ap.add_argument("--no-record", action="store_true", help="do not write bench/results")
    ap.add_argument("--allow-any-db", action="store_true")
    ap.add_argument("--dashboard-only", action="store_true",
                    help="time only the leader's dashboard (and --tiles), on the city already in the database")
    ap.add_argument("--label", default="", help="a word recorded with a --dashboard-only run (before/after)")
    ap.add_argument("--leader-pages", dest="dash_pages", nargs="+", choices=PAGES, default=list(PAGES),
                    help="with --dashboard-only: which leader pages to time (the Streamlit dashboard, the first view /glance)")
    ap.add_argument("--app-root", type=Path, help="serve the dashboard from this checkout (e.g. the commit before a change)")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--pages", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        serve(args.serve, args.pages)
        return None
    if args.app_root:
        global APP_ROOT
        APP_ROOT = args.app_root.resolve()
    if args.dashboard_only:
        return dashboard_only(args.repeat, not args.no_record, args.allow_any_db, args.label, pages=tuple(args.dash_pages))
    result = run(args.sizes, args.repeat, not args.no_dashboard, not args.no_record, args.allow_any_db)
    for r in result["sizes"]:
        for view, v in r["views"].items():
            print(f"{r['buildings']:>7,} buildings, {view} (z{v['zoom']}): tiles {v['tiles_s']:.2f} s "
                  f"(server cache bypassed {v['tiles_uncached_s']:.2f} s), "
                  f"GeoJSON on canvas {v['geojson_s']:.2f} s ({v['speedup']}x), "
                  f"folium GeoJson (SVG) {v['folium_svg_s']:.2f} s ({v['speedup_vs_folium_svg']}x)")
    if result["dashboard"]:
        d = result["dashboard"]
        print(f"dashboard (leader page, {d['buildings']:,}): cold {d['cold_ms']:.0f} ms, warm {d['warm_median_ms']:.0f} ms")
    return result


if __name__ == "__main__":
    main()
