"""Event screens (issue 16): the grid worker's report, queue and verification; the command
centre's queue (file or reject, duplicates, dispatch, approvals, closing, overdue); the
handling unit's queue; the hotline's cases; and the indicators for leaders and secretaries.

Every action goes through ``layers.events.act`` under the signed-in user's scope, so the
database decides who may do what (migration 0018); a refusal is shown in words, never as
a traceback. Times are shown in Beijing time.
"""
from __future__ import annotations

from datetime import datetime

import geopandas as gpd
import pandas as pd
import streamlit as st

from analysis import event_kpi as kpi
from gis.settings import get_settings
from gis.workclock import BEIJING
from layers import events as ev
from layers.event_rules import get_rules
from ui import event_data as evd
from ui import map as wmap
from ui import state
from ui.i18n import T, t
from ui.seam import Refused, one_language
from ui.state import language


# --- small helpers -------------------------------------------------------------------------------

def _when(v) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NaT:
        return "—"
    try:
        return pd.Timestamp(v).tz_convert(BEIJING).strftime("%m-%d %H:%M")
    except (TypeError, ValueError):
        return "—"


def _s(v) -> str | None:
    """A text cell or None (a column with some empty rows holds NaN there, which is truthy)."""
    return v if isinstance(v, str) and v else None


def _class_name(code, kind, lang: str) -> str:
    return get_rules().name(code, lang) if _s(code) else (_s(kind) or "—")


def _stage(s: str, lang: str) -> str:
    return t(f"stage.{s}", lang)


def _cases(**filters) -> gpd.GeoDataFrame:
    return evd.cases(**filters)


def _refused(exc: Refused, lang: str) -> None:
    """A refusal in the user's words: by the reason's code, else the message in one language."""
    said, key = f"ev.msg.{exc.message.strip()}", f"ev.why.{exc.code}"
    why = t(said, lang) if said in T else t(key, lang) if exc.code and key in T else one_language(exc.message, lang)
    st.error(t("ev.refused", lang, why=why))


def _table(frame: pd.DataFrame, lang: str) -> pd.DataFrame:
    flags = [" ".join(x for x in (t("ev.overdue", lang) if o else "", t("ev.escalated", lang) if e else "",
                                   t("ev.urgent", lang) if u else "") if x)
             for o, e, u in zip(frame["overdue"], frame["escalated"], frame["urgent"])]
    return pd.DataFrame({
        t("ev.col_id", lang): frame["id"].astype(int).astype(str),
        t("ev.col_class", lang): [_class_name(c, k, lang) for c, k in zip(frame["class_code"], frame["kind"])],
        t("ev.col_stage", lang): [_stage(s, lang) for s in frame["status"]],
        t("ev.col_flags", lang): flags,
        t("ev.col_grid", lang): frame["grid_code"].fillna(""),
        t("ev.col_unit", lang): [ev.unit_label(u, lang) if _s(u) else "" for u in frame["unit_code"]],
        t("ev.col_reported", lang): [_when(v) for v in frame["reported_at"]],
        t("ev.col_due", lang): [_when(v) for v in frame["stage_due_at"]],
        t("ev.col_description", lang): frame["description"].fillna(""),
    })


def _show_list(frame: pd.DataFrame, lang: str, key: str) -> int | None:
    """A table of cases and a picker; returns the chosen case id."""
    if frame.empty:
        st.caption(t("ev.none", lang))
        return None
    st.dataframe(_table(frame, lang), hide_index=True, width="stretch")
    labels = {int(r.id): f"{int(r.id)} · {_class_name(r.class_code, r.kind, lang)} · {_stage(r.status, lang)}"
              for r in frame.itertuples()}
    return st.selectbox(t("ev.pick_case", lang), list(labels), format_func=labels.get, key=key)


def _history(event_id: int, lang: str) -> dict | None:
    case = evd.case(event_id)
    if case is None:
        return None
    rows = [{t("ev.col_time", lang): _when(x["at"]), t("ev.col_action", lang): t(f"act.{x['action']}", lang),
             t("ev.col_actor", lang): x["actor"], t("ev.col_note", lang): x["note"] or ""} for x in case["transitions"]]
    with st.expander(t("ev.history", lang), expanded=False):
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    return case


def _do(event_id: int, action: str, lang: str, note: str | None = None, **data) -> bool:
    """One action under the user's scope; says what happened."""
    try:
        status = evd.act(event_id, action, note or None, **data)
    except Refused as exc:
        _refused(exc, lang)
        return False
    st.success(t("ev.done", lang, stage=_stage(status, lang)))
    return True


def _map_frame(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    f = frame[frame.geometry.notna()]
    return gpd.GeoDataFrame({"id": f["id"].astype(int), "st": [f"{s}|late" if o else s for s, o in zip(f["status"], f["overdue"])]},
                            geometry=f.geometry.values, crs=4326)


def _bounds(frame: gpd.GeoDataFrame):
    f = frame[frame.geometry.notna()]
    if f.empty:
        return None
    w, s, e, n = f.total_bounds
    pad = 0.002
    return (w - pad, s - pad, e + pad, n + pad)


# --- the grid worker ------------------------------------------------------------------------------

def _class_picker(lang: str, key: str) -> str:
    rules = get_rules()
    c1, c2, c3 = st.columns(3)
    kind = c1.radio(t("ev.kind", lang), ("event", "component"), horizontal=True, key=f"{key}_kind",
                    format_func=lambda k: t(f"ev.kind_{k}", lang))
    majors = [(k, m) for (k, m) in rules.majors if k == kind]
    major = c2.selectbox(t("ev.major", lang), [m for _, m in majors], key=f"{key}_major",
                         format_func=lambda m: rules.majors[(kind, m)][0 if lang == "zh" else 1])
    codes = [c.code for c in rules.classes.values() if c.kind == kind and c.major == major]
    return c3.selectbox(t("ev.minor", lang), codes, key=f"{key}_minor", format_func=lambda c: rules.name(c, lang))


def worker_render() -> None:
    lang = language()
    user = state.user()
    grids = tuple(int(g) for g in (user.grids if user is not None else ()))
    st.title(t("page.events_worker", lang))
    tab_report, tab_verify, tab_mine = st.tabs([t("ev.tab_report", lang), t("ev.tab_verify", lang), t("ev.tab_mine", lang)])
    with tab_report:
        _report_form(lang, grids)
    with tab_verify:
        todo = _cases(status="handled")
        picked = _show_list(todo, lang, "verify_pick")
        if picked is not None:
            _history(picked, lang)
            note = st.text_input(t("ev.note", lang), key=f"verify_note_{picked}")
            photo = st.file_uploader(t("ev.photos", lang), type=["jpg", "jpeg", "png"], key=f"verify_photo_{picked}")
            a, b = st.columns(2)
            if a.button(t("act.verify_pass", lang), key=f"vp_{picked}", type="primary"):
                if photo is not None:
                    _photo(picked, "verify", photo, lang)
                _do(picked, "verify_pass", lang, note)
            if b.button(t("act.verify_fail", lang), key=f"vf_{picked}"):
                if photo is not None:
                    _photo(picked, "verify", photo, lang)
                _do(picked, "verify_fail", lang, note)
    with tab_mine:
        mine = _cases(reported_by=user.username if user is not None else "")
        if mine.empty:
            st.caption(t("ev.none", lang))
        else:
            st.dataframe(_table(mine, lang), hide_index=True, width="stretch")


def _photo(event_id: int, stage: str, upload, lang: str) -> None:
    try:
        evd.add_photo(event_id, stage, upload.name, upload.getvalue())
    except Refused as exc:
        _refused(exc, lang)


def _report_form(lang: str, grids: tuple[int, ...]) -> None:
    from streamlit_folium import st_folium

    from ui import data

    choices = data.grid_choices(None)
    mine = choices[choices["id"].astype(int).isin(grids)] if grids else choices
    bounds = None
    if not mine.empty:
        pack = data.grid_pack(int(mine["id"].iloc[0]))
        if pack is not None and len(pack.shape):
            bounds = tuple(pack.shape.total_bounds)
    open_cases = _cases(status=("reported", "filed", "dispatched", "handled", "verified"), limit=500)
    view = wmap.MapView(bounds=bounds, tiles=("communities", "grids", "roads", "buildings"), height=420,
                        small=[wmap.GeoLayer("events", _map_frame(open_cases))])
    m = wmap.build(view, lang)
    m.add_child(wmap._Js(wmap.locate_js(m.get_name())))
    st.caption(t("ev.where", lang))
    out = st_folium(m, key="report_map", height=420, use_container_width=True, returned_objects=["last_clicked"])
    clicked = (out or {}).get("last_clicked")
    if clicked:
        st.session_state["report_at"] = (float(clicked["lng"]), float(clicked["lat"]))
    at = st.session_state.get("report_at")
    st.markdown(t("ev.place", lang, lon=at[0], lat=at[1]) if at else t("ev.no_place", lang))
    code = _class_picker(lang, "report")
    rules = get_rules()
    cls = rules.cls(code)
    st.caption(t("ev.unit_for", lang, unit=rules.unit_name(cls.unit, lang)) + "　" +
               t("ev.limit", lang, limit=getattr(cls.limits["handle"]["limit"], f"label_{lang}")))
    urgent = st.checkbox(t("ev.urgent_box", lang), key="report_urgent")
    description = st.text_area(t("ev.description", lang), max_chars=4000, key="report_desc")
    photos = st.file_uploader(t("ev.photos", lang), type=["jpg", "jpeg", "png"], accept_multiple_files=True, key="report_photos")
    if st.button(t("ev.submit", lang), type="primary", key="report_submit"):
        if not at:
            st.error(t("ev.need_place", lang))
            return
        try:
            i = evd.report(code, at[0], at[1], description or None, urgent,
                           [(p.name, p.getvalue()) for p in photos or []])
        except Refused as exc:
            _refused(exc, lang)
            return
        st.session_state.pop("report_at", None)
        st.success(t("ev.reported", lang, id=i))


# --- the command centre ---------------------------------------------------------------------------

def dispatcher_render() -> None:
    lang = language()
    st.title(t("page.events_dispatch", lang))
    tabs = st.tabs([t("ev.tab_incoming", lang), t("ev.tab_dispatch", lang), t("ev.tab_approvals", lang),
                    t("ev.tab_close", lang), t("ev.tab_overdue", lang), t("ev.tab_map", lang)])
    rules = get_rules()
    with tabs[0]:
        picked = _show_list(_cases(status="reported"), lang, "in_pick")
        if picked is not None:
            case = _history(picked, lang)
            dups = evd.duplicates(picked)
            m = get_settings().event_duplicate_m
            if dups.empty:
                st.caption(t("ev.no_duplicates", lang))
            else:
                st.warning(t("ev.duplicates", lang, m=int(m)))
                st.dataframe(pd.DataFrame({t("ev.col_id", lang): dups["id"].astype(str),
                                           t("ev.col_stage", lang): [_stage(s, lang) for s in dups["status"]],
                                           t("ev.distance", lang): dups["distance_m"]}), hide_index=True)
                into = st.selectbox(t("act.merge", lang), dups["id"].astype(int).tolist(), key=f"merge_{picked}")
                if st.button(t("act.merge", lang), key=f"merge_btn_{picked}"):
                    try:
                        evd.merge(picked, int(into))
                        st.success(t("ev.done", lang, stage=_stage("rejected", lang)))
                    except Refused as exc:
                        _refused(exc, lang)
            codes = list(rules.classes)
            current = case["class_code"] if case and case["class_code"] in codes else codes[0]
            code = st.selectbox(t("ev.minor", lang), codes, index=codes.index(current), key=f"file_cls_{picked}",
                                format_func=lambda c: f"{c} {rules.name(c, lang)}")
            a, b = st.columns(2)
            if a.button(t("act.file", lang), type="primary", key=f"file_{picked}"):
                _do(picked, "file", lang, class_code=code)
            reason = b.selectbox(t("ev.reason", lang), ("not_case", "out_of_area"), key=f"rej_r_{picked}",
                                 format_func=lambda r: t(f"reason.{r}", lang))
            if b.button(t("act.reject", lang), key=f"rej_{picked}"):
                _do(picked, "reject", lang, t(f"reason.{reason}", lang), reason=reason)
    with tabs[1]:
        picked = _show_list(_cases(status="filed"), lang, "disp_pick")
        if picked is not None:
            _history(picked, lang)
            proposed = evd.proposed_unit(picked)
            units = list(rules.units)
            if proposed and proposed not in units:
                units.insert(0, proposed)
            st.caption(t("ev.proposed", lang, unit=ev.unit_label(proposed, lang)))
            unit = st.selectbox(t("ev.col_unit", lang), units, index=units.index(proposed) if proposed in units else 0,
                                key=f"unit_{picked}", format_func=lambda u: ev.unit_label(u, lang))
            if st.button(t("act.dispatch", lang), type="primary", key=f"disp_{picked}"):
                _do(picked, "dispatch", lang, unit=unit)
    with tabs[2]:
        pend = _cases(pending=True)
        picked = _show_list(pend, lang, "appr_pick")
        if picked is not None:
            row = pend[pend["id"] == picked].iloc[0]
            st.info(t("ev.pending_extend", lang, h=round(float(row["pending_minutes"] or 0) / 60, 1)) if row["pending"] == "extend"
                    else t("ev.pending_defer", lang))
            _history(picked, lang)
            a, b = st.columns(2)
            if a.button(t("act.approve", lang), type="primary", key=f"appr_{picked}"):
                _do(picked, "approve", lang)
            if b.button(t("act.deny", lang), key=f"deny_{picked}"):
                _do(picked, "deny", lang)
        deferred = _cases(status="deferred")
        if not deferred.empty:
            st.subheader(_stage("deferred", lang))
            pick = _show_list(deferred, lang, "resume_pick")
            if pick is not None and st.button(t("act.resume", lang), key=f"resume_{pick}"):
                _do(pick, "resume", lang)
    with tabs[3]:
        picked = _show_list(_cases(status="verified"), lang, "close_pick")
        if picked is not None:
            _history(picked, lang)
            if st.button(t("act.close", lang), type="primary", key=f"close_{picked}"):
                _do(picked, "close", lang)
    with tabs[4]:
        late = _cases(overdue=True)
        if late.empty:
            st.caption(t("ev.none", lang))
        else:
            st.dataframe(_table(late, lang), hide_index=True, width="stretch")
    with tabs[5]:
        _case_map(_cases(status=("reported", "filed", "dispatched", "handled", "verified", "deferred"), limit=5000), lang, "disp_map")


def _case_map(frame: gpd.GeoDataFrame, lang: str, key: str, extra: list | None = None) -> None:
    view = wmap.MapView(bounds=_bounds(frame), tiles=("communities", "grids", "roads"), height=460, small=[*(extra or [])])
    wmap.show(wmap.with_events(view, _map_frame(frame)), lang, key=key)  # tiles beyond the GeoJSON limit


# --- the handling unit -----------------------------------------------------------------------------

def unit_render() -> None:
    lang = language()
    st.title(t("page.events_unit", lang))
    tab_q, tab_h = st.tabs([t("ev.tab_queue", lang), t("ev.tab_history", lang)])
    with tab_q:
        queue = _cases(status="dispatched")
        if queue.empty and _cases(limit=1).empty:
            st.info(t("ev.unit_none", lang) + " " + t("ev.none", lang))
        picked = _show_list(queue, lang, "unit_pick")
        if picked is not None:
            case = _history(picked, lang)
            note = st.text_area(t("ev.handle_note", lang), key=f"hn_{picked}")
            photos = st.file_uploader(t("ev.photos", lang), type=["jpg", "jpeg", "png"], accept_multiple_files=True,
                                      key=f"hp_{picked}")
            a, b, c = st.columns(3)
            if a.button(t("act.handle", lang), type="primary", key=f"h_{picked}"):
                for p in photos or []:
                    _photo(picked, "handle", p, lang)
                _do(picked, "handle", lang, note)
            if b.button(t("act.return", lang), key=f"ret_{picked}"):
                _do(picked, "return", lang, note)
            hours = c.number_input(t("ev.hours", lang), min_value=1, max_value=400, value=7, key=f"xh_{picked}")
            if c.button(t("act.extend_request", lang), key=f"x_{picked}", disabled=bool(case and case["pending"])):
                _do(picked, "extend_request", lang, note, hours=hours)
            if c.button(t("act.defer_request", lang), key=f"d_{picked}", disabled=bool(case and case["pending"])):
                _do(picked, "defer_request", lang, note)
    with tab_h:
        past = _cases()
        if past.empty:
            st.caption(t("ev.none", lang))
        else:
            st.dataframe(_table(past, lang), hide_index=True, width="stretch")


# --- the hotline ----------------------------------------------------------------------------------

def hotline_render() -> None:
    lang = language()
    st.title(t("page.events_hotline", lang))
    frame = _cases(limit=500)
    frame = frame[frame["source"] == "hotline"] if not frame.empty else frame
    picked = _show_list(frame, lang, "hot_pick")
    if picked is not None:
        _history(picked, lang)
        if st.button(t("ev.reporter", lang), key=f"rep_{picked}"):
            try:
                who = evd.reporter(picked)
            except Refused as exc:
                _refused(exc, lang)
                return
            st.info(t("ev.reporter_shown", lang, name=who.get("name") or "—", phone=who.get("phone") or "—",
                      email=who.get("email") or "—"))


# --- indicators (leader, secretary) ------------------------------------------------------------------

def _pct(v) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def _hours(v) -> str:
    return "—" if v is None else f"{v:.1f}"


def kpi_render() -> None:
    lang = language()
    st.title(t("page.events_kpi", lang))
    now = datetime.now(BEIJING)
    months = []
    y, m = now.year, now.month
    for _ in range(12):
        months.append(f"{y:04d}-{m:02d}")
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    c1, c2 = st.columns(2)
    month = c1.selectbox(t("kpi.month", lang), months, key="kpi_month")
    level = c2.radio(t("kpi.level", lang), kpi.LEVELS, index=1, horizontal=True, key="kpi_level",
                     format_func=lambda v: t(f"level.{v}", lang))
    start, end = kpi.month_range(month)
    rows = evd.indicators(start, end, level)
    whole = evd.indicators(start, end, "subdistrict")
    tot = {k: int(whole[k].sum()) for k in kpi.COUNTS}
    rates = {name: (tot[n] / tot[d] if tot[d] else None) for name, (n, d) in kpi.RATES.items()}
    st.subheader(t("kpi.whole", lang))
    cols = st.columns(6)
    cols[0].metric(t("kpi.due", lang), tot["due"])
    cols[1].metric(t("kpi.closure_rate", lang), _pct(rates["closure_rate"]))
    cols[2].metric(t("kpi.on_time_rate", lang), _pct(rates["on_time_rate"]))
    cols[3].metric(t("kpi.rework_rate", lang), _pct(rates["rework_rate"]))
    cols[4].metric(t("kpi.correct_dispatch_rate", lang), _pct(rates["correct_dispatch_rate"]))
    cols[5].metric(t("kpi.overdue_now", lang), tot["overdue_now"])
    with st.expander(t("kpi.formulas", lang), expanded=False):
        for k in ("closure_rate", "on_time_rate", "rework_rate", "correct_dispatch_rate", "extension_rate", "handling", "overdue_now"):
            st.markdown("- " + t(f"kpi.def.{k}", lang))
    names = _unit_names(level, lang)
    if rows.empty:
        st.caption(t("ev.none", lang))
    else:
        table = pd.DataFrame({
            t("kpi.unit", lang): [names.get(u, u) or "—" for u in rows["unit"]],
            t("kpi.due", lang): rows["due"], t("kpi.closed", lang): rows["closed"],
            t("kpi.closure_rate", lang): [_pct(v) for v in rows["closure_rate"]],
            t("kpi.on_time_rate", lang): [_pct(v) for v in rows["on_time_rate"]],
            t("kpi.rework_rate", lang): [_pct(v) for v in rows["rework_rate"]],
            t("kpi.correct_dispatch_rate", lang): [_pct(v) for v in rows["correct_dispatch_rate"]],
            t("kpi.extension_rate", lang): [_pct(v) for v in rows["extension_rate"]],
            t("kpi.handling_hours_avg", lang): [_hours(v) for v in rows["handling_hours_avg"]],
            t("kpi.handling_hours_p90", lang): [_hours(v) for v in rows["handling_hours_p90"]],
            t("kpi.overdue_now", lang): rows["overdue_now"],
        })
        st.dataframe(table, hide_index=True, width="stretch")
        n = get_settings().event_rank_min_cases
        ranked = rows[(rows["due"] >= n) & rows["on_time_rate"].notna()]
        if ranked.empty:
            st.caption(t("kpi.ranking_none", lang, n=n))
        else:
            st.subheader(t("kpi.ranking", lang, n=n))
            ranked = ranked.sort_values(["on_time_rate", "closure_rate"], ascending=False)
            st.dataframe(pd.DataFrame({t("kpi.unit", lang): [names.get(u, u) for u in ranked["unit"]],
                                       t("kpi.on_time_rate", lang): [_pct(v) for v in ranked["on_time_rate"]],
                                       t("kpi.closure_rate", lang): [_pct(v) for v in ranked["closure_rate"]]}),
                         hide_index=True)
    st.subheader(t("kpi.trend", lang))
    trend = evd.monthly(list(reversed(months[:6])), "subdistrict")
    if trend.empty or not trend["due"].sum():
        st.caption(t("ev.none", lang))  # (no month with a due case: no chart of empty bars)
    else:
        agg = trend.groupby("month")[list(kpi.COUNTS)].sum()
        chart = pd.DataFrame({
            t("kpi.closure_rate", lang): [(r.closed / r.due * 100) if r.due else None for r in agg.itertuples()],
            t("kpi.on_time_rate", lang): [(r.closed_on_time / r.due * 100) if r.due else None for r in agg.itertuples()],
        }, index=agg.index)
        st.bar_chart(chart, stack=False)  # (a month with no due case has no bar, not a zero)
    st.subheader(t("kpi.overdue_list", lang))
    late = pd.concat([_cases(overdue=True), _cases(escalated=True)]).drop_duplicates("id")
    if late.empty:
        st.caption(t("ev.none", lang))
    else:
        st.dataframe(_table(late, lang), hide_index=True, width="stretch")
    st.subheader(t("kpi.drill", lang))
    from ui import data

    choices = data.grid_choices(None)
    if not choices.empty:
        labels = dict(zip(choices["id"].astype(int), choices["code"] + " " + choices["name"].fillna("")))
        gid = st.selectbox(t("ev.col_grid", lang), list(labels), format_func=labels.get, key="kpi_grid")
        cases = _cases(grid_id=int(gid), limit=300)
        picked = _show_list(cases, lang, "kpi_case")
        if picked is not None:
            case = _history(picked, lang)
            if state.role() == "leader" and case and case["status"] not in ("closed", "rejected") and not case["escalated"]:
                if st.button(t("act.escalate", lang), key=f"esc_{picked}"):
                    _do(picked, "escalate", lang, t("act.escalate", lang))
        _case_map(cases, lang, "kpi_map", extra=_grid_themes(start, end))


def _unit_names(level: str, lang: str) -> dict:
    from ui import data

    if level == "grid":
        ch = data.grid_choices(None)
        return dict(zip(ch["code"], ch["code"] + " " + ch["name"].fillna("")))
    if level == "community":
        subs = data.subdistricts()
        out = {}
        for code in (subs["code"] if not subs.empty else []):
            com = data.communities(code)
            out.update(dict(zip(com["code"].astype(str).str.strip(), com["name"])))
        return out
    subs = data.subdistricts()
    return dict(zip(subs["code"].astype(str).str.strip(), subs["name"])) if not subs.empty else {}


def _grid_themes(start, end) -> list:
    """Two themes of the grids for the period: case density (cases reported per grid, in
    quartile bands) and on-time closure rate (≥90% good, ≥70% middling, below bad, no due
    case grey; switched off at first)."""
    shapes = evd.grid_case_counts(start, end)
    rates = evd.indicators(start, end, "grid")
    if shapes.empty:
        return []
    q = shapes.loc[shapes["cases"] > 0, "cases"].quantile([0.5, 0.75]).tolist() if (shapes["cases"] > 0).any() else [0, 0]
    density = gpd.GeoDataFrame({"id": shapes["id"].astype(int),
                                "st": ["none" if n == 0 else "low" if n <= q[0] else "mid" if n <= q[1] else "high"
                                       for n in shapes["cases"]]}, geometry=shapes.geometry.values, crs=4326)
    rate = dict(zip(rates["unit"], rates["on_time_rate"]))
    bands = ["none" if rate.get(code) is None else "good" if rate[code] >= 0.9 else "mid" if rate[code] >= 0.7 else "bad"
             for code in shapes["code"]]
    on_time = gpd.GeoDataFrame({"id": shapes["id"].astype(int), "st": bands}, geometry=shapes.geometry.values, crs=4326)
    return [wmap.GeoLayer("event_density", density), wmap.GeoLayer("event_grids", on_time, show=False)]
