"""Staffing rules and gaps: who is responsible for each grid, and where nobody is.

Rules (settings, defaults from standards §2), each reported by name where it is broken:

- ``one_grid_one_worker``: every comprehensive grid has at least one full-time grid
  worker (专职网格员); part-time workers and volunteers do not count;
- ``worker_load``: a worker carries at most 500 households (the band's top; a grid's
  households are shared evenly among its full-time workers);
- ``staffing_ratio``: a community has a full-time worker per 400 households (seed plan);
- ``max_grids_per_worker``: a worker holds at most N grids;
- ``worker_distance``: a worker's home or office lies within D metres of each grid;
- ``assigned_nowhere``: an active full-time worker with no grid.
"""
from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import pandas as pd
from sqlalchemy import Connection, text

from analysis.runs import read_metric
from gis.measure import metric_srid
from gis.messages import msg
from gis.settings import get_settings
from layers.cadres import worker_ratio as ratio  # noqa: F401  (the ratio rule's figures; grid/staffing_plan.py reads them too)

FULL_TIME = "full_time_worker"


def rule_names() -> dict[str, str]:
    s = get_settings()
    return {
        "one_grid_one_worker": msg("staffing.rule.one_grid_one_worker"),
        "worker_load": msg("staffing.rule.worker_load", max=s.worker_households_max),
        "staffing_ratio": msg("staffing.rule.staffing_ratio", per=s.households_per_worker),
        "max_grids_per_worker": msg("staffing.rule.max_grids_per_worker", max=s.max_grids_per_worker),
        "worker_distance": msg("staffing.rule.worker_distance", distance=s.worker_max_distance_m),
        "assigned_nowhere": msg("staffing.rule.assigned_nowhere"),
    }


# Households per grid from ``building_stats`` (migration 0024: totals per (community, grid) kept by
# triggers on every write to buildings, read under the buildings' own policy), and full-time workers per
# grid counted once: at a city's size (50,000 grids, 1,000,000 buildings) a sum over the buildings per grid
# cost 8 s for the grid list alone, and the screen computed it four times (bench/README.md, staffing).
_GRID_TOTALS = f"""
    hh AS (SELECT grid_id, sum(households)::int AS households FROM building_stats WHERE grid_id IS NOT NULL GROUP BY 1),
    ft AS (SELECT x.grid_id, count(*)::int AS n, string_agg(xc.name, '、' ORDER BY xc.cadre_no) AS names
           FROM assignments x JOIN cadres xc ON xc.id = x.cadre_id
           WHERE x.valid_to IS NULL AND x.role = '{FULL_TIME}' AND xc.active GROUP BY 1)"""


@dataclass(frozen=True)
class Staffing:
    """Everything the staffing screen shows, each part computed once from the same reads."""

    pairs: pd.DataFrame
    workers: pd.DataFrame
    grids: gpd.GeoDataFrame
    gaps: pd.DataFrame
    summary: pd.DataFrame


def assignments(conn: Connection, community: str | None = None) -> pd.DataFrame:
    """Current full-time worker ↔ grid pairs with the grid's households and the distance."""
    srid = metric_srid(conn)
    return pd.read_sql(text(f"""
        WITH {_GRID_TOTALS}
        SELECT c.cadre_no, c.name, c.community_code AS cadre_community, g.code AS grid_code, g.community_code,
               coalesce(hh.households, 0) AS households, coalesce(ft.n, 0) AS workers_on_grid,
               CASE WHEN c.geom IS NULL THEN NULL ELSE ST_Distance(ST_Transform(c.geom, {srid}), ST_Transform(g.geom, {srid})) END AS distance_m
        FROM assignments a JOIN cadres c ON c.id = a.cadre_id JOIN grids g ON g.id = a.grid_id AND g.valid_to IS NULL
        LEFT JOIN hh ON hh.grid_id = g.id LEFT JOIN ft ON ft.grid_id = g.id
        WHERE a.valid_to IS NULL AND a.role = '{FULL_TIME}' AND c.active
          AND (CAST(:c AS text) IS NULL OR g.community_code = :c)
        ORDER BY c.cadre_no, g.code"""), conn, params={"c": community})


def workers(conn: Connection, community: str | None = None, pairs: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per active full-time worker: grids, households carried, farthest grid, broken rules."""
    s = get_settings()
    pairs = assignments(conn, community) if pairs is None else pairs.copy()
    pairs["share"] = pairs["households"] / pairs["workers_on_grid"].clip(lower=1)
    people = pd.read_sql(text(f"""
        SELECT cadre_no, name, community_code, phone FROM cadres
        WHERE role = '{FULL_TIME}' AND active AND (CAST(:c AS text) IS NULL OR community_code = :c) ORDER BY cadre_no"""),
        conn, params={"c": community})
    agg = pairs.groupby("cadre_no").agg(grids=("grid_code", "count"), grid_codes=("grid_code", lambda x: ",".join(x)),
                                        households=("share", "sum"), max_distance_m=("distance_m", "max")).reset_index()
    # merged on the column (not the index): with no assignments at all the index keeps the
    # name cadre_no beside the column and sorting by it is ambiguous (issue 13)
    out = people.merge(agg, on="cadre_no", how="outer")
    out["name"] = out["name"].fillna(out["cadre_no"].map(dict(zip(pairs.cadre_no, pairs.name))))
    out["grids"] = out["grids"].fillna(0).astype(int)
    out["households"] = out["households"].fillna(0).round(0).astype(int)
    broken = []
    for r in out.itertuples():
        b = []
        if r.grids == 0:
            b.append("assigned_nowhere")
        if r.households > s.worker_households_max:
            b.append("worker_load")
        if r.grids > s.max_grids_per_worker:
            b.append("max_grids_per_worker")
        if pd.notna(r.max_distance_m) and r.max_distance_m > s.worker_max_distance_m:
            b.append("worker_distance")
        broken.append(b)
    out["broken"] = broken
    return out.sort_values("cadre_no").reset_index(drop=True)


def grids(conn: Connection, community: str | None = None, pairs: pd.DataFrame | None = None,
          worker_rows: pd.DataFrame | None = None) -> gpd.GeoDataFrame:
    """One row per current grid with its staffing status, for the gap list and the map layer.

    status: no_worker | overloaded | far | ok | dedicated (the first that applies)."""
    s = get_settings()
    # (read_metric parses the outlines in one vectorised call: read_postgis took 3 s for 50,000)
    frame = read_metric(conn, f"""
        WITH {_GRID_TOTALS}
        SELECT g.id, g.code, g.name, g.grid_type, g.community_code, c.name AS community_name, g.staff_version,
               coalesce(hh.households, 0) AS households, coalesce(ft.n, 0) AS full_time, ft.names AS workers, g.geom
        FROM grids g JOIN communities c ON c.code = g.community_code
        LEFT JOIN hh ON hh.grid_id = g.id LEFT JOIN ft ON ft.grid_id = g.id
        WHERE g.valid_to IS NULL AND (CAST(:c AS text) IS NULL OR g.community_code = :c)""", 4326, {"c": community})
    frame = frame.sort_values("code", kind="stable").reset_index(drop=True)
    pairs = assignments(conn, community) if pairs is None else pairs
    w = workers(conn, community, pairs) if worker_rows is None else worker_rows
    over = w["broken"].map(lambda b: "worker_load" in b or "max_grids_per_worker" in b).astype(bool)
    overloaded = set(w.loc[over, "cadre_no"]) if len(w) else set()
    far_grids = set(pairs.loc[pairs["distance_m"] > s.worker_max_distance_m, "grid_code"])
    over_grids = set(pairs.loc[pairs["cadre_no"].isin(overloaded), "grid_code"])
    status = []
    for r in frame.itertuples():
        if r.grid_type == "dedicated" and r.full_time == 0:
            status.append("dedicated")
        elif r.full_time == 0:
            status.append("no_worker")
        elif r.code in over_grids:
            status.append("overloaded")
        elif r.code in far_grids:
            status.append("far")
        else:
            status.append("ok")
    frame["status"] = status
    return frame


def gaps(conn: Connection, community: str | None = None, *, grid_rows: gpd.GeoDataFrame | None = None,
         pairs: pd.DataFrame | None = None, worker_rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """The gap list: every broken rule, one row each, naming the rule."""
    names = rule_names()
    pairs = assignments(conn, community) if pairs is None else pairs
    w = workers(conn, community, pairs) if worker_rows is None else worker_rows
    g = grids(conn, community, pairs, w) if grid_rows is None else grid_rows
    rows = []
    for r in g[g["status"] == "no_worker"].itertuples():
        rows.append({"rule": "one_grid_one_worker", "rule_name": names["one_grid_one_worker"], "grid_code": r.code,
                     "community_code": r.community_code, "cadre_no": None, "name": None, "value": r.households,
                     "detail": msg("staffing.detail.no_worker", grid=r.name or r.code, households=r.households)})
    for r in w.itertuples():
        for rule in r.broken:
            value = {"worker_load": r.households, "max_grids_per_worker": r.grids,
                     "worker_distance": r.max_distance_m, "assigned_nowhere": 0}[rule]
            grid_code = None
            if rule == "worker_distance":
                mine = pairs[pairs.cadre_no == r.cadre_no]
                grid_code = mine.loc[mine["distance_m"].idxmax(), "grid_code"]
            rows.append({"rule": rule, "rule_name": names[rule], "grid_code": grid_code or (r.grid_codes if isinstance(r.grid_codes, str) else None),
                         "community_code": r.community_code, "cadre_no": r.cadre_no, "name": r.name, "value": round(float(value), 1),
                         "detail": msg(f"staffing.detail.{rule}", name=r.name, households=r.households, grids=r.grids,
                                       distance=value)})
    for r in ratio(conn, community).itertuples():
        if r.missing > 0:
            rows.append({"rule": "staffing_ratio", "rule_name": names["staffing_ratio"], "grid_code": None, "community_code": r.community_code,
                         "cadre_no": None, "name": None, "value": r.missing,
                         "detail": msg("staffing.detail.staffing_ratio", community=r.community_name, missing=r.missing,
                                       households=r.households, workers=r.workers)})
    return pd.DataFrame(rows, columns=["rule", "rule_name", "grid_code", "community_code", "cadre_no", "name", "value", "detail"])


def summary(conn: Connection, community: str | None = None, *, grid_rows: gpd.GeoDataFrame | None = None,
            gap_rows: pd.DataFrame | None = None, worker_rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per community and for the sub-district: grids without a worker, overloaded, far, idle workers."""
    pairs = None
    if grid_rows is None or gap_rows is None or worker_rows is None:
        pairs = assignments(conn, community)
    w = workers(conn, community, pairs) if worker_rows is None else worker_rows
    g = grids(conn, community, pairs, w) if grid_rows is None else grid_rows
    gap = gaps(conn, community, grid_rows=g, pairs=pairs, worker_rows=w) if gap_rows is None else gap_rows
    per = g.groupby("community_code").agg(grids=("code", "count"), households=("households", "sum"),
                                          no_worker=("status", lambda x: int((x == "no_worker").sum())))
    for rule, col in (("worker_load", "overloaded"), ("worker_distance", "far"), ("assigned_nowhere", "idle")):
        per[col] = gap[gap.rule == rule].groupby("community_code").size().reindex(per.index).fillna(0).astype(int)
    per["workers"] = w.groupby("community_code").size().reindex(per.index).fillna(0).astype(int)
    per["households_per_worker"] = (per["households"] / per["workers"].where(per["workers"] > 0)).round(0)
    total = per.sum(numeric_only=True)
    total["households_per_worker"] = round(total["households"] / total["workers"], 0) if total["workers"] else None
    out = per.reset_index()
    out.loc[len(out)] = {"community_code": "全街道 all", **total.to_dict()}
    return out


def state(conn: Connection, community: str | None = None) -> Staffing:
    """The pairs, workers, grids, gaps and summary of one area, each computed once."""
    pairs = assignments(conn, community)
    w = workers(conn, community, pairs)
    g = grids(conn, community, pairs, w)
    gap = gaps(conn, community, grid_rows=g, pairs=pairs, worker_rows=w)
    return Staffing(pairs=pairs, workers=w, grids=g, gaps=gap, summary=summary(conn, community, grid_rows=g, gap_rows=gap, worker_rows=w))
