"""One node against Citus (one coordinator, two workers) on the same synthetic city.

Both databases get the same city (``bench/scale.py``, default 100,000 buildings, every building
with a ``building_groups`` row), spread over ``--districts`` districts (the synthetic city has
one; a distribution key with one value would put every row in one shard, so the communities are
dealt round-robin to district codes 420101, 420102, … and their buildings take that code; the
communities and grids, replicated tables whose codes embed their district, keep theirs).
The Citus database is loaded while its tables are still on the coordinator and then distributed
(``wangge db distribute``, timed): that is how an existing deployment moves.

Timed, as the app runs them (app role, signed scope per transaction, medians of ``--repeat``):
the leader's overview (``analysis.overview.figures``), grid statistics (``grid.stats.grid_stats``),
a worker's building list (``layers.buildings.grid_buildings``), and one analysis: walking
distances from every home to every service category (``analysis.services.refresh(full=True)``,
which reads buildings and writes one row per home into the distributed ``service_buildings``)
followed by its coverage read (``category_coverage``).

On this machine both run on the same 2 shared cores: the point is that it works and what it
costs, not a speed-up.

    WANGGE_DB_NAME=wangge_city_bench python -m bench.bench_citus [--buildings 100000] \
        [--citus-port 5441 --citus-db wangge_citus_bench]

The Citus database is created by ``WANGGE_CITUS_DB=wangge_citus_bench WANGGE_CITUS_DISTRIBUTE=0
scripts/citus.sh``. Both databases are emptied (names must contain "bench"). Writes
bench/results/citus.json and rows to bench/results/history.csv (baseline: the single node).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from bench import common
from bench.common import check_database, commit


def _spread_districts(n: int) -> list[str]:
    """Deal communities round-robin to ``n`` district codes (and their grids, buildings, copies)."""
    from gis.db import owner_engine

    codes = [f"4201{i + 1:02d}" for i in range(n)]
    with owner_engine().begin() as c:
        for code in codes:
            c.execute(text("""INSERT INTO districts (code, name) SELECT CAST(:c AS text), '基准区' || CAST(:c AS text)
                              WHERE NOT EXISTS (SELECT 1 FROM districts WHERE code = CAST(:c AS text))"""), {"c": code})
        c.execute(text("""
            CREATE TEMP TABLE _d ON COMMIT DROP AS
            SELECT code, (CAST(:codes AS text[]))[1 + (row_number() OVER (ORDER BY code) - 1) % CAST(:n AS int)] AS d FROM communities"""),
                  {"codes": codes, "n": n})
        c.execute(text("UPDATE buildings x SET district_code = _d.d FROM _d WHERE _d.code = x.community_code"))
        c.execute(text("""
            INSERT INTO building_groups (building_id, district_code, elderly_65, dibao, released)
            SELECT id, district_code, (households * 0.3)::int, (households * 0.05)::int, (id % 97 = 0)::int FROM buildings
            ON CONFLICT DO NOTHING"""))
        c.execute(text("UPDATE building_groups g SET district_code = b.district_code, community_code = b.community_code, "
                       "grid_id = b.grid_id FROM buildings b WHERE b.id = g.building_id"))
    with owner_engine().connect() as c:
        c.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    return codes


def _median(fn, repeat: int) -> float | str:
    """Median milliseconds, or why it could not run (a read Citus refuses is a result too)."""
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            return "not supported: " + str(getattr(e, "orig", e)).splitlines()[0]
        runs.append(time.perf_counter() - t0)
    return round(statistics.median(runs) * 1000, 1)


def _load(buildings: int, gpkg: str | None, log) -> None:
    """The synthetic city: generated (``bench.bench_map.load_city``) or imported from an existing
    GeoPackage (``bench/scale.py --out``; the 1,000,000-building city is made once and reused)."""
    if not gpkg:
        from bench.bench_map import load_city

        with tempfile.TemporaryDirectory() as tmp:
            load_city(buildings, Path(tmp), log=log)
        return
    from bench.bench_map import LAYER_TABLES
    from bench.scale import LAYERS
    from gis.db import owner_engine
    from layers.importer import import_file

    with owner_engine().begin() as c:
        c.execute(text(f"TRUNCATE {LAYER_TABLES} RESTART IDENTITY CASCADE"))
    for layer in LAYERS:
        t0 = time.perf_counter()
        import_file(layer, Path(gpkg), source_layer=layer)
        log(f"  {layer} imported from {gpkg} in {time.perf_counter() - t0:.1f} s")
    with owner_engine().connect() as c:
        c.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))


def _row_form_on_shards(engine) -> None:
    """Put the coordinator's row form (``wangge_row_ok`` per row) back on the shards: the policies
    as the previous version left them, to measure against the shard form in the same run."""
    from gis.citus import POLICY_AREA, _kind, _policy_sql

    with engine.begin() as c:
        owner = c.execute(text("SELECT current_user")).scalar_one()
        for t in POLICY_AREA:
            if _kind(c, t) == "h":
                for sql in _policy_sql(t, owner):
                    c.execute(text(sql))


def phase(buildings: int, districts: int, repeat: int, distribute: bool, log=print, gpkg: str | None = None,
          analysis: bool = True, row_form: bool = True) -> dict:
    """Load, (distribute), time: in the database the settings name."""
    from analysis import overview, services
    from gis.db import app_engine, owner_engine, transaction
    from gis.scope import SYSTEM, Scope, use_scope
    from grid.stats import grid_stats
    from layers.buildings import grid_buildings

    out: dict = {"database": check_database(False, "wangge_city_bench")}
    t0 = time.perf_counter()
    _load(buildings, gpkg, log)
    out["load_s"] = round(time.perf_counter() - t0, 1)
    out["districts"] = _spread_districts(districts)
    if distribute:
        from gis.citus import distribute as dist, layout

        t0 = time.perf_counter()
        plan = dist(owner_engine())
        from gis.db import reset_engines

        reset_engines()  # sessions opened before took the database's settings of that time
        out["distribute_s"] = round(time.perf_counter() - t0, 1)
        out["plan"] = plan.as_dict()
        with owner_engine().connect() as c:
            out["layout"] = layout(c)
            out["nodes"] = [f"{h}:{p}" for h, p in c.execute(text("SELECT nodename, nodeport FROM pg_dist_node ORDER BY nodeport")).all()]
            out["rows_per_node"] = {f"{h}:{p}": int(n) for h, p, n in c.execute(text("""
                SELECT nodename, nodeport, sum(result::bigint) FROM run_command_on_shards('buildings', 'SELECT count(*) FROM %s')
                JOIN pg_dist_shard_placement USING (shardid) GROUP BY 1, 2""")).all()}
    with owner_engine().connect() as c:
        grid = int(c.execute(text("SELECT grid_id FROM buildings WHERE grid_id IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")).scalar_one())
        out["buildings"] = int(c.execute(text("SELECT count(*) FROM buildings")).scalar_one())
    leader, worker = Scope(user="bench_l", role="leader"), Scope(user="bench_w", role="worker", grids=(grid,))
    app = app_engine()

    def run(scope, f):
        def go():
            with use_scope(scope), app.connect() as c:
                return f(c)
        return go

    def overview_or_why(c):
        try:
            with c.begin_nested():
                return overview.figures(c)
        except Exception as e:  # noqa: BLE001 - recorded: which read Citus cannot run, and why
            return {"not_supported": str(getattr(e, "orig", e)).splitlines()[0]}

    answers = {"overview": run(leader, overview_or_why)(), "grid_stats_rows": len(run(SYSTEM, grid_stats)()),
               "worker_buildings": len(run(worker, lambda c: grid_buildings(c, grid))())}
    out["answers"] = {k: (v if not isinstance(v, dict) else {a: (round(float(b), 4) if isinstance(b, (int, float)) else b) for a, b in v.items()})
                      for k, v in answers.items()}
    def reads() -> dict:
        return {
        "overview (leader)": None if "not_supported" in out["answers"]["overview"] else _median(run(leader, overview.figures), repeat),
        "grid_stats (system)": _median(run(SYSTEM, grid_stats), repeat),
        "grid_buildings (worker)": _median(run(worker, lambda c: grid_buildings(c, grid)), repeat),
        "buildings count (worker, RLS)": _median(run(worker, lambda c: c.execute(text("SELECT count(*) FROM buildings")).scalar()), repeat),
        "buildings count (leader, RLS)": _median(run(leader, lambda c: c.execute(text("SELECT count(*) FROM buildings")).scalar()), repeat),
    }

    if distribute and row_form:
        # before/after of the shard policy form, in the same run: the row form (per-row scope check) first
        from gis.citus import fast_shard_policies

        _row_form_on_shards(owner_engine())
        out["reads_ms_row_policies"] = reads()
        with owner_engine().begin() as c:
            fast_shard_policies(c)
    out["reads_ms"] = reads()
    def full_refresh():
        with use_scope(SYSTEM), transaction(owner=True) as c:
            services.refresh(c, full=True)

    if not analysis:
        log(json.dumps({k: out[k] for k in ("reads_ms",)}, ensure_ascii=False))
        return out
    out["analysis_ms"] = {"services.refresh(full) (owner)": _median(full_refresh, 1)}
    out["analysis_ms"]["category_coverage (leader)"] = _median(run(leader, services.category_coverage), max(1, repeat // 2))
    with owner_engine().connect() as c:
        out["service_rows"] = int(c.execute(text("SELECT count(*) FROM service_buildings")).scalar_one())
    log(json.dumps({k: out[k] for k in ("reads_ms", "analysis_ms")}, ensure_ascii=False))
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--buildings", type=int, default=100_000)
    p.add_argument("--districts", type=int, default=8)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--citus-port", type=int, default=5441)
    p.add_argument("--citus-db", default="wangge_citus_bench")
    p.add_argument("--phase", choices=("both", "single", "citus"), default="both")
    p.add_argument("--gpkg", help="import this city GeoPackage instead of generating one (bench/scale.py --out)")
    p.add_argument("--no-analysis", action="store_true", help="reads only (no walking-distance recompute)")
    p.add_argument("--no-row-form", action="store_true", help="skip the reads under the row policy form (the before)")
    p.add_argument("--single-from", help="reuse the single node's phase from this JSON (output of --phase single)")
    a = p.parse_args(argv)
    if a.phase in ("single", "citus"):
        res = phase(a.buildings, a.districts, a.repeat, distribute=a.phase == "citus", log=lambda m: print(m, file=sys.stderr),
                    gpkg=a.gpkg, analysis=not a.no_analysis, row_form=not a.no_row_form)
        print(json.dumps(res, ensure_ascii=False, default=str))
        return res

    def child(which: str, env: dict) -> dict:
        r = subprocess.run([sys.executable, "-m", "bench.bench_citus", "--phase", which, "--buildings", str(a.buildings),
                            "--districts", str(a.districts), "--repeat", str(a.repeat),
                            *(["--gpkg", a.gpkg] if a.gpkg else []), *(["--no-analysis"] if a.no_analysis else []),
                            *(["--no-row-form"] if a.no_row_form else [])],
                           env=env, cwd=common.ROOT, capture_output=True, text=True)
        sys.stderr.write(r.stderr[-3000:])
        if r.returncode:
            raise SystemExit(f"{which} phase failed")
        return json.loads(r.stdout.strip().splitlines()[-1])

    # (--single-from: the single node's phase from an earlier `--phase single` of the same size, its JSON)
    single = json.loads(Path(a.single_from).read_text()) if a.single_from else child("single", dict(os.environ))
    citus = child("citus", {**os.environ, "WANGGE_DB_PORT": str(a.citus_port), "WANGGE_DB_NAME": a.citus_db})
    out = {"benchmark": "citus", "buildings": a.buildings, "districts": a.districts, "repeat": a.repeat,
           "machine": "2 shared cores; coordinator and both workers on the same machine as the single node",
           "single_node": single, "citus": citus,
           "same_answers": single["answers"] == citus["answers"],
           "date": datetime.now(UTC).isoformat(timespec="seconds"),
           "commit": commit(("gis", "analysis", "grid", "layers", "migrations", "bench/bench_citus.py"))}
    rows = []
    for group in ("reads_ms", "analysis_ms"):
        for k, base in single.get(group, {}).items():
            ours = citus[group].get(k)
            if isinstance(ours, float) and isinstance(base, float):
                rows.append([out["date"], f"citus:{k}", out["commit"], a.buildings, a.repeat, round(base / 1000, 4),
                             round(ours / 1000, 4), round(base / ours, 2), "", "", out["same_answers"]])
    common.save("citus", out, rows)
    print(json.dumps({"single": single["reads_ms"] | single.get("analysis_ms", {}),
                      "citus (shard policy form)": citus["reads_ms"] | citus.get("analysis_ms", {}),
                      "citus (row policy form, before)": citus.get("reads_ms_row_policies"),
                      "same_answers": out["same_answers"]}, ensure_ascii=False, indent=1))
    return out


if __name__ == "__main__":
    main()
