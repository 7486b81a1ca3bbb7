"""Administrator's grid screen: the topology check on the map, an automatic proposal
beside the current grids, accept or discard.

All work is done by ``grid.checks``, ``grid.delineate`` and ``grid.drafts``; this page
only shows their results and passes the user's decision on.
"""
from __future__ import annotations

import streamlit as st

from grid.checks import KINDS
from ui import data
from ui import map as wmap
from ui.common import fmt_num, subdistrict
from ui.i18n import t
from ui.seam import one_language
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

    problems = data.grid_problems(community)
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
        with st.spinner(t("grids.working", lang)):
            st.session_state["grids_draft"] = data.propose_grids(community, int(lo), int(hi), actor())

    draft_id = st.session_state.get("grids_draft")
    draft = None
    if draft_id:
        draft = data.draft_parts(draft_id)
        if draft.empty or draft["draft_id"].iloc[0] != draft_id:
            draft = None
    small = []
    if not problems.empty:
        small.append(wmap.GeoLayer("problems", problems.assign(id=problems.index, st="problem")[["id", "st", "geom"]].rename_geometry("geometry")))
    if draft is not None:
        small.append(wmap.GeoLayer("draft", draft.assign(id=draft["serial"], st=draft["standing"])[["id", "st", "geom"]].rename_geometry("geometry")))
    view = wmap.MapView(bounds=data.bounds(sub, community), tiles=("communities", "grids", "roads"), small=small)
    wmap.show(view, lang, key="grids_map")

    if draft is not None:
        st.markdown(f"**{t('grids.draft', lang)} #{draft_id}**")
        cols = ["serial", "households", "residents", "buildings", "compactness", "standing", "note"]
        shown = draft[cols].copy()
        shown["standing"] = [t({"within": "status.ok", "under": "status.under", "over": "status.over"}.get(v, "status.ok"), lang)
                             for v in shown["standing"]]
        shown["note"] = [one_language(v, lang) if isinstance(v, str) and v else "—" for v in shown["note"]]
        shown["compactness"] = [fmt_num(v, 2) for v in shown["compactness"]]
        st.dataframe(shown.rename(columns={c: t(f"draftcol.{c}", lang) for c in cols}), hide_index=True, width="stretch",
                     column_config={t("draftcol.compactness", lang): st.column_config.TextColumn(help=t("draftcol.compactness_help", lang))})
        a, d = st.columns(2)
        if a.button(t("grids.accept", lang), key="grids_accept", type="primary"):
            try:
                result = data.accept_draft(draft_id, actor())
            except data.Refused as exc:
                st.error(one_language(exc.message, lang))
            else:
                st.session_state.pop("grids_draft", None)
                st.toast(t("grids.accepted_toast", lang), icon="✅")
                st.success(t("grids.accepted", lang, len(result.retired), len(result.created), len(result.carried), len(result.flagged)))
                if result.flagged:
                    st.dataframe(result.flagged, width="stretch")
        if d.button(t("grids.discard", lang), key="grids_discard"):
            data.discard_draft(draft_id, actor())
            st.session_state.pop("grids_draft", None)
            st.rerun()
