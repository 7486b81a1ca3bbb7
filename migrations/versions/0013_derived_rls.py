"""Row-level security on the tables that copy building rows (issue 8, follow-up to 0011).

``service_buildings`` (each home's walking distances and households, issue 6) and
``siting_scenario_demand`` (each home's demand weight in a stored siting run, issue 7)
hold one row per building: without policies a grid worker could read other grids'
buildings through them. Their rows are visible exactly when the building is (the buildings
policy applies inside the subquery), with a short cut for the roles that see every
building. The view ``service_distances`` becomes ``security_invoker`` so that reading it
applies the caller's policies rather than its owner's (an owner's view bypasses them).

Also re-creates the audit trigger function in its final form (an early copy of 0011
recorded the owner's role name instead of the actor for owner inserts).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-25
"""
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

ROLE = "(SELECT wangge_scope_role())"
COMS = "(SELECT wangge_scope_communities())::bpchar[]"
VISIBLE = (f"({ROLE} IN ('system', 'admin') OR ({ROLE} IN ('leader', 'planner') AND cardinality({COMS}) = 0)"
           " OR building_id IN (SELECT id FROM buildings))")
TABLES = ("service_buildings", "siting_scenario_demand")


def upgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {table}_read ON {table} FOR SELECT TO PUBLIC USING {VISIBLE}")
        op.execute(f"CREATE POLICY {table}_insert ON {table} FOR INSERT TO PUBLIC WITH CHECK {VISIBLE}")
        op.execute(f"CREATE POLICY {table}_update ON {table} FOR UPDATE TO PUBLIC USING {VISIBLE} WITH CHECK {VISIBLE}")
        op.execute(f"CREATE POLICY {table}_delete ON {table} FOR DELETE TO PUBLIC USING {VISIBLE}")
    op.execute("ALTER VIEW service_distances SET (security_invoker = true)")
    op.execute("""
CREATE OR REPLACE FUNCTION audit_log_scope_user() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  -- app-role inserts: the verified scope's user, whatever the app wrote; the owner's: the actor
  NEW.scope_user := CASE WHEN session_user = (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = TG_RELID)
                         THEN coalesce(NEW.scope_user, NEW.actor)
                         ELSE coalesce(wangge_scope()->>'u', '(' || session_user || ')') END;
  RETURN NEW;
END $$""")


def downgrade() -> None:
    op.execute("ALTER VIEW service_distances RESET (security_invoker)")
    for table in TABLES:
        for kind in ("read", "insert", "update", "delete"):
            op.execute(f"DROP POLICY IF EXISTS {table}_{kind} ON {table}")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
