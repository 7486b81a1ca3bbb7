"""Row-level access in the database (issue 8): what the app role can read and write under
each scope, and that nothing else gets through.

Every query here runs on the app's own connection (``gis.db.app_engine()``, role
``wangge_app``), the one the dashboard uses; the owner connection is only the yardstick
(it is not bound by the policies) and sets up committed events.
"""
from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from gis import scope as scopes
from gis.db import app_engine, owner_engine
from gis.scope import SYSTEM, Scope, use_scope
from gis.settings import get_settings

TABLES = ("buildings", "building_groups", "assignments", "events")


# --- fixtures: two grids in two communities, and events in both ------------------------------------

@pytest.fixture(scope="module")
def area(demo) -> Iterator[dict]:
    """Grid A (first grid of the first community), grid A2 (its neighbour in the same
    community) and grid B (in another community); one committed event in each."""
    with owner_engine().begin() as c:
        rows = c.execute(text("""
            SELECT id, community_code FROM grids WHERE valid_to IS NULL ORDER BY code""")).all()
        a, a2 = rows[0], rows[1]
        b = next(r for r in rows if r.community_code != a.community_code)
        ids = []
        for g in (a, a2, b):
            ids.append(c.execute(text("""
                INSERT INTO events (district_code, community_code, grid_id, kind, reported_by, description, geom)
                SELECT district_code, community_code, id, 'test_security', 'pytest', 'secret detail of grid ' || code,
                       ST_PointOnSurface(geom) FROM grids WHERE id = :g RETURNING id"""), {"g": g.id}).scalar_one())
    try:
        yield {"a": int(a.id), "a2": int(a2.id), "b": int(b.id), "com_a": a.community_code.strip(),
               "com_b": b.community_code.strip(), "events": ids}
    finally:
        with owner_engine().begin() as c:
            c.execute(text("DELETE FROM events WHERE kind = 'test_security'"))


def owner_count(sql: str, **params) -> int:
    with owner_engine().connect() as c:
        return int(c.execute(text(sql), params).scalar_one())


def app_scalar(sql: str, scope: Scope | None, **params):
    with use_scope(scope), app_engine().connect() as c:
        return c.execute(text(sql), params).scalar_one()


@pytest.fixture
def worker_a(area) -> Scope:
    return Scope(user="w_a", role="worker", grids=(area["a"],))


@pytest.fixture
def app_conn(worker_a) -> Iterator[Connection]:
    """The app's connection in a transaction under grid A's worker (rolled back)."""
    with use_scope(worker_a), app_engine().connect() as c:
        tx = c.begin()
        try:
            yield c
        finally:
            tx.rollback()


# --- the roles themselves ------------------------------------------------------------------------------

def test_app_role_is_not_the_owner_and_owns_nothing():
    s = get_settings()
    with app_engine().connect() as c:
        me = c.execute(text("SELECT current_user, session_user")).one()
        assert me[0] == me[1] == s.db_app_user
        assert me[0] != s.db_owner
        role = c.execute(text("SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user")).one()
        assert tuple(role) == (False, False, False, False)
        owned = c.execute(text("""
            SELECT count(*) FROM pg_class k JOIN pg_namespace n ON n.oid = k.relnamespace
            WHERE k.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)""")).scalar_one()
        assert owned == 0
        schemas = c.execute(text("SELECT count(*) FROM pg_namespace WHERE nspowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)")).scalar_one()
        assert schemas == 0
        assert c.execute(text("SELECT pg_has_role(current_user, :o, 'MEMBER')"), {"o": s.db_owner}).scalar_one() is False
        # the protected tables belong to the owner and have row-level security on
        rls = dict(c.execute(text("""
            SELECT relname, relrowsecurity AND pg_get_userbyid(relowner) = :o FROM pg_class
            WHERE relname IN ('buildings', 'building_groups', 'assignments', 'events', 'users')"""), {"o": s.db_owner}).all())
        assert rls == dict.fromkeys(("buildings", "building_groups", "assignments", "events", "users"), True)


@pytest.mark.parametrize("table", [*TABLES, "users"])
def test_no_scope_means_no_rows_not_all_rows(area, table):
    assert owner_count(f"SELECT count(*) FROM {table}") > 0 or table == "users"
    assert app_scalar(f"SELECT count(*) FROM {table}", None) == 0
    # the setting is empty rather than absent on a pooled connection: still nothing
    with use_scope(None), app_engine().connect() as c:
        assert c.execute(text("SELECT current_setting('wangge.scope', true)")).scalar_one() in ("", None)
        assert c.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0


def test_system_scope_sees_everything(area):
    for table in TABLES:
        assert app_scalar(f"SELECT count(*) FROM {table}", SYSTEM) == owner_count(f"SELECT count(*) FROM {table}")


# --- a grid worker ---------------------------------------------------------------------------------------

def test_worker_sees_exactly_their_grid(area, worker_a):
    a = area["a"]
    assert app_scalar("SELECT count(*) FROM buildings", worker_a) == owner_count("SELECT count(*) FROM buildings WHERE grid_id = :g", g=a) > 0
    assert app_scalar("SELECT count(*) FROM building_groups", worker_a) == owner_count(
        "SELECT count(*) FROM building_groups bg JOIN buildings b ON b.id = bg.building_id WHERE b.grid_id = :g", g=a) > 0
    assert app_scalar("SELECT count(*) FROM assignments", worker_a) == owner_count("""
        SELECT count(*) FROM assignments a LEFT JOIN buildings b ON b.id = a.building_id
        WHERE a.grid_id = :g OR b.grid_id = :g""", g=a) > 0
    assert app_scalar("SELECT count(*) FROM events", worker_a) == 1


QUERIES_FOR_B = [
    "SELECT count(*) FROM buildings WHERE grid_id = :b",
    "SELECT count(*) FROM buildings WHERE grid_id <> :a",
    "SELECT count(*) FROM buildings b JOIN grids g ON g.id = b.grid_id WHERE g.id = :b",
    "SELECT coalesce(sum(households), 0) FROM buildings WHERE grid_id = :b",
    "SELECT count(*) FROM building_groups WHERE building_id IN (SELECT id FROM buildings WHERE grid_id <> :a)",
    "SELECT count(*) FROM building_groups bg WHERE NOT EXISTS (SELECT 1 FROM buildings b WHERE b.id = bg.building_id AND b.grid_id = :a)",
    "SELECT count(*) FROM assignments WHERE grid_id = :b",
    "SELECT count(*) FROM assignments WHERE grid_id IS NOT NULL AND grid_id <> :a",
    "SELECT count(*) FROM events WHERE grid_id <> :a",
    "SELECT count(*) FROM events WHERE description LIKE '%' || (SELECT code FROM grids WHERE id = :b)",
    "SELECT count(*) FROM (SELECT * FROM buildings TABLESAMPLE SYSTEM (100)) x WHERE grid_id = :b",
    "WITH RECURSIVE r AS (SELECT id FROM buildings WHERE grid_id = :b UNION SELECT id FROM r) SELECT count(*) FROM r",
    "SELECT count(*) FROM buildings WHERE ctid IN (SELECT ctid FROM buildings) AND grid_id = :b",
    "SELECT count(*) FROM group_totals('community')",
    "SELECT count(*) FROM group_totals('subdistrict')",
    "SELECT count(*) FROM group_totals('grid') WHERE code <> (SELECT code FROM grids WHERE id = :a)",
]


@pytest.mark.parametrize("sql", QUERIES_FOR_B)
def test_worker_cannot_reach_other_grids_by_any_query(area, worker_a, sql):
    assert app_scalar(sql, worker_a, a=area["a"], b=area["b"]) == 0


def test_worker_cannot_read_other_grids_through_the_planner_statistics(area, worker_a):
    """pg_stats holds sampled column values; PostgreSQL hides them from roles without
    SELECT on every row (RLS tables), and the app role cannot read the secret either."""
    with use_scope(worker_a), app_engine().connect() as c:
        n = c.execute(text("SELECT count(*) FROM pg_stats WHERE tablename IN ('buildings', 'events', 'building_groups')")).scalar_one()
        assert n == 0
        with pytest.raises(ProgrammingError, match="permission denied"):
            c.execute(text("SELECT value FROM wangge_secrets"))


def _forged(payload: dict, key: str = "not-the-secret-but-long-enough-000000") -> str:
    body = base64.b64encode(json.dumps(payload).encode()).decode()
    import hashlib
    import hmac

    return f"{body}.{hmac.new(key.encode(), body.encode(), hashlib.sha256).hexdigest()}"


def _set(c: Connection, value: str, local: bool = True) -> None:
    c.execute(text("SELECT set_config('wangge.scope', :v, :l)"), {"v": value, "l": local})


def test_forged_unsigned_and_expired_scopes_give_no_rows(area, app_conn):
    b = area["b"]
    admin = {"u": "x", "r": "admin", "c": [], "g": [], "d": True, "exp": 4102444800}
    worker_b = {"u": "x", "r": "worker", "c": [], "g": [b], "d": False, "exp": 4102444800}
    good_body = scopes.token(Scope(user="x", role="admin")).split(".")[0]
    values = [
        json.dumps(admin),  # plain JSON
        base64.b64encode(json.dumps(admin).encode()).decode(),  # unsigned payload
        base64.b64encode(json.dumps(admin).encode()).decode() + "." + "0" * 64,  # signature of zeros
        _forged(admin), _forged(worker_b),  # signed with a wrong key
        good_body + "." + scopes.token(Scope(user="x", role="worker", grids=(area["a"],))).split(".")[1],  # signature of another payload
        scopes.token(Scope(user="x", role="admin"), ttl_s=-5),  # expired, properly signed
        scopes.token(Scope(user="x", role="admin"), now=0),  # signed in 1970
        "'; SELECT 1; --", "admin", "system",
    ]
    for v in values:
        _set(app_conn, v)
        for table in TABLES:
            assert app_conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0, (v, table)
        assert app_conn.execute(text("SELECT wangge_scope()")).scalar_one() is None


def test_session_level_setting_and_nested_transactions_do_not_widen(area, app_conn):
    """SET (session), SET LOCAL inside a savepoint, RESET: each leaves the worker with their
    own grid or with nothing, never with grid B."""
    b = area["b"]
    q = text("SELECT count(*) FROM buildings WHERE grid_id = :b")
    forged = _forged({"u": "x", "r": "worker", "c": [], "g": [b], "d": False, "exp": 4102444800})
    app_conn.execute(text(f"SET wangge.scope = '{forged}'"))
    assert app_conn.execute(q, {"b": b}).scalar_one() == 0
    sp = app_conn.begin_nested()
    app_conn.execute(text(f"SET LOCAL wangge.scope = '{forged}'"))
    assert app_conn.execute(q, {"b": b}).scalar_one() == 0
    sp.rollback()
    app_conn.execute(text("RESET wangge.scope"))
    assert app_conn.execute(text("SELECT count(*) FROM buildings")).scalar_one() == 0
    app_conn.execute(text("RESET ALL"))
    assert app_conn.execute(q, {"b": b}).scalar_one() == 0


@pytest.mark.parametrize("sql", [
    "SET ROLE {owner}",
    "SET SESSION AUTHORIZATION {owner}",
    "SET ROLE postgres",
    "ALTER TABLE buildings DISABLE ROW LEVEL SECURITY",
    "DROP POLICY buildings_read ON buildings",
    "CREATE POLICY sneak ON buildings FOR SELECT USING (true)",
    "ALTER ROLE {app} BYPASSRLS",
    "UPDATE wangge_secrets SET value = repeat('x', 40)",
    "SELECT password_hash FROM users",
    "SELECT * FROM login_attempts",
    "CREATE TABLE mine (x int)",
    "CREATE FUNCTION public.leak() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'",
])
def test_app_role_cannot_escape(app_conn, sql):
    s = get_settings()
    with pytest.raises(DBAPIError):
        app_conn.execute(text(sql.format(owner=s.db_owner, app=s.db_app_user)))


def test_worker_cannot_write_outside_their_grid(area, worker_a):
    a, b = area["a"], area["b"]
    with use_scope(worker_a), app_engine().connect() as c:
        with c.begin():
            assert c.execute(text("UPDATE buildings SET households = households + 1 WHERE grid_id = :b"), {"b": b}).rowcount == 0
            assert c.execute(text("DELETE FROM building_groups WHERE building_id IN (SELECT id FROM buildings WHERE grid_id = :b)"),
                             {"b": b}).rowcount == 0
            assert c.execute(text("UPDATE events SET status = 'closed' WHERE grid_id = :b"), {"b": b}).rowcount == 0
            c.rollback()
        with c.begin(), pytest.raises(ProgrammingError, match="row-level security"):
            c.execute(text("UPDATE buildings SET grid_id = :b WHERE grid_id = :a"), {"a": a, "b": b})
        with c.begin(), pytest.raises(ProgrammingError, match="row-level security"):
            c.execute(text("""INSERT INTO events (district_code, community_code, grid_id, kind, reported_by)
                              SELECT district_code, community_code, id, 'test_security', 'w' FROM grids WHERE id = :b"""), {"b": b})
        with c.begin(), pytest.raises(ProgrammingError, match="row-level security"):
            c.execute(text("""INSERT INTO assignments (cadre_id, grid_id, district_code, role)
                              SELECT min(id), :a, '420106', 'volunteer' FROM cadres"""), {"a": a})  # workers do not assign


def test_policies_evaluate_the_scope_once_per_query(area, worker_a):
    """The scope functions sit in InitPlans (once per query), not in the per-row filter."""
    with use_scope(worker_a), app_engine().connect() as c:
        plan = "\n".join(r[0] for r in c.execute(text("EXPLAIN (VERBOSE) SELECT count(*) FROM buildings")))
    filter_line = next(line for line in plan.splitlines() if "Filter:" in line)
    assert "InitPlan" in plan
    assert "wangge_" not in filter_line, plan


# --- the other roles ----------------------------------------------------------------------------------------

def test_secretary_sees_their_community(area):
    sec = Scope(user="s", role="secretary", communities=(area["com_a"],))
    assert app_scalar("SELECT count(*) FROM buildings", sec) == owner_count(
        "SELECT count(*) FROM buildings WHERE community_code = :c", c=area["com_a"])
    assert app_scalar("SELECT count(*) FROM buildings WHERE community_code <> :c", sec, c=area["com_a"]) == 0
    assert app_scalar("SELECT count(*) FROM building_groups", sec) == owner_count(
        "SELECT count(*) FROM building_groups bg JOIN buildings b ON b.id = bg.building_id WHERE b.community_code = :c", c=area["com_a"])
    assert app_scalar("SELECT count(*) FROM events", sec) == 2  # grids A and A2, not B
    assert app_scalar("SELECT count(*) FROM assignments a JOIN grids g ON g.id = a.grid_id WHERE g.community_code <> :c", sec,
                      c=area["com_a"]) == 0
    assert app_scalar("SELECT count(*) FROM buildings", Scope(user="s", role="secretary")) == 0  # no community: nothing


def test_leader_sees_the_sub_district_but_group_rows_only_when_granted(area):
    leader = Scope(user="l", role="leader")
    for table in ("buildings", "assignments", "events"):
        assert app_scalar(f"SELECT count(*) FROM {table}", leader) == owner_count(f"SELECT count(*) FROM {table}")
    assert app_scalar("SELECT count(*) FROM building_groups", leader) == 0
    granted = Scope(user="l", role="leader", resident_detail=True)
    assert app_scalar("SELECT count(*) FROM building_groups", granted) == owner_count("SELECT count(*) FROM building_groups")
    narrowed = Scope(user="l", role="leader", communities=(area["com_b"],))
    assert app_scalar("SELECT count(*) FROM buildings WHERE community_code <> :c", narrowed, c=area["com_b"]) == 0


def test_planner_sees_buildings_not_groups_events_or_writes(area):
    planner = Scope(user="p", role="planner")
    assert app_scalar("SELECT count(*) FROM buildings", planner) == owner_count("SELECT count(*) FROM buildings")
    assert app_scalar("SELECT count(*) FROM building_groups", planner) == 0
    assert app_scalar("SELECT count(*) FROM events", planner) == 0
    with use_scope(planner), app_engine().connect() as c, c.begin():
        assert c.execute(text("UPDATE buildings SET households = households WHERE id IN (SELECT id FROM buildings LIMIT 5)")).rowcount == 0
        c.rollback()


# --- aggregates for roles that may not read the rows ------------------------------------------------------

def test_group_totals_give_leaders_the_sums_without_the_rows(area):
    truth = {r[0]: (int(r[1]), int(r[2])) for r in owner_engine().connect().execute(text("""
        SELECT g.code, sum(b.households), coalesce(sum(bg.elderly_65), 0) FROM buildings b JOIN grids g ON g.id = b.grid_id
        LEFT JOIN building_groups bg ON bg.building_id = b.id AND bg.district_code = b.district_code GROUP BY g.code"""))}
    with use_scope(Scope(user="l", role="leader")), app_engine().connect() as c:
        got = {r.code: (int(r.households), int(r.elderly_65)) for r in c.execute(text("SELECT * FROM group_totals('grid')"))}
        per_community = c.execute(text("SELECT sum(elderly_65) FROM group_totals('community')")).scalar_one()
    assert got == truth
    assert per_community == sum(v[1] for v in truth.values())
    worker_rows = app_scalar("SELECT count(*) FROM group_totals('grid')", Scope(user="w", role="worker", grids=(area["a"],)))
    assert worker_rows == 1
    assert app_scalar("SELECT count(*) FROM group_totals('grid')", None) == 0


def test_overview_figures_still_work_for_the_leader(area):
    from analysis import overview

    with owner_engine().connect() as c:
        truth = overview.figures(c)
    with use_scope(Scope(user="l", role="leader")), app_engine().connect() as c:
        assert overview.figures(c) == truth
    with use_scope(Scope(user="w", role="worker", grids=(area["a"],))), app_engine().connect() as c:
        mine = overview.figures(c)
    assert mine["households"] == owner_count("SELECT sum(households) FROM buildings WHERE grid_id = :g", g=area["a"])


# --- the audit log -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("sql", [
    "UPDATE audit_log SET actor = 'nobody'",
    "DELETE FROM audit_log",
    "TRUNCATE audit_log",
    "ALTER TABLE audit_log DISABLE TRIGGER ALL",
])
def test_app_role_cannot_alter_the_audit_log(sql):
    with use_scope(SYSTEM), app_engine().connect() as c, c.begin(), pytest.raises(ProgrammingError, match="permission denied|must be owner"):
        c.execute(text(sql))


def test_audit_rows_carry_the_verified_user(area, worker_a):
    from layers.audit import list_audit
    from layers.audit import record as audit

    try:
        with use_scope(worker_a), app_engine().begin() as c:
            audit(c, "test_security", None, actor="someone_else")
            audit(c, "test_security", None)
            # A worker's change is logged, but the log is for administrators to read (migration 0015).
            assert c.execute(text("SELECT count(*) FROM audit_log WHERE action = 'test_security'")).scalar_one() == 0
        # Nobody's scope: nothing is written (the actor would be whatever the app claims).
        with pytest.raises(ProgrammingError, match="no verified scope"), use_scope(None), app_engine().begin() as c:
            audit(c, "test_security_nobody", None, actor="admin")
        with owner_engine().connect() as c:
            # the actor is the verified scope's user, whatever the app passes (migration 0016)
            rows = c.execute(text("SELECT actor, scope_user FROM audit_log WHERE action = 'test_security' ORDER BY id")).all()
            assert [tuple(r) for r in rows] == [("w_a", "w_a"), ("w_a", "w_a")]
            assert c.execute(text("SELECT count(*) FROM audit_log WHERE action = 'test_security_nobody'")).scalar_one() == 0
        with use_scope(Scope(user="t_admin", role="admin")), app_engine().connect() as c:
            assert len(list_audit(c, actor="w_a", action="test_security")) == 2
    finally:
        with owner_engine().begin() as c:
            c.execute(text("DELETE FROM audit_log WHERE action IN ('test_security', 'test_security_nobody')"))


# --- events -----------------------------------------------------------------------------------------------

def test_worker_reports_events_in_their_grid_only(area, worker_a):
    from layers import events

    with use_scope(worker_a), app_engine().connect() as c, c.begin():
        new = events.report_event(c, "test_security", grid_id=area["a"], description="井盖缺失")
        seen = events.events_in(c)
        assert set(seen["grid_id"]) == {area["a"]} and new in set(seen["id"])
        assert len(events.events_in(c, grid_id=area["b"])) == 0
        assert c.execute(text("SELECT count(*) FROM audit_log")).scalar_one() == 0  # the log is the administrator's to read
        scopes.apply(c.connection.dbapi_connection, Scope(user="t_admin", role="admin"))  # read it as one, same transaction
        logged = c.execute(text("SELECT actor, scope_user, after FROM audit_log WHERE action = 'event_report' AND row_key = :k "
                                "AND at = now()"),  # (this transaction's row: a demo reload restarts event ids, the log keeps old ones)
                           {"k": str(new)}).one()
        scopes.apply(c.connection.dbapi_connection, worker_a)
        assert (logged.actor, logged.scope_user, logged.after["description"]) == ("w_a", "w_a", "井盖缺失")
        with pytest.raises(events.EventRefused):  # the lifecycle (migration 0018): a worker does not file
            events.act(c, new, "file")
        c.rollback()
    with use_scope(worker_a), app_engine().connect() as c, c.begin(), pytest.raises(ProgrammingError, match="row-level security"):
        events.report_event(c, "test_security", grid_id=area["b"])


# --- tables that copy building rows (migration 0013) ---------------------------------------------------------

@pytest.fixture
def copies(area) -> Iterator[None]:
    """Stored walking distances and a stored siting run over grids A and B (committed, removed after)."""
    with owner_engine().begin() as c:
        run = c.execute(text("INSERT INTO coverage_runs (analysis, mode, settings_fp) VALUES ('services', 'full', 'test_security') RETURNING id")).scalar_one()
        # (the building's place named, as the writers do: on Citus no trigger fills it, and the key is by district)
        c.execute(text("""INSERT INTO service_buildings (building_id, run_id, computed_at, building_fp, households,
                                                         district_code, community_code, grid_id)
                          SELECT id, :r, now(), 'test_security', households, district_code, community_code, grid_id
                          FROM buildings WHERE grid_id IN (:a, :b)
                          ON CONFLICT (building_id, district_code) DO NOTHING"""), {"r": run, "a": area["a"], "b": area["b"]})
        sc = c.execute(text("""INSERT INTO siting_scenarios (name, category, model, radius_m, cutoff_m, candidates, time_limit_s, status)
                               VALUES ('test_security', 'kindergarten', 'lscp', 300, 300, 'roads', 1, 'optimal') RETURNING id""")).scalar_one()
        c.execute(text("""INSERT INTO siting_scenario_demand (scenario_id, building_id, weight, district_code, community_code, grid_id)
                          SELECT :s, id, households, district_code, community_code, grid_id FROM buildings WHERE grid_id IN (:a, :b)"""),
                  {"s": sc, "a": area["a"], "b": area["b"]})
    try:
        yield
    finally:
        with owner_engine().begin() as c:
            c.execute(text("DELETE FROM siting_scenarios WHERE name = 'test_security'"))
            c.execute(text("DELETE FROM service_buildings WHERE building_fp = 'test_security'"))
            c.execute(text("DELETE FROM coverage_runs WHERE settings_fp = 'test_security'"))


@pytest.mark.parametrize("table", ["service_buildings", "service_distances", "siting_scenario_demand"])
def test_copies_of_building_rows_follow_the_buildings(area, worker_a, copies, table):
    in_b = f"SELECT count(*) FROM {table} WHERE building_id IN (SELECT id FROM buildings WHERE grid_id = :b)"
    if table != "service_distances":  # the view unnests per category; none stored here
        assert owner_count(in_b, b=area["b"]) > 0
        assert app_scalar(f"SELECT count(*) FROM {table}", SYSTEM) == owner_count(f"SELECT count(*) FROM {table}")
        assert app_scalar(f"SELECT count(*) FROM {table}", worker_a) == owner_count(
            f"SELECT count(*) FROM {table} WHERE building_id IN (SELECT id FROM buildings WHERE grid_id = :a)", a=area["a"]) > 0
    with use_scope(worker_a), app_engine().connect() as c:
        assert c.execute(text(f"SELECT count(*) FROM {table} t LEFT JOIN buildings b ON b.id = t.building_id WHERE b.id IS NULL")).scalar_one() == 0
    assert app_scalar(f"SELECT count(*) FROM {table}", None) == 0
    with owner_engine().connect() as c:
        invoker = c.execute(text("SELECT reloptions FROM pg_class WHERE relname = 'service_distances'")).scalar_one()
    assert "security_invoker=true" in (invoker or [])


def test_group_totals_wrapper_for_a_planner(area):
    from analysis.groups import group_totals

    with use_scope(Scope(user="p", role="planner")), app_engine().connect() as c:
        per_com = group_totals(c, "community")
        assert c.execute(text("SELECT count(*) FROM building_groups")).scalar_one() == 0  # rows stay hidden
    assert int(per_com["dibao"].sum()) == owner_count("SELECT coalesce(sum(dibao), 0) FROM building_groups")
    assert {area["com_a"], area["com_b"]} <= set(per_com["code"])
    with pytest.raises(ValueError):
        group_totals(None, "street")


@pytest.mark.parametrize("scope", [SYSTEM, Scope(user="a", role="admin"), Scope(user="l", role="leader"),
                                   Scope(user="l", role="leader", resident_detail=True), Scope(user="p", role="planner"),
                                   Scope(user="s", role="secretary", communities=("420106010001",)),
                                   Scope(user="w", role="worker", grids=(1,))])
def test_sees_group_rows_says_what_the_policy_does(area, scope):
    with use_scope(scope), app_engine().connect() as c:
        visible = c.execute(text("SELECT count(*) FROM building_groups")).scalar_one() > 0
    assert scope.sees_group_rows == visible


def test_copy_into_policy_tables_goes_through_the_policies(area, worker_a):
    """COPY FROM is refused where row-level security applies; gis.copy stages the rows
    and inserts them, so the system's analyses still write and the policies check each row."""
    import pandas as pd

    from gis.copy import copy_frame

    with owner_engine().connect() as c:
        a_bld, b_bld = (int(c.execute(text("SELECT min(id) FROM buildings WHERE grid_id = :g"), {"g": g}).scalar_one())
                        for g in (area["a"], area["b"]))
    planner_a = Scope(user="p_a", role="planner", communities=(area["com_a"],))
    # siting is the planner's job (migration 0016): a worker may not store a scenario at all
    with use_scope(worker_a), app_engine().connect() as c, c.begin():
        with pytest.raises(ProgrammingError, match="row-level security"):
            c.execute(text("""INSERT INTO siting_scenarios (name, category, model, radius_m, cutoff_m, candidates, time_limit_s, status)
                              VALUES ('test_security', 'kindergarten', 'lscp', 300, 300, 'roads', 1, 'optimal')"""))
    for scope, building, ok in ((SYSTEM, b_bld, True), (planner_a, a_bld, True), (planner_a, b_bld, False)):
        with use_scope(scope), app_engine().connect() as c, c.begin():
            sc = c.execute(text("""INSERT INTO siting_scenarios (name, category, model, radius_m, cutoff_m, candidates, time_limit_s, status)
                                   VALUES ('test_security', 'kindergarten', 'lscp', 300, 300, 'roads', 1, 'optimal') RETURNING id""")).scalar_one()
            frame = pd.DataFrame({"scenario_id": [sc], "building_id": [building], "weight": [1.0]})
            if ok:
                copy_frame(c, "siting_scenario_demand", frame)
                assert c.execute(text("SELECT count(*) FROM siting_scenario_demand WHERE scenario_id = :s"), {"s": sc}).scalar_one() == 1
            else:
                with pytest.raises(ProgrammingError, match="row-level security"):
                    copy_frame(c, "siting_scenario_demand", frame)
            c.rollback()


def test_planner_siting_by_a_group_uses_grid_totals_not_rows(area):
    """A planner may not read per-building group counts; weighing demand by a group then
    shares each grid's total (an aggregate) over its homes by households: per grid the
    demand adds up to the true total, per building it is not the building's count."""
    from collections import defaultdict

    from analysis.siting_inputs import build_input

    with use_scope(Scope(user="p", role="planner")), app_engine().connect() as c:
        inp = build_input(c, "elderly_day_care", weight="elderly_65")
    per_grid: dict[str, float] = defaultdict(float)
    for grid, w in zip(inp.demand_group, inp.weight):
        per_grid[str(grid)] += float(w)
    with owner_engine().connect() as c:
        truth = dict(c.execute(text("""
            SELECT g.code, sum(bg.elderly_65) FROM buildings b JOIN grids g ON g.id = b.grid_id
              JOIN building_groups bg ON bg.building_id = b.id AND bg.district_code = b.district_code GROUP BY g.code HAVING sum(bg.elderly_65) > 0""")).all())
        rows = dict(c.execute(text("SELECT b.id, bg.elderly_65 FROM buildings b JOIN building_groups bg ON bg.building_id = b.id")).all())
    assert set(per_grid) == set(truth)
    assert all(per_grid[k] == pytest.approx(float(v)) for k, v in truth.items())
    differs = sum(1 for i, w in zip(inp.demand_id, inp.weight) if abs(float(w) - float(rows.get(int(i), 0))) > 1e-6)
    assert differs > len(inp.weight) // 2  # estimates, not the rows the policy withholds

