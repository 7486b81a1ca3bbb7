"""Group counts (standards §3: 低保, elderly living alone, released prisoners …) as totals.

Why through a function: per-building group counts are resident-level data that a street
leader (unless granted) and a planner may not read (row-level security on
``building_groups``); their dashboards still need the totals. ``group_totals(level)``
(migration 0011, SECURITY DEFINER) sums them per grid, community or sub-district, over
the caller's own area only, and returns nothing without a valid scope.
"""
from __future__ import annotations

import pandas as pd
from sqlalchemy import Connection, text

LEVELS = ("grid", "community", "subdistrict")


def group_totals(conn: Connection, level: str = "community") -> pd.DataFrame:
    """One row per grid (code), community (12-digit code) or sub-district (9-digit code) in
    the scope's area: buildings, households, residents and each group's total."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}")
    return pd.read_sql(text("SELECT * FROM group_totals(:level)"), conn, params={"level": level})
