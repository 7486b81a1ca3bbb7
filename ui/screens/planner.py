"""Planner (规划人员): facilities and grids on the map; siting and coverage screens come later."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from layers.vocab import FACILITY_CATEGORIES, label
from ui import data
from ui import map as wmap
from ui.common import figure_tiles, map_with_details, subdistrict
from ui.i18n import t
from ui.state import language


def render() -> None:
    lang = language()
    sub = subdistrict()
    st.title(t("page.planning", lang))
    figure_tiles(data.figures(sub), lang)
    bounds = data.bounds(sub)
    facilities = data.facilities_in(bounds)
    view = wmap.MapView(bounds=bounds, small=[
        wmap.GeoLayer("facilities", facilities[["id", "geometry"]]),
        wmap.GeoLayer("cameras", data.cameras_in(bounds)[["id", "st", "geometry"]], show=False),
    ])
    map_with_details(view, key="planner_map")
    st.subheader(t("planner.facilities", lang))
    counts = facilities.groupby("category").size().rename("n").reset_index()
    st.dataframe(pd.DataFrame({
        t("col.category", lang): [label(FACILITY_CATEGORIES, c, lang) for c in counts["category"]],
        t("col.count", lang): counts["n"],
    }), hide_index=True)
    st.caption(t("planner.next", lang))
