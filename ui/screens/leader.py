"""Street leader (街道领导): the whole sub-district at a glance."""
from __future__ import annotations

import streamlit as st

from analysis.overview import OK
from ui import data
from ui import map as wmap
from ui.common import figure_tiles, map_with_details, subdistrict, translate_table
from ui.i18n import t
from ui.state import language


def render() -> None:
    lang = language()
    sub = subdistrict()
    names = dict(zip(data.subdistricts()["code"], data.subdistricts()["name"]))
    st.title(f"{names.get(sub, sub)} · {t('page.overview', lang)}")
    st.subheader(t("fig.key_figures", lang))
    figure_tiles(data.figures(sub), lang)

    bounds = data.bounds(sub)
    view = wmap.MapView(bounds=bounds, small=[
        wmap.GeoLayer("facilities", data.facilities_in(bounds)[["id", "geometry"]]),
        wmap.GeoLayer("cameras", data.cameras_in(bounds)[["id", "st", "geometry"]], show=False),
    ])
    st.subheader(t("map.title", lang))
    map_with_details(view, key="leader_map")

    st.subheader(t("leader.communities", lang))
    st.dataframe(translate_table(data.community_table(sub), lang), hide_index=True, width="stretch")

    grids = data.grid_table(sub)
    attention = grids[grids["status"] != OK]
    st.subheader(f"{t('leader.grids_attention', lang)} ({len(attention)})")
    st.dataframe(translate_table(attention.drop(columns=["id", "community_code"]), lang), hide_index=True, width="stretch")
