"""The street leader's first view: key figures and the grid map as one plain page.

Why outside Streamlit: the leader's Streamlit overview needs ~90 ms of Python, but before
its map is drawn the browser must boot Streamlit's frontend, open its websocket, run the
script, then load the st_folium iframe and Leaflet inside it: 4.4 s warm and 6.6 s cold at
1,000,000 buildings (bench/results/dashboard.json), far above the 1.5 s a person accepts.
This page is served by the dashboard's own process (``GET /glance``, mounted by ``app.py``
through ``webapp.routes``): the figures are written into the HTML by the server, and the
map is Leaflet with the same canvas tile layer, colours and ``/tiles`` the Streamlit map
uses (``webapp.mapstyle``), loaded from ``/app/static/vendor`` (nothing from the internet).

Same facts as the Streamlit overview, from the same functions: ``analysis.overview.figures``
and ``coverage_figures`` (the overview's ``data.figures``), ``bounds``, ``subdistricts``;
the rules' values from ``analysis.overview.rules``; the words from ``ui/i18n.py`` and the
number formats from ``ui/fmt.py`` (two tables that import no screen: tests/test_floors.py
allows them here, as for the sign-in form). Same session and scope as the tiles: the
HttpOnly cookie is checked in the database (``webapp.sessions``) and the user's scope is
set for the figures' transaction, so row-level security cuts them to the user's area.
Only roles with the leader's overview open it; anyone else is sent to their dashboard.
"""
from __future__ import annotations

import html
import json
import re
from urllib.parse import quote, urlencode

from sqlalchemy import text

from gis.db import transaction
from gis.scope import SYSTEM, use_scope
from gis.settings import get_settings
from ui.fmt import fmt_int, fmt_num, fmt_pct
from ui.i18n import t
from webapp.mapstyle import COLOURS, FAST_TILES_JS, TILE_STYLES, TILE_Z
from webapp.signin import GLANCE_PATH, SIGNIN_PATH
from webapp.tiles import BUILDINGS_MIN_ZOOM, MAJOR_ROADS

VENDOR = "/app/static/vendor"
# Roles whose dashboard opens on the sub-district overview (ui/screens ROLE_SCREENS: "overview").
ROLES = ("leader",)
# The leader's screens of the full dashboard (ui/screens ROLE_SCREENS["leader"]; a test keeps
# the two lists equal): (url path, title key). The overview is the dashboard's landing page.
LEADER_SCREENS = (("", "page.overview"), ("coverage", "page.coverage"), ("staffing", "page.staffing"),
                  ("event-kpi", "page.events_kpi"), ("people", "page.people_overview"))
# The map's tile layers, drawn in the dashboard's order (TILE_Z). FIRST_LAYERS are asked for at
# once (a browser sends six requests at a time): the grids, what the leader opens the page for,
# and the community outlines (light); the others when the grids are in (map_script).
MAP_LAYERS = ("grids", "communities", "roads", "buildings")
FIRST_LAYERS = ("communities", "grids")


def _lang(asked: str | None) -> str:
    """Chinese unless ``?lang=en`` (the sign-in form adds the chosen language) or the setting says English."""
    lang = asked or get_settings().language
    return "en" if lang == "en" else "zh"


def _rule_text(key: str, lang: str) -> str:
    """A rule in words with its values, as the Streamlit overview shows it (ui/common.rule_text)."""
    from analysis.overview import rules

    values = [int(v) if isinstance(v, (int, float)) and float(v).is_integer() else v for v in rules()[key].values]
    return t(f"rule.{key}", lang, *values)


def overview(conn, subdistrict: str | None) -> dict:
    """What the page shows, read in the caller's scope: the sub-districts, the one in view,
    its key figures (with coverage, as ``ui.data.figures``) and its bounds."""
    from analysis import overview as ov

    subs = ov.subdistricts(conn)
    codes = [str(c) for c in subs["code"]]
    names = dict(zip(codes, (str(n) for n in subs["name"])))
    if not codes:
        return {"subdistricts": {}, "code": None}
    code = subdistrict if subdistrict in names else codes[0]
    figures = ov.figures(conn, code)
    figures["coverage"] = ov.coverage_figures(conn, code)
    return {"subdistricts": names, "code": code, "figures": figures, "bounds": ov.bounds(conn, code)}


def written(conn) -> tuple[int, int]:
    """What changes when anything the figures count is written: the newest audit row (imports,
    the administrator's edits) and the newest tile version (migration 0024's triggers bump it on
    every write to buildings, grids, assignments, communities and roads, audited or not)."""
    row = conn.execute(text("SELECT audit_version(), (SELECT coalesce(max(v), 0) FROM tile_epochs)")).one()
    return int(row[0] or 0), int(row[1] or 0)


class _Recent:
    """The page's reads, kept for ``TTL_S`` seconds per user and sub-district while nothing was
    written: as the dashboard's reads are kept (ui/cache.py: 30 s, keyed by ``cache_key``), but
    forgotten at once when anything they count is written (:func:`written` is part of the key;
    coverage results, recomputed by the leader, age out with the 30 s as on the dashboard).
    A city's figures read 50,000 grids' verdicts."""

    TTL_S = 30.0
    MAX = 2000

    def __init__(self) -> None:
        from threading import Lock

        self._items: dict[tuple, tuple[float, dict]] = {}
        self._lock = Lock()

    def read(self, conn, scope, subdistrict: str | None) -> dict:
        import time

        from gis.scope import cache_key

        key = (cache_key(scope), subdistrict, *written(conn))
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(key)
            if hit and now - hit[0] < self.TTL_S:
                return hit[1]
        data = overview(conn, subdistrict)
        with self._lock:
            if len(self._items) >= self.MAX:
                self._items.clear()
            self._items[key] = (now, data)
        return data


RECENT = _Recent()


def _metric(label: str, value: str, caption: str = "", delta: tuple[str, bool] | None = None, key: str = "") -> str:
    d = ""
    if delta:
        d = f'<div class="delta {"bad" if delta[1] else "good"}">{"↑" if delta[1] else "✓"} {html.escape(delta[0])}</div>'
    cap = f'<div class="cap">{html.escape(caption)}</div>' if caption else ""
    return (f'<div class="metric" data-key="{key}"><div class="label">{html.escape(label)}</div>'
            f'<div class="value">{html.escape(value)}</div>{d}{cap}</div>')


def figures_html(fig: dict, lang: str) -> str:
    """The key figures as the Streamlit overview lays them out (ui/common.figure_tiles)."""
    per_worker = get_settings().households_per_worker
    row1 = []
    for key in ("communities", "grids", "buildings", "households", "residents"):
        cap = ""
        if key in ("households", "residents") and fig.get("estimated_buildings"):
            cap = f"{t('hh.estimated', lang)} · {t('hh.some_estimated', lang, n=fig['estimated_buildings'])}"
        row1.append(_metric(t(f"fig.{key}", lang), fmt_int(fig[key]), cap, key=key))
    hpw = fig["households_per_full_time"]
    row2 = [
        _metric(t("fig.full_time_workers", lang), fmt_int(fig["full_time_workers"]), key="full_time_workers"),
        _metric(t("fig.grids_without_full_time", lang), fmt_int(fig["grids_without_full_time"]),
                _rule_text("one_grid_one_worker", lang), key="grids_without_full_time"),
        _metric(t("fig.households_per_full_time", lang), fmt_num(hpw, 0), _rule_text("households_per_worker", lang),
                None if hpw is None else (t("rule.over", lang) if hpw > per_worker else t("rule.within", lang), hpw > per_worker),
                key="households_per_full_time"),
        _metric(t("fig.grids_over_band", lang), fmt_int(fig["grids_over_band"]), _rule_text("households_band", lang),
                key="grids_over_band"),
        _metric(t("fig.grids_under_band", lang), fmt_int(fig["grids_under_band"]), _rule_text("households_band", lang),
                key="grids_under_band"),
    ]
    out = [f'<div class="row">{"".join(row1)}</div>', f'<div class="row">{"".join(row2)}</div>']
    if fig.get("grids_over_residents"):
        out.append(f'<p class="warn">{html.escape(t("fig.grids_over_residents", lang))}：{fig["grids_over_residents"]}'
                   f'（{html.escape(_rule_text("residents_max", lang))}）</p>')
    coverage = fig.get("coverage") or {}
    if coverage:
        out.append('<div class="row">' + "".join(_metric(t(f"cov.{k}", lang), fmt_pct(v), key=f"cov_{k}")
                                                 for k, v in coverage.items()) + "</div>")
    else:
        out.append(f'<p class="cap">{html.escape(t("fig.coverage_pending", lang))}</p>')
    return "\n".join(out)


def _legend(lang: str) -> str:
    from analysis.overview import NO_WORKER, OK, OVER, UNDER, UNKNOWN

    rows = [f"<b>{html.escape(t('legend.grids', lang))}</b>"]
    rows += [f"<i style='background:{COLOURS[k]}'></i>{html.escape(t('status.' + k, lang))}"
             for k in (NO_WORKER, OVER, UNDER, OK, UNKNOWN)]
    rows.append(f"<i style='background:none;border:2px dashed {COLOURS['community']}'></i>{html.escape(t('layer.communities', lang))}")
    rows.append(f"<i style='background:{COLOURS['building']}'></i>{html.escape(t('legend.buildings', lang))}")
    rows.append(f"<i style='background:{COLOURS['building_empty']}'></i>{html.escape(t('legend.buildings_empty', lang))}")
    rows.append(f"<span class='cap'>{html.escape(t('legend.buildings_zoom', lang, z=BUILDINGS_MIN_ZOOM))}</span>")
    return "<br>".join(rows)


def map_script(bounds: tuple[float, float, float, float] | None, lang: str) -> str:
    """Leaflet with the Streamlit map's tile layers (same styles, same canvas drawing), fitted
    to the area. ``window.map``: the benchmark and the tests look for the drawn grid outlines.

    The grids and community outlines are asked for first; roads and buildings once the grids
    are in (or after a second at most): at a city's size the low-zoom road tiles are the
    largest (hundreds of kB, every main road of a quarter of the city), and decoding them on the
    browser's one thread held the grids back. ``window.__wgLoaded``: when each layer's tiles in
    view were all in (``performance.now()``, from navigation), for the benchmark."""
    w, s, e, n = bounds or (114.2, 30.5, 114.4, 30.6)
    makers = []
    for name in MAP_LAYERS:
        style = TILE_STYLES[name] % {"bz": BUILDINGS_MIN_ZOOM}
        makers.append(f"""{name}: function () {{ return new L.WgFastTiles('/tiles/{name}/{{z}}/{{x}}/{{y}}.pbf?size=512', {{
            interactive: false, tileSize: 512, maxNativeZoom: 18, maxZoom: 19, zIndex: {TILE_Z[name]},
            {"minZoom: %d," % BUILDINGS_MIN_ZOOM if name == "buildings" else ""}
            className: 'wg-tiles-{name}',
            vectorTileLayerStyles: {{ {name}: (function () {{ return {style}; }})() }}
        }}); }}""")
    return f"""
var COLOURS = {json.dumps(COLOURS)}, MAJOR = {json.dumps(list(MAJOR_ROADS), ensure_ascii=False)};
var map = L.map('map', {{zoomSnap: 0.25, maxZoom: 19}});
window.map = map;
window.__wgLoaded = {{}};
map.fitBounds([[{s}, {w}], [{n}, {e}]]);
{FAST_TILES_JS}
var MAKE = {{ {", ".join(makers)} }};
function addLayer(name) {{
  var layer = MAKE[name]();
  layer.once('load', function () {{ window.__wgLoaded[name] = performance.now(); }});
  return layer.addTo(map);
}}
var rest = {json.dumps([m for m in MAP_LAYERS if m not in FIRST_LAYERS])}, restAdded = false;
function addRest() {{ if (!restAdded) {{ restAdded = true; rest.forEach(addLayer); }} }}
{"".join(f"addLayer({json.dumps(m)});" for m in FIRST_LAYERS if m != "grids")}
addLayer('grids').once('load', addRest);
setTimeout(addRest, 1000);
L.control.scale({{metric: true, imperial: false, position: 'bottomleft'}}).addTo(map);
map.attributionControl.setPrefix({json.dumps(t('map.attribution', lang), ensure_ascii=False)});
var legend = L.control({{position: 'bottomright'}});
legend.onAdd = function () {{ var d = L.DomUtil.create('div', 'wg-legend'); d.innerHTML = {json.dumps(_legend(lang), ensure_ascii=False)}; return d; }};
legend.addTo(map);
"""


def _code_text(text_: str) -> str:
    """A sentence from the words table, escaped, with its `commands` as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text_))


def page(user, data: dict, lang: str) -> str:
    """The whole page; every value shown is escaped."""
    other = "en" if lang == "zh" else "zh"
    q = f"?lang={lang}"
    names = data["subdistricts"]
    code = data["code"]
    title = f"{names.get(code, '')} · {t('page.overview', lang)}" if code else t("page.overview", lang)
    screens = "".join(
        f'<a class="screen" href="/{path}{q}">{html.escape(t(key, lang))}</a>' for path, key in LEADER_SCREENS if path)
    subs = ""
    if len(names) > 1:
        subs = f'<nav class="subs">{html.escape(t("app.subdistrict", lang))}：' + " ".join(
            f'<a href="{GLANCE_PATH}?{urlencode({"lang": lang, "sub": c})}"{" class=on" if c == code else ""}>{html.escape(nm)}</a>'
            for c, nm in names.items()) + "</nav>"
    who = f"{user.display_name or user.username}（{user.username}）· {t('role.' + user.role, lang)}"
    here = f"{GLANCE_PATH}?{urlencode({'lang': other, **({'sub': code} if code and len(names) > 1 else {})})}"
    if code:
        body = f"""
<h2>{html.escape(t('fig.key_figures', lang))}</h2>
<section id="figures">{figures_html(data['figures'], lang)}</section>
<h2>{html.escape(t('map.title', lang))}</h2>
<div id="map"></div>
<script>{map_script(data['bounds'], lang)}</script>"""
    else:
        body = f'<p class="info">{_code_text(t("app.no_data", lang))}</p>'
    return f"""<!doctype html>
<html lang="{'zh-CN' if lang == 'zh' else 'en'}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · 网格 Wangge</title>
<link rel="stylesheet" href="{VENDOR}/leaflet/leaflet.css">
<script src="{VENDOR}/leaflet/leaflet.js"></script>
<script src="{VENDOR}/leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js"></script>
<style>
body {{ font-family: "Noto Sans CJK SC", "Noto Sans SC", "Microsoft YaHei", sans-serif; margin: 0; color: #1c1917; background: #fff; }}
header {{ display: flex; flex-wrap: wrap; align-items: center; gap: .4rem 1.2rem; padding: .6rem 1.5rem; background: #f5f5f4;
          border-bottom: 1px solid #e7e5e4; }}
header .app {{ font-weight: bold; }} header .who {{ color: #57534e; font-size: .9rem; }}
header .lang {{ margin-left: auto; }}
main {{ padding: .5rem 1.5rem 2rem; max-width: 1400px; }}
h1 {{ font-size: 1.8rem; margin: .8rem 0 .4rem; }} h2 {{ font-size: 1.25rem; margin: 1.2rem 0 .5rem; }}
a {{ color: #b91c1c; }}
.screens {{ display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; margin: .3rem 0; }}
.screens a.full {{ background: #b91c1c; color: #fff; padding: .45rem .9rem; border-radius: 6px; text-decoration: none; font-weight: bold; }}
.screens a.screen {{ border: 1px solid #d6d3d1; padding: .35rem .7rem; border-radius: 6px; text-decoration: none; }}
.subs a {{ margin-right: .6rem; }} .subs a.on {{ font-weight: bold; color: #1c1917; text-decoration: none; }}
.row {{ display: grid; grid-template-columns: repeat(5, minmax(0, 1fr)); gap: 1rem; margin-bottom: 1rem; }}
.metric .label {{ font-size: .9rem; color: #44403c; }} .metric .value {{ font-size: 1.9rem; line-height: 1.3; }}
.delta {{ display: inline-block; font-size: .85rem; padding: 0 .4rem; border-radius: 4px; }}
.delta.bad {{ color: #b91c1c; background: #fef2f2; }} .delta.good {{ color: #15803d; background: #f0fdf4; }}
.cap {{ font-size: .8rem; color: #78716c; }} .warn {{ background: #fffbeb; color: #92400e; padding: .5rem .8rem; border-radius: 6px; }}
.info {{ background: #eff6ff; padding: .8rem; border-radius: 6px; }}
#map {{ height: 560px; border-radius: 6px; background: {COLOURS['background']}; }}
.leaflet-container {{ font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; }}
.wg-legend {{ background: rgba(255,255,255,.92); padding: 6px 9px; border-radius: 4px; font-size: 12px; line-height: 18px; box-shadow: 0 1px 4px rgba(0,0,0,.3); }}
.wg-legend i {{ display: inline-block; width: 14px; height: 10px; margin-right: 6px; vertical-align: middle; border: 1px solid rgba(0,0,0,.3); }}
</style></head><body>
<header><span class="app">{html.escape(t('app.title', lang))}</span><span class="who">{html.escape(who)}</span>
<a class="lang" href="{html.escape(here)}">{'English' if other == 'en' else '中文'}</a></header>
<main>
<h1>{html.escape(title)}</h1>
{subs}
<nav class="screens"><a class="full" id="full-dashboard" href="/{q}">{html.escape(t('glance.full_dashboard', lang))}</a>
<span class="cap">{html.escape(t('glance.screens', lang))}</span>{screens}</nav>
{body}
</main></body></html>"""


def warm() -> None:
    """Read the page's figures once at start-up (discarded): the first leader after a restart
    then finds the analysis imported, a pooled connection open with PostGIS loaded in it and the
    queries planned once, instead of paying for them (a third of a second at 10,000 buildings)."""
    with use_scope(SYSTEM), transaction() as conn:
        overview(conn, None)


def glance_endpoint(request):  # starlette Request -> Response; sync: Starlette runs it in a thread
    """``GET /glance``: the page for the signed-in leader; signed out (or an ended session): to
    the sign-in form and back here; any other role: to their own dashboard."""
    from starlette.responses import HTMLResponse, RedirectResponse

    from webapp import sessions

    q = request.query_params
    lang = _lang(q.get("lang"))
    token = request.cookies.get(get_settings().session_cookie)
    with use_scope(SYSTEM), transaction() as conn:
        status, user = sessions.signed_in_user(conn, token) if token else ("unknown", None)
    if user is None:
        back = GLANCE_PATH + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{SIGNIN_PATH}?lang={lang}&next={quote(back)}", status_code=303)
    if user.role not in ROLES:
        return RedirectResponse(f"/?lang={lang}", status_code=303)
    sub = q.get("sub")
    scope = user.scope()
    with use_scope(scope), transaction() as conn:
        data = RECENT.read(conn, scope, sub if sub and len(sub) <= 32 else None)
    return HTMLResponse(page(user, data, lang), headers={"Cache-Control": "private, no-store"})


def routes() -> list:
    from starlette.routing import Route

    return [Route(GLANCE_PATH, glance_endpoint, methods=["GET"])]
