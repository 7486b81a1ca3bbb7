"""Street leader's staffing screen: grids coloured by staffing status, the gap list
naming each broken rule, assigning and unassigning cadres, and the automatic proposal.

Edits name the grid's staff version the page was drawn with, so if someone else changed
that grid meanwhile the leader sees a conflict and the current staff, never a silent
overwrite (``grid.assign``).
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from analysis import staffing
from gis.db import app_engine
from grid import staffing_plan
from grid.assign import AssignError, Conflict, assign, unassign
from layers import cadres
from layers.vocab import CADRE_ROLES
from ui import data
from ui import map as wmap
from ui.common import subdistrict
from ui.i18n import t
from ui.inputs import text_box
from ui.state import actor, language


def render() -> None:
    lang = language()
    sub = subdistrict()
    st.title(t("page.staffing", lang))
    with app_engine().connect() as conn:
        grids = staffing.grids(conn)
        gaps = staffing.gaps(conn)
        per = staffing.summary(conn)
        workers = staffing.workers(conn)

    cols = st.columns(4)
    for col, key in zip(cols, ("no_worker", "overloaded", "far", "idle")):
        col.metric(t(f"staff.{key}", lang), int(per[key].iloc[-1]))
    view = wmap.MapView(bounds=data.bounds(sub), tiles=("communities", "roads"),
                        small=[wmap.GeoLayer("staffing", grids.assign(st=grids["status"])[["id", "st", "geom"]].rename_geometry("geometry"))])
    clicked = wmap.show(view, lang, key="staffing_map")
    if clicked and clicked[0] == "staffing":  # a click on the map picks the grid to staff
        hit = grids.loc[grids["id"] == int(clicked[1]), "code"]
        if len(hit) and st.session_state.get("staff_clicked") != int(clicked[1]):
            st.session_state["staff_clicked"] = int(clicked[1])
            st.session_state["staff_grid"] = hit.iloc[0]

    st.subheader(f"{t('staff.gaps', lang)} ({len(gaps)})")
    heads = {k: t(f"staffcol.{k}", lang) for k in ("rule_name", "grid_code", "cadre_no", "name", "detail", "community_code", "grids",
                                                    "households", "no_worker", "overloaded", "far", "idle", "workers", "households_per_worker")}
    st.dataframe(gaps[["rule_name", "grid_code", "cadre_no", "name", "detail"]].rename(columns=heads), hide_index=True, width="stretch")
    st.dataframe(per.rename(columns=heads), hide_index=True, width="stretch")

    st.subheader(t("staff.assign", lang))
    if grids.empty:  # a place only imported: nothing to assign to yet
        st.info(t("staff.no_grids", lang))
        return
    codes = grids["code"].tolist()
    default = grids.index[grids["status"] == "no_worker"]
    c1, c2, c3 = st.columns([2, 2, 1])
    if "staff_grid" not in st.session_state and len(default):
        st.session_state["staff_grid"] = codes[int(default[0])]
    grid = c1.selectbox(t("col.grid", lang), codes, key="staff_grid",
                        format_func=lambda c: f"{c} · {grids.set_index('code').loc[c, 'name']} · {t('status.' + grids.set_index('code').loc[c, 'status'], lang)}")
    people = workers.sort_values(["grids", "cadre_no"])
    cadre = c2.selectbox(t("staff.cadre", lang), people["cadre_no"].tolist(), key="staff_cadre",
                         format_func=lambda n: f"{n} · {people.set_index('cadre_no').loc[n, 'name']} · {people.set_index('cadre_no').loc[n, 'households']}户")
    row = grids.set_index("code").loc[grid]
    current = row["workers"] if isinstance(row["workers"], str) and row["workers"] else "—"
    st.caption(f"{t('staff.current', lang)}: {current} · v{int(row['staff_version'])}")
    version = int(row["staff_version"])
    if c3.button(t("staff.do_assign", lang), key="staff_do_assign", type="primary"):
        _apply(assign, cadre, grid, version, lang, role="full_time_worker")
    if c3.button(t("staff.do_remove", lang), key="staff_do_remove"):
        _apply(unassign, cadre, grid, version, lang)

    with st.expander(t("staff.building_heads", lang)):
        b1, b2, b3 = st.columns([2, 2, 1])
        building = text_box(t("staff.building", lang), key="staff_building", max_chars=64, container=b1)
        head = text_box(t("staff.cadre", lang), key="staff_head", max_chars=32, container=b2)
        if b3.button(t("staff.do_assign", lang), key="staff_head_assign") and building and head:
            try:
                with app_engine().begin() as conn:
                    assign(conn, head.strip(), building=building.strip(), role="building_head", actor=actor())
                st.success(t("staff.head_done", lang, head, building))
            except (AssignError, Conflict) as exc:
                st.error(str(exc))

    with st.expander(t("staff.registry", lang)):
        with app_engine().connect() as conn:
            reg = cadres.registry(conn)
        edited = st.data_editor(reg, hide_index=True, width="stretch", key="staff_registry", disabled=["cadre_no", "lon", "lat"],
                                column_config={"role": st.column_config.SelectboxColumn(options=[r.code for r in CADRE_ROLES])})
        if st.button(t("staff.save", lang), key="staff_save"):
            changed = 0
            try:
                with app_engine().begin() as conn:
                    for (_, old), (_, new) in zip(reg.iterrows(), edited.iterrows()):
                        diff = {k: new[k] for k in cadres.EDITABLE if str(old[k]) != str(new[k])}
                        if diff:
                            cadres.update(conn, old["cadre_no"], diff, actor=actor())
                            changed += 1
            except (ValueError, Exception) as exc:  # noqa: BLE001 - a database CHECK (e.g. a bad phone) is shown, nothing saved
                st.error(f"{t('staff.not_saved', lang)}: {exc}")
            else:
                data.clear()
                st.success(t("staff.saved", lang, changed))

    st.subheader(t("staff.proposal", lang))
    if st.button(t("staff.propose", lang), key="staff_propose"):
        with st.spinner(t("grids.working", lang)), app_engine().connect() as conn:
            st.session_state["staff_plan"] = staffing_plan.propose(conn)
    plan = st.session_state.get("staff_plan")
    if plan is not None:
        st.caption(f"{t('staff.status', lang)}: {plan.status}" + (f" · gap {plan.gap:.2%}" if plan.gap else ""))
        table = pd.DataFrame([c.to_dict() for c in plan.changes])
        if not table.empty:
            table.insert(0, "accept", True)
            edited = st.data_editor(table[["accept", "action", "cadre_no", "name", "grid_code", "distance_m", "households_after", "fixes"]],
                                    hide_index=True, width="stretch", key="staff_plan_table", disabled=["action", "cadre_no", "name", "grid_code", "distance_m", "households_after", "fixes"])
            if st.button(t("staff.accept", lang), key="staff_accept", type="primary"):
                which = [i for i, ok in enumerate(edited["accept"]) if ok]
                try:
                    with app_engine().begin() as conn:
                        staffing_plan.accept(conn, plan, which, actor=actor())
                except Conflict as exc:
                    st.error(str(exc))
                else:
                    st.session_state.pop("staff_plan", None)
                    data.clear()
                    st.success(t("staff.accepted", lang, len(which)))
                    st.rerun()
        for u in plan.unmet:
            st.warning(u)


def _apply(op, cadre: str, grid: str, version: int, lang: str, **kwargs) -> None:
    try:
        with app_engine().begin() as conn:
            op(conn, cadre, grid_code=grid, expected_version=version, actor=actor(), **kwargs)
    except Conflict as exc:
        st.error(str(exc))
    except AssignError as exc:
        st.error(str(exc))
    else:
        data.clear()
        st.rerun()
