"""The tile versions' read policy checks the scope once per query, not once per row (issue 18,
tiles).

``tile_epochs_read`` (migration 0024) said ``wangge_scope() IS NOT NULL``: a bare call in a
policy is evaluated for every row the query reads, and each call verifies the scope's HMAC
signature. A tile's version is the newest of the z14 cells it covers: one cell at display zoom 15,
324 at zoom 11, so a cached low-zoom tile cost 12 ms of signature checks on every request at
1,000,000 buildings (bench/README.md "Tiles at 1,000,000 buildings"). As an uncorrelated
sub-query (the form of the other policies) it is an InitPlan: checked once. Same rule: the owner,
or any valid scope, reads every version (they are numbers, not data).

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07
"""
from alembic import op
from sqlalchemy import text

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def _owner() -> str:
    return op.get_bind().execute(text("SELECT tableowner FROM pg_tables WHERE tablename = 'tile_epochs'")).scalar_one()


def upgrade() -> None:
    own = f"(current_user = '{_owner()}')"
    op.execute(f"ALTER POLICY tile_epochs_read ON tile_epochs USING ({own} OR (SELECT wangge_scope()) IS NOT NULL)")


def downgrade() -> None:
    own = f"(current_user = '{_owner()}')"
    op.execute(f"ALTER POLICY tile_epochs_read ON tile_epochs USING ({own} OR wangge_scope() IS NOT NULL)")
