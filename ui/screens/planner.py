"""Planner (规划人员): facility siting on the road network, scenarios side by side, exports.

The screen drives ``analysis.siting_scenarios`` (through ``ui.data``): the form gathers a
run's inputs, the run reports its steps to a progress bar and is stored as a scenario, and
everything shown afterwards (result, map, comparison, downloads) is read back from the
stored scenario by id, so what the planner sees is what was saved and what the CLI's
``wangge scenario`` shows. The solver's status is shown as HiGHS gave it: "optimal" only
when proved; a run stopped by the time limit says so, with its gap.

An uploaded candidate file goes the administrator's way (``admin.safe_name`` in a fresh
temporary directory, removed afterwards); a bad row is reported with its row number.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import streamlit as st

from analysis.services import radii
from analysis.siting import MODELS, SitingError
from gis import scope
from gis.problems import ImportFailed
from gis.settings import get_settings
from layers.vocab import BUILDING_USES, FACILITY_CATEGORIES, GROUPS, label
from ui import data
from ui import map as wmap
from ui.common import fmt_int, fmt_time
from ui.i18n import T, t
from ui.inputs import text_box
from ui.seam import one_language
from ui.screens.admin import (
    main_file,
    oversized,
    problems_table,
    safe_name,
    show_problems,
)
from ui.state import language

CANDIDATE_KINDS = ("roads", "buildings", "file")
WEIGHTS = ("households", "elderly_65", "elderly_alone", "disabled", "dibao")


def categories() -> list[str]:
    """GB 50180 categories (those with a service radius), in the vocabulary's order."""
    r = radii()
    return [c.code for c in FACILITY_CATEGORIES if c.code in r]


def _reset_radius() -> None:
    st.session_state["plan_radius"] = int(radii()[st.session_state["plan_category"]])


def render() -> None:
    lang = language()
    st.title(t("page.planning", lang))
    st.subheader(t("site.title", lang))
    st.caption(t("site.intro", lang))
    deleted = st.session_state.pop("plan_delete", None)
    if deleted is not None:  # asked for by the button's callback; done here, inside the signed-in scope
        data.siting_delete(deleted)
        st.success(t("site.deleted", lang, sid=deleted))
    opts = _form(lang)
    if st.button(t("site.run", lang), type="primary", key="plan_run"):
        sid = _run(opts, lang)
        if sid is not None:
            st.session_state["plan_show"] = sid
    saved = data.siting_list()
    sid = _pick_scenario(saved, lang)
    if sid is None:
        _base_map(opts["category"], lang)
    else:
        _result(sid, lang)
    _saved(saved, sid, lang)
    _facilities_by_category(lang)


# --- inputs ---------------------------------------------------------------------------------

def _form(lang: str) -> dict:
    cats = categories()
    r = radii()
    with st.container(border=True):
        st.markdown(f"**{t('site.inputs', lang)}**")
        c1, c2, c3 = st.columns(3)
        category = c1.selectbox(t("site.category", lang), cats, key="plan_category", on_change=_reset_radius,
                                format_func=lambda c: f"{label(FACILITY_CATEGORIES, c, lang)} · {r[c]:.0f} m")
        if "plan_radius" not in st.session_state:
            st.session_state["plan_radius"] = int(r[category])
        radius = c2.number_input(t("site.radius", lang), min_value=50, max_value=5000, step=50, key="plan_radius",
                                 help=t("site.radius_help", lang))
        weight = c3.selectbox(t("site.weight", lang), WEIGHTS, key="plan_weight",
                              format_func=lambda w: t("site.weight.households", lang) if w == "households" else label(GROUPS, w, lang))
        viewer = scope.current()
        if weight != "households" and viewer is not None and not viewer.sees_group_rows:
            c3.caption(t("site.weight_estimated", lang))
        model = st.radio(t("site.model", lang), MODELS, key="plan_model", horizontal=True,
                         format_func=lambda m: t(f"site.model.{m}", lang))
        c1, c2, c3 = st.columns(3)
        if model == "lscp":
            c1.caption(t("site.p_lscp", lang))
            p = None
        else:
            p = int(c1.number_input(t("site.p", lang), min_value=1, max_value=100, value=2, step=1, key="plan_p"))
        capacitated = c2.checkbox(t("site.capacitated", lang), key="plan_capacitated")
        capacity = (c2.number_input(t("site.capacity", lang), min_value=1, value=1500, step=100, key="plan_capacity")
                    if capacitated else None)
        time_limit = c3.number_input(t("site.time_limit", lang), min_value=1, max_value=3600, value=30, step=5, key="plan_time")
        kind = st.radio(t("site.candidates", lang), CANDIDATE_KINDS, key="plan_cands", horizontal=True,
                        format_func=lambda k: t(f"site.cand.{k}", lang))
        spec: str | None = None
        upload = crs = None
        if kind == "roads":
            spacing = st.number_input(t("site.spacing", lang), min_value=10, max_value=1000, value=50, step=10, key="plan_spacing")
            spec = f"roads:{spacing:g}"
        elif kind == "buildings":
            b1, b2 = st.columns(2)
            use = b1.selectbox(t("site.building_use", lang), [u.code for u in BUILDING_USES], index=6, key="plan_use",
                               format_func=lambda u: label(BUILDING_USES, u, lang))
            ids = text_box(t("site.building_ids", lang), key="plan_building_ids", max_chars=2000, container=b2)
            spec = "buildings:" + (",".join(s.strip() for s in ids.replace("，", ",").split(",") if s.strip()) if ids else f"use={use}")
        else:
            upload = st.file_uploader(t("site.file", lang), accept_multiple_files=True, key="plan_file")
            crs = text_box(t("site.file_crs", lang), key="plan_crs", max_chars=64)
        name = text_box(t("site.name", lang), key="plan_name", max_chars=100)
    return {"category": category, "model": model, "radius": float(radius), "p": p, "weight": weight,
            "capacitated": capacitated, "candidate_capacity": None if capacity is None else float(capacity),
            "time_limit": float(time_limit), "candidates": spec, "upload": upload, "crs": crs, "name": name}


def _run(opts: dict, lang: str) -> int | None:
    """One run with a progress bar; errors are shown (a bad candidate file row by row)."""
    opts = dict(opts)
    upload = opts.pop("upload")
    category, model = opts.pop("category"), opts.pop("model")
    with tempfile.TemporaryDirectory(prefix="wangge_candidates_") as tmp:
        if opts["candidates"] is None:
            if not upload:
                st.warning(t("site.no_file", lang))
                return None
            too_big = oversized(upload)
            if too_big:
                st.error(t("admin.too_large", lang, files="、".join(too_big), mb=get_settings().max_upload_mb))
                return None
            paths = []
            for i, f in enumerate(upload):
                path = Path(tmp) / safe_name(f.name, i)
                path.write_bytes(f.getvalue())
                paths.append(path)
            opts["candidates"] = main_file(paths) or paths[0]
        with st.status(t("site.running", lang), expanded=True) as box:
            bar = st.progress(0.0)

            def progress(step: str, fraction: float) -> None:
                bar.progress(min(max(fraction, 0.0), 1.0), text=step if lang == "zh" else step.split(" / ", 1)[-1])

            try:
                sid = data.siting_run(category, model, progress, **opts)
            except data.Refused as refused:
                exc = refused.__cause__  # the SitingError, whose cause may be the file's ImportFailed
                box.update(state="error")
                if isinstance(getattr(exc, "__cause__", None), ImportFailed):
                    st.error(t("site.file_failed", lang, n=len(exc.__cause__.problems)))
                    show_problems(problems_table(exc.__cause__, lang))
                else:
                    st.error(t("site.failed", lang, err=one_language(refused.message, lang)))
                return None
            box.update(label=t("site.saved", lang, sid=sid), state="complete", expanded=False)
    return sid


# --- one scenario ---------------------------------------------------------------------------

def _pick_scenario(saved: pd.DataFrame, lang: str) -> int | None:
    if saved.empty:
        st.session_state.pop("plan_show", None)
        return None
    ids = saved["id"].astype(int).tolist()
    if st.session_state.get("plan_show") not in ids:
        st.session_state["plan_show"] = ids[0]
    names = _scenario_names(saved, lang)
    return st.selectbox(t("site.show", lang), ids, key="plan_show", format_func=names.get)


def _scenario_names(saved: pd.DataFrame, lang: str) -> dict[int, str]:
    return {int(r.id): f"#{r.id} {r.name if isinstance(r.name, str) and r.name else ''} · {label(FACILITY_CATEGORIES, r.category, lang)} · "
                       f"{t(f'site.model_short.{r.model}', lang)}"
            + (f" p={int(r.p)}" if pd.notna(r.p) else "") + f" · {r.radius_m:.0f} m" for r in saved.itertuples()}


def status_message(row: dict, lang: str) -> tuple[str, str]:
    """(kind, text): never "optimal" unless HiGHS proved it; a time-out names its gap."""
    gap = row.get("gap")
    gap_text = "—" if gap is None else f"{gap:.4%}"
    if row["status"] == "optimal":
        return "success", t("site.optimal", lang, gap=gap_text)
    if row["status"] == "time_limit":
        return "warning", t("site.time_out", lang, limit=f"{row['time_limit_s']:g}", gap=gap_text)
    return "error", t("site.other_status", lang, status=row["status"])


def _result(sid: int, lang: str) -> None:
    res = data.siting_scenario(sid)
    row = res["row"]
    st.subheader(t("site.result", lang, sid=sid))
    kind, text_ = status_message(row, lang)
    getattr(st, kind)(text_)
    total = row["total_weight"] or 0.0
    objective = row["objective"]
    m = st.columns(6)
    m[0].metric(t(f"site.objective.{row['model']}", lang), "—" if objective is None else f"{objective:,.0f}")
    m[1].metric(t("site.new_sites", lang), f"{row['new_sites']:,}")
    m[2].metric(t("site.covered", lang), f"{row['covered_weight']:,.0f}", delta=f"/ {total:,.0f}", delta_color="off")
    m[3].metric(t("site.covered_after", lang), _pct(row["covered_weight"], total),
                delta=f"{t('site.covered_before', lang)} {_pct(row['covered_before'], total)}", delta_color="off")
    m[4].metric(t("site.mean", lang), _metres(row["mean_distance_m"]))
    m[5].metric(t("site.p95", lang), _metres(row["p95_distance_m"]))
    unreachable = res["unreachable"]
    if len(unreachable):
        st.warning(t("site.unreachable_note", lang, n=len(unreachable), w=f"{unreachable['weight'].sum():,.0f}",
                     cutoff=f"{row['cutoff_m']:.0f}"))
        st.dataframe(_columns(unreachable[["source_id", "grid_code", "weight"]], lang), hide_index=True, key="plan_unreachable")
    else:
        st.caption(t("site.all_reachable", lang))
    st.markdown(f"**{t('site.sites_table', lang)}**")
    st.dataframe(sites_table(res["sites"], lang), hide_index=True, width="stretch", key="plan_sites")
    view = st.radio(t("site.view", lang), ("after", "before"), key="plan_view", horizontal=True,
                    format_func=lambda v: t(f"site.{v}", lang))
    wmap.show(scenario_view(res, view), lang, key=f"plan_map_{view}")
    notes = row.get("notes") or []
    if notes:
        st.caption(t("site.notes", lang) + "：" + "；".join(str(n) for n in notes))


def sites_table(sites: gpd.GeoDataFrame, lang: str) -> pd.DataFrame:
    """The new sites of a scenario, numbered as on the map and in the report."""
    new = sites[~sites["existing"]].reset_index(drop=True)
    out = pd.DataFrame({"serial": range(1, len(new) + 1), "site_key": new["site_key"], "name": new["name"],
                        "lon": new["lon"].round(6), "lat": new["lat"].round(6),
                        "assigned_weight": new["assigned_weight"].round(1), "demand_points": new["demand_points"]})
    return _columns(out, lang)


def scenario_view(res: dict, view: str) -> wmap.MapView:
    """The map of one scenario: before (existing sites, homes within their radius) or after
    (new sites and each one's catchment in its own colour, homes within any open site's radius)."""
    sites, homes = res["sites"], res["homes"]
    new = sites[~sites["existing"]].reset_index(drop=True)
    old = sites[sites["existing"]]
    covered = homes["covered_after" if view == "after" else "covered_before"].astype(bool)
    small = [wmap.GeoLayer("homes", gpd.GeoDataFrame({"id": homes["building_id"], "st": covered.map({True: "in", False: "out"})},
                                                     geometry=homes.geometry.values, crs=4326))]
    if view == "after" and len(new):
        colour = {k: i for i, k in enumerate(new["serial"])}
        hull = res["catchments"]
        hull = hull[~hull["existing"]]
        small.append(wmap.GeoLayer("catchments", gpd.GeoDataFrame(
            {"id": hull["serial"], "st": hull["serial"].map(colour)}, geometry=hull.geometry.values, crs=4326)))
        small.append(wmap.GeoLayer("sites_new", gpd.GeoDataFrame(
            {"id": new["serial"], "st": new["serial"].map(colour)}, geometry=new.geometry.values, crs=4326)))
    if len(old):
        small.append(wmap.GeoLayer("sites_existing", gpd.GeoDataFrame({"id": old["serial"]}, geometry=old.geometry.values, crs=4326)))
    b = homes.total_bounds if len(homes) else None
    bounds = None if b is None else (float(b[0]), float(b[1]), float(b[2]), float(b[3]))
    return wmap.MapView(bounds=bounds, tiles=("communities", "grids", "roads"), small=small)


def _base_map(category: str, lang: str) -> None:
    """Before any run: the grids and the category's existing facilities."""
    from ui.common import subdistrict

    bounds = data.bounds(subdistrict())
    fac = data.facilities_in(bounds)
    fac = fac[(fac["category"] == category) & (fac["st"] == "open")]
    wmap.show(wmap.MapView(bounds=bounds, tiles=("communities", "grids", "roads"),
                           small=[wmap.GeoLayer("facilities", fac[["id", "geometry"]])]), lang, key="plan_map_base")


# --- saved scenarios: compare, delete, export -------------------------------------------------

def _saved(saved: pd.DataFrame, shown: int | None, lang: str) -> None:
    st.subheader(t("site.saved_list", lang))
    if saved.empty:
        st.info(t("site.none_saved", lang))
        return
    table = saved[["id", "name", "created_at", "category", "model", "radius_m", "p", "status", "new_sites",
                   "coverage_share", "mean_distance_m", "p95_distance_m"]].copy()
    table["category"] = [label(FACILITY_CATEGORIES, c, lang) for c in table["category"]]
    table["coverage_share"] = [_pct(v, 1.0) for v in table["coverage_share"]]
    table["name"] = [n if isinstance(n, str) and n else t("site.unnamed", lang, sid=i) for n, i in zip(table["name"], table["id"])]
    table["model"] = [t(f"site.model_short.{m}", lang) for m in table["model"]]
    table["status"] = [t(f"site.status_short.{v}", lang) if f"site.status_short.{v}" in T else t("site.status_short.other", lang)
                       for v in table["status"]]
    table["created_at"] = [fmt_time(v, lang) for v in table["created_at"]]
    table["p"] = [fmt_int(v) for v in table["p"]]
    st.dataframe(_columns(table.round({"mean_distance_m": 0, "p95_distance_m": 0}), lang), hide_index=True, width="stretch",
                 key="plan_saved")
    names = _scenario_names(saved, lang)
    ids = saved["id"].astype(int).tolist()
    chosen = st.multiselect(t("site.compare", lang), ids, key="plan_compare", format_func=names.get, placeholder=t("app.choose", lang))
    if chosen:
        cmp_, worst = data.siting_compare(tuple(chosen), lang)
        st.markdown(f"**{t('site.compare_title', lang)}**")
        st.dataframe(cmp_.astype(str).replace({"None": "—", "nan": "—"}), width="stretch", key="plan_cmp")
        if len(worst):
            st.markdown(f"**{t('site.worst', lang)}**")
            w = worst[["scenario", "group", "weight", "covered", "covered_share", "mean_distance_m"]].copy()
            w["covered_share"] = [_pct(v, 1.0) for v in w["covered_share"]]
            st.dataframe(_columns(w.rename(columns={"covered": "covered_weight"}), lang), hide_index=True, key="plan_worst")
    export = tuple(chosen) or ((shown,) if shown is not None else ())
    if export:
        _downloads(export, lang)
    if shown is not None:
        st.button(t("site.delete", lang) + f" #{shown}", key="plan_delete_button", on_click=_delete, args=(shown,))


def _delete(sid: int) -> None:
    """Button callback: forget the scenario in the widgets; the next run deletes it (callbacks
    run before the page has set the signed-in user's database scope, so no SQL here)."""
    st.session_state["plan_delete"] = sid
    st.session_state.pop("plan_show", None)
    st.session_state["plan_compare"] = [i for i in st.session_state.get("plan_compare", []) if i != sid]


def _downloads(ids: tuple[int, ...], lang: str) -> None:
    st.markdown(f"**{t('site.downloads', lang, ids=', '.join(f'#{i}' for i in ids))}**")
    stem = "siting_" + "_".join(str(i) for i in ids)
    before = len(ids) == 1
    cols = st.columns(5)
    cols[0].download_button(t("site.csv", lang), data=data.siting_file(ids, ".csv"), file_name=f"{stem}.csv", mime="text/csv",
                            key="plan_dl_csv", on_click="ignore")
    cols[1].download_button(t("site.xlsx", lang), data=data.siting_file(ids, ".xlsx"), file_name=f"{stem}.xlsx", key="plan_dl_xlsx",
                            mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", on_click="ignore")
    cols[2].download_button(t("site.geojson", lang), data=data.siting_file(ids, ".geojson"), file_name=f"{stem}.geojson",
                            mime="application/geo+json", key="plan_dl_geojson", on_click="ignore")
    # the maps are drawn when clicked, in Streamlit's media thread: it carries this run's scope along
    # (without one the scenarios' row-level security shows nothing: migration 0016)
    now = scope.current()

    def later(suffix: str):
        def draw() -> bytes:
            with scope.use_scope(now):
                return data.siting_file(ids, suffix, before)
        return draw

    cols[3].download_button(t("site.png", lang), data=later(".png"), file_name=f"{stem}.png",
                            mime="image/png", key="plan_dl_png", on_click="ignore")
    cols[4].download_button(t("site.pdf", lang), data=later(".pdf"), file_name=f"{stem}.pdf",
                            mime="application/pdf", key="plan_dl_pdf", on_click="ignore")


def _facilities_by_category(lang: str) -> None:
    from ui.common import subdistrict

    facilities = data.facilities_in(data.bounds(subdistrict()))
    with st.expander(t("planner.facilities", lang)):
        counts = facilities.groupby("category").size().rename("n").reset_index()
        st.dataframe(pd.DataFrame({
            t("col.category", lang): [label(FACILITY_CATEGORIES, c, lang) for c in counts["category"]],
            t("col.count", lang): counts["n"],
        }), hide_index=True)


# --- formatting -----------------------------------------------------------------------------

def _columns(frame: pd.DataFrame, lang: str) -> pd.DataFrame:
    return frame.rename(columns={c: t(f"sitecol.{c}", lang) for c in frame.columns if f"sitecol.{c}" != t(f"sitecol.{c}", lang)})


def _pct(v: float | None, total: float | None) -> str:
    if v is None or total in (None, 0) or pd.isna(v):
        return "—"
    return f"{v / total:.1%}"


def _metres(v: float | None) -> str:
    return "—" if v is None or pd.isna(v) else f"{v:,.0f} m"
