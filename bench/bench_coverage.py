"""The whole coverage analysis of a generated city (bench/scale.py): camera views with line
of sight and their coverage per grid, walking distances to every facility category,
compliance — against a straightforward geopandas implementation (shapely sectors minus
footprints, overlays, straight-line nearest) in the same run, on the same rows.

Also measured: one edited camera / facility (the incremental path), the staleness checks,
and the network choice: our walk (Python heap Dijkstra on a noded graph) against
pgRouting's ``pgr_drivingDistance`` from the same nodes (per start, min over starts; and
with ``equicost``), with the largest disagreement.

    WANGGE_DB_NAME=wangge_cov_bench python -m bench.bench_coverage               # the target city
    WANGGE_DB_NAME=wangge_cov_bench python -m bench.bench_coverage --scale 0.1 0.3 1  # scaling

Target: 100,000 buildings, 10,000 cameras, 1,000 facilities, 50,000 road edges; whole
analysis under 60 s. Writes bench/results/coverage.json and a line per size to
bench/results/history.csv (format of bench/bench_import.py).
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import time
from datetime import UTC, datetime

from bench import common
from bench.common import LAYER_TABLES, check_database, commit, owner_engine, peak_mb

COVERAGE_TABLES = ("coverage_runs, camera_views, camera_coverage, camera_key_places, service_buildings, service_facilities, "
                   "compliance_results")
TARGET = dict(buildings=100_000, cameras=10_000, facilities=1_000, roads=50_000)


def load_city(sizes: dict, seed: int, log=print) -> dict:
    """Generate the city and import it through the real importers (one transaction)."""
    from sqlalchemy import text

    from bench.scale import generate
    from gis.crs import SourceCRS
    from layers.base import ImportContext
    from layers.importer import import_frame, layer_spec

    t0 = time.perf_counter()
    frames = generate(buildings=sizes["buildings"], cameras=sizes["cameras"], facilities=sizes["facilities"],
                      roads=sizes["roads"], seed=seed)
    generated = time.perf_counter() - t0
    with owner_engine().begin() as conn:
        conn.execute(text(f"TRUNCATE {LAYER_TABLES}, {COVERAGE_TABLES} RESTART IDENTITY CASCADE"))
        for name, gdf in frames.items():
            ctx = ImportContext(file=f"city[{name}]", district_code="420106")
            import_frame(layer_spec(name), gdf, SourceCRS(gdf.crs), ctx, conn, actor="bench")
    loaded = time.perf_counter() - t0 - generated
    # statistics, as autovacuum gives a committed import within a minute: the analyses' plans
    # should not depend on how soon they run after the load
    t1 = time.perf_counter()
    with owner_engine().connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    analyzed = time.perf_counter() - t1
    counts = {k: len(v) for k, v in frames.items()}
    log(f"city: {counts} generated in {generated:.1f} s, imported in {loaded:.1f} s, analyzed in {analyzed:.1f} s", flush=True)
    return {"counts": counts, "generate_s": round(generated, 2), "import_s": round(loaded, 2), "analyze_s": round(analyzed, 2)}


# --- ours ----------------------------------------------------------------------------------

def run_ours(detail: str, log=print, lean: bool = False) -> dict:
    from sqlalchemy import text

    from analysis import cameras, compliance, services

    out: dict = {"cameras_parts": {}, "services_parts": {}}
    t0 = time.perf_counter()
    with owner_engine().begin() as conn:
        cam = cameras.refresh(conn, detail, full=True, timings=out["cameras_parts"])
        t1 = time.perf_counter()
        log(f"  cameras (full) {t1 - t0:.1f} s {out['cameras_parts']}", flush=True)
        srv = services.refresh(conn, full=True, timings=out["services_parts"])
        t2 = time.perf_counter()
        log(f"  services (full) {t2 - t1:.1f} s {out['services_parts']}", flush=True)
        compliance.refresh(conn)
        t3 = time.perf_counter()
    out.update(cameras_s=round(t1 - t0, 2), services_s=round(t2 - t1, 2), compliance_s=round(t3 - t2, 2), total_s=round(t3 - t0, 2))
    if lean:  # the full recompute and one edit's refresh only (the figures' reads and city-wide checks skipped)
        with owner_engine().begin() as conn:
            out["edits"] = one_edit_each(conn, detail)
        log(f"ours: cameras {out['cameras_s']} s {out['cameras_parts']}, services {out['services_s']} s {out['services_parts']}, "
            f"compliance {out['compliance_s']} s; total {out['total_s']} s")
        log("one edit, all three analyses: " + ", ".join(f"{k} {v['seconds']} s" for k, v in out["edits"].items()))
        return out
    with owner_engine().begin() as conn:
        sub = cameras.coverage(conn, detail, scope="subdistrict").iloc[0]
        cats = services.category_coverage(conn)
        circles = services.life_circle_coverage(conn)
        out["figures"] = {
            "road_share": float(sub.road_share), "inner_road_share": float(sub.inner_road_share),
            "open_share": float(sub.open_share), "facade_share": float(sub.facade_share),
            "key_places": f"{int(sub.key_places_covered)}/{int(sub.key_places)}",
            "services_beyond": {r.category: {"network": int(r.households_beyond_network), "straight": int(r.households_beyond_straight),
                                             "households": int(r.households)}
                                for r in cats[cats.scope == "subdistrict"].itertuples()},
            "life_circles": {r.circle: {"network": float(r.share_network), "straight": float(r.share_straight)}
                             for r in circles[circles.scope == "subdistrict"].itertuples()},
            "graph": {"edges": srv.get("edges"), "nodes": srv.get("nodes"), "homes": srv.get("homes")},
        }
        # One edited camera, one edited facility: the incremental path, then the staleness checks.
        cam_id = conn.execute(text("SELECT camera_id FROM camera_views WHERE shape = 'sector' AND counted ORDER BY camera_id LIMIT 1")).scalar_one()
        conn.execute(text("UPDATE cameras SET azimuth = (azimuth::numeric + 90) % 360, direction_type = NULL WHERE id = :i"), {"i": cam_id})
        t = time.perf_counter()
        st = cameras.stale_views(conn, detail)
        out["stale_views_check_s"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        us = cameras.stale_units(conn, detail, views=st)
        out["stale_units_check_s"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        ran = cameras.refresh(conn, detail, cameras=[cam_id])
        out["one_camera_s"] = round(time.perf_counter() - t, 3)
        out["one_camera_units"] = len(ran["units"])
        out["one_camera_stale_units_flagged"] = int(us.stale.sum())
        fac = conn.execute(text("SELECT id FROM facilities WHERE status = 'open' AND category = 'kindergarten' ORDER BY id LIMIT 1")).scalar_one()
        conn.execute(text("UPDATE facilities SET geom = ST_Transform(ST_Translate(ST_Transform(geom, 4547), 120, 60), 4326) WHERE id = :i"), {"i": fac})
        t = time.perf_counter()
        sst = services.stale(conn)
        out["services_stale_check_s"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        ran = services.refresh(conn, facilities=[fac])
        out["one_facility_s"] = round(time.perf_counter() - t, 3)
        out["one_facility_homes_walked"] = ran["homes_walked"]
        out["one_facility_grids_flagged"] = int(sst[sst.scope == "grid"].stale.sum())
        out["edits"] = one_edit_each(conn, detail)
    log(f"ours: cameras {out['cameras_s']} s {out['cameras_parts']}, services {out['services_s']} s {out['services_parts']}, "
        f"compliance {out['compliance_s']} s; total {out['total_s']} s; one camera {out['one_camera_s']} s, one facility {out['one_facility_s']} s")
    log("one edit, all three analyses: " + ", ".join(f"{k} {v['seconds']} s" for k, v in out["edits"].items()))
    return out


def one_edit_each(conn, detail: str) -> dict:
    """Issue 18's edits, each followed by ``refresh_after_edit`` (cameras, services and
    compliance; only what the edit can reach): move one camera, add one facility, change one
    building's households, move one footprint. Timed whole, with the parts and what was redone."""
    from sqlalchemy import text

    from analysis.coverage_edits import refresh_after_edit

    out = {}

    def timed(name: str, **ids) -> None:
        parts: dict = {}
        t = time.perf_counter()
        ran = refresh_after_edit(conn, detail=detail, timings=parts, **ids)
        out[name] = {"seconds": round(time.perf_counter() - t, 3), "parts": parts,
                     "cameras_redone": ran.get("cameras", {}).get("cameras", 0),
                     "units_remeasured": len(ran.get("cameras", {}).get("units", [])),
                     "homes_walked": ran.get("services", {}).get("homes_walked", 0),
                     "communities": len(ran.get("compliance", {}).get("communities", []))}

    centre = "(SELECT ST_Centroid(geom) FROM subdistricts LIMIT 1)"
    cam = conn.execute(text(f"SELECT id FROM cameras WHERE status = 'online' ORDER BY geom <-> {centre} LIMIT 1")).scalar_one()
    conn.execute(text("""UPDATE cameras SET azimuth = (coalesce(azimuth, 0)::numeric + 45) % 360, direction_type = NULL,
                         geom = ST_Transform(ST_Translate(ST_Transform(geom, 4547), 3, 2), 4326) WHERE id = :i"""), {"i": cam})
    timed("move_one_camera", cameras=[cam])
    host = conn.execute(text(f"SELECT id FROM buildings WHERE households > 0 ORDER BY geom <-> {centre} LIMIT 1")).scalar_one()
    fac = conn.execute(text("""
        INSERT INTO facilities (source_id, district_code, community_code, name, category, floor_area, capacity, status, geom)
        SELECT 'F-BENCH-EDIT', b.district_code, b.community_code, '新幼儿园', 'kindergarten', 2000, 200, 'open', ST_PointOnSurface(b.geom)
        FROM buildings b WHERE b.id = :h RETURNING id"""), {"h": host}).scalar_one()
    timed("add_one_facility", facilities=[fac])
    b = conn.execute(text(f"SELECT id FROM buildings WHERE households > 0 AND id <> :h ORDER BY geom <-> {centre} LIMIT 1"), {"h": host}).scalar_one()
    conn.execute(text("UPDATE buildings SET households = households + 40, residents = residents + 100 WHERE id = :b"), {"b": b})
    timed("change_one_building", buildings=[b])
    old = conn.execute(text("SELECT ST_AsBinary(geom) FROM buildings WHERE id = :b"), {"b": b}).scalar_one()
    conn.execute(text("UPDATE buildings SET geom = ST_Transform(ST_Translate(ST_Transform(geom, 4547), 1, 0.5), 4326) WHERE id = :b"), {"b": b})
    timed("move_one_footprint", buildings=[b], before={b: bytes(old)})
    return out


# --- the straightforward geopandas implementation -------------------------------------------

def run_baseline(detail: str, log=print) -> dict:
    """Sectors built one by one with shapely, minus the footprints they touch (no line of
    sight: what lies behind a building counts as seen), coverage by geopandas overlays per
    grid, and straight-line nearest facilities with ``sjoin_nearest``."""
    import geopandas as gpd
    import numpy as np
    import shapely
    from sqlalchemy import text

    from analysis.services import radii
    from analysis.camera_views import DORI_PPM
    from gis.settings import get_settings

    s = get_settings()
    parts: dict = {}
    t = time.perf_counter()
    eng = owner_engine()
    srid = 4547
    read = lambda sql: gpd.read_postgis(text(sql), eng, geom_col="geom").to_crs(srid)
    cams = read("SELECT id, azimuth, hfov, max_view_distance, ptz_type, room_type, status, geom FROM cameras")
    blds = read("SELECT id, grid_id, households, use, geom FROM buildings")
    roads = read("SELECT id, geom FROM roads")
    grids = read("SELECT id, code, geom FROM grids WHERE valid_to IS NULL")
    facs = read("SELECT id, category, status, geom FROM facilities WHERE status = 'open'")
    parts["read"] = round(time.perf_counter() - t, 2)

    t = time.perf_counter()
    ppm = DORI_PPM[detail]
    sectors = []
    for r in cams.itertuples():
        hfov = r.hfov if r.hfov == r.hfov else s.camera_default_hfov
        rng = s.camera_sensor_width_px / (2 * ppm * math.tan(math.radians(hfov) / 2))
        if r.max_view_distance == r.max_view_distance:
            rng = min(rng, r.max_view_distance)
        c = r.geom
        if r.ptz_type == 1 or r.azimuth != r.azimuth:
            sectors.append(c.buffer(rng))
        else:
            a = np.radians(np.linspace(r.azimuth - hfov / 2, r.azimuth + hfov / 2, 32))
            sectors.append(shapely.Polygon([(c.x, c.y), *zip(c.x + rng * np.sin(a), c.y + rng * np.cos(a))]))
    views = gpd.GeoDataFrame({"cam": cams["id"], "online": cams["status"] == "online"}, geometry=sectors, crs=srid)
    hit = gpd.sjoin(views, blds[["geom"]], predicate="intersects")
    cut = hit.groupby(level=0)["index_right"].apply(lambda ix: shapely.union_all(blds.geometry.to_numpy()[blds.index.get_indexer(ix)]))
    views.loc[cut.index, "geometry"] = views.loc[cut.index].geometry.difference(gpd.GeoSeries(cut, crs=srid), align=True)
    parts["views"] = round(time.perf_counter() - t, 2)

    t = time.perf_counter()
    # Dissolved, then exploded so that overlay's spatial index has small polygons to work with
    # (intersecting every road with one city-wide union does not finish in minutes).
    seen = gpd.GeoDataFrame(geometry=[views[views["online"]].union_all()], crs=srid).explode(index_parts=False)
    parts["dissolve_views"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    road_in = gpd.overlay(roads, grids[["code", "geom"]], how="intersection", keep_geom_type=True)
    road_len = road_in.geometry.length.groupby(road_in["code"]).sum()
    road_seen = gpd.overlay(road_in, seen, how="intersection", keep_geom_type=True)
    road_cov = road_seen.geometry.length.groupby(road_seen["code"]).sum()
    parts["roads"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    open_space = gpd.overlay(grids[["code", "geom"]], blds[["geom"]], how="difference")
    open_seen = gpd.overlay(open_space, seen, how="intersection", keep_geom_type=True)
    open_cov = open_seen.geometry.area.groupby(open_seen["code"]).sum()
    parts["open_space"] = round(time.perf_counter() - t, 2)

    t = time.perf_counter()
    homes = blds[(blds.households > 0) | blds.use.isin(["residential", "mixed"])]
    beyond = {}
    for cat, radius in radii().items():
        mine = facs[facs.category == cat]
        if mine.empty:
            continue
        near = gpd.sjoin_nearest(homes[["households", "geom"]], mine[["geom"]], distance_col="d", max_distance=get_settings().service_search_max_m)
        near = near[~near.index.duplicated()]
        d = near["d"].reindex(homes.index)
        beyond[cat] = int(homes.loc[~(d <= radius), "households"].sum())
    parts["straight_line_services"] = round(time.perf_counter() - t, 2)
    total = round(sum(parts.values()), 2)
    figures = {"road_share_no_line_of_sight": round(float(road_cov.sum() / road_len.sum()), 4),
               "open_share_no_line_of_sight": round(float(open_cov.sum() / open_space.area.sum()), 4),
               "services_beyond_straight": beyond}
    log(f"baseline: {parts}; total {total} s")
    return {"parts": parts, "total_s": total, "figures": figures}


# --- which network engine -------------------------------------------------------------------

def compare_networks(log=print) -> dict:
    """Our walk and pgRouting's from the same facility nodes, per category: time and the
    largest distance difference."""
    import numpy as np
    from sqlalchemy import text

    from analysis import network, services
    from gis.measure import metric_srid

    out = {"categories": {}}
    with owner_engine().begin() as conn:
        srid = metric_srid(conn)
        t = time.perf_counter()
        g = network.load(conn, srid)
        out["graph_s"] = round(time.perf_counter() - t, 2)
        facs = services._facilities(conn, srid)
        facs = facs[facs.status == "open"]
        snap = network.snap(g, facs["reach"].to_numpy())
        cutoff = 1000.0
        t = time.perf_counter()
        network.pgr_nearest(conn, g, np.array([0]), 1.0)  # ship the topology once
        out["pgr_copy_edges_s"] = round(time.perf_counter() - t, 2)
        for cat in ("community_service_station", "kindergarten", "middle_school"):
            nodes = np.unique(g.u[snap.edge[(facs.category == cat).to_numpy()]])
            t = time.perf_counter()
            ours, _ = network._walk(g, [(0.0, int(n), 0) for n in nodes], cutoff)
            ours_s = time.perf_counter() - t
            t = time.perf_counter()
            rows = conn.execute(text("""SELECT node, min(agg_cost) FROM pgr_drivingDistance('SELECT id, source, target, cost, reverse_cost FROM walk_edges',
                                        CAST(:s AS bigint[]), :d, directed => false) GROUP BY node"""),
                                {"s": nodes.tolist(), "d": cutoff}).all()
            pgr_s = time.perf_counter() - t
            t = time.perf_counter()
            eq = conn.execute(text("""SELECT node, agg_cost FROM pgr_drivingDistance('SELECT id, source, target, cost, reverse_cost FROM walk_edges',
                                      CAST(:s AS bigint[]), :d, directed => false, equicost => true)"""),
                              {"s": nodes.tolist(), "d": cutoff}).all()
            eq_s = time.perf_counter() - t
            pgr = {int(n): float(c) for n, c in rows}
            equi = {int(n): float(c) for n, c in eq}
            reached = np.flatnonzero(np.isfinite(ours))
            out["categories"][cat] = {
                "sources": len(nodes), "nodes_reached": len(reached), "ours_s": round(ours_s, 3), "pgr_min_over_starts_s": round(pgr_s, 3),
                "pgr_equicost_s": round(eq_s, 3),
                "max_diff_pgr_m": round(max((abs(pgr[n] - ours[n]) for n in pgr), default=0.0), 4),
                "max_diff_equicost_m": round(max((abs(equi[n] - ours[n]) for n in equi), default=0.0), 2),
                "same_nodes": set(pgr) == set(int(n) for n in reached),
            }
    log(f"network: {out}")
    return out


# --- recording -------------------------------------------------------------------------------

def _versions() -> dict:
    import geopandas
    import shapely
    from sqlalchemy import text

    with owner_engine().connect() as c:
        pg = c.execute(text("SHOW server_version")).scalar_one()
        postgis = c.execute(text("SELECT postgis_lib_version()")).scalar_one()
        pgr = c.execute(text("SELECT pgr_version()")).scalar_one()
    return {"python": platform.python_version(), "postgresql": pg, "postgis": postgis, "pgrouting": pgr,
            "geopandas": geopandas.__version__, "shapely": shapely.__version__, "cpus": os.cpu_count(), "machine": platform.machine(),
            "load_average": os.getloadavg()}


def save(result: dict, name: str = "coverage") -> None:
    common.save(name, result, (
        [run.get("date", result["date"]), name, run.get("commit", result["commit"]), run["city"]["counts"]["buildings"], 1,
         run["baseline"]["total_s"] or "", run["ours"]["total_s"],
         round(run["baseline"]["total_s"] / run["ours"]["total_s"], 2) if run["baseline"]["total_s"] else "", "", run["peak_rss_mb"], ""]
        for run in result["runs"] if "commit" not in run))


def run(scales: list[float], detail: str, seed: int, record: bool, allow_any_db: bool, networks: bool, log=print,
        city_sizes: list[int] | None = None, baseline_max: int | None = None, lean_from: int | None = None) -> dict:
    from bench.scale import city_sizes as issue18

    database = check_database(allow_any_db, "wangge_cov_bench")
    runs = []
    plan = [(s, {k: max(1, int(round(v * s))) for k, v in TARGET.items()}) for s in scales] if city_sizes is None else \
        [(n / 1_000_000, {k: v for k, v in issue18(n).items() if k in TARGET}) for n in city_sizes]
    for scale, sizes in plan:
        load = [round(x, 2) for x in os.getloadavg()]
        log(f"=== scale {scale}: {sizes} (load average {load}) ===")
        city = load_city(sizes, seed, log)
        ours = run_ours(detail, log, lean=lean_from is not None and sizes["buildings"] >= lean_from)
        base = run_baseline(detail, log) if baseline_max is None or sizes["buildings"] <= baseline_max else \
            {"skipped": f"above --baseline-max {baseline_max}", "total_s": None, "parts": {}}
        entry = {"scale": scale, "sizes": sizes, "load_average_before": load, "city": city, "ours": ours, "baseline": base,
                 "peak_rss_mb": peak_mb(), "date": datetime.now(UTC).isoformat(timespec="seconds"),
                 "load_average_after": [round(x, 2) for x in os.getloadavg()]}
        if networks and scale == max(p[0] for p in plan):
            entry["network"] = compare_networks(log)
        runs.append(entry)
    result = {
        "benchmark": "coverage",
        "what": "camera views with line of sight + coverage per grid, walking distances per facility category, compliance; "
                "vs geopandas sectors minus footprints, overlays and straight-line sjoin_nearest",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit(("analysis", "bench/bench_coverage.py")), "database": database, "detail_level": detail, "runs": runs, "versions": _versions(),
        "target_s": 60,
    }
    if city_sizes is not None:
        result["what"] += "; issue 18 city proportions (bench.scale.city_sizes), plus one edit's refresh of all three"
        # sizes measured in an earlier run (10k and 100k run without the heavy lock, 1M under it)
        # are kept beside this run's, each with its own date, so one file shows the growth
        path = common.RESULTS / "coverage_city.json"
        if record and path.exists():
            import json

            old = json.loads(path.read_text())
            mine = {r["sizes"]["buildings"] for r in runs}
            for r in old.get("runs", []):
                if r["sizes"]["buildings"] not in mine:
                    r.setdefault("date", old.get("date"))
                    r.setdefault("commit", old.get("commit"))
                    runs.append(r)
            runs.sort(key=lambda r: r["sizes"]["buildings"])
            result["runs"] = runs
        result["target_s"] = 600
        result["aims"] = {"full_s": 600, "one_edit_s": 2.0}
        result["growth_per_10x"] = {
            f"{a['sizes']['buildings']:,}->{b['sizes']['buildings']:,}": {
                "full": round(b["ours"]["total_s"] / a["ours"]["total_s"], 2),
                **{k: round(b["ours"]["edits"][k]["seconds"] / a["ours"]["edits"][k]["seconds"], 2) for k in a["ours"]["edits"]}}
            for a, b in zip(runs, runs[1:])}
    if record:
        save(result, "coverage_city" if city_sizes is not None else "coverage")
    return result


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_coverage", description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, nargs="+", default=[1.0], help="fractions of the target city (default: 1)")
    ap.add_argument("--detail", default="observation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sizes", help="issue 18's city at these building counts (e.g. 10000,100000,1000000): "
                                    "a camera per 40 buildings, a facility per 250, a road edge per 2; writes results/coverage_city.json")
    ap.add_argument("--baseline-max", type=int, help="skip the geopandas baseline above this many buildings")
    ap.add_argument("--lean-from", type=int, help="from this many buildings, only the full recompute and the edits "
                                                  "(no figures read back, no city-wide staleness checks)")
    ap.add_argument("--no-network", action="store_true", help="skip the pgRouting comparison")
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--allow-any-db", action="store_true")
    args = ap.parse_args(argv)
    return run(sorted(args.scale), args.detail, args.seed, not args.no_record, args.allow_any_db, not args.no_network,
               city_sizes=None if not args.sizes else sorted(int(x) for x in args.sizes.split(",")), baseline_max=args.baseline_max,
               lean_from=args.lean_from)


if __name__ == "__main__":
    main()
