"""Wangge on a Citus cluster (issue 18): one coordinator, two workers (scripts/citus.sh).

Runs only when ``WANGGE_CITUS_URL`` names the app's connection to a Citus coordinator whose
database ends in ``_test`` (``WANGGE_CITUS_DB=wangge_citus_test scripts/citus.sh`` prints it);
otherwise every test here is skipped and says why, so ``make test`` on a machine without Citus
passes. ``make test-citus`` sets it up and runs them.

What is proven here, against the real cluster:
- the layout: the large tables distributed by district_code and co-located, the small ones
  replicated, nothing else distributed by accident;
- the signed scope reaches the workers: ``SET LOCAL`` does (propagated), ``set_config(..., true)``
  does not (the workers then see no scope and the policies give no rows: never too many);
- the whole row-level security suite (tests/test_security_db.py, unchanged) passes through the
  coordinator, in a child pytest pointed at the Citus database;
- the main reads and one analysis run through the coordinator and give the single node's answers.
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
from sqlalchemy import Engine, create_engine, text

from gis.settings import ROOT, get_settings

URL = os.environ.get("WANGGE_CITUS_URL", "")
pytestmark = [
    pytest.mark.citus,
    pytest.mark.skipif(not URL, reason="no Citus cluster: set WANGGE_CITUS_URL (scripts/citus.sh url prints it; make test-citus does all)"),
]


def _parts() -> dict:
    u = urlparse(URL)
    return {"host": u.hostname or "localhost", "port": u.port or 5432, "db": (u.path or "/").lstrip("/")}


def citus_env() -> dict:
    """The environment that points this project's settings at the Citus coordinator."""
    p = _parts()
    env = dict(os.environ)
    env.update({"WANGGE_DB_HOST": p["host"], "WANGGE_DB_PORT": str(p["port"]), "WANGGE_DB_NAME": p["db"], "PYTHONPATH": str(ROOT)})
    env.pop("DATABASE_URL", None)
    return env


@pytest.fixture(scope="module")
def citus() -> Iterator[dict[str, Engine]]:
    p = _parts()
    if not p["db"].endswith("_test"):
        pytest.skip(f"WANGGE_CITUS_URL names database {p['db']!r}: these tests load the demo into it, so it must end in _test")
    s = get_settings()
    owner = create_engine(f"postgresql+psycopg://{s.db_owner}:{s.db_owner_password}@{p['host']}:{p['port']}/{p['db']}")
    app = create_engine(f"postgresql+psycopg://{s.db_app_user}:{s.db_app_password}@{p['host']}:{p['port']}/{p['db']}")
    with owner.connect() as c:
        if not c.execute(text("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')")).scalar_one():
            pytest.skip(f"{p['db']} on port {p['port']} has no citus extension")
        if not c.execute(text("SELECT count(*) FROM pg_dist_node WHERE groupid > 0")).scalar_one():
            pytest.skip("the Citus coordinator has no workers")
    # the demo in the Citus database (a child process: this one's settings point at the single node)
    r = subprocess.run([sys.executable, "-m", "cli.main", "demo", "load", "--force"], env=citus_env(), cwd=ROOT,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    try:
        yield {"owner": owner, "app": app}
    finally:
        owner.dispose()
        app.dispose()


def test_large_tables_are_distributed_by_district_and_colocated_small_ones_replicated(citus):
    from gis.citus import DISTRIBUTED, LOCAL, REFERENCE

    with citus["owner"].connect() as c:
        rows = c.execute(text("""
            SELECT logicalrelid::regclass::text AS tbl, partmethod, repmodel, column_to_column_name(logicalrelid, partkey) AS col,
                   colocationid FROM pg_dist_partition""")).all()
    dist = {r.tbl: r for r in rows if r.partmethod == "h"}
    ref = {r.tbl for r in rows if r.partmethod == "n" and r.repmodel == "t"}
    assert {"buildings", "building_groups", "events", "service_buildings", "siting_scenario_demand"} <= set(dist)
    assert set(dist) <= set(DISTRIBUTED)
    assert {r.col for r in dist.values()} == {"district_code"}
    assert len({r.colocationid for r in dist.values()}) == 1  # co-located: joins by building stay on one node
    assert {"districts", "subdistricts", "communities", "grids", "facility_categories"} <= ref
    assert "wangge_secrets" not in ref and "wangge_secrets" not in dist  # a plain copy per node (gis/citus.py)
    # users and assignments: their policies (single-node form) need sub-queries, so they stay on the coordinator
    assert not {"users", "assignments"} & (set(dist) | ref)
    assert not (set(dist) | ref) & set(LOCAL)
    assert ref <= set(REFERENCE)


def test_scope_reaches_the_workers_by_set_local_not_by_set_config(citus):
    """The workers evaluate the distributed tables' policies: they must see the signed scope."""
    from gis import scope as scopes
    from gis.scope import SYSTEM

    with citus["owner"].connect() as c:
        total = c.execute(text("SELECT count(*) FROM buildings")).scalar_one()
    assert total > 0
    tok = scopes.token(SYSTEM)
    with citus["app"].connect() as c:
        with c.begin():
            c.execute(text("SELECT set_config('wangge.scope', :t, true)"), {"t": tok})
            # the coordinator has it, the workers do not: no rows (never more than allowed)
            assert c.execute(text("SELECT current_setting('wangge.scope', true)")).scalar_one() == tok
            assert c.execute(text("SELECT count(*) FROM buildings")).scalar_one() == 0
        with c.begin():
            c.exec_driver_sql(f"SET LOCAL wangge.scope = '{tok}'")
            assert c.execute(text("SELECT count(*) FROM buildings")).scalar_one() == total
        with c.begin():  # transaction-local on the workers too: the next transaction has nothing
            assert c.execute(text("SELECT count(*) FROM buildings")).scalar_one() == 0


def test_policies_on_distributed_tables_have_no_subqueries(citus):
    with citus["owner"].connect() as c:
        quals = c.execute(text("""
            SELECT tablename, policyname, coalesce(qual, '') || ' ' || coalesce(with_check, '') FROM pg_policies
            WHERE tablename IN (SELECT logicalrelid::regclass::text FROM pg_dist_partition WHERE partmethod = 'h')""")).all()
    assert quals
    for table, name, q in quals:
        assert "SELECT" not in q.upper(), (table, name, q)


def test_row_level_security_suite_passes_through_the_coordinator(citus):
    """tests/test_security_db.py, unchanged, against the Citus database."""
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "tests/test_security_db.py"],
                       env=citus_env(), cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert " passed" in r.stdout


READS = r"""
import json, sys
from gis.db import transaction
from gis.scope import SYSTEM, Scope, use_scope
from analysis import overview
from grid.stats import grid_stats
from layers.buildings import grid_buildings
from analysis import services

out = {}
with use_scope(SYSTEM), transaction() as conn:
    out["figures"] = {k: (round(float(v), 6) if v is not None else None) for k, v in overview.figures(conn).items()}
    gs = grid_stats(conn)
    out["grid_stats"] = gs[["code", "households", "residents", "buildings"]].astype(str).values.tolist()
    out["community_table"] = len(overview.community_table(conn))
    first = int(gs.sort_values("code")["id"].iloc[0])
with use_scope(Scope(user="w", role="worker", grids=(first,))), transaction() as conn:
    out["worker_buildings"] = sorted(int(i) for i in grid_buildings(conn, first)["id"])
    out["worker_all_buildings"] = int(conn.exec_driver_sql("SELECT count(*) FROM buildings").scalar())
with transaction(owner=True) as conn:
    services.refresh(conn, full=True)
with use_scope(SYSTEM), transaction() as conn:
    cov = services.category_coverage(conn)
    out["services"] = cov.round(6).astype(str).values.tolist()
print(json.dumps(out, sort_keys=True))
"""


def _reads(env: dict) -> dict:
    import json

    r = subprocess.run([sys.executable, "-c", READS], env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr[-4000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_main_reads_and_an_analysis_give_the_single_node_answers(citus, demo):
    single_env = dict(citus_env())
    s = get_settings()
    single_env.update({"WANGGE_DB_HOST": s.db_host, "WANGGE_DB_PORT": str(s.db_port), "WANGGE_DB_NAME": s.db_name})
    on_citus, on_one = _reads(citus_env()), _reads(single_env)
    assert on_citus["worker_buildings"] and on_citus["worker_all_buildings"] == len(on_citus["worker_buildings"])
    assert on_citus == on_one
