"""The audit log is read by administrators only (its before/after hold cadres' phones,
assignments, users): row-level security on ``audit_log`` lets every signed-in role add rows
(each change must be logged whoever makes it) but only the administrator and the system
read them. Caches that only need to know *that* something changed (map tiles) ask
``audit_version()``, which returns the newest id and nothing else.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-25
"""
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY")
    op.execute("""CREATE POLICY audit_log_read ON audit_log FOR SELECT TO PUBLIC
                  USING ((SELECT wangge_scope_role()) IN ('system', 'admin'))""")
    op.execute("CREATE POLICY audit_log_insert ON audit_log FOR INSERT TO PUBLIC WITH CHECK (true)")
    op.execute("""
CREATE FUNCTION audit_version() RETURNS bigint LANGUAGE sql STABLE
SECURITY DEFINER SET search_path = public, pg_temp AS $$ SELECT coalesce(max(id), 0) FROM audit_log $$""")
    op.execute("REVOKE ALL ON FUNCTION audit_version() FROM PUBLIC")
    op.execute("""
DO $$
DECLARE app text := coalesce(current_setting('wangge.app_role', true), 'wangge_app');
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = app) THEN
    EXECUTE format('GRANT EXECUTE ON FUNCTION audit_version() TO %I', app);
  END IF;
END $$""")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS audit_version()")
    op.execute("DROP POLICY IF EXISTS audit_log_insert ON audit_log")
    op.execute("DROP POLICY IF EXISTS audit_log_read ON audit_log")
    op.execute("ALTER TABLE audit_log DISABLE ROW LEVEL SECURITY")
