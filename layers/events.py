"""Event cases (事件/案件, standards §6): report → file → dispatch → handle → verify → close.

Why the lifecycle lives in the database: migration 0018's ``event_act`` is the only way a
case changes (a direct UPDATE by the app role is refused), and it checks the caller's
signed scope, role and the case's status against ``event_allowed`` and stamps every step in
``event_transitions``. This module adds what the database cannot know: the working-time
clock (gis/workclock.py) and the per-class limits (layers/event_rules.py), from which it
computes the deadlines it passes to ``event_act``; the proposed unit; duplicates nearby;
photos; and the audit rows (layers/audit.py).
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import geopandas as gpd
import pandas as pd
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from gis import scope as scopes
from gis.errors import BadInput
from gis.scope import current
from gis.settings import get_settings
from gis.workclock import BEIJING, get_clock
from layers.audit import record as audit
from layers.event_rules import RulesInvalid, get_rules

STATUSES = ("reported", "filed", "rejected", "dispatched", "handled", "verified", "closed", "deferred")
OPEN = ("reported", "filed", "dispatched", "handled", "verified", "deferred")
ACTIONS = ("file", "reject", "dispatch", "return", "handle", "verify_pass", "verify_fail", "close", "extend_request",
           "defer_request", "approve", "deny", "resume", "escalate")
SOURCES = ("worker", "public", "video", "hotline", "higher")
PHOTO_TYPES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}


class EventInvalid(BadInput):
    """A report or an action that cannot be taken; ``code`` names the reason for screens."""

    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.code = code


class EventRefused(EventInvalid):
    """The database refused an action (role, status or area)."""


def now() -> datetime:
    return datetime.now(BEIJING)


def ensure_scope(conn: Connection) -> None:
    """Set the signed scope on this transaction if nothing has (owner connections of the CLI
    and tests: the event tables are FORCE row-level secured, so the owner needs one too)."""
    have = conn.execute(text("SELECT coalesce(current_setting('wangge.scope', true), '')")).scalar_one()
    if not have and current() is not None:
        scopes.apply(conn.connection.dbapi_connection, current())


def _refusal(exc: DBAPIError) -> EventRefused:
    orig = exc.orig
    code = getattr(orig, "sqlstate", None) or ""
    msg = str(getattr(getattr(orig, "diag", None), "message_primary", None) or orig).strip()
    kind = {"42501": "forbidden", "55000": "wrong_status", "22023": "invalid", "P0002": "not_found"}.get(code, "refused")
    return EventRefused(msg, kind)


# --- reading ---------------------------------------------------------------------------------------

CASE_COLS = """e.id, e.district_code, e.community_code, e.grid_id, g.code AS grid_code, e.building_id, e.kind, e.class_code,
       e.status, e.source, e.urgent, e.unit_code, e.proposed_unit, e.reported_at, e.reported_by, e.description, e.address,
       e.stage_due_at, e.filed_at, e.first_dispatched_at, e.dispatched_at, e.handle_due_at, e.handled_at, e.verified_at,
       e.closed_at, e.rejected_at, e.reject_reason, e.duplicate_of, e.dispatch_count, e.redispatch_count, e.rework_count,
       e.extension_count, e.deferred, e.pending, e.pending_minutes, e.escalated, e.handle_note, e.handle_wmin, e.on_time,
       (e.status IN ('reported', 'filed', 'dispatched', 'handled', 'verified') AND e.stage_due_at < now()) AS overdue,
       e.geom"""


def events_in(conn: Connection, grid_id: int | None = None, *, community_code: str | None = None,
              status: str | tuple[str, ...] | None = None, unit: str | None = None, overdue: bool = False,
              pending: bool = False, escalated: bool = False, reported_by: str | None = None,
              limit: int = 1000) -> gpd.GeoDataFrame:
    """Cases the scope may see (row-level security), newest first, with optional filters."""
    ensure_scope(conn)
    sts = None if status is None else list((status,) if isinstance(status, str) else status)
    return gpd.read_postgis(text(f"""
        SELECT {CASE_COLS}
        FROM events e LEFT JOIN grids g ON g.id = e.grid_id
        WHERE (CAST(:g AS bigint) IS NULL OR e.grid_id = :g)
          AND (CAST(:c AS text) IS NULL OR e.community_code = :c)
          AND (CAST(:s AS text[]) IS NULL OR e.status = ANY(CAST(:s AS text[])))
          AND (CAST(:u AS text) IS NULL OR e.unit_code = :u)
          AND (NOT :od OR (e.status IN ('reported', 'filed', 'dispatched', 'handled', 'verified') AND e.stage_due_at < now()))
          AND (NOT :pd OR e.pending IS NOT NULL)
          AND (NOT :esc OR (e.escalated AND e.status <> 'closed'))
          AND (CAST(:rb AS text) IS NULL OR e.reported_by = :rb)
        ORDER BY e.reported_at DESC, e.id DESC LIMIT :lim"""), conn, geom_col="geom",
        params={"g": grid_id, "c": community_code, "s": sts, "u": unit, "od": overdue, "pd": pending, "esc": escalated,
                "rb": reported_by, "lim": int(limit)})


def get_case(conn: Connection, event_id: int) -> dict:
    """One case with its transitions (actor, role, time, note); EventInvalid if not visible."""
    ensure_scope(conn)
    row = conn.execute(text(f"SELECT {CASE_COLS.replace('e.geom', 'ST_X(e.geom) AS lon, ST_Y(e.geom) AS lat')} "
                            "FROM events e LEFT JOIN grids g ON g.id = e.grid_id WHERE e.id = :i"), {"i": event_id}).mappings().first()
    if row is None:
        raise EventInvalid(f"case {event_id} not found in your area", "not_found")
    out = dict(row)
    out["transitions"] = [dict(r) for r in conn.execute(text("""
        SELECT id, action, from_status, to_status, at, actor, actor_role, note, data FROM event_transitions
        WHERE event_id = :i ORDER BY at, id"""), {"i": event_id}).mappings()]
    out["photos"] = [dict(r) for r in conn.execute(text(
        "SELECT id, stage, filename, mime, added_by, added_at FROM event_photos WHERE event_id = :i ORDER BY id"),
        {"i": event_id}).mappings()]
    return out


def transitions(conn: Connection, since: datetime | None = None) -> pd.DataFrame:
    """The transition log the scope may see (for recomputing indicators)."""
    ensure_scope(conn)
    return pd.read_sql(text("""SELECT t.event_id, t.id, t.action, t.from_status, t.to_status, t.at, t.data
                               FROM event_transitions t ORDER BY t.event_id, t.at, t.id"""), conn)


# --- reporting ----------------------------------------------------------------------------------------

def grid_at(conn: Connection, lon: float, lat: float) -> int | None:
    """The current grid containing a WGS-84 point (None outside every grid)."""
    return conn.execute(text("""SELECT id FROM grids WHERE valid_to IS NULL
                                AND ST_Contains(geom, ST_SetSRID(ST_MakePoint(:x, :y), 4326)) ORDER BY id LIMIT 1"""),
                        {"x": float(lon), "y": float(lat)}).scalar()


def report_event(conn: Connection, kind: str, *, grid_id: int | None = None, building_id: int | None = None,
                 description: str | None = None, lon: float | None = None, lat: float | None = None,
                 urgent: bool = False, source: str = "worker", address: str | None = None,
                 reporter: dict | None = None, external_id: str | None = None, reported_by: str | None = None,
                 status: str = "reported") -> int:
    """Report a case; ``kind`` is a class code (``E0101``) or its name, or free text for a
    class to be chosen at filing. The grid comes from the building, the point, or ``grid_id``.
    Outside the reporter's area the database refuses the row (row-level security); the
    reporter's identity (``reporter``: name, phone, email) is sealed in ``event_reporters``."""
    ensure_scope(conn)
    if status != "reported":
        raise EventInvalid("a case starts as reported")
    if not kind or not str(kind).strip():
        raise EventInvalid("a class or a kind is required", "class_required")
    if source not in SOURCES:
        raise EventInvalid(f"unknown source {source!r}", "invalid")
    if description is not None and len(description) > 4000:
        raise EventInvalid("the description is longer than 4,000 characters", "too_long")
    rules = get_rules()
    code = _class_code(kind)
    if building_id is not None:
        row = conn.execute(text("SELECT grid_id, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM buildings WHERE id = :b"),
                           {"b": building_id}).first()
        if row is None:
            raise EventInvalid(f"unknown building {building_id}", "unknown_building")
        grid_id = grid_id if grid_id is not None else row[0]
        if lon is None:
            lon, lat = row[1], row[2]
    if grid_id is None and lon is not None and lat is not None:
        grid_id = grid_at(conn, lon, lat)
    if grid_id is None:
        raise EventInvalid("the place is in no grid: pick a point inside the sub-district", "outside_grids")
    grid = conn.execute(text("SELECT community_code, district_code FROM grids WHERE id = :g"), {"g": grid_id}).first()
    if grid is None:
        raise EventInvalid(f"unknown grid {grid_id}", "unknown_grid")
    t = now()
    due = rules.deadline(code, "file", t, urgent) if code else None
    scope = current()
    params = {"d": grid[1], "c": grid[0], "g": grid_id, "b": building_id, "k": rules.name(code) if code else str(kind).strip(),
              "cc": code, "who": reported_by or (scope.user if scope else "system"), "desc": description, "u": bool(urgent),
              "src": source, "pub": source in ("public", "hotline"), "addr": address, "due": due, "ext": external_id,
              "x": None if lon is None else float(lon), "y": None if lat is None else float(lat)}
    try:
        new_id = int(conn.execute(text("""
            INSERT INTO events (district_code, community_code, grid_id, building_id, kind, class_code, status, reported_by,
                                description, urgent, source, public, address, stage_due_at, external_id, geom)
            VALUES (:d, :c, :g, :b, :k, :cc, 'reported', :who, :desc, :u, :src, :pub, :addr, :due, :ext,
                    CASE WHEN CAST(:x AS float8) IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint(:x, :y), 4326) END)
            RETURNING id"""), params).scalar_one())
    except DBAPIError as exc:
        if "row-level security" in str(exc.orig):
            raise
        raise _refusal(exc) from exc
    if reporter and any(reporter.get(k) for k in ("name", "phone", "email")):
        conn.execute(text("INSERT INTO event_reporters (event_id, name, phone, email) VALUES (:i, :n, :p, :e)"),
                     {"i": new_id, "n": reporter.get("name"), "p": reporter.get("phone"), "e": reporter.get("email")})
    audit(conn, "event_report", "events", row_key=str(new_id), district_code=grid[1],
          after={"class_code": code, "kind": params["k"], "grid_id": grid_id, "building_id": building_id,
                 "source": source, "urgent": bool(urgent), "description": description})
    return new_id


def _class_code(kind: str) -> str | None:
    rules = get_rules()
    k = str(kind).strip()
    if k in rules.classes:
        return k
    for c in rules.classes.values():
        if k in (c.zh, c.en):
            return c.code
    return None


# --- the lifecycle --------------------------------------------------------------------------------------

def propose_unit(conn: Connection, event_id: int) -> str | None:
    """The unit a case goes to: its class's unit, at the place (a community's own committee
    handles the community's cases: ``shequ`` → ``shequ_<community code>``)."""
    row = conn.execute(text("SELECT class_code, community_code FROM events WHERE id = :i"), {"i": event_id}).first()
    if row is None or row[0] is None:
        return None
    unit = get_rules().cls(row[0]).unit
    if unit == "shequ" and row[1]:
        return f"shequ_{row[1].strip()}"
    return unit


def unit_label(code: str | None, lang: str = "zh") -> str:
    """The name of a unit (a community's committee named with its community code)."""
    if code and code.startswith("shequ_"):
        return get_rules().unit_name("shequ", lang) + f"（{code[6:]}）"
    return get_rules().unit_name(code, lang)


def act(conn: Connection, event_id: int, action: str, note: str | None = None, **data: Any) -> str:
    """Take one action on a case (see ``ACTIONS``); returns the new status.

    Deadlines are computed here on the working-time clock and passed to ``event_act``,
    which checks role, area and status and logs the step. EventRefused names the reason.
    """
    ensure_scope(conn)
    if action not in ACTIONS:
        raise EventInvalid(f"unknown action {action!r}", "invalid")
    case = conn.execute(text("""SELECT status, class_code, urgent, handle_due_at, first_dispatched_at, handled_at, pending,
                                       pending_minutes, district_code FROM events WHERE id = :i"""), {"i": event_id}).mappings().first()
    if case is None:
        raise EventRefused(f"case {event_id} not found in your area", "not_found")
    rules, clock, t = get_rules(), get_clock(), now()
    d: dict[str, Any] = {k: v for k, v in data.items() if v is not None}
    code = d.get("class_code") or case["class_code"]
    urgent = bool(d.get("urgent", case["urgent"]))
    try:
        if action == "file":
            if code is not None:  # (without one, event_act refuses, after checking the role)
                d["stage_due_at"] = rules.deadline(code, "dispatch", t, urgent)
        elif action == "dispatch":
            d.setdefault("unit", propose_unit(conn, event_id))
            if code is not None:
                d["handle_due_at"] = rules.deadline(code, "handle", t, urgent)
        elif action in ("return", "verify_pass") and code is not None:
            d["stage_due_at"] = rules.deadline(code, "dispatch", t, urgent)
        elif action == "handle" and code is not None:
            d["stage_due_at"] = rules.deadline(code, "verify", t, urgent)
        elif action == "close" and case["first_dispatched_at"] and case["handled_at"]:
            d["handle_wmin"] = round(clock.elapsed(case["first_dispatched_at"], case["handled_at"]), 6)
        elif action == "extend_request":
            d["minutes"] = float(d.pop("hours", 0)) * 60 + float(d.pop("minutes", 0) or 0)
        elif action == "approve" and case["pending"] == "extend":
            d["handle_due_at"] = clock.add(case["handle_due_at"], f"{case['pending_minutes']}wmin")
        elif action == "resume":
            since = conn.execute(text("""SELECT max(at) FROM event_transitions WHERE event_id = :i AND action = 'approve'
                                         AND data->>'granted' = 'defer'"""), {"i": event_id}).scalar() or t
            left = max(0.0, clock.W(case["handle_due_at"]) - clock.W(since)) if case["handle_due_at"] else 0.0
            d["handle_due_at"] = clock.at(clock.W(t) + left) if left > 0 else t
    except RulesInvalid as exc:
        raise EventInvalid(str(exc), "unknown_class") from exc
    payload = json.dumps(d, ensure_ascii=False, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))
    try:
        with conn.begin_nested():
            row = conn.execute(text("SELECT status, transition_id FROM event_act(:i, :a, :n, CAST(:d AS jsonb))"),
                               {"i": event_id, "a": action, "n": note, "d": payload}).one()
    except DBAPIError as exc:
        raise _refusal(exc) from exc
    audit(conn, f"event_{action}", "events", row_key=str(event_id), district_code=case["district_code"],
          before={"status": case["status"]}, after={"status": row[0], "note": note, **json.loads(payload)})
    return str(row[0])


def merge(conn: Connection, event_id: int, into: int, note: str | None = None) -> str:
    """Reject a report as a duplicate of an earlier case (the earlier one goes on)."""
    return act(conn, event_id, "reject", note or f"重复：与案件 {into} 相同", reason="duplicate", duplicate_of=into)


def duplicates(conn: Connection, event_id: int, within_m: float | None = None) -> pd.DataFrame:
    """Open cases of the same class within ``within_m`` metres (setting ``event_duplicate_m``)."""
    ensure_scope(conn)
    m = float(within_m if within_m is not None else get_settings().event_duplicate_m)
    return pd.read_sql(text("""
        SELECT o.id, o.status, o.reported_at, o.description,
               round(ST_Distance(o.geom::geography, e.geom::geography)::numeric, 1)::float8 AS distance_m
        FROM events e JOIN events o ON o.id <> e.id AND o.class_code = e.class_code
          AND o.status IN ('reported', 'filed', 'dispatched', 'handled', 'verified', 'deferred')
          AND ST_DWithin(o.geom::geography, e.geom::geography, :m)
        WHERE e.id = :i AND e.geom IS NOT NULL ORDER BY distance_m, o.id"""), conn, params={"i": event_id, "m": m})


def reporter(conn: Connection, event_id: int) -> dict | None:
    """The sealed reporter (hotline role only; the database logs each look)."""
    ensure_scope(conn)
    try:
        with conn.begin_nested():
            row = conn.execute(text("SELECT name, phone, email FROM event_reporter(:i)"), {"i": event_id}).mappings().first()
    except DBAPIError as exc:
        raise _refusal(exc) from exc
    return dict(row) if row else None


def add_photo(conn: Connection, event_id: int, stage: str, filename: str, data: bytes) -> int:
    """Attach a photo (JPEG or PNG, at most ``event_photo_max_mb``) to a case the scope may see."""
    ensure_scope(conn)
    if len(data) > get_settings().event_photo_max_mb * 1024 * 1024:
        raise EventInvalid(f"{filename}: larger than {get_settings().event_photo_max_mb} MB", "photo_too_large")
    mime = next((m for magic, m in PHOTO_TYPES.items() if data.startswith(magic)), None)
    if mime is None:
        raise EventInvalid(f"{filename}: not a JPEG or PNG photo", "photo_type")
    if conn.execute(text("SELECT 1 FROM events WHERE id = :i"), {"i": event_id}).first() is None:
        raise EventRefused(f"case {event_id} not found in your area", "not_found")
    pid = int(conn.execute(text("""INSERT INTO event_photos (event_id, stage, filename, mime, data)
                                   VALUES (:i, :s, :f, :m, :d) RETURNING id"""),
                           {"i": event_id, "s": stage, "f": filename[:200], "m": mime, "d": data}).scalar_one())
    audit(conn, "event_photo", "events", row_key=str(event_id), after={"photo": pid, "stage": stage, "filename": filename})
    return pid


def photo(conn: Connection, photo_id: int) -> tuple[str, bytes] | None:
    ensure_scope(conn)
    row = conn.execute(text("SELECT mime, data FROM event_photos WHERE id = :i"), {"i": photo_id}).first()
    return (row[0], bytes(row[1])) if row else None


def set_unit_member(conn: Connection, username: str, unit_code: str) -> None:
    """Name the unit a ``unit`` user acts for (administrators)."""
    ensure_scope(conn)
    conn.execute(text("""INSERT INTO event_unit_members (username, unit_code) VALUES (:u, :c)
                         ON CONFLICT (username) DO UPDATE SET unit_code = EXCLUDED.unit_code"""), {"u": username, "c": unit_code})
    audit(conn, "event_unit_member", "event_unit_members", row_key=username, after={"unit": unit_code})


def grid_case_counts(conn: Connection, start: datetime, end: datetime) -> gpd.GeoDataFrame:
    """Current grids with the number of cases the scope can see reported in [start, end)
    (the density theme; grids with none carry 0)."""
    ensure_scope(conn)
    return gpd.read_postgis(text("""
        SELECT g.id, g.code, count(e.id)::int AS cases, g.geom
        FROM grids g LEFT JOIN events e ON e.grid_id = g.id AND e.reported_at >= :s AND e.reported_at < :e
        WHERE g.valid_to IS NULL GROUP BY g.id, g.code, g.geom ORDER BY g.code"""), conn, geom_col="geom",
        params={"s": start, "e": end})
