"""Patrol coverage at a city's size (issue 18): the leader's people screen did not open.

``patrol_coverage`` (0023) cut every walkable road of every grid of the caller into 10-m pieces
on each call, whether or not any track came near them, and summed the households of every
building. For a city's leader (50,000 grids, 500,000 road edges, 1,000,000 buildings) that did
not finish in 14 minutes -- with no track at all in the period.

Now the work follows the tracks:

- ``households`` comes from ``building_stats`` (0024: the buildings' totals per grid, kept by
  triggers), the same sum over the same rows;
- only the grids a track of the period comes within the distance of (the period's segments,
  found on their own index) are cut into pieces and tested building by building: every other
  grid has nothing covered, by definition;
- ``street_m`` of a grid without a track is its walkable road length, measured once and kept in
  ``grid_streets`` until a road or a grid outline changes (statement triggers on ``roads`` and on
  the outline and validity of ``grids`` bump one counter; an assignment does not). The first
  call after such a change measures the caller's grids in one pass over the roads (about a minute
  for a whole city), later calls read the kept lengths. A grid with a track still gets the sum of
  its pieces, as before, so its covered metres never exceed its total.

On Citus (``wangge db distribute`` drops the counter's triggers with 0024's) nothing is kept:
every call measures, as before, but still only cuts the patrolled grids into pieces.

The figures returned are unchanged (tests/test_visits_patrols.py compares them with geopandas).

Revision ID: 0030
Revises: 0028
Create Date: 2026-12-07
"""
from alembic import op
from sqlalchemy import text

revision = "0030"
down_revision = "0028"
branch_labels = None
depends_on = None

DEFINER = "SECURITY DEFINER SET search_path = public, pg_temp"
ON_PL = "PERFORM set_config('wangge.people_aggregate', 'on', true);"
OFF_PL = "PERFORM set_config('wangge.people_aggregate', 'off', true);"

# a walkable road cut into pieces of at most 10 m inside a grid ``gi`` (0019's measure)
PIECES = """
      FROM roads r JOIN {grids} gi ON r.walkable AND r.geom && gi.geom AND ST_Intersects(r.geom, gi.geom)
      CROSS JOIN LATERAL ST_DumpSegments(ST_Segmentize(ST_CollectionExtract(ST_Intersection(r.geom, gi.geom), 2)::geography, 10)::geometry) d
     WHERE ST_GeometryType(d.geom) = 'ST_LineString'"""
# degrees that surely exceed p_distance_m at these latitudes (the exact test is geodesic)
NEAR = """s.day BETWEEN p_from AND p_to
                AND s.geom && ST_Expand({g}, p_distance_m / 111320.0 / cos(radians(abs(ST_YMax({g})) + 0.01)) + 1e-7,
                                        p_distance_m / 110540.0 + 1e-7)
                AND ST_DWithin(s.geom::geography, {g}::geography, p_distance_m)"""

COVERAGE = f"""
CREATE OR REPLACE FUNCTION patrol_coverage(p_from date, p_to date, p_distance_m float8)
RETURNS TABLE (grid_id bigint, grid_code text, community_code text, households bigint, households_covered bigint,
               street_m float8, street_covered_m float8, tracks bigint)
LANGUAGE plpgsql {DEFINER} AS $$
#variable_conflict use_column
DECLARE
  r text := wangge_scope_role(); coms bpchar[] := wangge_scope_communities(); grs bigint[] := wangge_scope_grids();
  ver bigint;
BEGIN
  IF r IS NULL THEN RETURN; END IF;
  {ON_PL}
  -- the caller's grids, indexed, outside row-level security (0023)
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
  -- the grids a track of the period comes within the distance of: only these can have anything covered
  IF to_regclass('pg_temp.patrol_cov_hit') IS NOT NULL THEN DROP TABLE pg_temp.patrol_cov_hit; END IF;
  CREATE TEMP TABLE patrol_cov_hit ON COMMIT DROP AS
    SELECT gi.id, gi.geom FROM pg_temp.patrol_cov_grids gi
     WHERE EXISTS (SELECT 1 FROM patrol_segments s WHERE {NEAR.format(g='gi.geom')});
  CREATE INDEX ON pg_temp.patrol_cov_hit USING gist (geom);
  ANALYZE pg_temp.patrol_cov_hit;
  -- street lengths kept since the last change of a road or a grid outline (none kept on Citus)
  IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'roads'::regclass AND tgname = 'roads_grid_streets_bump') THEN
    SELECT v INTO ver FROM grid_streets_version;
  END IF;
  IF to_regclass('pg_temp.patrol_cov_len') IS NOT NULL THEN DROP TABLE pg_temp.patrol_cov_len; END IF;
  CREATE TEMP TABLE patrol_cov_len ON COMMIT DROP AS
    SELECT gi.id, gi.geom FROM pg_temp.patrol_cov_grids gi
     WHERE NOT EXISTS (SELECT 1 FROM pg_temp.patrol_cov_hit h WHERE h.id = gi.id)
       AND (ver IS NULL OR NOT EXISTS (SELECT 1 FROM grid_streets k WHERE k.grid_id = gi.id AND k.version = ver));
  IF to_regclass('pg_temp.patrol_cov_measured') IS NOT NULL THEN DROP TABLE pg_temp.patrol_cov_measured; END IF;
  CREATE TEMP TABLE patrol_cov_measured (id bigint PRIMARY KEY, len float8 NOT NULL) ON COMMIT DROP;
  IF EXISTS (SELECT 1 FROM pg_temp.patrol_cov_len) THEN
    CREATE INDEX ON pg_temp.patrol_cov_len USING gist (geom);
    ANALYZE pg_temp.patrol_cov_len;
    INSERT INTO pg_temp.patrol_cov_measured
      SELECT l.id, coalesce(m.len, 0)::float8 FROM pg_temp.patrol_cov_len l
      LEFT JOIN (SELECT gi.id, sum(ST_Length(ST_CollectionExtract(ST_Intersection(r.geom, gi.geom), 2)::geography)) AS len
                   FROM roads r JOIN pg_temp.patrol_cov_len gi ON r.walkable AND r.geom && gi.geom AND ST_Intersects(r.geom, gi.geom)
                  GROUP BY gi.id) m ON m.id = l.id;
    IF ver IS NOT NULL THEN
      INSERT INTO grid_streets AS k (grid_id, street_m, version) SELECT id, len, ver FROM pg_temp.patrol_cov_measured
      ON CONFLICT (grid_id) DO UPDATE SET street_m = EXCLUDED.street_m, version = EXCLUDED.version;
      -- at once: the next call reads these rows by id, and a table the planner believes empty is scanned
      -- once per grid (a city's second call took 203 s until autovacuum analysed it, then 1.6 s)
      ANALYZE grid_streets;
    END IF;
  END IF;
  RETURN QUERY
  WITH g AS (SELECT * FROM pg_temp.patrol_cov_grids),
  total AS (SELECT s.grid_id, sum(s.households)::bigint AS n FROM building_stats s
             WHERE s.grid_id IN (SELECT id FROM g) GROUP BY 1),
  covered AS (
    SELECT b.grid_id, sum(b.households) FILTER (WHERE EXISTS (
             SELECT 1 FROM patrol_segments s WHERE {NEAR.format(g='b.geom')}))::bigint AS n
      FROM buildings b JOIN pg_temp.patrol_cov_hit h ON h.id = b.grid_id GROUP BY b.grid_id),
  pieces AS (
    SELECT gi.id, ST_LineInterpolatePoint(d.geom, 0.5) AS mid, ST_Length(d.geom::geography) AS len
    {PIECES.format(grids='pg_temp.patrol_cov_hit')}),
  rc AS (
    SELECT pieces.id, sum(pieces.len) AS len,
           coalesce(sum(pieces.len) FILTER (WHERE EXISTS (
             SELECT 1 FROM patrol_segments s WHERE {NEAR.format(g='pieces.mid').replace('ST_YMax(pieces.mid)', 'ST_Y(pieces.mid)')})), 0) AS cov
      FROM pieces GROUP BY pieces.id),
  kept AS (
    SELECT m.id, m.len FROM pg_temp.patrol_cov_measured m WHERE ver IS NULL  -- (else stored above, read below)
    UNION ALL
    SELECT k.grid_id, k.street_m FROM grid_streets k
     WHERE ver IS NOT NULL AND k.version = ver AND k.grid_id IN (SELECT id FROM g)
       AND k.grid_id NOT IN (SELECT id FROM pg_temp.patrol_cov_hit)),
  tc AS (SELECT x.gid, count(*)::bigint AS n FROM patrol_tracks t CROSS JOIN LATERAL unnest(t.grid_ids) x(gid)
          WHERE t.day BETWEEN p_from AND p_to GROUP BY 1)
  SELECT g.id, g.code, g.com, coalesce(total.n, 0), coalesce(covered.n, 0),
         coalesce(rc.len, kept.len, 0)::float8, coalesce(rc.cov, 0)::float8, coalesce(tc.n, 0)::bigint
    FROM g LEFT JOIN total ON total.grid_id = g.id LEFT JOIN covered ON covered.grid_id = g.id
    LEFT JOIN rc ON rc.id = g.id LEFT JOIN kept ON kept.id = g.id LEFT JOIN tc ON tc.gid = g.id
   ORDER BY g.code;
  DROP TABLE pg_temp.patrol_cov_grids;
  DROP TABLE pg_temp.patrol_cov_hit;
  DROP TABLE pg_temp.patrol_cov_len;
  DROP TABLE pg_temp.patrol_cov_measured;
  {OFF_PL}
END $$"""


def _owner() -> str:
    return op.get_bind().execute(text("SELECT current_user")).scalar_one()


def upgrade() -> None:
    own = f"(current_user = '{_owner()}')"
    op.execute("""CREATE TABLE grid_streets (
      grid_id bigint PRIMARY KEY,
      street_m float8 NOT NULL,
      version bigint NOT NULL)""")
    op.execute("""CREATE TABLE grid_streets_version (
      one boolean PRIMARY KEY DEFAULT true CHECK (one),
      v bigint NOT NULL DEFAULT 1)""")
    op.execute("INSERT INTO grid_streets_version DEFAULT VALUES")
    for table in ("grid_streets", "grid_streets_version"):
        # the owner's only: written and read inside patrol_coverage() and the triggers; the app role has no grant
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {table}_owner ON {table} FOR ALL TO PUBLIC USING ({own}) WITH CHECK ({own})")
        op.execute(f"REVOKE ALL ON {table} FROM PUBLIC")
    op.execute(f"""
CREATE FUNCTION grid_streets_bump() RETURNS trigger LANGUAGE plpgsql {DEFINER} AS $$
BEGIN
  UPDATE grid_streets_version SET v = v + 1;
  RETURN NULL;
END $$""")
    op.execute("REVOKE ALL ON FUNCTION grid_streets_bump() FROM PUBLIC")
    op.execute("""CREATE TRIGGER roads_grid_streets_bump AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON roads
      FOR EACH STATEMENT EXECUTE FUNCTION grid_streets_bump()""")
    # an assignment bumps grids.staff_version: only the outline and the validity change street lengths
    op.execute("""CREATE TRIGGER grids_grid_streets_bump AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE OF geom, valid_to ON grids
      FOR EACH STATEMENT EXECUTE FUNCTION grid_streets_bump()""")
    op.execute(COVERAGE)


def downgrade() -> None:
    import importlib.util
    from pathlib import Path

    op.execute("DROP TRIGGER IF EXISTS roads_grid_streets_bump ON roads")
    op.execute("DROP TRIGGER IF EXISTS grids_grid_streets_bump ON grids")
    op.execute("DROP FUNCTION IF EXISTS grid_streets_bump()")
    op.execute("DROP TABLE IF EXISTS grid_streets")
    op.execute("DROP TABLE IF EXISTS grid_streets_version")
    # 0023's function again (its upgrade also restates people_list, unchanged since)
    spec = importlib.util.spec_from_file_location("m0023", Path(__file__).with_name("0023_patrol_coverage_scales.py"))
    m0023 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m0023)
    m0023.upgrade()
