"""The people screens' reads and writes (issue 17), through the one seam (``ui/seam.py``).

Every read of a person goes through the database's logging functions (layers/people.py): the
read writes access-log rows in its own transaction, so these are ``@command(clears=False)``:
committed (a rolled-back read would be a read the log never saw), never cached (a cached copy
would be a read the log never saw, and one user's people must never be served to another),
and clearing no one's cached figures. Counts, coverage and hours log nothing and are read
fresh through ``@read(cache_it=False)``. No SQL here: it lives in layers/people.py and
analysis/visits.py, analysis/patrols.py.
"""
from __future__ import annotations

from datetime import date, timedelta

import geopandas as gpd
import pandas as pd

from analysis import patrols, visits
from layers import people
from ui.seam import command, read

CHANNEL = "screen"
logged_read = command(clears=False)  # a read the database logs: committed, uncached


@logged_read
def my_people(c, grid_id: int | None = None, community: str | None = None) -> pd.DataFrame:
    return people.list_people(c, grid_id=grid_id, community=community, channel=CHANNEL)


@logged_read
def person(c, person_id: int) -> dict | None:
    return people.person(c, person_id, channel=CHANNEL)


@logged_read
def reveal(c, person_id: int, reason: str) -> dict:
    return people.reveal(c, person_id, reason, channel=CHANNEL)


@logged_read
def today_route(c, grid_id: int) -> tuple[pd.DataFrame, visits.Route, gpd.GeoDataFrame]:
    """The day's visits in walking order, the route, and the stops as points (id = stop number)."""
    frame, route = visits.today_list(c, grid_id, channel=CHANNEL)
    return frame, route, visits.stop_points(c, frame)


@command
def record_visit(c, person_id: int, outcome: str, note: str | None, lon: float | None, lat: float | None) -> dict:
    return visits.record(c, person_id, outcome, note, lon=lon, lat=lat, channel=CHANNEL)


@read(cache_it=False)
def _counts(c, level: str) -> pd.DataFrame:
    return people.counts(c, level)


def counts(level: str) -> pd.DataFrame:
    frame = _counts(level)
    frame["overdue_rate"] = [round(o / s, 4) if s else 0.0 for o, s in zip(frame["overdue"], frame["scheduled"])]
    return frame


def period(days: int = 7) -> tuple[date, date]:
    end = visits.today()
    return end - timedelta(days=days - 1), end


@command(clears=False)
def _coverage(c, a: date, b: date) -> pd.DataFrame:
    """A read that commits: patrol_coverage() keeps the street lengths it measured (migration 0030)
    for the next reader, which a rolled-back read would throw away."""
    return patrols.coverage(c, a, b)


def coverage(days: int = 7) -> pd.DataFrame:
    return _coverage(*period(days))


@read(cache_it=False)
def _hours(c, a: date, b: date) -> pd.DataFrame:
    return patrols.hours(c, a, b)


def hours(days: int = 7) -> pd.DataFrame:
    return _hours(*period(days))


@read(cache_it=False)
def _patrol_map(c, grid_id: int, a: date, b: date) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    return patrols.grid_map(c, grid_id, a, b)


def patrol_map(grid_id: int, days: int = 7) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    return _patrol_map(grid_id, *period(days))


@logged_read
def export(c, user: str, role: str, reason: str, community: str | None) -> bytes:
    return people.export_people(c, user=user, role=role, reason=reason, community=community)


@logged_read
def access_log(c, person_id: int | None, limit: int = 2000) -> pd.DataFrame:
    return people.access_log(c, person_id, limit)


def route_line(route: visits.Route) -> gpd.GeoDataFrame:
    geoms = [route.line] if route.line is not None else []
    return gpd.GeoDataFrame({"id": list(range(len(geoms)))}, geometry=geoms, crs=4326)


@read(cache_it=False)
def overdue_grids(c, community: str | None = None, grid_ids: tuple[int, ...] | None = None) -> gpd.GeoDataFrame:
    """Grids with their overdue-visit counts (counts only, from the owner's ``people_counts``)."""
    return visits.overdue_grids(c, community=community, grid_ids=list(grid_ids) if grid_ids is not None else None)


@read
def overdue_communities(c) -> gpd.GeoDataFrame:
    """Communities with their overdue-visit counts (a city's map: counts only)."""
    return visits.overdue_communities(c)


@read(cache_it=False)
def overdue_buildings(c, due: pd.DataFrame) -> gpd.GeoDataFrame:
    """The buildings of the worker's overdue people (from the due list the screen already read)."""
    return visits.overdue_buildings(c, due)


@command(clears=False)
def record_patrol(c, fixes: list[dict], grid_id: int, username: str) -> dict:
    """A patrol the phone's browser recorded, stored as an imported track under the user's scope."""
    return patrols.record_track(c, fixes, grid_id, username)


@read(cache_it=False)
def building_shapes(c, building_ids: tuple[int, ...]) -> gpd.GeoDataFrame:
    return visits.building_shapes(c, list(building_ids))
