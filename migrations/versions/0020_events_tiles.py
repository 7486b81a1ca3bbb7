"""Events as vector tiles (issue 16 point 5): the cases' EPSG:3857 geometry, generated and
indexed, as every other tiled layer has it (0001's ``geom_3857``).

Why a generated column: ``ST_AsMVT`` works in web-Mercator metres; transforming 100,000
points on every tile request would cost more than the tile itself, and a stored column
follows the case's ``geom`` without any code having to remember it. The index is partial,
on the open cases only: the tile layer shows open cases (closed ones are history, read in
the lists and indicators), and a city keeps closing cases for years, so the open ones are a
small, hot part of the table.

Why ``x_3857``/``y_3857`` and a B-tree beside the GiST index: ``events`` has FORCE row-level
security, and PostgreSQL will not use an index under a qual whose operator is not leakproof
when a policy applies -- PostGIS's ``&&`` is not, so a tile's ``geom_3857 && box`` read all
100,000 open cases (64 ms for a z18 tile holding 29 of them, bench/bench_events.py --tiles).
Comparisons of float8 are leakproof: the tile selects ``x_3857 BETWEEN … AND y_3857 BETWEEN
…`` on the B-tree, under the policy, and the GiST index serves the owner's own spatial work.

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
    op.execute("""ALTER TABLE events
      ADD COLUMN geom_3857 geometry(Point, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED,
      ADD COLUMN x_3857 double precision GENERATED ALWAYS AS (ST_X(ST_Transform(geom, 3857))) STORED,
      ADD COLUMN y_3857 double precision GENERATED ALWAYS AS (ST_Y(ST_Transform(geom, 3857))) STORED""")
    where = f"WHERE status IN ({', '.join(repr(s) for s in OPEN)})"
    op.execute(f"CREATE INDEX events_open_geom_3857_gix ON events USING gist (geom_3857) {where}")
    op.execute(f"CREATE INDEX events_open_xy_3857_ix ON events (x_3857, y_3857) {where}")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS events_open_xy_3857_ix")
    op.execute("DROP INDEX IF EXISTS events_open_geom_3857_gix")
    op.execute("ALTER TABLE events DROP COLUMN IF EXISTS y_3857, DROP COLUMN IF EXISTS x_3857, DROP COLUMN IF EXISTS geom_3857")
