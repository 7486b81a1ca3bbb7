"""Coverage (覆盖分析): what the cameras see and miss, which homes are out of walking reach
of each service (the walk beside the straight line, so a buffer's over-claim shows), and
each community against the floor-area and room rules — with the time each figure was
computed, a stale warning when a camera, facility or home changed since, and a button
that recomputes only what those edits touch.

The street leader sees the sub-district (``render``); the grid worker the same facts for
their grid (``render_grid``, called from ``ui/screens/worker.py``). The tables built here
(``camera_table``, ``service_table`` …) are exactly what is shown and what is exported,
so the tests compare them with the analysis functions.
"""
from __future__ import annotations

import io
from collections import Counter

import geopandas as gpd
import pandas as pd
import streamlit as st

from analysis import services
from analysis.camera_views import DORI_PPM
from gis.inert import inert_frame
from gis.settings import get_settings
from layers.vocab import FACILITY_CATEGORIES, label
from ui import coverage_data as cd
from ui import data
from ui import map as wmap
from ui.common import fmt_time, map_with_details, subdistrict
from ui.handout import GridPack
from ui.i18n import t
from ui.seam import log_failure, one_language
from ui.state import language

DETAILS = tuple(DORI_PPM)
ANALYSES = ("cameras", "services", "compliance")
THEMES = ("cameras", "services", "compliance")
WORST = 10  # rows in each worst-grids list


# --- formatting ------------------------------------------------------------------------------

def _pct(v: object) -> str:
    return "—" if v is None or pd.isna(v) else f"{100 * float(v):.1f}%"


def _mark(v: object) -> str:
    return "—" if v is None or pd.isna(v) else ("✓" if bool(v) else "✗")


def _when(v: object) -> str:
    """In the deployment's time zone (Beijing time by default), Chinese date format."""
    return fmt_time(v, language())


def _names(sub: str) -> dict[str, str]:
    comms = data.communities(sub)
    return dict(zip(comms["code"].astype(str).str.strip(), comms["name"]))


def _and(lang: str) -> str:
    """The list separator of the language (、 in Chinese)."""
    return "、" if lang == "zh" else ", "


def _then(lang: str) -> str:
    """The clause separator of the language (； in Chinese)."""
    return "；" if lang == "zh" else "; "


def _paren(text: str, lang: str) -> str:
    return f"（{text}）" if lang == "zh" else f" ({text})"


def _colon(lang: str) -> str:
    return "：" if lang == "zh" else ": "


def _tk(group: str, key: object, lang: str) -> str:
    """The label of a coded value: the key is the group and the code joined by a dot."""
    return t(f"{group}.{key}", lang)


def _cat(code: str, lang: str) -> str:
    return label(FACILITY_CATEGORIES, code, lang)


# --- the tables shown and exported ----------------------------------------------------------------

def camera_table(cov: pd.DataFrame, scope: str, lang: str) -> pd.DataFrame:
    """Camera figures of one scope (grid | community | subdistrict), as shown."""
    f = cov[cov["scope"] == scope]
    return pd.DataFrame({
        t("col.code", lang): f["code"].astype(str).str.strip(), t("col.name", lang): f["name"],
        t("cov.road_km", lang): (f["road_m"] / 1000).round(2), t("cov.road_share", lang): f["road_share"].map(_pct),
        t("cov.road_uncovered_m", lang): (f["road_m"] - f["road_covered_m"]).round(0).astype("Int64"),
        t("cov.inner_road_share", lang): f["inner_road_share"].map(_pct), t("cov.open_share", lang): f["open_share"].map(_pct),
        t("cov.facade_share", lang): f["facade_share"].map(_pct),
        t("cov.key_places", lang): [f"{a}/{b}" for a, b in zip(f["key_places_covered"], f["key_places"])],
        t("cov.cameras_counted", lang): [f"{a}/{b}" for a, b in zip(f["cameras_counted"], f["cameras"])],
        t("cov.computed_at", lang): f["computed_at"].map(_when),
    }).reset_index(drop=True)


def xueliang_table(xl: pd.DataFrame, lang: str) -> pd.DataFrame:
    return pd.DataFrame({
        t("col.code", lang): xl["code"].astype(str).str.strip(), t("col.name", lang): xl["name"],
        t("cov.key_places", lang): [f"{a}/{b}" for a, b in zip(xl["key_places_covered"], xl["key_places"])],
        t("cov.key_share", lang): xl["key_places_share"].map(_pct), t("cov.target_met", lang): xl["coverage_pass"].map(_mark),
        t("cov.serviceable", lang): xl["serviceable_share"].map(_pct), t("cov.serviceable_met", lang): xl["serviceability_pass"].map(_mark),
        t("cov.uncovered_places", lang): xl["uncovered"],
    })


def key_place_table(kp: pd.DataFrame, names: dict[str, str], lang: str) -> pd.DataFrame:
    return pd.DataFrame({
        t("col.name", lang): kp["name"], t("col.category", lang): [_cat(c, lang) for c in kp["category"]],
        t("col.community", lang): [names.get(str(c).strip(), c) for c in kp["community_code"]],
        t("cov.unit", lang): kp["unit_code"].astype(str).str.strip(), t("cov.seen", lang): kp["covered"].map(_mark),
        t("cov.cameras_reaching", lang): [len(c) if isinstance(c, list | tuple) else 0 for c in kp["cameras"]],
    })


def service_table(cc: pd.DataFrame, category: str, scope: str, lang: str, names: dict[str, str] | None = None) -> pd.DataFrame:
    """Households beyond the category's radius on foot beside the straight line, one scope."""
    f = cc[(cc["scope"] == scope) & (cc["category"] == category)]
    codes = f["code"].astype(str).str.strip()
    return pd.DataFrame({
        t("col.code", lang): codes, t("col.name", lang): [(names or {}).get(c, c) for c in codes],
        t("cov.radius_m", lang): f["radius_m"], t("col.households", lang): f["households"],
        t("cov.beyond_network", lang): f["households_beyond_network"], t("cov.beyond_straight", lang): f["households_beyond_straight"],
        t("cov.within_network", lang): f["share_within_network"].map(_pct),
        t("cov.within_straight", lang): f["share_within_straight"].map(_pct),
        t("cov.overclaim", lang): f["overclaim_households"], t("cov.median_walk", lang): f["median_network_m"],
    }).reset_index(drop=True)


def grid_service_table(cc: pd.DataFrame, grid_code: str, lang: str) -> pd.DataFrame:
    """Every category for one grid (the worker's table)."""
    if "scope" not in cc:  # walking access not computed yet (a fresh import): an empty table, not a crash
        return pd.DataFrame()
    f = cc[(cc["scope"] == "grid") & (cc["code"].astype(str).str.strip() == grid_code)]
    return pd.DataFrame({
        t("col.category", lang): [_cat(c, lang) for c in f["category"]], t("cov.radius_m", lang): f["radius_m"],
        t("col.households", lang): f["households"], t("cov.beyond_network", lang): f["households_beyond_network"],
        t("cov.beyond_straight", lang): f["households_beyond_straight"], t("cov.within_network", lang): f["share_within_network"].map(_pct),
        t("cov.within_straight", lang): f["share_within_straight"].map(_pct),
    }).reset_index(drop=True)


def life_circle_table(lc: pd.DataFrame, lang: str, names: dict[str, str]) -> pd.DataFrame:
    """Per community and the sub-district: share of households whose 5/10/15-minute circle
    holds every required category, walking beside straight line."""
    if lc.empty:
        return pd.DataFrame()
    f = lc[lc["scope"].isin(["community", "subdistrict"])].copy()
    f["code"] = f["code"].astype(str).str.strip()
    out = pd.DataFrame({t("col.code", lang): f["code"].drop_duplicates().to_numpy()})
    out[t("col.name", lang)] = [names.get(c, t("cov.whole", lang)) for c in out[t("col.code", lang)]]
    for circle in ("5min", "10min", "15min"):
        part = f[f["circle"] == circle].set_index("code")
        for how, col in (("network", "share_network"), ("straight", "share_straight")):
            out[t(f"cov.circle_{circle}_{how}", lang)] = [_pct(part[col].get(c)) for c in out[t("col.code", lang)]]
    return out


def compliance_display(ct: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Per community: each rule's value and ✓/✗, rules passed, stale, when computed."""
    if ct.empty:
        return pd.DataFrame()
    out = pd.DataFrame({t("col.code", lang): ct["community_code"], t("col.name", lang): ct["community_name"],
                        t("cov.rules_passed", lang): ct["rules_passed"]})
    for rule in [c[5:] for c in ct.columns if c.startswith("pass_")]:
        out[t(f"cov.rule.{rule}", lang)] = ct[f"value_{rule}"]
        out[f"{t(f'cov.rule.{rule}', lang)} {t('cov.pass', lang)}"] = ct[f"pass_{rule}"].map(_mark)
    out[t("cov.stale_col", lang)] = ct["stale"].map({True: t("cov.stale_yes", lang), False: ""})
    out[t("cov.computed_at", lang)] = ct["computed_at"].map(_when)
    return out


def _style_marks(frame: pd.DataFrame):
    """Green ✓ and red ✗ cells (a Styler: st.dataframe keeps it sortable)."""
    def colour(v: object) -> str:
        return "background-color: #d9f0d3; color: #1b7837" if v == "✓" else (
            "background-color: #fddbc7; color: #b2182b" if v == "✗" else "")
    return frame.style.map(colour)


def worst_grids(cov: pd.DataFrame | None, cc: pd.DataFrame | None, category: str, lang: str) -> dict[str, pd.DataFrame]:
    """The grids needing attention most: by households out of walking reach of the chosen
    category, and by the share of their streets no camera sees."""
    out = {}
    if cc is not None and len(cc):
        g = cc[(cc["scope"] == "grid") & (cc["category"] == category)].copy()
        g = g.sort_values(["households_beyond_network", "households"], ascending=[False, False]).head(WORST)
        names = {} if cov is None else dict(zip(cov["code"].astype(str).str.strip(), cov["name"]))
        out["reach"] = pd.DataFrame({
            t("col.code", lang): g["code"].astype(str).str.strip(),
            t("col.name", lang): [names.get(str(c).strip(), "") for c in g["code"]],
            t("cov.beyond_network", lang): g["households_beyond_network"], t("cov.beyond_straight", lang): g["households_beyond_straight"],
            t("col.households", lang): g["households"], t("cov.within_network", lang): g["share_within_network"].map(_pct),
        }).reset_index(drop=True)
    if cov is not None and len(cov):
        g = cov[(cov["scope"] == "grid") & (cov["road_m"] > 0)].copy()
        g["uncovered_share"] = 1 - g["road_covered_m"] / g["road_m"]
        g["uncovered_m"] = g["road_m"] - g["road_covered_m"]
        # Ranked by metres unseen, not by share: many small grids have no camera at all (100 %
        # unseen), and a list of ten 100 % rows would hide where the most street is blind.
        out["roads_none"] = int((g["road_covered_m"] <= 0).sum())
        g = g.sort_values(["uncovered_m", "uncovered_share"], ascending=[False, False]).head(WORST)
        out["roads"] = pd.DataFrame({
            t("col.code", lang): g["code"].astype(str).str.strip(), t("col.name", lang): g["name"],
            t("cov.road_uncovered_share", lang): g["uncovered_share"].map(_pct),
            t("cov.road_uncovered_m", lang): g["uncovered_m"].round(0).astype(int),
            t("cov.road_km", lang): (g["road_m"] / 1000).round(2),
        }).reset_index(drop=True)
    return out


# --- exports ---------------------------------------------------------------------------------

def csv_bytes(frame: pd.DataFrame) -> bytes:
    """UTF-8 with a byte-order mark, so that Excel opens the Chinese headers correctly."""
    return inert_frame(frame).to_csv(index=False).encode("utf-8-sig")


def excel_bytes(sheets: dict[str, pd.DataFrame]) -> bytes:
    """One sheet per table (names cut to Excel's 31 characters)."""
    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as xl:
        for name, frame in sheets.items():
            inert_frame(frame).to_excel(xl, sheet_name=name[:31].replace("/", "-"), index=False)
    return buf.getvalue()


def geojson_bytes(frame: gpd.GeoDataFrame) -> bytes:
    """A layer as GeoJSON (EPSG:4326), plain properties only."""
    out = frame.copy()
    for col in out.columns:
        if col != out.geometry.name and (out[col].dtype == object or str(out[col].dtype).startswith("datetime")):
            out[col] = out[col].map(lambda v: None if v is None or (not isinstance(v, list | tuple) and pd.isna(v)) else str(v))
    return out.to_crs(4326).to_json(ensure_ascii=False, drop_id=True).encode("utf-8")


def export_layers(detail: str, version: cd.Version, category: str, community: str | None = None) -> dict[str, gpd.GeoDataFrame]:
    """The map layers a user may download: uncovered stretches and areas, camera views,
    homes out of walking reach of the chosen category, community compliance."""
    out: dict[str, gpd.GeoDataFrame] = {}
    if cd.has(version, "cameras"):
        out["uncovered"] = cd.uncovered(detail, version, community).drop(columns="id")
        out["camera_views"] = cd.camera_views(detail, version, community).drop(columns=["id", "st"])
    if cd.has(version, "services"):
        homes = cd.homes(category, version, community)
        out["homes_out_of_reach"] = homes[homes["st"] != "within"].drop(columns=["id"]).rename(columns={"st": "reach"})
    if cd.has(version, "compliance") and community is None:
        out["compliance"] = cd.compliance_layer(version).rename(columns={"id": "community_code", "st": "verdict"})
    return out


# --- freshness -------------------------------------------------------------------------------

def freshness_panel(detail: str, version: cd.Version, lang: str, codes: set[str] | None = None, can_compute: bool = True) -> bool:
    """When each analysis was computed; 「数据已过期」 with what changed when the inputs moved
    on; the recompute button. False when nothing is stored yet (nothing else to show)."""
    done = st.session_state.pop("cov_recomputed", None)
    if done:
        st.success(t("cov.recomputed", lang, what=done))
    present = [a for a in ANALYSES if cd.has(version, a)]
    if not present:
        st.info(t("cov.none", lang))
        if can_compute:
            _compute_button(detail, lang, "cov.compute_now", full=True)
        else:
            st.caption(t("cov.ask_leader", lang))
        return False
    when = {a: at for a, rid, at in version}
    st.caption(t("cov.computed", lang) + _then(lang).join(
        f"{_tk('cov.analysis', a, lang)} {_when(when[a]) if cd.has(version, a) else t('cov.not_yet', lang)}" for a in ANALYSES)
        + _paren(f"{t('cov.detail', lang)}{_colon(lang)}{_tk('cov.detail', detail, lang)}", lang))
    missing = [a for a in ANALYSES if a not in present]
    if missing:
        st.info(t("cov.missing", lang, what=_and(lang).join(_tk("cov.analysis", a, lang) for a in missing)))
    status = cd.freshness(detail)
    status = status[status["analysis"].isin(present)]
    if codes is not None:
        status = status[status["code"].astype(str).str.strip().isin(codes)]
    stale = status[status["stale"]]
    if len(stale):
        parts = []
        for a, rows in stale.groupby("analysis", sort=False):
            scopes = Counter(rows["scope"])
            why = sorted({w for ws in rows["why"] for w in str(ws).split(",") if w})
            parts.append(t("cov.stale_part", lang, analysis=_tk("cov.analysis", a, lang),
                           areas=_and(lang).join(f"{n} {_tk('cov.scope', s, lang)}" for s, n in scopes.items()),
                           why=_and(lang).join(_tk("cov.why", w, lang) for w in why)))
        st.warning(f"**{t('cov.stale', lang)}**{_colon(lang)}" + _then(lang).join(parts))
        with st.expander(t("cov.stale_which", lang)):
            st.dataframe(pd.DataFrame({
                t("cov.analysis", lang): [_tk("cov.analysis", a, lang) for a in stale["analysis"]],
                t("cov.scope", lang): [_tk("cov.scope", s, lang) for s in stale["scope"]],
                t("col.code", lang): stale["code"].astype(str).str.strip(),
                t("cov.computed_at", lang): stale["computed_at"].map(_when),
                t("cov.why", lang): [_and(lang).join(_tk("cov.why", w, lang) for w in str(ws).split(",") if w) for ws in stale["why"]],
            }), hide_index=True, width="stretch")
    if can_compute:
        _compute_button(detail, lang, "cov.recompute", full=False, primary=bool(len(stale)))
    elif len(stale):
        st.caption(t("cov.ask_leader", lang))
    return True


def _compute_button(detail: str, lang: str, label_key: str, full: bool, primary: bool = False) -> None:
    if st.button(t(label_key, lang), key="cov_recompute", type="primary" if primary else "secondary"):
        try:
            with st.spinner(t("cov.computing", lang)):
                ran = cd.recompute(detail, full=full)
        except Exception as exc:  # noqa: BLE001 - shown with a reference: the stored results are unchanged (each refresh is one transaction)
            st.error(t("cov.failed", lang, err=log_failure(exc, "coverage.recompute")))
            return
        st.session_state["cov_recompute_result"] = ran
        st.session_state["cov_recomputed"] = _then(lang).join(
            f"{_tk('cov.analysis', a, lang)} {_tk('cov.mode', str(r.get('mode', 'full')), lang)}" for a, r in ran.items())
        st.rerun()


# --- the leader's screen ---------------------------------------------------------------------

def render() -> None:
    lang = language()
    sub = subdistrict()
    names = _names(sub)
    subs = data.subdistricts()
    st.title(f"{dict(zip(subs['code'], subs['name'])).get(sub, sub)} · {t('page.coverage', lang)}")
    default = get_settings().camera_detail_level
    c1, c2 = st.columns(2)
    detail = c1.selectbox(t("cov.detail", lang), DETAILS, index=DETAILS.index(default) if default in DETAILS else 1,
                          format_func=lambda d: _tk("cov.detail", d, lang), key="cov_detail",
                          help=t("cov.detail_help", lang))
    cats = services.categories()
    radii = services.radii()
    category = c2.selectbox(t("cov.category", lang), cats, format_func=lambda c: _cat(c, lang) + _paren(f"{radii.get(c, 0):g} m", lang),
                            key="cov_category")
    version = cd.versions(detail)
    if not freshness_panel(detail, version, lang):
        return
    cov = cd.camera_figures(detail, version) if cd.has(version, "cameras") else None
    cc = cd.category_coverage(version) if cd.has(version, "services") else None

    st.subheader(t("map.title", lang))
    m1, m2 = st.columns([3, 2])
    theme = m1.radio(t("cov.map_shows", lang), THEMES, format_func=lambda k: _tk("cov.theme", k, lang), horizontal=True,
                     key="cov_map_theme")
    # A city's views and gaps are heavy to draw at once: the map can be narrowed to one community.
    area = m2.selectbox(t("cov.map_area", lang), [None, *names], key="cov_map_area",
                        format_func=lambda c: t("cov.map_area_all", lang) if c is None else names.get(c, c))
    map_with_details(_leader_map(sub, detail, version, category, theme, area), key=f"cov_map_{theme}_{area or 'all'}")

    tables: dict[str, pd.DataFrame] = {}
    if cov is not None:
        tables.update(_camera_part(cov, detail, version, names, lang))
    if cc is not None:
        tables.update(_service_part(cc, category, version, names, lang))
    if cd.has(version, "compliance"):
        tables.update(_compliance_part(version, lang))
    worst = worst_grids(cov, cc, category, lang)
    if worst:
        st.header(t("cov.worst", lang))
        left, right = st.columns(2)
        if "reach" in worst:
            left.markdown(f"**{t('cov.worst_reach', lang, category=_cat(category, lang))}**")
            left.dataframe(worst["reach"], hide_index=True, width="stretch")
            tables[t("cov.sheet.worst_reach", lang)] = worst["reach"]
        if "roads" in worst:
            right.markdown(f"**{t('cov.worst_roads', lang)}**")
            right.dataframe(worst["roads"], hide_index=True, width="stretch")
            if worst.get("roads_none"):
                right.caption(t("cov.roads_none", lang, n=worst["roads_none"]))
            tables[t("cov.sheet.worst_roads", lang)] = worst["roads"]
    _exports(tables, detail, version, category, lang)


def _leader_map(sub: str, detail: str, version: cd.Version, category: str, theme: str,
                community: str | None = None) -> wmap.MapView:
    bounds = data.bounds(sub, community)
    small: list[wmap.GeoLayer] = []
    if theme == "cameras" and cd.has(version, "cameras"):
        gaps = cd.uncovered(detail, version, community, for_map=True)
        small = [wmap.GeoLayer("camera_views", cd.camera_views(detail, version, community, for_map=True)[["id", "st", "geom"]].rename_geometry("geometry")),
                 wmap.GeoLayer("uncovered_roads", gaps[gaps["kind"] == "road"][["id", "geometry"]]),
                 wmap.GeoLayer("uncovered_areas", gaps[gaps["kind"] == "open_space"][["id", "geometry"]], show=False),
                 wmap.GeoLayer("cameras", data.cameras_in(bounds)[["id", "st", "geometry"]], show=False)]
    elif theme == "services" and cd.has(version, "services"):
        fac = data.facilities_in(bounds)
        small = [wmap.GeoLayer("homes_reach", cd.homes(category, version, community)[["id", "st", "geom"]].rename_geometry("geometry")),
                 wmap.GeoLayer("facilities", fac[fac["category"] == category][["id", "geometry"]])]
    elif theme == "compliance" and cd.has(version, "compliance"):
        layer = cd.compliance_layer(version)
        if community is not None:
            layer = layer[layer["id"].astype(str).str.strip() == community]
        small = [wmap.GeoLayer("compliance", layer[["id", "st", "geom"]].rename_geometry("geometry"))]
    return wmap.MapView(bounds=bounds, tiles=("communities", "roads", "buildings"), small=small)


def _camera_part(cov: pd.DataFrame, detail: str, version: cd.Version, names: dict[str, str], lang: str) -> dict[str, pd.DataFrame]:
    st.header(t("cov.cameras", lang))
    whole = cov[cov["scope"] == "subdistrict"]
    if len(whole):
        w = whole.iloc[0]
        m = st.columns(6)
        m[0].metric(t("cov.road_share", lang), _pct(w["road_share"]))
        m[1].metric(t("cov.inner_road_share", lang), _pct(w["inner_road_share"]))
        m[2].metric(t("cov.open_share", lang), _pct(w["open_share"]))
        m[3].metric(t("cov.facade_share", lang), _pct(w["facade_share"]))
        m[4].metric(t("cov.key_places", lang), f"{w['key_places_covered']}/{w['key_places']}")
        m[5].metric(t("cov.cameras_counted", lang), f"{w['cameras_counted']}/{w['cameras']}")
    report = cd.camera_report(detail, version)
    st.caption(assumption_text(report, lang))
    st.markdown(f"**{t('cov.per_community', lang)}**")
    communities = camera_table(cov, "community", lang)
    st.dataframe(communities, hide_index=True, width="stretch")
    grids = camera_table(cov, "grid", lang)
    with st.expander(f"{t('cov.per_grid', lang)} ({len(grids)})"):
        st.dataframe(grids, hide_index=True, width="stretch")

    st.subheader(t("cov.xueliang", lang))
    xl = cd.xueliang(detail, version)
    check = xueliang_table(xl, lang)
    st.dataframe(_style_marks(check), hide_index=True, width="stretch")
    if len(xl):
        s_ = get_settings()
        st.caption(t("cov.xl_rules", lang, cover=f"{s_.key_places_covered_min:.0%}", online=f"{s_.camera_serviceability_min:.0%}"),
                   help=t("cov.xl_rules_help", lang, cover=f"{s_.key_places_covered_min:g}", online=f"{s_.camera_serviceability_min:g}"))
    places = key_place_table(cd.key_places(detail, version), names, lang)
    with st.expander(f"{t('cov.key_place_list', lang)} ({len(places)})"):
        st.dataframe(_style_marks(places), hide_index=True, width="stretch")
    return {t("cov.sheet.camera_communities", lang): communities, t("cov.sheet.camera_grids", lang): grids,
            t("cov.sheet.xueliang", lang): check, t("cov.sheet.key_places", lang): places}


def assumption_text(report: pd.DataFrame, lang: str) -> str:
    """How many cameras each stated assumption applies to (domes and cameras without a
    direction are circles, offline ones not counted …), in the user's language."""
    counts: Counter[str] = Counter()
    text_of: dict[str, str] = {}
    for notes in report["assumptions"]:
        for note in notes or []:
            code, _, words = str(note).partition(":")
            counts[code] += 1
            zh, _, en = words.strip().partition(" / ")
            text_of.setdefault(code, (zh if lang == "zh" else en or zh).strip())
    body = _then(lang).join(f"{text_of[c]} ×{n}" for c, n in counts.most_common())
    return t("cov.assumptions", lang, n=len(report), notes=body or t("cov.no_assumptions", lang))


def _service_part(cc: pd.DataFrame, category: str, version: cd.Version, names: dict[str, str], lang: str) -> dict[str, pd.DataFrame]:  # noqa: C901
    st.header(t("cov.services", lang))
    radius = services.radii().get(category)
    st.caption(t("cov.services_note", lang, category=_cat(category, lang), radius=f"{radius:g}" if radius else "—"))
    whole = cc[(cc["scope"] == "subdistrict") & (cc["category"] == category)]
    if len(whole):
        w = whole.iloc[0]
        m = st.columns(5)
        m[0].metric(t("cov.beyond_network", lang), f"{int(w['households_beyond_network']):,}")
        m[1].metric(t("cov.beyond_straight", lang), f"{int(w['households_beyond_straight']):,}")
        m[2].metric(t("cov.within_network", lang), _pct(w["share_within_network"]))
        m[3].metric(t("cov.within_straight", lang), _pct(w["share_within_straight"]))
        m[4].metric(t("cov.overclaim", lang), f"{int(w['overclaim_households']):,}")
    st.markdown(f"**{t('cov.per_community', lang)}**")
    communities = service_table(cc, category, "community", lang, names)
    st.dataframe(communities, hide_index=True, width="stretch")
    grid_names = dict(zip(data.grid_table(None)["code"].astype(str), data.grid_table(None)["name"]))
    grids = service_table(cc, category, "grid", lang, grid_names)
    with st.expander(f"{t('cov.per_grid', lang)} ({len(grids)})"):
        st.dataframe(grids, hide_index=True, width="stretch")
    st.subheader(t("cov.life_circles", lang))
    lc = cd.life_circles(version)
    circles = life_circle_table(lc, lang, names)
    st.dataframe(circles, hide_index=True, width="stretch")
    whole_lc = lc[lc["scope"] == "subdistrict"] if len(lc) else lc
    if len(whole_lc) and (whole_lc["share_network"] < whole_lc["share_straight"] / 3).any():
        # Not an error: a circle needs *every* category within its distance, on foot along the
        # streets; where streets are sparse each category alone is reached by few homes, all
        # of them together by fewer still. The straight line over-claims (standards §4).
        cc_ = cc[(cc["scope"] == "subdistrict")]
        st.info(t("cov.circles_why", lang, m=f"{services.life_circles()['5min'][0]:g}",
                  walk=_pct(cc_["share_within_network"].min()) + "–" + _pct(cc_["share_within_network"].max()),
                  line=_pct(cc_["share_within_straight"].min()) + "–" + _pct(cc_["share_within_straight"].max())))
    st.caption(_then(lang).join(t("cov.circle_rule", lang, circle=t(f"cov.circle.{k}", lang), m=f"{d:g}",
                                        cats=_and(lang).join(_cat(c, lang) for c in cats))
                        for k, (d, cats) in services.life_circles().items()))
    sheet = _cat(category, lang)
    return {f"{t('cov.sheet.services', lang)}-{sheet}": communities, f"{t('cov.sheet.services_grids', lang)}-{sheet}": grids,
            t("cov.sheet.life_circles", lang): circles}


def _compliance_part(version: cd.Version, lang: str) -> dict[str, pd.DataFrame]:
    st.header(t("cov.compliance_part", lang))
    table = compliance_display(cd.compliance_table(version), lang)
    st.dataframe(_style_marks(table), hide_index=True, width="stretch")
    rules = cd.rules()
    st.caption(_then(lang).join(f"{_tk('cov.rule', r.rule, lang)}{_colon(lang)}{one_language(r.rule_name, lang)}"
                                for r in rules.itertuples()),
               help="\n\n".join(f"{_tk('cov.rule', r.rule, lang)}：{one_language(str(r.reference), lang)}；"
                                 f"{t('rulesrc.setting', lang, r.setting, r.threshold)}" for r in rules.itertuples()))
    return {t("cov.sheet.compliance", lang): table}


def _exports(tables: dict[str, pd.DataFrame], detail: str, version: cd.Version, category: str, lang: str,
             community: str | None = None, key: str = "cov") -> None:
    st.header(t("cov.exports", lang))
    if not tables:
        st.caption(t("cov.none", lang))
        return
    c1, c2, c3 = st.columns(3)
    which = c1.selectbox(t("cov.export_table", lang), list(tables), key=f"{key}_export_table")
    c1.download_button(t("cov.csv", lang), data=csv_bytes(tables[which]), file_name=f"{which}.csv", mime="text/csv",
                       key=f"{key}_dl_csv", on_click="ignore")
    c2.markdown(" ")
    c2.download_button(t("cov.excel", lang), data=lambda: excel_bytes(tables), file_name=f"{t('page.coverage', lang)}.xlsx",
                       mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", key=f"{key}_dl_xlsx", on_click="ignore")
    layers = export_layers(detail, version, category, community)
    if layers:
        which_layer = c3.selectbox(t("cov.export_layer", lang), list(layers), format_func=lambda k: _tk("cov.layer", k, lang),
                                   key=f"{key}_export_layer")
        c3.download_button(t("cov.geojson", lang), data=lambda: geojson_bytes(layers[which_layer]),
                           file_name=f"{which_layer}.geojson", mime="application/geo+json", key=f"{key}_dl_geojson", on_click="ignore")


# --- the grid worker's part --------------------------------------------------------------------

def render_grid(pack: GridPack, lang: str) -> None:
    """Coverage facts of one grid: what the cameras see and miss there, its homes out of
    walking reach per category, and a stale notice (for ``ui/screens/worker.py``)."""
    code = str(pack.detail["code"]).strip()
    community = str(pack.detail.get("community_code") or code[:12]).strip()
    st.header(t("cov.my_grid", lang))
    detail = get_settings().camera_detail_level
    version = cd.versions(detail)
    if not freshness_panel(detail, version, lang, codes={code, community}, can_compute=False):
        return
    cats = services.categories()
    category = st.selectbox(t("cov.category", lang), cats, format_func=lambda c: _cat(c, lang), key="worker_cov_category")
    small: list[wmap.GeoLayer] = [wmap.GeoLayer("grid", pack.shape[["id", "geometry"]])]
    outline = pack.shape.geometry.union_all() if len(pack.shape) else None
    tables: dict[str, pd.DataFrame] = {}
    if cd.has(version, "cameras"):
        cov = cd.camera_figures(detail, version)
        mine = cov[(cov["scope"] == "grid") & (cov["code"].astype(str).str.strip() == code)]
        if len(mine):
            r = mine.iloc[0]
            m = st.columns(5)
            m[0].metric(t("cov.road_share", lang), _pct(r["road_share"]))
            m[1].metric(t("cov.road_uncovered_m", lang), f"{r['road_m'] - r['road_covered_m']:,.0f}")
            m[2].metric(t("cov.open_share", lang), _pct(r["open_share"]))
            m[3].metric(t("cov.key_places", lang), f"{r['key_places_covered']}/{r['key_places']}")
            m[4].metric(t("cov.cameras_counted", lang), f"{r['cameras_counted']}/{r['cameras']}")
            tables[t("cov.sheet.camera_grids", lang)] = camera_table(mine, "grid", lang)
        kp = cd.key_places(detail, version)
        missed = kp[(kp["unit_code"].astype(str).str.strip() == code) & ~kp["covered"].astype(bool)]
        if len(missed):
            st.warning(t("cov.unseen_places", lang, names=_and(lang).join(missed["name"].astype(str))))
        gaps = cd.uncovered(detail, version, community, for_map=True)
        gaps = gaps[gaps["unit_code"].astype(str).str.strip() == code]
        views = cd.camera_views(detail, version, community, for_map=True)
        if outline is not None:
            views = views[views.intersects(outline)]
        small += [wmap.GeoLayer("camera_views", views[["id", "st", "geom"]].rename_geometry("geometry")),
                  wmap.GeoLayer("uncovered_roads", gaps[gaps["kind"] == "road"][["id", "geometry"]])]
    if cd.has(version, "services"):
        cc = cd.category_coverage(version, community)
        table = grid_service_table(cc, code, lang)
        st.markdown(f"**{t('cov.grid_services', lang)}**")
        st.dataframe(table, hide_index=True, width="stretch")
        tables[t("cov.sheet.services_grids", lang)] = table
        homes = cd.homes(category, version, community)
        homes = homes[homes["id"].isin(pack.buildings["id"])]
        out = homes[homes["st"] != "within"]
        st.caption(t("cov.grid_homes", lang, category=_cat(category, lang), n=len(out), households=int(out["households"].fillna(0).sum()),
                     total=len(homes)))
        small.append(wmap.GeoLayer("homes_reach", homes[["id", "st", "geom"]].rename_geometry("geometry")))
    view = wmap.MapView(bounds=tuple(pack.shape.total_bounds) if len(pack.shape) else None,
                        tiles=("communities", "roads", "buildings"), small=small)
    map_with_details(view, key=f"worker_cov_map_{pack.detail.get('id', code)}")
    if tables:
        st.download_button(t("cov.excel", lang), data=lambda: excel_bytes(tables), file_name=f"{code}.xlsx",
                           mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", key="worker_cov_xlsx",
                           on_click="ignore")
