"""Events as vector tiles (issue 16 point 5): the cases' EPSG:3857 geometry, generated and
indexed, as every other tiled layer has it (0001's ``geom_3857``).

Why a generated column: ``ST_AsMVT`` works in web-Mercator metres; transforming 100,000
points on every tile request would cost more than the tile itself, and a stored column
follows the case's ``geom`` without any code having to remember it. The index is partial,
on the open cases only: the tile layer shows open cases (closed ones are history, read in
the lists and indicators), and a city keeps closing cases for years, so the open ones are a
small, hot part of the table.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06
"""
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

OPEN = ("reported", "filed", "dispatched", "handled", "verified", "deferred")  # webapp/tiles.py EVENT_OPEN


def upgrade() -> None:
    op.execute("ALTER TABLE events ADD COLUMN geom_3857 geometry(Point, 3857) "
               "GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED")
    op.execute("CREATE INDEX events_open_geom_3857_gix ON events USING gist (geom_3857) "
               f"WHERE status IN ({', '.join(repr(s) for s in OPEN)})")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS events_open_geom_3857_gix")
    op.execute("ALTER TABLE events DROP COLUMN IF EXISTS geom_3857")
