"""Person registers, visit schedule, patrols and access logging at scale (issue 17).

On a synthetic city (``bench/scale.py``): persons with groups (and risk grades), past visits,
and one day of patrol tracks (a fix every 10 s over 8 h). Each figure against a baseline in
the same run:

1. the sub-district's overdue list (``people_list`` with a due date, every row returned
   logged) and the per-grid overdue counts (``people_counts``, a leader's aggregate) against
   pandas computing the same from the tables (read as the owner; reading and computing timed
   apart); the per-grid counts are checked equal;
2. patrol coverage for every grid (``patrol_coverage``: households in buildings within 30 m of
   a track) against geopandas (read, project, buffer the tracks, spatial join, sum), checked
   equal per grid (geodesic vs projected distance may move a building lying at 30 m: the
   number of grids that differ is reported);
3. what the access logging costs on a worker's person list: ``people_list`` for their grid
   (the INSERT of one log row per person in the same statement) against the same SELECT
   without the log, both under the forced row-level security.

The issue asks for 1,000,000 persons, 4,000,000 visits, 20,000 grids and 2,000 tracks; the
defaults are a tenth of that (the machine has 2 shared cores); ``--full`` runs the issue's sizes.

    WANGGE_DB_NAME=people_bench python -m bench.bench_people [--buildings 40000] [--persons 100000]
        [--visits-per-person 4] [--tracks 200] [--baseline-tracks 50] [--repeat 3] [--no-load] [--full]

The database is emptied: its name must contain "bench". Writes bench/results/people.json and
rows to bench/results/history.csv.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import text

from bench import common
from bench.common import check_database, commit


def _time(fn, repeat: int) -> tuple[float, object]:
    runs, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs), out


def _system_owner():
    from layers.people import owner_transaction

    return owner_transaction()


def load_people(persons: int, visits_per_person: int, tracks: int, today: date, log=print, seed: int = 7) -> dict:
    """Persons spread over the buildings, 40% in a scheduled group, visits in the past, and one
    day of tracks (random walks inside a grid at walking pace, one fix every 10 s for 8 h)."""
    from gis.scope import SYSTEM, use_scope

    t0 = time.perf_counter()
    with use_scope(SYSTEM), _system_owner() as c:
        c.execute(text("TRUNCATE patrol_tracks CASCADE"))
        c.execute(text("DELETE FROM persons"))  # cascades to groups and visits (the log stays: append-only)
        c.execute(text("""
            INSERT INTO persons (district_code, community_code, grid_id, building_id, household_no, name, sex, birth_date,
                                 id_hash, id_cipher, id_masked, phone_masked, registered_at)
            SELECT b.district_code, b.community_code, b.grid_id, b.id, (i % 30)::text, '测试某' || i,
                   CASE WHEN i % 2 = 0 THEN 'M' ELSE 'F' END, date '1940-01-01' + (i % 25000),
                   md5(i::text || 'a') || md5(i::text || 'b'), decode(md5(i::text), 'hex'),
                   '420106********' || lpad((i % 10000)::text, 4, '0'), '170****' || lpad((i % 10000)::text, 4, '0'),
                   now() - interval '400 days'
              FROM generate_series(1, :n) i
              JOIN LATERAL (SELECT * FROM buildings WHERE id = 1 + (i::bigint * 7919) % (SELECT max(id) FROM buildings)) b ON true"""),
                  {"n": persons})
        c.execute(text("""
            INSERT INTO person_groups (person_id, group_code, risk_grade)
            SELECT id, (ARRAY['elderly_alone', 'disabled', 'dibao', 'released', 'corrections', 'mental', 'at_risk_youth'])[1 + id % 7],
                   CASE WHEN id % 7 = 5 THEN (id / 7) % 6 END
              FROM persons WHERE id % 5 < 2"""))
        c.execute(text("""
            INSERT INTO visits (person_id, visited_at, visitor, outcome)
            SELECT p.id, now() - make_interval(days => ((p.id * 31 + k * 17) % 200)::int), 'bench', 'met'
              FROM persons p CROSS JOIN generate_series(1, :k) k"""), {"k": visits_per_person})
        c.execute(text("""UPDATE persons p SET last_visit_at = v.m FROM (SELECT person_id, max(visited_at) m FROM visits GROUP BY 1) v
                           WHERE v.person_id = p.id"""))
        grids = c.execute(text("""SELECT g.id, g.community_code, ST_XMin(g.geom), ST_YMin(g.geom), ST_XMax(g.geom), ST_YMax(g.geom)
                                    FROM grids g WHERE g.valid_to IS NULL ORDER BY g.id""")).all()
        rng = np.random.default_rng(seed)
        fixes = 8 * 3600 // 10
        start = datetime(today.year, today.month, today.day, 0, 0, tzinfo=UTC)  # 08:00 Beijing
        for k in range(tracks):
            g = grids[int(rng.integers(len(grids)))]
            x0, y0, x1, y1 = g[2], g[3], g[4], g[5]
            step = 12.0 / 100000  # ~12 m per 10 s in degrees (walking pace)
            xy = np.empty((fixes, 2))
            xy[0] = (rng.uniform(x0, x1), rng.uniform(y0, y1))
            ang = rng.uniform(0, 2 * np.pi)
            for i in range(1, fixes):
                ang += rng.normal(0, 0.6)
                nx, ny = xy[i - 1] + step * np.array([np.cos(ang), np.sin(ang)])
                if not (x0 <= nx <= x1 and y0 <= ny <= y1):
                    ang += np.pi
                    nx, ny = xy[i - 1]
                xy[i] = (nx, ny)
            wkt = "LINESTRING(" + ",".join(f"{x:.7f} {y:.7f}" for x, y in xy) + ")"
            c.execute(text("""
                INSERT INTO patrol_tracks (district_code, cadre_no, day, started_at, ended_at, fixes, active_s, length_m,
                                           grid_ids, community_codes, geom)
                SELECT g.district_code, 'B' || :k, :day, :s, :e, :n, 28790, 34000,
                       ARRAY(SELECT x.id FROM grids x WHERE x.valid_to IS NULL AND x.geom && ST_Expand(t.geom, 0.0005)
                              AND ST_DWithin(x.geom::geography, t.geom::geography, 30)),
                       ARRAY(SELECT DISTINCT x.community_code FROM grids x WHERE x.valid_to IS NULL AND x.geom && ST_Expand(t.geom, 0.0005)
                              AND ST_DWithin(x.geom::geography, t.geom::geography, 30)),
                       t.geom
                  FROM (SELECT ST_SetSRID(ST_GeomFromText(:wkt), 4326) AS geom) t, grids g WHERE g.id = :g"""),
                      {"k": k, "day": today, "s": start, "e": start + timedelta(hours=8), "n": fixes, "wkt": wkt, "g": g[0]})
        c.execute(text("ANALYZE persons; ANALYZE person_groups; ANALYZE visits; ANALYZE patrol_tracks"))
        counts = c.execute(text("""SELECT (SELECT count(*) FROM persons), (SELECT count(*) FROM visits),
                                          (SELECT count(*) FROM patrol_tracks), (SELECT count(*) FROM grids WHERE valid_to IS NULL)""")).one()
    log(f"  people loaded in {time.perf_counter() - t0:.1f} s: persons {counts[0]:,}, visits {counts[1]:,}, "
        f"tracks {counts[2]:,}, grids {counts[3]:,}")
    return {"persons": int(counts[0]), "visits": int(counts[1]), "tracks": int(counts[2]), "grids": int(counts[3])}


def _load_city(buildings: int, tmp: Path, log=print) -> None:
    """``bench.bench_map.load_city``, with the communities capped at the sub-district's 999 (3-digit
    community codes): 20,000 grids at the default 12 a community would need 1,667."""
    from bench.scale import LAYERS, generate, write_gpkg
    from bench.common import LAYER_TABLES
    from gis.db import owner_engine
    from layers.importer import import_file

    t0 = time.perf_counter()
    grids = max(1, buildings // 20)
    frames = generate(buildings=buildings, communities=min(999, max(1, -(-grids // 12))))
    gpkg = write_gpkg(frames, tmp / f"city_{buildings}.gpkg")
    with owner_engine().begin() as c:
        c.execute(text(f"TRUNCATE {LAYER_TABLES} RESTART IDENTITY CASCADE"))
    for layer in LAYERS:
        import_file(layer, gpkg, source_layer=layer)
    with owner_engine().begin() as c:
        c.execute(text("ANALYZE"))
        n = dict(c.execute(text("SELECT 'buildings', count(*) FROM buildings UNION ALL SELECT 'grids', count(*) FROM grids "
                                "UNION ALL SELECT 'roads', count(*) FROM roads UNION ALL SELECT 'communities', count(*) FROM communities")).all())
    log(f"  city of {buildings:,} buildings generated and imported in {time.perf_counter() - t0:.1f} s: {n}")


def pandas_overdue(today: date) -> tuple[float, float, pd.DataFrame]:
    """Baseline: the tables read as the owner, the schedule computed by pandas."""
    from gis.scope import SYSTEM, use_scope

    t0 = time.perf_counter()
    with use_scope(SYSTEM), _system_owner() as c:
        p = pd.read_sql(text("SELECT id, grid_id, registered_at, status, anonymised_at FROM persons"), c)
        g = pd.read_sql(text("SELECT person_id, group_code, risk_grade FROM person_groups"), c)
        iv = pd.read_sql(text("SELECT group_code, risk_min, risk_max, interval_days FROM visit_intervals"), c)
        v = pd.read_sql(text("SELECT person_id, max(visited_at) AS last FROM visits WHERE outcome = 'met' GROUP BY 1"), c)
        codes = pd.read_sql(text("SELECT id AS grid_id, code FROM grids"), c)
    t1 = time.perf_counter()
    m = g.merge(iv, on="group_code")
    m = m[(m["risk_grade"].fillna(0) >= m["risk_min"]) & (m["risk_grade"].fillna(0) <= m["risk_max"])]
    days = m.groupby("person_id")["interval_days"].min()
    p = p[(p["status"] == "resident") & p["anonymised_at"].isna()].set_index("id")
    p = p.join(days, how="inner").join(v.set_index("person_id"), how="left")
    base = p["last"].fillna(p["registered_at"]).dt.tz_convert("Asia/Shanghai").dt.date
    nxt = pd.to_datetime(base) + pd.to_timedelta(p["interval_days"], unit="D")
    p["overdue"] = nxt.dt.date < today
    per_grid = p.groupby("grid_id")["overdue"].sum().reset_index().merge(codes, on="grid_id")
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, per_grid[["code", "overdue"]]


def geopandas_coverage(day: date, distance: float, srid: int) -> tuple[float, pd.DataFrame]:
    import geopandas as gpd

    from gis.scope import SYSTEM, use_scope

    t0 = time.perf_counter()
    with use_scope(SYSTEM), _system_owner() as c:
        b = gpd.read_postgis(text("SELECT id, grid_id, households, geom FROM buildings WHERE grid_id IS NOT NULL"), c, geom_col="geom")
        t = gpd.read_postgis(text("SELECT id, grid_ids, geom FROM patrol_tracks WHERE day = :d"), c, geom_col="geom", params={"d": day})
    b, t = b.to_crs(srid), t.to_crs(srid)
    t["geom"] = t.geometry.buffer(distance)
    tt = t.explode(column="grid_ids").rename(columns={"grid_ids": "grid_id"}).set_geometry("geom")
    hit = gpd.sjoin(b, tt, predicate="intersects")
    hit = hit[hit["grid_id_left"] == hit["grid_id_right"]]
    covered = b[b["id"].isin(hit["id_left"].unique())].groupby("grid_id")["households"].sum()
    return time.perf_counter() - t0, covered.rename("covered").reset_index()


def run(buildings: int, persons: int, visits_per_person: int, tracks: int, repeat: int, load: bool, log=print,
        baseline_tracks: int | None = 50) -> dict:
    from analysis.visits import today as beijing_today
    from gis.db import app_engine
    from gis.measure import metric_srid
    from gis.scope import SYSTEM, Scope, use_scope

    check_database(False, "people_bench")
    today = beijing_today()
    if load:
        with tempfile.TemporaryDirectory() as tmp:
            _load_city(buildings, Path(tmp), log=log)
    sizes = load_people(persons, visits_per_person, tracks, today, log=log)
    out: dict = {**sizes, "buildings": buildings, "repeat": repeat, "rows": []}
    leader = Scope(user="bench_leader", role="leader")
    app = app_engine()

    # 1. overdue: the list (logged) and the per-grid counts, against pandas
    def overdue_list():
        with use_scope(SYSTEM), _system_owner() as c:
            return c.execute(text("SELECT count(*) FROM people_list(NULL, NULL, :d, 'bench')"), {"d": today - timedelta(days=1)}).scalar_one()

    def overdue_counts():
        with use_scope(leader), app.begin() as c:
            return pd.read_sql(text("SELECT code, overdue FROM people_counts('grid', :d)"), c, params={"d": today})

    list_s, n_list = _time(overdue_list, repeat)
    counts_s, ours = _time(overdue_counts, repeat)
    runs = [pandas_overdue(today) for _ in range(repeat)]
    read_s = statistics.median(r[0] for r in runs)
    calc_s = statistics.median(r[1] for r in runs)
    theirs = runs[-1][2]
    merged = ours.merge(theirs, on="code", how="outer", suffixes=("_db", "_pd")).fillna(0)
    equal = bool((merged["overdue_db"].astype(int) == merged["overdue_pd"].astype(int)).all())
    out["rows"].append({"what": "overdue per grid (leader, people_counts) vs pandas", "ours_s": round(counts_s, 3),
                        "pandas_read_s": round(read_s, 3), "pandas_compute_s": round(calc_s, 3),
                        "baseline_s": round(read_s + calc_s, 3), "grids": len(ours), "equal": equal,
                        "overdue": int(ours["overdue"].sum())})
    out["rows"].append({"what": "sub-district overdue list (every row logged)", "ours_s": round(list_s, 3), "rows": int(n_list)})
    log(f"  overdue counts: db {counts_s:.3f} s vs pandas read {read_s:.3f} s + compute {calc_s:.3f} s; equal={equal}; "
        f"list of {n_list:,} overdue persons (logged) {list_s:.3f} s")

    # 2. patrol coverage against geopandas
    with use_scope(SYSTEM), _system_owner() as c:
        srid = metric_srid(c)

    def cov():
        with use_scope(SYSTEM), _system_owner() as c:
            return pd.read_sql(text("SELECT grid_id, households_covered FROM patrol_coverage(:d, :d, 30)"), c, params={"d": today})

    cov_s, ours_cov = _time(cov, repeat)
    out["rows"].append({"what": "patrol coverage, every grid, all tracks of the day (patrol_coverage)", "ours_s": round(cov_s, 3),
                        "grids": len(ours_cov), "grids_covered": int((ours_cov["households_covered"] > 0).sum()),
                        "tracks": sizes["tracks"]})
    log(f"  patrol coverage of {sizes['tracks']:,} tracks: db {cov_s:.3f} s; grids covered {int((ours_cov['households_covered'] > 0).sum()):,}")
    # The geopandas baseline buffers each self-crossing 8-hour track (2,880 vertices): ~2 s a
    # track, so at the 2,000 tracks it would run for hours. It runs on a sample of the
    # tracks, copied onto the day before (the same INSERT, the trigger cuts their segments),
    # and ours is timed on that same day: ratio and equality on the same tracks.
    n_sample = min(baseline_tracks, sizes["tracks"]) if baseline_tracks else sizes["tracks"]
    sample_day = today - timedelta(days=1)
    with use_scope(SYSTEM), _system_owner() as c:
        c.execute(text("DELETE FROM patrol_tracks WHERE day = :d"), {"d": sample_day})
        c.execute(text("""
            INSERT INTO patrol_tracks (district_code, cadre_no, day, started_at, ended_at, fixes, active_s, length_m,
                                       grid_ids, community_codes, geom)
            SELECT district_code, cadre_no, :d, started_at - interval '1 day', ended_at - interval '1 day', fixes, active_s,
                   length_m, grid_ids, community_codes, geom
              FROM patrol_tracks WHERE day = :t ORDER BY id LIMIT :n"""), {"d": sample_day, "t": today, "n": n_sample})
        c.execute(text("ANALYZE patrol_tracks; ANALYZE patrol_segments"))

    def cov_sample():
        with use_scope(SYSTEM), _system_owner() as c:
            return pd.read_sql(text("SELECT grid_id, households_covered FROM patrol_coverage(:d, :d, 30)"), c, params={"d": sample_day})

    cs_s, ours_s_cov = _time(cov_sample, repeat)
    gp_repeat = 1 if n_sample < sizes["tracks"] else repeat
    gp = [geopandas_coverage(sample_day, 30.0, srid) for _ in range(gp_repeat)]
    gp_s, theirs_cov = statistics.median(g[0] for g in gp), gp[-1][1]
    m = ours_s_cov.merge(theirs_cov, on="grid_id", how="left").fillna(0)
    differ = int((m["households_covered"].astype(int) != m["covered"].astype(int)).sum())
    out["rows"].append({"what": f"patrol coverage, every grid, {n_sample:,} tracks (patrol_coverage) vs geopandas buffer+sjoin",
                        "ours_s": round(cs_s, 3), "baseline_s": round(gp_s, 3), "baseline_repeat": gp_repeat,
                        "grids": len(ours_s_cov), "grids_covered": int((ours_s_cov["households_covered"] > 0).sum()),
                        "grids_differing": differ, "tracks": n_sample, "sample_of": sizes["tracks"]})
    log(f"  patrol coverage of a sample of {n_sample:,} tracks: db {cs_s:.3f} s vs geopandas {gp_s:.3f} s; grids differing {differ}")

    # 3. access logging on a worker's list: with the log (people_list) and without (the same SELECT)
    with use_scope(SYSTEM), _system_owner() as c:
        grid = int(c.execute(text("SELECT grid_id FROM persons GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")).scalar_one())
    worker = Scope(user="bench_worker", role="worker", grids=(grid,))

    def with_log():
        with use_scope(worker), app.begin() as c:
            return len(c.execute(text("SELECT * FROM people_list(:g, NULL, NULL, 'bench')"), {"g": grid}).all())

    def without_log():
        with use_scope(worker), _system_owner() as c:  # the owner, bound by the same forced policies, no log
            return len(c.execute(text("""
                SELECT p.id, p.community_code, p.grid_id, g.code, p.building_id, b.address, p.household_no, p.name, p.sex,
                       p.birth_date, p.id_masked, p.phone_masked, p.separated, p.floating, p.arrival_date, p.status,
                       s.groups, s.risk_grade, s.interval_days, p.last_visit_at, s.next_visit
                  FROM persons p LEFT JOIN grids g ON g.id = p.grid_id LEFT JOIN buildings b ON b.id = p.building_id
                  LEFT JOIN person_schedule s ON s.person_id = p.id
                 WHERE p.anonymised_at IS NULL AND p.grid_id = :g ORDER BY s.next_visit NULLS LAST, p.id"""), {"g": grid}).all())

    reps = max(repeat * 5, 10)
    w_s, n_w = _time(with_log, reps)
    wo_s, n_wo = _time(without_log, reps)
    out["rows"].append({"what": "worker's person list: with access log vs without", "ours_s": round(w_s, 4),
                        "baseline_s": round(wo_s, 4), "rows": int(n_w), "rows_equal": n_w == n_wo})
    log(f"  worker list of {n_w} persons: with log {w_s * 1000:.1f} ms, without {wo_s * 1000:.1f} ms")
    out["date"], out["commit"] = datetime.now(UTC).isoformat(timespec="seconds"), commit(("layers/people.py", "analysis", "migrations",
                                                                                          "bench/bench_people.py"))
    common.save("people", out, (
        [out["date"], f"people:{r['what']}", out["commit"], sizes["persons"], repeat, r.get("baseline_s", ""), r["ours_s"],
         round(r["baseline_s"] / r["ours_s"], 2) if r.get("baseline_s") and r["ours_s"] else "", "", "",
         r.get("equal", r.get("rows_equal", ""))]
        for r in out["rows"]))
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--buildings", type=int, default=40_000)
    p.add_argument("--persons", type=int, default=100_000)
    p.add_argument("--visits-per-person", type=int, default=4)
    p.add_argument("--tracks", type=int, default=200)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--baseline-tracks", type=int, default=50,
                   help="tracks the geopandas baseline buffers (a sample: ~2 s a track); 0 = all")
    p.add_argument("--no-load", action="store_true", help="use the city already in the database")
    p.add_argument("--full", action="store_true", help="the issue's sizes: 400,000 buildings (20,000 grids), "
                                                       "1,000,000 persons, 4,000,000 visits, 2,000 tracks")
    a = p.parse_args(argv)
    if a.full:
        a.buildings, a.persons, a.visits_per_person, a.tracks = 400_000, 1_000_000, 4, 2_000
    return run(a.buildings, a.persons, a.visits_per_person, a.tracks, a.repeat, not a.no_load, baseline_tracks=a.baseline_tracks)


if __name__ == "__main__":
    main()
