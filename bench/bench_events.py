"""Event indicators at city scale: N cases over G grids (default 1,000,000 over 20,000),
monthly for the whole sub-district and per grid, in PostgreSQL (analysis/event_kpi.py)
against a straightforward pandas computation from the same rows in the same run; the
answers must be equal (every count, rate and hour figure, every month, both levels).

Stage times are realistic: reports spread over twelve months; filing and dispatch within
minutes (exponential); handling in working time drawn around the class's limit (some late),
measured on the working-time clock with the 2026 holidays; rework, re-dispatch, extensions
and deferrals at the rates a city sees; some cases still open. The rows are written with
COPY (the owner; the lifecycle's checks are the tests' business, not this benchmark's).

    WANGGE_DB_NAME=wangge_events_bench python -m bench.bench_events --cases 1000000 --grids 20000
    WANGGE_DB_NAME=wangge_events_bench python -m bench.bench_events --tiles 100000 --grids 10000   # the event tiles

Empties the layers of the database it runs on: refuses a database without ``bench`` in its name.
"""
from __future__ import annotations

import argparse
import io
import time
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import text

from bench.common import check_database, commit, owner_engine, peak_mb, save, signed_in

AS_OF = datetime.fromisoformat("2026-12-06T12:00:00+08:00")
MONTHS = [f"2026-{m:02d}" for m in range(1, 13)]


def build_area(conn, grids: int) -> None:
    """One sub-district, communities of 100 grids, each grid a 100 m square (EPSG:4326)."""
    conn.execute(text("TRUNCATE event_transitions, event_photos, event_reporters, events, assignments, cadres, building_groups, "
                      "buildings, cameras, facilities, roads, grids, communities, subdistricts, districts RESTART IDENTITY CASCADE"))
    conn.execute(text("INSERT INTO districts (code, name) VALUES ('420106', '武昌区')"))
    conn.execute(text("INSERT INTO subdistricts (code, district_code, name) VALUES ('420106020', '420106', '基准城街道')"))
    coms = (grids + 99) // 100
    d = 0.001  # ~100 m
    conn.execute(text("""
        INSERT INTO communities (code, subdistrict_code, district_code, name, geom)
        SELECT '420106020' || lpad(c::text, 3, '0'), '420106020', '420106', '社区' || c,
               ST_Multi(ST_MakeEnvelope(114 + (c % 40) * 10 * :d, 30 + (c / 40) * 10 * :d,
                                        114 + ((c % 40) + 1) * 10 * :d, 30 + ((c / 40) + 1) * 10 * :d, 4326))
        FROM generate_series(0, :n - 1) c"""), {"n": coms, "d": d})
    conn.execute(text("""
        INSERT INTO grids (code, name, community_code, district_code, geom)
        SELECT '420106020' || lpad((g / 100)::text, 3, '0') || lpad((g % 100)::text, 3, '0'), '网格' || g,
               '420106020' || lpad((g / 100)::text, 3, '0'), '420106',
               ST_Multi(ST_MakeEnvelope(114 + ((g / 100) % 40) * 10 * :d + (g % 10) * :d,
                                        30 + ((g / 100) / 40) * 10 * :d + ((g % 100) / 10) * :d,
                                        114 + ((g / 100) % 40) * 10 * :d + (g % 10 + 1) * :d,
                                        30 + ((g / 100) / 40) * 10 * :d + ((g % 100) / 10 + 1) * :d, 4326))
        FROM generate_series(0, :n - 1) g"""), {"n": grids, "d": d})


def synthesise(n: int, grid_ids: np.ndarray, grid_coms: np.ndarray, seed: int = 16) -> pd.DataFrame:
    from gis.workclock import get_clock
    from layers.event_rules import get_rules

    rng = np.random.default_rng(seed)
    clock, rules = get_clock(), get_rules()
    codes = np.array(list(rules.classes))
    code = rng.choice(codes, n)
    limit = {c: rules.limit(c, "handle") for c in codes}
    urgent = rng.random(n) < 0.03
    ulimit = {c: rules.limit(c, "handle", True) for c in codes}
    lim_min = np.array([(ulimit if u else limit)[c].minutes for c, u in zip(code, urgent)])
    lim_work = np.array([(ulimit if u else limit)[c].working for c, u in zip(code, urgent)])
    pick = rng.integers(0, len(grid_ids), n)
    start = pd.Timestamp("2026-01-01T00:00:00+08:00").value
    span = pd.Timestamp("2026-12-06T00:00:00+08:00").value - start
    NS = 60_000_000_000  # one minute
    reported = start + (rng.random(n) * span).astype(np.int64)
    filed = reported + (rng.exponential(20, n) * NS).astype(np.int64)
    dispatched = filed + (rng.exponential(15, n) * NS).astype(np.int64)
    is_filed = rng.random(n) < 0.97
    is_disp = is_filed & (rng.random(n) < 0.97)
    w_disp = clock.W_array(dispatched)
    extended = is_disp & (rng.random(n) < 0.04)
    due_work = clock.at_array(w_disp + lim_min + np.where(extended, 7 * 60, 0))
    due_cal = dispatched + ((lim_min + np.where(extended, 7 * 60, 0)) * NS).astype(np.int64)
    handle_due = np.where(lim_work, due_work, due_cal)
    # handling takes a share of the limit: most on time, a tail late
    share = rng.gamma(2.0, 0.4, n)
    handled_w = clock.at_array(w_disp + share * lim_min)
    handled = np.where(lim_work, handled_w, dispatched + (share * lim_min * NS).astype(np.int64))
    asof = pd.Timestamp(AS_OF).value
    is_handled = is_disp & (handled <= asof) & (rng.random(n) < 0.97)
    deferred = is_disp & ~is_handled & (rng.random(n) < 0.2)
    verified = handled + (rng.exponential(90, n) * NS).astype(np.int64)
    closed = verified + (rng.exponential(30, n) * NS).astype(np.int64)
    is_verified = is_handled & (verified <= asof)
    is_closed = is_verified & (closed <= asof) & (rng.random(n) < 0.98)
    rework = np.where(is_handled & (rng.random(n) < 0.07), 1, 0)
    redisp = np.where(is_disp & (rng.random(n) < 0.05), 1, 0)
    status = np.select([is_closed, is_verified, is_handled, deferred, is_disp, is_filed],
                       ["closed", "verified", "handled", "deferred", "dispatched", "filed"], "reported")

    def ts(v, mask):
        return pd.to_datetime(np.where(mask, v, np.iinfo(np.int64).min), utc=True)
    wmin = np.where(is_closed, clock.W_array(handled) - w_disp, np.nan)
    return pd.DataFrame({
        "grid_id": grid_ids[pick], "community_code": grid_coms[pick], "class_code": code, "status": status, "urgent": urgent,
        "reported_at": ts(reported, np.ones(n, bool)), "filed_at": ts(filed, is_filed), "first_dispatched_at": ts(dispatched, is_disp),
        "handle_due_at": ts(handle_due, is_disp), "handled_at": ts(handled, is_handled), "verified_at": ts(verified, is_verified),
        "closed_at": ts(closed, is_closed), "dispatch_count": np.where(is_disp, 1 + redisp, 0), "redispatch_count": redisp,
        "rework_count": rework, "extension_count": extended.astype(int), "deferred": deferred,
        "handle_wmin": np.round(wmin, 6), "on_time": np.where(is_closed, handled <= handle_due, None),
        "unit_code": np.where(is_disp, [rules.cls(c).unit for c in code], None),
    })


def copy_in(conn, frame: pd.DataFrame) -> None:
    cols = ["district_code", "community_code", "grid_id", "kind", "class_code", "status", "reported_at", "reported_by", "source",
            "urgent", "unit_code", "filed_at", "first_dispatched_at", "dispatched_at", "handle_due_at", "stage_due_at", "handled_at",
            "verified_at", "closed_at", "dispatch_count", "redispatch_count", "rework_count", "extension_count", "deferred",
            "deferred_ever", "handle_wmin", "on_time"]
    out = pd.DataFrame({
        "district_code": "420106", "community_code": frame["community_code"], "grid_id": frame["grid_id"], "kind": frame["class_code"],
        "class_code": frame["class_code"], "status": frame["status"], "reported_at": frame["reported_at"], "reported_by": "bench",
        "source": "import", "urgent": frame["urgent"], "unit_code": frame["unit_code"], "filed_at": frame["filed_at"],
        "first_dispatched_at": frame["first_dispatched_at"], "dispatched_at": frame["first_dispatched_at"],
        "handle_due_at": frame["handle_due_at"],
        "stage_due_at": frame["handle_due_at"].where(frame["status"] == "dispatched"), "handled_at": frame["handled_at"],
        "verified_at": frame["verified_at"], "closed_at": frame["closed_at"], "dispatch_count": frame["dispatch_count"],
        "redispatch_count": frame["redispatch_count"], "rework_count": frame["rework_count"],
        "extension_count": frame["extension_count"], "deferred": frame["deferred"], "deferred_ever": frame["deferred"],
        "handle_wmin": frame["handle_wmin"], "on_time": frame["on_time"]})
    raw = conn.connection.dbapi_connection
    with raw.cursor() as cur:
        cur.execute("ALTER TABLE events DISABLE TRIGGER events_log_report")  # (the history needs no report rows here)
        step = 200_000
        for i in range(0, len(out), step):
            buf = io.StringIO()
            out.iloc[i:i + step].to_csv(buf, index=False, header=False, na_rep="\\N", date_format="%Y-%m-%d %H:%M:%S.%f%z")
            with cur.copy(f"COPY events ({', '.join(cols)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')") as cp:
                cp.write(buf.getvalue())
        cur.execute("ALTER TABLE events ENABLE TRIGGER events_log_report")
    conn.execute(text("ANALYZE events"))


# --- the event layer's tiles (issue 16 point 5) --------------------------------------------------

def open_cases_in(conn, n: int, seed: int = 16) -> None:
    """``n`` open cases, each at a random point of a random grid, stages as a working day leaves
    them, about one in six past its stage's limit (written by the owner, report log off)."""
    conn.execute(text("ALTER TABLE events DISABLE TRIGGER events_log_report"))
    conn.execute(text("SELECT setseed(:s)"), {"s": seed / 100})
    conn.execute(text("""
        INSERT INTO events (district_code, community_code, grid_id, kind, class_code, status, reported_by, source,
                            stage_due_at, geom)
        SELECT g.district_code, g.community_code, g.id, 'E0101', 'E0101',
               (ARRAY['reported', 'filed', 'dispatched', 'dispatched', 'dispatched', 'handled', 'verified', 'deferred'])[1 + floor(random() * 8)::int],
               'bench', 'import', now() + (random() * 6 - 1) * interval '1 day',
               ST_SetSRID(ST_MakePoint(ST_XMin(g.geom) + random() * (ST_XMax(g.geom) - ST_XMin(g.geom)),
                                       ST_YMin(g.geom) + random() * (ST_YMax(g.geom) - ST_YMin(g.geom))), 4326)
        FROM (SELECT 1 + floor(random() * (SELECT count(*) FROM grids))::int AS k FROM generate_series(1, :n)) r
        JOIN (SELECT row_number() OVER (ORDER BY id) AS k, * FROM grids) g ON g.k = r.k"""), {"n": n})
    conn.execute(text("UPDATE events SET stage_due_at = NULL WHERE status = 'deferred'"))
    conn.execute(text("ALTER TABLE events ENABLE TRIGGER events_log_report"))
    conn.execute(text("ANALYZE events"))


def _session(username: str, role: str) -> str:
    return signed_in(username, role, "bench_events")


def _tiles_at(bounds: tuple[float, float, float, float], z: int, cap: int) -> list[tuple[int, int, int]]:
    """The 512-px tiles (display zoom z) covering ``bounds`` (lon/lat), at most ``cap`` of them
    around the centre (a screenful or two at high zoom)."""
    import math

    def xy(lon, lat, zq):
        n = 1 << zq
        return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)

    w, s, e, n = bounds
    x0, y0 = xy(w, n, z - 1)
    x1, y1 = xy(e, s, z - 1)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    every = [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
    every.sort(key=lambda t: (t[1] - cx) ** 2 + (t[2] - cy) ** 2)
    return every[:cap]


def _fetch(base: str, tiles: list, cookie: str, query: str, workers: int = 6) -> tuple[list[float], list[int], float]:
    """Each tile once, ``workers`` at a time over loopback (a browser's six connections per
    host); per-tile milliseconds, bytes, and the whole batch's wall seconds."""
    import http.client
    import threading
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import urlsplit

    from gis.settings import get_settings

    host = urlsplit(base)
    local = threading.local()
    header = {"Cookie": f"{get_settings().session_cookie}={cookie}"}

    def one(t):
        if not hasattr(local, "c"):
            local.c = http.client.HTTPConnection(host.hostname, host.port, timeout=120)
        z, x, y = t
        started = time.perf_counter()
        local.c.request("GET", f"/tiles/events/{z}/{x}/{y}.pbf?{query}", headers=header)
        r = local.c.getresponse()
        body = r.read()
        ms = (time.perf_counter() - started) * 1000
        if r.status not in (200, 204):
            raise RuntimeError(f"tile {t}: HTTP {r.status} {body[:200]!r}")
        return ms, len(body)

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        out = list(pool.map(one, tiles))
    return [o[0] for o in out], [o[1] for o in out], time.perf_counter() - started


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1) if values else 0.0


def bench_tiles(cases: int, grids: int, zooms: list[int], cap: int, repeat: int, allow_any_db: bool) -> dict:
    """The event layer's tiles at ``cases`` open cases, per display zoom: p50/p95 milliseconds
    of each tile request over loopback, uncached (``cache=0``, an administrator) and cached,
    and a view's bytes; against the GeoJSON of the same cases (what the screens sent before),
    in the same run."""
    import json
    import socket
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from gis import scope as scopes
    from gis.scope import SYSTEM, use_scope
    from layers import events as ev

    db = check_database(allow_any_db, "wangge_events_bench")
    t0 = time.perf_counter()
    with owner_engine().begin() as conn:
        scopes.apply(conn.connection.dbapi_connection, SYSTEM)
        build_area(conn, grids)
        open_cases_in(conn, cases)
        bounds = tuple(conn.execute(text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
                                         "FROM (SELECT ST_Extent(geom) e FROM grids) q")).one())
        overdue = conn.execute(text("SELECT count(*) FILTER (WHERE stage_due_at < now()), count(*) FROM events")).one()
    print(f"{cases:,} open cases over {grids:,} grids written in {time.perf_counter() - t0:.1f} s "
          f"({overdue[0]:,} overdue)", flush=True)
    admin = _session("bench_admin", "admin")

    # baseline: the cases as GeoJSON (id and stage per feature, as ui/screens/events.py sent them)
    from ui.map import EVENTS_GEOJSON_LIMIT

    base_runs = {}
    for label, limit in (("geojson_5000", EVENTS_GEOJSON_LIMIT), ("geojson_all", cases)):
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            with use_scope(SYSTEM), owner_engine().connect() as conn:
                frame = ev.events_in(conn, status=("reported", "filed", "dispatched", "handled", "verified", "deferred"),
                                     limit=limit)
            f = frame[frame.geometry.notna()]
            doc = {"type": "FeatureCollection", "features": [
                {"type": "Feature", "properties": {"layer": "events", "id": int(i), "st": f"{s}|late" if o else s},
                 "geometry": {"type": "Point", "coordinates": [g.x, g.y]}}
                for i, s, o, g in zip(f["id"], f["status"], f["overdue"], f.geometry)]}
            body = json.dumps(doc)
            times.append(time.perf_counter() - started)
        base_runs[label] = {"features": len(f), "median_s": round(float(np.median(times)), 3), "mb": round(len(body) / 2**20, 2)}
        print("baseline", label, base_runs[label], flush=True)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pages = Path(tempfile.mkdtemp(prefix="bench_events_"))
    server = subprocess.Popen([sys.executable, "-m", "bench.bench_map", "--serve", str(port), "--pages", str(pages)],
                              cwd=str(Path(__file__).resolve().parents[1]))
    per_zoom, view = {}, {}
    try:
        from bench.bench_map import _wait_port

        _wait_port(port, server)
        base = f"http://127.0.0.1:{port}"
        for z in zooms:
            tiles = _tiles_at(bounds, z, cap)
            cold_ms, cold_bytes, warm_ms = [], [], []
            for _ in range(repeat):
                ms, sizes, _ = _fetch(base, tiles, admin, "size=512&cache=0")
                cold_ms += ms
                cold_bytes += sizes
            _fetch(base, tiles, admin, "size=512")  # fill the cache
            for _ in range(repeat):
                ms, _, _ = _fetch(base, tiles, admin, "size=512")
                warm_ms += ms
            per_zoom[z] = {"tiles": len(tiles), "requests": len(cold_ms),
                           "uncached_p50_ms": _pct(cold_ms, 50), "uncached_p95_ms": _pct(cold_ms, 95),
                           "cached_p50_ms": _pct(warm_ms, 50), "cached_p95_ms": _pct(warm_ms, 95),
                           "tile_kb_mean": round(float(np.mean(cold_bytes)) / 1024, 1), "tile_kb_max": round(max(cold_bytes) / 1024, 1)}
            print(f"z{z}", per_zoom[z], flush=True)
        # the whole area in one view at the zoom a map fits it to (what the dispatcher opens)
        from ui.map import fit_zoom

        zf = fit_zoom(bounds)
        tiles = _tiles_at(bounds, zf, 10_000)
        walls, kb = [], 0
        for _ in range(repeat):
            _, sizes, wall = _fetch(base, tiles, admin, "size=512&cache=0")
            walls.append(wall)
            kb = sum(sizes) / 1024
        view = {"zoom": zf, "tiles": len(tiles), "uncached_wall_s_median": round(float(np.median(walls)), 3),
                "kb": round(kb, 1)}
        print("whole area view", view, flush=True)
    finally:
        server.terminate()
        server.wait(timeout=20)
    ratio = round(base_runs["geojson_all"]["median_s"] / view["uncached_wall_s_median"], 2) if view else None
    return {"benchmark": "events_tiles", "database": db,
            "commit": commit(["webapp/tiles.py", "migrations/versions/0020_events_tiles.py", "bench/bench_events.py"]),
            "open_cases": cases, "overdue": int(overdue[0]), "grids": grids, "bounds": [round(v, 5) for v in bounds],
            "repeat": repeat, "tile_size_px": 512, "concurrency": 6, "tiles_per_zoom_cap": cap,
            "detail_zoom": __import__("webapp.tiles", fromlist=["x"]).EVENTS_DETAIL_ZOOM,
            "zooms": per_zoom, "whole_area_view": view, "baseline_geojson": base_runs,
            "ratio_geojson_all_over_tiles_view": ratio, "peak_mb": peak_mb(),
            "note": "uncached: ?cache=0 (administrator), every tile from PostGIS; cached: the server's tile cache warm. "
                    "Baseline: the same open cases as GeoJSON built in Python (events_in + features), as the screens sent them "
                    "(5,000 at most, and all of them)."}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=1_000_000)
    ap.add_argument("--grids", type=int, default=20_000)
    ap.add_argument("--allow-any-db", action="store_true")
    ap.add_argument("--tiles", type=int, metavar="OPEN_CASES",
                    help="benchmark the event tile layer at this many open cases instead (results/events_tiles.json)")
    ap.add_argument("--zooms", default="11,12,13,14,15,16,17,18")
    ap.add_argument("--cap", type=int, default=24, help="tiles per zoom at most (around the centre)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if args.tiles:
        result = bench_tiles(args.tiles, args.grids, [int(z) for z in args.zooms.split(",")], args.cap, args.repeat,
                             args.allow_any_db)
        z = result["zooms"]
        rows = [[datetime.now().date().isoformat(), f"events_tiles_z{k}", result["commit"], args.tiles, args.repeat,
                 "", round(v["uncached_p50_ms"] / 1000, 4), "", "", result["peak_mb"], ""] for k, v in z.items()]
        save("events_tiles", result, rows)
        return
    from analysis import event_kpi as kpi
    from gis import scope as scopes
    from gis.scope import SYSTEM

    db = check_database(args.allow_any_db, "wangge_events_bench")
    t0 = time.perf_counter()
    with owner_engine().begin() as conn:
        scopes.apply(conn.connection.dbapi_connection, SYSTEM)
        build_area(conn, args.grids)
        g = conn.execute(text("SELECT id, community_code, code FROM grids ORDER BY id")).all()
    gids = np.array([r[0] for r in g])
    gcoms = np.array([r[1] for r in g])
    frame = synthesise(args.cases, gids, gcoms)
    t_synth = time.perf_counter() - t0
    with owner_engine().begin() as conn:
        scopes.apply(conn.connection.dbapi_connection, SYSTEM)
        copy_in(conn, frame)
    t_load = time.perf_counter() - t0 - t_synth
    print(f"{args.cases:,} cases over {args.grids:,} grids: synthesised in {t_synth:.1f} s, written in {t_load:.1f} s", flush=True)

    results, equal = {}, True
    with owner_engine().connect() as conn:
        scopes.apply(conn.connection.dbapi_connection, SYSTEM)
        for level in ("subdistrict", "grid"):
            t = time.perf_counter()
            sql = {m: kpi.indicators(conn, *kpi.month_range(m), level, AS_OF) for m in MONTHS}
            sql_s = time.perf_counter() - t
            t = time.perf_counter()
            key = "g.code" if level == "grid" else "left(e.community_code, 9)"
            rows = pd.read_sql(text(f"""
                SELECT {key} AS unit, e.status, e.filed_at, e.first_dispatched_at, e.handle_due_at, e.handled_at, e.closed_at,
                       e.rework_count, e.redispatch_count, e.extension_count, e.deferred, e.handle_wmin
                FROM events e LEFT JOIN grids g ON g.id = e.grid_id"""), conn)
            for c in ("filed_at", "first_dispatched_at", "handle_due_at", "handled_at", "closed_at"):
                rows[c] = pd.to_datetime(rows[c], utc=True)
            load_s = time.perf_counter() - t
            t = time.perf_counter()
            pdf = {m: kpi.compute(rows, *kpi.month_range(m), AS_OF) for m in MONTHS}
            pandas_s = time.perf_counter() - t
            same = all(sql[m].equals(pdf[m]) for m in MONTHS)
            equal &= same
            results[level] = {"sql_s": round(sql_s, 3), "pandas_load_s": round(load_s, 3), "pandas_compute_s": round(pandas_s, 3),
                              "ratio_pandas_total_over_sql": round((load_s + pandas_s) / sql_s, 2),
                              "ratio_pandas_compute_over_sql": round(pandas_s / sql_s, 2), "equal": same,
                              "units": int(sum(len(f) for f in sql.values()) / len(MONTHS))}
            print(level, results[level], flush=True)
        sub = {m: kpi.indicators(conn, *kpi.month_range(m), "subdistrict", AS_OF).iloc[0].to_dict() for m in ("2026-06", "2026-11")}
    result = {"benchmark": "events", "database": db, "commit": commit(["analysis/event_kpi.py", "bench/bench_events.py"]),
              "cases": args.cases, "grids": args.grids, "months": len(MONTHS), "as_of": AS_OF.isoformat(),
              "synthesise_s": round(t_synth, 1), "write_s": round(t_load, 1), "levels": results, "answers_equal": equal,
              "sample_subdistrict": {m: {k: v for k, v in r.items() if k in ("due", "closure_rate", "on_time_rate", "rework_rate",
                                                                              "correct_dispatch_rate", "handling_hours_avg",
                                                                              "handling_hours_p90")} for m, r in sub.items()},
              "peak_mb": peak_mb(), "tiles": "not measured: no event tile layer yet (events are drawn as GeoJSON, up to 5,000)"}
    rows_hist = [[datetime.now().date().isoformat(), f"events_{lv}", result["commit"], args.cases, len(MONTHS),
                  r["pandas_load_s"] + r["pandas_compute_s"], r["sql_s"], r["ratio_pandas_total_over_sql"], "", result["peak_mb"],
                  r["equal"]] for lv, r in results.items()]
    save("events", result, rows_hist)
    print("answers equal:", equal)
    if not equal:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
