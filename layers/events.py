"""Grid events (网格事件, standards §6): what grid workers and residents report, per grid.

Why a layer of its own: events name a grid and often a building, so they are area data
like the buildings; row-level security (migration 0011) shows a worker the events of
their grids only, a secretary those of their community. Reporting is audited.
The workflow statuses follow 数字城管: reported → filed → dispatched → handling →
handled → closed (or returned).
"""
from __future__ import annotations

import geopandas as gpd
from sqlalchemy import Connection, text

from gis.errors import BadInput
from gis.scope import current
from layers.audit import record as audit

STATUSES = ("reported", "filed", "dispatched", "handling", "handled", "closed", "returned")


class EventInvalid(BadInput):
    """An event that cannot be reported (unknown grid or building, or outside the reporter's area)."""


def events_in(conn: Connection, grid_id: int | None = None, *, community_code: str | None = None,
              status: str | None = None, limit: int = 1000) -> gpd.GeoDataFrame:
    """Events the scope may see, newest first, optionally in one grid or community."""
    return gpd.read_postgis(text("""
        SELECT e.id, e.district_code, e.community_code, e.grid_id, g.code AS grid_code, e.building_id, e.kind, e.status,
               e.reported_at, e.reported_by, e.description, e.geom
        FROM events e LEFT JOIN grids g ON g.id = e.grid_id
        WHERE (CAST(:g AS bigint) IS NULL OR e.grid_id = :g)
          AND (CAST(:c AS text) IS NULL OR e.community_code = :c)
          AND (CAST(:s AS text) IS NULL OR e.status = :s)
        ORDER BY e.reported_at DESC, e.id DESC LIMIT :lim"""), conn, geom_col="geom",
        params={"g": grid_id, "c": community_code, "s": status, "lim": int(limit)})


def report_event(conn: Connection, kind: str, *, grid_id: int | None = None, building_id: int | None = None,
                 description: str | None = None, lon: float | None = None, lat: float | None = None,
                 status: str = "reported", reported_by: str | None = None) -> int:
    """Record an event in a grid (or at a building, whose grid it takes); returns its id.

    The grid's community and district are filled in; the point defaults to the building's
    centre. Outside the reporter's area the database refuses the row (row-level security).
    """
    if status not in STATUSES:
        raise EventInvalid(f"unknown status {status!r}")
    if not kind or not kind.strip():
        raise EventInvalid("kind is required")
    if building_id is not None:
        row = conn.execute(text("SELECT grid_id, ST_AsText(ST_PointOnSurface(geom)) FROM buildings WHERE id = :b"),
                           {"b": building_id}).first()
        if row is None:
            raise EventInvalid(f"unknown building {building_id}")
        grid_id = grid_id if grid_id is not None else row[0]
    if grid_id is None:
        raise EventInvalid("an event needs a grid or a building")
    grid = conn.execute(text("SELECT community_code, district_code FROM grids WHERE id = :g"), {"g": grid_id}).first()
    if grid is None:
        raise EventInvalid(f"unknown grid {grid_id}")
    scope = current()
    who = reported_by or (scope.user if scope else None)
    point = f"ST_SetSRID(ST_MakePoint({float(lon)}, {float(lat)}), 4326)" if lon is not None and lat is not None else (
        "(SELECT ST_PointOnSurface(geom) FROM buildings WHERE id = :b)" if building_id is not None else "NULL")
    new_id = int(conn.execute(text(f"""
        INSERT INTO events (district_code, community_code, grid_id, building_id, kind, status, reported_by, description, geom)
        VALUES (:d, :c, :g, :b, :k, :s, coalesce(CAST(:who AS text), current_user::text), :desc, {point})
        RETURNING id"""), {"d": grid[1], "c": grid[0], "g": grid_id, "b": building_id, "k": kind.strip(), "s": status,
                             "who": who, "desc": description}).scalar_one())
    audit(conn, "event_report", "events", row_key=str(new_id), district_code=grid[1],
          after={"kind": kind.strip(), "grid_id": grid_id, "building_id": building_id, "status": status,
                 "description": description})
    return new_id


def set_status(conn: Connection, event_id: int, status: str) -> None:
    """Move an event along the workflow; audited with before and after."""
    if status not in STATUSES:
        raise EventInvalid(f"unknown status {status!r}")
    before = conn.execute(text("SELECT status, district_code FROM events WHERE id = :i"), {"i": event_id}).first()
    if before is None:
        raise EventInvalid(f"unknown event {event_id}")
    conn.execute(text("UPDATE events SET status = :s WHERE id = :i"), {"s": status, "i": event_id})
    audit(conn, "event_status", "events", row_key=str(event_id), district_code=before[1],
          before={"status": before[0]}, after={"status": status})
