"""People who need care, visits and patrols (issue 17), one screen per role:

- grid worker: today's visits as a walk on the map, recording a visit, their people (ID numbers
  and phones masked; one record revealed with a reason, logged), their patrol coverage;
- community secretary: overdue visits per grid, patrol coverage bands, the register (masked),
  a watermarked export with a reason;
- street leader: counts and overdue rates only;
- administrator: the access log ("who looked at this person").

Every list of persons shown here is a read the database logs (ui/people_data.py, no cache).
"""
from __future__ import annotations

import html
import time

import geopandas as gpd
import pandas as pd
import streamlit as st

from layers.people import PERSON_GROUPS
from ui import data, people_data, state
from ui import map as wmap
from gis.settings import get_settings
from ui.common import subdistrict
from ui.i18n import t
from ui.inputs import text_box
from ui.state import language

OUTCOME_KEYS = ("met", "absent", "refused")
BAND_KEYS = ("band_1", "band_2", "band_3", "below", "none")


def _groups(codes, lang: str) -> str:
    return "、".join(PERSON_GROUPS.get(g, (g, g))[0 if lang == "zh" else 1] for g in (codes or []))


def _date(v) -> str:
    return "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)[:10]


def _pct(v) -> str:
    return "—" if v is None or pd.isna(v) else f"{v:.1%}"


def _register_table(frame: pd.DataFrame, lang: str) -> pd.DataFrame:
    return pd.DataFrame({
        t("people.col.name", lang): frame["name"],
        t("people.col.sex", lang): frame["sex"].map({"M": t("people.male", lang), "F": t("people.female", lang)}).fillna(""),
        t("people.col.birth", lang): frame["birth_date"].map(_date),
        t("people.col.id", lang): frame["id_masked"].fillna(""),
        t("people.col.phone", lang): frame["phone_masked"].fillna(""),
        t("people.col.address", lang): frame["address"].fillna(""),
        t("people.col.room", lang): frame["household_no"].fillna(""),
        t("people.col.groups", lang): frame["groups"].map(lambda g: _groups(g, lang)),
        t("people.col.next", lang): frame["next_visit"].map(_date),
    })


def _label(frame: pd.DataFrame) -> dict[int, str]:
    return {int(r.id): f"{r.name}（{r.id_masked or ''}，{r.address or ''}）" for r in frame.itertuples()}


# --- grid worker ---------------------------------------------------------------------------------

def render_worker() -> None:
    lang = language()
    user = state.user()
    mine = set(user.grids) if user is not None else set()
    choices = data.grid_choices(None)
    choices = choices[choices["id"].astype(int).isin(mine)]
    st.title(t("page.people_worker", lang))
    if choices.empty:
        st.info(t("worker.none", lang))
        return
    labels = dict(zip(choices["id"].astype(int), choices["code"] + " " + choices["name"]))
    grid_id = int(st.selectbox(t("worker.grid", lang), list(labels), format_func=labels.get, key="people_grid"))

    route_frame, route, stops = people_data.today_route(grid_id)
    overdue = int((route_frame["days_overdue"] > 0).sum()) if len(route_frame) else 0
    cols = st.columns(3)
    cols[0].metric(t("people.due_today", lang), len(route_frame))
    cols[1].metric(t("people.overdue", lang), overdue)
    cols[2].metric(t("people.walk", lang), f"{route.total_m / 1000:.1f} km")

    st.subheader(t("people.route", lang))
    if route_frame.empty:
        st.success(t("people.none_due", lang))
    else:
        st.dataframe(pd.DataFrame({
            t("people.col.stop", lang): route_frame["stop"],
            t("people.col.name", lang): route_frame["name"],
            t("people.col.address", lang): route_frame["address"].fillna(""),
            t("people.col.room", lang): route_frame["household_no"].fillna(""),
            t("people.col.groups", lang): route_frame["groups"].map(lambda g: _groups(g, lang)),
            t("people.col.next", lang): route_frame["next_visit"].map(_date),
            t("people.col.days_overdue", lang): route_frame["days_overdue"],
            t("people.col.walk_m", lang): route_frame["walk_m"],
        }), hide_index=True, width="stretch")
        if any(route.straight):
            st.caption(t("people.straight_note", lang))
    pack = data.grid_pack(grid_id)
    shape = pack.shape[["id", "geometry"]] if pack is not None else None
    mine_grid = people_data.overdue_grids(grid_ids=(grid_id,))
    small, legend = _overdue_layers(mine_grid, lang, counts=False)
    if shape is not None:
        small.append(wmap.GeoLayer("grid", shape))
    late = people_data.overdue_buildings(route_frame)
    if len(late):
        small.append(wmap.GeoLayer("overdue_buildings", gpd.GeoDataFrame(
            {"id": late["id"].astype(int), "st": late["band"], "tip": [_building_tip(r, lang) for r in late.itertuples()]},
            geometry=late.geometry.values, crs=4326)))
    if route.line is not None:
        small.append(wmap.GeoLayer("visit_route", people_data.route_line(route)))
    if len(stops):
        small.append(wmap.GeoLayer("visit_stops", stops[stops.geometry.notna()]))
    bounds = tuple(shape.total_bounds) if shape is not None and len(shape) else None
    st.caption(t("people.overdue_map_help", lang))
    wmap.show(wmap.MapView(bounds=bounds, tiles=("roads", "buildings"), small=small, height=460, legend_args=legend), lang,
              key=f"people_route_{grid_id}")

    _record_form(grid_id, route_frame, lang)
    _my_people(grid_id, lang)
    _patrols(grid_id, lang, worker=True)


FIX_FRESH_S = 600  # a device fix older than this is not the place of the visit being saved


def _device_fix() -> dict | None:
    fix = st.session_state.get("visit_fix")
    if not fix or time.time() * 1000 - float(fix.get("t") or 0) > FIX_FRESH_S * 1000:
        return None
    return fix


def _record_form(grid_id: int, due: pd.DataFrame, lang: str) -> None:
    st.subheader(t("people.record", lang))
    pool = due if len(due) else people_data.my_people(grid_id)
    if pool.empty:
        st.caption(t("people.no_people", lang))
        return
    labels = _label(pool)
    pid = st.selectbox(t("people.who", lang), list(labels), format_func=labels.get, key="visit_person")
    # the device's place, by the same ◎ mechanism as the event report: the phone's position
    # reaches Python through the map component (ui/map.py, show_device)
    st.caption(t("people.locate_help", lang, m=f"{get_settings().visit_far_m:,.0f}"))
    home = pool.loc[pool["id"] == pid, "building_id"].dropna()
    stops = people_data.building_shapes(tuple(int(b) for b in home[:1]))
    pack = data.grid_pack(grid_id)
    shape = pack.shape[["id", "geometry"]] if pack is not None else None
    small = [wmap.GeoLayer("grid", shape)] if shape is not None else []
    if len(stops):
        small.append(wmap.GeoLayer("visit_home", gpd.GeoDataFrame({"id": stops["id"].astype(int)}, geometry=stops.geometry.values,
                                                                   crs=4326)))
    where = stops if len(stops) else shape
    bounds = None
    if where is not None and len(where):
        w, s_, e, n = where.total_bounds
        bounds = (w - 0.002, s_ - 0.002, e + 0.002, n + 0.002)
    got = wmap.show_device(wmap.MapView(bounds=bounds, tiles=("roads", "buildings"), small=small, height=320), lang,
                           key=f"visit_locate_{grid_id}", mode="visit")
    if got and got.get("layer") == "device" and got.get("id") != (st.session_state.get("visit_fix") or {}).get("id") \
            and got.get("id") not in st.session_state.setdefault("visit_fix_used", set()):
        st.session_state["visit_fix"] = got
    fix = _device_fix()
    if fix:
        at = pd.Timestamp(int(fix.get("t") or 0), unit="ms", tz="UTC").tz_convert("Asia/Shanghai").strftime("%H:%M:%S")
        st.success(t("people.fix_ok", lang, acc=f"{float(fix.get('acc') or 0):,.0f}", at=at))
    else:
        st.info(t("people.fix_none", lang))
    with st.form("visit_form", clear_on_submit=True):
        outcome = st.radio(t("people.outcome", lang), OUTCOME_KEYS, format_func=lambda k: t(f"people.outcome.{k}", lang),
                           horizontal=True, key="visit_outcome")
        note = text_box(t("people.note", lang), key="visit_note", max_chars=500)
        with st.expander(t("people.typed_place", lang)):
            c1, c2 = st.columns(2)
            lon = c1.number_input(t("people.lon", lang), value=None, min_value=-180.0, max_value=180.0, format="%.6f", key="visit_lon")
            lat = c2.number_input(t("people.lat", lang), value=None, min_value=-90.0, max_value=90.0, format="%.6f", key="visit_lat")
            st.caption(t("people.location_help", lang))
        if st.form_submit_button(t("people.save_visit", lang)):
            fix = _device_fix()
            if fix:  # the device's place wins over typed figures
                lon, lat = float(fix["lon"]), float(fix["lat"])
            try:
                out = people_data.record_visit(int(pid), outcome, note, lon, lat)
            except (data.Refused, data.Failed):  # the database refused (not theirs, in the future)
                st.error(t("people.visit_refused", lang))
                return
            if fix:  # one fix, one visit: the next visit needs ◎ again
                st.session_state["visit_fix_used"].add(fix.get("id"))
                st.session_state.pop("visit_fix", None)
            if out["far"]:
                st.warning(t("people.visit_far", lang, m=f"{out['distance_m']:,.0f}"))
            elif out["distance_m"] is not None:
                st.success(t("people.visit_saved_near", lang, m=f"{out['distance_m']:,.0f}"))
            else:
                st.success(t("people.visit_saved", lang))


def _my_people(grid_id: int, lang: str) -> None:
    st.subheader(t("people.mine", lang))
    frame = people_data.my_people(grid_id)
    st.caption(t("people.masked_note", lang))
    st.dataframe(_register_table(frame, lang), hide_index=True, width="stretch", height=320)
    _reveal(frame, lang, key="worker")


def _reveal(frame: pd.DataFrame, lang: str, key: str) -> None:
    if frame.empty:
        return
    with st.expander(t("people.reveal", lang)):
        labels = _label(frame)
        pid = st.selectbox(t("people.who", lang), list(labels), format_func=labels.get, key=f"reveal_person_{key}")
        reason = text_box(t("people.reason", lang), key=f"reveal_reason_{key}", max_chars=200)
        if st.button(t("people.reveal_button", lang), key=f"reveal_go_{key}"):
            try:
                shown = people_data.reveal(int(pid), reason or "")
            except data.Refused:
                st.error(t("people.reason_needed", lang))
                return
            st.info(f"{t('people.col.id', lang)}：{shown['id_number']}　{t('people.col.phone', lang)}：{shown['phone'] or '—'}")
            st.caption(t("people.reveal_logged", lang))


def _coverage_table(frame: pd.DataFrame, lang: str) -> pd.DataFrame:
    return pd.DataFrame({
        t("col.code", lang): frame["grid_code"],
        t("people.col.households", lang): frame["households"],
        t("people.col.covered", lang): frame["households_covered"],
        t("people.col.share", lang): frame["share"].map(_pct),
        t("people.col.band", lang): frame["band"].map(lambda b: t(f"people.band.{b}", lang)),
        t("people.col.street", lang): frame["street_share"].map(_pct),
        t("people.col.tracks", lang): frame["tracks"],
    })


def _patrol_recorder(grid_id: int, lang: str) -> None:
    """Start/stop a patrol on the phone: the browser's watchPosition collects the fixes (kept in
    the phone's storage until stored), the stop sends them through the map component, and they
    are stored exactly as an imported track (analysis/patrols.record_track)."""
    user = state.user()
    name = user.username if user is not None else ""
    st.subheader(t("people.patrol_record", lang))
    st.caption(t("people.patrol_record_help", lang, acc=f"{get_settings().patrol_fix_accuracy_m:,.0f}"))
    done: dict = st.session_state.setdefault("patrol_done", {})
    pack = data.grid_pack(grid_id)
    shape = pack.shape[["id", "geometry"]] if pack is not None else None
    bounds = tuple(shape.total_bounds) if shape is not None and len(shape) else None
    view = wmap.MapView(bounds=bounds, tiles=("roads",), small=[wmap.GeoLayer("grid", shape)] if shape is not None else [], height=360)
    got = wmap.show_device(view, lang, key=f"patrol_rec_{grid_id}_{len(done)}", mode="patrol",
                           storage_key=f"wangge-patrol-{name}", saved=tuple(done))
    if got and got.get("layer") == "patrol_fixes" and str(got.get("id")) not in done:
        token = str(got["id"])
        try:
            out = people_data.record_patrol(list(got.get("fixes") or []), grid_id, name)
        except data.Refused as exc:  # nothing stored: said why; the phone forgets these fixes
            done[token] = {"error": exc.message}
        except data.Failed as exc:  # kept on the phone: 「重新上传」 sends them again
            st.error(t("error.failed", lang, exc.ref))
            return
        else:
            done[token] = out
        st.session_state["patrol_last"] = token
        st.rerun()  # the map is drawn again with this walk done (its fixes leave the phone's storage)
    last = done.get(st.session_state.get("patrol_last") or "")
    if last and "error" in last:
        from ui.seam import one_language

        st.error(t("people.patrol_refused", lang) + one_language(last["error"], lang))
    elif last:
        for tr in last["tracks"]:
            st.success(t("people.patrol_saved", lang, day=tr["day"], n=tr["fixes"], h=f"{tr['hours']:.2f}",
                         km=f"{tr['length_m'] / 1000:.2f}", g=tr["grids"]))
        if last.get("imprecise"):
            st.caption(t("people.patrol_imprecise", lang, n=last["imprecise"]))


def _patrols(grid_id: int | None, lang: str, worker: bool = False) -> None:
    if worker and grid_id is not None:
        _patrol_recorder(grid_id, lang)
    st.subheader(t("people.patrol", lang))
    st.caption(t("people.patrol_rule", lang))
    cov = people_data.coverage(7)
    if grid_id is not None:
        cov = cov[cov["grid_id"] == grid_id]
    st.dataframe(_coverage_table(cov, lang), hide_index=True, width="stretch")
    hrs = people_data.hours(7)
    if len(hrs):
        st.dataframe(pd.DataFrame({
            t("people.col.cadre", lang): hrs["cadre_no"], t("people.col.day", lang): hrs["day"].map(_date),
            t("people.col.hours", lang): hrs["hours"],
            t("people.col.min_hours", lang): hrs["meets_minimum"].map(lambda ok: "✓" if ok else "✗"),
        }), hide_index=True, width="stretch")
    else:
        st.caption(t("people.no_tracks", lang))
    if worker and grid_id is not None:
        tracks, missed = people_data.patrol_map(grid_id, 7)
        pack = data.grid_pack(grid_id)
        shape = pack.shape[["id", "geometry"]] if pack is not None else None
        small = [wmap.GeoLayer("grid", shape)] if shape is not None else []
        small.append(wmap.GeoLayer("unpatrolled", missed[["id", "geom"]].rename_geometry("geometry")))
        if len(tracks):
            small.append(wmap.GeoLayer("patrol_tracks", tracks[["id", "geom"]].rename_geometry("geometry")))
        bounds = tuple(shape.total_bounds) if shape is not None and len(shape) else None
        wmap.show(wmap.MapView(bounds=bounds, tiles=("roads",), small=small, height=420), lang, key=f"patrol_map_{grid_id}")


# --- overdue visits as a map layer per grid (secretary, leader, worker) -------------------------------

def _grid_tip(r, lang: str) -> str:
    """A grid's popup: its code and name (escaped: imported text) and its counts, one per line."""
    rate = _pct(r.overdue_rate) if r.overdue_rate is not None and not pd.isna(r.overdue_rate) else "—"
    rows = [f"<b>{html.escape(str(r.code))} {html.escape(str(r.grid_name or ''))}</b>",
            f"{t('people.col.persons', lang)}：{int(r.persons)}", f"{t('people.col.scheduled', lang)}：{int(r.scheduled)}",
            f"{t('people.col.due_today', lang)}：{int(r.due_today)}", f"{t('people.col.overdue', lang)}：{int(r.overdue)}",
            f"{t('people.col.overdue_rate', lang)}：{rate}"]
    return "<br>".join(rows)


def _building_tip(r, lang: str) -> str:
    return "<br>".join([f"<b>{html.escape(str(r.address or t('people.no_address', lang)))}</b>",
                        t("people.tip_overdue_here", lang, n=int(r.overdue)), t("people.tip_longest", lang, d=int(r.max_days))])


def _overdue_layers(frame: gpd.GeoDataFrame, lang: str, counts: bool = True) -> tuple[list, dict]:
    """The overdue-rate layer (shown) and the overdue-count layer (switched off at first), each
    grid with its popup; and the figures the legend names."""
    from analysis.visits import count_bands

    if frame is None or frame.empty:
        return [], {}
    tips = [_grid_tip(r, lang) for r in frame.itertuples()]
    geom = frame.geometry.values
    out = [wmap.GeoLayer("overdue_rate", gpd.GeoDataFrame({"id": frame["id"].astype(int), "st": frame["rate_band"], "tip": tips},
                                                          geometry=geom, crs=4326))]
    lo, hi = get_settings().visit_overdue_bands
    args = {"overdue_rate": {"lo": f"{lo:.0%}", "hi": f"{hi:.0%}"}}
    if counts:
        q1, q2 = count_bands(frame["overdue"])[1]
        out.append(wmap.GeoLayer("overdue_count", gpd.GeoDataFrame({"id": frame["id"].astype(int), "st": frame["count_band"],
                                                                    "tip": tips}, geometry=geom, crs=4326), show=False))
        args["overdue_count"] = {"q1": q1, "q1n": q1 + 1, "q2": q2}
    return out, args


# Up to this many grids the leader's overdue map shows each grid; beyond it (a city: 50,000 outlines,
# tens of megabytes in the page) each community.
OVERDUE_GRIDS_LIMIT = 5000


def _overdue_map(frame: gpd.GeoDataFrame, lang: str, key: str, by_community: bool = False) -> None:
    """Grids (or communities) coloured by their overdue-visit rate (or count: the layer switch, top
    right); a click opens their figures. Counts and rates only, for every role that sees this map."""
    small, legend = _overdue_layers(frame, lang)
    if not small:
        st.caption(t("people.no_grids", lang))
        return
    st.caption(t("people.overdue_map_communities" if by_community else "people.overdue_map_grids", lang))
    wmap.show(wmap.MapView(bounds=tuple(frame.total_bounds), tiles=("roads",), small=small, height=480, legend_args=legend),
              lang, key=key)


# --- community secretary ----------------------------------------------------------------------------

def _overdue_table(frame: pd.DataFrame, names: dict[str, str], lang: str, level: str) -> pd.DataFrame:
    return pd.DataFrame({
        t("col.grid" if level == "grid" else "col.community", lang): [names.get(c, c) for c in frame["code"]],
        t("people.col.persons", lang): frame["persons"],
        t("people.col.scheduled", lang): frame["scheduled"],
        t("people.col.due_today", lang): frame["due_today"],
        t("people.col.overdue", lang): frame["overdue"],
        t("people.col.overdue_rate", lang): frame["overdue_rate"].map(_pct),
    })


def render_secretary() -> None:
    lang = language()
    user = state.user()
    st.title(t("page.people_community", lang))
    coms = tuple(user.communities) if user is not None else ()
    if not coms:
        st.info(t("secretary.no_community", lang))
        return
    community = coms[0]
    grids = data.grid_choices(community)
    names = dict(zip(grids["code"], grids["code"] + " " + grids["name"]))
    counts = people_data.counts("grid")
    counts = counts[counts["code"].isin(grids["code"])]
    cols = st.columns(3)
    cols[0].metric(t("people.col.persons", lang), int(counts["persons"].sum()))
    cols[1].metric(t("people.overdue", lang), int(counts["overdue"].sum()))
    sched = int(counts["scheduled"].sum())
    cols[2].metric(t("people.col.overdue_rate", lang), _pct(counts["overdue"].sum() / sched if sched else None))
    st.subheader(t("people.overdue_by_grid", lang))
    _overdue_map(people_data.overdue_grids(community=community), lang, key=f"overdue_map_{community}")
    st.dataframe(_overdue_table(counts, names, lang, "grid"), hide_index=True, width="stretch")
    _patrols(None, lang)
    st.subheader(t("people.register", lang))
    frame = people_data.my_people(community=community)
    st.caption(t("people.masked_note", lang))
    st.dataframe(_register_table(frame, lang), hide_index=True, width="stretch", height=360)
    _reveal(frame, lang, key="secretary")
    with st.expander(t("people.export", lang)):
        reason = text_box(t("people.reason", lang), key="export_reason", max_chars=200)
        if st.button(t("people.export_prepare", lang), key="export_go"):
            try:
                st.session_state["people_export"] = people_data.export(user.username, user.role, reason or "", community)
            except data.Refused:
                st.error(t("people.reason_needed", lang))
        if st.session_state.get("people_export"):
            st.download_button(t("people.export_download", lang), data=st.session_state["people_export"],
                               file_name="人员登记.xlsx", key="export_dl", on_click="ignore",
                               mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
            st.caption(t("people.export_note", lang))


# --- street leader: counts only ---------------------------------------------------------------------

def render_leader() -> None:
    lang = language()
    st.title(t("page.people_overview", lang))
    st.caption(t("people.counts_only", lang))
    com = people_data.counts("community")
    comms = data.communities(subdistrict())
    names = dict(zip(comms["code"].astype(str), comms["name"]))
    sched = int(com["scheduled"].sum())
    cols = st.columns(3)
    cols[0].metric(t("people.col.persons", lang), int(com["persons"].sum()))
    cols[1].metric(t("people.overdue", lang), int(com["overdue"].sum()))
    cols[2].metric(t("people.col.overdue_rate", lang), _pct(com["overdue"].sum() / sched if sched else None))
    st.subheader(t("people.by_community", lang))
    st.dataframe(_overdue_table(com, names, lang, "community"), hide_index=True, width="stretch")
    st.subheader(t("people.by_grid", lang))
    if len(data.grid_choices(None)) > OVERDUE_GRIDS_LIMIT:
        _overdue_map(people_data.overdue_communities(), lang, key="overdue_map_communities", by_community=True)
    else:
        _overdue_map(people_data.overdue_grids(), lang, key="overdue_map_all")
    grid = people_data.counts("grid")
    choices = data.grid_choices(None)  # a grid by its name too, as the secretary's table shows it
    grid_names = dict(zip(choices["code"], choices["code"] + " " + choices["name"].fillna("")))
    st.dataframe(_overdue_table(grid, grid_names, lang, "grid"), hide_index=True, width="stretch")
    cov = people_data.coverage(7)
    st.subheader(t("people.patrol", lang))
    st.caption(t("people.patrol_rule", lang))
    bands = cov["band"].value_counts()
    st.dataframe(pd.DataFrame({t("people.col.band", lang): [t(f"people.band.{b}", lang) for b in BAND_KEYS],
                               t("people.col.grids", lang): [int(bands.get(b, 0)) for b in BAND_KEYS]}),
                 hide_index=True, width="stretch")


# --- administrator: the access log ------------------------------------------------------------------

def render_access_log() -> None:
    lang = language()
    st.title(t("page.people_access", lang))
    st.caption(t("people.access_help", lang))
    pid = st.number_input(t("people.person_no", lang), value=None, min_value=1, step=1, key="access_person")
    frame = people_data.access_log(int(pid) if pid else None)
    st.dataframe(pd.DataFrame({
        t("people.col.at", lang): frame["at"].map(lambda v: pd.Timestamp(v).tz_convert("Asia/Shanghai").strftime("%Y-%m-%d %H:%M:%S")),
        t("people.col.user", lang): frame["username"],
        t("users.role", lang): frame["role"].map(lambda r: t(f"role.{r}", lang)),
        t("people.person_no", lang): frame["person_id"],
        t("people.col.action", lang): frame["action"].map(lambda a: t(f"people.action.{a}", lang)),
        t("people.reason", lang): frame["reason"].fillna(""),
        t("people.col.channel", lang): frame["channel"].map(lambda c: t(f"people.channel.{c}", lang) if c in CHANNELS else c),
    }), hide_index=True, width="stretch", height=520)


CHANNELS = ("screen", "cli", "export", "app", "test")
