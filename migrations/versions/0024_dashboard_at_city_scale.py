"""The leader's dashboard at a city's size (issue 18): building totals kept on write, and
per-area versions for the tile cache.

``building_stats``: one row per (community, grid) pair that holds buildings, with their count,
households, residents and how many carry estimated households. Why: the overview's figures,
the community and grid tables and every grid tile summed the buildings table on each read,
which grows with the city (0.3-1 s at 100,000 buildings, ten times that at 1,000,000); these
rows grow with the grids. Statement-level triggers with transition tables keep them exact
on every INSERT, UPDATE and DELETE of ``buildings`` (an import of a million rows is one
aggregate over its rows, not a million trigger calls), TRUNCATE empties them. The read
policy is the buildings' own (``wangge_area('buildings', false)``), so a sum over the rows a
scope may read is the sum over the buildings it may read, as before: a worker their grids,
a secretary their community. Nobody writes them but the owner's trigger.

``tile_epochs``: a version per (tile layer, z14 cell) bumped by the same kind of triggers on
the rows a tile of that layer shows: buildings (their footprint), grids (their outline; and
their colour, which follows their buildings' households and their assignments), communities,
roads. The tile cache (``webapp/tiles.py``) keys a tile by the newest version of the cells it
covers, so an edit forgets exactly the tiles around it, not every tile of the city (as the
newest audit row did). A cell is the feature's box grown by a 64th of a cell (a tile's
64-pixel buffer at z14). Versions are not secret: every signed-in scope reads them.

``cx_3857``/``cy_3857``/``r_3857`` on buildings, roads and grids (the centre of each feature's
EPSG:3857 box and half its larger side), with a B-tree on the centre and a partial one on the
few large features: the tiles select rows by these plain numbers. Why: the three tables have
FORCE row-level security, and PostgreSQL uses no index for a qual whose operator is not
leakproof when a policy applies -- PostGIS's ``&&`` is not -- so every building tile read every
building (a sequential scan: 245 ms at 100,000 buildings, seconds at a million). Comparisons
of float8 are leakproof (the events layer does the same, migration 0020). A feature whose box
meets the tile has its centre within ``r`` of the tile: within ``BOX_MARGIN`` for all but the
large ones (``r_3857 > BOX_MARGIN``), which the partial index finds.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06
"""
from alembic import op
from sqlalchemy import text

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

HALF = 20037508.342789244  # web Mercator's half width
CELL_ZOOM = 14  # webapp/tiles.py EPOCH_ZOOM
FUNCTIONS = ("building_stats_insert()", "building_stats_update()", "building_stats_delete()", "building_stats_truncate()", "tile_epochs_buildings()",
             "tile_epochs_grids()", "tile_epochs_assignments()", "tile_epochs_plain()")


# webapp/tiles.py BOX_MARGIN: metres; a feature larger than this is found by the partial index
BOX_MARGIN = {"buildings": 100, "roads": 500, "grids": 1000}


def _owner() -> str:
    return op.get_bind().execute(text("SELECT current_user")).scalar_one()


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


def _grids_staff_only(owner: str, generated: tuple[str, ...]) -> None:
    """0016's guard (a leader or secretary may bump a grid's staff_version, nothing else), told
    about the generated columns: they are not yet computed in NEW in a BEFORE trigger."""
    minus = " - ".join(f"'{c}'" for c in generated)
    op.execute(f"""
CREATE OR REPLACE FUNCTION grids_staff_only() RETURNS trigger LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
  IF current_user <> '{owner}' AND coalesce(wangge_scope_role(), '') NOT IN ('system', 'admin')
     -- (generated columns are not yet computed in NEW here)
     AND (to_jsonb(NEW) - 'staff_version' - {minus}) IS DISTINCT FROM (to_jsonb(OLD) - 'staff_version' - {minus}) THEN
    RAISE EXCEPTION 'only an administrator edits grids; % may change who staffs them', wangge_scope_role()
      USING ERRCODE = '42501';
  END IF;
  RETURN NEW;
END $$""")


def upgrade() -> None:
    owner = _owner()
    own = f"(current_user = '{owner}')"
    area = "wangge_area('buildings', false)"
    # --- plain-number boxes for the tiles (indexable under the policies) -----------------------
    for table, margin in BOX_MARGIN.items():
        g = "ST_Transform(geom, 3857)"
        op.execute(f"""ALTER TABLE {table}
          ADD COLUMN cx_3857 double precision GENERATED ALWAYS AS ((ST_XMin({g}) + ST_XMax({g})) / 2) STORED,
          ADD COLUMN cy_3857 double precision GENERATED ALWAYS AS ((ST_YMin({g}) + ST_YMax({g})) / 2) STORED,
          ADD COLUMN r_3857 double precision GENERATED ALWAYS AS
            (greatest(ST_XMax({g}) - ST_XMin({g}), ST_YMax({g}) - ST_YMin({g})) / 2) STORED""")
        op.execute(f"CREATE INDEX {table}_c_3857_ix ON {table} (cx_3857, cy_3857)")
        op.execute(f"CREATE INDEX {table}_large_3857_ix ON {table} (r_3857) WHERE r_3857 > {margin}")
    _grids_staff_only(owner, ("geom_3857", "cx_3857", "cy_3857", "r_3857"))
    # --- building totals per (community, grid) ------------------------------------------------
    op.execute("""CREATE TABLE building_stats (
      community_code char(12),
      grid_id bigint,
      buildings integer NOT NULL DEFAULT 0,
      households bigint NOT NULL DEFAULT 0,
      residents bigint NOT NULL DEFAULT 0,
      estimated_buildings integer NOT NULL DEFAULT 0)""")
    op.execute("CREATE UNIQUE INDEX building_stats_key ON building_stats (community_code, grid_id) NULLS NOT DISTINCT")
    op.execute("CREATE INDEX building_stats_grid ON building_stats (grid_id)")
    op.execute("""INSERT INTO building_stats
      SELECT community_code, grid_id, count(*), coalesce(sum(households), 0), coalesce(sum(residents), 0),
             count(*) FILTER (WHERE households_source = 'estimated')
      FROM buildings GROUP BY 1, 2""")
    new = ("SELECT community_code, grid_id, 1 AS k, households::bigint AS h, residents::bigint AS r, "
           "(households_source = 'estimated')::int AS e FROM new_rows")
    old = ("SELECT community_code, grid_id, -1, -households::bigint, -residents::bigint, "
           "-(households_source = 'estimated')::int FROM old_rows")
    # Transition tables need one trigger per event, and an INSERT has no old rows: one function each.
    for event, sides, refs in (("insert", new, "NEW TABLE AS new_rows"),
                               ("update", f"{new} UNION ALL {old}", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
                               ("delete", old.replace("-1,", "-1 AS k,", 1), "OLD TABLE AS old_rows")):
        if event == "delete":
            sides = ("SELECT community_code, grid_id, -1 AS k, -households::bigint AS h, -residents::bigint AS r, "
                     "-(households_source = 'estimated')::int AS e FROM old_rows")
        op.execute(f"""
CREATE FUNCTION building_stats_{event}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
  -- + the new rows, - the old ones, summed per (community, grid); rows left with no building go
  INSERT INTO building_stats AS s (community_code, grid_id, buildings, households, residents, estimated_buildings)
  SELECT community_code, grid_id, sum(k), sum(h), sum(r), sum(e) FROM ({sides}) d GROUP BY 1, 2
  ON CONFLICT (community_code, grid_id) DO UPDATE SET buildings = s.buildings + EXCLUDED.buildings,
    households = s.households + EXCLUDED.households, residents = s.residents + EXCLUDED.residents,
    estimated_buildings = s.estimated_buildings + EXCLUDED.estimated_buildings;
  DELETE FROM building_stats WHERE buildings = 0;
  RETURN NULL;
END $$""")
        op.execute(f"""CREATE TRIGGER buildings_stats_{event} AFTER {event.upper()} ON buildings
          REFERENCING {refs} FOR EACH STATEMENT EXECUTE FUNCTION building_stats_{event}()""")
    op.execute("""
CREATE FUNCTION building_stats_truncate() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
  DELETE FROM building_stats;
  RETURN NULL;
END $$""")
    op.execute("""CREATE TRIGGER buildings_stats_truncate AFTER TRUNCATE ON buildings
      FOR EACH STATEMENT EXECUTE FUNCTION building_stats_truncate()""")
    op.execute("ALTER TABLE building_stats ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE building_stats FORCE ROW LEVEL SECURITY")
    op.execute(f"""CREATE POLICY building_stats_read ON building_stats FOR SELECT TO PUBLIC USING ({own}
      OR (SELECT all_rows FROM {area}) OR community_code = ANY ((SELECT communities FROM {area})::bpchar[])
      OR grid_id = ANY ((SELECT grids FROM {area})::bigint[]))""")
    for kind in ("insert", "update", "delete"):
        clause = "WITH CHECK" if kind == "insert" else "USING"
        op.execute(f"CREATE POLICY building_stats_{kind} ON building_stats FOR {kind.upper()} TO PUBLIC {clause} ({own})")
    _app("GRANT SELECT ON building_stats TO %I")

    # --- tile versions per (layer, z14 cell) ----------------------------------------------------
    op.execute("CREATE SEQUENCE tile_epoch_seq")
    op.execute("""CREATE TABLE tile_epochs (
      layer text NOT NULL, cx integer NOT NULL, cy integer NOT NULL, v bigint NOT NULL,
      PRIMARY KEY (layer, cx, cy))""")
    cell = 2 * HALF / (1 << CELL_ZOOM)
    # the z14 cells a box (EPSG:3857) touches, grown by a 64th of a cell
    op.execute(f"""
CREATE FUNCTION tile_cells(b box2d) RETURNS TABLE (cx integer, cy integer) LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT cx, cy
  FROM generate_series(floor((ST_XMin(b) - {cell / 64!r} + {HALF!r}) / {cell!r})::int,
                       floor((ST_XMax(b) + {cell / 64!r} + {HALF!r}) / {cell!r})::int) cx,
       generate_series(floor(({HALF!r} - ST_YMax(b) - {cell / 64!r}) / {cell!r})::int,
                       floor(({HALF!r} - ST_YMin(b) + {cell / 64!r}) / {cell!r})::int) cy
$$""")
    bump = """INSERT INTO tile_epochs AS t (layer, cx, cy, v)
      SELECT layer, cx, cy, nextval('tile_epoch_seq') FROM (SELECT DISTINCT layer, c.cx, c.cy FROM ({src}) s(layer, b),
        LATERAL tile_cells(s.b) c WHERE s.b IS NOT NULL) q
      ON CONFLICT (layer, cx, cy) DO UPDATE SET v = EXCLUDED.v"""
    # buildings: their own tiles, and their grid's (its colour follows their households)
    op.execute(f"""
CREATE FUNCTION tile_epochs_buildings() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    {bump.format(src="SELECT 'buildings', ST_Extent(geom_3857)::box2d FROM new_rows GROUP BY grid_id, community_code "
                     "UNION ALL SELECT 'grids', g.geom_3857::box2d FROM grids g WHERE g.id IN (SELECT grid_id FROM new_rows)")};
  END IF;
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    {bump.format(src="SELECT 'buildings', ST_Extent(geom_3857)::box2d FROM old_rows GROUP BY grid_id, community_code "
                     "UNION ALL SELECT 'grids', g.geom_3857::box2d FROM grids g WHERE g.id IN (SELECT grid_id FROM old_rows)")};
  END IF;
  RETURN NULL;
END $$""")
    # grids: their outline (old and new); assignments: the grid's colour
    op.execute(f"""
CREATE FUNCTION tile_epochs_grids() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    {bump.format(src="SELECT 'grids', geom_3857::box2d FROM new_rows")};
  END IF;
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    {bump.format(src="SELECT 'grids', geom_3857::box2d FROM old_rows")};
  END IF;
  RETURN NULL;
END $$""")
    op.execute(f"""
CREATE FUNCTION tile_epochs_assignments() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    {bump.format(src="SELECT 'grids', g.geom_3857::box2d FROM grids g WHERE g.id IN (SELECT grid_id FROM new_rows)")};
  END IF;
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    {bump.format(src="SELECT 'grids', g.geom_3857::box2d FROM grids g WHERE g.id IN (SELECT grid_id FROM old_rows)")};
  END IF;
  RETURN NULL;
END $$""")
    # communities and roads: their own layer (TG_ARGV[0])
    op.execute(f"""
CREATE FUNCTION tile_epochs_plain() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    {bump.format(src="SELECT TG_ARGV[0], ST_Extent(geom_3857)::box2d FROM new_rows")};
  END IF;
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    {bump.format(src="SELECT TG_ARGV[0], ST_Extent(geom_3857)::box2d FROM old_rows")};
  END IF;
  IF TG_OP = 'TRUNCATE' THEN
    UPDATE tile_epochs SET v = nextval('tile_epoch_seq') WHERE layer = TG_ARGV[0];
  END IF;
  RETURN NULL;
END $$""")
    for table, fn, arg in (("buildings", "tile_epochs_buildings", ""), ("grids", "tile_epochs_grids", ""),
                           ("assignments", "tile_epochs_assignments", ""), ("communities", "tile_epochs_plain", "'communities'"),
                           ("roads", "tile_epochs_plain", "'roads'")):
        for event, refs in (("INSERT", "NEW TABLE AS new_rows"), ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
                            ("DELETE", "OLD TABLE AS old_rows")):
            op.execute(f"""CREATE TRIGGER {table}_tile_epochs_{event.lower()} AFTER {event} ON {table}
              REFERENCING {refs} FOR EACH STATEMENT EXECUTE FUNCTION {fn}({arg})""")
    # a truncated layer: every version of the layers it shows moves on (a grid's colour follows buildings)
    op.execute("""
CREATE FUNCTION tile_epochs_truncate() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
  UPDATE tile_epochs SET v = nextval('tile_epoch_seq') WHERE layer = ANY (TG_ARGV);
  RETURN NULL;
END $$""")
    for table, layers in (("buildings", "'buildings', 'grids'"), ("grids", "'grids'"), ("assignments", "'grids'"),
                          ("communities", "'communities'"), ("roads", "'roads'")):
        op.execute(f"""CREATE TRIGGER {table}_tile_epochs_truncate AFTER TRUNCATE ON {table}
          FOR EACH STATEMENT EXECUTE FUNCTION tile_epochs_truncate({layers})""")
    op.execute("ALTER TABLE tile_epochs ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE tile_epochs FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tile_epochs_read ON tile_epochs FOR SELECT TO PUBLIC USING ({own} OR wangge_scope() IS NOT NULL)")
    for kind in ("insert", "update", "delete"):
        clause = "WITH CHECK" if kind == "insert" else "USING"
        op.execute(f"CREATE POLICY tile_epochs_{kind} ON tile_epochs FOR {kind.upper()} TO PUBLIC {clause} ({own})")
    _app("GRANT SELECT ON tile_epochs TO %I")
    for fn in (*FUNCTIONS, "tile_epochs_truncate()", "tile_cells(box2d)"):
        op.execute(f"REVOKE ALL ON FUNCTION {fn} FROM PUBLIC")


def downgrade() -> None:
    _grids_staff_only(_owner(), ("geom_3857",))
    for table in BOX_MARGIN:
        op.execute(f"DROP INDEX IF EXISTS {table}_large_3857_ix")
        op.execute(f"DROP INDEX IF EXISTS {table}_c_3857_ix")
        op.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS r_3857, DROP COLUMN IF EXISTS cy_3857, DROP COLUMN IF EXISTS cx_3857")
    for table in ("buildings", "grids", "assignments", "communities", "roads"):
        for event in ("insert", "update", "delete", "truncate"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_tile_epochs_{event} ON {table}")
    for event in ("insert", "update", "delete", "truncate"):
        op.execute(f"DROP TRIGGER IF EXISTS buildings_stats_{event} ON buildings")
    op.execute("DROP TABLE IF EXISTS tile_epochs")
    op.execute("DROP SEQUENCE IF EXISTS tile_epoch_seq")
    op.execute("DROP TABLE IF EXISTS building_stats")
    for fn in (*FUNCTIONS, "tile_epochs_truncate()", "tile_cells(box2d)"):
        op.execute(f"DROP FUNCTION IF EXISTS {fn}")
