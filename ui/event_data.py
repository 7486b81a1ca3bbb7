"""The event screens' named reads and commands (issue 16), through the one seam (``ui/seam.py``).

Reads are not cached: a queue is worked by several people at once (and by the Open311 API and
the CLI, which clear no screen cache), so a dispatcher must see a case the moment it is
reported. Commands run in one transaction each; a refusal the user can act on (a wrong stage,
a role, a place outside the area) reaches the screen as ``Refused`` with the reason's code,
which the screen words in the user's language. No SQL here: it lives in ``layers.events`` and
``analysis.event_kpi``.
"""
from __future__ import annotations

from datetime import datetime

import geopandas as gpd
import pandas as pd
from sqlalchemy.exc import DBAPIError

from analysis import event_kpi as kpi
from layers import events as ev
from ui.seam import command, read


@read(cache_it=False)
def cases(c, **filters) -> gpd.GeoDataFrame:
    return ev.events_in(c, **filters)


@read(cache_it=False)
def case(c, event_id: int) -> dict | None:
    """One case with its transitions; None when the scope cannot see it."""
    try:
        return ev.get_case(c, event_id)
    except ev.EventInvalid:
        return None


@read(cache_it=False)
def duplicates(c, event_id: int) -> pd.DataFrame:
    return ev.duplicates(c, event_id)


@read(cache_it=False)
def proposed_unit(c, event_id: int) -> str | None:
    return ev.propose_unit(c, event_id)


@read(cache_it=False)
def indicators(c, start: datetime, end: datetime, level: str) -> pd.DataFrame:
    ev.ensure_scope(c)
    return kpi.indicators(c, start, end, level)


@read(cache_it=False)
def monthly(c, months: list[str], level: str) -> pd.DataFrame:
    ev.ensure_scope(c)
    return kpi.monthly(c, months, level)


@read(cache_it=False)
def grid_case_counts(c, start: datetime, end: datetime) -> gpd.GeoDataFrame:
    return ev.grid_case_counts(c, start, end)


@command
def act(c, event_id: int, action: str, note: str | None = None, **data) -> str:
    return ev.act(c, event_id, action, note, **data)


@command
def merge(c, event_id: int, into: int) -> str:
    return ev.merge(c, event_id, into)


@command
def add_photo(c, event_id: int, stage: str, filename: str, content: bytes) -> int:
    return ev.add_photo(c, event_id, stage, filename, content)


@command
def report(c, code: str, lon: float, lat: float, description: str | None, urgent: bool,
           photos: list[tuple[str, bytes]]) -> int:
    """Report a case with its photos, all or nothing. A point outside the worker's grids is
    refused by row-level security: that is the user's to fix (another place), not a failure."""
    try:
        i = ev.report_event(c, code, lon=lon, lat=lat, description=description, urgent=urgent)
    except DBAPIError as exc:
        if "row-level security" in str(exc.orig):
            raise ev.EventInvalid("the place is outside your grids", "outside_area") from exc
        raise
    for name, content in photos:
        ev.add_photo(c, i, "report", name, content)
    return i


@command(clears=False)
def reporter(c, event_id: int) -> dict:
    """The sealed reporter of a hotline case: the database logs the look, so this runs
    committed and is never cached."""
    return ev.reporter(c, event_id) or {}
