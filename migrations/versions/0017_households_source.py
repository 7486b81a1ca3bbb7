"""Where each building's households come from (issue 13): ``surveyed`` (a ledger, a survey,
a file that carries 户数), ``estimated`` (gross floor area ÷ floor area per dwelling, for
residential buildings a source gave no count, e.g. OpenStreetMap) or ``unknown`` (no count
and nothing to estimate from). Screens, exports and reports mark estimated figures
「估算」. Existing rows came with counts: they stay ``surveyed``, except OSM footprints
imported before estimation existed with 0 households, which are ``unknown``.

The column sits on ``buildings``: its row-level security policies and grants cover it.

Revision ID: 0017
Revises: 0015
Create Date: 2026-12-06
"""
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
ALTER TABLE buildings ADD COLUMN households_source text NOT NULL DEFAULT 'surveyed'
  CONSTRAINT buildings_households_source_check CHECK (households_source IN ('surveyed', 'estimated', 'unknown'))""")
    op.execute("UPDATE buildings SET households_source = 'unknown' WHERE households = 0 AND source_id ~ '^[nwr][0-9]+$'")


def downgrade() -> None:
    op.execute("ALTER TABLE buildings DROP COLUMN households_source")
