"""What the coverage analyses share: the areas figures are measured for, reading layers in
the metric CRS, and run bookkeeping (when, with which settings, on which inputs). Writing
result rows fast is ``gis/copy.py``; EWKB is ``gis/ewkb.py``.

Measuring units are the current grids, plus every community that has no current grid (an
OpenStreetMap import has wards but no grids): grids tile their community (standards §1),
so a community's figures are the sum of its grids' and nothing is measured twice.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, text

# The measuring units: one row per current grid and per community without a current grid.
UNITS_SQL = """
SELECT 'grid' AS scope, g.code, g.id AS grid_id, g.name, g.community_code, c.subdistrict_code, g.geom
FROM grids g JOIN communities c ON c.code = g.community_code WHERE g.valid_to IS NULL
UNION ALL
SELECT 'community', c.code, NULL, c.name, c.code, c.subdistrict_code, c.geom FROM communities c
WHERE NOT EXISTS (SELECT 1 FROM grids g WHERE g.community_code = c.code AND g.valid_to IS NULL)"""

# Which unit a building belongs to: its grid, or its community when that has no grid
# (joins, not a subquery per building: a city has 100,000 of them).
BUILDING_UNIT_JOIN = """
LEFT JOIN grids bu_g ON bu_g.id = b.grid_id AND bu_g.valid_to IS NULL
LEFT JOIN (SELECT DISTINCT community_code FROM grids WHERE valid_to IS NULL) bu_c ON bu_c.community_code = b.community_code"""
BUILDING_UNIT_SQL = "coalesce(bu_g.code, CASE WHEN bu_c.community_code IS NULL THEN b.community_code END)"


def units(conn: Connection, srid: int, codes: Iterable[str] | None = None) -> gpd.GeoDataFrame:
    """The measuring units in the metric CRS (all, or those with the given codes)."""
    codes = None if codes is None else sorted(set(codes))
    sql = f"SELECT u.scope, u.code, u.grid_id, u.name, u.community_code, u.subdistrict_code, ST_Transform(u.geom, {srid}) AS geom FROM ({UNITS_SQL}) u"
    params = {}
    if codes is not None:
        sql += " WHERE u.code = ANY(:codes)"
        params["codes"] = codes
    frame = gpd.read_postgis(text(sql + " ORDER BY u.code"), conn, geom_col="geom", params=params, crs=srid)
    frame["community_code"] = frame["community_code"].str.strip()
    return frame


def probe_table(conn: Connection, name: str, select_sql: str, params: dict | None = None, gist: Iterable[str] = ("geom",)) -> str:
    """The few features a spatial join starts from (cameras, units, facilities), as a temporary
    table with a GiST index, so that the join reads the large layer (buildings, roads) once.

    Why: every layer table forces row-level security, and PostgreSQL will not use an index
    under a qual whose operator is not leakproof while a policy applies (PostGIS's ``&&`` and
    ``ST_DWithin`` are not). A join probing ``buildings`` by location from each camera or each
    grid therefore scanned all of ``buildings`` once per probe: 25,000 cameras x 1,000,000
    footprints. A temporary table has no policy: the planner scans the layer once, under its
    policy (so the caller still sees only its rows), and probes this table's index per row.
    Dropped at commit; replaced if made again in the same transaction."""
    conn.execute(text(f"DROP TABLE IF EXISTS pg_temp.{name}"))
    conn.execute(text(f"CREATE TEMP TABLE {name} ON COMMIT DROP AS {select_sql}"), params or {})
    for col in gist:
        conn.execute(text(f"CREATE INDEX ON pg_temp.{name} USING gist ({col})"))
    conn.execute(text(f"ANALYZE pg_temp.{name}"))
    return f"pg_temp.{name}"


def window(conn: Connection, table: str, alias: str, box: tuple[float, float, float, float] | None, srid: int = 3857) -> tuple[str, dict]:
    """A leakproof pre-filter for the rows of ``table`` (buildings, roads) whose bounding box
    may meet ``box`` (x0, y0, x1, y1 in ``srid``), and its parameters; ("TRUE", {}) for no box.

    Why: under row-level security PostgreSQL uses no index for PostGIS's ``&&`` (not leakproof),
    so a place query read the whole table; float comparisons are leakproof, and the B-tree on
    the box centres (migration 0024; the largest half-size read from 0025's index) finds the few rows near a small box in milliseconds. The
    window is the box widened by the largest half-size in the table (read from its index), so
    no row whose box meets ``box`` is left out; the caller keeps its exact spatial test."""
    if box is None:
        return "TRUE", {}
    row = conn.execute(text(f"""
        SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e), (SELECT coalesce(max(r_3857), 0) FROM {table})
        FROM (SELECT ST_Transform(ST_MakeEnvelope(:x0, :y0, :x1, :y1, {int(srid)}), 3857) AS e) q"""),
        dict(zip(("x0", "y0", "x1", "y1"), map(float, box)))).one()
    x0, y0, x1, y1, r = (float(v) for v in row)
    r += 10.0 + 0.01 * max(x1 - x0, y1 - y0)  # and a margin for the box's edges bending under reprojection
    p = f"w_{alias}_"
    return (f"{alias}.cx_3857 BETWEEN :{p}x0 AND :{p}x1 AND {alias}.cy_3857 BETWEEN :{p}y0 AND :{p}y1",
            {f"{p}x0": x0 - r, f"{p}x1": x1 + r, f"{p}y0": y0 - r, f"{p}y1": y1 + r})


def read_metric(conn: Connection, sql: str, srid: int, params: dict | None = None, geom: str = "geom") -> gpd.GeoDataFrame:
    """A query whose ``geom`` column is already transformed to ``srid``, as a GeoDataFrame
    (the geometry parsed in one vectorised call: read_postgis parses row by row)."""
    result = conn.execute(text(f"SELECT q.*, ST_AsBinary(q.{geom}) AS _wkb FROM ({sql}) q"), params or {})
    cols = list(result.keys())
    # plain tuples: pandas probes each SQLAlchemy Row for attributes it lacks (a raised and caught
    # lookup per row: 2.5 s against 0.2 s for 100,000 footprints)
    rows = [tuple(r) for r in result.all()]
    frame = pd.DataFrame(rows, columns=cols).drop(columns=[geom])
    wkb = np.array([None if w is None else bytes(w) for w in frame.pop("_wkb")], dtype=object)
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(shapely.from_wkb(wkb), crs=srid).values, crs=srid).rename_geometry(geom)


class Timer:
    """Seconds per step, accumulated into a dict the caller may pass (the benchmark does)."""

    def __init__(self, out: dict | None = None) -> None:
        import time

        self._clock = time.perf_counter
        self.out = out if out is not None else {}
        self.t = self._clock()

    def lap(self, name: str) -> None:
        now = self._clock()
        self.out[name] = round(self.out.get(name, 0.0) + now - self.t, 3)
        self.t = now


def fingerprint(values: object) -> str:
    """md5 of a JSON rendering: settings and other small inputs."""
    return hashlib.md5(json.dumps(values, sort_keys=True, default=str, ensure_ascii=False).encode()).hexdigest()


def lock(conn: Connection, analysis: str) -> None:
    """One refresh of an analysis at a time (dashboard and command line may both start one):
    a transaction-scoped advisory lock, released at commit or rollback."""
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"wangge.coverage.{analysis}"})


def start_run(conn: Connection, analysis: str, mode: str, settings: dict, inputs: dict | None = None,
              detail_level: str | None = None) -> tuple[int, datetime]:
    """Record a run; its id and timestamp go on every row it writes."""
    row = conn.execute(text("""
        INSERT INTO coverage_runs (analysis, mode, detail_level, settings, settings_fp, inputs)
        VALUES (:a, :m, :d, CAST(:s AS jsonb), :fp, CAST(:i AS jsonb)) RETURNING id, computed_at"""),
        {"a": analysis, "m": mode, "d": detail_level, "s": json.dumps(settings, ensure_ascii=False, default=str),
         "fp": fingerprint(settings), "i": json.dumps(inputs or {}, default=str)}).one()
    return int(row[0]), row[1]


def finish_run(conn: Connection, run_id: int, seconds: float, touched: dict, inputs: dict | None = None) -> None:
    conn.execute(text("""UPDATE coverage_runs SET seconds = :s, touched = CAST(:t AS jsonb),
                         inputs = inputs || CAST(:i AS jsonb) WHERE id = :id"""),
                 {"s": seconds, "t": json.dumps(touched, default=str), "i": json.dumps(inputs or {}, default=str), "id": run_id})


def last_run(conn: Connection, analysis: str, detail_level: str | None = None, mode: str | None = None) -> dict | None:
    row = conn.execute(text("""
        SELECT * FROM coverage_runs WHERE analysis = :a AND (CAST(:d AS text) IS NULL OR detail_level = :d)
          AND (CAST(:m AS text) IS NULL OR mode = :m) ORDER BY id DESC LIMIT 1"""),
        {"a": analysis, "d": detail_level, "m": mode}).mappings().one_or_none()
    return dict(row) if row else None


def as_multipolygons(geoms: np.ndarray) -> np.ndarray:
    """Keep the polygonal parts of each geometry as one MultiPolygon (None when empty)."""
    geoms = np.asarray(geoms, dtype=object)
    out = np.full(len(geoms), None, dtype=object)
    if len(geoms) == 0:
        return out
    parts, idx = shapely.get_parts(geoms, return_index=True)
    keep = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 1e-6)
    if keep.any():
        shapely.multipolygons(parts[keep], indices=idx[keep], out=out)
    return out
