"""Street leader (街道领导): the whole sub-district at a glance."""
from __future__ import annotations

import streamlit as st

from ui import data
from ui import map as wmap
from ui.common import figure_tiles, map_with_details, subdistrict, translate_table
from ui.i18n import t
from ui.state import language


# A city has 50,000 grids: the list shows the most pressing ones (the count says how many in all).
ATTENTION_ROWS = 500


def render() -> None:
    lang = language()
    sub = subdistrict()
    names = dict(zip(data.subdistricts()["code"], data.subdistricts()["name"]))
    st.title(f"{names.get(sub, sub)} · {t('page.overview', lang)}")
    st.subheader(t("fig.key_figures", lang))
    figure_tiles(data.figures(sub), lang)

    bounds = data.bounds(sub)
    view = wmap.MapView(bounds=bounds)
    limit = wmap.POINTS_GEOJSON_LIMIT + 1  # more than the limit: tiles instead (a city's cameras)
    wmap.with_points(view, "facilities", data.facilities_in(bounds, limit)[["id", "geometry"]])
    wmap.with_points(view, "cameras", data.cameras_in(bounds, limit)[["id", "st", "geometry"]], show=False)
    st.subheader(t("map.title", lang))
    map_with_details(view, key="leader_map")

    st.subheader(t("leader.communities", lang))
    st.dataframe(translate_table(data.community_table(sub), lang), hide_index=True, width="stretch")

    attention, total = data.attention_grids(sub, None, ATTENTION_ROWS)
    st.subheader(f"{t('leader.grids_attention', lang)} ({total})")
    if total > len(attention):
        st.caption(t("leader.attention_first", lang, n=len(attention), total=total))
    st.dataframe(translate_table(attention.drop(columns=["id", "community_code"]), lang), hide_index=True, width="stretch")
