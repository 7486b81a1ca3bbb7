"""The one map every screen uses: vector tiles for the big layers, GeoJSON for the small.

Why this shape:
- Offline: Leaflet and Leaflet.VectorGrid come from the app's own ``static/vendor``
  (``/app/static/vendor/...``); folium's CDN defaults (jQuery, Bootstrap, Font
  Awesome, awesome-markers) are dropped, so the map loads on a closed network.
- Fast at city scale: communities, grids, roads and buildings are vector tiles from
  ``webapp.tiles`` (same process, ``/tiles/...``); buildings only from zoom 15. The
  small layers of one screen (the current grid, its neighbours, cameras,
  facilities) are GeoJSON.
- A click sends back only ``{layer, id}`` (features carry no attributes beyond what
  colours them); :func:`clicked` turns it into a lookup by id.
- No basemap by default (a plain background and the roads layer); a GCJ-02 basemap
  (AMap) shifts the overlays, never the stored data.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import folium
import geopandas as gpd
import numpy as np
from branca.element import MacroElement
from folium.plugins import VectorGridProtobuf
from folium.template import Template

from analysis.overview import NO_WORKER, OK, OVER, UNDER, UNKNOWN
from gis.settings import get_settings
from webapp.mapstyle import COLOURS as BASE_COLOURS
from webapp.mapstyle import FAST_TILES_JS
from webapp.mapstyle import TILE_STYLES as _STYLES
from webapp.mapstyle import TILE_Z as _Z
from webapp.tiles import BUILDINGS_MIN_ZOOM
from ui.i18n import t

VENDOR = "/app/static/vendor"
TILES = "/tiles"

# the map colours shared with the leader's plain page (webapp/mapstyle.py), and the screens' own below
COLOURS = dict(BASE_COLOURS)

# Siting: one colour per new site, its catchment drawn in the same colour (cycled).
SITE_PALETTE = ("#2563eb", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#b45309", "#4f46e5",
                "#0d9488", "#c026d3", "#ea580c", "#1d4ed8")

# Coverage screens (ui/screens/coverage.py): colours, and a CSS class per layer on each drawn
# path (the browser tests count them).
COLOURS.update({
    "view": "#2563eb",  # a camera's visible area (counted: online)
    "view_off": "#9ca3af",  # offline/unknown cameras: drawn, not counted
    "uncovered": "#dc2626",  # road stretches no camera sees
    "uncovered_area": "#f97316",  # open space no camera sees
    "reach_within": "#1a9850",  # home within the radius on foot
    "reach_overclaimed": "#f59e0b",  # within by straight line only: what a buffer over-claims
    "reach_beyond": "#d73027",  # beyond the radius either way
    "comp_pass": "#1a9850",  # community passes every standards rule
    "comp_fail_one": "#fdae61",
    "comp_fail_more": "#d73027",
})
COVERAGE_CLASSES = {"camera_views": "wg-camera-views", "uncovered_roads": "wg-uncovered-roads",
                    "uncovered_areas": "wg-uncovered-areas", "homes_reach": "wg-homes-reach", "compliance": "wg-compliance"}

BASEMAPS = {
    "osm": ("https://tile.openstreetmap.org/{z}/{x}/{y}.png", "© OpenStreetMap contributors", None),
    "tianditu": ("https://t{s}.tianditu.gov.cn/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=vec"
                 "&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk={key}",
                 "© 天地图", "01234567"),
    "amap": ("https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}",
             "© 高德地图", "1234"),
}
SHIFTED_BASEMAPS = {"amap": "GCJ-02"}


class OfflineMap(folium.Map):
    """folium.Map with Leaflet from the app's static folder and nothing from a CDN."""

    default_js = [("leaflet", f"{VENDOR}/leaflet/leaflet.js")]
    default_css = [("leaflet_css", f"{VENDOR}/leaflet/leaflet.css")]


class LocalVectorGrid(VectorGridProtobuf):
    """folium's VectorGridProtobuf with the plugin served locally."""

    default_js = [("vectorGrid", f"{VENDOR}/leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js")]




class FastVectorTiles(LocalVectorGrid):
    """A tile layer drawn by ``L.WgFastTiles`` (one canvas per tile, no per-feature objects)."""

    _template = Template("""
        {% macro script(this, kwargs) -%}
        """ + FAST_TILES_JS + """
        var {{ this.get_name() }} = new L.WgFastTiles('{{ this.url }}', {{ this.options }});
        {%- endmacro %}
    """)


class _Js(MacroElement):
    """A script snippet attached to the map (click bridges, legend, background)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        {{ this.code }}
        {% endmacro %}
        {% macro header(this, kwargs) %}
        {{ this.head }}
        {% endmacro %}
    """)

    def __init__(self, code: str = "", head: str = ""):
        super().__init__()
        self._name = "WanggeJs"
        self.code = code
        self.head = head


@dataclass
class GeoLayer:
    """A small layer sent as GeoJSON: features with ``id`` (and a style code ``st``) only."""

    name: str  # layer key: grid, neighbours, cameras, facilities
    frame: gpd.GeoDataFrame  # columns id, st (optional), geometry (EPSG:4326)
    show: bool = True


@dataclass
class MapView:
    """What one screen's map shows."""

    bounds: tuple[float, float, float, float] | None  # west, south, east, north
    tiles: tuple[str, ...] = ("communities", "grids", "roads", "buildings")
    small: list[GeoLayer] = field(default_factory=list)
    hidden: tuple[str, ...] = ()  # layers that start switched off
    height: int = 560
    centre: tuple[float, float] | None = None  # (lon, lat) with ``zoom``: a fixed view instead of ``bounds``
    zoom: int = 15
    legend_args: dict = field(default_factory=dict)  # per layer: the figures its legend rows name (band limits)


def build(view: MapView, lang: str = "zh", basemap: str | None = None) -> folium.Map:
    """The folium map for a view (no Streamlit here, so the benchmark and tests use it too)."""
    settings = get_settings()
    basemap = basemap or settings.basemap
    location = [view.centre[1], view.centre[0]] if view.centre else _centre(view.bounds)
    # Start at (about) the zoom the bounds will be fitted to: the tiles of a throw-away
    # first view would otherwise be fetched and drawn for nothing.
    start = view.zoom if view.centre else fit_zoom(view.bounds)
    m = OfflineMap(location=location, zoom_start=start, tiles=None, control_scale=False,
                   max_zoom=19, prefer_canvas=False, zoom_control=True,
                   zoom_snap=0.25)  # quarter zooms: an area fits its frame (beside the legend) without halving its size
    m.get_root().header.add_child(folium.Element(f"""<style>
        .leaflet-container {{ background: {COLOURS['background']}; font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; }}
        .wg-legend {{ background: rgba(255,255,255,.92); padding: 6px 9px; border-radius: 4px; font-size: 12px; line-height: 18px; box-shadow: 0 1px 4px rgba(0,0,0,.3); }}
        .wg-legend i {{ display: inline-block; width: 14px; height: 10px; margin-right: 6px; vertical-align: middle; border: 1px solid rgba(0,0,0,.3); }}
        .wg-legend b {{ display: block; margin-top: 2px; }}
        .wg-legend summary {{ cursor: pointer; font-weight: bold; }}
        .leaflet-control-attribution {{ font-size: 11px; }}
    </style>"""))
    shift = SHIFTED_BASEMAPS.get(basemap)
    if basemap in BASEMAPS:
        url, attribution, subdomains = BASEMAPS[basemap]
        if basemap == "tianditu":
            url = url.replace("{key}", settings.tianditu_key)
        folium.TileLayer(url, attr=attribution, name=t("map.basemap", lang), subdomains=subdomains or "abc",
                         max_zoom=19, overlay=False, control=False).add_to(m)
    query = "?size=512" + ("&shift=gcj02" if shift == "GCJ-02" else "")
    # tiles carry the session only in the HttpOnly cookie (never ?s= in a URL: logs, Referer)
    for layer in ("roads", "buildings", "communities", "grids", "events", "facilities", "cameras"):
        if layer in view.tiles:
            _tile_layer(layer, query, lang, show=layer not in view.hidden).add_to(m)
    for small in view.small:
        _geojson_layer(small, lang, shift).add_to(m)
    m.add_child(_Js(_legend_js(view, lang).replace("{{MAP}}", m.get_name())))
    folium.LayerControl(collapsed=True, position="topright").add_to(m)
    # Metres only (no feet), and a plain-text attribution (no flag icon from Leaflet's prefix).
    m.add_child(_Js(f"""
        L.control.scale({{metric: true, imperial: false, position: 'bottomleft'}}).addTo({m.get_name()});
        {m.get_name()}.attributionControl.setPrefix({json.dumps(t('map.attribution', lang), ensure_ascii=False)});"""))
    if view.bounds and not view.centre:
        w, s, e, n = view.bounds
        # the legend starts folded at the bottom right (a small tab): no room kept for it, so the
        # area is drawn as large as the frame allows (buildings show from zoom 15)
        m.fit_bounds([[s, w], [n, e]])
        # streamlit-folium sizes the map's box after the script has run (full width): fit
        # again when the box settles, or the area sits in the box's top-left corner.
        m.add_child(_Js(f"""
            (function () {{
                var map = {m.get_name()}, box = [[{s}, {w}], [{n}, {e}]], settled = false;
                setTimeout(function () {{ settled = true; }}, 2000);
                if (window.ResizeObserver) {{
                    new ResizeObserver(function () {{ map.invalidateSize(); if (!settled) {{ map.fitBounds(box); }} }})
                        .observe(map.getContainer());
                }}
            }})();"""))
    return m


def fit_zoom(bounds: tuple[float, float, float, float] | None, width: int = 900, height: int = 560) -> int:
    """The largest whole zoom at which ``bounds`` fits a ``width`` × ``height`` pixel map (as Leaflet's fitBounds)."""
    import math

    if not bounds:
        return 14
    w, s, e, n = bounds

    def y(lat: float) -> float:
        return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))

    dx = max((e - w) / 360.0, 1e-9)
    dy = max((y(n) - y(s)) / (2 * math.pi), 1e-9)
    z = math.floor(min(math.log2(width / 256 / dx), math.log2(height / 256 / dy)))
    return max(0, min(18, z))


def _centre(bounds: tuple[float, float, float, float] | None) -> list[float]:
    if not bounds:
        return [30.55, 114.31]
    w, s, e, n = bounds
    return [(s + n) / 2, (w + e) / 2]




_PICK = {"cameras": 5, "facilities": 4, "buildings": 3, "grids": 2, "communities": 1}  # which layer a click picks first


def _tile_layer(layer: str, query: str, lang: str, show: bool = True) -> FastVectorTiles:
    from webapp.tiles import MAJOR_ROADS

    interactive = layer in _PICK
    style = _STYLES[layer] % {"bz": BUILDINGS_MIN_ZOOM}
    options = f"""{{
        interactive: {'true' if interactive else 'false'},
        tileSize: 512, maxNativeZoom: 18, maxZoom: 19, zIndex: {_Z[layer]}, pickPriority: {_PICK.get(layer, 0)},
        pickPoints: {'true' if layer in ("cameras", "facilities") else 'false'},
        {"minZoom: %d," % BUILDINGS_MIN_ZOOM if layer == "buildings" else ""}
        className: 'wg-tiles-{layer}',
        vectorTileLayerStyles: {{ {layer}: (function () {{
            var COLOURS = {json.dumps(COLOURS)}; var MAJOR = {json.dumps(list(MAJOR_ROADS), ensure_ascii=False)};
            var STAGES = {json.dumps(EVENT_STAGE_COLOURS)};
            return {style};
        }})() }}
    }}"""
    vg = FastVectorTiles(f"{TILES}/{layer}/{{z}}/{{x}}/{{y}}.pbf{query}", name=t(f"layer.{layer}", lang), options=options, show=show)
    if interactive:
        # A click is hit-tested against the features drawn under it (buildings before
        # grids before communities). streamlit-folium reports ``e.layer.toGeoJSON()`` of a
        # clicked layer as last_active_drawing: the stub carries only the layer and id.
        vg.add_child(_Js(f"""
            {vg.get_name()}.on('add', function () {{ L.WgFastTiles.pickable(this._map, this); }});
            {vg.get_name()}.on('click', function (e) {{
                var p = (e.layer && e.layer.properties) || {{}};
                var f = {{type: 'Feature', geometry: null, properties: {{layer: '{layer}', id: p.id}}}};
                if (e.layer) {{ e.layer.toGeoJSON = function () {{ return f; }}; }}
            }});"""))
    return vg


def _geojson_layer(small: GeoLayer, lang: str, shift: str | None) -> folium.GeoJson:
    frame = small.frame
    if shift and len(frame):
        from gis.crs import shift as shift_geoms

        frame = frame.set_geometry(shift_geoms(np.asarray(frame.geometry.values, dtype=object), shift), crs=frame.crs)
    features = []
    for rec, geom in zip(frame.drop(columns=frame.geometry.name).to_dict("records"), frame.geometry):
        props = {"layer": small.name, "id": _plain(rec.get("id"))}
        if "st" in rec:
            props["st"] = rec["st"]
        if "tip" in rec:  # a popup's text: figures only, names escaped by the caller (OVERDUE_LAYERS)
            props["tip"] = rec["tip"]
        features.append({"type": "Feature", "properties": props, "geometry": geom.__geo_interface__ if geom is not None else None})
    data = {"type": "FeatureCollection", "features": features}
    name = small.name

    def style(feature: dict) -> dict:
        st = feature["properties"].get("st")
        if name in COVERAGE_CLASSES:
            return {**_coverage_style(name, st), "className": COVERAGE_CLASSES[name]}
        if name == "grid":
            return {"color": COLOURS["current"], "weight": 4, "fill": True, "fillOpacity": 0.06, "fillColor": COLOURS["current"]}
        if name == "neighbours":
            return {"color": COLOURS.get(st, COLOURS["neighbour"]), "weight": 2, "dashArray": "4 4", "fill": True, "fillOpacity": 0.08}
        if name == "draft":
            return {"color": COLOURS["current"], "weight": 3, "dashArray": "6 4", "fill": True, "fillOpacity": 0.12,
                    "fillColor": {"within": COLOURS[OK], "under": COLOURS[UNDER], "over": COLOURS[OVER]}.get(st, COLOURS["neighbour"])}
        if name == "problems":
            return {"color": "#b91c1c", "weight": 3, "fill": True, "fillOpacity": 0.5, "fillColor": "#ef4444"}
        if name == "staffing":
            return {"color": "#ffffff", "weight": 1, "fill": True, "fillOpacity": 0.6,
                    "fillColor": {"no_worker": COLOURS[NO_WORKER], "overloaded": COLOURS[OVER], "far": COLOURS[UNDER],
                                  "dedicated": COLOURS["neighbour"]}.get(st, COLOURS[OK])}
        if name == "catchments":
            c = SITE_PALETTE[int(st or 0) % len(SITE_PALETTE)]
            return {"color": c, "weight": 2, "fill": True, "fillColor": c, "fillOpacity": 0.22}
        if name == "sites_new":
            c = SITE_PALETTE[int(st or 0) % len(SITE_PALETTE)]
            return {"color": "#ffffff", "weight": 2, "fillColor": c, "fillOpacity": 1, "radius": 9}
        if name == "sites_existing":
            return {"color": "#ffffff", "weight": 1.5, "fillColor": COLOURS["site_existing"], "fillOpacity": 1, "radius": 7}
        if name == "homes":
            c = COLOURS["home_in"] if st == "in" else COLOURS["home_out"]
            return {"color": c, "weight": 0, "fillColor": c, "fillOpacity": 0.7, "radius": 3}
        if name == "events":  # coloured by stage; an overdue case gets a thick red ring
            stage, _, late = str(st or "").partition("|")
            c = EVENT_STAGE_COLOURS.get(stage, "#6b7280")
            return {"color": "#dc2626" if late else "#ffffff", "weight": 4 if late else 1.5, "fillColor": c,
                    "fillOpacity": 1, "radius": 8 if late else 6}
        if name == "event_density":  # grids by the number of cases reported (quartile bands)
            c = {"low": "#fde68a", "mid": "#f59e0b", "high": "#b45309"}.get(st, "#f3f4f6")
            return {"color": "#ffffff", "weight": 1, "fill": True, "fillColor": c, "fillOpacity": 0.45}
        if name == "event_grids":  # grids by on-time closure rate band
            c = {"good": "#16a34a", "mid": "#f59e0b", "bad": "#dc2626"}.get(st, "#d1d5db")
            return {"color": "#ffffff", "weight": 1, "fill": True, "fillColor": c, "fillOpacity": 0.35}
        if name in PEOPLE_STYLES:  # visits and patrols (ui/screens/people.py)
            return PEOPLE_STYLES[name]
        if name in OVERDUE_LAYERS:  # overdue visits per grid (choropleth) and the buildings they are in
            c = OVERDUE_COLOURS.get(st, OVERDUE_COLOURS["none"])
            cls = "wg-" + name.replace("_", "-")  # the browser tests find the layer's paths by it
            if name == "overdue_buildings":
                return {"color": "#7f1d1d", "weight": 2, "fill": True, "fillColor": c, "fillOpacity": 0.95, "className": cls}
            # light enough that the buildings (tiles and the overdue ones) read on top of it
            return {"color": "#ffffff", "weight": 1.5, "fill": True, "fillColor": c, "fillOpacity": 0.4, "className": cls}
        if name == "cameras":
            c = COLOURS["camera_online"] if st == "online" else COLOURS["camera_offline"]
            return {"color": "#ffffff", "weight": 1, "fillColor": c, "fillOpacity": 1, "radius": 5}
        return {"color": "#ffffff", "weight": 1, "fillColor": COLOURS["facility"], "fillOpacity": 1, "radius": 7}

    marker = folium.CircleMarker(radius=6, fill=True) if name in ("cameras", "facilities", "events", "visit_stops", *SITING_POINTS) else None
    if name == "homes_reach":
        marker = folium.CircleMarker(radius=4, fill=True)
    popup = folium.GeoJsonPopup(fields=["tip"], labels=False) if "tip" in frame.columns and len(frame) else None
    return folium.GeoJson(data, name=t(f"layer.{name}", lang), style_function=style, marker=marker, show=small.show,
                          highlight_function=None, smooth_factor=0.5, popup=popup)


SITING_POINTS = ("sites_new", "sites_existing", "homes")
# Up to this many cases travel as GeoJSON (every case a browser object: 5,000 is already
# seconds of drawing); beyond it the ``events`` tile layer draws them, whatever their number.
EVENTS_GEOJSON_LIMIT = 5000


# Up to this many cameras or facilities travel as GeoJSON (each a Leaflet marker, even when its
# layer starts switched off); beyond it the layer is drawn from tiles (a city has 25,000 cameras:
# 5 MB of GeoJSON in the page and seconds of the browser's time on every page run).
POINTS_GEOJSON_LIMIT = 1000


def with_points(view: MapView, name: str, frame: gpd.GeoDataFrame, show: bool = True) -> MapView:
    """``view`` with a point layer (``cameras`` or ``facilities``): ``frame`` (read with at most
    ``POINTS_GEOJSON_LIMIT + 1`` rows) as GeoJSON while within the limit, else the layer's tiles."""
    if len(frame) > POINTS_GEOJSON_LIMIT:
        view.tiles = (*view.tiles, name)
        if not show:
            view.hidden = (*view.hidden, name)
    else:
        view.small.append(GeoLayer(name, frame, show=show))
    return view


def with_events(view: MapView, cases: gpd.GeoDataFrame) -> MapView:
    """``view`` with the event cases: ``cases`` (columns id, st = stage or "stage|late",
    geometry) as GeoJSON while fewer than ``EVENTS_GEOJSON_LIMIT``; at the limit (the list
    was cut) the open cases of the viewer's scope as vector tiles instead."""
    if len(cases) >= EVENTS_GEOJSON_LIMIT:
        view.tiles = (*view.tiles, "events")
    else:
        view.small.append(GeoLayer("events", cases))
    return view
# Event cases by stage (ui/screens/events.py): warm colours wait on the centre, blue on a unit, green done.
EVENT_STAGE_COLOURS = {"reported": "#f97316", "filed": "#eab308", "dispatched": "#2563eb", "handled": "#7c3aed",
                       "verified": "#0d9488", "closed": "#16a34a", "deferred": "#6b7280", "rejected": "#9ca3af"}
# visits and patrols: the day's walk, its stops, patrol tracks and the buildings no track came near
PEOPLE_STYLES = {
    "visit_route": {"color": "#7c3aed", "weight": 4, "opacity": 0.85},
    "visit_stops": {"color": "#ffffff", "weight": 2, "fillColor": "#7c3aed", "fillOpacity": 1, "radius": 8},
    "patrol_tracks": {"color": "#0f766e", "weight": 3, "opacity": 0.8},
    "unpatrolled": {"color": "#b91c1c", "weight": 1, "fill": True, "fillColor": "#ef4444", "fillOpacity": 0.55},
    "visit_home": {"color": "#7c3aed", "weight": 3, "fill": True, "fillColor": "#a78bfa", "fillOpacity": 0.7},
}


# Overdue visits (issue 17): grids by overdue rate (bands from WANGGE_VISIT_OVERDUE_BANDS) or by
# overdue count (quartiles of the grids that have any), and a worker's buildings with overdue people.
OVERDUE_LAYERS = ("overdue_rate", "overdue_count", "overdue_buildings")
OVERDUE_COLOURS = {"zero": "#4ade80", "low": "#fde68a", "mid": "#fb923c", "high": "#dc2626", "none": "#e5e7eb"}


def _plain(v: object) -> object:
    """numpy scalars to plain Python (JSON)."""
    return v.item() if hasattr(v, "item") else v


def _coverage_style(name: str, st: object) -> dict:
    """Leaflet path options of the coverage layers (colours in COLOURS)."""
    if name == "camera_views":
        c = COLOURS["view"] if st == "counted" else COLOURS["view_off"]
        return {"color": c, "weight": 1, "opacity": 0.8, "fill": True, "fillColor": c, "fillOpacity": 0.3}
    if name == "uncovered_roads":
        return {"color": COLOURS["uncovered"], "weight": 4, "opacity": 0.9, "fill": False}
    if name == "uncovered_areas":
        return {"color": COLOURS["uncovered_area"], "weight": 0.5, "opacity": 0.6, "fill": True,
                "fillColor": COLOURS["uncovered_area"], "fillOpacity": 0.2}
    if name == "homes_reach":
        return {"color": "#ffffff", "weight": 1, "fillColor": COLOURS.get(f"reach_{st}", COLOURS["reach_beyond"]),
                "fillOpacity": 1, "radius": 4}
    return {"color": "#ffffff", "weight": 1.5, "fill": True, "fillOpacity": 0.45,
            "fillColor": COLOURS.get(f"comp_{st}", COLOURS["neighbour"])}


DOT = "border-radius:7px"  # a legend sample for point layers


def _swatch(colour: str, text: str, style: str = "") -> str:
    """One legend row: a colour sample (``style`` shapes it: a dot, a line) and its label."""
    return f"<i style='background:{colour}{';' + style if style else ''}'></i>{text}"


def _coverage_legend(names: set[str], lang: str) -> list[str]:
    rows = []
    if "compliance" in names:
        rows.append(f"<b>{t('layer.compliance', lang)}</b>")
        rows += [_swatch(COLOURS['comp_' + k], label)
                 for k, label in (("pass", t("legend.comp_pass", lang)), ("fail_one", t("legend.comp_fail_one", lang)),
                                  ("fail_more", t("legend.comp_fail_more", lang)))]
    if "camera_views" in names:
        rows.append(_swatch(COLOURS['view'], t('legend.view_counted', lang), "opacity:.5"))
        rows.append(_swatch(COLOURS['view_off'], t('legend.view_not_counted', lang), "opacity:.5"))
    if "uncovered_roads" in names:
        rows.append(_swatch(COLOURS['uncovered'], t('layer.uncovered_roads', lang), "height:4px"))
    if "uncovered_areas" in names:
        rows.append(_swatch(COLOURS['uncovered_area'], t('layer.uncovered_areas', lang), "opacity:.4"))
    if "homes_reach" in names:
        rows.append(f"<b>{t('layer.homes_reach', lang)}</b>")
        rows += [_swatch(COLOURS['reach_' + k], label, DOT)
                 for k, label in (("within", t("legend.reach_within", lang)), ("overclaimed", t("legend.reach_overclaimed", lang)),
                                  ("beyond", t("legend.reach_beyond", lang)))]
    return rows


def _legend_js(view: MapView, lang: str) -> str:
    rows = []
    legend_args = view.legend_args
    if "grids" in view.tiles:
        rows.append(f"<b>{t('legend.grids', lang)}</b>")
        for key in (NO_WORKER, OVER, UNDER, OK):
            rows.append(_swatch(COLOURS[key], t('status.' + key, lang)))
        rows.append(_swatch(COLOURS[UNKNOWN], t('status.unknown', lang)))
    if "communities" in view.tiles:
        rows.append(f"<i style='background:none;border:2px dashed {COLOURS['community']}'></i>{t('layer.communities', lang)}")
    if "buildings" in view.tiles:
        rows.append(_swatch(COLOURS['building'], t('legend.buildings', lang)))
        rows.append(_swatch(COLOURS['building_empty'], t('legend.buildings_empty', lang)))
    names = {s.name for s in view.small}
    if "staffing" in names:
        rows.append(f"<b>{t('layer.staffing', lang)}</b>")
        for key, colour in (("no_worker", COLOURS[NO_WORKER]), ("overloaded", COLOURS[OVER]), ("far", COLOURS[UNDER]), ("ok", COLOURS[OK])):
            rows.append(_swatch(colour, t('status.' + key, lang)))
    if "draft" in names:
        rows.append(f"<i style='background:none;border:3px dashed {COLOURS['current']}'></i>{t('layer.draft', lang)}")
    if "problems" in names:
        rows.append(f"<i style='background:#ef4444'></i>{t('layer.problems', lang)}")
    if "grid" in names:
        rows.append(f"<i style='background:none;border:3px solid {COLOURS['current']}'></i>{t('layer.grid', lang)}")
    if "events" in names or "events" in view.tiles:
        rows.append(f"<b>{t('layer.events', lang)}</b>")
        for stage in ("reported", "filed", "dispatched", "handled", "verified", "deferred"):
            rows.append(_swatch(EVENT_STAGE_COLOURS[stage], t(f"stage.{stage}", lang), DOT))
        rows.append(_swatch("#ffffff", t("ev.overdue", lang), DOT + ";border:3px solid #dc2626"))
        if "events" in view.tiles:
            rows.append(f"<span style='color:#666'>{t('legend.event_cluster', lang)}</span>")
    if "cameras" in names or "cameras" in view.tiles:
        rows.append(_swatch(COLOURS['camera_online'], t('legend.camera_online', lang), DOT))
        rows.append(_swatch(COLOURS['camera_offline'], t('legend.camera_offline', lang), DOT))
    if "facilities" in names or "facilities" in view.tiles:
        rows.append(_swatch(COLOURS['facility'], t('layer.facilities', lang), DOT))
    if "sites_new" in names:
        dots = "".join(f"<i style='background:{c};border-radius:7px;width:8px;margin-right:1px'></i>" for c in SITE_PALETTE[:4])
        rows.append(f"{dots}&nbsp;{t('layer.sites_new', lang)}")
    if "catchments" in names:
        rows.append(_swatch(SITE_PALETTE[0], t('legend.catchment', lang), "opacity:.45"))
    if "sites_existing" in names:
        rows.append(_swatch(COLOURS['site_existing'], t('layer.sites_existing', lang), DOT))
    if "homes" in names:
        rows.append(_swatch(COLOURS['home_in'], t('legend.home_in', lang), DOT))
        rows.append(_swatch(COLOURS['home_out'], t('legend.home_out', lang), DOT))
    rows += _coverage_legend(names, lang)
    for name in OVERDUE_LAYERS:
        if name in names:
            rows.append(f"<b>{t(f'layer.{name}', lang)}</b>")
            keys = {"overdue_rate": ("high", "mid", "low", "zero", "none"), "overdue_count": ("high", "mid", "low", "zero")}.get(
                name, ("high", "mid", "low"))
            rows += [_swatch(OVERDUE_COLOURS[k], t(f"legend.{name}.{k}", lang, **legend_args.get(name, {}))) for k in keys]
    for name in PEOPLE_STYLES:
        if name in names:
            st_ = PEOPLE_STYLES[name]
            rows.append(_swatch(st_.get("fillColor", st_["color"]), t(f"layer.{name}", lang), DOT if name == "visit_stops" else ""))
    if "roads" in view.tiles:
        rows.append(_swatch(COLOURS['road_major'], t('layer.roads', lang), "height:3px"))
    body = "<br>".join(rows) + f"<br><span style='color:#666'>{t('legend.buildings_zoom', lang, z=BUILDINGS_MIN_ZOOM)}</span>"
    html = f"<details><summary>{t('legend.title', lang)}</summary>{body}</details>"  # folded: one click opens it
    return f"""
        (function () {{
            var legend = L.control({{position: 'bottomright'}});
            legend.onAdd = function () {{ var d = L.DomUtil.create('div', 'wg-legend'); d.innerHTML = {json.dumps(html, ensure_ascii=False)}; return d; }};
            legend.addTo({{{{MAP}}}});
        }})();"""


# --- Streamlit side ------------------------------------------------------------------------

def show(view: MapView, lang: str, key: str) -> tuple[str, object] | None:
    """Draw the map; return ``(layer, id)`` of the feature last clicked, if any."""
    import time

    from streamlit_folium import st_folium

    from ui.seam import mark

    started = time.perf_counter()
    m = build(view, lang)
    mark("map.build", started)
    started = time.perf_counter()
    out = st_folium(m, key=key, height=view.height, use_container_width=True,
                    returned_objects=["last_object_clicked", "last_active_drawing"])
    mark("map.st_folium", started)
    return picked(out)


def picked(out: dict | None) -> tuple[str, object] | None:
    """``(layer, id)`` from st_folium's answer (our features' properties), else None."""
    drawing = (out or {}).get("last_active_drawing") or {}
    props = drawing.get("properties") or {}
    if props.get("layer") and props.get("id") is not None:
        return str(props["layer"]), props["id"]
    return None


# --- the device's location (the ◎ control) ---------------------------------------------------

def locate_js(map_name: str) -> str:
    """A ◎ control: the device's position becomes a map click (st_folium returns it)."""
    return f"""
    (function () {{
      var map = {map_name};
      var Btn = L.Control.extend({{ options: {{ position: 'topleft' }}, onAdd: function () {{
        var a = L.DomUtil.create('a', 'leaflet-bar'); a.href = '#'; a.innerHTML = '◎'; a.title = 'locate';
        a.style.cssText = 'display:block;width:30px;height:30px;line-height:30px;text-align:center;background:#fff;font-size:18px';
        L.DomEvent.on(a, 'click', function (e) {{ L.DomEvent.preventDefault(e); map.locate({{ setView: true, maxZoom: 18 }}); }});
        return a; }} }});
      map.addControl(new Btn());
      map.on('locationfound', function (e) {{ map.fire('click', {{ latlng: e.latlng }}); }});
    }})();"""


_DEVICE_JS = """
(function () {
  var map = %(map)s, T = %(words)s, MODE = %(mode)s, KEY = %(key)s, SAVED = %(saved)s, MAXACC = %(maxacc)s;
  // a layer that exists when streamlit-folium binds its click handler: firing a click on it with
  // a GeoJSON stub is how the device's position (or a finished patrol) reaches Python
  var channel = L.featureGroup().addTo(map), here = L.layerGroup().addTo(map);
  function send(props) {
    var f = {type: 'Feature', geometry: null, properties: props};
    channel.fire('click', {latlng: map.getCenter(), layer: {toGeoJSON: function () { return f; }}});
  }
  function box(html) {
    var C = L.Control.extend({options: {position: 'topleft'}, onAdd: function () {
      var d = L.DomUtil.create('div', 'leaflet-bar wg-device');
      d.style.cssText = 'background:#fff;padding:4px 8px;font-size:14px;line-height:20px;min-width:170px;max-width:260px';
      d.innerHTML = html; L.DomEvent.disableClickPropagation(d); return d; }});
    var c = new C(); map.addControl(c); return c.getContainer();
  }
  function mark(ll, acc) {
    here.clearLayers();
    L.circle(ll, {radius: acc || 0, color: '#2563eb', weight: 1, fillOpacity: 0.12}).addTo(here);
    L.circleMarker(ll, {radius: 7, color: '#fff', weight: 2, fillColor: '#2563eb', fillOpacity: 1}).addTo(here);
  }
  map.on('locationerror', function (e) { status.textContent = T.error; });
  var d, status;
  if (MODE === 'visit') {
    d = box('<a href="#" class="wg-locate" style="display:inline-block;width:auto;height:auto;line-height:24px;' +
            'font-size:15px;white-space:nowrap;border:0;padding:0 2px">◎ ' + T.locate + '</a><div class="wg-status"></div>');
    status = d.querySelector('.wg-status');
    L.DomEvent.on(d.querySelector('a'), 'click', function (e) {
      L.DomEvent.preventDefault(e); status.textContent = T.finding;
      map.locate({setView: true, maxZoom: 18, enableHighAccuracy: true});
    });
    map.on('locationfound', function (e) {
      mark(e.latlng, e.accuracy);
      status.textContent = T.found.replace('{acc}', Math.round(e.accuracy));
      send({layer: 'device', id: Math.round(e.timestamp || Date.now()), lon: e.latlng.lng, lat: e.latlng.lat,
            acc: e.accuracy, t: Math.round(e.timestamp || Date.now())});
    });
    return;
  }
  // patrol: fixes collected by watchPosition (Leaflet's locate with watch), kept in the browser's
  // storage until Python has stored them (a page rerun or reload resumes the walk)
  var rec = null;
  try { rec = JSON.parse(localStorage.getItem(KEY) || 'null'); } catch (err) { rec = null; }
  if (rec && SAVED.indexOf(rec.token) >= 0) { localStorage.removeItem(KEY); rec = null; }
  var line = L.polyline([], {color: '#0f766e', weight: 4}).addTo(map);
  d = box('<button type="button" class="wg-patrol" style="font-size:15px;padding:4px 10px"></button>' +
          '<div class="wg-status"></div>');
  var btn = d.querySelector('button'); status = d.querySelector('.wg-status');
  function save() { try { localStorage.setItem(KEY, JSON.stringify(rec)); } catch (err) {} }
  function show() {
    btn.textContent = rec && rec.on ? T.stop : (rec && !rec.on ? T.resend : T.start);
    btn.style.background = rec && rec.on ? '#dc2626' : '#0f766e'; btn.style.color = '#fff';
    if (!rec) { status.textContent = T.idle; return; }
    status.textContent = (rec.on ? T.recording : T.stopped).replace('{n}', rec.fixes.length);
  }
  function start() {
    if (!navigator.geolocation) { status.textContent = T.error; return; }
    map.locate({watch: true, setView: false, enableHighAccuracy: true, maximumAge: 0, timeout: 30000});
  }
  // the line shows the fixes that will count (an imprecise fix is kept, and left out when stored)
  function good(f) { return !(f.acc > MAXACC); }
  function redraw() { line.setLatLngs(rec ? rec.fixes.filter(good).map(function (f) { return [f.lat, f.lon]; }) : []); }
  map.on('locationfound', function (e) {
    if (!rec || !rec.on) { return; }
    var f = {t: Math.round(e.timestamp || Date.now()), lon: e.latlng.lng, lat: e.latlng.lat, acc: e.accuracy};
    var last = rec.fixes[rec.fixes.length - 1];
    if (last && last.lon === f.lon && last.lat === f.lat && f.t - last.t < 5000) { return; }  // the same fix again
    rec.fixes.push(f); save(); if (good(f)) { line.addLatLng([f.lat, f.lon]); } mark(e.latlng, e.accuracy); show();
  });
  L.DomEvent.on(btn, 'click', function () {
    if (rec && rec.on) { rec.on = false; map.stopLocate(); save(); show(); send({layer: 'patrol_fixes', id: rec.token, fixes: rec.fixes}); return; }
    if (rec && !rec.on) { send({layer: 'patrol_fixes', id: rec.token, fixes: rec.fixes}); return; }
    rec = {token: String(Date.now()) + '-' + Math.floor(Math.random() * 1e6), on: true, fixes: []};
    save(); redraw(); show(); start();
  });
  redraw(); show();
  if (rec && rec.on) { start(); }
})();"""


def device_words(lang: str) -> dict:
    """The device controls' words, in the user's language (the JS shows them)."""
    keys = ("locate", "finding", "found", "error", "start", "stop", "resend", "idle", "recording", "stopped")
    return {k: t(f"device.{k}", lang) for k in keys}


def add_device(m: folium.Map, mode: str, lang: str, storage_key: str = "", saved: tuple[str, ...] = ()) -> None:
    """Attach the device-location controls: ``visit`` (◎: one fix, sent as a ``device`` stub)
    or ``patrol`` (start/stop: a walk's fixes, sent as one ``patrol_fixes`` stub at the end)."""
    code = _DEVICE_JS % {"map": m.get_name(), "words": json.dumps(device_words(lang), ensure_ascii=False),
                         "mode": json.dumps(mode), "key": json.dumps(storage_key), "saved": json.dumps(list(saved)),
                         "maxacc": json.dumps(float(get_settings().patrol_fix_accuracy_m))}
    m.add_child(_Js(code))


def show_device(view: MapView, lang: str, key: str, mode: str, storage_key: str = "",
                saved: tuple[str, ...] = ()) -> dict | None:
    """Draw a map with the device controls; return the stub the device last sent (its properties)."""
    from streamlit_folium import st_folium

    m = build(view, lang)
    add_device(m, mode, lang, storage_key, saved)
    out = st_folium(m, key=key, height=view.height, use_container_width=True, returned_objects=["last_active_drawing"])
    props = ((out or {}).get("last_active_drawing") or {}).get("properties") or {}
    return props if props.get("layer") in ("device", "patrol_fixes") else None
