"""People who need care, visits on schedule, patrols measured — with personal data protected
as PIPL requires (issue 17).

Tables: ``persons`` (the actual-population register, 一标三实), ``person_groups`` (membership
of the groups of standards §3 with the GB/T 31000 fields each needs), ``visits``,
``visit_intervals`` (the schedule's settings, with their sources), ``patrol_tracks`` and
``person_access_log``.

How the database keeps the rules (not the app):
- ``persons``, ``person_groups``, ``visits`` and ``person_access_log`` grant the app role
  NOTHING. Every read goes through an owner SECURITY DEFINER function that writes one
  ``person_access_log`` row per person returned, in the same statement (a data-modifying
  CTE): the app cannot read a person without the read being logged.
- Those tables have FORCE ROW LEVEL SECURITY, so even inside the definer functions (which
  run as the owner) the policies apply with the caller's signed scope: a worker's call
  returns the people of their grids, a secretary's their community, anybody else's none.
  ``people_area()`` says what a scope sees.
- Leaders and planners get counts only, from ``people_counts``/``patrol_coverage``: those
  functions run with ``wangge.people_aggregate = on`` (set by the function definition and
  restored on return) and the policies let that through only when ``current_user`` is not
  the session user, i.e. inside a definer function; the app role setting the variable
  itself changes nothing, and every other definer function sets it ``off``.
- ID numbers and phones are stored as AES-GCM ciphertext made by the app with a key kept in
  ``.env`` (never in the database), a keyed hash for duplicate look-up and the masked form
  (layers/people.py). A dump alone reveals neither.
- ``person_access_log``: inserts only by the definer functions (the user is the verified
  scope's, not what the app says); no UPDATE/DELETE/TRUNCATE by anyone (trigger), read
  by the administrator through ``people_access``.

Revision ID: 0019
Revises: 0015
Create Date: 2026-12-06
"""
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

DEFINER = "SECURITY DEFINER SET search_path = public, pg_temp"
# (set inside the bodies: PostgreSQL 15 lets only a superuser attach a custom setting to a function)
OFF_SQL = "SELECT set_config('wangge.people_aggregate', 'off', true);"  # every definer function but the aggregates
OFF_PL = "PERFORM set_config('wangge.people_aggregate', 'off', true);"
ON_PL = "PERFORM set_config('wangge.people_aggregate', 'on', true);"
PERSON_GROUPS = ("elderly_alone", "disabled", "dibao", "released", "corrections", "mental", "at_risk_youth",
                 "party_members", "volunteers")
OUTCOMES = ("met", "absent", "refused")
PERSON_TABLES = ("persons", "person_groups", "visits", "person_access_log", "visit_intervals", "patrol_tracks", "patrol_segments")

# the aggregate bypass: only inside a definer function that turned it on
AGG = "(current_setting('wangge.people_aggregate', true) = 'on' AND current_user <> session_user)"
AREA_ALL = "(SELECT all_rows FROM people_area())"
AREA_C = "(SELECT communities FROM people_area())::bpchar[]"
AREA_G = "(SELECT grids FROM people_area())::bigint[]"
PERSON_VISIBLE = f"({AGG} OR {AREA_ALL} OR community_code = ANY({AREA_C}) OR grid_id = ANY({AREA_G}))"
# child rows follow their person (the persons policy applies inside the EXISTS)
PERSON_WRITE = f"({AREA_ALL} OR community_code = ANY({AREA_C}) OR grid_id = ANY({AREA_G}))"
# (the system and the count functions skip the probe: measured, bench/bench_people.py)
CHILD_VISIBLE = f"({AGG} OR {AREA_ALL} OR EXISTS (SELECT 1 FROM persons p WHERE p.id = person_id))"
CHILD_WRITE = f"({AREA_ALL} OR EXISTS (SELECT 1 FROM persons p WHERE p.id = person_id))"
TRACK_VISIBLE = f"({AGG} OR {AREA_ALL} OR community_codes && {AREA_C} OR grid_ids && {AREA_G})"
# Segments are read only inside patrol_coverage (the app role has no privilege on them); the
# policy (any verified scope) binds other roles, not the owner (see the FORCE note below).
SEGMENT_VISIBLE = "((SELECT wangge_scope()) IS NOT NULL)"
SEGMENT_WRITE = SEGMENT_VISIBLE

# (group, risk from, risk to, days, source, mark)
INTERVALS = (
    ("mental", 0, 0, 90, "严重精神障碍患者风险0级每3个月随访一次（standards §3）", "practice, verify"),
    ("mental", 1, 2, 30, "严重精神障碍患者风险1–2级每月随访（standards §3：每1–2个月）", "practice, verify"),
    ("mental", 3, 5, 7, "严重精神障碍患者风险3–5级每周随访（standards §3，四人小组）", "practice, verify"),
    ("released", 0, 5, 90, "刑满释放人员每季度回访（seed plans, standards §3）", "std"),
    ("corrections", 0, 5, 30, "社区矫正对象每月走访（local practice）", "verify"),
    ("elderly_alone", 0, 5, 30, "独居老人每月走访（issue 17）", "practice"),
    ("disabled", 0, 5, 90, "残疾人每季度走访（local practice）", "verify"),
    ("dibao", 0, 5, 90, "低保户每季度走访（local practice）", "verify"),
    ("at_risk_youth", 0, 5, 30, "重点青少年每月走访（local practice）", "verify"),
)

LIST_COLS = """id bigint, community_code text, grid_id bigint, grid_code text, building_id bigint, address text,
               household_no text, name text, sex text, birth_date date, id_masked text, phone_masked text,
               separated boolean, floating boolean, arrival_date date, status text, groups text[], risk_grade smallint,
               interval_days integer, last_visit_at timestamptz, next_visit date"""


def _grant_app(sql: str) -> None:
    op.execute(f"""
DO $$
DECLARE app text := coalesce(current_setting('wangge.app_role', true), 'wangge_app');
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = app) THEN
    EXECUTE format('{sql}', app);
  END IF;
END $$""")


def _fn(signature: str) -> None:
    op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
    _grant_app(f"GRANT EXECUTE ON FUNCTION {signature} TO %I")


def upgrade() -> None:
    # --- what a scope sees of the people tables ----------------------------------------------------
    op.execute("""
CREATE FUNCTION people_area(OUT all_rows boolean, OUT communities bpchar[], OUT grids bigint[])
LANGUAGE plpgsql STABLE AS $$
DECLARE
  s jsonb := wangge_scope();
  r text := s->>'r';
BEGIN
  all_rows := false; communities := NULL; grids := NULL;
  IF r IS NULL THEN RETURN; END IF;
  IF r = 'system' THEN all_rows := true;  -- the CLI and imports; the administrator reads the log, not the people
  ELSIF r = 'secretary' THEN communities := ARRAY(SELECT jsonb_array_elements_text(coalesce(s->'c', '[]'))::char(12));
  ELSIF r = 'worker' THEN grids := ARRAY(SELECT jsonb_array_elements_text(coalesce(s->'g', '[]'))::bigint);
  END IF;  -- leader, planner, admin: counts only (people_counts)
END $$""")

    # Person ids come from a sequence no table owns, so that truncating the layers (demo reload)
    # never hands an old id, still named in the access log, to another person.
    op.execute("CREATE SEQUENCE person_ids")
    op.execute("""
CREATE TABLE persons (
  id bigint PRIMARY KEY DEFAULT nextval('person_ids'),
  district_code char(6) NOT NULL CHECK (district_code ~ '^[0-9]{6}$'),
  community_code char(12) REFERENCES communities (code),
  grid_id bigint REFERENCES grids (id),
  building_id bigint REFERENCES buildings (id) ON DELETE SET NULL,
  household_no text,
  name text NOT NULL,
  sex char(1) CHECK (sex IN ('M', 'F')),
  birth_date date,
  id_hash char(64) UNIQUE,           -- HMAC-SHA256 of the ID number under the key in .env (look-up, duplicates)
  id_cipher bytea,                   -- AES-256-GCM under the key in .env
  id_masked text,                    -- first 6 + 8 '*' + last 4
  phone_cipher bytea,
  phone_masked text,
  hukou_address text,                -- 户籍地址
  separated boolean NOT NULL DEFAULT false,   -- 人户分离
  floating boolean NOT NULL DEFAULT false,    -- 流动人口
  arrival_date date,
  status text NOT NULL DEFAULT 'resident' CHECK (status IN ('resident', 'moved', 'dead')),
  status_date date,
  last_visit_at timestamptz,
  registered_at timestamptz NOT NULL DEFAULT now(),
  anonymised_at timestamptz,
  CHECK (anonymised_at IS NOT NULL OR (id_hash IS NOT NULL AND id_cipher IS NOT NULL AND id_masked IS NOT NULL))
)""")
    op.execute("CREATE INDEX persons_grid_ix ON persons (grid_id)")
    op.execute("CREATE INDEX persons_community_ix ON persons (community_code)")
    op.execute("CREATE INDEX persons_building_ix ON persons (building_id)")
    groups = ", ".join(repr(g) for g in PERSON_GROUPS)
    op.execute(f"""
CREATE TABLE person_groups (
  person_id bigint NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
  group_code text NOT NULL CHECK (group_code IN ({groups})),
  since date,
  risk_grade smallint CHECK (risk_grade BETWEEN 0 AND 5),           -- severe mental disorders 0–5
  tier text CHECK (tier IN ('strict', 'normal', 'lenient')),         -- corrections 严管/普管/宽管
  release_date date,                                                  -- released prisoners
  bangjiao_status text,                                               -- 帮教 status
  guardian text,                                                      -- mental disorders: 监护人
  details jsonb NOT NULL DEFAULT '{{}}',                              -- other GB/T 31000 fields (罪名, 刑期, 衔接, 安置 …)
  PRIMARY KEY (person_id, group_code)
)""")
    op.execute("CREATE INDEX person_groups_group_ix ON person_groups (group_code)")
    outcomes = ", ".join(repr(o) for o in OUTCOMES)
    op.execute(f"""
CREATE TABLE visits (
  id bigserial PRIMARY KEY,
  person_id bigint NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
  visited_at timestamptz NOT NULL,
  visitor text NOT NULL,
  outcome text NOT NULL CHECK (outcome IN ({outcomes})),
  note text CHECK (length(note) <= 2000),
  geom geometry(Point, 4326),
  distance_m real,
  far boolean NOT NULL DEFAULT false,
  recorded_at timestamptz NOT NULL DEFAULT now()
)""")
    op.execute("CREATE INDEX visits_person_ix ON visits (person_id, visited_at DESC)")
    op.execute("""
CREATE TABLE visit_intervals (
  group_code text NOT NULL,
  risk_min smallint NOT NULL DEFAULT 0,
  risk_max smallint NOT NULL DEFAULT 5,
  interval_days integer NOT NULL CHECK (interval_days > 0),
  source text NOT NULL,
  mark text NOT NULL,
  PRIMARY KEY (group_code, risk_min),
  CHECK (risk_min <= risk_max)
)""")
    for g, lo, hi, days, source, mark in INTERVALS:
        source = source.replace("'", "''")
        op.execute(f"INSERT INTO visit_intervals VALUES ('{g}', {lo}, {hi}, {days}, '{source}', '{mark}')")
    op.execute("""
CREATE TABLE person_access_log (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT clock_timestamp(),
  username text NOT NULL,
  role text NOT NULL,
  person_id bigint NOT NULL,          -- no foreign key: the log outlives the record
  action text NOT NULL CHECK (action IN ('list', 'view', 'reveal', 'export', 'visit')),
  reason text,
  channel text NOT NULL
)""")
    op.execute("CREATE INDEX person_access_log_person_ix ON person_access_log (person_id, at)")
    op.execute("CREATE INDEX person_access_log_at_ix ON person_access_log (at)")
    op.execute("""
CREATE FUNCTION person_access_log_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'person_access_log is append-only' USING ERRCODE = 'insufficient_privilege';
END $$""")
    op.execute("""CREATE TRIGGER person_access_log_frozen BEFORE UPDATE OR DELETE ON person_access_log
                  FOR EACH ROW EXECUTE FUNCTION person_access_log_frozen()""")
    op.execute("""CREATE TRIGGER person_access_log_no_truncate BEFORE TRUNCATE ON person_access_log
                  FOR EACH STATEMENT EXECUTE FUNCTION person_access_log_frozen()""")
    op.execute("""
CREATE TABLE patrol_tracks (
  id bigserial PRIMARY KEY,
  district_code char(6) NOT NULL CHECK (district_code ~ '^[0-9]{6}$'),
  cadre_no text NOT NULL,
  day date NOT NULL,
  started_at timestamptz NOT NULL,
  ended_at timestamptz NOT NULL,
  fixes integer NOT NULL,
  active_s real NOT NULL,
  length_m real NOT NULL,
  grid_ids bigint[] NOT NULL DEFAULT '{}',
  community_codes char(12)[] NOT NULL DEFAULT '{}',
  source_file text,
  imported_by text,
  imported_at timestamptz NOT NULL DEFAULT now(),
  geom geometry(LineString, 4326) NOT NULL CHECK (ST_IsValid(geom))
)""")
    op.execute("CREATE INDEX patrol_tracks_geom_gix ON patrol_tracks USING gist (geom)")
    op.execute("CREATE INDEX patrol_tracks_day_ix ON patrol_tracks (day)")
    # A track's segments (one per pair of fixes, ~12 m at walking pace), indexed: coverage asks
    # "is any segment within 30 m of this building / this piece of street", an index probe each,
    # instead of buffering long self-crossing tracks (measured: bench/bench_people.py).
    op.execute("""
CREATE TABLE patrol_segments (
  track_id bigint NOT NULL REFERENCES patrol_tracks (id) ON DELETE CASCADE,
  day date NOT NULL,
  geom geometry(LineString, 4326) NOT NULL
)""")
    op.execute("CREATE INDEX patrol_segments_geom_gix ON patrol_segments USING gist (geom)")
    op.execute("CREATE INDEX patrol_segments_track_ix ON patrol_segments (track_id)")
    op.execute(f"""
CREATE FUNCTION patrol_tracks_segments() RETURNS trigger LANGUAGE plpgsql {DEFINER} AS $$
BEGIN
  INSERT INTO patrol_segments (track_id, day, geom)
  SELECT NEW.id, NEW.day, d.geom FROM ST_DumpSegments(NEW.geom) d WHERE NOT ST_IsEmpty(d.geom);
  RETURN NULL;
END $$""")
    op.execute("""CREATE TRIGGER patrol_tracks_segments AFTER INSERT ON patrol_tracks
                  FOR EACH ROW EXECUTE FUNCTION patrol_tracks_segments()""")

    # --- row-level security, forced on the owner too -------------------------------------------------
    policies = {
        "persons": (PERSON_VISIBLE, PERSON_WRITE),
        "person_groups": (CHILD_VISIBLE, CHILD_WRITE),
        "visits": (CHILD_VISIBLE, CHILD_WRITE),
        "patrol_segments": (SEGMENT_VISIBLE, SEGMENT_WRITE),
        "patrol_tracks": (TRACK_VISIBLE, f"({AREA_ALL} OR community_codes && {AREA_C} OR grid_ids && {AREA_G})"),
    }
    for table in PERSON_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        if table != "patrol_segments":
            op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    # patrol_segments is not FORCEd: any policy on it (even a constant one) keeps PostgreSQL from
    # using the spatial index under the non-leakproof && operator (measured: 1,438 ms against
    # 0.4 ms for one grid's buildings, bench/bench_people.py). The app role has no privilege on it
    # and only the owner's patrol_coverage reads it, limited to the caller's grids.
    for table, (read, write) in policies.items():
        op.execute(f"CREATE POLICY {table}_read ON {table} FOR SELECT TO PUBLIC USING {read}")
        op.execute(f"CREATE POLICY {table}_insert ON {table} FOR INSERT TO PUBLIC WITH CHECK {write}")
        op.execute(f"CREATE POLICY {table}_update ON {table} FOR UPDATE TO PUBLIC USING {write} WITH CHECK {write}")
        op.execute(f"CREATE POLICY {table}_delete ON {table} FOR DELETE TO PUBLIC USING {write}")
    # the log: written by anyone with a verified scope (through the functions), read by admin/system
    op.execute("""CREATE POLICY person_access_log_insert ON person_access_log FOR INSERT TO PUBLIC
                  WITH CHECK ((SELECT wangge_scope()) IS NOT NULL)""")
    op.execute("""CREATE POLICY person_access_log_read ON person_access_log FOR SELECT TO PUBLIC
                  USING ((SELECT wangge_scope_role()) IN ('system', 'admin'))""")
    # the schedule's settings: every signed-in role reads them, the system writes them
    op.execute("""CREATE POLICY visit_intervals_read ON visit_intervals FOR SELECT TO PUBLIC
                  USING ((SELECT wangge_scope()) IS NOT NULL)""")
    op.execute("""CREATE POLICY visit_intervals_write ON visit_intervals FOR ALL TO PUBLIC
                  USING ((SELECT wangge_scope_role()) = 'system') WITH CHECK ((SELECT wangge_scope_role()) = 'system')""")

    # --- the schedule: interval from the groups and risk, next visit from the last ------------------
    op.execute("""
CREATE VIEW person_schedule AS
SELECT p.id AS person_id, iv.days AS interval_days, iv.risk AS risk_grade, iv.groups,
       ((coalesce(p.last_visit_at, p.registered_at) AT TIME ZONE 'Asia/Shanghai')::date + iv.days) AS next_visit
  FROM persons p
  JOIN LATERAL (
    SELECT min(vi.interval_days) AS days, max(pg.risk_grade) AS risk, array_agg(DISTINCT pg.group_code) AS groups
      FROM person_groups pg
      LEFT JOIN visit_intervals vi ON vi.group_code = pg.group_code
                                  AND coalesce(pg.risk_grade, 0) BETWEEN vi.risk_min AND vi.risk_max
     WHERE pg.person_id = p.id) iv ON true
 WHERE p.status = 'resident' AND p.anonymised_at IS NULL""")
    op.execute("REVOKE ALL ON person_schedule FROM PUBLIC")

    # internal: one log row per person; not granted to the app (it logs only what it returns)
    op.execute(f"""
CREATE FUNCTION people_log(p_ids bigint[], p_action text, p_reason text, p_channel text) RETURNS integer
LANGUAGE sql {DEFINER} AS $$
  WITH ins AS (
    INSERT INTO person_access_log (username, role, person_id, action, reason, channel)
    SELECT sc.s->>'u', sc.s->>'r', x, p_action, nullif(btrim(p_reason), ''), coalesce(p_channel, 'app')
      FROM unnest(p_ids) x, (SELECT wangge_scope() AS s) sc RETURNING 1)
  SELECT count(*)::integer FROM ins $$""")
    op.execute("REVOKE ALL ON FUNCTION people_log(bigint[], text, text, text) FROM PUBLIC")

    # --- the register: masked, each person returned logged in the same statement ------------------
    select_people = """
      SELECT p.id, p.community_code::text, p.grid_id, g.code::text, p.building_id, b.address, p.household_no, p.name,
             p.sex::text, p.birth_date, p.id_masked, p.phone_masked, p.separated, p.floating, p.arrival_date, p.status,
             coalesce(s.groups, '{}'), s.risk_grade, s.interval_days, p.last_visit_at, s.next_visit
        FROM persons p
        LEFT JOIN grids g ON g.id = p.grid_id
        LEFT JOIN buildings b ON b.id = p.building_id
        LEFT JOIN person_schedule s ON s.person_id = p.id"""
    op.execute(f"""
CREATE FUNCTION people_list(p_grid bigint DEFAULT NULL, p_community text DEFAULT NULL, p_due_by date DEFAULT NULL,
                            p_channel text DEFAULT 'app', p_reason text DEFAULT NULL, p_person bigint DEFAULT NULL)
RETURNS TABLE ({LIST_COLS})
LANGUAGE sql {DEFINER} AS $$ {OFF_SQL}
  WITH r AS ({select_people}
       WHERE p.anonymised_at IS NULL
         AND (p_grid IS NULL OR p.grid_id = p_grid)
         AND (p_community IS NULL OR p.community_code = p_community)
         AND (p_person IS NULL OR p.id = p_person)
         AND (p_due_by IS NULL OR (p.status = 'resident' AND s.next_visit <= p_due_by))),
  logged AS (
    INSERT INTO person_access_log (username, role, person_id, action, reason, channel)
    SELECT sc.s->>'u', sc.s->>'r', r.id, CASE WHEN p_person IS NULL THEN 'list' ELSE 'view' END,
           nullif(btrim(p_reason), ''), coalesce(p_channel, 'app') FROM r, (SELECT wangge_scope() AS s) sc)
  SELECT * FROM r ORDER BY r.next_visit NULLS LAST, r.id $$""")
    _fn("people_list(bigint, text, date, text, text, bigint)")

    # one person's groups (GB/T 31000 fields) and visits: a 'view' of that person
    op.execute(f"""
CREATE FUNCTION people_detail(p_person bigint, p_channel text DEFAULT 'app', p_reason text DEFAULT NULL)
RETURNS TABLE (kind text, code text, at date, risk_grade smallint, tier text, status text, guardian text,
               outcome text, note text, far boolean, distance_m real, details jsonb)
LANGUAGE sql {DEFINER} AS $$ {OFF_SQL}
  WITH seen AS (SELECT id FROM persons WHERE id = p_person AND anonymised_at IS NULL),
  logged AS (
    INSERT INTO person_access_log (username, role, person_id, action, reason, channel)
    SELECT sc.s->>'u', sc.s->>'r', id, 'view', nullif(btrim(p_reason), ''), coalesce(p_channel, 'app') FROM seen, (SELECT wangge_scope() AS s) sc)
  SELECT 'group', pg.group_code, coalesce(pg.release_date, pg.since), pg.risk_grade, pg.tier, pg.bangjiao_status,
         pg.guardian, NULL, NULL, NULL::boolean, NULL::real, pg.details
    FROM person_groups pg JOIN seen ON seen.id = pg.person_id
  UNION ALL
  SELECT 'visit', v.visitor, (v.visited_at AT TIME ZONE 'Asia/Shanghai')::date, NULL, NULL, NULL, NULL, v.outcome, v.note,
         v.far, v.distance_m, jsonb_build_object('visited_at', v.visited_at)
    FROM visits v JOIN seen ON seen.id = v.person_id
  ORDER BY 1, 3 DESC $$""")
    _fn("people_detail(bigint, text, text)")

    # reveal one record's ID number and phone (ciphertext; the key is the app's): a reason is required
    op.execute(f"""
CREATE FUNCTION people_reveal(p_person bigint, p_reason text, p_channel text DEFAULT 'app')
RETURNS TABLE (id bigint, id_cipher bytea, phone_cipher bytea)
LANGUAGE plpgsql {DEFINER} AS $$
#variable_conflict use_column
BEGIN
  {OFF_PL}
  IF p_reason IS NULL OR length(btrim(p_reason)) < 2 THEN
    RAISE EXCEPTION 'a reason is required to reveal a record' USING ERRCODE = 'check_violation';
  END IF;
  IF coalesce(wangge_scope_role(), '') NOT IN ('system', 'secretary', 'worker') THEN RETURN; END IF;
  RETURN QUERY
  WITH r AS (SELECT p.id, p.id_cipher, p.phone_cipher FROM persons p WHERE p.id = p_person AND p.anonymised_at IS NULL),
  logged AS (
    INSERT INTO person_access_log (username, role, person_id, action, reason, channel)
    SELECT sc.s->>'u', sc.s->>'r', r.id, 'reveal', btrim(p_reason), coalesce(p_channel, 'app') FROM r, (SELECT wangge_scope() AS s) sc)
  SELECT * FROM r;
END $$""")
    _fn("people_reveal(bigint, text, text)")

    # exports: only a role that may export (a secretary for their community; the system)
    op.execute(f"""
CREATE FUNCTION people_export(p_community text DEFAULT NULL, p_reason text DEFAULT NULL, p_channel text DEFAULT 'app')
RETURNS TABLE ({LIST_COLS})
LANGUAGE plpgsql {DEFINER} AS $$
BEGIN
  {OFF_PL}
  IF coalesce(wangge_scope_role(), '') NOT IN ('system', 'secretary') THEN
    RAISE EXCEPTION 'this role may not export person data' USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF p_reason IS NULL OR length(btrim(p_reason)) < 2 THEN
    RAISE EXCEPTION 'a reason is required to export person data' USING ERRCODE = 'check_violation';
  END IF;
  RETURN QUERY
  WITH r AS ({select_people}
       WHERE p.anonymised_at IS NULL AND (p_community IS NULL OR p.community_code = p_community)),
  logged AS (
    INSERT INTO person_access_log (username, role, person_id, action, reason, channel)
    SELECT sc.s->>'u', sc.s->>'r', r.id, 'export', btrim(p_reason), coalesce(p_channel, 'app') FROM r, (SELECT wangge_scope() AS s) sc)
  SELECT * FROM r ORDER BY 4, 7, 1;
END $$""")
    _fn("people_export(text, text, text)")

    # a visit: the person must be one the caller sees; the visitor is the verified user
    op.execute(f"""
CREATE FUNCTION visit_record(p_person bigint, p_at timestamptz, p_outcome text, p_note text,
                             p_lon float8, p_lat float8, p_far_m float8, p_channel text DEFAULT 'app')
RETURNS TABLE (visit_id bigint, distance_m real, far boolean)
LANGUAGE plpgsql {DEFINER} AS $$
#variable_conflict use_column
DECLARE
  bgeom geometry; pt geometry; d real; vid bigint; found_id bigint;
BEGIN
  {OFF_PL}
  IF coalesce(wangge_scope_role(), '') NOT IN ('system', 'secretary', 'worker') THEN
    RAISE EXCEPTION 'this role may not record visits' USING ERRCODE = 'insufficient_privilege';
  END IF;
  SELECT p.id, b.geom INTO found_id, bgeom FROM persons p LEFT JOIN buildings b ON b.id = p.building_id
   WHERE p.id = p_person AND p.anonymised_at IS NULL AND p.status = 'resident';
  IF found_id IS NULL THEN
    RAISE EXCEPTION 'no such person in your area' USING ERRCODE = 'no_data_found';
  END IF;
  IF p_at > now() + interval '10 minutes' THEN
    RAISE EXCEPTION 'a visit cannot be in the future' USING ERRCODE = 'check_violation';
  END IF;
  IF p_lon IS NOT NULL AND p_lat IS NOT NULL THEN
    pt := ST_SetSRID(ST_MakePoint(p_lon, p_lat), 4326);
    IF bgeom IS NOT NULL THEN d := ST_Distance(pt::geography, bgeom::geography); END IF;
  END IF;
  INSERT INTO visits (person_id, visited_at, visitor, outcome, note, geom, distance_m, far)
  VALUES (p_person, p_at, wangge_scope()->>'u', p_outcome, nullif(btrim(p_note), ''), pt, d, coalesce(d > p_far_m, false))
  RETURNING id INTO vid;
  IF p_outcome = 'met' THEN
    UPDATE persons SET last_visit_at = greatest(last_visit_at, p_at) WHERE id = p_person;
    UPDATE persons SET last_visit_at = p_at WHERE id = p_person AND last_visit_at IS NULL;
  END IF;
  PERFORM people_log(ARRAY[p_person], 'visit', NULL, p_channel);
  RETURN QUERY SELECT vid, d, coalesce(d > p_far_m, false);
END $$""")
    _fn("visit_record(bigint, timestamptz, text, text, double precision, double precision, double precision, text)")

    # --- counts only: leaders, planners (and everyone else, for their area) ------------------------
    op.execute(f"""
CREATE FUNCTION people_counts(p_level text, p_today date DEFAULT NULL)
RETURNS TABLE (level text, code text, persons bigint, scheduled bigint, due_today bigint, overdue bigint,
               elderly_65 bigint, floating bigint, separated bigint, groups jsonb)
LANGUAGE plpgsql {DEFINER} AS $$
#variable_conflict use_column
DECLARE
  r text := wangge_scope_role(); coms bpchar[] := wangge_scope_communities(); grs bigint[] := wangge_scope_grids();
  today date := coalesce(p_today, (now() AT TIME ZONE 'Asia/Shanghai')::date);
BEGIN
  IF r IS NULL OR p_level NOT IN ('grid', 'community', 'subdistrict') THEN RETURN; END IF;
  {ON_PL}
  RETURN QUERY
  WITH p AS (
    SELECT p.*, CASE p_level WHEN 'grid' THEN g.code::text WHEN 'community' THEN p.community_code::text
                             ELSE left(p.community_code, 9) END AS unit
      FROM persons p LEFT JOIN grids g ON g.id = p.grid_id
     WHERE p.anonymised_at IS NULL AND p.status = 'resident' AND (p_level <> 'grid' OR g.id IS NOT NULL)
       AND (r IN ('system', 'admin')
            OR (r IN ('leader', 'planner') AND (cardinality(coms) = 0 OR p.community_code = ANY(coms)))
            OR (r = 'secretary' AND p.community_code = ANY(coms))
            OR (r = 'worker' AND p.grid_id = ANY(grs)))),
  -- one pass, no self-join of p (a nested loop over two CTE scans took 62 s on 100,000 persons)
  gj AS (SELECT unit, jsonb_object_agg(group_code, n) AS groups
           FROM (SELECT p.unit, pg.group_code, count(*) AS n FROM p JOIN person_groups pg ON pg.person_id = p.id GROUP BY 1, 2) gc
          GROUP BY unit),
  iv AS (SELECT pg.person_id, min(vi.interval_days) AS days FROM person_groups pg
           JOIN visit_intervals vi ON vi.group_code = pg.group_code AND coalesce(pg.risk_grade, 0) BETWEEN vi.risk_min AND vi.risk_max
          GROUP BY 1),
  x AS (SELECT p.unit, p.birth_date, p.floating, p.separated, iv.days,
               (coalesce(p.last_visit_at, p.registered_at) AT TIME ZONE 'Asia/Shanghai')::date + iv.days AS next_visit
          FROM p LEFT JOIN iv ON iv.person_id = p.id),
  agg AS (
    SELECT x.unit, count(*)::bigint AS persons, count(x.days)::bigint AS scheduled,
           count(*) FILTER (WHERE x.next_visit = today)::bigint AS due_today,
           count(*) FILTER (WHERE x.next_visit < today)::bigint AS overdue,
           count(*) FILTER (WHERE x.birth_date <= today - interval '65 years')::bigint AS e65,
           count(*) FILTER (WHERE x.floating)::bigint AS fl, count(*) FILTER (WHERE x.separated)::bigint AS sep
      FROM x GROUP BY x.unit)
  SELECT p_level, agg.unit, agg.persons, agg.scheduled, agg.due_today, agg.overdue, agg.e65, agg.fl, agg.sep,
         coalesce(gj.groups, '{{}}')
    FROM agg LEFT JOIN gj ON gj.unit = agg.unit
   ORDER BY agg.unit;
{OFF_PL}
END $$""")
    _fn("people_counts(text, date)")

    # --- who looked at this person: the administrator (and the system) ----------------------------
    op.execute(f"""
CREATE FUNCTION people_access(p_person bigint DEFAULT NULL, p_limit integer DEFAULT 1000)
RETURNS TABLE (id bigint, at timestamptz, username text, role text, person_id bigint, action text, reason text, channel text)
LANGUAGE sql {DEFINER} AS $$ {OFF_SQL}
  SELECT l.id, l.at, l.username, l.role, l.person_id, l.action, l.reason, l.channel
    FROM person_access_log l
   WHERE coalesce(wangge_scope_role(), '') IN ('system', 'admin') AND (p_person IS NULL OR l.person_id = p_person)
   ORDER BY l.at DESC, l.id DESC LIMIT greatest(p_limit, 0) $$""")
    _fn("people_access(bigint, integer)")

    # --- patrols: coverage per grid and period, aggregates only ------------------------------------
    op.execute(f"""
CREATE FUNCTION patrol_coverage(p_from date, p_to date, p_distance_m float8)
RETURNS TABLE (grid_id bigint, grid_code text, community_code text, households bigint, households_covered bigint,
               street_m float8, street_covered_m float8, tracks bigint)
LANGUAGE plpgsql {DEFINER} AS $$
#variable_conflict use_column
DECLARE
  r text := wangge_scope_role(); coms bpchar[] := wangge_scope_communities(); grs bigint[] := wangge_scope_grids();
BEGIN
  IF r IS NULL THEN RETURN; END IF;
  {ON_PL}
  RETURN QUERY
  WITH g AS (
    SELECT g.id, g.code::text AS code, g.community_code::text AS com, g.geom FROM grids g
     WHERE g.valid_to IS NULL
       AND (r IN ('system', 'admin')
            OR (r IN ('leader', 'planner') AND (cardinality(coms) = 0 OR g.community_code = ANY(coms)))
            OR (r = 'secretary' AND g.community_code = ANY(coms))
            OR (r = 'worker' AND g.id = ANY(grs)))),
  -- degrees that surely exceed p_distance_m at these latitudes (the exact test is geodesic)
  hh AS (
    SELECT b.grid_id, sum(b.households)::bigint AS total,
           sum(b.households) FILTER (WHERE EXISTS (
             SELECT 1 FROM patrol_segments s
              WHERE s.day BETWEEN p_from AND p_to
                AND s.geom && ST_Expand(b.geom, p_distance_m / 111320.0 / cos(radians(abs(ST_YMax(b.geom)) + 0.01)) + 1e-7,
                                        p_distance_m / 110540.0 + 1e-7)
                AND ST_DWithin(s.geom::geography, b.geom::geography, p_distance_m)))::bigint AS covered
      FROM buildings b JOIN g ON g.id = b.grid_id GROUP BY b.grid_id),
  -- streets: the grid's walkable roads cut into pieces of at most 10 m; a piece is covered when a
  -- track comes within the distance of its middle
  pieces AS (
    SELECT g.id, ST_LineInterpolatePoint(d.geom, 0.5) AS mid, ST_Length(d.geom::geography) AS len
      FROM g JOIN roads r ON r.walkable AND r.geom && g.geom AND ST_Intersects(r.geom, g.geom)
      CROSS JOIN LATERAL ST_DumpSegments(ST_Segmentize(ST_CollectionExtract(ST_Intersection(r.geom, g.geom), 2)::geography, 10)::geometry) d
     WHERE ST_GeometryType(d.geom) = 'ST_LineString'),
  rc AS (
    SELECT pieces.id, sum(pieces.len) AS len,
           coalesce(sum(pieces.len) FILTER (WHERE EXISTS (
             SELECT 1 FROM patrol_segments s
              WHERE s.day BETWEEN p_from AND p_to
                AND s.geom && ST_Expand(pieces.mid, p_distance_m / 111320.0 / cos(radians(abs(ST_Y(pieces.mid)) + 0.01)) + 1e-7,
                                        p_distance_m / 110540.0 + 1e-7)
                AND ST_DWithin(s.geom::geography, pieces.mid::geography, p_distance_m))), 0) AS cov
      FROM pieces GROUP BY pieces.id)
  SELECT g.id, g.code, g.com, coalesce(hh.total, 0), coalesce(hh.covered, 0), coalesce(rc.len, 0)::float8,
         coalesce(rc.cov, 0)::float8,
         (SELECT count(*) FROM patrol_tracks t WHERE t.day BETWEEN p_from AND p_to AND g.id = ANY(t.grid_ids))::bigint
    FROM g LEFT JOIN hh ON hh.grid_id = g.id LEFT JOIN rc ON rc.id = g.id
   ORDER BY g.code;
{OFF_PL}
END $$""")
    _fn("patrol_coverage(date, date, double precision)")
    op.execute(f"""
CREATE FUNCTION patrol_hours(p_from date, p_to date)
RETURNS TABLE (cadre_no text, day date, hours float8, tracks bigint)
LANGUAGE plpgsql {DEFINER} AS $$
#variable_conflict use_column
DECLARE
  r text := wangge_scope_role(); coms bpchar[] := wangge_scope_communities(); grs bigint[] := wangge_scope_grids();
BEGIN
  IF r IS NULL THEN RETURN; END IF;
  {ON_PL}
  RETURN QUERY
  SELECT t.cadre_no, t.day, (sum(t.active_s) / 3600.0)::float8, count(*)::bigint FROM patrol_tracks t
   WHERE t.day BETWEEN p_from AND p_to
     AND (r IN ('system', 'admin')
          OR (r IN ('leader', 'planner') AND (cardinality(coms) = 0 OR t.community_codes && coms))
          OR (r = 'secretary' AND t.community_codes && coms)
          OR (r = 'worker' AND t.grid_ids && grs))
   GROUP BY 1, 2 ORDER BY 1, 2;
{OFF_PL}
END $$""")
    _fn("patrol_hours(date, date)")

    # --- grants: the app gets functions, the settings table and the tracks of its area --------------
    _grant_app("GRANT SELECT ON visit_intervals TO %I")
    _grant_app("GRANT SELECT, INSERT ON patrol_tracks TO %I")
    _grant_app("GRANT USAGE ON SEQUENCE patrol_tracks_id_seq TO %I")
    for table in ("persons", "person_groups", "visits", "person_access_log", "person_schedule"):
        _grant_app(f"REVOKE ALL ON {table} FROM %I")


def downgrade() -> None:
    for fn in ("patrol_hours(date, date)", "patrol_coverage(date, date, double precision)", "people_access(bigint, integer)",
               "people_counts(text, date)",
               "visit_record(bigint, timestamptz, text, text, double precision, double precision, double precision, text)",
               "people_export(text, text, text)", "people_reveal(bigint, text, text)", "people_detail(bigint, text, text)",
               "people_list(bigint, text, date, text, text, bigint)", "people_log(bigint[], text, text, text)"):
        op.execute(f"DROP FUNCTION IF EXISTS {fn}")
    op.execute("DROP VIEW IF EXISTS person_schedule")
    op.execute("DROP TABLE IF EXISTS patrol_segments CASCADE")
    op.execute("DROP FUNCTION IF EXISTS patrol_tracks_segments() CASCADE")
    for table in ("patrol_tracks", "person_access_log", "visit_intervals", "visits", "person_groups", "persons"):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    op.execute("DROP FUNCTION IF EXISTS person_access_log_frozen()")
    op.execute("DROP SEQUENCE IF EXISTS person_ids")
    op.execute("DROP FUNCTION IF EXISTS people_area()")
