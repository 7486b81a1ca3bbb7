"""Patrol coverage and a worker's list that scale to a city (issue 17 benchmark): the streets'
part paired every road with every grid; ``people_list`` could not use the grid's index.

``patrol_coverage`` (0019) cut each grid's walkable roads into 10-m pieces with
``roads JOIN grids ON r.geom && g.geom``. Both tables have FORCE row-level security, and
PostgreSQL does not use an index under a policy for an operator that is not leakproof
(PostGIS's ``&&``; the same reason as 0020's ``x_3857``): the plan was a nested loop of all
roads × all grids (EXPLAIN: 8,150 roads × 1,990 grids at a tenth of the issue's city, 21.7 s
of the 25.7 s the function took; at 20,000 grids and ~82,000 roads it grows a hundredfold).

Now the caller's grids are first copied into a temporary table (``ON COMMIT DROP``, dropped
again at the end) with a GiST index: a temporary table has no policy, so each road finds its
grids on that index, one pass over the roads (3.9 s for the same pieces). Which grids are
copied is the same area rule as before (the caller's scope), and roads are still read under
their policy. The per-grid track count is one pass over the period's tracks instead of a
subquery per grid. The figures returned are unchanged (tests/test_visits_patrols.py compares
them with a geopandas count; bench/bench_people.py before/after in bench/README.md).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06
"""
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

DEFINER = "SECURITY DEFINER SET search_path = public, pg_temp"
ON_PL = "PERFORM set_config('wangge.people_aggregate', 'on', true);"
OFF_PL = "PERFORM set_config('wangge.people_aggregate', 'off', true);"


# --- people_list: planned with the caller's values ---------------------------------------------------
# 0019 wrote it in LANGUAGE sql: PostgreSQL 15 plans such a function's statement once per call with
# its arguments as parameters, so ``(p_grid IS NULL OR p.grid_id = p_grid)`` could use no index and
# a worker's list of 79 persons scanned all 1,000,000 (260 ms against 5 ms for the same SELECT,
# bench/bench_people.py --full). In plpgsql with ``plan_cache_mode = force_custom_plan`` the
# statement is planned with the actual values: the grid's index. Same columns, same log rows.
LIST_COLS = """id bigint, community_code text, grid_id bigint, grid_code text, building_id bigint, address text,
               household_no text, name text, sex text, birth_date date, id_masked text, phone_masked text,
               separated boolean, floating boolean, arrival_date date, status text, groups text[], risk_grade smallint,
               interval_days integer, last_visit_at timestamptz, next_visit date"""
SELECT_PEOPLE = """
      SELECT p.id, p.community_code::text, p.grid_id, g.code::text, p.building_id, b.address, p.household_no, p.name,
             p.sex::text, p.birth_date, p.id_masked, p.phone_masked, p.separated, p.floating, p.arrival_date, p.status,
             coalesce(s.groups, '{}'), s.risk_grade, s.interval_days, p.last_visit_at, s.next_visit
        FROM persons p
        LEFT JOIN grids g ON g.id = p.grid_id
        LEFT JOIN buildings b ON b.id = p.building_id
        LEFT JOIN person_schedule s ON s.person_id = p.id"""
LIST_BODY = f"""
  WITH r AS ({SELECT_PEOPLE}
       WHERE p.anonymised_at IS NULL
         AND (p_grid IS NULL OR p.grid_id = p_grid)
         AND (p_community IS NULL OR p.community_code = p_community)
         AND (p_person IS NULL OR p.id = p_person)
         AND (p_due_by IS NULL OR (p.status = 'resident' AND s.next_visit <= p_due_by))),
  logged AS (
    INSERT INTO person_access_log (username, role, person_id, action, reason, channel)
    SELECT sc.s->>'u', sc.s->>'r', r.id, CASE WHEN p_person IS NULL THEN 'list' ELSE 'view' END,
           nullif(btrim(p_reason), ''), coalesce(p_channel, 'app') FROM r, (SELECT wangge_scope() AS s) sc)
  SELECT * FROM r ORDER BY r.next_visit NULLS LAST, r.id"""
LIST_HEAD = f"""CREATE OR REPLACE FUNCTION people_list(p_grid bigint DEFAULT NULL, p_community text DEFAULT NULL,
                            p_due_by date DEFAULT NULL, p_channel text DEFAULT 'app', p_reason text DEFAULT NULL,
                            p_person bigint DEFAULT NULL)
RETURNS TABLE ({LIST_COLS})"""
LIST_NEW = f"""{LIST_HEAD}
LANGUAGE plpgsql {DEFINER} SET plan_cache_mode = force_custom_plan AS $$
#variable_conflict use_column
BEGIN
  {OFF_PL}
  RETURN QUERY {LIST_BODY};
END $$"""
LIST_OLD = f"""{LIST_HEAD}
LANGUAGE sql {DEFINER} AS $$ SELECT set_config('wangge.people_aggregate', 'off', true);
{LIST_BODY} $$"""


def upgrade() -> None:
    op.execute(LIST_NEW)
    op.execute(f"""
CREATE OR REPLACE FUNCTION patrol_coverage(p_from date, p_to date, p_distance_m float8)
RETURNS TABLE (grid_id bigint, grid_code text, community_code text, households bigint, households_covered bigint,
               street_m float8, street_covered_m float8, tracks bigint)
LANGUAGE plpgsql {DEFINER} AS $$
#variable_conflict use_column
DECLARE
  r text := wangge_scope_role(); coms bpchar[] := wangge_scope_communities(); grs bigint[] := wangge_scope_grids();
BEGIN
  IF r IS NULL THEN RETURN; END IF;
  {ON_PL}
  -- the caller's grids, indexed, outside row-level security (see the module's docstring)
  IF to_regclass('pg_temp.patrol_cov_grids') IS NOT NULL THEN DROP TABLE pg_temp.patrol_cov_grids; END IF;
  CREATE TEMP TABLE patrol_cov_grids ON COMMIT DROP AS
    SELECT g.id, g.code::text AS code, g.community_code::text AS com, g.geom FROM grids g
     WHERE g.valid_to IS NULL
       AND (r IN ('system', 'admin')
            OR (r IN ('leader', 'planner') AND (cardinality(coms) = 0 OR g.community_code = ANY(coms)))
            OR (r = 'secretary' AND g.community_code = ANY(coms))
            OR (r = 'worker' AND g.id = ANY(grs)));
  CREATE INDEX ON pg_temp.patrol_cov_grids USING gist (geom);
  ANALYZE pg_temp.patrol_cov_grids;
  RETURN QUERY
  WITH g AS (SELECT * FROM pg_temp.patrol_cov_grids),
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
  -- track comes within the distance of its middle. Each road finds its grids on the temporary
  -- table's index (one pass over the roads), not every grid every road.
  pieces AS (
    SELECT gi.id, ST_LineInterpolatePoint(d.geom, 0.5) AS mid, ST_Length(d.geom::geography) AS len
      FROM roads r JOIN pg_temp.patrol_cov_grids gi ON r.walkable AND r.geom && gi.geom AND ST_Intersects(r.geom, gi.geom)
      CROSS JOIN LATERAL ST_DumpSegments(ST_Segmentize(ST_CollectionExtract(ST_Intersection(r.geom, gi.geom), 2)::geography, 10)::geometry) d
     WHERE ST_GeometryType(d.geom) = 'ST_LineString'),
  rc AS (
    SELECT pieces.id, sum(pieces.len) AS len,
           coalesce(sum(pieces.len) FILTER (WHERE EXISTS (
             SELECT 1 FROM patrol_segments s
              WHERE s.day BETWEEN p_from AND p_to
                AND s.geom && ST_Expand(pieces.mid, p_distance_m / 111320.0 / cos(radians(abs(ST_Y(pieces.mid)) + 0.01)) + 1e-7,
                                        p_distance_m / 110540.0 + 1e-7)
                AND ST_DWithin(s.geom::geography, pieces.mid::geography, p_distance_m))), 0) AS cov
      FROM pieces GROUP BY pieces.id),
  tc AS (SELECT x.gid, count(*)::bigint AS n FROM patrol_tracks t CROSS JOIN LATERAL unnest(t.grid_ids) x(gid)
          WHERE t.day BETWEEN p_from AND p_to GROUP BY 1)
  SELECT g.id, g.code, g.com, coalesce(hh.total, 0), coalesce(hh.covered, 0), coalesce(rc.len, 0)::float8,
         coalesce(rc.cov, 0)::float8, coalesce(tc.n, 0)::bigint
    FROM g LEFT JOIN hh ON hh.grid_id = g.id LEFT JOIN rc ON rc.id = g.id LEFT JOIN tc ON tc.gid = g.id
   ORDER BY g.code;
  DROP TABLE pg_temp.patrol_cov_grids;
{OFF_PL}
END $$""")


def downgrade() -> None:
    op.execute(LIST_OLD)
    op.execute(f"""
CREATE OR REPLACE FUNCTION patrol_coverage(p_from date, p_to date, p_distance_m float8)
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
