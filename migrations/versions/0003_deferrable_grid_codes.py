"""Current grid codes unique through a deferrable exclusion constraint, so renumbering
can swap codes between grids inside one transaction.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS grids_current_code_ux")
    op.execute("""ALTER TABLE grids ADD CONSTRAINT grids_current_code_ex
                  EXCLUDE USING btree (code WITH =) WHERE (valid_to IS NULL) DEFERRABLE INITIALLY IMMEDIATE""")


def downgrade() -> None:
    op.execute("ALTER TABLE grids DROP CONSTRAINT IF EXISTS grids_current_code_ex")
    op.execute("CREATE UNIQUE INDEX grids_current_code_ux ON grids (code) WHERE valid_to IS NULL")
