"""Footprints and roads found by place under row-level security (issue 18: one edit's coverage
refresh at 1,000,000 buildings).

``buildings`` and ``roads`` force row-level security, and PostgreSQL will not use an index under a
qual whose operator is not leakproof while a policy applies: PostGIS's ``&&`` and ``ST_DWithin``
are not, so "the footprints within 300 m of this facility" read every footprint of the city (a
sequential scan per question: about a second at 1,000,000 buildings, several per edit). Float
comparisons are leakproof (migration 0020 did the same for the event tiles' points).

Migration 0024 gave each row the centre of its EPSG:3857 bounding box (``cx_3857``, ``cy_3857``,
B-tree) and half the larger side of that box (``r_3857``, indexed there only above a margin, for
the tiles). A place query (analysis.runs.window) narrows by the centres within the window widened
by the table's largest ``r_3857``; this migration adds the full B-tree on ``r_3857`` so that the
largest is read from the index's end whatever its size, then the caller applies the exact
spatial test.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06
"""
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

TABLES = ("buildings", "roads")


def upgrade() -> None:
    for t in TABLES:
        op.execute(f"CREATE INDEX IF NOT EXISTS {t}_r_3857_ix ON {t} (r_3857)")


def downgrade() -> None:
    for t in TABLES:
        op.execute(f"DROP INDEX IF EXISTS {t}_r_3857_ix")
