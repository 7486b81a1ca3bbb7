"""Rebalancing suggestions: split grids over the household band, merge grids under it
with a neighbour in the same community, each with its effect on households.

Dedicated grids (专属) are not held to the band and are left alone.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import Connection, text

from gis.messages import msg
from gis.settings import get_settings
from grid.delineate import propose
from grid.stats import grid_stats


@dataclass
class Suggestion:
    action: str  # split | merge | none
    grid: str
    community_code: str
    households: int
    other: str | None  # the neighbour to merge with
    result: list[int]  # households of the grid(s) afterwards
    note: str

    def to_dict(self) -> dict:
        return asdict(self)


def suggest(conn: Connection, community: str | None = None) -> list[Suggestion]:
    s = get_settings()
    lo, hi = s.grid_households_min, s.grid_households_max
    stats = grid_stats(conn, community)
    hh = dict(zip(stats["code"], stats["households"]))
    out: list[Suggestion] = []
    for row in stats[stats["standing"] == "over"].itertuples():
        split = propose(conn, row.community_code, lo, hi, grid_id=int(row.id))
        parts = [g.households for g in split.grids if g.households > 0]
        if len(parts) > 1:
            note = (msg("rebalance.split_small_part", parts=len(parts), lo=lo) if min(parts) < lo
                    else msg("rebalance.split", parts=len(parts)))
            out.append(Suggestion("split", row.code, row.community_code, row.households, None, parts, note))
        else:
            out.append(Suggestion("none", row.code, row.community_code, row.households, None, [row.households],
                                  msg("rebalance.cannot_split", households=row.households)))
    merged: set[str] = set()
    for row in stats[stats["standing"] == "under"].itertuples():
        if row.code in merged:
            continue
        nbrs = conn.execute(text("""
            SELECT n.code FROM grids g JOIN grids n ON n.community_code = g.community_code AND n.id <> g.id
              AND n.valid_to IS NULL AND n.grid_type = 'comprehensive'
              AND ST_Length(ST_Intersection(ST_Boundary(g.geom), ST_Boundary(n.geom))::geography) > 1
            WHERE g.id = :id ORDER BY n.code"""), {"id": int(row.id)}).scalars().all()
        fits = sorted((hh[n] + row.households, n) for n in nbrs if hh.get(n, 0) + row.households <= hi)
        if fits:
            total, n = fits[0]
            merged.update({row.code, n})
            out.append(Suggestion("merge", row.code, row.community_code, row.households, n, [total],
                                  msg("rebalance.merge", grid=n, households=hh[n], total=total)))
        else:
            out.append(Suggestion("none", row.code, row.community_code, row.households, None, [row.households],
                                  msg("rebalance.no_merge", hi=hi)))
    return out
