"""A version counter per grid for its staff, so that two people assigning cadres to the
same grid at once get a conflict instead of a silent overwrite.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE grids ADD COLUMN staff_version integer NOT NULL DEFAULT 0")
    op.execute("ALTER TABLE buildings ADD COLUMN staff_version integer NOT NULL DEFAULT 0")


def downgrade() -> None:
    op.execute("ALTER TABLE grids DROP COLUMN staff_version")
    op.execute("ALTER TABLE buildings DROP COLUMN staff_version")
