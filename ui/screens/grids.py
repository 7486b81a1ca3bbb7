"""Administrator's grid screen: the topology check on the map, an automatic proposal
beside the current grids, accept or discard.

All work is done by ``grid.checks``, ``grid.delineate`` and ``grid.drafts``; this page
only shows their results and passes the user's decision on.
"""
from __future__ import annotations

import streamlit as st

from gis.db import app_engine
from grid import drafts
from grid.checks import KINDS, check
from grid.delineate import propose
from ui import data
from ui import map as wmap
from ui.common import subdistrict
from ui.i18n import t
from ui.state import actor, language


def _communities(sub: str) -> dict[str, str]:
    table = data.community_table(sub)
    code_col = "community_code" if "community_code" in table else "code"
    return dict(zip(table[code_col], table["name"] if "name" in table else table[code_col]))


def render() -> None:
    lang = language()
    sub = subdistrict()
    st.title(t("page.grids", lang))
    names = _communities(sub)
    community = st.selectbox(t("grids.community", lang), list(names), format_func=lambda c: f"{names[c]} ({c})", key="grids_community")

    with app_engine().connect() as conn:
        problems = check(conn, community)
    st.subheader(f"{t('grids.check', lang)} ({len(problems)})")
    if problems.empty:
        st.success(t("grids.clean", lang))
    else:
        table = problems.drop(columns="geom").copy()
        table["kind"] = [KINDS[k][0] if lang == "zh" else KINDS[k][1] for k in table["kind"]]
        st.dataframe(table, hide_index=True, width="stretch")

    st.subheader(t("grids.proposal", lang))
    c1, c2, c3 = st.columns([1, 1, 2])
    lo = c1.number_input(t("grids.min", lang), 50, 2000, 300, step=50, key="grids_min")
    hi = c2.number_input(t("grids.max", lang), 100, 3000, 500, step=50, key="grids_max")
    if c3.button(t("grids.propose", lang), key="grids_propose", type="primary"):
        with st.spinner(t("grids.working", lang)), app_engine().begin() as conn:
            st.session_state["grids_draft"] = drafts.save(conn, propose(conn, community, int(lo), int(hi)), actor=actor())

    draft_id = st.session_state.get("grids_draft")
    draft = None
    if draft_id:
        with app_engine().connect() as conn:
            draft = drafts.parts(conn, draft_id)
        if draft.empty or draft["draft_id"].iloc[0] != draft_id:
            draft = None
    small = []
    if not problems.empty:
        small.append(wmap.GeoLayer("problems", problems.assign(id=problems.index, st="problem")[["id", "st", "geom"]].rename_geometry("geometry")))
    if draft is not None:
        small.append(wmap.GeoLayer("draft", draft.assign(id=draft["serial"], st=draft["standing"])[["id", "st", "geom"]].rename_geometry("geometry")))
    view = wmap.MapView(bounds=data.bounds(sub), tiles=("communities", "grids", "roads"), small=small)
    wmap.show(view, lang, key="grids_map")

    if draft is not None:
        st.markdown(f"**{t('grids.draft', lang)} #{draft_id}**")
        st.dataframe(draft[["serial", "households", "residents", "buildings", "compactness", "standing", "note"]],
                     hide_index=True, width="stretch")
        a, d = st.columns(2)
        if a.button(t("grids.accept", lang), key="grids_accept", type="primary"):
            try:
                with app_engine().begin() as conn:
                    result = drafts.accept(conn, draft_id, actor=actor())
            except drafts.DraftError as exc:
                st.error(str(exc))
            else:
                st.session_state.pop("grids_draft", None)
                data.clear()
                st.success(t("grids.accepted", lang, len(result.retired), len(result.created), len(result.carried), len(result.flagged)))
                if result.flagged:
                    st.dataframe(result.flagged, width="stretch")
        if d.button(t("grids.discard", lang), key="grids_discard"):
            with app_engine().begin() as conn:
                drafts.discard(conn, draft_id, actor=actor())
            st.session_state.pop("grids_draft", None)
            st.rerun()
