"""Pieces several screens share: the sub-district picker, figure tiles, the map with its
details panel, and translated tables."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from gis.settings import get_settings
from layers.vocab import BUILDING_USES, CAMERA_STATUSES, FACILITY_CATEGORIES, FACILITY_STATUSES, GRID_TYPES, GROUPS, PTZ_TYPES, label
from ui import data
from ui import map as wmap
from ui.fmt import _empty, fmt_int, fmt_num, fmt_pct, fmt_time  # noqa: F401  (screens import them from here)
from ui.i18n import T, t
from ui.state import language


def subdistrict() -> str:
    """The sub-district in view (a picker in the sidebar when there are several)."""
    lang = language()
    subs = data.subdistricts()
    if subs.empty:
        st.info(t("app.no_data", lang))
        st.stop()
    if len(subs) == 1:
        return str(subs["code"].iloc[0])
    with st.sidebar:
        return st.selectbox(t("app.subdistrict", lang), subs["code"].tolist(),
                            format_func=dict(zip(subs["code"], subs["name"])).get, key="subdistrict")


# Rules: which settings hold their values and where they come from (shown on hover only).
RULE_SETTINGS: dict[str, tuple[tuple[str, ...], str]] = {
    "households_band": (("grid_households_min", "grid_households_max"), "practice"),
    "residents_max": (("grid_residents_max",), "practice"),
    "one_grid_one_worker": ((), "practice"),
    "households_per_worker": (("households_per_worker",), "seed"),
    "staffing_ratio": (("households_per_worker",), "seed"),
    "worker_load": (("worker_households_max",), "practice"),
    "max_grids_per_worker": (("max_grids_per_worker",), "practice"),
    "worker_distance": (("worker_max_distance_m",), "practice"),
    "assigned_nowhere": ((), "practice"),
}


def _rule_values(key: str) -> list:
    names, _ = RULE_SETTINGS.get(key, ((), "practice"))
    if key == "one_grid_one_worker":
        vals = [1]
    else:
        s = get_settings()
        vals = [getattr(s, n) for n in names]
    return [int(v) if isinstance(v, (int, float)) and float(v).is_integer() else v for v in vals]


def rule_text(key: str, lang: str) -> str:
    """The rule in words with its values (「一格一员：每格至少 1 名专职网格员」), no references."""
    return t(f"rule.{key}", lang, *_rule_values(key))


def rule_help(key: str, lang: str) -> str:
    """Hover text: the rule in words, its source, and the setting that holds each value."""
    names, source = RULE_SETTINGS.get(key, ((), "practice"))
    parts = [rule_text(key, lang), t(f"rulesrc.{source}", lang)]
    parts += [t("rulesrc.setting", lang, n, v) for n, v in zip(names, _rule_values(key))]
    return "；".join(parts) if lang == "zh" else "; ".join(parts)


def rule_short(key: str, lang: str, full: bool = False) -> str:
    """「一格一员」 (or, with ``full``, the hover text); unknown keys are shown as they are."""
    if f"ruleshort.{key}" not in T:
        return key
    return rule_help(key, lang) if full else t(f"ruleshort.{key}", lang)


# --- formatting: numbers for reading, 「—」 for empty, the deployment's time zone ----------------

def readable(df: pd.DataFrame, lang: str) -> pd.DataFrame:
    """A frame ready to show: 「—」 for empty cells, times in the deployment's zone, floats rounded."""
    out = df.copy()
    for c in out.columns:
        col = out[c]
        if pd.api.types.is_datetime64_any_dtype(col):
            out[c] = [fmt_time(v, lang) for v in col]
        elif pd.api.types.is_float_dtype(col):
            whole = col.dropna().map(float.is_integer).all() if col.notna().any() else True
            out[c] = [fmt_num(v, 0 if whole else 1) for v in col]
        elif col.dtype == object:
            out[c] = ["—" if _empty(v) or v == "" else (v if not isinstance(v, bool) else ("是" if v else "否") if lang == "zh" else ("yes" if v else "no"))
                      for v in col]
    return out


def figure_tiles(fig: dict, lang: str) -> None:
    """Key figures as metrics; each judged figure names its rule underneath (short name,
    the full wording, source and setting on hover)."""
    per_worker = get_settings().households_per_worker
    row1 = st.columns(5)
    for col, key in zip(row1, ("communities", "grids", "buildings", "households", "residents")):
        col.metric(t(f"fig.{key}", lang), fmt_int(fig[key]))
        if key in ("households", "residents") and fig.get("estimated_buildings"):  # issue 13: say where figures are estimates
            col.caption(f"{t('hh.estimated', lang)} · {t('hh.some_estimated', lang, n=fig['estimated_buildings'])}",
                        help=t("hh.estimated_help", lang))
    row2 = st.columns(5)
    row2[0].metric(t("fig.full_time_workers", lang), fmt_int(fig["full_time_workers"]), help=t("fig.full_time_workers_help", lang))
    row2[1].metric(t("fig.grids_without_full_time", lang), fmt_int(fig["grids_without_full_time"]),
                   help=rule_help("one_grid_one_worker", lang))
    row2[1].caption(rule_text("one_grid_one_worker", lang))
    hpw = fig["households_per_full_time"]
    row2[2].metric(t("fig.households_per_full_time", lang), fmt_num(hpw, 0),
                   delta=None if hpw is None else (t("rule.over", lang) if hpw > per_worker else t("rule.within", lang)),
                   delta_color="inverse" if hpw is not None and hpw > per_worker else "normal",
                   help=rule_help("households_per_worker", lang))
    row2[2].caption(rule_text("households_per_worker", lang))
    row2[3].metric(t("fig.grids_over_band", lang), fmt_int(fig["grids_over_band"]), help=rule_help("households_band", lang))
    row2[3].caption(rule_text("households_band", lang))
    row2[4].metric(t("fig.grids_under_band", lang), fmt_int(fig["grids_under_band"]), help=rule_help("households_band", lang))
    row2[4].caption(rule_text("households_band", lang))
    if fig.get("grids_over_residents"):
        st.warning(f"{t('fig.grids_over_residents', lang)}：{fig['grids_over_residents']}（{rule_text('residents_max', lang)}）")
    coverage = fig.get("coverage") or {}
    if coverage:
        cols = st.columns(len(coverage))
        for col, (k, v) in zip(cols, coverage.items()):
            col.metric(t(f"cov.{k}", lang), fmt_pct(v), help=t(f"cov.{k}_help", lang))
    else:
        st.caption(t("fig.coverage_pending", lang))


def translate_table(df: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Column headers and coded values in the user's language."""
    out = df.copy()
    for col in ("households_per_full_time", "households_per_worker"):  # one rounding everywhere (the tiles show whole households)
        if col in out:
            out[col] = [fmt_num(v, 0) for v in out[col]]
    if "status" in out:
        out["status"] = [t(f"status.{s}", lang) for s in out["status"]]
    if "grid_type" in out:
        out["grid_type"] = [label(GRID_TYPES, v, lang) for v in out["grid_type"]]
    return out.rename(columns={c: t(f"col.{c}", lang) for c in out.columns if f"col.{c}" in _COLS})


_COLS = {k for k in T if k.startswith("col.")}


def search_box(view: wmap.MapView, key: str, lang: str) -> tuple[str, object] | None:
    """A search box over the map: an address, building, grid or community (code or name),
    a cadre (name or number). The chosen hit frames the map and is returned to be shown."""
    from ui.inputs import text_box

    c1, c2 = st.columns([2, 3])
    query = text_box(t("search.label", lang), key=f"{key}_search", max_chars=64, container=c1,
                     placeholder=t("search.placeholder", lang))
    if not query:
        return None
    hits = data.search(query)
    if hits.empty:
        c2.caption(t("search.none", lang, q=query))
        return None
    labels = [f"{t(f'search.kind.{k}', lang)} · {lab}" for k, lab in zip(hits["kind"], hits["label"])]
    i = c2.selectbox(t("search.hits", lang, n=len(hits)), range(len(hits)), format_func=lambda j: labels[j], key=f"{key}_hit")
    hit = hits.iloc[int(i)]
    pad = 0.0012  # about 120 m around a building or a grid: the street around it stays in view
    view.bounds = (float(hit["w"]) - pad, float(hit["s"]) - pad, float(hit["e"]) + pad, float(hit["n"]) + pad)
    view.centre = None
    return str(hit["layer"]), hit["id"]


def map_with_details(view: wmap.MapView, key: str) -> None:
    """The map with its search box, and beside it the clicked (or found) feature's attributes."""
    lang = language()
    found = search_box(view, key, lang)
    left, right = st.columns([3, 1])
    with left:
        picked = wmap.show(view, lang, key=f"{key}_{found[0]}_{found[1]}" if found else key) or found
    with right:
        st.markdown(f"**{t('map.selected', lang)}**")
        if not picked:
            st.caption(t("map.click_hint", lang))
            return
        layer, fid = picked
        row = data.detail(layer, fid)
        if not row:
            st.caption(t("map.not_found", lang))
            return
        st.dataframe(detail_rows(layer, row, lang), hide_index=True, width="stretch")


def detail_rows(layer: str, row: dict, lang: str) -> pd.DataFrame:
    """A feature's attributes as (label, value) rows in the user's language."""
    names = {
        "code": t("col.code", lang), "name": t("col.name", lang), "grid_type": t("col.grid_type", lang),
        "community_name": t("col.community", lang), "households": t("col.households", lang), "residents": t("col.residents", lang),
        "buildings": t("col.buildings", lang), "full_time": t("col.full_time", lang), "status": t("detail.status", lang),
        "address": t("col.address", lang), "use": t("col.use", lang), "floors": t("col.floors", lang),
        "grid_name": t("col.grid", lang), "device_id": t("col.device_id", lang), "ptz_type": t("detail.ptz", lang),
        "category": t("col.category", lang), "floor_area": t("detail.floor_area", lang), "capacity": t("detail.capacity", lang),
        "grids": t("col.grids", lang), "full_time_workers": t("col.full_time_workers", lang),
        "grids_without_full_time": t("col.grids_without_full_time", lang), "households_per_full_time": t("col.households_per_full_time", lang),
        "area_m2": "m²", "source_id": "ID",
    }
    names.update({g.code: (g.zh if lang == "zh" else g.en) for g in GROUPS})
    values = dict(row)
    if "use" in values:
        values["use"] = label(BUILDING_USES, values["use"], lang)
    if "grid_type" in values:
        values["grid_type"] = label(GRID_TYPES, values["grid_type"], lang)
    if "category" in values:
        values["category"] = label(FACILITY_CATEGORIES, values["category"], lang)
    if "status" in values and layer in ("grids", "grid", "neighbours"):
        values["status"] = t(f"status.{values['status']}", lang)
    elif "status" in values and layer == "cameras":
        values["status"] = label(CAMERA_STATUSES, values["status"], lang)
    elif "status" in values and layer == "facilities":
        values["status"] = label(FACILITY_STATUSES, values["status"], lang)
    if values.get("households_source") == "estimated":  # issue 13: an estimate says so wherever it is shown
        for k in ("households", "residents"):
            if values.get(k) is not None:
                values[k] = f"{values[k]}（{t('hh.estimated', lang)}）" if lang == "zh" else f"{values[k]} ({t('hh.estimated', lang)})"
    if values.get("ptz_type") is not None:
        values["ptz_type"] = PTZ_TYPES.get(int(values["ptz_type"]), values["ptz_type"])
    rows = [(names[k], "" if v is None else str(v)) for k, v in values.items() if k in names and v is not None]
    title = t({"grids": "detail.grid", "grid": "detail.grid", "neighbours": "detail.grid", "buildings": "detail.building",
               "cameras": "detail.camera", "facilities": "detail.facility", "communities": "detail.community"}.get(layer, "detail.grid"), lang)
    return pd.DataFrame([(t("col.layer", lang), title), *rows], columns=["", " "])
