"""Before and after, on the city already in the database: the spatial joins that did not scale
because every layer table forces row-level security (PostgreSQL uses no index under a qual whose
operator is not leakproof while a policy applies, and PostGIS's ``&&``/``ST_DWithin``/
``ST_Intersects`` are not), each in its old form against its new one, in the same run.

- camera obstacles (footprints within each camera's range): per camera a scan of every footprint
  (before) against one scan probing a temporary table of the cameras (after: analysis.runs.probe_table);
- unit fingerprints (roads, footprints, facilities in each grid): per grid three scans (before)
  against one scan of each layer probing a temporary table of the grids;
- facility hosts (the building each facility stands in): per facility a scan of every footprint;
- one edit's place queries (homes within 1,001 m of a facility, the roads around it): a scan of the
  table (before) against the B-tree on box centres of migration 0025 (after: analysis.runs.window);
- the import's facility placement (community of each new facility): every facility against every
  community outline (before) against a temporary copy of the outlines with its GiST index.

The "before" forms that read a table once per probe are run on a sample (``--sample`` cameras,
grids, facilities) and their cost per probe is multiplied out to the whole city (marked
``extrapolated``); the "after" forms run on the same sample and on the whole city. Every pair is
checked to give the same answer. Nothing is written (each step rolls back).

    WANGGE_DB_NAME=wangge_city_cov_bench python -m bench.bench_city_joins [--sample 20]

Writes bench/results/city_joins_<size>.json (the size of the city in the database: 100k, 1m).
"""
from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime

from sqlalchemy import text

from bench import common
from bench.common import check_database, commit, owner_engine


def _t(conn, sql: str, params: dict | None = None):
    t = time.perf_counter()
    rows = conn.execute(text(sql), params or {}).all()
    return time.perf_counter() - t, rows


def run(sample: int, record: bool, allow_any_db: bool, log=print) -> dict:
    from analysis import cameras, services
    from analysis.cameras import NEAR_CAMERA, UNIT_FP
    from analysis.runs import UNITS_SQL, window
    from gis.measure import metric_srid

    database = check_database(allow_any_db, "wangge_cov_bench")
    out: dict = {"benchmark": "city_joins", "date": datetime.now(UTC).isoformat(timespec="seconds"),
                 "commit": commit(("analysis", "layers", "migrations", "bench/bench_city_joins.py")), "database": database,
                 "sample": sample, "load_average": [round(x, 2) for x in os.getloadavg()], "steps": {}}
    eng = owner_engine()
    with eng.connect() as c:
        counts = dict(c.execute(text("""SELECT 'buildings', count(*) FROM buildings UNION ALL SELECT 'roads', count(*) FROM roads
            UNION ALL SELECT 'cameras', count(*) FROM cameras UNION ALL SELECT 'facilities', count(*) FROM facilities
            UNION ALL SELECT 'grids', count(*) FROM grids UNION ALL SELECT 'communities', count(*) FROM communities""")).all())
    out["city"] = {k: int(v) for k, v in counts.items()}
    log(f"city: {out['city']}")

    def step(name: str, before_s: float, after_sample_s: float, after_all_s: float | None, probes: int, total: int, same: bool) -> None:
        per = before_s / max(probes, 1)
        rec = {"probes_sampled": probes, "before_sample_s": round(before_s, 3), "after_sample_s": round(after_sample_s, 3),
               "before_whole_city_s_extrapolated": round(per * total, 1), "after_whole_city_s": None if after_all_s is None else round(after_all_s, 3),
               "probes_whole_city": total, "same_answer": same}
        out["steps"][name] = rec
        log(f"{name}: before {before_s:.3f} s for {probes} ({per * total:.0f} s for all {total:,}, extrapolated), after {after_sample_s:.3f} s "
            f"for the same {probes}" + (f", {after_all_s:.2f} s for all" if after_all_s is not None else "") + f"; same answer: {same}")

    # --- camera obstacles
    with eng.begin() as c:
        ranges = dict(c.execute(text("SELECT camera_id, range_m FROM camera_views WHERE detail_level = 'observation' ORDER BY camera_id")).all())
        ids = list(ranges)[:: max(1, len(ranges) // sample)][:sample]
        sub = {i: float(ranges[i]) for i in ids}
        before, rows = _t(c, f"""
            SELECT k.id, md5(coalesce(string_agg(b.id || ':' || md5(b.geom::text), ',' ORDER BY b.id), ''))
            FROM unnest(CAST(:ids AS bigint[]), CAST(:rs AS float8[])) AS q(id, r) JOIN cameras k ON k.id = q.id
            LEFT JOIN buildings b ON {NEAR_CAMERA.format(r='q.r')} GROUP BY k.id""", {"ids": list(sub), "rs": list(sub.values())})
        t = time.perf_counter()
        new = cameras._obstacles_fp(c, sub)
        after = time.perf_counter() - t
        t = time.perf_counter()
        cameras._obstacles_fp(c, {int(k): float(v) for k, v in ranges.items()})
        after_all = time.perf_counter() - t
        step("camera_obstacles", before, after, after_all, len(sub), len(ranges), {int(i): fp for i, fp in rows} == new)
        c.rollback()

    # --- unit fingerprints
    with eng.begin() as c:
        codes = [r[0].strip() for r in c.execute(text(f"SELECT u.code FROM ({UNITS_SQL}) u ORDER BY u.code")).all()]
        some = codes[:: max(1, len(codes) // sample)][:sample]
        before, rows = _t(c, f"SELECT u.code, {UNIT_FP} FROM ({UNITS_SQL}) u WHERE u.code = ANY(:codes)", {"codes": some})
        t = time.perf_counter()
        new = cameras._unit_fps(c, some)
        after = time.perf_counter() - t
        t = time.perf_counter()
        cameras._unit_fps(c)
        after_all = time.perf_counter() - t
        step("unit_fingerprints", before, after, after_all, len(some), len(codes), {r[0].strip(): r[1] for r in rows} == new)
        c.rollback()

    # --- facility hosts
    with eng.begin() as c:
        srid = metric_srid(c)
        fids = [r[0] for r in c.execute(text("SELECT id FROM facilities WHERE category = ANY(:c) ORDER BY id"), {"c": services.categories()}).all()]
        some = fids[:: max(1, len(fids) // sample)][:sample]
        before, rows = _t(c, """SELECT f.id, min(b.id) FROM facilities f JOIN buildings b ON ST_Intersects(b.geom, f.geom)
                                WHERE f.id = ANY(:ids) GROUP BY f.id""", {"ids": some})
        t = time.perf_counter()
        new = services._facilities(c, srid, "f.id = ANY(:ids)", {"ids": some})
        after = time.perf_counter() - t
        t = time.perf_counter()
        services._facilities(c, srid)
        after_all = time.perf_counter() - t
        got = {int(i): int(h) for i, h in zip(new["id"], new["host_id"]) if h == h and h is not None}
        step("facility_hosts", before, after, after_all, len(some), len(fids), {int(i): int(h) for i, h in rows} == got)
        c.rollback()

    # --- one edit's place queries
    with eng.begin() as c:
        fac, x, y = c.execute(text(f"""SELECT id, ST_X(ST_Transform(geom, {srid})), ST_Y(ST_Transform(geom, {srid})) FROM facilities
                                       ORDER BY geom <-> (SELECT ST_Centroid(geom) FROM subdistricts LIMIT 1) LIMIT 1""")).one()
        near = """SELECT b.id FROM facilities p JOIN buildings b ON ST_DWithin(b.geom_3857, ST_Transform(p.geom, 3857), 1001 / cos(radians(ST_Y(p.geom))))
                  WHERE p.id = :f AND {w} ORDER BY b.id"""
        before, rows_b = _t(c, near.format(w="TRUE"), {"f": fac})
        t = time.perf_counter()
        w, wp = window(c, "buildings", "b", (x - 1003, y - 1003, x + 1003, y + 1003), srid)
        _, rows_a = _t(c, near.format(w=w), {"f": fac, **wp})
        after = time.perf_counter() - t
        step("edit_homes_near_a_facility", before, after, None, 1, 1, rows_a == rows_b)
        box = dict(x0=x - 1300, y0=y - 1300, x1=x + 1300, y1=y + 1300)
        env = f"r.geom && ST_Transform(ST_MakeEnvelope(:x0, :y0, :x1, :y1, {srid}), 4326)"
        before, rows_b = _t(c, f"SELECT r.id FROM roads r WHERE r.walkable AND {env} ORDER BY r.id", box)
        t = time.perf_counter()
        w, wp = window(c, "roads", "r", (box["x0"], box["y0"], box["x1"], box["y1"]), srid)
        _, rows_a = _t(c, f"SELECT r.id FROM roads r WHERE r.walkable AND {w} AND {env} ORDER BY r.id", {**box, **wp})
        after = time.perf_counter() - t
        step("edit_roads_around_a_facility", before, after, None, 1, 1, rows_a == rows_b)
        c.rollback()

    # --- the import's facility placement
    with eng.begin() as c:
        c.execute(text("UPDATE facilities SET community_code = NULL"))
        before, _ = _t(c, """UPDATE facilities f SET community_code = c.code FROM communities c
                             WHERE f.community_code IS NULL AND ST_Contains(c.geom, f.geom) RETURNING f.id, c.code""")
        placed_before = dict(c.execute(text("SELECT id, community_code FROM facilities")).all())
        c.execute(text("UPDATE facilities SET community_code = NULL"))
        t = time.perf_counter()
        c.execute(text("CREATE TEMP TABLE _co ON COMMIT DROP AS SELECT code, geom FROM communities"))
        c.execute(text("CREATE INDEX ON _co USING gist (geom)"))
        c.execute(text("ANALYZE _co"))
        c.execute(text("""UPDATE facilities f SET community_code = c.code FROM _co c
                          WHERE f.community_code IS NULL AND ST_Contains(c.geom, f.geom)"""))
        after = time.perf_counter() - t
        placed_after = dict(c.execute(text("SELECT id, community_code FROM facilities")).all())
        step("import_facility_communities", before, after, after, counts["facilities"], counts["facilities"], placed_before == placed_after)
        c.rollback()
    if record:
        n = out["city"]["buildings"]
        label = f"{n // 1_000_000}m" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k"
        common.save(f"city_joins_{label}", out, [[out["date"], f"city_joins:{k}", out["commit"], out["city"]["buildings"], 1,
                                         v["before_whole_city_s_extrapolated"], v["after_whole_city_s"] or v["after_sample_s"], "", "", "",
                                         v["same_answer"]] for k, v in out["steps"].items()])
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_city_joins", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sample", type=int, default=20)
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--allow-any-db", action="store_true")
    args = ap.parse_args(argv)
    return run(args.sample, not args.no_record, args.allow_any_db)


if __name__ == "__main__":
    main()
