"""Where each camera stood when its view was computed, so that moving or deleting it
recomputes the grid it used to stand in (its camera count) even when its view was empty.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE camera_views ADD COLUMN camera_geom geometry(Point, 4326)")


def downgrade() -> None:
    op.execute("ALTER TABLE camera_views DROP COLUMN camera_geom")
