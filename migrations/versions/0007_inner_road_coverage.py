"""Camera coverage of a community's inner streets (more than ``camera_inner_road_m`` inside
its boundary): boundary streets are shared with the neighbours and usually watched by
traffic cameras, so a community can score well on all roads while its lanes are bare.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE camera_coverage ADD COLUMN inner_road_m double precision NOT NULL DEFAULT 0, "
               "ADD COLUMN inner_road_covered_m double precision NOT NULL DEFAULT 0")


def downgrade() -> None:
    op.execute("ALTER TABLE camera_coverage DROP COLUMN inner_road_m, DROP COLUMN inner_road_covered_m")
