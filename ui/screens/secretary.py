"""Community secretary (社区书记): one community's grids, staffing and map."""
from __future__ import annotations

import streamlit as st

from ui import data
from ui import map as wmap
from ui.common import figure_tiles, map_with_details, subdistrict, translate_table
from ui.i18n import t
from ui import state
from ui.state import language


def render() -> None:
    lang = language()
    sub = subdistrict()
    comms = data.communities(sub)
    mine = state.user().communities if state.user() is not None else ()
    comms = comms[comms["code"].isin(mine)] if mine else comms.iloc[0:0]
    if comms.empty:
        st.info(t("secretary.no_community", lang))
        return
    code = st.selectbox(t("secretary.community", lang), comms["code"].tolist(),
                        format_func=dict(zip(comms["code"], comms["name"])).get, key="secretary_community")
    name = dict(zip(comms["code"], comms["name"])).get(code, code)
    st.title(f"{name} · {t('page.community', lang)}")
    figure_tiles(data.figures(sub, code), lang)
    bounds = data.bounds(sub, code)
    view = wmap.MapView(bounds=bounds)
    limit = wmap.POINTS_GEOJSON_LIMIT + 1  # more than the limit: tiles instead (a city's cameras)
    wmap.with_points(view, "facilities", data.facilities_in(bounds, limit)[["id", "geometry"]])
    wmap.with_points(view, "cameras", data.cameras_in(bounds, limit)[["id", "st", "geometry"]], show=False)
    map_with_details(view, key=f"secretary_map_{code}")
    st.subheader(t("secretary.grids", lang))
    grids = data.grid_table(sub, code)
    st.dataframe(translate_table(grids.drop(columns=["id", "community_code"]), lang), hide_index=True, width="stretch")
    st.caption(t("secretary.next", lang))
