"""Importing buildings from a GeoPackage into PostGIS: ``layers.importer.import_file``
against ``geopandas.read_file(...).to_postgis(...)`` in the same run.

Fair by construction: the same GeoPackage (bench/scale.py, 100,000 buildings by default),
the same target (the real ``buildings`` table with its GiST indexes, generated EPSG:3857
column and CHECK constraints), every table truncated before every run, the two methods
alternating, each run in a fresh Python process (so peak memory is that run's and neither
inherits the other's caches). Ours includes everything an import does: reading, mapping
columns, validating every field and geometry, writing in one transaction, the post-write
SQL (grid and community assignment) and the audit row. After each run the table content
is fingerprinted: both methods must leave identical rows.

Also timed, ours only (``to_postgis`` cannot pick grids): importing the same buildings
into the whole city in the documented order (sub-district, communities, grids, then
buildings), where each building's grid and community are picked on import.

    python -m bench.bench_import [--buildings 100000] [--repeat 5] [--no-city] [--no-record]
    python -m bench.bench_import --real [EXTRACT.osm.pbf …] [--repeat 3]

The real-extract case (issue 13) times ``wangge import-osm --skip-invalid --repair`` (every
layer, households estimated) on real OpenStreetMap extracts (default: the ones in
tests/data) against ``pyogrio.read_dataframe`` + ``to_postgis`` of the same buildings in the
same run. Where ``read_dataframe`` itself refuses the extract (a multipolygon with a
two-point ring), the baseline falls back to reading WKB and dropping what will not parse,
and the failure is recorded. Writes bench/results/import_real.json.

Writes bench/results/import.json and appends a line to bench/results/history.csv.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import common
from bench.common import LAYER_TABLES, ROOT, check_database, commit, owner_engine

FINGERPRINT = """
SELECT count(*), md5(coalesce(string_agg(concat_ws('|', source_id, district_code, name, address, use, floors, height_m,
        households, residents, community_code, grid_id, encode(ST_AsEWKB(geom), 'hex'), encode(ST_AsEWKB(geom_3857), 'hex')),
        E'\\n' ORDER BY source_id), ''))
FROM buildings"""


# --- one run, in its own process --------------------------------------------------------

def _child(method: str, gpkg: str) -> dict:
    import resource

    import geopandas as gpd
    import psutil

    from layers.importer import import_file

    engine = owner_engine()
    before = psutil.Process().memory_info().rss
    if method == "city":  # the documented order: parents first, buildings into existing grids
        steps = {}
        for layer in ("subdistricts", "communities", "grids", "buildings"):
            t0 = time.perf_counter()
            import_file(layer, gpkg, source_layer=layer)
            steps[layer] = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return {"method": method, "seconds": steps["buildings"], "steps": steps, "peak_rss_mb": peak / 2**20,
                "added_rss_mb": max(peak - before, 0) / 2**20}
    started = time.perf_counter()
    if method == "osm_ours":
        from layers.importer import import_osm

        reports = import_osm(gpkg, skip_invalid=True, repair=True)
        seconds = time.perf_counter() - started
        b = next(r for r in reports if r.layer == "buildings")
        return {"method": method, "seconds": seconds, "rows": b.rows, "all_rows": sum(r.rows for r in reports),
                "skipped": len(b.skipped), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if method == "osm_baseline":
        import pyogrio
        import shapely

        refused = None
        try:
            gdf = pyogrio.read_dataframe(gpkg, layer="multipolygons", where="building IS NOT NULL")
        except Exception as exc:  # GEOS refuses a two-point ring: the whole read fails
            refused = f"{type(exc).__name__}: {exc}"
            gdf = pyogrio.read_dataframe(gpkg, layer="multipolygons", where="building IS NOT NULL", read_geometry=False)
            _meta, _fids, wkb, _fields = pyogrio.raw.read(gpkg, layer="multipolygons", where="building IS NOT NULL", return_fids=True)
            gdf = gpd.GeoDataFrame(gdf, geometry=shapely.from_wkb(wkb, on_invalid="ignore"), crs=4326)
            gdf = gdf[gdf.geometry.notna()]
        out = gpd.GeoDataFrame({"source_id": gdf["osm_way_id"].fillna(gdf["osm_id"]).astype(str), "district_code": "420106",
                                "use": "other"}, geometry=gdf.geometry.values, crs=4326)
        out = out[out.geometry.is_valid]
        out["geometry"] = [g if g.geom_type == "MultiPolygon" else shapely.MultiPolygon([g]) for g in out.geometry]
        out = out.set_geometry("geometry").rename_geometry("geom")
        out.to_postgis("buildings", engine, if_exists="append")
        seconds = time.perf_counter() - started
        return {"method": method, "seconds": seconds, "rows": len(out), "refused": refused,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if method == "baseline":
        gdf = gpd.read_file(gpkg, layer="buildings")
        gdf = gdf.rename_geometry("geom")
        gdf.to_postgis("buildings", engine, if_exists="append")
        rows = len(gdf)
    else:
        rows = import_file("buildings", gpkg, source_layer="buildings").rows
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    return {"method": method, "seconds": seconds, "rows": rows, "peak_rss_mb": peak / 2**20,
            "added_rss_mb": max(peak - before, 0) / 2**20}


def _run(method: str, gpkg: Path) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.bench_import", "--child", method, "--gpkg", str(gpkg)],
                         cwd=ROOT, capture_output=True, text=True, env=os.environ.copy())
    if out.returncode:
        raise RuntimeError(f"{method} run failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the database -------------------------------------------------------------------------

def _truncate() -> None:
    from sqlalchemy import text

    with owner_engine().begin() as c:
        c.execute(text(f"TRUNCATE {LAYER_TABLES} RESTART IDENTITY CASCADE"))


def _fingerprint() -> tuple[int, str]:
    from sqlalchemy import text

    with owner_engine().connect() as c:
        n, digest = c.execute(text(FINGERPRINT)).one()
    return int(n), digest


def _in_grids() -> dict:
    from sqlalchemy import text

    with owner_engine().connect() as c:
        n, gridded = c.execute(text("SELECT count(*), count(grid_id) FROM buildings")).one()
        grids = c.execute(text("SELECT count(*) FROM grids WHERE valid_to IS NULL")).scalar_one()
    return {"buildings": int(n), "buildings_in_grids": int(gridded), "grids": int(grids)}


def _city_summary(runs: list[dict]) -> dict | None:
    """Ours only (to_postgis cannot pick grids): the buildings step of a whole-city import."""
    if not runs:
        return None
    return {
        "what": "subdistricts, communities, grids, then buildings (each building's grid and community picked on import)",
        "buildings_median_s": round(statistics.median(r["seconds"] for r in runs), 3),
        "steps_median_s": {k: round(statistics.median(r["steps"][k] for r in runs), 3) for k in runs[0]["steps"]},
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs), 1),
        **runs[-1]["in_grids"],
    }


def _versions() -> dict:
    import geopandas
    import pyogrio
    import shapely
    from sqlalchemy import text

    with owner_engine().connect() as c:
        pg = c.execute(text("SHOW server_version")).scalar_one()
        postgis = c.execute(text("SELECT postgis_lib_version()")).scalar_one()
    return {"python": platform.python_version(), "postgresql": pg, "postgis": postgis, "geopandas": geopandas.__version__,
            "shapely": shapely.__version__, "pyogrio": pyogrio.__version__, "gdal": pyogrio.__gdal_version_string__,
            "cpus": os.cpu_count(), "machine": platform.machine()}


# --- the benchmark ------------------------------------------------------------------------

def _summary(runs: list[dict]) -> dict:
    return {
        "median_s": round(statistics.median(r["seconds"] for r in runs), 3),
        "min_s": round(min(r["seconds"] for r in runs), 3),
        "max_s": round(max(r["seconds"] for r in runs), 3),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs), 1),
        "added_rss_mb": round(statistics.median(r["added_rss_mb"] for r in runs), 1),
        "runs_s": [round(r["seconds"], 3) for r in runs],
    }


def run(buildings: int = 100_000, repeat: int = 5, seed: int = 0, gpkg: Path | None = None, record: bool = True,
        allow_any_db: bool = False, city: bool = True, log=print) -> dict:
    from bench.scale import generate, write_gpkg

    database = check_database(allow_any_db, "wangge_bench")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="wangge-bench-") as tmp:
        generated = None
        if gpkg is None:
            t0 = time.perf_counter()
            frames = generate(buildings=buildings, seed=seed)
            gpkg = write_gpkg(frames, Path(tmp) / "city.gpkg")
            generated = round(time.perf_counter() - t0, 2)
            log(f"generated {buildings:,} buildings into {gpkg} in {generated} s")
        runs: dict[str, list[dict]] = {"baseline": [], "ours": []}
        prints: dict[str, set[tuple[int, str]]] = {"baseline": set(), "ours": set()}
        for i in range(repeat):
            order = ("baseline", "ours") if i % 2 == 0 else ("ours", "baseline")
            for method in order:
                _truncate()
                r = _run(method, gpkg)
                prints[method].add(_fingerprint())
                runs[method].append(r)
                log(f"  run {i + 1}/{repeat} {method:8s} {r['seconds']:7.2f} s  peak {r['peak_rss_mb']:6.0f} MB "
                    f"(+{r['added_rss_mb']:.0f})  rows {r['rows']:,}")
        city_runs: list[dict] = []
        for i in range(min(repeat, 3) if city else 0):
            _truncate()
            r = _run("city", gpkg)
            r["in_grids"] = _in_grids()
            city_runs.append(r)
            log(f"  city {i + 1}: buildings into {r['in_grids']['grids']:,} grids {r['seconds']:.2f} s "
                f"({r['in_grids']['buildings_in_grids']:,} of {r['in_grids']['buildings']:,} in a grid)")
        _truncate()
        size_mb = round(Path(gpkg).stat().st_size / 2**20, 1)
    rows = {m: sorted({r["rows"] for r in rs}) for m, rs in runs.items()}
    equal = len(prints["baseline"] | prints["ours"]) == 1
    base, ours = _summary(runs["baseline"]), _summary(runs["ours"])
    result = {
        "benchmark": "import",
        "what": "buildings GeoPackage -> PostGIS `buildings` table: layers.importer.import_file vs geopandas read_file + to_postgis",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit(("layers", "gis", "bench")),
        "database": database,
        "buildings": buildings if generated is not None else rows["ours"][0],
        "gpkg_mb": size_mb,
        "generate_s": generated,
        "repeat": repeat,
        "baseline": base,
        "ours": ours,
        "ratio": round(base["median_s"] / ours["median_s"], 2),
        "rows_equal": equal,
        "city": _city_summary(city_runs),
        "rows": rows,
        "fingerprints": {m: sorted(f"{n}:{d}" for n, d in p) for m, p in prints.items()},
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],  # 1-min, before and after: others' work skews timings
        "versions": _versions(),
    }
    if result["city"]:
        log(f"city: buildings into {result['city']['grids']:,} grids {result['city']['buildings_median_s']} s (median)")
    log(f"baseline {base['median_s']} s, ours {ours['median_s']} s: ratio {result['ratio']}x "
        f"(peak {base['peak_rss_mb']} MB vs {ours['peak_rss_mb']} MB); rows equal: {equal}")
    if record:
        save(result)
    if not equal:
        raise SystemExit(f"the two methods left different rows: {result['fingerprints']}")
    return result


def run_real(extracts: list[Path], repeat: int = 3, record: bool = True, allow_any_db: bool = False, log=print) -> dict:
    """The real-extract case: import-osm vs read_dataframe + to_postgis, per extract."""
    database = check_database(allow_any_db, "wangge_bench")
    places = []
    for path in extracts:
        runs: dict[str, list[dict]] = {"osm_baseline": [], "osm_ours": []}
        for i in range(repeat):
            for method in (("osm_baseline", "osm_ours") if i % 2 == 0 else ("osm_ours", "osm_baseline")):
                _truncate()
                r = _run(method, path)
                runs[method].append(r)
                log(f"  {path.name} run {i + 1}/{repeat} {method:12s} {r['seconds']:6.2f} s rows {r['rows']:,}")
        _truncate()
        base = statistics.median(r["seconds"] for r in runs["osm_baseline"])
        ours = statistics.median(r["seconds"] for r in runs["osm_ours"])
        o, b = runs["osm_ours"][-1], runs["osm_baseline"][-1]
        places.append({
            "extract": path.name, "mb": round(path.stat().st_size / 2**20, 2),
            "baseline": {"what": "pyogrio.read_dataframe(buildings) + to_postgis", "median_s": round(base, 3), "buildings": b["rows"],
                         "features_per_s": round(b["rows"] / base, 1), "read_dataframe_refused": b.get("refused")},
            "ours": {"what": "import_osm --skip-invalid --repair: all layers, households estimated", "median_s": round(ours, 3),
                     "buildings": o["rows"], "all_features": o["all_rows"], "buildings_skipped": o["skipped"],
                     "features_per_s": round(o["all_rows"] / ours, 1), "buildings_per_s": round(o["rows"] / ours, 1)},
            "ratio": round(base / ours, 2),
        })
        log(f"{path.name}: baseline {base:.2f} s ({b['rows']} buildings), ours {ours:.2f} s ({o['rows']} buildings, {o['all_rows']} features): "
            f"ratio {base / ours:.2f}x" + (f"; read_dataframe refused: {b['refused'][:80]}" if b.get("refused") else ""))
    result = {"benchmark": "import_real", "date": datetime.now(UTC).isoformat(timespec="seconds"),
              "commit": commit(("layers", "gis", "bench")), "database": database, "repeat": repeat, "places": places,
              "load_average": round(os.getloadavg()[0], 2), "versions": _versions()}
    if record:
        common.save("import_real", result, [[result["date"], "import_real", result["commit"], p["ours"]["buildings"], repeat,
                                              p["baseline"]["median_s"], p["ours"]["median_s"], p["ratio"], "", "", p["extract"]]
                                             for p in places])
    return result


def save(result: dict) -> None:
    common.save(result["benchmark"], result, [[
        result["date"], result["benchmark"], result["commit"], result["buildings"], result["repeat"],
        result["baseline"]["median_s"], result["ours"]["median_s"], result["ratio"],
        result["baseline"]["peak_rss_mb"], result["ours"]["peak_rss_mb"], result["rows_equal"]]])


def main(argv: list[str] | None = None) -> dict | None:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_import", description=__doc__.split("\n\n")[0])
    ap.add_argument("--buildings", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gpkg", type=Path, help="an existing GeoPackage with a `buildings` layer (default: generate one)")
    ap.add_argument("--no-record", action="store_true", help="do not write bench/results")
    ap.add_argument("--allow-any-db", action="store_true")
    ap.add_argument("--no-city", action="store_true", help="skip timing the import into a city with its grids")
    ap.add_argument("--real", nargs="*", type=Path, help="the real-extract case (default: tests/data/*.osm.pbf)")
    ap.add_argument("--child", choices=("baseline", "ours", "city", "osm_ours", "osm_baseline"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, str(args.gpkg))))
        return None
    if args.real is not None:
        extracts = args.real or sorted((ROOT / "tests" / "data").glob("*.osm.pbf"), key=lambda p: -p.stat().st_size)
        return run_real(extracts, min(args.repeat, 5), not args.no_record, args.allow_any_db)
    return run(args.buildings, args.repeat, args.seed, args.gpkg, not args.no_record, args.allow_any_db, not args.no_city)


if __name__ == "__main__":
    main()
