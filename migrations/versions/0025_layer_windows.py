"""Footprints and roads found by place under row-level security (issue 18: one edit's coverage
refresh at 1,000,000 buildings).

``buildings`` and ``roads`` force row-level security, and PostgreSQL will not use an index under a
qual whose operator is not leakproof while a policy applies: PostGIS's ``&&`` and ``ST_DWithin``
are not, so "the footprints within 300 m of this facility" read every footprint of the city (a
sequential scan per question: about a second at 1,000,000 buildings, several per edit). Float
comparisons are leakproof (migration 0020 did the same for the event tiles' points).

Each row gets the centre of its EPSG:3857 bounding box (``x_3857``, ``y_3857``, B-tree) and half
the larger side of that box (``r_3857``, B-tree: the largest is read from the index's end). A
place query first narrows by ``x_3857``/``y_3857`` within the window widened by the table's largest
``r_3857`` (every row whose box meets the window is in it), then applies the exact spatial test:
analysis.runs.window.

Generated columns: they follow ``geom`` without any writer having to remember them. Works on
Citus too (generated columns on distributed tables).

Revision ID: 0025
Revises: 0022
Create Date: 2026-12-06
"""
from alembic import op

revision = "0025"
down_revision = "0022"
branch_labels = None
depends_on = None

TABLES = ("buildings", "roads")
MERC = "ST_Transform(geom, 3857)"


def upgrade() -> None:
    for t in TABLES:
        op.execute(f"""ALTER TABLE {t}
          ADD COLUMN IF NOT EXISTS x_3857 double precision GENERATED ALWAYS AS ((ST_XMin({MERC}) + ST_XMax({MERC})) / 2) STORED,
          ADD COLUMN IF NOT EXISTS y_3857 double precision GENERATED ALWAYS AS ((ST_YMin({MERC}) + ST_YMax({MERC})) / 2) STORED,
          ADD COLUMN IF NOT EXISTS r_3857 double precision GENERATED ALWAYS AS
            (greatest(ST_XMax({MERC}) - ST_XMin({MERC}), ST_YMax({MERC}) - ST_YMin({MERC})) / 2) STORED""")
        op.execute(f"CREATE INDEX IF NOT EXISTS {t}_xy_3857_ix ON {t} (x_3857, y_3857)")
        op.execute(f"CREATE INDEX IF NOT EXISTS {t}_r_3857_ix ON {t} (r_3857)")


def downgrade() -> None:
    for t in TABLES:
        op.execute(f"DROP INDEX IF EXISTS {t}_r_3857_ix")
        op.execute(f"DROP INDEX IF EXISTS {t}_xy_3857_ix")
        op.execute(f"ALTER TABLE {t} DROP COLUMN IF EXISTS r_3857, DROP COLUMN IF EXISTS y_3857, DROP COLUMN IF EXISTS x_3857")
