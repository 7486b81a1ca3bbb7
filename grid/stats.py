"""Grid statistics per grid, community and sub-district, judged against the household band
(standards §2: 300–500 households per urban comprehensive grid, configurable).

Dedicated grids (专属: a school, a hospital, a park) are not held to the household band;
their standing is reported as "dedicated".
"""
from __future__ import annotations

import pandas as pd
from sqlalchemy import Connection, text

from gis.measure import metric_srid
from gis.settings import get_settings
from layers.vocab import GROUPS

GROUP_COLS = [g.code for g in GROUPS]
BAND_RULE = "户数标准 {lo}–{hi} 户/网格 (standards §2)"


def band_rule() -> str:
    s = get_settings()
    return BAND_RULE.format(lo=s.grid_households_min, hi=s.grid_households_max)


def standing(households: pd.Series, grid_type: pd.Series, lo: int | None = None, hi: int | None = None) -> pd.Series:
    s = get_settings()
    lo = s.grid_households_min if lo is None else lo
    hi = s.grid_households_max if hi is None else hi
    out = pd.Series("within", index=households.index, dtype=object)
    out[households < lo] = "under"
    out[households > hi] = "over"
    out[grid_type == "dedicated"] = "dedicated"
    return out


def grid_stats(conn: Connection, community: str | None = None) -> pd.DataFrame:
    """One row per current grid: households, residents, buildings, area, density, groups, standing."""
    srid = metric_srid(conn)
    groups = ", ".join(f"coalesce(sum(bg.{c}), 0)::int AS {c}" for c in GROUP_COLS)
    frame = pd.read_sql(text(f"""
        SELECT g.id, g.code, g.name, g.grid_type, g.community_code, c.name AS community_name,
               ST_Area(ST_Transform(g.geom, {srid})) / 1e6 AS area_km2,
               coalesce(b.households, 0)::int AS households, coalesce(b.residents, 0)::int AS residents,
               coalesce(b.buildings, 0)::int AS buildings, {", ".join(f"coalesce(b.{c}, 0)::int AS {c}" for c in GROUP_COLS)}
        FROM grids g JOIN communities c ON c.code = g.community_code
        LEFT JOIN (
            SELECT b.grid_id, sum(b.households) AS households, sum(b.residents) AS residents, count(*) AS buildings, {groups}
            FROM buildings b LEFT JOIN building_groups bg ON bg.building_id = b.id AND bg.district_code = b.district_code
            GROUP BY b.grid_id
        ) b ON b.grid_id = g.id
        WHERE g.valid_to IS NULL AND (CAST(:c AS text) IS NULL OR g.community_code = :c)
        ORDER BY g.code"""), conn, params={"c": community})
    frame["residents_per_km2"] = (frame["residents"] / frame["area_km2"].where(frame["area_km2"] > 0)).round(0)
    frame["households_per_km2"] = (frame["households"] / frame["area_km2"].where(frame["area_km2"] > 0)).round(0)
    frame["standing"] = standing(frame["households"], frame["grid_type"])
    frame["area_km2"] = frame["area_km2"].round(4)
    return frame


def rollup(grids: pd.DataFrame, by: str | None = "community_code") -> pd.DataFrame:
    """Sum grid figures per community (by='community_code') or for the whole sub-district (by=None)."""
    sums = ["households", "residents", "buildings", "area_km2", *GROUP_COLS]
    key = grids[by] if by else pd.Series("all", index=grids.index)
    out = grids.groupby(key)[sums].sum()
    out["grids"] = grids.groupby(key).size()
    for s in ("under", "within", "over", "dedicated"):
        out[f"grids_{s}"] = grids.assign(_k=key).groupby("_k")["standing"].apply(lambda x, s=s: int((x == s).sum()))
    out["residents_per_km2"] = (out["residents"] / out["area_km2"].where(out["area_km2"] > 0)).round(0)
    if by == "community_code":
        out = out.join(grids.groupby("community_code")["community_name"].first())
    return out.rename_axis(by or "scope").reset_index()
