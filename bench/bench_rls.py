"""What row-level security costs: the same queries as the owner (no policies) and as the
app role under a signed scope, on a synthetic city (``bench/scale.py``, default 100,000
buildings, every building with a ``building_groups`` row).

Queries: ``count(*)`` over buildings; households per grid (GROUP BY); one grid's buildings
with their group counts (the worker's list, ``layers.buildings.grid_buildings``); the
sub-district overview (``analysis.overview.figures``). Scopes: system (every row; the
policy's cost is the scope check and the OR chain per row), leader, and a worker of one
grid (compared with the owner asking for that grid explicitly, which is what the policy
adds). Medians of ``--repeat`` runs, each in its own transaction (so the scope token is
signed and verified each time, as in the app).

    WANGGE_DB_NAME=sec_bench python -m bench.bench_rls [--buildings 100000] [--repeat 7] [--no-load]

The database is emptied: its name must contain "bench". Writes bench/results/rls.json and a
row per query and role to bench/results/history.csv (baseline: the owner, without policies).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from bench import common
from bench.common import check_database, commit


def _fill_groups() -> None:
    from gis.db import owner_engine

    with owner_engine().begin() as c:
        c.execute(text("""
            INSERT INTO building_groups (building_id, district_code, elderly_65, dibao, released)
            SELECT id, district_code, (households * 0.3)::int, (households * 0.05)::int, (id % 97 = 0)::int
            FROM buildings ON CONFLICT (building_id) DO NOTHING"""))
        c.execute(text("ANALYZE buildings; ANALYZE building_groups"))


def _time(fn, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def run(buildings: int, repeat: int, load: bool, log=print) -> dict:
    from analysis import overview
    from gis.db import app_engine, owner_engine
    from gis.scope import SYSTEM, Scope, use_scope
    from layers.buildings import grid_buildings

    check_database(False, "sec_bench")
    if load:
        from bench.bench_map import load_city

        with tempfile.TemporaryDirectory() as tmp:
            load_city(buildings, Path(tmp), log=log)
    _fill_groups()
    with owner_engine().connect() as c:
        n = int(c.execute(text("SELECT count(*) FROM buildings")).scalar_one())
        grid, per_grid = c.execute(text("SELECT grid_id, count(*) FROM buildings WHERE grid_id IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 1")).one()
    worker = Scope(user="bench_w", role="worker", grids=(int(grid),))
    leader = Scope(user="bench_l", role="leader")

    queries = {
        "count": ("SELECT count(*) FROM buildings", "SELECT count(*) FROM buildings WHERE grid_id = ANY(:g)"),
        "households_per_grid": ("SELECT grid_id, sum(households) FROM buildings GROUP BY 1",
                                "SELECT grid_id, sum(households) FROM buildings WHERE grid_id = ANY(:g) GROUP BY 1"),
        "groups_join": ("SELECT sum(bg.elderly_65) FROM buildings b JOIN building_groups bg ON bg.building_id = b.id",
                        "SELECT sum(bg.elderly_65) FROM buildings b JOIN building_groups bg ON bg.building_id = b.id WHERE b.grid_id = ANY(:g)"),
    }

    def sql(engine, q: str, scope=None, **params):
        def go():
            with use_scope(scope), engine.connect() as c:
                c.execute(text(q), params).all()
        return go

    def call(engine, f, scope=None):
        def go():
            with use_scope(scope), engine.connect() as c:
                f(c)
        return go

    out: dict = {"buildings": n, "worker_grid_buildings": int(per_grid), "repeat": repeat, "rows": []}
    own, app = owner_engine(), app_engine()
    for key, (whole, mine) in queries.items():
        row = {"query": key,
               "owner_all_ms": _time(sql(own, whole), repeat) * 1000,
               "app_system_ms": _time(sql(app, whole, SYSTEM), repeat) * 1000,
               "app_leader_ms": _time(sql(app, whole, leader), repeat) * 1000,
               "owner_one_grid_ms": _time(sql(own, mine, g=[int(grid)]), repeat) * 1000,
               "app_worker_ms": _time(sql(app, whole, worker), repeat) * 1000}
        out["rows"].append(row)
    out["rows"].append({
        "query": "grid_buildings (worker list)",
        "owner_one_grid_ms": _time(call(own, lambda c: grid_buildings(c, int(grid))), repeat) * 1000,
        "app_worker_ms": _time(call(app, lambda c: grid_buildings(c, int(grid)), worker), repeat) * 1000,
        "app_system_ms": _time(call(app, lambda c: grid_buildings(c, int(grid)), SYSTEM), repeat) * 1000,
    })
    out["rows"].append({
        "query": "overview.figures (sub-district)",
        "owner_all_ms": _time(call(own, lambda c: overview.figures(c)), repeat) * 1000,
        "app_system_ms": _time(call(app, lambda c: overview.figures(c), SYSTEM), repeat) * 1000,
        "app_leader_ms": _time(call(app, lambda c: overview.figures(c), leader), repeat) * 1000,
    })
    # the scope check itself: one transaction that only sets and verifies the scope
    out["scope_check_ms"] = _time(sql(app, "SELECT wangge_scope_role()", SYSTEM), repeat * 3) * 1000
    out["empty_tx_owner_ms"] = _time(sql(own, "SELECT 1"), repeat * 3) * 1000
    for r in out["rows"]:
        for k, v in list(r.items()):
            if k.endswith("_ms"):
                r[k] = round(v, 2)
        log("  ".join(f"{k}={v}" for k, v in r.items()))
    log(f"scope set+verify per transaction: {out['scope_check_ms']:.2f} ms (owner SELECT 1: {out['empty_tx_owner_ms']:.2f} ms)")
    out["date"], out["commit"] = datetime.now(UTC).isoformat(timespec="seconds"), commit(("gis", "migrations", "bench/bench_rls.py"))
    common.save("rls", out, (  # baseline: the owner (no policies); ours: the app role under a scope
        [out["date"], f"rls:{r['query']}:{role}", out["commit"], buildings, repeat, round(base / 1000, 4),
         round(r[key] / 1000, 4), round(base / r[key], 2) if r[key] else "", "", "", ""]
        for r in out["rows"]
        for role, key, base in (("leader", "app_leader_ms", r.get("owner_all_ms")), ("worker", "app_worker_ms", r.get("owner_one_grid_ms")))
        if key in r and base))
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--buildings", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--no-load", action="store_true", help="use the city already in the database")
    a = p.parse_args(argv)
    return run(a.buildings, a.repeat, not a.no_load)


if __name__ == "__main__":
    main()
