"""The map's tiles per zoom at a city's size: p50/p95 of each tile request, uncached and cached.

What is timed: the tile routes (``webapp.tiles``) served by uvicorn on loopback as the
dashboard serves them, requests six at a time (a browser's connections per host), 512-px tiles
as the map asks for them, up to ``--cap`` tiles per display zoom around the city's centre, for
the leader map's layers (communities, grids, roads; buildings from zoom 15). **Uncached**:
``?cache=0`` (honoured for administrators only), every tile made by PostGIS; **cached**: a street
leader's requests after one pass has filled the server's tile cache.

Baseline in the same run: the grids layer's tile made the way it was before migration 0024 (each
grid's households summed from ``buildings`` on every tile) against the kept totals
(``building_stats``), in-process on the app role's connection under the leader's scope, per zoom.

    WANGGE_DB_NAME=wangge_dash_bench python -m bench.bench_tiles [--zooms 11 12 13 14 15 16 17 18] [--cap 24] [--repeat 3]

Uses the city already in the database (bench/bench_map.py --dashboard-only's, or an imported
GeoPackage). Writes bench/results/tiles.json (one entry per run kept) and history rows.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import text

from bench import common
from bench.common import ROOT, check_database, commit, owner_engine, signed_in

LAYERS = ("communities", "grids", "roads", "buildings")

# The grid tile's rows as webapp/tiles.py made them before migration 0024: each grid's households
# and residents summed from every building in the tile on every request.
GRIDS_LIVE_SQL = """
  WITH g AS (SELECT id, grid_type, community_code, geom_3857 FROM grids WHERE valid_to IS NULL AND geom_3857 && :env),
  hh AS (SELECT b.grid_id, sum(b.households) AS households, sum(b.residents) AS residents
         FROM buildings b WHERE b.grid_id IN (SELECT id FROM g) GROUP BY 1),
  ft AS (SELECT a.grid_id, count(DISTINCT a.cadre_id) AS n FROM assignments a
         WHERE a.grid_id IN (SELECT id FROM g) AND a.role = 'full_time_worker' AND a.valid_to IS NULL GROUP BY 1)
  SELECT g.id, g.grid_type, g.geom_3857, {status} AS status
  FROM g LEFT JOIN hh ON hh.grid_id = g.id LEFT JOIN ft ON ft.grid_id = g.id"""


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1) if values else 0.0


def _session(username: str, role: str) -> str:
    return signed_in(username, role, "bench_tiles")


def _tiles_at(centre: tuple[float, float], z: int, cap: int) -> list[tuple[int, int, int]]:
    """Up to ``cap`` 512-px tiles (display zoom z) nearest the centre (lon, lat): a screenful or two."""
    import math

    n = 1 << (z - 1)
    cx = (centre[0] + 180) / 360 * n
    cy = (1 - math.asinh(math.tan(math.radians(centre[1]))) / math.pi) / 2 * n
    r = int(math.ceil(math.sqrt(cap))) // 2 + 1
    every = [(z, x, y) for x in range(int(cx) - r, int(cx) + r + 1) for y in range(int(cy) - r, int(cy) + r + 1)
             if 0 <= x < n and 0 <= y < n]
    every.sort(key=lambda t: (t[1] + 0.5 - cx) ** 2 + (t[2] + 0.5 - cy) ** 2)
    return every[:cap]


def _fetch(port: int, requests: list[tuple[str, int, int, int]], cookie: str, query: str, workers: int = 6) -> list[dict]:
    """Each (layer, z, x, y) once, ``workers`` at a time; per request: milliseconds, bytes, server db time, cache verdict."""
    import http.client
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from gis.settings import get_settings

    local = threading.local()
    header = {"Cookie": f"{get_settings().session_cookie}={cookie}"}

    def one(req):
        if not hasattr(local, "c"):
            local.c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        layer, z, x, y = req
        started = time.perf_counter()
        local.c.request("GET", f"/tiles/{layer}/{z}/{x}/{y}.pbf?size=512{query}", headers=header)
        r = local.c.getresponse()
        body = r.read()
        ms = (time.perf_counter() - started) * 1000
        if r.status not in (200, 204):
            raise RuntimeError(f"tile {req}: HTTP {r.status} {body[:200]!r}")
        return {"layer": layer, "z": z, "ms": ms, "bytes": len(body), "cache": r.getheader("x-tile-cache"),
                "db_ms": float((r.getheader("server-timing") or "db;dur=0").split("dur=")[-1])}

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, requests))


def _grid_tile_sql_times(centre, zooms: list[int], cap: int, repeat: int) -> dict:
    """The grids layer's tile SQL before (live sums over buildings) and after (kept totals), in-process,
    leader's scope, the same tiles: median milliseconds per tile, per zoom."""
    from analysis.overview import readable_sql, status_case
    from gis.scope import Scope, use_scope
    from webapp import tiles as wt

    live = GRIDS_LIVE_SQL.format(status=status_case("hh.households", "hh.residents", "ft.n", "g.grid_type",
                                                    readable=readable_sql("g.id", "g.community_code")))
    layers = wt._layers()
    before = wt.TileLayer("grids", f"SELECT s.id, s.grid_type AS t, s.status AS st, s.geom_3857 AS geom FROM ({live}) s",
                          ("id", "t", "st"))
    out = {}
    with use_scope(Scope("bench_leader", "leader")), wt.tile_engine().connect() as conn:
        for z in zooms:
            tl = _tiles_at(centre, z, cap)
            row = {}
            for label, spec in (("live_sums", before), ("kept_totals", layers["grids"])):
                times = []
                for _ in range(repeat):
                    for (_, x, y) in tl:
                        saved = wt._layers()["grids"]
                        wt._layers()["grids"] = spec  # the one layer swapped for the timing, restored below
                        try:
                            started = time.perf_counter()
                            wt.tile(conn, "grids", z, x, y, size=512)
                            times.append((time.perf_counter() - started) * 1000)
                        finally:
                            wt._layers()["grids"] = saved
                    conn.rollback()
                row[label] = {"p50_ms": _pct(times, 50), "p95_ms": _pct(times, 95)}
            out[z] = row
            print(f"  grid tile SQL z{z}: live sums p50 {row['live_sums']['p50_ms']} ms p95 {row['live_sums']['p95_ms']} ms; "
                  f"kept totals p50 {row['kept_totals']['p50_ms']} ms p95 {row['kept_totals']['p95_ms']} ms", flush=True)
    return out


def _mvtgeom_twice(sql: str) -> str:
    """A tile's SQL in the form before issue 18's tiles work: the ``ST_AsMVTGeom`` step as a plain
    CTE, which PostgreSQL inlines and so computes twice per feature (filter and output)."""
    import re

    m = re.search(r"FROM \(SELECT (.*?), mvtgeom FROM \(\n(.*?) OFFSET 0\) mvt\n\s*WHERE mvtgeom IS NOT NULL\) m", sql, re.S)
    if m is None:
        raise RuntimeError("webapp.tiles.tile_query changed form: update bench_tiles._mvtgeom_twice")
    head = sql[:m.start()]
    cut = head.index("SELECT ST_AsMVT")
    return (head[:cut].rstrip() + ",\n        mvt AS (" + m.group(2) + ")\n        " + head[cut:]
            + f"FROM (SELECT {m.group(1)}, mvtgeom FROM mvt WHERE mvtgeom IS NOT NULL) m\n")


def _tile_sql_times(centre, zooms: list[int], cap: int, repeat: int) -> dict:
    """Each layer's tile SQL before (``_mvtgeom_twice``) and after, in-process on the app role's
    connection under an administrator's scope (the uncached requests' scope), the two forms
    alternating tile by tile so the machine's load weighs on both alike: p50/p95 ms, and whether
    every tile's bytes are equal."""
    from gis.scope import Scope, use_scope
    from webapp import tiles as wt

    out = {}
    with use_scope(Scope("bench_admin", "admin")), wt.tile_engine().connect() as conn:
        for z in zooms:
            row = {}
            for layer in LAYERS:
                if layer == "buildings" and z < 15:
                    continue
                times: dict[str, list[float]] = {"twice": [], "once": []}
                same = True
                for _ in range(repeat):
                    for (_, x, y) in _tiles_at(centre, z, cap):
                        sql, params, low = wt.tile_query(layer, z, x, y, size=512)
                        got = {}
                        for label, q in (("twice", _mvtgeom_twice(sql)), ("once", sql)):
                            started = time.perf_counter()
                            got[label] = conn.execute(text(q), params).scalar_one()
                            times[label].append((time.perf_counter() - started) * 1000)
                        same = same and got["twice"] == got["once"]
                    conn.rollback()
                row[layer] = {k: {"p50_ms": _pct(v, 50), "p95_ms": _pct(v, 95)} for k, v in times.items()} | {"same_bytes": same}
            out[z] = row
            print(f"  tile SQL z{z} (ST_AsMVTGeom twice -> once, p50/p95 ms): " + "; ".join(
                f"{la} {r['twice']['p50_ms']}/{r['twice']['p95_ms']} -> {r['once']['p50_ms']}/{r['once']['p95_ms']}"
                f"{'' if r['same_bytes'] else ' (BYTES DIFFER)'}" for la, r in row.items()), flush=True)
    return out


def run(zooms: list[int], cap: int, repeat: int, record: bool, allow_any_db: bool, label: str, app_root: Path | None = None) -> dict:
    database = check_database(allow_any_db, "wangge_dash_bench")
    with owner_engine().connect() as c:
        n = int(c.execute(text("SELECT count(*) FROM buildings")).scalar_one())
        grids = int(c.execute(text("SELECT count(*) FROM grids")).scalar_one())
        x, y = c.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Centroid(ST_Extent(geom)::geometry) p FROM grids) q")).one()
    centre = (float(x), float(y))
    load_before = list(os.getloadavg())
    admin, leader = _session("bench_admin", "admin"), _session("bench_leader", "leader")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pages = Path(tempfile.mkdtemp(prefix="bench_tiles_"))
    root = (app_root or ROOT).resolve()  # --app-root: the tile routes of another checkout (the code before), same database
    server = subprocess.Popen([sys.executable, "-m", "bench.bench_map", "--serve", str(port), "--pages", str(pages)], cwd=root,
                              env={**os.environ, "PYTHONPATH": str(root)})
    per_zoom: dict[int, dict] = {}
    try:
        from bench.bench_map import _wait_port

        _wait_port(port, server)
        time.sleep(2)
        for z in zooms:
            reqs = [(layer, *t) for t in _tiles_at(centre, z, cap) for layer in LAYERS if layer != "buildings" or z >= 15]
            uncached, cached = [], []
            _fetch(port, reqs, leader, "")  # fills the cache (untimed)
            for _ in range(repeat):
                uncached += _fetch(port, reqs, admin, "&cache=0")
                cached += _fetch(port, reqs, leader, "")
            hits = sum(1 for r in cached if r["cache"] == "hit")
            row = {"tiles": len(reqs) // max(1, len([la for la in LAYERS if la != "buildings" or z >= 15])),
                   "requests_per_round": len(reqs),
                   "uncached": {"p50_ms": _pct([r["ms"] for r in uncached], 50), "p95_ms": _pct([r["ms"] for r in uncached], 95),
                                "db_p50_ms": _pct([r["db_ms"] for r in uncached], 50), "db_p95_ms": _pct([r["db_ms"] for r in uncached], 95)},
                   "cached": {"p50_ms": _pct([r["ms"] for r in cached], 50), "p95_ms": _pct([r["ms"] for r in cached], 95),
                              "hit_share": round(hits / max(1, len(cached)), 3)},
                   "per_layer_uncached_p95_ms": {la: _pct([r["ms"] for r in uncached if r["layer"] == la], 95)
                                                 for la in LAYERS if la != "buildings" or z >= 15},
                   "max_tile_bytes": {la: max((r["bytes"] for r in uncached if r["layer"] == la), default=0)
                                      for la in LAYERS if la != "buildings" or z >= 15}}
            per_zoom[z] = row
            print(f"z{z}: {row['requests_per_round']} requests/round; uncached p50 {row['uncached']['p50_ms']} ms "
                  f"p95 {row['uncached']['p95_ms']} ms (db p95 {row['uncached']['db_p95_ms']}); cached p50 "
                  f"{row['cached']['p50_ms']} ms p95 {row['cached']['p95_ms']} ms ({row['cached']['hit_share']:.0%} hits); "
                  f"per layer p95 {row['per_layer_uncached_p95_ms']}", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=20)
    grid_sql = _grid_tile_sql_times(centre, [z for z in zooms if z <= 15], min(cap, 12), 1)
    tile_sql = _tile_sql_times(centre, zooms, min(cap, 12), max(1, repeat - 1))
    entry = {"label": label, "app_root": str(app_root or ROOT), "date": datetime.now(UTC).isoformat(timespec="seconds"),
             "commit": commit(("gis", "webapp", "analysis", "migrations")), "database": database, "buildings": n, "grids": grids,
             "cap": cap, "repeat": repeat, "per_zoom": per_zoom, "grid_tile_sql_before_after": grid_sql,
             "tile_sql_mvtgeom_twice_once": tile_sql,
             "aim": {"z15_uncached_p95_ms": 100}, "cpus": os.cpu_count(),
             "load_average_before_after": [load_before, list(os.getloadavg())]}
    if record:
        path = common.RESULTS / "tiles.json"
        doc = json.loads(path.read_text()) if path.exists() else {
            "benchmark": "tiles", "what": __doc__.split("\n\n")[1].replace("\n", " "), "entries": []}
        doc["entries"].append(entry)
        rows = [[entry["date"], f"tiles-z{z}-p95", entry["commit"], n, repeat, r["uncached"]["p95_ms"] / 1000,
                 r["cached"]["p95_ms"] / 1000, "", "", "", ""] for z, r in per_zoom.items()]
        common.save("tiles", doc, rows)
    return entry


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_tiles", description=__doc__.split("\n\n")[0])
    ap.add_argument("--zooms", type=int, nargs="+", default=[11, 12, 13, 14, 15, 16, 17, 18])
    ap.add_argument("--cap", type=int, default=24)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--label", default="")
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--app-root", type=Path, help="serve the tiles from this checkout (e.g. the commit before a change)")
    ap.add_argument("--allow-any-db", action="store_true")
    a = ap.parse_args(argv)
    return run(a.zooms, a.cap, a.repeat, not a.no_record, a.allow_any_db, a.label, a.app_root)


if __name__ == "__main__":
    main()
