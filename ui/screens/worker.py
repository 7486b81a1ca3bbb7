"""Grid worker (网格员): my grid — its boundary, buildings, groups, cameras, facilities,
neighbours, duties, and a printable map and phone file.

The grids are the signed-in worker's own (set by an administrator); a worker with two
grids switches between them.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from layers.vocab import CADRE_ROLES, CAMERA_STATUSES, FACILITY_CATEGORIES, label
from ui import data, handout
from ui.screens import coverage
from ui import map as wmap
from ui.common import fmt_int, map_with_details, rule_help, rule_short, rule_text
from ui.i18n import DUTIES, t
from ui import state
from ui.state import language


def render() -> None:
    lang = language()
    # Only the grids the administrator gave this account (the database holds to the same).
    mine = set(state.user().grids) if state.user() is not None else set()
    choices = data.grid_choices(None)
    choices = choices[choices["id"].astype(int).isin(mine)]
    if choices.empty:
        st.info(t("worker.none", lang))
        return
    labels = dict(zip(choices["id"].astype(int), choices["code"] + " " + choices["name"]))
    c1, c2 = st.columns(2)
    grid_id = c1.selectbox(t("worker.grid", lang), list(labels), format_func=labels.get, key="worker_grid")
    community = str(choices.loc[choices["id"].astype(int) == int(grid_id), "community_code"].iloc[0])
    c2.caption(f"{t('worker.community', lang)}：{choices.loc[choices['id'].astype(int) == int(grid_id), 'community_name'].iloc[0]}")
    pack = data.grid_pack(int(grid_id))
    if pack is None:
        st.info(t("map.not_found", lang))
        return

    d, f = pack.detail, pack.figures
    st.title(f"{d.get('name') or d['code']} · {t('page.my_grid', lang)}")
    cols = st.columns(5)
    cols[0].metric(t("fig.buildings", lang), fmt_int(f.get("buildings", 0)))
    cols[1].metric(t("fig.households", lang), fmt_int(f.get("households", 0)), help=rule_help("households_band", lang))
    cols[1].caption(rule_text("households_band", lang))
    cols[2].metric(t("fig.residents", lang), fmt_int(f.get("residents", 0)), help=rule_help("residents_max", lang))
    cols[2].caption(rule_text("residents_max", lang))
    cols[3].metric(t("fig.full_time_workers", lang), fmt_int(f.get("full_time", 0)), help=rule_help("one_grid_one_worker", lang))
    cols[3].caption(rule_text("one_grid_one_worker", lang))
    cols[4].metric(t("col.status", lang), t(f"status.{f.get('status', 'ok')}", lang))
    load = data.worker_load(community)
    mine = load[load["grid_codes"].fillna("").str.split(",").map(lambda codes: d["code"] in codes)]
    for w in mine.itertuples():  # each full-time worker of this grid: their grids and load
        st.caption(t("worker.load", lang, who=f"{w.name}（{w.cadre_no}）" if lang == "zh" else f"{w.name} ({w.cadre_no})", grids=w.grids, households=fmt_int(w.households))
                   + (" ⚠ " + "、".join(rule_short(b, lang) for b in w.broken) if w.broken else ""),
                   help="\n".join(rule_help(b, lang) for b in w.broken) or None)

    view = wmap.MapView(
        bounds=tuple(pack.shape.total_bounds) if len(pack.shape) else None,
        tiles=("communities", "roads", "buildings"),
        small=[
            wmap.GeoLayer("neighbours", pack.neighbours[["id", "st", "geometry"]]),
            wmap.GeoLayer("grid", pack.shape[["id", "geometry"]]),
            wmap.GeoLayer("cameras", pack.cameras[["id", "st", "geometry"]]),
            wmap.GeoLayer("facilities", pack.facilities[["id", "geometry"]]),
        ],
    )
    map_with_details(view, key=f"worker_map_{grid_id}")

    st.subheader(t("worker.downloads", lang))
    stem = handout.file_stem(pack)
    dl = st.columns(4)
    dl[0].download_button(t("worker.png", lang), data=lambda: handout.grid_png(pack, lang), file_name=f"{stem}.png",
                          mime="image/png", key="dl_png", on_click="ignore")
    dl[1].download_button(t("worker.pdf", lang), data=lambda: handout.grid_pdf(pack, lang), file_name=f"{stem}.pdf",
                          mime="application/pdf", key="dl_pdf", on_click="ignore")
    dl[2].download_button(t("worker.geojson", lang), data=lambda: handout.grid_geojson(pack, lang), file_name=f"{stem}.geojson",
                          mime="application/geo+json", key="dl_geojson", on_click="ignore")
    dl[3].download_button(t("worker.kml", lang), data=lambda: handout.grid_kml(pack, lang), file_name=f"{stem}.kml",
                          mime="application/vnd.google-earth.kml+xml", key="dl_kml", on_click="ignore")

    left, right = st.columns([2, 1])
    with left:
        st.subheader(f"{t('worker.buildings', lang)} ({len(pack.buildings)})")
        st.caption(t("worker.groups", lang))
        st.dataframe(handout.building_list(pack, lang), hide_index=False, width="stretch", height=360)
    with right:
        st.subheader(t("worker.staff", lang))
        if pack.staff.empty:
            st.caption(t("worker.no_staff", lang))
        else:
            st.dataframe(pd.DataFrame({
                t("col.name", lang): pack.staff["name"],
                t("col.role", lang): [label(CADRE_ROLES, r, lang) for r in pack.staff["role"]],
                t("col.phone", lang): pack.staff["phone"],
            }), hide_index=True, width="stretch")
        st.subheader(t("worker.duties", lang))
        st.markdown("\n".join(f"{i}. {t(k, lang)}" for i, k in enumerate(DUTIES, 1)))
        st.caption(t("worker.duties_note", lang))

    a, b, c = st.columns(3)
    with a:
        st.subheader(f"{t('worker.neighbours', lang)} ({len(pack.neighbours)})")
        st.dataframe(pd.DataFrame({t("col.code", lang): pack.neighbours["code"], t("col.name", lang): pack.neighbours["name"],
                                   t("col.status", lang): [t(f"status.{s}", lang) for s in pack.neighbours["st"].fillna("unknown")]}),
                     hide_index=True, width="stretch")
    with b:
        st.subheader(f"{t('worker.cameras', lang)} ({len(pack.cameras)})")
        st.dataframe(pd.DataFrame({t("col.device_id", lang): pack.cameras["device_id"], t("col.name", lang): pack.cameras["name"],
                                   t("detail.status", lang): [label(CAMERA_STATUSES, v, lang) for v in pack.cameras["st"]]}), hide_index=True, width="stretch")
    with c:
        st.subheader(f"{t('worker.facilities', lang)} ({len(pack.facilities)})")
        st.dataframe(pd.DataFrame({t("col.name", lang): pack.facilities["name"],
                                   t("col.category", lang): [label(FACILITY_CATEGORIES, v, lang) for v in pack.facilities["category"]]}),
                     hide_index=True, width="stretch")

    coverage.render_grid(pack, lang)  # camera coverage, unseen streets, homes out of reach, stale notice
