"""A building's copies are unique by building and district too (issue 18, Citus).

Writers that upsert a building's group counts or walking distances said
``ON CONFLICT (building_id)``. On Citus every unique key of a distributed table must hold the
distribution column, so ``wangge db distribute`` turns those primary keys into
``(building_id, district_code)`` and the upserts found no matching key there. This unique index
gives both kinds of database the same arbiter: the writers say
``ON CONFLICT (building_id, district_code)``, which one node answers with this index (the
primary key on ``building_id`` stays and still refuses a second row for a building) and Citus
with its widened key. A copy's district is its building's (migration 0021 fills it).

Revision ID: 0026
Revises: 0022
Create Date: 2026-12-06
"""
from alembic import op

revision = "0026"
down_revision = "0022"
branch_labels = None
depends_on = None

TABLES = ("building_groups", "service_buildings")


def upgrade() -> None:
    for t in TABLES:
        op.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS {t}_building_district_key ON {t} (building_id, district_code)")


def downgrade() -> None:
    for t in TABLES:
        op.execute(f"DROP INDEX IF EXISTS {t}_building_district_key")
