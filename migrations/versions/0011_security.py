"""Sign-in and row-level access (issue 8): users, sign-in bookkeeping, events, and
row-level security on buildings, building_groups, assignments, events and users.

How a policy knows who is asking: the app sets the transaction-local ``wangge.scope`` to
``base64(json).hex(hmac_sha256)`` (gis/scope.py). ``wangge_scope()`` (SECURITY DEFINER,
owned by the schema owner) checks the signature against the secret in ``wangge_secrets``
(owner-only: the app role cannot read it) and the expiry, and returns the payload or NULL.
A missing, unsigned, forged or expired setting gives NULL, and every policy is then false:
no rows, never all rows. The policies call the scope helpers through scalar subqueries,
``(SELECT wangge_scope_grids())``, so they run once per query (an InitPlan), not per row.

The owner is not bound (no FORCE ROW LEVEL SECURITY): migrations, imports and the CLI run
as the owner. ``wangge db up`` writes the secret after migrating (gis/migrate.py).

Group counts per building are resident-level data; roles that may not read them (planner,
street leader without ``resident_detail``) get totals per grid and community from
``group_totals(level)`` (SECURITY DEFINER, limited to the caller's area).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25
"""
from alembic import op

from layers.vocab import GROUPS, codes

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ROLES = ("system", "admin", "leader", "secretary", "worker", "planner")
DEFINER = "SECURITY DEFINER SET search_path = public, pg_temp"

# Scope parts, each a scalar subquery: evaluated once per query, not per row.
ROLE = "(SELECT wangge_scope_role())"
# (the casts make ``x = ANY(...)`` take the array, not the rows of a subquery)
COMS = "(SELECT wangge_scope_communities())::bpchar[]"
GRIDS = "(SELECT wangge_scope_grids())::bigint[]"
DETAIL = "(SELECT wangge_scope_detail())"
ALL = f"{ROLE} IN ('system', 'admin')"
WHOLE = f"(cardinality({COMS}) = 0 OR {{c}} = ANY({COMS}))"  # leader/planner: no communities = all


def _area(community: str, grid: str, roles: tuple[str, ...]) -> str:
    """Rows of a table with a community and a grid column that the scope's role may touch.

    ``roles`` lists which of leader/planner/secretary/worker are allowed at all."""
    parts = [ALL]
    wide = [r for r in ("leader", "planner") if r in roles]
    if wide:
        parts.append(f"({ROLE} IN ({', '.join(repr(r) for r in wide)}) AND {WHOLE.format(c=community)})")
    if "secretary" in roles:
        parts.append(f"({ROLE} = 'secretary' AND {community} = ANY({COMS}))")
    if "worker" in roles:
        parts.append(f"({ROLE} = 'worker' AND {grid} = ANY({GRIDS}))")
    return "(" + "\n    OR ".join(parts) + ")"


def _assignments(roles: tuple[str, ...]) -> str:
    """Assignments name a grid or a building; they are in an area when that grid or building is."""
    grid_in_coms = f"grid_id IN (SELECT id FROM grids WHERE community_code = ANY({COMS}))"
    bld_in_coms = f"building_id IN (SELECT id FROM buildings WHERE community_code = ANY({COMS}))"
    parts = [ALL]
    wide = [r for r in ("leader", "planner") if r in roles]
    if wide:
        parts.append(f"({ROLE} IN ({', '.join(repr(r) for r in wide)}) AND (cardinality({COMS}) = 0 OR {grid_in_coms} OR {bld_in_coms}))")
    if "secretary" in roles:
        parts.append(f"({ROLE} = 'secretary' AND ({grid_in_coms} OR {bld_in_coms}))")
    if "worker" in roles:
        parts.append(f"({ROLE} = 'worker' AND (grid_id = ANY({GRIDS}) OR building_id IN "
                     f"(SELECT id FROM buildings WHERE grid_id = ANY({GRIDS}))))")
    return "(" + "\n    OR ".join(parts) + ")"


def _groups_area() -> str:
    """building_groups rows: through their building; leaders only with resident detail, planners never."""
    return f"""({ALL}
    OR ({ROLE} = 'leader' AND {DETAIL} AND building_id IN (SELECT id FROM buildings WHERE {WHOLE.format(c='community_code')}))
    OR ({ROLE} = 'secretary' AND building_id IN (SELECT id FROM buildings WHERE community_code = ANY({COMS})))
    OR ({ROLE} = 'worker' AND building_id IN (SELECT id FROM buildings WHERE grid_id = ANY({GRIDS}))))"""


EVERYONE = ("leader", "planner", "secretary", "worker")
POLICIES: dict[str, tuple[str, str]] = {  # table -> (who may read, who may write)
    "buildings": (_area("community_code", "grid_id", EVERYONE), _area("community_code", "grid_id", ("leader", "secretary", "worker"))),
    "building_groups": (_groups_area(), _groups_area()),
    "assignments": (_assignments(EVERYONE), _assignments(("leader", "secretary"))),
    "events": (_area("community_code", "grid_id", ("leader", "secretary", "worker")),
               _area("community_code", "grid_id", ("leader", "secretary", "worker"))),
    "users": (f"({ALL} OR username = (SELECT wangge_scope_user()))", f"({ALL})"),
}


def _policies(table: str) -> None:
    read, write = POLICIES[table]
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY {table}_read ON {table} FOR SELECT TO PUBLIC USING {read}")
    op.execute(f"CREATE POLICY {table}_insert ON {table} FOR INSERT TO PUBLIC WITH CHECK {write}")
    op.execute(f"CREATE POLICY {table}_update ON {table} FOR UPDATE TO PUBLIC USING {write} WITH CHECK {write}")
    op.execute(f"CREATE POLICY {table}_delete ON {table} FOR DELETE TO PUBLIC USING {write}")


def upgrade() -> None:
    # pgcrypto is a trusted extension: the database owner may create it.
    op.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
    op.execute("""
CREATE TABLE wangge_secrets (
  name text PRIMARY KEY,
  value text NOT NULL CHECK (length(value) >= 32),
  updated_at timestamptz NOT NULL DEFAULT now()
)""")
    op.execute("REVOKE ALL ON wangge_secrets FROM PUBLIC")

    # --- the verified scope ------------------------------------------------------------------
    op.execute(f"""
CREATE FUNCTION wangge_scope() RETURNS jsonb LANGUAGE plpgsql STABLE {DEFINER} AS $$
DECLARE
  raw text := current_setting('wangge.scope', true);
  body text; sig text; k text; p jsonb;
BEGIN
  IF raw IS NULL OR raw = '' OR raw !~ '^[A-Za-z0-9+/=]+\\.[0-9a-f]{{64}}$' THEN RETURN NULL; END IF;
  body := split_part(raw, '.', 1);
  sig := split_part(raw, '.', 2);
  SELECT value INTO k FROM wangge_secrets WHERE name = 'scope';
  IF k IS NULL OR encode(hmac(body, k, 'sha256'), 'hex') <> sig THEN RETURN NULL; END IF;
  BEGIN
    p := convert_from(decode(body, 'base64'), 'UTF8')::jsonb;
  EXCEPTION WHEN others THEN RETURN NULL;
  END;
  IF jsonb_typeof(p) <> 'object' OR jsonb_typeof(p->'exp') <> 'number' OR (p->>'exp')::numeric < extract(epoch FROM now())
     OR NOT (p->>'r' = ANY (ARRAY{list(ROLES)})) THEN
    RETURN NULL;
  END IF;
  RETURN p;
END $$""")
    for sql in (
        "CREATE FUNCTION wangge_scope_role() RETURNS text LANGUAGE sql STABLE AS $$ SELECT wangge_scope()->>'r' $$",
        "CREATE FUNCTION wangge_scope_user() RETURNS text LANGUAGE sql STABLE AS $$ SELECT wangge_scope()->>'u' $$",
        """CREATE FUNCTION wangge_scope_detail() RETURNS boolean LANGUAGE sql STABLE AS $$
             SELECT coalesce((wangge_scope()->>'d')::boolean, false) $$""",
        """CREATE FUNCTION wangge_scope_communities() RETURNS bpchar[] LANGUAGE sql STABLE AS $$
             SELECT CASE WHEN s IS NULL THEN NULL
                         ELSE ARRAY(SELECT jsonb_array_elements_text(coalesce(s->'c', '[]'))::char(12)) END
             FROM (SELECT wangge_scope() AS s) x $$""",
        """CREATE FUNCTION wangge_scope_grids() RETURNS bigint[] LANGUAGE sql STABLE AS $$
             SELECT CASE WHEN s IS NULL THEN NULL
                         ELSE ARRAY(SELECT jsonb_array_elements_text(coalesce(s->'g', '[]'))::bigint) END
             FROM (SELECT wangge_scope() AS s) x $$""",
    ):
        op.execute(sql)

    # --- users and sign-in bookkeeping ----------------------------------------------------------
    op.execute(f"""
CREATE TABLE users (
  id bigserial PRIMARY KEY,
  username text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9_.@-]{{2,64}}$'),
  display_name text,
  role text NOT NULL CHECK (role IN ({', '.join(repr(r) for r in ROLES if r != 'system')})),
  communities char(12)[] NOT NULL DEFAULT '{{}}',
  grids bigint[] NOT NULL DEFAULT '{{}}',
  resident_detail boolean NOT NULL DEFAULT false,
  active boolean NOT NULL DEFAULT true,
  password_hash text,
  oidc_subject text UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  password_changed_at timestamptz
)""")
    # Failed sign-ins per username typed, whether or not such a user exists: an unknown name
    # slows down and locks exactly like a known one, so the answers do not tell them apart.
    op.execute("""
CREATE TABLE login_attempts (
  username text PRIMARY KEY,
  failed_count integer NOT NULL DEFAULT 0,
  last_failed_at timestamptz,
  locked_until timestamptz
)""")
    op.execute("REVOKE ALL ON login_attempts FROM PUBLIC")
    op.execute(f"""
CREATE FUNCTION auth_lookup(p_username text)
RETURNS TABLE (user_id bigint, password_hash text, active boolean, failed_count integer,
               last_failed_at timestamptz, locked_until timestamptz, db_now timestamptz)
LANGUAGE sql STABLE {DEFINER} AS $$
  SELECT u.id, u.password_hash, u.active, coalesce(a.failed_count, 0), a.last_failed_at, a.locked_until, now()
  FROM (SELECT p_username AS username) q
  LEFT JOIN users u ON u.username = q.username
  LEFT JOIN login_attempts a ON a.username = q.username $$""")
    op.execute(f"""
CREATE FUNCTION auth_failed(p_username text, p_lock_after integer, p_lock_minutes integer)
RETURNS TABLE (failed_count integer, locked_until timestamptz)
LANGUAGE plpgsql {DEFINER} AS $$
#variable_conflict use_column
BEGIN
  -- a lock that has run out starts the count afresh
  DELETE FROM login_attempts a WHERE a.username = p_username AND a.locked_until IS NOT NULL AND a.locked_until <= now();
  INSERT INTO login_attempts AS a (username, failed_count, last_failed_at) VALUES (p_username, 1, now())
  ON CONFLICT (username) DO UPDATE SET failed_count = a.failed_count + 1, last_failed_at = now();
  UPDATE login_attempts a SET locked_until = now() + make_interval(mins => p_lock_minutes)
  WHERE a.username = p_username AND a.failed_count >= p_lock_after AND a.locked_until IS NULL;
  RETURN QUERY SELECT a.failed_count, a.locked_until FROM login_attempts a WHERE a.username = p_username;
END $$""")
    op.execute(f"""
CREATE FUNCTION auth_succeeded(p_username text) RETURNS void LANGUAGE sql {DEFINER} AS $$
  DELETE FROM login_attempts WHERE username = p_username $$""")
    user_cols = "u.id, u.username, u.display_name, u.role, u.communities::text[], u.grids, u.resident_detail, u.active"
    user_ret = ("id bigint, username text, display_name text, role text, communities text[], grids bigint[], "
                "resident_detail boolean, active boolean")
    # Signing in happens before there is a scope: these give one user's row (never the hash).
    op.execute(f"""
CREATE FUNCTION auth_user(p_username text) RETURNS TABLE ({user_ret}) LANGUAGE sql STABLE {DEFINER} AS $$
  SELECT {user_cols} FROM users u WHERE u.username = p_username $$""")
    op.execute(f"""
CREATE FUNCTION auth_user_by_oidc(p_subject text) RETURNS TABLE ({user_ret}) LANGUAGE sql STABLE {DEFINER} AS $$
  SELECT {user_cols} FROM users u WHERE u.oidc_subject = p_subject
  UNION ALL
  SELECT {user_cols} FROM users u WHERE lower(u.username) = lower(p_subject)
    AND NOT EXISTS (SELECT 1 FROM users x WHERE x.oidc_subject = p_subject)
  LIMIT 1 $$""")

    # --- events (网格事件, standards §6) ----------------------------------------------------------
    op.execute("""
CREATE TABLE events (
  id bigserial PRIMARY KEY,
  district_code char(6) NOT NULL CHECK (district_code ~ '^[0-9]{6}$'),
  community_code char(12) REFERENCES communities (code),
  grid_id bigint REFERENCES grids (id),
  building_id bigint REFERENCES buildings (id),
  kind text NOT NULL,
  status text NOT NULL DEFAULT 'reported'
    CHECK (status IN ('reported', 'filed', 'dispatched', 'handling', 'handled', 'closed', 'returned')),
  reported_at timestamptz NOT NULL DEFAULT now(),
  reported_by text NOT NULL,
  description text,
  geom geometry(Point, 4326) CHECK (geom IS NULL OR ST_IsValid(geom))
)""")
    op.execute("CREATE INDEX events_grid_ix ON events (grid_id)")
    op.execute("CREATE INDEX events_community_ix ON events (community_code)")
    op.execute("CREATE INDEX events_geom_gix ON events USING gist (geom)")

    for table in ("buildings", "building_groups", "assignments", "events", "users"):
        _policies(table)

    # --- totals for roles that may not read per-building group counts -------------------------------
    sums = ", ".join(f"coalesce(sum(bg.{c}), 0)::bigint AS {c}" for c in codes(GROUPS))
    cols = ", ".join(f"{c} bigint" for c in codes(GROUPS))
    op.execute(f"""
CREATE FUNCTION group_totals(p_level text)
RETURNS TABLE (level text, code text, buildings bigint, households bigint, residents bigint, {cols})
LANGUAGE plpgsql STABLE {DEFINER} AS $$
#variable_conflict use_column
DECLARE
  r text := wangge_scope_role(); coms bpchar[] := wangge_scope_communities(); grs bigint[] := wangge_scope_grids();
BEGIN
  IF r IS NULL OR p_level NOT IN ('grid', 'community', 'subdistrict') THEN RETURN; END IF;
  IF r = 'worker' AND p_level <> 'grid' THEN RETURN; END IF;  -- a worker's totals are their grids'
  RETURN QUERY
  SELECT p_level, CASE p_level WHEN 'grid' THEN g.code WHEN 'community' THEN b.community_code::text
                               ELSE left(b.community_code, 9) END,
         count(*)::bigint, coalesce(sum(b.households), 0)::bigint, coalesce(sum(b.residents), 0)::bigint, {sums}
  FROM buildings b
  LEFT JOIN building_groups bg ON bg.building_id = b.id
  LEFT JOIN grids g ON g.id = b.grid_id
  WHERE (p_level <> 'grid' OR g.id IS NOT NULL) AND (p_level = 'grid' OR b.community_code IS NOT NULL)
    AND (r IN ('system', 'admin')
         OR (r IN ('leader', 'planner') AND (cardinality(coms) = 0 OR b.community_code = ANY(coms)))
         OR (r = 'secretary' AND b.community_code = ANY(coms))
         OR (r = 'worker' AND b.grid_id = ANY(grs)))
  GROUP BY 2 ORDER BY 2;
END $$""")

    # --- audit: who the database saw, besides who the app says -------------------------------------
    op.execute("ALTER TABLE audit_log ADD COLUMN scope_user text")
    op.execute("CREATE INDEX audit_log_actor_ix ON audit_log (actor, at)")
    op.execute(f"""
CREATE FUNCTION audit_log_scope_user() RETURNS trigger LANGUAGE plpgsql {DEFINER} AS $$
BEGIN
  -- app-role inserts: the verified scope's user, whatever the app wrote; the owner's: the actor
  NEW.scope_user := CASE WHEN session_user = (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = TG_RELID)
                         THEN coalesce(NEW.scope_user, NEW.actor)
                         ELSE coalesce(wangge_scope()->>'u', '(' || session_user || ')') END;
  RETURN NEW;
END $$""")
    op.execute("CREATE TRIGGER audit_log_scope_user BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_scope_user()")

    # --- grants for the app role --------------------------------------------------------------------
    op.execute("""
DO $$
DECLARE app text := coalesce(current_setting('wangge.app_role', true), 'wangge_app');
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = app) THEN
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON events TO %I', app);
    EXECUTE format('GRANT USAGE ON SEQUENCE events_id_seq, users_id_seq TO %I', app);
    -- users: every column but the password hash is readable; writes are checked by the policies
    EXECUTE format('GRANT SELECT (id, username, display_name, role, communities, grids, resident_detail, active,
                    oidc_subject, created_at, updated_at, password_changed_at) ON users TO %I', app);
    EXECUTE format('GRANT INSERT, UPDATE ON users TO %I', app);
  END IF;
END $$""")
    # Definer functions are callable by PUBLIC by default; keep the bookkeeping away from other roles
    # than the app (the owner calls them too).
    for fn in ("auth_lookup(text)", "auth_failed(text, integer, integer)", "auth_succeeded(text)",
               "auth_user(text)", "auth_user_by_oidc(text)"):
        op.execute(f"REVOKE ALL ON FUNCTION {fn} FROM PUBLIC")
        op.execute(f"""
DO $$
DECLARE app text := coalesce(current_setting('wangge.app_role', true), 'wangge_app');
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = app) THEN
    EXECUTE format('GRANT EXECUTE ON FUNCTION {fn} TO %I', app);
  END IF;
END $$""")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS audit_log_scope_user ON audit_log")
    op.execute("DROP FUNCTION IF EXISTS audit_log_scope_user()")
    op.execute("DROP INDEX IF EXISTS audit_log_actor_ix")
    op.execute("ALTER TABLE audit_log DROP COLUMN IF EXISTS scope_user")
    op.execute("DROP FUNCTION IF EXISTS group_totals(text)")
    for table in ("buildings", "building_groups", "assignments"):
        for kind in ("read", "insert", "update", "delete"):
            op.execute(f"DROP POLICY IF EXISTS {table}_{kind} ON {table}")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute("DROP TABLE IF EXISTS events")
    for fn in ("auth_lookup(text)", "auth_failed(text, integer, integer)", "auth_succeeded(text)",
               "auth_user(text)", "auth_user_by_oidc(text)"):
        op.execute(f"DROP FUNCTION IF EXISTS {fn}")
    op.execute("DROP TABLE IF EXISTS login_attempts")
    op.execute("DROP TABLE IF EXISTS users")
    for fn in ("wangge_scope_grids()", "wangge_scope_communities()", "wangge_scope_detail()", "wangge_scope_user()",
               "wangge_scope_role()", "wangge_scope()"):
        op.execute(f"DROP FUNCTION IF EXISTS {fn}")
    op.execute("DROP TABLE IF EXISTS wangge_secrets")
