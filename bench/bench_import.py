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

The city case (issue 18): every layer of a generated city at several sizes, growing 10x at a
time, ours against ``read_file`` + ``to_postgis`` for each layer in the same run:

    python -m bench.bench_import --sizes 10000,100000,1000000 --layers all [--repeat 3]

Each size's GeoPackage is ``/work/wt/data/city_{10k,100k,1m}.gpkg`` when it exists (``--data``),
else generated (``bench.scale.city_sizes``: a grid per 20 buildings, a camera per 40, a
facility per 250, a road edge per 2). Layers go in the importers' order (parents first); for
each layer, its table is emptied before every run (the layers before it stay loaded, as a real
city import finds them), the two methods alternate and ours runs last, so the next layer finds
ours' rows (buildings with their grid and community, facilities with their community). The
baseline appends the file's columns the table has, plus ``district_code`` (which the file does
not carry and the table requires), into the same real table. Row counts must match per layer.
Writes bench/results/import_city.json (every size, every layer, growth per 10x); a run of some
layers replaces those layers' figures and keeps the others'.

Before and after in the same run (issue 18: the buildings import at 1,000,000): ``--before REF``
also imports the buildings with REF's code (``git archive``) on REF's schema (the migrations
taken down to its head on the empty table, and back up for this checkout's runs), each against
the baseline on the same schema, and compares the rows both leave (ids, grid, community, box
columns, building_stats):

    python -m bench.bench_import --sizes 10000,100000 --layers buildings --before 01df6e8
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
        _to_postgis_rls(out, "buildings", engine)
        seconds = time.perf_counter() - started
        return {"method": method, "seconds": seconds, "rows": len(out), "refused": refused,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if method.startswith("layer_"):  # the city case: one layer, ours or the baseline
        kind, layer = method.split(":", 1)
        if kind == "layer_ours":
            rows = import_file(layer, gpkg, source_layer=layer).rows
        else:
            rows = _baseline_layer(engine, layer, gpkg)
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return {"method": kind, "layer": layer, "seconds": seconds, "rows": rows, "peak_rss_mb": peak / 2**20,
                "added_rss_mb": max(peak - before, 0) / 2**20}
    if method == "baseline":
        gdf = gpd.read_file(gpkg, layer="buildings")
        gdf = gdf.rename_geometry("geom")
        _to_postgis_rls(gdf, "buildings", engine)
        rows = len(gdf)
    else:
        rows = import_file("buildings", gpkg, source_layer="buildings").rows
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    return {"method": method, "seconds": seconds, "rows": rows, "peak_rss_mb": peak / 2**20,
            "added_rss_mb": max(peak - before, 0) / 2**20}


def _baseline_layer(engine, layer: str, gpkg: str) -> int:
    """geopandas as a GIS analyst would use it: read the layer, keep the columns the table has,
    add the district code the table requires, append into the real table."""
    import geopandas as gpd
    from sqlalchemy import text

    from layers.importer import layer_spec

    table = layer_spec(layer).table
    with engine.connect() as c:
        cols = set(c.execute(text("SELECT column_name FROM information_schema.columns WHERE table_name = :t AND table_schema = 'public'"),
                             {"t": table}).scalars())
    gdf = gpd.read_file(gpkg, layer=layer)
    if "district_code" in cols and "district_code" not in gdf:
        gdf["district_code"] = gdf["code"].str[:6] if "code" in gdf else "420106"
    gdf = gdf.rename_geometry("geom")
    gdf = gdf[[c for c in gdf.columns if c in cols]]
    _to_postgis_rls(gdf, table, engine)
    return len(gdf)


def _to_postgis_rls(gdf, table: str, engine) -> None:
    """``to_postgis`` into the table; the layer tables force row-level security on their owner,
    and PostgreSQL refuses COPY into such a table, so geopandas' COPY goes into a plain staging
    table and one INSERT … SELECT moves the rows (what our importer does too, through a temp table)."""
    from sqlalchemy import text

    stage = f"bench_stage_{table}"
    gdf.to_postgis(stage, engine, if_exists="replace")
    cols = ", ".join(c for c in gdf.columns)
    with engine.begin() as c:
        c.execute(text(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage}"))
        c.execute(text(f"DROP TABLE {stage}"))


def _run(method: str, gpkg: Path, tree: Path | None = None) -> dict:
    """One run in a fresh process; ``tree``: the source tree to run (``--before``: an earlier commit's)."""
    env = os.environ.copy()
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    out = subprocess.run([sys.executable, "-m", "bench.bench_import", "--child", method, "--gpkg", str(gpkg)],
                         cwd=tree or ROOT, capture_output=True, text=True, env=env)
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


def _label(n: int) -> str:
    return f"{n // 1_000_000}m" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


def _city_gpkg(buildings: int, seed: int, data: Path, tmp: Path, log) -> tuple[Path, float | None]:
    """The shared city file for this size if there is one, else a generated one (timed)."""
    from bench.scale import city_sizes, generate, write_gpkg

    shared = data / f"city_{_label(buildings)}.gpkg"
    if shared.exists() and seed == 0:
        return shared, None
    t0 = time.perf_counter()
    path = write_gpkg(generate(**city_sizes(buildings), seed=seed), tmp / f"city_{_label(buildings)}.gpkg")
    return path, round(time.perf_counter() - t0, 2)


def _truncate_layer(table: str) -> None:
    from sqlalchemy import text

    with owner_engine().begin() as c:
        c.execute(text(f"TRUNCATE {table} RESTART IDENTITY CASCADE"))


CITY_FINGERPRINT = """
SELECT (SELECT count(*) FROM buildings), (SELECT count(grid_id) FROM buildings),
  (SELECT md5(coalesce(string_agg(concat_ws('|', id, source_id, district_code, community_code, grid_id, name, address, use, floors,
          height_m, households, residents, households_source, encode(ST_AsEWKB(geom), 'hex'), encode(ST_AsEWKB(geom_3857), 'hex'),
          cx_3857::text, cy_3857::text, r_3857::text), E'\\n' ORDER BY id), '')) FROM buildings),
  (SELECT md5(coalesce(string_agg(concat_ws('|', community_code, grid_id, buildings, households, residents, estimated_buildings),
          E'\\n' ORDER BY community_code, grid_id), '')) FROM building_stats)"""


def commit_of(ref: str) -> str:
    return subprocess.run(["git", "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def _before_tree(ref: str, tmp: Path) -> tuple[Path, str]:
    """``ref``'s source (``git archive``) with this checkout's ``.env``, and its migrations' head."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    tree = tmp / "before"
    tree.mkdir()
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    if (ROOT / ".env").exists():
        (tree / ".env").write_text((ROOT / ".env").read_text())
    cfg = Config(str(tree / "alembic.ini"))
    cfg.set_main_option("script_location", str(tree / "migrations"))
    return tree, ScriptDirectory.from_config(cfg).get_current_head()


def _schema(revision: str | None) -> None:
    """The schema at ``revision`` (None: this checkout's head); the buildings table is empty here."""
    from sqlalchemy import text

    from gis.migrate import downgrade, upgrade

    with owner_engine().connect() as c:
        now = c.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    owner_engine().dispose()  # no cached plan outlives a column change
    if revision is None:
        upgrade()
    elif now != revision:
        downgrade(revision=revision)


def _city_fingerprint() -> dict:
    from sqlalchemy import text

    with owner_engine().connect() as c:
        n, gridded, rows, stats = c.execute(text(CITY_FINGERPRINT)).one()
    return {"buildings": int(n), "in_grids": int(gridded), "rows_md5": rows, "building_stats_md5": stats}


def _merge_earlier(out_sizes: list[dict], order: list[str]) -> list[dict]:
    """Sizes and layers of the recorded run that this run did not measure are kept: a run of some
    layers (``--layers buildings``) replaces those layers' figures in each size, keeps the others."""
    earlier = json.loads((common.RESULTS / "import_city.json").read_text())
    mine = {s["buildings"]: s for s in out_sizes}
    merged = []
    for e in earlier.get("sizes", []):
        e.setdefault("date", earlier.get("date"))
        e.setdefault("commit", earlier.get("commit"))
        new = mine.pop(e["buildings"], None)
        if new is None:
            merged.append(e)
            continue
        if set(new["layers"]) >= set(e["layers"]):
            merged.append(new)
            continue
        e = {**e, "layers": {**e["layers"], **new["layers"]}}
        runs = e.setdefault("layer_runs", {})
        for name in new["layers"]:
            runs[name] = {k: new[k] for k in ("date", "repeat", "load_average_before", "load_average_after", "gpkg")}
        e["total_s"] = {m: round(sum(v[m]["median_s"] for v in e["layers"].values()), 2) for m in ("baseline", "ours")}
        e["ratio"] = round(e["total_s"]["baseline"] / e["total_s"]["ours"], 2) if e["total_s"]["ours"] else None
        e["new"] = True
        merged.append(e)
    merged += mine.values()
    return sorted(merged, key=lambda s: s["buildings"])


def run_city(sizes: list[int], layers: list[str], repeat: int = 3, seed: int = 0, data: Path = Path("/work/wt/data"),
             record: bool = True, allow_any_db: bool = False, log=print, before: str | None = None,
             ours_first: bool = False) -> dict:
    """Every layer of the city at each size: ours against read_file + to_postgis, same run.

    ``before`` (a git ref): the buildings layer is also imported by that commit's code on that
    commit's schema (migrations down to its head, on the empty table), against the baseline on
    that schema too, in the same run: before and after, each with its own ratio, and the rows
    each leaves compared (ids, grid, community, box columns, building_stats)."""
    from bench.scale import LAYERS
    from layers.importer import import_file, layer_spec

    database = check_database(allow_any_db, "wangge_bench")
    order = [name for name in LAYERS if name in layers]
    out_sizes = []
    with tempfile.TemporaryDirectory(prefix="wangge-bench-") as tmp:
        tree, before_head = _before_tree(before, Path(tmp)) if before else (None, None)
        if before:
            log(f"before: {before} ({commit_of(before)}), schema {before_head}, from {tree}")
        for n in sizes:
            gpkg, generated = _city_gpkg(n, seed, data, Path(tmp), log)
            reps = repeat if n < 1_000_000 else 1
            reps += 1 - reps % 2  # odd: ours runs last, so the next layer finds ours' rows
            load = [round(x, 2) for x in os.getloadavg()]
            log(f"=== {n:,} buildings: {gpkg} ({gpkg.stat().st_size / 2**20:.1f} MB), {reps} run(s) per method, load {load}")
            _truncate()
            if order and order[0] != "subdistricts":  # parents of the first layer asked for: loaded by ours, untimed
                for name in LAYERS[:LAYERS.index(order[0])]:
                    import_file(name, gpkg, source_layer=name)
            elif order:  # the district row the sub-district refers to: made by one import of ours, then emptied
                import_file("subdistricts", gpkg, source_layer="subdistricts")
            per_layer = {}
            for name in order:
                table = layer_spec(name).table
                methods = ("baseline", "ours")
                if before and name == "buildings":  # the earlier commit on its schema, then this one on its own
                    methods = ("baseline_before", "before", "baseline", "ours")
                if ours_first:  # a check on the order (one run each at 1M): ours before the baseline
                    methods = methods[::-1]
                runs: dict[str, list[dict]] = {m: [] for m in methods}
                prints: dict[str, list[dict]] = {"before": [], "ours": []}
                for i in range(reps):
                    for method in (methods if i % 2 == 0 else methods[::-1]):
                        _truncate_layer(table)
                        if len(methods) > 2:
                            _schema(before_head if method in ("baseline_before", "before") else None)
                        kind = {"baseline_before": "baseline", "before": "ours"}.get(method, method)
                        r = _run(f"layer_{kind}:{name}", gpkg, tree if method in ("baseline_before", "before") else None)
                        runs[method].append(r)
                        if method in prints and len(methods) > 2:
                            prints[method].append(_city_fingerprint())
                        log(f"  {name:12s} {method:15s} {r['seconds']:8.2f} s  rows {r['rows']:>9,}  peak {r['peak_rss_mb']:6.0f} MB")
                base, ours = _summary(runs["baseline"]), _summary(runs["ours"])
                rows = sorted({r["rows"] for rs in runs.values() for r in rs})
                per_layer[name] = {"rows": rows[0] if len(rows) == 1 else rows, "rows_equal": len(rows) == 1,
                                   "baseline": base, "ours": ours, "ratio": round(base["median_s"] / ours["median_s"], 2),
                                   "ours_rows_per_s": round(rows[-1] / ours["median_s"]),
                                   "baseline_rows_per_s": round(rows[-1] / base["median_s"])}
                if len(methods) > 2:
                    b0, o0 = _summary(runs["baseline_before"]), _summary(runs["before"])
                    same = len({json.dumps(p, sort_keys=True) for p in prints["before"] + prints["ours"]}) == 1
                    per_layer[name]["before"] = {
                        "what": f"{before} ({commit_of(before)}): its code on its schema ({before_head}), against the baseline on that schema",
                        "baseline": b0, "ours": o0, "ratio": round(b0["median_s"] / o0["median_s"], 2)}
                    per_layer[name]["after_vs_before"] = round(o0["median_s"] / ours["median_s"], 2)
                    per_layer[name]["identical_to_before"] = same
                    per_layer[name]["fingerprints"] = prints
                    log(f"  {name}: before {o0['median_s']} s vs baseline {b0['median_s']} s (ratio {per_layer[name]['before']['ratio']}x); "
                        f"after {ours['median_s']} s vs baseline {base['median_s']} s; rows identical to before: {same}")
                log(f"  {name}: baseline {base['median_s']} s, ours {ours['median_s']} s, ratio {per_layer[name]['ratio']}x")
            total = {m: round(sum(v[m]["median_s"] for v in per_layer.values()), 2) for m in ("baseline", "ours")}
            out_sizes.append({"buildings": n, "date": datetime.now(UTC).isoformat(timespec="seconds"), "gpkg": str(gpkg), "gpkg_mb": round(gpkg.stat().st_size / 2**20, 1), "generate_s": generated,
                              "repeat": reps, "load_average_before": load, "load_average_after": [round(x, 2) for x in os.getloadavg()],
                              "layers": per_layer, "total_s": total, "ratio": round(total["baseline"] / total["ours"], 2) if total["ours"] else None})
            log(f"  all layers: baseline {total['baseline']} s, ours {total['ours']} s")
        _truncate()
        if before:
            _schema(None)
    for s in out_sizes:
        s["new"] = True
    if record and (common.RESULTS / "import_city.json").exists():  # sizes and layers from earlier runs (1M under the heavy lock) kept
        out_sizes = _merge_earlier(out_sizes, order)
    growth = {}
    for a, b in zip(out_sizes, out_sizes[1:]):
        key = f"{_label(a['buildings'])}->{_label(b['buildings'])}"
        growth[key] = {name: {m: round(b["layers"][name][m]["median_s"] / a["layers"][name][m]["median_s"], 2)
                              for m in ("baseline", "ours")} for name in b["layers"] if name in a["layers"]}
        for name in b["layers"]:
            if "before" in b["layers"][name] and "before" in a["layers"].get(name, {}):
                growth[key][name]["before"] = round(b["layers"][name]["before"]["ours"]["median_s"]
                                                    / a["layers"][name]["before"]["ours"]["median_s"], 2)
        growth[key]["all"] = {m: round(b["total_s"][m] / a["total_s"][m], 2) for m in ("baseline", "ours")}
    result = {"benchmark": "import_city",
              "what": "every layer of a bench/scale.py city (issue 18 proportions): layers.importer.import_file vs "
                      "geopandas read_file + to_postgis into the same table, per layer, growing 10x at a time",
              "date": datetime.now(UTC).isoformat(timespec="seconds"), "commit": commit(("layers", "gis", "bench")),
              "database": database, "sizes": out_sizes, "growth_per_10x": growth, "versions": _versions()}
    if record:
        common.save("import_city", result, [[
            result["date"], f"import_city:{name}", result["commit"], s["buildings"], s["repeat"], v["baseline"]["median_s"],
            v["ours"]["median_s"], v["ratio"], v["baseline"]["peak_rss_mb"], v["ours"]["peak_rss_mb"], v["rows_equal"]]
            for s in out_sizes if s.pop("new", False) for name, v in s["layers"].items() if name in order])
    for key, g in growth.items():
        log(f"growth {key}: " + ", ".join(f"{k} ours x{v['ours']} / baseline x{v['baseline']}" for k, v in g.items()))
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
    ap.add_argument("--sizes", help="the city case: building counts, e.g. 10000,100000,1000000")
    ap.add_argument("--layers", default="all", help="the city case: 'all' or a comma-separated list of layers")
    ap.add_argument("--data", type=Path, default=Path("/work/wt/data"), help="where city_{10k,100k,1m}.gpkg are looked for")
    ap.add_argument("--before", help="the city case: also import buildings with this git ref's code on its schema (before/after, same run)")
    ap.add_argument("--ours-first", action="store_true", help="the city case: ours runs before the baseline in each pair (an order check)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, str(args.gpkg))))
        return None
    if args.sizes:
        from bench.scale import LAYERS

        layers = list(LAYERS) if args.layers == "all" else [x.strip() for x in args.layers.split(",")]
        return run_city([int(x) for x in args.sizes.split(",")], layers, args.repeat, args.seed, args.data,
                        not args.no_record, args.allow_any_db, before=args.before, ours_first=args.ours_first)
    if args.real is not None:
        extracts = args.real or sorted((ROOT / "tests" / "data").glob("*.osm.pbf"), key=lambda p: -p.stat().st_size)
        return run_real(extracts, min(args.repeat, 5), not args.no_record, args.allow_any_db)
    return run(args.buildings, args.repeat, args.seed, args.gpkg, not args.no_record, args.allow_any_db, not args.no_city)


if __name__ == "__main__":
    main()
