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
- the row-level security suites run through the coordinator, in child pytests pointed at the
  Citus database: tests/test_security_db.py (the Citus exceptions listed in KNOWN_ON_CITUS, each a
  refusal, never a row beyond the scope) and tests/test_attacker.py (WANGGE_ATTACKER_ON_CITUS);
- the shards verify the signed scope once per query (the single node's policy form on the shards);
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
    assert {"buildings", "building_groups", "service_buildings", "siting_scenario_demand"} <= set(dist)
    # events stays on the coordinator (its workflow's row triggers write the event log: gis/citus.py)
    assert "events" not in set(dist) | ref
    assert set(dist) <= set(DISTRIBUTED)
    assert {r.col for r in dist.values()} == {"district_code"}
    assert len({r.colocationid for r in dist.values()}) == 1  # co-located: joins by building stay on one node
    assert {"districts", "subdistricts", "communities", "grids", "facility_categories"} <= ref
    assert "wangge_secrets" not in ref and "wangge_secrets" not in dist  # a plain copy per node (gis/citus.py)
    # users stay on the coordinator (password hashes are not copied to every node); assignments are
    # replicated in the row form of their policies (migration 0026's place columns)
    assert "users" not in set(dist) | ref and "assignments" in ref
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


def test_shards_verify_the_scope_once_per_query_not_per_row(citus):
    """The shards carry the single node's policy form (gis.citus.fast_shard_policies): the workers'
    plans verify the signed scope in InitPlans, and the per-row filter calls no scope function."""
    from gis import scope as scopes
    from gis.scope import Scope

    with citus["owner"].connect() as c:
        grid = int(c.execute(text("SELECT grid_id FROM buildings WHERE grid_id IS NOT NULL LIMIT 1")).scalar_one())

    with citus["app"].connect() as c, c.begin():
        c.exec_driver_sql(f"SET LOCAL wangge.scope = '{scopes.token(Scope(user='w', role='worker', grids=(grid,)))}'")
        for table in ("buildings", "building_groups", "service_buildings", "siting_scenario_demand"):
            plan = "\n".join(r[0] for r in c.execute(text(f"EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*) FROM {table}")))
            assert "InitPlan" in plan, (table, plan)
            filters = [ln for ln in plan.splitlines() if "Filter:" in ln]
            assert filters and not any("wangge_" in ln for ln in filters), (table, plan)


def test_policies_on_distributed_tables_have_no_subqueries(citus):
    with citus["owner"].connect() as c:
        quals = c.execute(text("""
            SELECT tablename, policyname, coalesce(qual, '') || ' ' || coalesce(with_check, '') FROM pg_policies
            WHERE tablename IN (SELECT logicalrelid::regclass::text FROM pg_dist_partition WHERE partmethod = 'h')""")).all()
    assert quals
    for table, name, q in quals:
        assert "SELECT" not in q.upper(), (table, name, q)


# What tests/test_security_db.py cannot do on Citus 13.2 (measured: 57 of 62 run pass; 3 more are
# deselected below), each with why. None of them is a row shown or a write allowed that the scope
# does not allow: they are queries Citus refuses (an error, no rows), writes refused with Citus's
# error instead of PostgreSQL's, and one single-node property that does not hold by design.
KNOWN_ON_CITUS = {
    # attack queries whose shape Citus refuses (an error instead of rows)
    "test_worker_cannot_reach_other_grids_by_any_query[sql5]": "outer join of buildings and groups by id: Citus refuses it",
    "test_worker_cannot_reach_other_grids_by_any_query[sql11]": "recursive CTE without the distribution column: Citus refuses it",
    # writes as the app role: Citus turns INSERT … SELECT into COPY to the shards, which RLS refuses
    # (FeatureNotSupported "COPY FROM not supported with row-level security" where the test expects
    # PostgreSQL's InsufficientPrivilege): refused either way
    "test_worker_cannot_write_outside_their_grid": "INSERT … SELECT as the app role refused as COPY under RLS",
    "test_copy_into_policy_tables_goes_through_the_policies": "INSERT … SELECT as the app role refused as COPY under RLS",
    # by design: the workers keep the scope set by SET LOCAL at the start of the transaction: a later
    # set_config() (not propagated) changes the coordinator only, so the forged value gives the
    # transaction's own rows (grid A's), not none as on one node, and never more
    # (test_a_forged_scope_set_later_in_the_transaction_never_widens below)
    "test_forged_unsigned_and_expired_scopes_give_no_rows": "workers keep the transaction's signed scope",
}


# Not run on Citus: its anti-join (a building's copies LEFT JOIN buildings by id, under a worker's
# scope) crashes the Citus 13.2.2 coordinator (segmentation fault; every session of the cluster
# reset), so the rest of the suite would fail after it. No row is shown: the backend dies. Its
# other checks run in test_copies_of_building_rows_follow_the_buildings_on_citus below.
DESELECTED_ON_CITUS = ("test_copies_of_building_rows_follow_the_buildings",)


def test_row_level_security_suite_through_the_coordinator(citus):
    """tests/test_security_db.py, unchanged, against the Citus database: everything but the known
    Citus limits passes, and none of those is a widening (checked: they error, or show the
    transaction's own rows)."""
    import re

    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider", "tests/test_security_db.py",
                        *(a for t in DESELECTED_ON_CITUS for a in ("--deselect", f"tests/test_security_db.py::{t}"))],
                       env=citus_env(), cwd=ROOT, capture_output=True, text=True, timeout=1800)
    failed = set(re.findall(r"^(?:FAILED|ERROR) tests/test_security_db.py::(.+?)(?: - .*)?$", r.stdout, flags=re.M))
    passed = int(m.group(1)) if (m := re.search(r"(\d+) passed", r.stdout)) else 0
    assert failed <= set(KNOWN_ON_CITUS), (failed - set(KNOWN_ON_CITUS), r.stdout[-3000:])
    assert passed >= 56, r.stdout[-3000:]


# What tests/test_attacker.py cannot do on Citus, each with why (none is a row beyond the scope).
KNOWN_ATTACKER_ON_CITUS: dict[str, str] = {
    # the people registers (issue 17) stay on the coordinator and are not yet in a form Citus runs:
    # people_list is an SQL function with parameters over Citus tables ("could not create distributed plan")
    "test_functions_with_no_scope[people_list(bigint,text,date,text,text,bigint)]": "people_list: SQL function Citus cannot plan",
    "test_people_functions_follow_the_roles": "people_list: SQL function Citus cannot plan",
}


def test_attacker_suite_through_the_coordinator(citus):
    """tests/test_attacker.py (every table and function the app role may use, every scope, reads and
    writes) against the Citus database, with the objects distribute adds declared and FORCE not
    required (WANGGE_ATTACKER_ON_CITUS, reason in that file)."""
    import re

    env = {**citus_env(), "WANGGE_ATTACKER_ON_CITUS": "1"}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider", "tests/test_attacker.py"],
                       env=env, cwd=ROOT, capture_output=True, text=True, timeout=2400)
    failed = set(re.findall(r"^(?:FAILED|ERROR) tests/test_attacker.py::(.+?)(?: - .*)?$", r.stdout, flags=re.M))
    passed = int(m.group(1)) if (m := re.search(r"(\d+) passed", r.stdout)) else 0
    assert failed <= set(KNOWN_ATTACKER_ON_CITUS), (failed - set(KNOWN_ATTACKER_ON_CITUS), r.stdout[-4000:])
    assert passed >= 90, r.stdout[-3000:]


def test_copies_of_building_rows_follow_the_buildings_on_citus(citus):
    """tests/test_security_db.py's check of the building copies, without the anti-join that
    crashes Citus 13.2.2: the system sees every row, a worker the rows of their grid's buildings,
    no scope nothing, for the distributed copies (after a walking-distance run stored them)."""
    from gis import scope as scopes
    from gis.scope import SYSTEM, Scope

    r = subprocess.run([sys.executable, "-c", "from gis.db import transaction\nfrom analysis import services\n"
                        "with transaction(owner=True) as c: services.refresh(c, full=True)"],
                       env=citus_env(), cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    with citus["owner"].connect() as c:
        grid = int(c.execute(text("SELECT grid_id FROM service_buildings WHERE grid_id IS NOT NULL ORDER BY grid_id LIMIT 1")).scalar_one())
        total = c.execute(text("SELECT count(*) FROM service_buildings")).scalar_one()
        mine = c.execute(text("SELECT count(*) FROM service_buildings s JOIN buildings b ON b.id = s.building_id "
                              "AND b.district_code = s.district_code WHERE b.grid_id = :g"), {"g": grid}).scalar_one()
    assert 0 < mine < total

    def count(scope) -> int:
        with citus["app"].connect() as c, c.begin():
            if scope is not None:
                c.exec_driver_sql(f"SET LOCAL wangge.scope = '{scopes.token(scope)}'")
            return int(c.execute(text("SELECT count(*) FROM service_buildings")).scalar_one())

    assert count(SYSTEM) == total
    assert count(Scope(user="w", role="worker", grids=(grid,))) == mine
    assert count(None) == 0


def test_a_forged_scope_set_later_in_the_transaction_never_widens(citus):
    """The one semantic difference from one node, bounded: the workers keep the signed scope of
    the transaction's start; a forged value set later reaches only the coordinator."""
    from gis import scope as scopes
    from gis.scope import Scope

    with citus["owner"].connect() as c:
        grid = int(c.execute(text("SELECT grid_id FROM buildings WHERE grid_id IS NOT NULL ORDER BY grid_id LIMIT 1")).scalar_one())
        mine = c.execute(text("SELECT count(*) FROM buildings WHERE grid_id = :g"), {"g": grid}).scalar_one()
        total = c.execute(text("SELECT count(*) FROM buildings")).scalar_one()
    assert 0 < mine < total
    forged = scopes.token(Scope(user="x", role="admin"), key="not-the-secret-" * 3)
    with citus["app"].connect() as c:
        with c.begin():
            c.exec_driver_sql(f"SET LOCAL wangge.scope = '{scopes.token(Scope(user='w', role='worker', grids=(grid,)))}'")
            assert c.execute(text("SELECT count(*) FROM buildings")).scalar_one() == mine
            c.execute(text("SELECT set_config('wangge.scope', :v, true)"), {"v": forged})
            assert c.execute(text("SELECT count(*) FROM buildings")).scalar_one() == mine  # not total
            c.exec_driver_sql(f"SET LOCAL wangge.scope = '{forged}'")  # propagated, verified there: nothing
            assert c.execute(text("SELECT count(*) FROM buildings")).scalar_one() == 0


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
    try:
        with conn.begin_nested():
            out["figures"] = {k: (round(float(v), 6) if v is not None else None) for k, v in overview.figures(conn).items()}
    except Exception as e:  # the overview's staffing part reads assignments, kept on the coordinator on Citus
        out["figures_error"] = str(getattr(e, "orig", e))
    gs = grid_stats(conn)
    out["grid_stats"] = gs[["code", "households", "residents", "buildings"]].astype(str).values.tolist()
    try:
        with conn.begin_nested():
            out["community_table"] = len(overview.community_table(conn))
    except Exception as e:
        out["community_table_error"] = str(getattr(e, "orig", e))
    first = int(gs.sort_values("code")["id"].iloc[0])
with use_scope(Scope(user="w", role="worker", grids=(first,))), transaction() as conn:
    out["worker_buildings"] = sorted(int(i) for i in grid_buildings(conn, first)["id"])
    out["worker_all_buildings"] = int(conn.exec_driver_sql("SELECT count(*) FROM buildings").scalar())
with transaction(owner=True) as conn:
    services.refresh(conn, full=True)
with use_scope(SYSTEM), transaction() as conn:
    cov = services.category_coverage(conn)
    cov = cov[[c for c in cov.columns if "computed" not in c and "_at" not in c]]  # when it ran differs, not what
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
    # the leader's overview and the community table run on Citus too (assignments replicated in the row
    # form of their policies, migration 0026; the grid figures grouped instead of a lateral per grid)
    assert "figures" in on_one and "figures" in on_citus, on_citus.get("figures_error")
    assert on_citus["community_table"] == on_one["community_table"] > 0
    assert sorted(on_citus.pop("services")) == sorted(on_one.pop("services"))
    assert on_citus == on_one


def test_overview_follows_building_writes_and_unversioned_tiles_are_not_cached(citus, demo):
    """Migration 0024's summaries on Citus (gis/citus.py SUMMARY_TRIGGERS): no statement trigger is
    left on any node (they cannot run on shards), building_stats is the view summing the buildings,
    so the overview follows a write at once, and the tile cache, whose versions nothing bumps on
    Citus, is off for those layers (tile_version None) while one node keeps it."""
    from gis import scope as scopes
    from gis.citus import SUMMARY_TRIGGERS
    from gis.db import owner_engine
    from gis.scope import SYSTEM
    from analysis import overview
    from webapp.tiles import EPOCH_LAYERS, tile_version

    names = "|".join(p for ps in SUMMARY_TRIGGERS.values() for p in ps)
    with citus["owner"].connect() as c:
        assert c.execute(text("SELECT relkind FROM pg_class WHERE oid = 'public.building_stats'::regclass")).scalar_one() == "v"
        left = c.execute(text("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgname ~ :p"), {"p": f"^({names})_"}).scalar_one()
        on_workers = c.execute(text("SELECT result FROM run_command_on_workers(:q)"),
                               {"q": f"SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgname ~ '^({names})_'"}).scalars().all()
        bid = int(c.execute(text("SELECT id FROM buildings WHERE households IS NOT NULL ORDER BY id LIMIT 1")).scalar_one())
    assert left == 0 and on_workers and set(on_workers) == {"0"}, (left, on_workers)

    def households() -> int:
        with citus["app"].connect() as c, c.begin():
            c.exec_driver_sql(f"SET LOCAL wangge.scope = '{scopes.token(SYSTEM)}'")
            return int(overview.figures(c)["households"])

    before = households()
    with citus["owner"].begin() as c:
        c.execute(text("UPDATE buildings SET households = households + 7 WHERE id = :i"), {"i": bid})
    try:
        assert households() == before + 7  # today's figure, not a copy the shards could not update
    finally:
        with citus["owner"].begin() as c:
            c.execute(text("UPDATE buildings SET households = households - 7 WHERE id = :i"), {"i": bid})
    assert households() == before

    with citus["app"].connect() as c, c.begin():
        c.exec_driver_sql(f"SET LOCAL wangge.scope = '{scopes.token(SYSTEM)}'")
        assert {layer: tile_version(c, layer, 14, 13489, 6208) for layer in EPOCH_LAYERS} == dict.fromkeys(EPOCH_LAYERS)
    with owner_engine().connect() as c:  # the single node: versions kept, tiles cached
        assert all(isinstance(tile_version(c, layer, 14, 13489, 6208), int) for layer in EPOCH_LAYERS)
