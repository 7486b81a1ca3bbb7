"""The attacker's test (issue 19): SQL run on the application's connection, as an injection or
a bug in the web process would run it, against every table, view, sequence and function the
app role may use, listed from the catalog, not by hand.

Scopes tried: none, forged (unsigned admin payload, admin payload signed with another key,
an expired admin scope), and each role's real scope on the demo (system, admin, leader,
secretary of one community, worker of one grid, planner, and the events roles (issue 16):
dispatcher of the sub-district, a unit with one case dispatched to it, hotline). A few
cases in the worker's grid (one dispatched to the unit, with its log, a photo and a sealed
reporter) are made for the run, so that every event table holds rows to try. For every table: SELECT (rows
seen or not), INSERT (a copy of a row, refused or not), UPDATE and DELETE (rows touched or
not), each in a transaction rolled back. For every function: called with no scope.

What each may do is declared in ONE place, ``EXPECT`` (tables) and ``FUNCTIONS`` (functions)
below. A table or function that the catalog shows and these do not declare fails the test
with the line to add; a table the app role can touch without ENABLE and FORCE row-level
security fails too.
"""
from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from gis import scope as scopes
from gis.db import app_engine, owner_engine
from gis.scope import SYSTEM, Scope, use_scope
from gis.settings import get_settings

ROLES = ("system", "admin", "leader", "secretary", "worker", "planner", "dispatcher", "unit", "hotline")
ALL = " ".join(ROLES)
ANYONE = ALL  # every signed-in role
ADMIN = "system admin"
NOBODY = ""
STAFF = "system admin leader secretary worker planner"  # the roles of the layers (not the events roles)
# events (issue 16, point 9): a worker their grids, a secretary their community, leader, dispatcher and
# hotline the sub-district, a unit the cases dispatched to it; planners none
CASES = "system admin leader secretary worker dispatcher unit hotline"


@dataclass(frozen=True)
class T:
    """Who (space-separated roles of ``ROLES``) may read rows of a table, insert, update, delete.

    ``write`` sets insert, update and delete at once. ``force``: the table must have ENABLE and
    FORCE ROW LEVEL SECURITY (only a table whose policies another issue owns, or one the app role has no
    privilege on at all and whose comment says why, may say False)."""

    read: str
    write: str = NOBODY
    insert: str | None = None
    update: str | None = None
    delete: str | None = None
    force: bool = True

    def may(self, op: str, role: str) -> bool:
        chosen = {"read": self.read, "insert": self.insert, "update": self.update, "delete": self.delete}[op]
        return role in (self.write if chosen is None else chosen).split()


# ---- the declaration: every table and view of the schema (PostGIS's own are left out) ----------------
EXPECT: dict[str, T] = {
    # reference layers: every signed-in role reads them, administrators edit them
    "districts": T(ANYONE, ADMIN), "subdistricts": T(ANYONE, ADMIN), "communities": T(ANYONE, ADMIN),
    "facility_categories": T(ANYONE, NOBODY), "cameras": T(ANYONE, ADMIN), "facilities": T(ANYONE, ADMIN),
    "roads": T(ANYONE, ADMIN),
    # grids: leaders and secretaries bump staff_version when they assign (their area only)
    "grids": T(ANYONE, ADMIN, update="system admin leader secretary"),
    "buildings": T(STAFF, "system admin leader secretary worker"),
    "building_groups": T("system admin secretary worker", "system admin secretary worker"),  # leader: with resident_detail only
    "assignments": T(STAFF, "system admin leader secretary"),
    # cadres: names and phones to those who staff grids, in their area; never to planners
    "cadres": T("system admin leader secretary worker", "system admin leader secretary"),
    # coverage results: recomputing is the leader's; per-home rows follow the buildings
    "camera_coverage": T(ANYONE, "system admin leader"), "camera_key_places": T(ANYONE, "system admin leader"),
    "camera_views": T(ANYONE, "system admin leader"), "compliance_results": T(ANYONE, "system admin leader"),
    "coverage_runs": T(ANYONE, "system admin leader"), "service_facilities": T(ANYONE, "system admin leader"),
    "service_buildings": T(STAFF, "system admin leader"),  # per-home rows: whoever reads the buildings
    "service_distances": T(STAFF, NOBODY),  # a security_invoker view over the two above
    # siting: the planner's job
    "siting_scenarios": T("system admin leader planner", "system admin planner"),
    "siting_scenario_sites": T("system admin leader planner", "system admin planner"),
    # per-home rows of a scenario follow the buildings (migration 0013): whoever reads a home reads its demand
    # weight; a worker or secretary sees their own homes' rows, not the scenario or its sites
    "siting_scenario_demand": T(STAFF, "system admin planner"),
    "grid_drafts": T(ADMIN, ADMIN), "grid_draft_parts": T(ADMIN, ADMIN),
    # accounts: an administrator manages users; everyone reads their own row (never the hash)
    "users": T(ADMIN, ADMIN, delete=NOBODY),  # (and every user their own row; the app role has no DELETE: deactivate)
    "audit_log": T(ADMIN, NOBODY),  # written by audit_write() only
    "user_sessions": T(NOBODY, NOBODY), "login_attempts": T(NOBODY, NOBODY),
    "wangge_secrets": T(NOBODY, NOBODY), "wangge_config": T(NOBODY, NOBODY),
    # events (issue 16, migration 0018): reported by INSERT (events_guard makes it a report whatever the app
    # sends; units and planners report nothing), changed only by event_act() (a direct UPDATE is refused
    # by the guard inside the area and finds no rows outside it), never deleted by the app
    "events": T(CASES, NOBODY, insert="system admin leader secretary worker dispatcher hotline"),
    "event_transitions": T(CASES, NOBODY),  # the log: written by event_act() and the report trigger only
    # photos: read with the case, added to a case the scope may change (a unit: its current cases)
    "event_photos": T(CASES, NOBODY, insert=CASES),
    "event_reporters": T(NOBODY, NOBODY, insert="system hotline"),  # sealed: read through event_reporter() only
    "event_allowed": T(ANYONE, NOBODY),
    "event_unit_members": T("system admin unit", ADMIN),  # (a unit user reads its own row)
    # people (issue 17, migration 0019): the registers grant the app role NOTHING; every read and write goes
    # through owner SECURITY DEFINER functions (declared in FUNCTIONS, tried per role in
    # test_people_functions_follow_the_roles) that log each person returned; their policies (FORCEd, so
    # they bind the owner inside those functions): a worker their grids' persons, a secretary their
    # community, leader/planner/admin none (counts only through people_counts/patrol_coverage)
    "persons": T(NOBODY, NOBODY), "person_groups": T(NOBODY, NOBODY), "visits": T(NOBODY, NOBODY),
    "person_schedule": T(NOBODY, NOBODY),  # a view over persons, read inside the functions only
    "person_access_log": T(NOBODY, NOBODY),  # append-only (trigger), written by the functions, read via people_access()
    "visit_intervals": T(ANYONE, NOBODY),  # the schedule's settings with their sources; the migration writes them
    # tracks: imported by the system (CLI) or recorded by a worker/secretary in their area; read in the area
    "patrol_tracks": T("system secretary worker", NOBODY, insert="system secretary worker"),
    # Not FORCEd, on purpose: any policy on it keeps PostgreSQL from using the spatial index under the
    # non-leakproof && (1,438 ms against 0.4 ms for one grid's buildings, bench/bench_people.py). It is safe
    # because the app role has no privilege on it at all (ENABLE without policies for the app, no grant):
    # only the owner's trigger writes it and the owner's patrol_coverage() reads it, limited to the caller's area.
    "patrol_segments": T(NOBODY, NOBODY, force=False),
    # the leader's dashboard at a city's size (issue 18, migration 0024): building totals per (community, grid)
    # kept by the owner's triggers, read under the buildings' own policy; tile versions per z14 cell (no data)
    "building_stats": T(STAFF, NOBODY),
    "tile_epochs": T(ANYONE, NOBODY),
    # street lengths per grid kept by patrol_coverage() between road/outline changes (migration 0030): the owner's only
    "grid_streets": T(NOBODY, NOBODY), "grid_streets_version": T(NOBODY, NOBODY),
    "api_keys": T(NOBODY, NOBODY),  # hashes, through apikey_check() and the owner's apikey_add/revoke only
    "alembic_version": T(NOBODY, NOBODY, force=False),  # the app role has no privilege at all
}

# Every function of ours the app role may EXECUTE, and what a caller with no scope gets:
# "ok" (runs; must hand out nothing of anyone's) or "refused" (insufficient privilege).
FUNCTIONS: dict[str, str] = {
    "wangge_scope()": "ok", "wangge_scope_role()": "ok", "wangge_scope_user()": "ok", "wangge_scope_detail()": "ok",
    "wangge_scope_communities()": "ok", "wangge_scope_grids()": "ok", "wangge_area(text,boolean)": "ok",
    "group_totals(text)": "ok", "audit_version()": "ok",
    "audit_write(text,text,text,text,jsonb,jsonb,text)": "refused",
    "auth_challenge(text)": "ok", "auth_login(text,text,text,text)": "ok", "auth_user_by_oidc(text)": "ok",
    "session_open_oidc(text,text,text)": "ok", "session_resolve(text)": "ok", "session_revoke(text)": "ok",
    "session_revoke_user(bigint)": "refused", "auth_unlock(text)": "refused",
    # events (issue 16)
    "wangge_event_area(boolean)": "ok", "event_act(bigint,text,text,jsonb)": "refused",
    "event_reporter(bigint)": "refused", "apikey_check(text)": "ok",
    # (GeoReport's public fields of public cases: what the public API publishes, scope or not)
    "open311_requests(bigint[],text[],text,timestamp with time zone,timestamp with time zone,integer)": "ok",
    # people (issue 17): with no scope the reads (reveal too) return nothing and log nothing; export and
    # visit_record refuse; people_area() is the policies' helper (no scope: no area)
    "people_area()": "ok", "people_list(bigint,text,date,text,text,bigint)": "ok", "people_detail(bigint,text,text)": "ok",
    "people_reveal(bigint,text,text)": "ok", "people_export(text,text,text)": "refused",
    "visit_record(bigint,timestamp with time zone,text,text,double precision,double precision,double precision,text)": "refused",
    "people_counts(text,date)": "ok", "people_access(bigint,integer)": "ok",
    "patrol_coverage(date,date,double precision)": "ok", "patrol_hours(date,date)": "ok",
}

# On a Citus cluster (tests/test_citus.py runs this file against the coordinator with
# WANGGE_ATTACKER_ON_CITUS=1): what `wangge db distribute` adds, declared like the rest, and FORCE
# not required: distribute lifts it (gis/citus.py: Citus copies rows into shards with COPY, which
# FORCE refuses, and Citus 13.2 crashes planning some joins under the owner's quals); the owner then
# passes by ownership, the same answer as 0016's current_user clause. Every other check holds.
ON_CITUS = os.environ.get("WANGGE_ATTACKER_ON_CITUS") == "1"
# Writes: on Citus a write refused where EXPECT allows it is tolerated (a narrowing: the app role's
# INSERT … SELECT is refused as COPY under row-level security, and a reference table's later writes
# in that transaction touch nothing); a write allowed where EXPECT refuses it, or any read that
# differs, still fails.
if ON_CITUS:
    EXPECT["wangge_citus_pending_fks"] = T(NOBODY, force=False)  # distribute's bookkeeping, owner only
    FUNCTIONS["wangge_row_ok(text,boolean,character,bigint)"] = "ok"  # the row form of the policies (no scope: false)

HOW_TO_DECLARE = (
    "declare it in tests/test_attacker.py: add to EXPECT a line like\n"
    '    "{name}": T(read="system admin leader", write="system admin"),\n'
    "(roles: system admin leader secretary worker planner dispatcher unit hotline; write= or insert=/update=/delete=), and give the table\n"
    "ALTER TABLE {name} ENABLE ROW LEVEL SECURITY; ALTER TABLE {name} FORCE ROW LEVEL SECURITY;\n"
    "with policies on the signed scope (wangge_scope_role()/wangge_area(table, write), see migration 0016) "
    "and grant wangge_app only what the job needs"
)


def _app_role() -> str:
    return get_settings().db_app_user


def _catalog_relations() -> dict[str, dict]:
    with owner_engine().connect() as c:
        rows = c.execute(text("""
            SELECT c.relname AS name, c.relkind AS kind, c.relrowsecurity AS rls, c.relforcerowsecurity AS force,
                   has_table_privilege(:app, c.oid, 'SELECT') OR EXISTS (
                     SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                       AND has_column_privilege(:app, c.oid, a.attnum, 'SELECT')) AS can_select,
                   has_table_privilege(:app, c.oid, 'INSERT') AS can_insert,
                   has_table_privilege(:app, c.oid, 'UPDATE') OR EXISTS (
                     SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                       AND has_column_privilege(:app, c.oid, a.attnum, 'UPDATE')) AS can_update,
                   has_table_privilege(:app, c.oid, 'DELETE') AS can_delete,
                   has_table_privilege(:app, c.oid, 'TRUNCATE') AS can_truncate
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
              AND c.relname NOT IN ('geometry_columns', 'geography_columns', 'spatial_ref_sys')"""),
            {"app": _app_role()}).mappings().all()
    return {r["name"]: dict(r) for r in rows}


def _catalog_functions() -> set[str]:
    with owner_engine().connect() as c:
        rows = c.execute(text("""
            SELECT p.proname || '(' || coalesce(array_to_string(ARRAY(
                     SELECT format_type(t, NULL) FROM unnest(p.proargtypes::oid[]) t), ','), '') || ')'
            FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'public' AND has_function_privilege(:app, p.oid, 'EXECUTE')
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')"""),
            {"app": _app_role()}).scalars().all()
    return {r.replace("character varying", "text").replace(", ", ",") for r in rows}


# ---- scopes ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_scopes(demo) -> dict[str, Scope]:
    """Each role's scope on the demo: a secretary of one community, a worker of one grid."""
    with owner_engine().connect() as c:
        grid, community = c.execute(text("""SELECT g.id, g.community_code FROM grids g
                                            WHERE g.valid_to IS NULL AND g.id IN (SELECT b.grid_id FROM buildings b)  -- (not correlated: Citus runs it)
                                            ORDER BY g.code LIMIT 1""")).one()
    return {"system": SYSTEM, "admin": Scope(user="atk_admin", role="admin"),
            "leader": Scope(user="atk_leader", role="leader"),
            "secretary": Scope(user="atk_secretary", role="secretary", communities=(community.strip(),)),
            "worker": Scope(user="atk_worker", role="worker", grids=(int(grid),)),
            "planner": Scope(user="atk_planner", role="planner"),
            "dispatcher": Scope(user="atk_dispatcher", role="dispatcher"),
            "unit": Scope(user="atk_unit", role="unit"),
            "hotline": Scope(user="atk_hotline", role="hotline")}


ATK_UNIT = "atk_unit_code"


@pytest.fixture(scope="module")
def cases(demo, real_scopes) -> dict:
    """Cases in the worker's grid, made by the owner: one reported (its log row from the trigger),
    one dispatched to the unit (a log row, a photo, a sealed reporter); the unit user's membership."""
    grid = real_scopes["worker"].grids[0]
    with owner_engine().begin() as c:
        c.execute(text("DELETE FROM event_unit_members WHERE username = 'atk_unit'"))
        c.execute(text("INSERT INTO event_unit_members (username, unit_code) VALUES ('atk_unit', :u)"), {"u": ATK_UNIT})
        ids = [int(c.execute(text("""
            INSERT INTO events (district_code, community_code, grid_id, kind, class_code, status, reported_by, description,
                                unit_code, units_seen, geom)
            SELECT district_code, community_code, id, 'atk', 'E0101', :st, 'atk_worker', 'attacker test', :u,
                   CASE WHEN CAST(:u AS text) IS NULL THEN '{}'::text[] ELSE ARRAY[CAST(:u AS text)] END, ST_PointOnSurface(geom)
            FROM grids WHERE id = :g RETURNING id"""), {"g": grid, "st": st, "u": u}).scalar_one())
               for st, u in (("reported", None), ("dispatched", ATK_UNIT))]
        c.execute(text("""INSERT INTO event_transitions (event_id, action, from_status, to_status, actor, actor_role)
                          VALUES (:i, 'dispatch', 'filed', 'dispatched', 'atk_dispatcher', 'dispatcher')"""), {"i": ids[1]})
        c.execute(text("""INSERT INTO event_photos (event_id, stage, filename, mime, data)
                          VALUES (:i, 'report', 'atk.png', 'image/png', '\\x89504e47'::bytea)"""), {"i": ids[1]})
        c.execute(text("INSERT INTO event_reporters (event_id, name, phone) VALUES (:i, 'atk reporter', '13800000000')"), {"i": ids[1]})
    yield {"reported": ids[0], "dispatched": ids[1]}
    with owner_engine().begin() as c:
        c.execute(text("DELETE FROM events WHERE id = ANY(:i)"), {"i": ids})
        c.execute(text("DELETE FROM event_unit_members WHERE username = 'atk_unit'"))


@pytest.fixture(scope="module")
def filled(demo, real_scopes) -> Iterator[None]:
    """A row in each table the demo leaves empty (a stored siting scenario with its sites and demand, a grid
    draft with a part, an API key, a failed sign-in, a kept street length; the coverage results and a user with an
    open session when the database has none), so that every declared read and write is tried on a
    row: an empty table would let any policy pass. The demand rows cover the worker's grid."""
    from analysis import cameras, compliance, services
    from gis.db import transaction
    from layers import users as auth
    from webapp import sessions

    grid = real_scopes["worker"].grids[0]
    with transaction(owner=True) as c:  # the coverage results, as `wangge coverage` and `wangge compliance` store them
        if not c.execute(text("SELECT count(*) FROM coverage_runs")).scalar_one():
            cameras.refresh(c, cameras.detail_level())
            services.refresh(c)
            compliance.refresh(c)
    with owner_engine().begin() as c:
        c.execute(text("DELETE FROM user_sessions WHERE user_id IN (SELECT id FROM users WHERE username = 'atk_filled_user')"))
        c.execute(text("DELETE FROM users WHERE username = 'atk_filled_user'"))
    with use_scope(SYSTEM), transaction() as c:  # a user with an open session, as the sign-in form leaves them
        auth.create_user(c, "atk_filled_user", "Atk-filled-0123456789", "worker", grids=(grid,))
    with use_scope(SYSTEM), transaction() as c:
        user = auth.authenticate(c, "atk_filled_user", "Atk-filled-0123456789")  # the database opens the session
        sessions.open_session(c, user.id, "pytest")
    with owner_engine().begin() as c:
        sc = c.execute(text("""INSERT INTO siting_scenarios (name, category, model, radius_m, cutoff_m, candidates, time_limit_s, status)
                               VALUES ('atk_filled', 'kindergarten', 'lscp', 300, 300, 'roads', 1, 'optimal') RETURNING id""")).scalar_one()
        c.execute(text("""INSERT INTO siting_scenario_sites (scenario_id, serial, site_key, existing, geom)
                          SELECT :s, 1, 'atk', false, ST_PointOnSurface(geom) FROM grids WHERE id = :g"""), {"s": sc, "g": grid})
        c.execute(text("""INSERT INTO siting_scenario_demand (scenario_id, building_id, weight, district_code, community_code, grid_id)
                          SELECT :s, id, households, district_code, community_code, grid_id FROM buildings WHERE grid_id = :g"""),
                  {"s": sc, "g": grid})
        draft = c.execute(text("""INSERT INTO grid_drafts (community_code, district_code, created_by)
                                  SELECT community_code, district_code, 'atk_filled' FROM grids WHERE id = :g RETURNING id"""),
                          {"g": grid}).scalar_one()
        c.execute(text("""INSERT INTO grid_draft_parts (draft_id, serial, district_code, geom)
                          SELECT :d, 1, district_code, ST_Multi(geom) FROM grids WHERE id = :g"""), {"d": draft, "g": grid})
        c.execute(text("SELECT apikey_add('atk_filled', 'atk-filled-key-0123456789')"))
        c.execute(text("""INSERT INTO grid_streets (grid_id, street_m, version) VALUES (-1, 0, -1)
                          ON CONFLICT (grid_id) DO NOTHING"""))
        c.execute(text("""INSERT INTO login_attempts (username, failed_count, last_failed_at) VALUES ('atk_filled', 1, now())
                          ON CONFLICT (username) DO NOTHING"""))
    try:
        yield
    finally:
        with owner_engine().begin() as c:
            c.execute(text("DELETE FROM siting_scenarios WHERE name = 'atk_filled'"))
            c.execute(text("DELETE FROM grid_drafts WHERE created_by = 'atk_filled'"))
            c.execute(text("DELETE FROM api_keys WHERE name = 'atk_filled'"))
            c.execute(text("DELETE FROM login_attempts WHERE username = 'atk_filled'"))
            c.execute(text("DELETE FROM grid_streets WHERE grid_id = -1"))
            c.execute(text("DELETE FROM user_sessions WHERE user_id IN (SELECT id FROM users WHERE username = 'atk_filled_user')"))
            c.execute(text("DELETE FROM users WHERE username = 'atk_filled_user'"))


@pytest.fixture(scope="module")
def people(demo, real_scopes) -> dict:
    """People rows to try (issue 17): the demo register's persons, groups and visits in the worker's grid
    (asserted), a patrol track there (made by the owner as the system; its segments come from the
    trigger), and one read of the worker's people through people_list, the app's way, so that the
    access log holds rows (it is append-only: those rows stay, as every logged read does)."""
    grid = real_scopes["worker"].grids[0]
    with owner_engine().connect() as c:
        _owner(c)  # (the registers force their policies on the owner too)
        persons = c.execute(text("SELECT count(*) FROM persons WHERE grid_id = :g"), {"g": grid}).scalar_one()
        assert persons > 0, "the demo register has no person in the worker's grid: the people tries would mean nothing"
        track = int(c.execute(text("""
            INSERT INTO patrol_tracks (district_code, cadre_no, day, started_at, ended_at, fixes, active_s, length_m,
                                       grid_ids, community_codes, source_file, imported_by, geom)
            SELECT district_code, 'atk_cadre', current_date, now() - interval '1 hour', now(), 2, 60, 11,
                   ARRAY[id], ARRAY[community_code], 'atk.gpx', 'atk',
                   ST_MakeLine(ST_PointOnSurface(geom), ST_Translate(ST_PointOnSurface(geom), 0.0001, 0))
            FROM grids WHERE id = :g RETURNING id"""), {"g": grid}).scalar_one())
        c.commit()
    if not ON_CITUS:  # (people_list cannot run on Citus yet: tests/test_citus.py KNOWN_ATTACKER_ON_CITUS)
        c = _conn(real_scopes["worker"])
        try:
            listed = len(c.execute(text("SELECT id FROM people_list(:g)"), {"g": grid}).all())
            c.commit()
        finally:
            c.close()
        assert listed == persons
    yield {"grid": grid, "persons": persons, "track": track}
    with owner_engine().connect() as c:
        _owner(c).execute(text("DELETE FROM patrol_tracks WHERE id = :i"), {"i": track})
        c.commit()


def _forged() -> dict[str, str]:
    admin = {"u": "atk", "r": "admin", "c": [], "g": [], "d": True, "exp": int(time.time()) + 600}
    body = base64.b64encode(json.dumps(admin).encode()).decode()
    return {"unsigned": json.dumps(admin),
            "wrong_key": scopes.token(Scope(user="atk", role="admin"), key="not-the-secret-" + "x" * 40),
            "body_only": body + "." + "0" * 64,
            "expired": scopes.token(Scope(user="atk", role="admin"), ttl_s=-60)}


def _conn(scope: Scope | None, forged: str | None = None) -> Connection:
    """An app connection in a transaction under ``scope`` (or with ``forged`` as the setting)."""
    c = app_engine().connect()
    with use_scope(scope):
        c.begin()
        c.execute(text("SELECT 1"))
    if forged is not None:
        c.execute(text("SELECT set_config('wangge.scope', :v, true)"), {"v": forged})
    return c


def _attempt(c: Connection, sql: str, params: dict | None = None) -> tuple[str, int]:
    """('refused', 0) on a privilege or policy refusal, ('ok', rows) when it ran, ('error', 0) when it
    got past the security checks and failed on something else (a key, a constraint)."""
    sp = c.begin_nested()
    try:
        n = c.execute(text(sql), params or {}).rowcount
        sp.rollback()
        return "ok", n
    except DBAPIError as exc:
        sp.rollback()
        code = getattr(exc.orig, "sqlstate", None)
        # on Citus an INSERT … SELECT by the app role becomes COPY to the shards, which PostgreSQL
        # refuses under row-level security (0A000 "COPY FROM not supported with row-level security")
        citus_rls = ON_CITUS and code == "0A000" and "row-level security" in str(exc.orig)
        return ("refused", 0) if code == "42501" or citus_rls else ("error", 0)


def _columns(table: str) -> tuple[list[str], list[str]]:
    """(columns a row copy inserts: not generated, not identity; a column the app may update and read)."""
    with owner_engine().connect() as c:
        rows = c.execute(text("""
            SELECT a.attname, a.attgenerated = '' AND a.attidentity = '' AS insertable,
                   has_column_privilege(:app, a.attrelid, a.attnum, 'UPDATE')
                     AND has_column_privilege(:app, a.attrelid, a.attnum, 'SELECT') AS updatable,
                   EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisprimary AND a.attnum = ANY(i.indkey)) AS pk
            FROM pg_attribute a WHERE a.attrelid = to_regclass(:t) AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum"""), {"t": table, "app": _app_role()}).all()
    return [r[0] for r in rows if r[1]], [r[0] for r in rows if r[2] and not r[3]] or [r[0] for r in rows if r[2]]


def _owner(c: Connection) -> Connection:
    """``c`` (an owner connection) as the system: the people registers (issue 17) force their policies
    on the owner too, so the owner sees their rows only under a verified scope."""
    c.begin()
    scopes.apply(c.connection.dbapi_connection, SYSTEM)
    return c


def _sample(table: str) -> dict | None:
    with owner_engine().connect() as c:
        _owner(c)
        return c.execute(text(f"SELECT to_jsonb(t) FROM {table} t LIMIT 1")).scalar_one_or_none()


def _owner_rows(table: str) -> int:
    with owner_engine().connect() as c:
        _owner(c)
        return int(c.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


# ---- the catalog is declared ------------------------------------------------------------------------------

def test_every_table_and_view_is_declared_and_forced() -> None:
    problems = []
    for name, r in sorted(_catalog_relations().items()):
        touchable = any(r[k] for k in ("can_select", "can_insert", "can_update", "can_delete", "can_truncate"))
        if name not in EXPECT:
            problems.append(f"table/view {name!r} (the app role {'may use it' if touchable else 'has no privilege'}) "
                            f"is not declared: " + HOW_TO_DECLARE.format(name=name))
            continue
        if r["kind"] in ("r", "p") and touchable and EXPECT[name].force and not (r["rls"] and (r["force"] or ON_CITUS)):
            problems.append(f"table {name!r}: the app role may use it but row-level security is "
                            f"{'not forced' if r['rls'] else 'off'}: ALTER TABLE {name} ENABLE ROW LEVEL SECURITY; "
                            f"ALTER TABLE {name} FORCE ROW LEVEL SECURITY; and policies (see migration 0016)")
        if r["can_truncate"]:
            problems.append(f"table {name!r}: the app role may TRUNCATE it (policies do not stop TRUNCATE): revoke it")
    stale = sorted(set(EXPECT) - set(_catalog_relations()))
    assert not stale, f"EXPECT declares tables that do not exist (remove them): {stale}"
    assert not problems, "\n".join(problems)


def test_every_function_the_app_may_call_is_declared() -> None:
    found = _catalog_functions()
    undeclared = sorted(found - set(FUNCTIONS))
    assert not undeclared, (
        "the app role may EXECUTE functions nobody declared: "
        + ", ".join(undeclared)
        + ". Either REVOKE EXECUTE ON FUNCTION ... FROM PUBLIC (and from wangge_app), or add it to FUNCTIONS in "
          "tests/test_attacker.py with what a caller without a scope gets ('ok' or 'refused')")
    missing = sorted(set(FUNCTIONS) - found)
    assert not missing, f"FUNCTIONS declares functions the app role cannot call (remove them): {missing}"


def test_sequences_the_app_may_use_serve_tables_it_may_insert_into() -> None:
    """A sequence the app may advance must belong to a table whose policies let some role insert."""
    with owner_engine().connect() as c:
        rows = c.execute(text("""
            SELECT s.relname, t.relname FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace
            LEFT JOIN pg_depend d ON d.objid = s.oid AND d.deptype = 'a' LEFT JOIN pg_class t ON t.oid = d.refobjid
            WHERE s.relkind = 'S' AND n.nspname = 'public'
              AND CASE WHEN s.relkind = 'S' THEN has_sequence_privilege(:app, s.oid, 'USAGE') ELSE false END"""),
            {"app": _app_role()}).all()
    bad = [(seq, tbl) for seq, tbl in rows if tbl not in EXPECT or not any(EXPECT[tbl].may("insert", r) for r in ROLES)]
    assert not bad, f"the app role may use sequences of tables it may not insert into (revoke USAGE): {bad}"


# ---- every table, every scope ---------------------------------------------------------------------------

TABLES = sorted(EXPECT)


@pytest.mark.parametrize("table", TABLES)
def test_no_scope_and_forged_scopes_get_nothing(demo, cases, people, filled, table: str) -> None:
    rel = _catalog_relations().get(table)
    if rel is None:
        pytest.skip(f"{table} not in this schema")
    cols, upd = _columns(table)
    row = _sample(table)
    for label, forged in [("none", None), *_forged().items()]:
        c = _conn(None, forged)
        try:
            if forged is not None:
                assert c.execute(text("SELECT wangge_scope()")).scalar_one() is None, label
            status, _ = _attempt(c, f"SELECT count(*) FROM {table}")
            if status == "ok":
                assert c.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0, f"{table}: {label} reads rows"
            if rel["kind"] not in ("r", "p"):
                continue  # a view: reading is what it offers
            if row is not None and cols:
                status, n = _attempt(c, f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(cols)} "
                                        f"FROM jsonb_populate_record(NULL::{table}, CAST(:r AS jsonb))", {"r": json.dumps(row)})
                assert status == "refused", f"{table}: {label} scope may insert ({status})"
            if upd:
                status, n = _attempt(c, f"UPDATE {table} SET {upd[0]} = {upd[0]}")
                assert status == "refused" or n == 0, f"{table}: {label} scope updated {n} rows"
            status, n = _attempt(c, f"DELETE FROM {table}")
            assert status == "refused" or n == 0, f"{table}: {label} scope deleted {n} rows"
        finally:
            c.rollback()
            c.close()


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reads_and_writes_what_is_declared(demo, real_scopes, cases, people, filled, role: str) -> None:
    """Reads: rows seen exactly when declared. Writes: a copy of a row the role can see (else any row)
    inserted, every row updated, every row deleted: refused exactly when not declared. Every table holds
    rows here (the fixtures fill those the demo leaves empty): an empty one would pass whatever its policy."""
    relations = _catalog_relations()
    wrong = []
    for table in TABLES:
        rel = relations.get(table)
        if rel is None:
            continue
        if _owner_rows(table) == 0:
            wrong.append(f"{table}: no row to try (fill it in a fixture)")
            continue
        spec = EXPECT[table]
        cols, upd = _columns(table)
        c = _conn(real_scopes[role])
        try:
            status, _ = _attempt(c, f"SELECT 1 FROM {table} LIMIT 1")
            seen = status == "ok" and c.execute(text(f"SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT 1) x")).scalar_one() > 0
            if seen != spec.may("read", role):
                wrong.append(f"{table}: {role} {'reads' if seen else 'does not read'} rows")
            if rel["kind"] not in ("r", "p"):
                continue
            row = None
            if seen and rel["can_select"]:
                try:
                    with c.begin_nested():
                        row = c.execute(text(f"SELECT to_jsonb(t) FROM {table} t LIMIT 1")).scalar_one_or_none()
                except DBAPIError:
                    row = None
            row = row or _sample(table)
            if cols and row is not None:
                status, _ = _attempt(c, f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(cols)} "
                                        f"FROM jsonb_populate_record(NULL::{table}, CAST(:r AS jsonb))", {"r": json.dumps(row)})
                if (status != "refused") != spec.may("insert", role) and not (ON_CITUS and status == "refused"):
                    wrong.append(f"{table}: {role} insert {status}")
            if upd:
                status, n = _attempt(c, f"UPDATE {table} SET {upd[0]} = {upd[0]}")
                did = status == "error" or (status == "ok" and n > 0)
                if did != spec.may("update", role) and not (ON_CITUS and not did):
                    wrong.append(f"{table}: {role} update {status} ({n} rows)")
            elif spec.may("update", role):
                wrong.append(f"{table}: {role} declared to update but the app role has no column to update")
            status, n = _attempt(c, f"DELETE FROM {table}")
            did = status == "error" or (status == "ok" and n > 0)
            if did != spec.may("delete", role) and not (ON_CITUS and not did):
                wrong.append(f"{table}: {role} delete {status} ({n} rows)")
        finally:
            c.rollback()
            c.close()
    assert not wrong, "what the database allows differs from EXPECT in tests/test_attacker.py:\n" + "\n".join(wrong)


# ---- every function, with no scope ---------------------------------------------------------------------

_ARGS = {"text": "'atk_nobody'", "bigint": "1", "integer": "1", "boolean": "false", "jsonb": "'{}'::jsonb",
         "bigint[]": "NULL::bigint[]", "text[]": "NULL::text[]", "timestamp with time zone": "NULL::timestamptz",
         "date": "current_date", "double precision": "30", "character": "NULL::bpchar"}


@pytest.mark.parametrize("signature", sorted(FUNCTIONS))
def test_functions_with_no_scope(demo, cases, people, signature: str) -> None:
    name, args = signature[:-1].split("(")
    call = f"SELECT to_jsonb(x) FROM {name}({', '.join(_ARGS[a] for a in args.split(',') if a)}) x"
    with owner_engine().connect() as o:
        before = _owner(o).execute(text("SELECT (SELECT count(*) FROM user_sessions), (SELECT count(*) FROM audit_log), "
                                "(SELECT count(*) FROM person_access_log)")).one()
    c = _conn(None)
    try:
        status, _ = _attempt(c, call)
        assert status == ("refused" if FUNCTIONS[signature] == "refused" else "ok"), f"{signature}: {status}"
        if status == "ok":
            out = json.dumps([r[0] for r in c.execute(text(call))], default=str)
            assert "$argon2" not in out.replace("$argon2id$v=19$m=", "")  # parameters yes, a hash never
            assert not any(h in out for h in _hashes()), f"{signature} hands out a password hash"
        c.commit()
    finally:
        c.close()
    with owner_engine().connect() as o:
        after = _owner(o).execute(text("SELECT (SELECT count(*) FROM user_sessions), (SELECT count(*) FROM audit_log), "
                               "(SELECT count(*) FROM person_access_log)")).one()
    assert tuple(after) == tuple(before), f"{signature} with no scope opened a session or wrote the audit or access log"


def _hashes() -> list[str]:
    with owner_engine().connect() as c:
        return [h.rsplit("$", 1)[-1] for h in c.execute(text("SELECT password_hash FROM users WHERE password_hash IS NOT NULL")).scalars()]


# ---- the attacks of the issue, one by one -----------------------------------------------------------------

def test_issue_attacks_fail(demo) -> None:
    c = _conn(None)
    try:
        for sql in (
            "INSERT INTO user_sessions(token_sha256, user_id, expires_at) SELECT repeat('a', 64), id, now() + interval '10 years' FROM auth_user_by_oidc('demo_admin')",
            "UPDATE user_sessions SET revoked_at = NULL",
            "INSERT INTO audit_log(actor, action, table_name, row_key, at) VALUES ('demo_admin', 'user.set', 'users', 'demo_worker', '2020-01-01')",
            "SELECT password_hash FROM users",
            "SELECT * FROM auth_lookup('demo_admin')",
            "UPDATE cadres SET phone = '0'", "UPDATE grids SET name = 'x'", "DELETE FROM cameras",
        ):
            status, n = _attempt(c, sql)
            assert status == "refused" or (status == "ok" and n == 0) or (status == "error" and "auth_lookup" in sql), sql
    finally:
        c.rollback()
        c.close()


def test_grid_edits_are_the_administrators(real_scopes) -> None:
    """A worker cannot touch grids; a leader or secretary may only bump staff_version (assigning)
    in their area; renaming or reshaping a grid is the administrator's (issue 19, point 3)."""
    for role, sql, expect in (
        ("worker", "UPDATE grids SET staff_version = staff_version + 1", ("ok", 0)),
        ("leader", "UPDATE grids SET name = 'renamed'", ("refused", 0)),
        ("secretary", "UPDATE grids SET name = 'renamed'", ("refused", 0)),
        ("admin", "UPDATE grids SET name = name || ''", ("ok", None)),
    ):
        c = _conn(real_scopes[role])
        try:
            status, n = _attempt(c, sql)
            assert status == expect[0] and (expect[1] is None or n == expect[1]), (role, sql, status, n)
        finally:
            c.rollback()
            c.close()
    c = _conn(real_scopes["secretary"])
    try:
        status, n = _attempt(c, "UPDATE grids SET staff_version = staff_version + 1")
        with owner_engine().connect() as o:
            theirs = o.execute(text("SELECT count(*) FROM grids WHERE community_code = :c"),
                               {"c": real_scopes["secretary"].communities[0]}).scalar_one()
        assert status == "ok" and n == theirs > 0
    finally:
        c.rollback()
        c.close()


def test_sso_sessions_only_for_linked_users(demo) -> None:
    """``session_open_oidc`` is vouched for by the web process; it opens a session only for a user
    an administrator linked to the provider (subject) or named by an e-mail address, never for
    an account with a plain name such as the administrator's."""
    import hashlib
    import secrets as _secrets

    with owner_engine().begin() as o:
        o.execute(text("DELETE FROM users WHERE username IN ('atk_plain_admin', 'atk.sso@example.org', 'atk_linked')"))
        o.execute(text("""INSERT INTO users (username, role, oidc_subject) VALUES
                          ('atk_plain_admin', 'admin', NULL), ('atk.sso@example.org', 'leader', NULL),
                          ('atk_linked', 'planner', 'sub-123')"""))
    try:
        got = {}
        for subject in ("atk_plain_admin", "ATK.SSO@example.org", "sub-123", "", "nobody@example.org"):
            c = _conn(None)
            try:
                digest = hashlib.sha256(_secrets.token_bytes(16)).hexdigest()
                got[subject] = c.execute(text("SELECT session_open_oidc(:s, :d, 'pytest')"), {"s": subject, "d": digest}).scalar_one()
            finally:
                c.rollback()
                c.close()
        assert got["atk_plain_admin"] is None and got[""] is None and got["nobody@example.org"] is None
        assert got["ATK.SSO@example.org"] is not None and got["sub-123"] is not None
    finally:
        with owner_engine().begin() as o:
            o.execute(text("DELETE FROM users WHERE username IN ('atk_plain_admin', 'atk.sso@example.org', 'atk_linked')"))


def test_people_functions_follow_the_roles(demo, real_scopes, people) -> None:
    """What each role REALLY gets of the people registers (issue 17 point 4), through the only way in: a
    worker their grid's persons, a secretary their community's, the system all; leader, planner, admin
    and the events roles no person, but leader, planner and admin the counts; each person read is
    logged with the verified user; the access log is read by the administrator only and cannot be
    altered by anybody's scope."""
    with owner_engine().connect() as o:
        community = _owner(o).execute(text("SELECT community_code FROM grids WHERE id = :g"), {"g": people["grid"]}).scalar_one()
        in_community = o.execute(text("SELECT count(*) FROM persons WHERE community_code = :c AND anonymised_at IS NULL"),
                                 {"c": community}).scalar_one()
    for role in ROLES:
        c = _conn(real_scopes[role])
        try:
            before = c.execute(text("SELECT count(*) FROM people_access(NULL, 1000000)")).scalar_one()
            rows = c.execute(text("SELECT grid_id, community_code FROM people_list()")).all()
            counted = c.execute(text("SELECT coalesce(sum(persons), 0) FROM people_counts('community')")).scalar_one()
            if role == "worker":
                assert len(rows) == people["persons"] and {r[0] for r in rows} == {people["grid"]}, role
            elif role == "secretary":
                assert len(rows) == in_community and {r[1] for r in rows} == {community}, role
            elif role == "system":
                assert len(rows) >= in_community, role
            else:
                assert rows == [], f"{role} reads person rows"
            assert (counted > 0) == (role in ("system", "admin", "leader", "planner", "secretary", "worker")), (role, counted)
            logged = c.execute(text("SELECT count(*) FROM people_access(NULL, 1000000)")).scalar_one()
            if role in ("system", "admin"):
                assert logged == before + len(rows), f"{role}: {len(rows)} persons read, {logged - before} logged"
            else:
                assert before == logged == 0, f"{role} reads the access log"
            for sql in ("UPDATE person_access_log SET reason = 'x'", "DELETE FROM person_access_log",
                        "INSERT INTO person_access_log (username, role, person_id, action, channel) VALUES ('x', 'admin', 1, 'view', 'x')"):
                assert _attempt(c, sql)[0] == "refused", (role, sql)
        finally:
            c.rollback()
            c.close()
