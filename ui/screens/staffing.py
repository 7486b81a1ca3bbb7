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
from layers.vocab import CADRE_ROLES, label
from ui import data
from ui import map as wmap
from ui.common import fmt_int, fmt_num, rule_short, search_box, subdistrict
from ui.i18n import t
from ui.inputs import text_box
from ui.seam import Refused, one_language
from ui.state import actor, language

SOLVER_STATUS = {"optimal": "staff.solved_optimal", "time_limit": "staff.solved_time_limit"}


def _rule_cell(code: object, lang: str) -> str:
    return rule_short(str(code), lang) if isinstance(code, str) else "—"


def _fixes(text_: object, lang: str) -> str:
    """``worker_load: 张三 负担 794 → 384 户 / load …`` → 「人均负担」张三 负担 794 → 384 户."""
    code, sep, rest = str(text_).partition(":")
    if not sep or code.strip() not in staffing.rule_names():
        return one_language(str(text_), lang)
    return f"{rule_short(code.strip(), lang)}{_colon(lang)}{one_language(rest.strip(), lang)}"


# Up to this many grids travel to the map as GeoJSON, each coloured by its staffing status; beyond
# it the map draws the grid tiles (the same layer as the overview's).
STAFFING_GEOJSON_LIMIT = 5000


def render() -> None:
    lang = language()
    sub = subdistrict()
    st.title(t("page.staffing", lang))
    state = data.staffing_state()
    grids, gaps, per, workers = state["grids"], state["gaps"], state["summary"], state["workers"]
    fig = data.figures(sub)  # workers and households per worker: the overview's figures, one value per fact

    cols = st.columns(6)
    cols[0].metric(t("fig.full_time_workers", lang), fmt_int(fig["full_time_workers"]), help=t("fig.full_time_workers_help", lang))
    cols[1].metric(t("fig.households_per_full_time", lang), fmt_num(fig["households_per_full_time"], 0),
                   help=rule_short("households_per_worker", lang, full=True))
    for col, key in zip(cols[2:], ("no_worker", "overloaded", "far", "idle")):
        col.metric(t(f"staff.{key}", lang), int(per[key].iloc[-1]))
    if len(grids) > STAFFING_GEOJSON_LIMIT:
        # a city's grids as GeoJSON would be tens of megabytes in the page (28 MB for 50,000): the grid
        # tiles instead, coloured as on the overview; who is overloaded or far is in the gap list below
        view = wmap.MapView(bounds=data.bounds(sub), tiles=("grids", "communities", "roads"))
        st.caption(t("staff.map_tiles", lang, n=fmt_int(len(grids))))
    else:
        view = wmap.MapView(bounds=data.bounds(sub), tiles=("communities", "roads"),
                            small=[wmap.GeoLayer("staffing", grids.assign(st=grids["status"])[["id", "st", "geom"]].rename_geometry("geometry"))])
    found = search_box(view, "staffing_map", lang)  # a grid, worker, building or address frames the map
    clicked = wmap.show(view, lang, key=f"staffing_map_{found[0]}_{found[1]}" if found else "staffing_map") or found
    if clicked and clicked[0] in ("staffing", "grids"):  # a click on the map (or a found grid) picks the grid to staff
        hit = grids.loc[grids["id"] == int(clicked[1]), "code"]
        if len(hit) and st.session_state.get("staff_clicked") != int(clicked[1]):
            st.session_state["staff_clicked"] = int(clicked[1])
            st.session_state["staff_grid"] = hit.iloc[0]

    st.subheader(f"{t('staff.gaps', lang)} ({len(gaps)})")
    heads = {k: t(f"staffcol.{k}", lang) for k in ("rule_name", "grid_code", "cadre_no", "name", "detail", "community_code", "grids",
                                                    "households", "no_worker", "overloaded", "far", "idle", "workers", "households_per_worker")}
    shown = gaps[["rule", "grid_code", "cadre_no", "name", "detail"]].copy()
    shown["rule"] = [_rule_cell(r, lang) for r in shown["rule"]]
    shown["detail"] = [one_language(d, lang) if isinstance(d, str) else "—" for d in shown["detail"]]
    shown = shown.rename(columns={"rule": "rule_name"})
    shown = shown.astype(object).where(shown.notna(), "—").rename(columns=heads)
    st.dataframe(shown, hide_index=True, width="stretch",
                 column_config={heads["rule_name"]: st.column_config.TextColumn(help=_rules_help(lang))})
    table = _per_community(per, sub, lang)
    st.dataframe(table.rename(columns={**heads, "community_code": t("col.community", lang)}), hide_index=True, width="stretch")

    st.subheader(t("staff.assign", lang))
    if grids.empty:  # a place only imported: nothing to assign to yet
        st.info(t("staff.no_grids", lang))
        return
    codes = grids["code"].tolist()
    by_code = grids.set_index("code")
    default = grids.index[grids["status"] == "no_worker"]
    c1, c2, c3 = st.columns([2, 2, 1])
    if "staff_grid" not in st.session_state and len(default):
        st.session_state["staff_grid"] = codes[int(default[0])]
    grid = c1.selectbox(t("col.grid", lang), codes, key="staff_grid",
                        format_func=lambda c: f"{by_code.loc[c, 'name']} · {t('status.' + by_code.loc[c, 'status'], lang)}")
    # Sensible default: the least-loaded worker who still has room (never one at the cap).
    people = _candidates(workers)
    pidx = people.set_index("cadre_no")
    cadre = c2.selectbox(t("staff.cadre", lang), people["cadre_no"].tolist(), key="staff_cadre",
                         format_func=lambda n: (f"{pidx.loc[n, 'name']}{_paren(n, lang)} · {fmt_int(pidx.loc[n, 'households'])} {t('unit.households', lang)}"
                                                + (f" · {t('staff.at_cap', lang)}" if pidx.loc[n, 'full'] else "")))
    row = by_code.loc[grid]
    current = row["workers"] if isinstance(row["workers"], str) and row["workers"] else "—"
    st.caption(f"{t('staff.current', lang)}{_colon(lang)}{current}")
    version = int(row["staff_version"])
    if c3.button(t("staff.do_assign", lang), key="staff_do_assign", type="primary"):
        _apply(data.assign, cadre, grid, version, lang, "staff.assigned", (pidx.loc[cadre, "name"], by_code.loc[grid, "name"]),
               role="full_time_worker")
    if c3.button(t("staff.do_remove", lang), key="staff_do_remove"):
        _apply(data.unassign, cadre, grid, version, lang, "staff.removed", (pidx.loc[cadre, "name"], by_code.loc[grid, "name"]))
    if (done := st.session_state.pop("staff_done", None)):
        st.toast(done, icon="✅")
        st.success(done)

    with st.expander(t("staff.building_heads", lang)):
        b1, b2, b3 = st.columns([2, 2, 1])
        building = text_box(t("staff.building", lang), key="staff_building", max_chars=64, container=b1)
        head = text_box(t("staff.cadre", lang), key="staff_head", max_chars=32, container=b2)
        if b3.button(t("staff.do_assign", lang), key="staff_head_assign") and building and head:
            try:
                data.assign(head.strip(), building=building.strip(), role="building_head", actor=actor())
            except Refused as exc:
                st.error(one_language(exc.message, lang))
            else:
                st.toast(t("staff.head_done", lang, head, building), icon="✅")
                st.success(t("staff.head_done", lang, head, building))

    with st.expander(t("staff.registry", lang)):
        reg = data.cadre_registry()
        shown_reg = reg.rename(columns={c: t(f"cadrecol.{c}", lang) for c in reg.columns})
        edited = st.data_editor(shown_reg, hide_index=True, width="stretch", key="staff_registry",
                                disabled=[t(f"cadrecol.{c}", lang) for c in ("cadre_no", "lon", "lat")],
                                column_config={t("cadrecol.role", lang): st.column_config.SelectboxColumn(
                                    options=[r.code for r in CADRE_ROLES], help=", ".join(f"{r.code} = {label(CADRE_ROLES, r.code, lang)}" for r in CADRE_ROLES))})
        edited.columns = list(reg.columns)
        if st.button(t("staff.save", lang), key="staff_save"):
            changes = []
            for (_, old), (_, new) in zip(reg.iterrows(), edited.iterrows()):
                diff = {k: new[k] for k in staffing_editable() if str(old[k]) != str(new[k])}
                if diff:
                    changes.append((old["cadre_no"], diff))
            try:
                n = data.update_cadres(changes, actor())
            except Refused as exc:  # a database CHECK (e.g. a bad phone): nothing saved
                st.error(f"{t('staff.not_saved', lang)}{_colon(lang)}{one_language(exc.message, lang)}")
            else:
                st.toast(t("staff.saved", lang, n), icon="✅")
                st.success(t("staff.saved", lang, n))

    st.subheader(t("staff.proposal", lang))
    if st.button(t("staff.propose", lang), key="staff_propose"):
        with st.spinner(t("grids.working", lang)):
            st.session_state["staff_plan"] = data.staffing_proposal()
    plan = st.session_state.get("staff_plan")
    if plan is not None:
        status = t(SOLVER_STATUS.get(plan.status, "staff.solved_other"), lang)
        gap = f" ({t('staff.gap', lang)} {plan.gap:.1%})" if lang == "en" else f"（{t('staff.gap', lang)} {plan.gap:.1%}）"
        st.caption(f"{t('staff.status', lang)}{_colon(lang)}{status}" + (gap if plan.gap else ""))
        table = pd.DataFrame([c.to_dict() for c in plan.changes])
        if not table.empty:
            cols_ = ["action", "cadre_no", "name", "grid_code", "distance_m", "households_after", "fixes"]
            view_t = table[cols_].copy()
            view_t["action"] = [t(f"staff.action_{a}", lang) for a in view_t["action"]]
            view_t["distance_m"] = [fmt_num(v, 0) for v in view_t["distance_m"]]
            view_t["fixes"] = [_fixes(f, lang) for f in view_t["fixes"]]
            view_t.insert(0, "accept", True)
            heads_p = {c: t(f"plancol.{c}", lang) for c in ["accept", *cols_]}
            edited = st.data_editor(view_t.rename(columns=heads_p), hide_index=True, width="stretch", key="staff_plan_table",
                                    disabled=[heads_p[c] for c in cols_])
            if st.button(t("staff.accept", lang), key="staff_accept", type="primary"):
                which = [i for i, ok in enumerate(edited[heads_p["accept"]]) if ok]
                try:
                    data.accept_staffing(plan, which, actor())
                except Refused as exc:
                    st.error(one_language(exc.message, lang))
                else:
                    st.session_state.pop("staff_plan", None)
                    st.session_state["staff_done"] = t("staff.accepted", lang, len(which))
                    st.rerun()
        for u in plan.unmet:
            st.warning(one_language(u, lang))


def _paren(text_: object, lang: str) -> str:
    return f"（{text_}）" if lang == "zh" else f" ({text_})"


def _colon(lang: str) -> str:
    return "：" if lang == "zh" else ": "


def staffing_editable() -> tuple[str, ...]:
    from layers.cadres import EDITABLE

    return tuple(EDITABLE)


def _candidates(workers: pd.DataFrame) -> pd.DataFrame:
    """Workers ordered for the picker: those with room first (fewest households), those at
    the cap (households or grids) last and marked, so the pre-selected one is never full."""
    from gis.settings import get_settings

    s = get_settings()
    out = workers.copy()
    out["full"] = (out["households"] >= s.worker_households_max) | (out["grids"] >= s.max_grids_per_worker)
    return out.sort_values(["full", "households", "cadre_no"]).reset_index(drop=True)


def _per_community(per: pd.DataFrame, sub: str, lang: str) -> pd.DataFrame:
    """The summary per community with the overview's workers and households per worker
    (assigned full-time workers; the idle are counted in their own column)."""
    comm = data.community_table(sub).set_index("code")
    fig = data.figures(sub)
    out = per.copy()
    codes = out["community_code"].astype(str).str.strip()
    is_all = ~codes.isin(comm.index)
    out["workers"] = [fig["full_time_workers"] if a else comm.loc[c, "full_time_workers"] for c, a in zip(codes, is_all)]
    out["households_per_worker"] = [fmt_num(fig["households_per_full_time"] if a else comm.loc[c, "households_per_full_time"], 0)
                                    for c, a in zip(codes, is_all)]
    out["community_code"] = [t("staff.all", lang) if a else comm.loc[c, "name"] for c, a in zip(codes, is_all)]
    return out


def _rules_help(lang: str) -> str:
    return "\n".join(rule_short(k, lang, full=True) for k in staffing.rule_names())


def _apply(op, cadre: str, grid: str, version: int, lang: str, done_key: str, names: tuple[str, str], **kwargs) -> None:
    try:
        op(cadre, grid_code=grid, expected_version=version, actor=actor(), **kwargs)
    except Refused as exc:
        st.error(one_language(exc.message, lang))
    else:
        st.session_state["staff_done"] = t(done_key, lang, *names)
        st.rerun()
