"""Wangge on Citus: which tables are distributed, which are replicated, and the row-level
policies in the form Citus accepts. Everything Citus-specific lives here (one place to merge).

Why by ``district_code``: every layer row already carries its 6-digit district (GB/T 2260), a
province has ~100 districts (enough shards to spread, few enough that one district's rows stay
together), and the platform's reads are almost always within one district, so a query for one
district is routed to one shard, and the large tables, all distributed by the same column and
co-located, join shard by shard (a building with its group counts, coverage and demand rows).

Large tables (grow with homes, people, cases): distributed. Small tables (a city has tens of
thousands of grids at most, and every query joins them): reference tables, a full copy on every
node, so a join with them never leaves the node. Bookkeeping that only the coordinator's app
touches (sessions, sign-in attempts, audit, migrations): left local on the coordinator.

Row-level security: Citus refuses policies with sub-queries on distributed tables (the policy
runs on the workers, shard by shard). The single-node policies (migration 0014) evaluate the
scope once per query in a scalar sub-query; here the check is a function of the row's own
columns, ``wangge_row_ok(table, write, community_code, grid_id)``, which reads the signed scope
(``wangge.scope``) on whichever node runs it. The scope reaches the workers because the app sets
it with ``SET LOCAL`` (gis/scope.py) and the coordinator runs with
``citus.propagate_set_commands = 'local'``; ``set_config(..., true)`` is a function call and is
NOT propagated (tests/test_citus.py proves both).
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, text

from gis.settings import get_settings

# The large tables, distributed by district_code and co-located with buildings. Listed in one place;
# a table that does not exist yet (persons, visits, tracks come with the people registers) is skipped.
DISTRIBUTED: tuple[str, ...] = (
    "buildings", "building_groups", "service_buildings", "siting_scenario_demand",
    "persons", "visits", "patrol_tracks",
)
# events stays on the coordinator for now: its workflow (migration 0018) logs every report and step
# with row triggers into event_transitions / event_reporters, which a trigger on a worker's shard
# cannot reach. The Citus form: those tables carry district_code and are distributed with events,
# the log written by event_act() instead of triggers.
# Small tables every query joins: a copy on every node. Parents before children (foreign keys).
REFERENCE: tuple[str, ...] = (
    "districts", "subdistricts", "communities", "grids", "facility_categories", "users",
    "cadres", "assignments", "cameras", "facilities", "roads", "coverage_runs", "camera_views",
    "camera_coverage", "camera_key_places", "service_facilities", "compliance_results",
    "siting_scenarios", "siting_scenario_sites", "grid_drafts", "grid_draft_parts",
)
# A plain copy on every node, never a Citus table: the policies read it on the workers while a
# shard is being scanned, where Citus refuses a query on another Citus table ("nested distributed
# execution"). Written on the coordinator by ``wangge db up`` and copied by ``sync_secret``.
PER_NODE: tuple[str, ...] = ("wangge_secrets",)
# Stay on the coordinator (the app's bookkeeping, never joined with the layers).
LOCAL: tuple[str, ...] = ("alembic_version", "audit_log", "user_sessions", "login_attempts", "spatial_ref_sys", "events")
# Listed as replicated but kept on the coordinator whatever their policies: accounts (password
# hashes are not copied to every node) and assignments (their rules look at buildings and grids).
KEEP_ON_COORDINATOR: tuple[str, ...] = ("users",)

# Row-level policies for the distributed tables (table -> the columns that place a row). Rows that
# copy a building (its group counts, coverage distances, siting demand) follow the building's rules.
# (persons, visits, tracks keep the policies their migration gives them; they must be sub-query
# free and carry district_code, community_code, grid_id to be distributed.)
POLICY_AREA: dict[str, str] = {
    "buildings": "buildings", "events": "events", "building_groups": "building_groups",
    "service_buildings": "buildings", "siting_scenario_demand": "buildings",
}

# The scope check for one row: what wangge_area(table, write) (migration 0014) answers once per
# query, answered here per row from the signed payload, without sub-queries.
ROW_OK_SQL = """
CREATE OR REPLACE FUNCTION wangge_row_ok(p_table text, p_write boolean, p_community bpchar, p_grid bigint)
RETURNS boolean LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
  s jsonb := wangge_scope();
  r text := s->>'r';
  wide boolean;
BEGIN
  IF current_user = '{owner}' THEN RETURN true; END IF;  -- the owner's work passes by name (migration 0016)
  IF r IS NULL THEN RETURN false; END IF;
  IF r IN ('system', 'admin') THEN RETURN true; END IF;
  wide := CASE p_table
    WHEN 'buildings' THEN r = 'leader' OR (r = 'planner' AND NOT p_write)
    WHEN 'assignments' THEN r = 'leader' OR (r = 'planner' AND NOT p_write)
    WHEN 'events' THEN r = 'leader'
    WHEN 'building_groups' THEN r = 'leader' AND coalesce((s->>'d')::boolean, false)
    ELSE false END;
  IF wide THEN
    RETURN jsonb_array_length(coalesce(s->'c', '[]')) = 0 OR coalesce(s->'c', '[]') ? p_community::text;
  ELSIF r = 'secretary' THEN
    RETURN coalesce(s->'c', '[]') ? p_community::text;
  ELSIF r = 'worker' AND NOT (p_table = 'assignments' AND p_write) THEN
    RETURN p_grid IS NOT NULL AND coalesce(s->'g', '[]') @> to_jsonb(p_grid);
  END IF;
  RETURN false;
END $$"""


# Migration 0024's summaries, kept on one node by STATEMENT triggers with transition tables on the
# tables listed here: Citus fires a trigger on each shard (citus.enable_unsafe_triggers), where neither
# transition table sums the whole table nor building_stats / tile_epochs exist (they stay on the
# coordinator), so every write to buildings, grids, roads... would fail there. ``distribute`` drops
# them (``_drop_summary_triggers``) and gives the two summaries a form that is right on Citus.
SUMMARY_TRIGGERS: dict[str, tuple[str, ...]] = {
    "buildings": ("buildings_stats", "buildings_tile_epochs"),
    "grids": ("grids_tile_epochs", "grids_grid_streets"), "assignments": ("assignments_tile_epochs",),
    "communities": ("communities_tile_epochs",), "roads": ("roads_tile_epochs", "roads_grid_streets"),
}  # (and 0030's counter of road and outline changes: without it patrol_coverage() keeps no street length)

# building_stats on Citus: a view summing the buildings on every read, with the reader's rights
# (security_invoker: the buildings' own policies, on the shards, under the propagated scope), so the
# overview, the community and grid tables and the grid tiles (analysis/overview.py) read the same
# columns and always today's figures -- never a copy that a write on a shard could not update.
# The cost: the sum runs over the buildings, in parallel on the workers, instead of a small table.
BUILDING_STATS_VIEW = """
CREATE VIEW building_stats WITH (security_invoker = true) AS
  SELECT community_code, grid_id, count(*)::integer AS buildings, coalesce(sum(households), 0)::bigint AS households,
         coalesce(sum(residents), 0)::bigint AS residents,
         (count(*) FILTER (WHERE households_source = 'estimated'))::integer AS estimated_buildings
  FROM buildings GROUP BY community_code, grid_id"""


def _drop_summary_triggers(conn: Connection) -> list[str]:
    """Drop 0024's statement triggers (``SUMMARY_TRIGGERS``) on the tables Citus takes; on a Citus
    table the drop reaches its shards too. Without them the tiles' per-area versions
    (``tile_epochs``) stand still: webapp/tiles.py sees the triggers gone and caches no tile of those
    layers (never a stale one). Returns the triggers dropped."""
    dropped = []
    for table, prefixes in SUMMARY_TRIGGERS.items():
        if not _exists(conn, table):
            continue
        for name, in conn.execute(text("""SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass(:t) AND NOT tgisinternal
                                          AND tgname LIKE ANY (:p) ORDER BY 1"""),
                                  {"t": f"public.{table}", "p": [f"{p}\\_%" for p in prefixes]}).all():
            conn.execute(text(f'DROP TRIGGER "{name}" ON {table}'))
            dropped.append(f"{table}.{name}")
    if is_citus(conn):
        # shards of a database distributed before this (their triggers named ..._<shard id>): Citus
        # does not carry the drop of a TRUNCATE trigger to the shards, so they are dropped there
        names = "|".join(p for ps in SUMMARY_TRIGGERS.values() for p in ps)
        sweep = f"""DO $sweep$ DECLARE r record; BEGIN
          FOR r IN SELECT tgrelid::regclass AS t, tgname FROM pg_trigger WHERE NOT tgisinternal
                   AND tgname ~ '^({names})_(insert|update|delete|truncate|bump)_[0-9]+$' LOOP
            EXECUTE 'DROP TRIGGER ' || quote_ident(r.tgname) || ' ON ' || r.t::text;
          END LOOP; END $sweep$"""
        failed = [r for r in conn.execute(text("SELECT nodename, nodeport, success, result FROM run_command_on_workers(:c)"),
                                          {"c": sweep}).all() if not r.success]
        if failed:
            raise RuntimeError(f"could not drop the summary triggers on {failed[0].nodename}:{failed[0].nodeport}: {failed[0].result}")
        conn.exec_driver_sql(sweep)  # the coordinator's own placements of the replicated tables
    return dropped


def _building_stats_as_view(conn: Connection, app_role: str) -> bool:
    """Replace the table ``building_stats`` (kept by the triggers just dropped) by the view
    ``BUILDING_STATS_VIEW``, readable by the app role as the table was. Idempotent."""
    kind = conn.execute(text("SELECT relkind FROM pg_class WHERE oid = to_regclass('public.building_stats')")).scalar_one_or_none()
    if kind != "r" or not _exists(conn, "buildings"):
        return False
    conn.execute(text("DROP TABLE building_stats"))
    conn.execute(text(BUILDING_STATS_VIEW))
    if conn.execute(text("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :r)"), {"r": app_role}).scalar_one():
        conn.execute(text(f'GRANT SELECT ON building_stats TO "{app_role}"'))
    return True


@dataclass
class Plan:
    distributed: list[str] = field(default_factory=list)
    reference: list[str] = field(default_factory=list)
    local: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # listed, not (yet) in this database
    foreign_keys_dropped: list[str] = field(default_factory=list)
    shard_policies: dict[str, int] = field(default_factory=dict)  # placements given the fast form
    triggers_dropped: list[str] = field(default_factory=list)  # 0024's summary triggers (SUMMARY_TRIGGERS)
    building_stats_view: bool = False  # building_stats became the view (this run)
    done: bool = False

    def as_dict(self) -> dict:
        return {"distributed": self.distributed, "reference": self.reference, "local": self.local,
                "skipped": self.skipped, "foreign_keys_dropped": self.foreign_keys_dropped,
                "shard_policies": self.shard_policies, "triggers_dropped": self.triggers_dropped,
                "building_stats_view": self.building_stats_view, "done": self.done,
                "why": {"distributed": "grow with homes, people and cases; by district_code, co-located with buildings",
                        "reference": "small, joined by every query: a copy on every node",
                        "local": "the coordinator app's bookkeeping, and tables whose policies need sub-queries (Citus plans them on the coordinator)"}}


def is_citus(conn: Connection) -> bool:
    return bool(conn.execute(text("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')")).scalar_one())


def _exists(conn: Connection, table: str) -> bool:
    return conn.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": f"public.{table}"}).scalar_one()


def _has_column(conn: Connection, table: str, column: str) -> bool:
    return bool(conn.execute(text("""SELECT EXISTS (SELECT 1 FROM information_schema.columns
                                     WHERE table_schema = 'public' AND table_name = :t AND column_name = :c)"""),
                             {"t": table, "c": column}).scalar_one())


def _has_district(conn: Connection, table: str) -> bool:
    return _has_column(conn, table, "district_code")


def _kind(conn: Connection, table: str) -> str | None:
    """'h' distributed (hash), 'n' reference, None plain or a Citus-managed local table (which
    Citus makes of a coordinator table that a key ties to a reference table: still to be replicated)."""
    return conn.execute(text("""SELECT CASE WHEN partmethod = 'h' THEN 'h' WHEN repmodel = 't' THEN 'n' END
                                FROM pg_dist_partition WHERE logicalrelid = to_regclass(:t)"""),
                        {"t": f"public.{table}"}).scalar_one_or_none()


# Who may write a building's derived rows besides the owner (migration 0016's DERIVED): the
# coverage run's per-home rows are the leader's, the siting demand the planner's.
DERIVED_WRITERS: dict[str, tuple[str, ...]] = {
    "service_buildings": ("system", "admin", "leader"),
    "siting_scenario_demand": ("system", "admin", "planner"),
}


def _policy_sql(table: str, owner: str) -> list[str]:
    """The coordinator's form of a distributed table's policies: a function of the row's own
    columns, without sub-queries (what Citus accepts on a distributed table). The workers run the
    faster shard form (``_shard_policies``); this one is what a new shard starts with."""
    area = POLICY_AREA[table]
    # rows that copy a building are read under the building's read rule (as in 0014)
    read = f"wangge_row_ok('{area}', false, community_code, grid_id)"
    if table in DERIVED_WRITERS:
        roles = ", ".join(f"'{r}'" for r in DERIVED_WRITERS[table])
        write = f"(current_user = '{owner}' OR (wangge_scope_role() IN ({roles}) AND {read}))"
    else:
        write = f"wangge_row_ok('{area}', true, community_code, grid_id)"
    return _policies(table, read, write)


def _policies(table: str, read: str, write: str) -> list[str]:
    return [f"DROP POLICY IF EXISTS {table}_{k} ON {table}" for k in ("read", "insert", "update", "delete")] + [
        f"CREATE POLICY {table}_read ON {table} FOR SELECT TO PUBLIC USING ({read})",
        f"CREATE POLICY {table}_insert ON {table} FOR INSERT TO PUBLIC WITH CHECK ({write})",
        f"CREATE POLICY {table}_update ON {table} FOR UPDATE TO PUBLIC USING ({write}) WITH CHECK ({write})",
        f"CREATE POLICY {table}_delete ON {table} FOR DELETE TO PUBLIC USING ({write})",
    ]


def _area_predicate(area: str, write: bool) -> str:
    """Migration 0014's fast form on the row's own columns: ``wangge_area`` in scalar sub-selects,
    which PostgreSQL runs once per query (InitPlans), then a boolean and two short arrays per row."""
    w = str(write).lower()
    a = f"(SELECT all_rows FROM wangge_area('{area}', {w}))"
    c = f"(SELECT communities FROM wangge_area('{area}', {w}))::bpchar[]"
    g = f"(SELECT grids FROM wangge_area('{area}', {w}))::bigint[]"
    return f"({a} OR community_code = ANY({c}) OR grid_id = ANY({g}))"


def shard_policy_exprs(table: str, owner: str) -> tuple[str, str]:
    """(read, write) of a distributed table's policies in the form its shards carry.

    Citus refuses sub-queries in a policy on a distributed table when the policy is created, but
    it never sends a policy's expression with a query: the coordinator sends the shard query
    plain ("... FROM buildings_102008 buildings WHERE true") and the worker applies the shard's
    own policy. So the shards get the single node's form, where the signed scope is verified
    once per shard query (an InitPlan) instead of once per row; the coordinator keeps the
    row-function form (``_policy_sql``), the same rules, which a new shard starts with until
    ``fast_shard_policies`` runs again."""
    area = POLICY_AREA[table]
    if area == table:  # buildings, building_groups: their own read and write areas
        return _area_predicate(area, False), _area_predicate(area, True)
    read = _area_predicate("buildings", False)  # copies of a building: the building's read rule
    roles = ", ".join(f"'{r}'" for r in DERIVED_WRITERS[table])
    return read, f"(current_user = '{owner}' OR ((SELECT wangge_scope_role()) IN ({roles}) AND {read}))"


def fast_shard_policies(conn: Connection) -> dict[str, int]:
    """Give every shard of the distributed tables in POLICY_AREA the fast policy form
    (``shard_policy_exprs``). Idempotent; run after ``distribute`` and after anything that
    creates shards (a rebalance, a shard split). Returns shard placements changed per table."""
    owner = conn.execute(text("SELECT tableowner FROM pg_tables WHERE schemaname = 'public' AND tablename = 'buildings'")).scalar_one()
    out: dict[str, int] = {}
    for t in POLICY_AREA:
        if not _exists(conn, t) or _kind(conn, t) != "h":
            continue
        read, write = shard_policy_exprs(t, owner)
        n = 0
        for sql in (f"ALTER POLICY {t}_read ON %s USING ({read})",
                    f"ALTER POLICY {t}_insert ON %s WITH CHECK ({write})",
                    f"ALTER POLICY {t}_update ON %s USING ({write}) WITH CHECK ({write})",
                    f"ALTER POLICY {t}_delete ON %s USING ({write})"):
            rows = conn.execute(text("SELECT success, result FROM run_command_on_placements(:t, :c)"), {"t": t, "c": sql}).all()
            bad = [r.result for r in rows if not r.success]
            if bad:
                raise RuntimeError(f"could not set the shard policies of {t}: {bad[0]}")
            n = len(rows)
        out[t] = n
    return out


def _subquery_policies(conn: Connection, table: str) -> bool:
    return bool(conn.execute(text("""SELECT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'public' AND tablename = :t
                                     AND (coalesce(qual, '') ~* '\\mselect\\M' OR coalesce(with_check, '') ~* '\\mselect\\M'))"""),
                             {"t": table}).scalar_one())


_SCOPE_CALL = re.compile(r"\(\s*SELECT\s+(wangge_scope\w*\(\))\s+AS\s+\w+\)", re.I)


def _inline_scope_calls(conn: Connection, table: str) -> None:
    """Policies whose only sub-queries are the scope's scalar calls, ``(SELECT wangge_scope_role())``
    (migration 0016 wraps them so that one node evaluates them once per query), get the plain calls:
    the same rule row by row, in a form Citus replicates. Policies with real sub-queries (a look-up in
    another table) are left as they are, and their table stays on the coordinator."""
    rows = conn.execute(text("""SELECT policyname, qual, with_check FROM pg_policies
                                WHERE schemaname = 'public' AND tablename = :t"""), {"t": table}).all()
    for name, qual, check in rows:
        new = [None if e is None else _SCOPE_CALL.sub(r"\1", e) for e in (qual, check)]
        if new == [qual, check] or any(e is not None and re.search(r"\bselect\b", e, re.I) for e in new):
            continue
        parts = ([f"USING ({new[0]})"] if new[0] is not None else []) + ([f"WITH CHECK ({new[1]})"] if new[1] is not None else [])
        conn.execute(text(f'ALTER POLICY "{name}" ON {table} ' + " ".join(parts)))


@contextmanager
def _unforced(conn: Connection, table: str) -> Iterator[None]:
    """Citus copies a table's rows to the new shards with COPY, which PostgreSQL refuses under
    row-level security; with FORCE (migration 0016) that binds the owner too. FORCE is lifted for
    the copy only, in the same transaction, and put back (Citus propagates it to the shards)."""
    forced = bool(conn.execute(text("SELECT relforcerowsecurity FROM pg_class WHERE oid = to_regclass(:t)"),
                               {"t": f"public.{table}"}).scalar_one())
    if forced:
        conn.execute(text(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY"))
    yield
    if forced:
        conn.execute(text(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY"))


def _foreign_keys(conn: Connection, tables: list[str]) -> list[tuple[str, str, str, str]]:
    """(table, name, definition, referenced table) of every foreign key from or to ``tables``."""
    rows = conn.execute(text("""
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), confrelid::regclass::text
        FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace
          AND (conrelid::regclass::text = ANY(:t) OR confrelid::regclass::text = ANY(:t))"""), {"t": tables}).all()
    return [tuple(r) for r in rows]


def distribute(engine: Engine, shard_count: int = 32) -> Plan:
    """Distribute the large tables and replicate the small ones, on the coordinator as the owner,
    after ``wangge db up``. Idempotent and resumable: each step is its own transaction (Citus
    creates a table's shards on other connections, which must see the committed schema), and the
    foreign keys taken down for the move wait in ``wangge_citus_pending_fks`` until they are put
    back in the form Citus takes."""
    plan = Plan()
    with engine.begin() as conn:
        if not is_citus(conn):
            raise RuntimeError("this database has no citus extension: run scripts/citus.sh, or use the single-node database as it is")
        dist = [t for t in DISTRIBUTED if _exists(conn, t)]
        # A large table without the row form of its policies (POLICY_AREA) or without the district on
        # its rows stays on the coordinator until it has both: the people registers (migration 0019:
        # their policies look up people_area() and persons in sub-queries; visits carry no district).
        unready = [t for t in dist if _kind(conn, t) is None and (t not in POLICY_AREA or not _has_district(conn, t))]
        dist = [t for t in dist if t not in unready]
        plan.skipped = [t for t in (*DISTRIBUTED, *REFERENCE) if not _exists(conn, t)]
        # 0024's summaries: their triggers go (they cannot run on shards), building_stats becomes a view
        plan.triggers_dropped = _drop_summary_triggers(conn)
        plan.building_stats_view = _building_stats_as_view(conn, get_settings().db_app_user)
        ref = [t for t in REFERENCE if _exists(conn, t)]
        # A replicated table whose policies have sub-queries (assignments, users: their rules look at
        # grids and buildings) cannot be replicated either: it stays on the coordinator, where Citus
        # joins it with the others by planning it first.
        for t in ref:
            if _kind(conn, t) is None and t not in KEEP_ON_COORDINATOR:
                _inline_scope_calls(conn, t)
        # assignments: replicated in the row form of their policies, on the columns of migration 0026 (the
        # same rules; 0014's look up grids and buildings in sub-queries, which Citus cannot plan when the
        # leader's overview joins assignments with buildings). Its place trigger would run on every
        # node's copy, where it cannot read buildings: the writers name the place (grid/assign.py,
        # grid/drafts.py, layers/cadres.py). Its key to cadres (kept on the coordinator) goes.
        if "assignments" in ref and _kind(conn, "assignments") is None and _has_column(conn, "assignments", "place_grid_id"):
            conn.execute(text(ROW_OK_SQL.replace("{owner}", conn.execute(text("SELECT current_user")).scalar_one().replace("'", "''"))))
            conn.execute(text("GRANT EXECUTE ON FUNCTION wangge_row_ok(text, boolean, bpchar, bigint) TO PUBLIC"))
            for sql in _policies("assignments", "wangge_row_ok('assignments', false, community_code, place_grid_id)",
                                 "wangge_row_ok('assignments', true, community_code, place_grid_id)"):
                conn.execute(text(sql))
            conn.execute(text("DROP TRIGGER IF EXISTS assignments_place ON assignments"))
            for table, name, _, parent in _foreign_keys(conn, ["assignments"]):
                if table == "assignments" and parent == "cadres":
                    conn.execute(text(f"ALTER TABLE assignments DROP CONSTRAINT {name}"))
                    plan.foreign_keys_dropped.append(f"assignments.{name}")
        held = [t for t in ref if _kind(conn, t) is None and (t in KEEP_ON_COORDINATOR or _subquery_policies(conn, t))]
        ref = [t for t in ref if t not in held]
        plan.local = [t for t in LOCAL if _exists(conn, t)] + held + unready
        # Keys from a distributed table to a replicated one are not put back: with such a key, Citus
        # refuses to write the replicated table in a transaction that has read the shards in parallel
        # (a coverage run reads the homes, then writes coverage_runs). The writers name valid rows.
        # Multi-shard writes one connection per node: a transaction that writes a distributed table and
        # then a reference table with keys (a coverage run: its rows, then coverage_runs) is refused in
        # parallel mode. Reads stay parallel.
        conn.exec_driver_sql(f"ALTER DATABASE {conn.engine.url.database} SET citus.multi_shard_modify_mode = 'sequential'")
        # Joins of distributed tables on anything but the district (a building with its copies by id
        # alone, two buildings by place): Citus runs them by repartitioning instead of refusing. The
        # pieces run on the workers under the shards' policies and the transaction's scope.
        conn.exec_driver_sql(f"ALTER DATABASE {conn.engine.url.database} SET citus.enable_repartition_joins = on")
        owner = conn.execute(text("SELECT current_user")).scalar_one()
        conn.execute(text(ROW_OK_SQL.replace("{owner}", owner.replace("'", "''"))))
        conn.execute(text("GRANT EXECUTE ON FUNCTION wangge_row_ok(text, boolean, bpchar, bigint) TO PUBLIC"))
        conn.execute(text("""CREATE TABLE IF NOT EXISTS wangge_citus_pending_fks (
                               table_name text, name text, definition text, parent text, PRIMARY KEY (table_name, name))"""))
        todo = [t for t in dist if _kind(conn, t) is None]
        # Keys: Citus needs the distribution column in every unique key of a distributed table, and a
        # foreign key between two distributed tables must go through it. Keys to or from a table being
        # distributed are taken down and put back (below) in a form Citus takes; keys from a replicated
        # table to a distributed one cannot exist on Citus (the application names the building).
        for table, name, definition, parent in _foreign_keys(conn, todo):
            conn.execute(text("INSERT INTO wangge_citus_pending_fks VALUES (:t, :n, :d, :p) ON CONFLICT DO NOTHING"),
                         {"t": table, "n": name, "d": definition, "p": parent})
            conn.execute(text(f"ALTER TABLE {table} DROP CONSTRAINT {name}"))
        for t in todo:
            for name, definition in conn.execute(text("""
                    SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
                    WHERE conrelid = to_regclass(:t) AND contype IN ('p', 'u')"""), {"t": f"public.{t}"}).all():
                if "district_code" in definition:
                    continue
                cols = definition[definition.index("(") + 1:definition.index(")")]
                kind = "PRIMARY KEY" if definition.startswith("PRIMARY KEY") else "UNIQUE"
                conn.execute(text(f"ALTER TABLE {t} DROP CONSTRAINT {name}"))
                conn.execute(text(f"ALTER TABLE {t} ADD CONSTRAINT {name} {kind} ({cols}, district_code)"))
            # the single-node policies (sub-queries) cannot be distributed: the row form replaces them
            if t in POLICY_AREA:
                for sql in _policy_sql(t, owner):
                    conn.execute(text(sql))
        # functions joining a building to its group counts by building alone: the co-located form names
        # the district too (group_totals, migration 0011); a join on building_id only is not co-located
        for oid, in conn.execute(text("""SELECT p.oid FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
                                         AND p.prosrc LIKE '%building_groups bg ON bg.building_id = b.id%'""")).all():
            body = conn.execute(text("SELECT pg_get_functiondef(:o)"), {"o": oid}).scalar_one()
            body = re.sub(r"building_groups bg ON bg\.building_id = b\.id(?! AND bg\.district_code)",
                          "building_groups bg ON bg.building_id = b.id AND bg.district_code = b.district_code", body)
            conn.exec_driver_sql(body)
        # triggers on a shard may not query other distributed tables: the place triggers of
        # migration 0021 give way to sync_building_places() (called by the writers that move buildings)
        for t in PLACE_COPIES:
            conn.execute(text(f"DROP TRIGGER IF EXISTS {t}_place ON {t}"))
        conn.execute(text("DROP TRIGGER IF EXISTS buildings_moved ON buildings"))
        conn.execute(text("DROP TRIGGER IF EXISTS buildings_assignments_place ON buildings"))  # (0026) the same
        # a key between a table left on the coordinator and a replicated one would make Citus convert
        # the former (and refuse: sub-query policies): dropped, the application names the rows
        for table, name, _, parent in _foreign_keys(conn, plan.local):
            if (table in ref) != (parent in ref) and _kind(conn, table) is None:
                conn.execute(text(f"ALTER TABLE {table} DROP CONSTRAINT {name}"))
                plan.foreign_keys_dropped.append(f"{table}.{name}")
    for t in PER_NODE:
        with engine.begin() as conn:
            if _exists(conn, t) and _kind(conn, t) is not None:
                conn.execute(text("SELECT undistribute_table(:t)"), {"t": t})
    with engine.begin() as conn:
        sync_secret(conn)
    # parents first: a reference table may only reference reference tables
    for t in ref:
        with engine.begin() as conn:
            if _kind(conn, t) is None:
                with _unforced(conn, t):
                    conn.execute(text("SELECT create_reference_table(:t)"), {"t": t})
    for t in dist:
        with engine.begin() as conn:
            if _kind(conn, t) is None:
                conn.execute(text(f"SET LOCAL citus.shard_count = {int(shard_count)}"))
                with _unforced(conn, t):
                    conn.execute(text("SELECT create_distributed_table(:t, 'district_code', colocate_with => :c)"),
                                 {"t": t, "c": "none" if t == dist[0] else dist[0]})
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL citus.multi_shard_modify_mode = 'sequential'"))
        for table, name, definition, parent in conn.execute(text("SELECT * FROM wangge_citus_pending_fks ORDER BY 1, 2")).all():
            if table in dist and parent in dist:
                # by building within its district: (district_code, building_id) -> (district_code, id)
                local_cols = definition[definition.index("(") + 1:definition.index(")")]
                rest = definition[definition.index("REFERENCES"):]
                parent_cols = rest[rest.index("(") + 1:rest.index(")")]
                tail = rest[rest.index(")") + 1:]
                conn.execute(text(f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY (district_code, {local_cols}) "
                                  f"REFERENCES {parent} (district_code, {parent_cols}){tail}"))
            elif table in ref and parent in ref:
                conn.execute(text(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}"))
            else:
                plan.foreign_keys_dropped.append(f"{table}.{name}")
        conn.execute(text("DELETE FROM wangge_citus_pending_fks"))
    # (its own transaction: run_command_on_placements works over other connections, which would wait
    # for the locks the key changes above hold)
    with engine.begin() as conn:
        # (one connection per node: the coordinator's ALTER TABLE below follows the placements' commands)
        conn.execute(text("SET LOCAL citus.multi_shard_modify_mode = 'sequential'"))
        # The shards without FORCE: Citus writes the owner's multi-row INSERTs and loads into shards with
        # COPY, which PostgreSQL refuses under row-level security, and FORCE (migration 0016) binds the
        # owner. The owner passes 0016's policies by name anyway (and wangge_row_ok above), so on the
        # shards the owner's table ownership gives the same answer; every other role stays bound (ENABLE).
        # The coordinator's tables keep FORCE, as the security tests require.
        for t in [*dist, *ref]:
            if _kind(conn, t) is not None:
                conn.execute(text("SELECT count(*) FROM run_command_on_placements(:t, 'ALTER TABLE %s NO FORCE ROW LEVEL SECURITY')"),
                             {"t": t})
                # and on the coordinator: under FORCE the owner's queries carry the policies' quals, and
                # Citus 13.2 crashes (segmentation fault) planning some joins of a distributed table
                # with quals (an outer join back to buildings by id, a local register joined with
                # buildings: README, Citus). Without FORCE the owner passes by ownership, the same
                # answer as 0016's current_user clause; every other role stays bound (ENABLE).
                conn.execute(text(f"ALTER TABLE {t} NO FORCE ROW LEVEL SECURITY"))
        # The tables kept on the coordinator for their sub-query policies (assignments, cadres): those
        # sub-queries read buildings and grids, which Citus refuses to join with a local table; under
        # FORCE even the owner's own reads (the demo's next id) would run them. Without FORCE the owner
        # passes by ownership, the same answer as 0016's clause; the app role stays bound.
        # The same for every other table left on the coordinator whose policies have sub-queries (the
        # people registers, events): Citus plans a join of such a table with a distributed one by
        # pulling the local rows first, and cannot do that under a policy with a sub-query ("cannot
        # handle unplanned sub-select"), so under FORCE even the owner's imports would fail.
        coordinator = [t for t, in conn.execute(text("""
            SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
               AND c.relforcerowsecurity AND NOT EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = c.oid)""")).all()]
        for t in dict.fromkeys([*held, *[t for t in coordinator if _subquery_policies(conn, t)]]):
            if _kind(conn, t) is None:
                conn.execute(text(f"ALTER TABLE {t} NO FORCE ROW LEVEL SECURITY"))
    # The policies: the row form on the coordinator (again for tables distributed by an earlier
    # version: the derived tables' writers), then the fast form on every shard.
    with engine.begin() as conn:
        owner = conn.execute(text("SELECT current_user")).scalar_one()
        for t in dist:
            if t in POLICY_AREA and _kind(conn, t) == "h":
                for sql in _policy_sql(t, owner):
                    conn.execute(text(sql))
    with engine.begin() as conn:
        plan.shard_policies = fast_shard_policies(conn)
    with engine.begin() as conn:
        plan.distributed = [t for t in dist if _kind(conn, t) == "h"]
        plan.reference = [t for t in ref if _kind(conn, t) == "n"]
    plan.done = True
    return plan


def sync_secret(conn: Connection) -> None:
    """Copy the scope-signing secret (``wangge_secrets``, owner-only) to every worker, where the
    policies of the distributed tables verify the signed scope. A no-op on one node."""
    if not is_citus(conn) or not _exists(conn, "wangge_secrets"):
        return
    value = conn.execute(text("SELECT value FROM wangge_secrets WHERE name = 'scope'")).scalar_one_or_none()
    if value is None:
        return
    literal = "'" + value.replace("'", "''") + "'"
    for sql in ("""CREATE TABLE IF NOT EXISTS wangge_secrets (name text PRIMARY KEY,
                     value text NOT NULL CHECK (length(value) >= 32), updated_at timestamptz NOT NULL DEFAULT now())""",
                "REVOKE ALL ON wangge_secrets FROM PUBLIC",
                f"""INSERT INTO wangge_secrets (name, value) VALUES ('scope', {literal}) ON CONFLICT (name)
                    DO UPDATE SET value = EXCLUDED.value, updated_at = now() WHERE wangge_secrets.value <> EXCLUDED.value"""):
        failed = [r for r in conn.execute(text("SELECT nodename, nodeport, success, result FROM run_command_on_workers(:c)"),
                                          {"c": sql}).all() if not r.success]
        if failed:
            raise RuntimeError(f"could not write the scope secret on {', '.join(f'{r.nodename}:{r.nodeport}' for r in failed)}: "
                               f"{failed[0].result}")


PLACE_COPIES = ("building_groups", "service_buildings", "siting_scenario_demand")


def sync_building_places(conn: Connection) -> None:
    """On Citus, bring the rows that copy a building back to its community and grid.

    On one node the triggers of migration 0021 do this row by row; on Citus a trigger on a shard
    may not query another distributed table, so ``distribute`` drops them and the writers that
    move buildings (imports, accepting a grid draft) call this: one co-located UPDATE per table,
    joined on the distribution column, run shard by shard. A no-op on one node."""
    if not is_citus(conn):
        return
    if _has_column(conn, "assignments", "place_grid_id"):  # an assignment to a building follows it (0026)
        # read, then write: Citus updates a replicated table from replicated tables only
        moved = conn.execute(text("""
            SELECT a.id, b.community_code, b.grid_id FROM assignments a JOIN buildings b ON b.id = a.building_id
            WHERE a.grid_id IS NULL
              AND (a.community_code IS DISTINCT FROM b.community_code OR a.place_grid_id IS DISTINCT FROM b.grid_id)""")).all()
        if moved:
            conn.execute(text("""UPDATE assignments a SET community_code = x.c, place_grid_id = x.g
                                 FROM unnest(CAST(:i AS bigint[]), CAST(:c AS text[]), CAST(:g AS bigint[])) AS x(i, c, g)
                                 WHERE a.id = x.i"""),
                         {"i": [r[0] for r in moved], "c": [r[1] for r in moved], "g": [r[2] for r in moved]})
    for t in PLACE_COPIES:
        if _exists(conn, t):
            conn.execute(text(f"""
                UPDATE {t} x SET community_code = b.community_code, grid_id = b.grid_id FROM buildings b
                WHERE b.district_code = x.district_code AND b.id = x.building_id
                  AND (x.community_code IS DISTINCT FROM b.community_code OR x.grid_id IS DISTINCT FROM b.grid_id)"""))


def layout(conn: Connection) -> dict:
    """What is where now: table -> distributed / reference / local, with shard counts."""
    rows = conn.execute(text("""
        SELECT logicalrelid::regclass::text, CASE WHEN partmethod = 'h' THEN 'h' WHEN repmodel = 't' THEN 'n' ELSE 'l' END,
               (SELECT count(*) FROM pg_dist_shard s WHERE s.logicalrelid = p.logicalrelid)
        FROM pg_dist_partition p ORDER BY 1""")).all()
    names = {"h": "distributed", "n": "reference", "l": "local (Citus-managed)"}
    return {t: {"kind": names.get(k, k), "shards": int(n)} for t, k, n in rows}
