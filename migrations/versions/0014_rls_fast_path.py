"""Row-level security, cheaper per row (issue 8, after measuring 0011 on 100,000 buildings).

0011's policies spelled the role logic out in every policy (``role IN (…) AND …`` four
times, eight scope look-ups), so each row paid for string comparisons, and every verify
ran in a sub-transaction (the EXCEPTION block). Now the role logic runs once per query in
``wangge_area(table, write)``, which answers three things: whether the scope sees every
row, which communities and which grids it sees. A policy is then
``all OR community_code = ANY(communities) OR grid_id = ANY(grids)``: a boolean and two
short arrays per row. Tables reached through their building probe it by primary key
(EXISTS), and the app's transactions run without JIT (gis/scope.py). What each role sees
is unchanged (tests/test_security_db.py); bench/bench_rls.py measures the cost.

``wangge_scope()`` parses the payload only after the signature matched, so it needs no
EXCEPTION block: a payload we signed is well-formed.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-25
"""
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

DEFINER = "SECURITY DEFINER SET search_path = public, pg_temp"
TABLES = ("buildings", "building_groups", "assignments", "events", "service_buildings", "siting_scenario_demand")
KINDS = ("read", "insert", "update", "delete")


def _all(t: str, w: bool) -> str:
    return f"(SELECT all_rows FROM wangge_area('{t}', {str(w).lower()}))"


def _coms(t: str, w: bool) -> str:
    return f"(SELECT communities FROM wangge_area('{t}', {str(w).lower()}))::bpchar[]"  # cast: the array, not rows


def _grids(t: str, w: bool) -> str:
    return f"(SELECT grids FROM wangge_area('{t}', {str(w).lower()}))::bigint[]"


def _predicate(table: str, write: bool) -> str:
    a, c, g = _all(table, write), _coms(table, write), _grids(table, write)
    if table in ("buildings", "events"):
        return f"({a} OR community_code = ANY({c}) OR grid_id = ANY({g}))"
    # EXISTS (correlated, by primary key) rather than IN (subquery): the planner then probes
    # the building per row instead of hashing every visible building first (10x on a join)
    # (and only when the scope has an area at all: a leader without the grant probes nothing)
    bld = (f"(({c}) IS NOT NULL OR ({g}) IS NOT NULL) AND EXISTS (SELECT 1 FROM buildings b WHERE b.id = building_id"
           f" AND (b.community_code = ANY({c}) OR b.grid_id = ANY({g})))")
    if table == "building_groups":
        return f"({a} OR ({bld}))"
    if table == "assignments":
        return (f"({a} OR grid_id = ANY({g}) OR EXISTS (SELECT 1 FROM grids x WHERE x.id = grid_id AND x.community_code = ANY({c}))"
                f" OR ({bld}))")
    # copies of building rows follow the buildings the scope can read (their policy applies inside)
    return f"({_all('buildings', False)} OR EXISTS (SELECT 1 FROM buildings b WHERE b.id = building_id))"


def upgrade() -> None:
    op.execute(f"""
CREATE OR REPLACE FUNCTION wangge_scope() RETURNS jsonb LANGUAGE plpgsql STABLE {DEFINER} AS $$
DECLARE
  raw text := current_setting('wangge.scope', true);
  body text; k text; p jsonb;
BEGIN
  IF raw IS NULL OR raw !~ '^[A-Za-z0-9+/]+={{0,2}}\\.[0-9a-f]{{64}}$' THEN RETURN NULL; END IF;
  body := split_part(raw, '.', 1);
  SELECT value INTO k FROM wangge_secrets WHERE name = 'scope';
  IF k IS NULL OR encode(hmac(body, k, 'sha256'), 'hex') <> split_part(raw, '.', 2) THEN RETURN NULL; END IF;
  p := convert_from(decode(body, 'base64'), 'UTF8')::jsonb;  -- signed by us: well-formed
  IF jsonb_typeof(p->'exp') <> 'number' OR (p->>'exp')::numeric < extract(epoch FROM now())
     OR NOT (p->>'r' = ANY (ARRAY['system', 'admin', 'leader', 'secretary', 'worker', 'planner'])) THEN
    RETURN NULL;
  END IF;
  RETURN p;
END $$""")
    # Which rows of a table the scope may read (write = false) or change (write = true).
    op.execute("""
CREATE FUNCTION wangge_area(p_table text, p_write boolean,
                            OUT all_rows boolean, OUT communities bpchar[], OUT grids bigint[])
LANGUAGE plpgsql STABLE AS $$
DECLARE
  s jsonb := wangge_scope();
  r text := s->>'r';
  c bpchar[] := ARRAY(SELECT jsonb_array_elements_text(coalesce(s->'c', '[]'))::char(12));
  g bigint[] := ARRAY(SELECT jsonb_array_elements_text(coalesce(s->'g', '[]'))::bigint);
  detail boolean := coalesce((s->>'d')::boolean, false);
  wide text[];  -- roles that see the whole sub-district (or their communities) in this table
BEGIN
  all_rows := false; communities := NULL; grids := NULL;
  IF r IS NULL THEN RETURN; END IF;
  IF r IN ('system', 'admin') THEN all_rows := true; RETURN; END IF;
  wide := CASE p_table
    WHEN 'buildings' THEN CASE WHEN p_write THEN ARRAY['leader'] ELSE ARRAY['leader', 'planner'] END
    WHEN 'assignments' THEN CASE WHEN p_write THEN ARRAY['leader'] ELSE ARRAY['leader', 'planner'] END
    WHEN 'events' THEN ARRAY['leader']
    WHEN 'building_groups' THEN CASE WHEN detail THEN ARRAY['leader'] ELSE ARRAY[]::text[] END
    ELSE ARRAY[]::text[] END;
  IF r = ANY (wide) THEN
    IF cardinality(c) = 0 THEN all_rows := true; ELSE communities := c; END IF;
  ELSIF r = 'secretary' THEN
    communities := c;
  ELSIF r = 'worker' AND NOT (p_table = 'assignments' AND p_write) THEN
    grids := g;
  END IF;
END $$""")
    for table in TABLES:
        for kind in KINDS:
            op.execute(f"DROP POLICY IF EXISTS {table}_{kind} ON {table}")
        read, write = _predicate(table, False), _predicate(table, True)
        op.execute(f"CREATE POLICY {table}_read ON {table} FOR SELECT TO PUBLIC USING {read}")
        op.execute(f"CREATE POLICY {table}_insert ON {table} FOR INSERT TO PUBLIC WITH CHECK {write}")
        op.execute(f"CREATE POLICY {table}_update ON {table} FOR UPDATE TO PUBLIC USING {write} WITH CHECK {write}")
        op.execute(f"CREATE POLICY {table}_delete ON {table} FOR DELETE TO PUBLIC USING {write}")


def downgrade() -> None:
    # back to 0013's policies: re-run those two migrations' policy definitions
    import importlib.util
    from pathlib import Path

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(name + ".py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    m11, m13 = load("0011_security"), load("0013_derived_rls")
    for table in TABLES:
        for kind in KINDS:
            op.execute(f"DROP POLICY IF EXISTS {table}_{kind} ON {table}")
    for table in ("buildings", "building_groups", "assignments", "events"):
        read, write = m11.POLICIES[table]
        op.execute(f"CREATE POLICY {table}_read ON {table} FOR SELECT TO PUBLIC USING {read}")
        op.execute(f"CREATE POLICY {table}_insert ON {table} FOR INSERT TO PUBLIC WITH CHECK {write}")
        op.execute(f"CREATE POLICY {table}_update ON {table} FOR UPDATE TO PUBLIC USING {write} WITH CHECK {write}")
        op.execute(f"CREATE POLICY {table}_delete ON {table} FOR DELETE TO PUBLIC USING {write}")
    v = m13.VISIBLE
    for table in m13.TABLES:
        op.execute(f"CREATE POLICY {table}_read ON {table} FOR SELECT TO PUBLIC USING {v}")
        op.execute(f"CREATE POLICY {table}_insert ON {table} FOR INSERT TO PUBLIC WITH CHECK {v}")
        op.execute(f"CREATE POLICY {table}_update ON {table} FOR UPDATE TO PUBLIC USING {v} WITH CHECK {v}")
        op.execute(f"CREATE POLICY {table}_delete ON {table} FOR DELETE TO PUBLIC USING {v}")
    op.execute("DROP FUNCTION IF EXISTS wangge_area(text, boolean)")
