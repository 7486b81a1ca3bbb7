"""The people screens' reads and writes (issue 17): never cached. Every read of a person goes
through the database's logging functions (layers/people.py), so a cached copy would be a read
the log never saw, and one user's people must never be served to another. Counts are cheap
enough to read each time too.
"""
from __future__ import annotations

from datetime import date, timedelta

import geopandas as gpd
import pandas as pd
import shapely
from sqlalchemy import text

from analysis import patrols, visits
from gis.db import app_engine
from layers import people

CHANNEL = "screen"


def my_people(grid_id: int | None = None, community: str | None = None) -> pd.DataFrame:
    with app_engine().begin() as c:
        return people.list_people(c, grid_id=grid_id, community=community, channel=CHANNEL)


def person(person_id: int) -> dict | None:
    with app_engine().begin() as c:
        return people.person(c, person_id, channel=CHANNEL)


def reveal(person_id: int, reason: str) -> dict:
    with app_engine().begin() as c:
        return people.reveal(c, person_id, reason, channel=CHANNEL)


def today_route(grid_id: int) -> tuple[pd.DataFrame, visits.Route, gpd.GeoDataFrame]:
    """The day's visits in walking order, the route, and the stops as points (id = stop number)."""
    with app_engine().begin() as c:
        frame, route = visits.today_list(c, grid_id, channel=CHANNEL)
        ids = [int(b) for b in frame["building_id"].dropna()] if len(frame) else []
        pts = gpd.read_postgis(text("SELECT id, ST_PointOnSurface(geom) AS geom FROM buildings WHERE id = ANY(:ids)"), c,
                               geom_col="geom", params={"ids": ids}) if ids else None
    where = dict(zip(pts["id"], pts.geometry)) if pts is not None else {}
    stops = gpd.GeoDataFrame({"id": list(frame["stop"]) if len(frame) else []},
                             geometry=[where.get(b) for b in frame["building_id"]] if len(frame) else [], crs=4326)
    return frame, route, stops


def record_visit(person_id: int, outcome: str, note: str | None, lon: float | None, lat: float | None) -> dict:
    with app_engine().begin() as c:
        return visits.record(c, person_id, outcome, note, lon=lon, lat=lat, channel=CHANNEL)


def counts(level: str) -> pd.DataFrame:
    with app_engine().begin() as c:
        frame = people.counts(c, level)
    frame["overdue_rate"] = [round(o / s, 4) if s else 0.0 for o, s in zip(frame["overdue"], frame["scheduled"])]
    return frame


def period(days: int = 7) -> tuple[date, date]:
    end = visits.today()
    return end - timedelta(days=days - 1), end


def coverage(days: int = 7) -> pd.DataFrame:
    a, b = period(days)
    with app_engine().begin() as c:
        return patrols.coverage(c, a, b)


def hours(days: int = 7) -> pd.DataFrame:
    a, b = period(days)
    with app_engine().begin() as c:
        return patrols.hours(c, a, b)


def patrol_map(grid_id: int, days: int = 7) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    a, b = period(days)
    with app_engine().begin() as c:
        return patrols.grid_map(c, grid_id, a, b)


def export(user: str, role: str, reason: str, community: str | None) -> bytes:
    with app_engine().begin() as c:
        return people.export_people(c, user=user, role=role, reason=reason, community=community)


def access_log(person_id: int | None, limit: int = 2000) -> pd.DataFrame:
    with app_engine().begin() as c:
        return people.access_log(c, person_id, limit)


def route_line(route: visits.Route) -> gpd.GeoDataFrame:
    geoms = [route.line] if route.line is not None else []
    return gpd.GeoDataFrame({"id": list(range(len(geoms)))}, geometry=geoms, crs=4326)
