"""Siting scenarios: whether each home was already within the radius of an existing
facility, so that the planner's map can show before and after from the stored run alone.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26
"""
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE siting_scenario_demand ADD COLUMN covered_before boolean NOT NULL DEFAULT false")


def downgrade() -> None:
    op.execute("ALTER TABLE siting_scenario_demand DROP COLUMN covered_before")
