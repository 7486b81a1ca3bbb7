"""Rows that copy a building carry where the building is (issue 18, Citus).

``building_groups``, ``service_buildings`` and ``siting_scenario_demand`` hold one row per
building. On one node their row-level policies look the building up (migration 0014, EXISTS);
Citus refuses sub-queries in a policy on a distributed table, and distributing them by
``district_code`` next to their building needs the column. So each row now carries its
building's ``district_code``, ``community_code`` and ``grid_id``: filled on insert from the
building when the writer leaves them out (trigger), kept in step when a building changes grid
or community (trigger on buildings), and backfilled here. The single-node policies are left
as they are (gis/citus.py puts the row-column form in place on Citus only).

Works on both: on one node it only adds columns and triggers; on Citus it runs before
``wangge db distribute`` (which needs the columns), and afterwards its DDL is propagated.

Revision ID: 0021
Revises: 0018
Create Date: 2026-12-06
"""
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

COPIES = ("building_groups", "service_buildings", "siting_scenario_demand")
DEFINER = "SECURITY DEFINER SET search_path = public, pg_temp"


def upgrade() -> None:
    for t in COPIES:
        op.execute(f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS district_code char(6)")
        op.execute(f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS community_code char(12)")
        op.execute(f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS grid_id bigint")
        op.execute(f"""UPDATE {t} x SET district_code = b.district_code, community_code = b.community_code, grid_id = b.grid_id
                       FROM buildings b WHERE b.id = x.building_id""")
        op.execute(f"CREATE INDEX IF NOT EXISTS {t}_grid_ix ON {t} (grid_id)")
    # the per-category view carries the district too, so that a join with buildings can name the
    # distribution column (co-located on Citus); the new column goes last (CREATE OR REPLACE VIEW)
    op.execute("""
CREATE OR REPLACE VIEW service_distances WITH (security_invoker = true) AS
 SELECT s.building_id, d.category, d.network_m, d.facility_id, d.straight_m, d.straight_facility_id, s.run_id, s.computed_at,
        s.district_code
   FROM service_buildings s
   CROSS JOIN LATERAL unnest(s.categories, s.network_m, s.facility_id, s.straight_m, s.straight_facility_id)
        d(category, network_m, facility_id, straight_m, straight_facility_id)""")
    # SECURITY DEFINER: the writer may not see the building under its own scope (the policies
    # then refuse the row anyway), the fill itself must not depend on it.
    op.execute(f"""
CREATE FUNCTION wangge_fill_building_place() RETURNS trigger LANGUAGE plpgsql {DEFINER} AS $$
BEGIN
  IF NEW.building_id IS NOT NULL AND (NEW.district_code IS NULL OR (NEW.community_code IS NULL AND NEW.grid_id IS NULL)) THEN
    SELECT coalesce(NEW.district_code, b.district_code), b.community_code, b.grid_id
      INTO NEW.district_code, NEW.community_code, NEW.grid_id
      FROM buildings b WHERE b.id = NEW.building_id;
  END IF;
  RETURN NEW;
END $$""")
    for t in COPIES:
        op.execute(f"""CREATE TRIGGER {t}_place BEFORE INSERT ON {t}
                       FOR EACH ROW EXECUTE FUNCTION wangge_fill_building_place()""")
    op.execute(f"""
CREATE FUNCTION wangge_buildings_moved() RETURNS trigger LANGUAGE plpgsql {DEFINER} AS $$
BEGIN
  UPDATE building_groups SET community_code = NEW.community_code, grid_id = NEW.grid_id
   WHERE building_id = NEW.id AND district_code = NEW.district_code;
  UPDATE service_buildings SET community_code = NEW.community_code, grid_id = NEW.grid_id
   WHERE building_id = NEW.id AND district_code = NEW.district_code;
  UPDATE siting_scenario_demand SET community_code = NEW.community_code, grid_id = NEW.grid_id
   WHERE building_id = NEW.id AND district_code = NEW.district_code;
  RETURN NULL;
END $$""")
    op.execute("""CREATE TRIGGER buildings_moved AFTER UPDATE OF community_code, grid_id ON buildings
                  FOR EACH ROW WHEN (OLD.community_code IS DISTINCT FROM NEW.community_code OR OLD.grid_id IS DISTINCT FROM NEW.grid_id)
                  EXECUTE FUNCTION wangge_buildings_moved()""")
    # trigger functions only: nobody calls them (a trigger fires without EXECUTE), and the
    # attacker's test (issue 19) holds the app role to the functions it declares
    for f in ("wangge_fill_building_place()", "wangge_buildings_moved()"):
        op.execute(f"REVOKE EXECUTE ON FUNCTION {f} FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP VIEW service_distances")
    op.execute("""
CREATE VIEW service_distances WITH (security_invoker = true) AS
 SELECT s.building_id, d.category, d.network_m, d.facility_id, d.straight_m, d.straight_facility_id, s.run_id, s.computed_at
   FROM service_buildings s
   CROSS JOIN LATERAL unnest(s.categories, s.network_m, s.facility_id, s.straight_m, s.straight_facility_id)
        d(category, network_m, facility_id, straight_m, straight_facility_id)""")
    op.execute("GRANT SELECT ON service_distances TO wangge_app")
    op.execute("DROP TRIGGER IF EXISTS buildings_moved ON buildings")
    op.execute("DROP FUNCTION IF EXISTS wangge_buildings_moved()")
    for t in COPIES:
        op.execute(f"DROP TRIGGER IF EXISTS {t}_place ON {t}")
    op.execute("DROP FUNCTION IF EXISTS wangge_fill_building_place()")
    for t in COPIES:
        op.execute(f"DROP INDEX IF EXISTS {t}_grid_ix")
        op.execute(f"ALTER TABLE {t} DROP COLUMN IF EXISTS grid_id")
        op.execute(f"ALTER TABLE {t} DROP COLUMN IF EXISTS community_code")
        if t != "building_groups":
            op.execute(f"ALTER TABLE {t} DROP COLUMN IF EXISTS district_code")
