"""The database holds the line when the app does not (issue 19).

Threat: SQL run on the application's connection (``wangge_app``), with no scope, a forged
scope or a real one (an injection, a bug). After this migration:

* **Every table the app role can touch is under row-level security, ENABLE and FORCE**, for
  reading and for writing. FORCE binds the owner too; the owner's own work (migrations,
  imports, the CLI, the SECURITY DEFINER functions below) passes by one named clause
  (``current_user`` is the owner), never by an absent policy. No scope: no rows, no writes.
* **Sessions** are opened, touched and ended only by owner functions: ``auth_login``
  (password verified inside the database, the session made there, expiry from
  ``wangge_config``), ``session_resolve``, ``session_revoke``, ``session_revoke_user``
  (administrator), ``session_open_oidc``. The app role has no privilege on
  ``user_sessions`` or ``login_attempts``.
* **No function hands a password hash to the app role.** ``auth_challenge(name)`` gives the
  Argon2id parameters and salt of the stored hash (a salt derived from the name and a
  secret for an unknown name, so the answer does not tell), the app computes Argon2id with
  them (PostgreSQL has no Argon2), and ``auth_login(name, computed, token_sha256)`` compares
  inside the database, counts failures, enforces slow-down and lock, and opens the session.
* **The audit log** is written only by ``audit_write`` (actor from the verified scope, time
  from the database clock) and by the owner; the app role lost INSERT.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""
from alembic import op
from sqlalchemy import text

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

DEFINER = "SECURITY DEFINER SET search_path = public, pg_temp"
ROLE = "(SELECT wangge_scope_role())"
COMS = "(SELECT wangge_scope_communities())::bpchar[]"
GRIDS = "(SELECT wangge_scope_grids())::bigint[]"
ANY_SCOPE = f"{ROLE} IS NOT NULL"
ADMIN = f"{ROLE} IN ('system', 'admin')"


def _owner() -> str:
    return op.get_bind().execute(text("SELECT current_user")).scalar_one()


def _roles(*roles: str) -> str:
    return f"{ROLE} IN ({', '.join(repr(r) for r in roles)})"


def _community_area(col: str, roles: tuple[str, ...]) -> str:
    """Rows whose ``col`` community lies in the scope's area, for leaders (all communities when
    none are given) and secretaries (theirs)."""
    parts = []
    if "leader" in roles:
        parts.append(f"({ROLE} = 'leader' AND (cardinality({COMS}) = 0 OR {col} = ANY({COMS})))")
    if "secretary" in roles:
        parts.append(f"({ROLE} = 'secretary' AND {col} = ANY({COMS}))")
    if "worker" in roles:
        parts.append(f"({ROLE} = 'worker' AND {col} IN (SELECT community_code FROM grids WHERE id = ANY({GRIDS})))")
    return " OR ".join(parts)


def _grids_area(roles: tuple[str, ...]) -> str:
    parts = [_community_area("community_code", tuple(r for r in roles if r != "worker"))]
    if "worker" in roles:
        parts.append(f"({ROLE} = 'worker' AND id = ANY({GRIDS}))")
    return " OR ".join(p for p in parts if p)


# table -> (read, insert, update, delete); each a predicate besides the owner's clause.
def _spec() -> dict[str, tuple[str, str, str, str]]:
    ref = (ANY_SCOPE, ADMIN, ADMIN, ADMIN)  # reference layers: every signed-in role reads, admins edit
    coverage_w = _roles("system", "admin", "leader")  # recomputing coverage is the leader's (and admin's)
    coverage = (ANY_SCOPE, coverage_w, coverage_w, coverage_w)
    siting_r = _roles("system", "admin", "planner", "leader")
    siting_w = _roles("system", "admin", "planner")
    cadres_r = f"({ADMIN} OR {_community_area('community_code', ('leader', 'secretary', 'worker'))})"
    cadres_w = f"({ADMIN} OR {_community_area('community_code', ('leader', 'secretary'))})"
    grids_u = f"({ADMIN} OR {_grids_area(('leader', 'secretary'))})"  # staff_version on assigning
    return {
        "districts": ref, "subdistricts": ref, "communities": ref, "facility_categories": ref,
        "cameras": ref, "facilities": ref, "roads": ref,
        "grids": (ANY_SCOPE, ADMIN, grids_u, ADMIN),
        "cadres": (cadres_r, cadres_w, cadres_w, cadres_w),
        "camera_coverage": coverage, "camera_key_places": coverage, "camera_views": coverage,
        "compliance_results": coverage, "coverage_runs": coverage, "service_facilities": coverage,
        "siting_scenarios": (siting_r, siting_w, siting_w, siting_w),
        "siting_scenario_sites": (siting_r, siting_w, siting_w, siting_w),
        "grid_drafts": (ADMIN, ADMIN, ADMIN, ADMIN),
        "grid_draft_parts": (ADMIN, ADMIN, ADMIN, ADMIN),
        "users": (f"({ADMIN} OR username = (SELECT wangge_scope_user()))", ADMIN, ADMIN, ADMIN),
        "audit_log": (ADMIN, "false", "false", "false"),  # written by audit_write (owner) only
        "user_sessions": ("false", "false", "false", "false"),  # owner functions only
        "login_attempts": ("false", "false", "false", "false"),
        "wangge_secrets": ("false", "false", "false", "false"),
        "wangge_config": ("false", "false", "false", "false"),
    }


# Tables whose 0014 policies stay (wangge_area learns the owner clause); two gain a role check on writes.
AREA_TABLES = ("buildings", "building_groups", "assignments")
DERIVED = {"service_buildings": ("system", "admin", "leader"), "siting_scenario_demand": ("system", "admin", "planner")}


def _drop_policies(table: str) -> None:
    rows = op.get_bind().execute(text("SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = :t"),
                                 {"t": table}).scalars().all()
    for name in rows:
        op.execute(f'DROP POLICY "{name}" ON {table}')


def _app(sql: str) -> None:
    """Run ``sql`` (with %I for the app role) when the app role exists."""
    op.execute(f"""
DO $$
DECLARE app text := coalesce(current_setting('wangge.app_role', true), 'wangge_app');
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = app) THEN
    EXECUTE format($q${sql}$q$, app);
  END IF;
END $$""")


def upgrade() -> None:
    owner = _owner()
    own = f"(current_user = '{owner}')"

    # --- settings the database enforces, stored owner-side (gis/migrate.py writes them) ---------
    op.execute("""
CREATE TABLE wangge_config (
  name text PRIMARY KEY,
  value numeric NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
)""")
    op.execute("REVOKE ALL ON wangge_config FROM PUBLIC")
    op.execute(f"""
CREATE FUNCTION wangge_setting(p_name text, p_default numeric) RETURNS numeric LANGUAGE sql STABLE {DEFINER} AS $$
  SELECT coalesce((SELECT value FROM wangge_config WHERE name = p_name), p_default) $$""")

    # --- the owner's work passes the policies by name -------------------------------------------
    op.execute(f"""
CREATE OR REPLACE FUNCTION wangge_area(p_table text, p_write boolean,
                            OUT all_rows boolean, OUT communities bpchar[], OUT grids bigint[])
LANGUAGE plpgsql STABLE AS $$
DECLARE
  s jsonb;
  r text;
  c bpchar[];
  g bigint[];
  detail boolean;
  wide text[];
BEGIN
  all_rows := false; communities := NULL; grids := NULL;
  IF current_user = '{owner}' THEN all_rows := true; RETURN; END IF;  -- migrations, imports, definer functions
  s := wangge_scope(); r := s->>'r';
  IF r IS NULL THEN RETURN; END IF;
  IF r IN ('system', 'admin') THEN all_rows := true; RETURN; END IF;
  c := ARRAY(SELECT jsonb_array_elements_text(coalesce(s->'c', '[]'))::char(12));
  g := ARRAY(SELECT jsonb_array_elements_text(coalesce(s->'g', '[]'))::bigint);
  detail := coalesce((s->>'d')::boolean, false);
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

    for table, (read, ins, upd, dele) in _spec().items():
        _drop_policies(table)
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {table}_read ON {table} FOR SELECT TO PUBLIC USING ({own} OR {read})")
        op.execute(f"CREATE POLICY {table}_insert ON {table} FOR INSERT TO PUBLIC WITH CHECK ({own} OR {ins})")
        op.execute(f"CREATE POLICY {table}_update ON {table} FOR UPDATE TO PUBLIC USING ({own} OR {upd}) "
                   f"WITH CHECK ({own} OR {upd})")
        op.execute(f"CREATE POLICY {table}_delete ON {table} FOR DELETE TO PUBLIC USING ({own} OR {dele})")
    for table in AREA_TABLES:
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    for table, roles in DERIVED.items():
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        visible = ("((SELECT all_rows FROM wangge_area('buildings', false)) "
                   "OR EXISTS (SELECT 1 FROM buildings b WHERE b.id = building_id))")
        write = f"({own} OR ({_roles(*roles)} AND {visible}))"
        for kind in ("insert", "update", "delete"):
            op.execute(f"DROP POLICY IF EXISTS {table}_{kind} ON {table}")
        op.execute(f"CREATE POLICY {table}_insert ON {table} FOR INSERT TO PUBLIC WITH CHECK {write}")
        op.execute(f"CREATE POLICY {table}_update ON {table} FOR UPDATE TO PUBLIC USING {write} WITH CHECK {write}")
        op.execute(f"CREATE POLICY {table}_delete ON {table} FOR DELETE TO PUBLIC USING {write}")

    # --- a leader or secretary may bump a grid's staff_version (assigning), nothing else of it ---
    op.execute(f"""
CREATE FUNCTION grids_staff_only() RETURNS trigger LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
  IF current_user <> '{owner}' AND coalesce(wangge_scope_role(), '') NOT IN ('system', 'admin')
     -- (geom_3857 is generated: not yet computed in NEW here)
     AND (to_jsonb(NEW) - 'staff_version' - 'geom_3857') IS DISTINCT FROM (to_jsonb(OLD) - 'staff_version' - 'geom_3857') THEN
    RAISE EXCEPTION 'only an administrator edits grids; % may change who staffs them', wangge_scope_role()
      USING ERRCODE = '42501';
  END IF;
  RETURN NEW;
END $$""")
    op.execute("CREATE TRIGGER grids_staff_only BEFORE UPDATE ON grids FOR EACH ROW EXECUTE FUNCTION grids_staff_only()")

    # --- sign-in inside the database --------------------------------------------------------------
    op.execute("""
CREATE OR REPLACE FUNCTION auth_gate(p_username text, OUT status text, OUT retry_after double precision)
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
DECLARE a record; wait double precision;
  slow_after integer := wangge_setting('auth_slowdown_after', 3);
  slow_base numeric := wangge_setting('auth_slowdown_base_s', 2);
BEGIN
  status := 'ok'; retry_after := 0;
  SELECT * INTO a FROM login_attempts WHERE username = p_username;
  IF NOT FOUND THEN RETURN; END IF;
  IF a.locked_until IS NOT NULL AND a.locked_until > now() THEN
    status := 'locked'; retry_after := extract(epoch FROM a.locked_until - now()); RETURN;
  END IF;
  IF a.locked_until IS NOT NULL THEN RETURN; END IF;  -- a lock that ran out: the count starts afresh
  IF a.failed_count >= slow_after AND a.last_failed_at IS NOT NULL THEN
    wait := slow_base * 2 ^ (a.failed_count - slow_after);
    IF a.last_failed_at + make_interval(secs => wait) > now() THEN
      status := 'slow_down'; retry_after := extract(epoch FROM a.last_failed_at + make_interval(secs => wait) - now());
    END IF;
  END IF;
END $$""")
    op.execute(f"""
CREATE FUNCTION auth_challenge(p_username text, OUT params text, OUT salt text, OUT hash_len integer,
                               OUT status text, OUT retry_after double precision)
LANGUAGE plpgsql STABLE {DEFINER} AS $$
DECLARE h text; m text[]; k text;
BEGIN
  SELECT g.status, g.retry_after INTO status, retry_after FROM auth_gate(p_username) g;
  SELECT u.password_hash INTO h FROM users u WHERE u.username = p_username;
  m := regexp_match(coalesce(h, ''), '^(\\$argon2id\\$v=[0-9]+\\$m=[0-9]+,t=[0-9]+,p=[0-9]+)\\$([A-Za-z0-9+/]+)\\$([A-Za-z0-9+/]+)$');
  IF m IS NOT NULL THEN
    params := m[1]; salt := m[2]; hash_len := (length(m[3]) * 3) / 4;
  ELSE  -- unknown name or no password: a salt that is stable per name and tells nothing
    SELECT value INTO k FROM wangge_secrets WHERE name = 'scope';
    params := '$argon2id$v=19$m=65536,t=3,p=4';
    salt := rtrim(encode(substr(hmac('auth-challenge:' || p_username, coalesce(k, 'wangge'), 'sha256'), 1, 16), 'base64'), '=');
    hash_len := 32;
  END IF;
END $$""")
    op.execute(f"""
CREATE FUNCTION auth_login(p_username text, p_computed text, p_token_sha256 text, p_user_agent text DEFAULT NULL)
RETURNS TABLE (status text, retry_after double precision, id bigint, username text, display_name text, role text,
               communities text[], grids bigint[], resident_detail boolean, active boolean)
LANGUAGE plpgsql {DEFINER} AS $$
#variable_conflict use_column
DECLARE g record; u record; a record; ok boolean;
  lock_after integer := wangge_setting('auth_lock_after', 5);
  lock_minutes integer := wangge_setting('auth_lock_minutes', 15);
  slow_after integer := wangge_setting('auth_slowdown_after', 3);
  slow_base numeric := wangge_setting('auth_slowdown_base_s', 2);
BEGIN
  SELECT * INTO g FROM auth_gate(p_username);
  IF g.status <> 'ok' THEN
    RETURN QUERY SELECT g.status, g.retry_after, NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::text[],
                        NULL::bigint[], NULL::boolean, NULL::boolean;
    RETURN;
  END IF;
  SELECT * INTO u FROM users x WHERE x.username = p_username;
  -- compared as digests: the time a comparison takes says nothing about how much of the hash matched
  ok := FOUND AND u.password_hash IS NOT NULL AND p_computed IS NOT NULL
        AND digest(u.password_hash, 'sha256') = digest(p_computed, 'sha256');
  IF NOT ok THEN
    DELETE FROM login_attempts x WHERE x.username = p_username AND x.locked_until IS NOT NULL AND x.locked_until <= now();
    INSERT INTO login_attempts AS x (username, failed_count, last_failed_at) VALUES (p_username, 1, now())
    ON CONFLICT (username) DO UPDATE SET failed_count = x.failed_count + 1, last_failed_at = now();
    UPDATE login_attempts x SET locked_until = now() + make_interval(mins => lock_minutes)
    WHERE x.username = p_username AND x.failed_count >= lock_after AND x.locked_until IS NULL;
    SELECT * INTO a FROM login_attempts x WHERE x.username = p_username;
    IF a.locked_until IS NOT NULL THEN
      RETURN QUERY SELECT 'locked'::text, extract(epoch FROM a.locked_until - now())::double precision, NULL::bigint,
                          NULL::text, NULL::text, NULL::text, NULL::text[], NULL::bigint[], NULL::boolean, NULL::boolean;
    ELSE
      RETURN QUERY SELECT 'bad_credentials'::text,
                          (CASE WHEN a.failed_count >= slow_after THEN slow_base * 2 ^ (a.failed_count - slow_after) ELSE 0 END)::double precision,
                          NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::text[], NULL::bigint[], NULL::boolean, NULL::boolean;
    END IF;
    RETURN;
  END IF;
  DELETE FROM login_attempts x WHERE x.username = p_username;
  IF NOT u.active THEN
    RETURN QUERY SELECT 'inactive'::text, 0::double precision, u.id::bigint, u.username, u.display_name, u.role,
                        u.communities::text[], u.grids, u.resident_detail, u.active;
    RETURN;
  END IF;
  IF p_token_sha256 IS NOT NULL THEN
    IF p_token_sha256 !~ '^[0-9a-f]{{64}}$' THEN RAISE EXCEPTION 'token digest must be 64 hex digits'; END IF;
    INSERT INTO user_sessions (token_sha256, user_id, expires_at, user_agent)
    VALUES (p_token_sha256, u.id, now() + make_interval(hours => wangge_setting('session_max_hours', 12)::integer),
            left(coalesce(p_user_agent, ''), 300));
  END IF;
  RETURN QUERY SELECT 'ok'::text, 0::double precision, u.id::bigint, u.username, u.display_name, u.role,
                      u.communities::text[], u.grids, u.resident_detail, u.active;
END $$""")
    op.execute(f"""
CREATE FUNCTION session_open_oidc(p_subject text, p_token_sha256 text, p_user_agent text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql {DEFINER} AS $$
DECLARE uid bigint;
BEGIN
  -- only users an administrator linked to the identity provider: by oidc_subject, or a user
  -- whose name is that e-mail address (never 'demo_admin' or any plain name: the web process
  -- vouches for the provider here, and a plain name is not what a provider hands out)
  SELECT u.id INTO uid FROM users u WHERE u.active AND p_subject <> ''
    AND (u.oidc_subject = p_subject OR (position('@' IN u.username) > 0 AND lower(u.username) = lower(p_subject)))
  ORDER BY (u.oidc_subject = p_subject) DESC NULLS LAST LIMIT 1;
  IF uid IS NULL OR p_token_sha256 !~ '^[0-9a-f]{{64}}$' THEN RETURN NULL; END IF;
  INSERT INTO user_sessions (token_sha256, user_id, expires_at, user_agent)
  VALUES (p_token_sha256, uid, now() + make_interval(hours => wangge_setting('session_max_hours', 12)::integer),
          left(coalesce(p_user_agent, ''), 300));
  RETURN uid;
END $$""")
    op.execute(f"""
CREATE FUNCTION session_resolve(p_token_sha256 text)
RETURNS TABLE (status text, user_id bigint, username text)
LANGUAGE plpgsql {DEFINER} AS $$
#variable_conflict use_column
DECLARE s record; alive boolean;
BEGIN
  SELECT * INTO s FROM user_sessions x WHERE x.token_sha256 = p_token_sha256 AND x.revoked_at IS NULL FOR UPDATE;
  IF NOT FOUND THEN RETURN QUERY SELECT 'unknown'::text, NULL::bigint, NULL::text; RETURN; END IF;
  alive := s.expires_at > now() AND s.last_seen > now() - make_interval(mins => wangge_setting('session_idle_minutes', 30)::integer);
  UPDATE user_sessions x SET last_seen = now(), revoked_at = CASE WHEN alive THEN NULL ELSE now() END
   WHERE x.token_sha256 = p_token_sha256;
  IF NOT alive THEN RETURN QUERY SELECT 'expired'::text, NULL::bigint, NULL::text; RETURN; END IF;
  RETURN QUERY SELECT 'ok'::text, u.id::bigint, u.username FROM users u WHERE u.id = s.user_id;
END $$""")
    op.execute(f"""
CREATE FUNCTION session_revoke(p_token_sha256 text) RETURNS void LANGUAGE sql {DEFINER} AS $$
  UPDATE user_sessions SET revoked_at = now() WHERE token_sha256 = p_token_sha256 AND revoked_at IS NULL $$""")
    op.execute(f"""
CREATE FUNCTION session_revoke_user(p_user_id bigint) RETURNS integer LANGUAGE plpgsql {DEFINER} AS $$
DECLARE n integer;
BEGIN
  IF session_user <> current_user AND coalesce(wangge_scope_role(), '') NOT IN ('system', 'admin') THEN
    RAISE EXCEPTION 'only an administrator may end another user''s sessions' USING ERRCODE = '42501';
  END IF;
  UPDATE user_sessions SET revoked_at = now() WHERE user_id = p_user_id AND revoked_at IS NULL;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$""")
    op.execute(f"""
CREATE FUNCTION auth_unlock(p_username text) RETURNS void LANGUAGE plpgsql {DEFINER} AS $$
BEGIN
  IF session_user <> current_user AND coalesce(wangge_scope_role(), '') NOT IN ('system', 'admin') THEN
    RAISE EXCEPTION 'only an administrator may unlock a user' USING ERRCODE = '42501';
  END IF;
  DELETE FROM login_attempts WHERE username = p_username;
END $$""")

    # --- the audit log: actor from the verified scope, time from the clock --------------------------
    op.execute(f"""
CREATE FUNCTION audit_write(p_action text, p_table text, p_row_key text, p_district text, p_before jsonb, p_after jsonb,
                            p_actor text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql {DEFINER} AS $$
DECLARE who text; new_id bigint;
BEGIN
  IF session_user = current_user THEN  -- the owner (CLI, imports): trusted to name the actor
    who := coalesce(p_actor, 'system');
  ELSE
    who := wangge_scope_user();
    IF who IS NULL THEN RAISE EXCEPTION 'no verified scope: nothing is audited for nobody' USING ERRCODE = '42501'; END IF;
  END IF;
  INSERT INTO audit_log (actor, action, table_name, row_key, district_code, before, after, scope_user)
  VALUES (who, p_action, p_table, p_row_key, p_district, p_before, p_after,
          CASE WHEN session_user = current_user THEN who ELSE wangge_scope_user() END)
  RETURNING id INTO new_id;
  RETURN new_id;
END $$""")
    # the trigger keeps its rule; audit_write already fills scope_user, the trigger leaves a verified value
    op.execute(f"""
CREATE OR REPLACE FUNCTION audit_log_scope_user() RETURNS trigger LANGUAGE plpgsql {DEFINER} AS $$
BEGIN
  IF session_user <> (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = TG_RELID) THEN
    NEW.at := now();  -- the database's clock for anyone but the owner
  END IF;
  NEW.scope_user := CASE WHEN session_user = (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = TG_RELID)
                         THEN coalesce(NEW.scope_user, NEW.actor)
                         ELSE coalesce(wangge_scope()->>'u', '(' || session_user || ')') END;
  RETURN NEW;
END $$""")

    # --- privileges ------------------------------------------------------------------------------------
    _app("REVOKE ALL ON user_sessions, login_attempts FROM %I")
    _app("REVOKE INSERT, UPDATE, DELETE ON audit_log FROM %I")
    _app("REVOKE ALL ON SEQUENCE audit_log_id_seq FROM %I")
    _app("REVOKE INSERT, UPDATE, DELETE ON facility_categories FROM %I")
    for fn in ("auth_lookup(text)",):
        op.execute(f"DROP FUNCTION IF EXISTS {fn}")
    # functions of ours (not of an extension): nobody by default, the app role what it needs
    op.execute("""
DO $$
DECLARE f record;
BEGIN
  FOR f IN SELECT p.oid::regprocedure AS sig FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = 'public'
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e') LOOP
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f.sig);
  END LOOP;
END $$""")
    for fn in APP_FUNCTIONS:
        _app(f"REVOKE ALL ON FUNCTION {fn} FROM %I")
        _app(f"GRANT EXECUTE ON FUNCTION {fn} TO %I")
    for fn in ("auth_failed(text, integer, integer)", "auth_succeeded(text)", "auth_user(text)"):
        _app(f"REVOKE ALL ON FUNCTION {fn} FROM %I")


# What the app role may call (tests/test_attacker.py holds it to this list, from the catalog).
APP_FUNCTIONS = (
    "wangge_scope()", "wangge_scope_role()", "wangge_scope_user()", "wangge_scope_detail()",
    "wangge_scope_communities()", "wangge_scope_grids()", "wangge_area(text, boolean)",
    "group_totals(text)", "audit_version()", "audit_write(text, text, text, text, jsonb, jsonb, text)",
    "auth_challenge(text)", "auth_login(text, text, text, text)", "auth_user_by_oidc(text)",
    "session_open_oidc(text, text, text)", "session_resolve(text)", "session_revoke(text)",
    "session_revoke_user(bigint)", "auth_unlock(text)",
)


def downgrade() -> None:
    """Back to 0015: the old functions, grants and policies (the tables that had none lose theirs)."""
    owner = _owner()
    for fn in ("auth_challenge(text)", "auth_login(text, text, text, text)", "auth_gate(text)",
               "session_open_oidc(text, text, text)", "session_resolve(text)", "session_revoke(text)",
               "session_revoke_user(bigint)", "auth_unlock(text)",
               "audit_write(text, text, text, text, jsonb, jsonb, text)"):
        op.execute(f"DROP FUNCTION IF EXISTS {fn}")
    op.execute("DROP TRIGGER IF EXISTS grids_staff_only ON grids")
    op.execute("DROP FUNCTION IF EXISTS grids_staff_only()")
    had_rls = {"users", "audit_log"}
    for table in _spec():
        if table == "wangge_config":
            continue
        _drop_policies(table)
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        if table not in had_rls:
            op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute("""CREATE POLICY users_read ON users FOR SELECT TO PUBLIC USING ((SELECT wangge_scope_role()) IN ('system', 'admin')
                  OR username = (SELECT wangge_scope_user()))""")
    for kind, clause in (("insert", "WITH CHECK"), ("update", "USING"), ("delete", "USING")):
        extra = " WITH CHECK ((SELECT wangge_scope_role()) IN ('system', 'admin'))" if kind == "update" else ""
        op.execute(f"CREATE POLICY users_{kind} ON users FOR {kind.upper()} TO PUBLIC {clause} "
                   f"((SELECT wangge_scope_role()) IN ('system', 'admin')){extra}")
    op.execute("""CREATE POLICY audit_log_read ON audit_log FOR SELECT TO PUBLIC
                  USING ((SELECT wangge_scope_role()) IN ('system', 'admin'))""")
    op.execute("CREATE POLICY audit_log_insert ON audit_log FOR INSERT TO PUBLIC WITH CHECK (true)")
    for table in AREA_TABLES:
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    visible = ("((SELECT wangge_scope_role()) IN ('system', 'admin') OR ((SELECT wangge_scope_role()) IN ('leader', 'planner') "
               "AND cardinality((SELECT wangge_scope_communities())::bpchar[]) = 0) "
               "OR EXISTS (SELECT 1 FROM buildings b WHERE b.id = building_id))")
    for table in DERIVED:
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        for kind in ("insert", "update", "delete"):
            op.execute(f"DROP POLICY IF EXISTS {table}_{kind} ON {table}")
        op.execute(f"CREATE POLICY {table}_insert ON {table} FOR INSERT TO PUBLIC WITH CHECK {visible}")
        op.execute(f"CREATE POLICY {table}_update ON {table} FOR UPDATE TO PUBLIC USING {visible} WITH CHECK {visible}")
        op.execute(f"CREATE POLICY {table}_delete ON {table} FOR DELETE TO PUBLIC USING {visible}")
    # wangge_area without the owner clause (0014's)
    op.execute(f"""
CREATE OR REPLACE FUNCTION wangge_area(p_table text, p_write boolean,
                            OUT all_rows boolean, OUT communities bpchar[], OUT grids bigint[])
LANGUAGE plpgsql STABLE AS $$
DECLARE
  s jsonb := wangge_scope();
  r text := s->>'r';
  c bpchar[] := ARRAY(SELECT jsonb_array_elements_text(coalesce(s->'c', '[]'))::char(12));
  g bigint[] := ARRAY(SELECT jsonb_array_elements_text(coalesce(s->'g', '[]'))::bigint);
  detail boolean := coalesce((s->>'d')::boolean, false);
  wide text[];
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
    # the old sign-in function and privileges
    op.execute(f"""
CREATE FUNCTION auth_lookup(p_username text)
RETURNS TABLE (user_id bigint, password_hash text, active boolean, failed_count integer,
               last_failed_at timestamptz, locked_until timestamptz, db_now timestamptz)
LANGUAGE sql STABLE {DEFINER} AS $$
  SELECT u.id, u.password_hash, u.active, coalesce(a.failed_count, 0), a.last_failed_at, a.locked_until, now()
  FROM (SELECT p_username AS username) q
  LEFT JOIN users u ON u.username = q.username
  LEFT JOIN login_attempts a ON a.username = q.username $$""")
    op.execute("REVOKE ALL ON FUNCTION auth_lookup(text) FROM PUBLIC")
    for fn in ("auth_lookup(text)", "auth_failed(text, integer, integer)", "auth_succeeded(text)", "auth_user(text)"):
        _app(f"GRANT EXECUTE ON FUNCTION {fn} TO %I")
    _app("GRANT SELECT, INSERT, UPDATE (last_seen, revoked_at) ON user_sessions TO %I")
    _app("GRANT INSERT ON audit_log TO %I")
    _app("GRANT USAGE ON SEQUENCE audit_log_id_seq TO %I")
    op.execute(f"""
CREATE OR REPLACE FUNCTION audit_log_scope_user() RETURNS trigger LANGUAGE plpgsql {DEFINER} AS $$
BEGIN
  NEW.scope_user := CASE WHEN session_user = (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = TG_RELID)
                         THEN coalesce(NEW.scope_user, NEW.actor)
                         ELSE coalesce(wangge_scope()->>'u', '(' || session_user || ')') END;
  RETURN NEW;
END $$""")
    op.execute("DROP FUNCTION IF EXISTS wangge_setting(text, numeric)")
    op.execute("DROP TABLE IF EXISTS wangge_config")
    del owner
