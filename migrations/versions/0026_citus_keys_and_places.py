"""A building's copies are unique by building and district too; an assignment carries where it
is (issue 18, Citus).

Writers that upsert a building's group counts or walking distances said
``ON CONFLICT (building_id)``. On Citus every unique key of a distributed table must hold the
distribution column, so ``wangge db distribute`` turns those primary keys into
``(building_id, district_code)`` and the upserts found no matching key there. This unique index
gives both kinds of database the same arbiter: the writers say
``ON CONFLICT (building_id, district_code)``, which one node answers with this index (the
primary key on ``building_id`` stays and still refuses a second row for a building) and Citus
with its widened key. A copy's district is its building's (migration 0021 fills it).

An assignment (``assignments``) now carries the community and grid of what it staffs:
``community_code`` (its grid's community, or its building's) and ``place_grid_id`` (its grid, or
its building's grid). On one node nothing reads them: the policies of migration 0014 look the grid
and the building up, as before. On Citus those look-ups are sub-queries on a distributed table,
which Citus cannot plan for a table joined with buildings (the leader's overview and the
community table count staff per grid), so ``wangge db distribute`` gives ``assignments`` the row
form, a function of these two columns with the same rules. Filled on insert and when the target
changes (trigger), kept in step when a building moves (trigger on buildings; on Citus, where a
trigger on a shard cannot write a replicated table, by ``gis.citus.sync_building_places``).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06
"""
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

TABLES = ("building_groups", "service_buildings")
DEFINER = "SECURITY DEFINER SET search_path = public, pg_temp"


def upgrade() -> None:
    for t in TABLES:
        op.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS {t}_building_district_key ON {t} (building_id, district_code)")
    op.execute("ALTER TABLE assignments ADD COLUMN IF NOT EXISTS community_code char(12)")
    op.execute("ALTER TABLE assignments ADD COLUMN IF NOT EXISTS place_grid_id bigint")
    op.execute("""UPDATE assignments a SET community_code = g.community_code, place_grid_id = g.id
                  FROM grids g WHERE g.id = a.grid_id""")
    op.execute("""UPDATE assignments a SET community_code = b.community_code, place_grid_id = b.grid_id
                  FROM buildings b WHERE a.grid_id IS NULL AND b.id = a.building_id""")
    # SECURITY DEFINER: the place is a fact of the grid or building, not of what the writer may see
    op.execute(f"""
CREATE OR REPLACE FUNCTION wangge_fill_assignment_place() RETURNS trigger LANGUAGE plpgsql {DEFINER} AS $$
BEGIN
  IF NEW.grid_id IS NOT NULL THEN
    SELECT g.community_code, g.id INTO NEW.community_code, NEW.place_grid_id FROM grids g WHERE g.id = NEW.grid_id;
  ELSIF NEW.building_id IS NOT NULL THEN
    SELECT b.community_code, b.grid_id INTO NEW.community_code, NEW.place_grid_id FROM buildings b WHERE b.id = NEW.building_id;
  ELSE
    NEW.community_code := NULL; NEW.place_grid_id := NULL;  -- never what the writer says
  END IF;
  RETURN NEW;
END $$""")
    op.execute("DROP TRIGGER IF EXISTS assignments_place ON assignments")
    op.execute("""CREATE TRIGGER assignments_place BEFORE INSERT OR UPDATE ON assignments
                  FOR EACH ROW EXECUTE FUNCTION wangge_fill_assignment_place()""")
    op.execute(f"""
CREATE OR REPLACE FUNCTION wangge_assignments_follow_building() RETURNS trigger LANGUAGE plpgsql {DEFINER} AS $$
BEGIN
  UPDATE assignments SET community_code = NEW.community_code, place_grid_id = NEW.grid_id
   WHERE building_id = NEW.id AND grid_id IS NULL;
  RETURN NULL;
END $$""")
    op.execute("DROP TRIGGER IF EXISTS buildings_assignments_place ON buildings")
    op.execute("""CREATE TRIGGER buildings_assignments_place AFTER UPDATE OF community_code, grid_id ON buildings
                  FOR EACH ROW WHEN (OLD.community_code IS DISTINCT FROM NEW.community_code OR OLD.grid_id IS DISTINCT FROM NEW.grid_id)
                  EXECUTE FUNCTION wangge_assignments_follow_building()""")
    # trigger functions: nobody calls them (the attacker's test holds the app role to what it declares)
    for f in ("wangge_fill_assignment_place()", "wangge_assignments_follow_building()"):
        op.execute(f"REVOKE EXECUTE ON FUNCTION {f} FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS buildings_assignments_place ON buildings")
    op.execute("DROP TRIGGER IF EXISTS assignments_place ON assignments")
    op.execute("DROP FUNCTION IF EXISTS wangge_assignments_follow_building()")
    op.execute("DROP FUNCTION IF EXISTS wangge_fill_assignment_place()")
    op.execute("ALTER TABLE assignments DROP COLUMN IF EXISTS place_grid_id")
    op.execute("ALTER TABLE assignments DROP COLUMN IF EXISTS community_code")
    for t in TABLES:
        op.execute(f"DROP INDEX IF EXISTS {t}_building_district_key")
