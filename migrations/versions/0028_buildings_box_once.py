"""Buildings' look-up box computed once per row (issue 18: the buildings import at 1,000,000).

Migration 0024 made ``cx_3857``, ``cy_3857`` and ``r_3857`` generated columns, each expression
transforming the footprint to EPSG:3857 again: PostgreSQL does not share a sub-expression between
generated columns, so every written row paid eight transforms for the box (plus one for
``geom_3857``). Measured on 200,000 footprints: inserting with ``geom_3857`` alone 1.9 s, with the
three box columns 7.5 s, with the box filled by this trigger 3.9 s (load 10, same run); at
1,000,000 buildings the box was the largest single cost of the import's ``INSERT``.

The three columns become plain columns (``DROP EXPRESSION`` keeps every value: no rewrite) that
a ``BEFORE INSERT OR UPDATE OF geom, cx_3857, cy_3857, r_3857`` row trigger fills from ONE
transform, with the very expressions of 0024 applied to it (the values are identical: checked on
1,000,000 rows). A write that names a box column gets it overwritten from the footprint, so the
columns still say what the footprint says, as a generated column would. The trigger reads
nothing but the row (it runs on a Citus shard as it runs here).

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07
"""
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

FUNCTION = "wangge_buildings_box_3857()"
BOX = ("cx_3857", "cy_3857", "r_3857")
MARGIN = 100  # 0024 BOX_MARGIN["buildings"]


def upgrade() -> None:
    op.execute(f"""
CREATE FUNCTION {FUNCTION} RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  b box3d := public.st_transform(NEW.geom, 3857)::box3d;  -- once; 0024's expressions on it
BEGIN
  NEW.cx_3857 := (public.st_xmin(b) + public.st_xmax(b)) / 2;
  NEW.cy_3857 := (public.st_ymin(b) + public.st_ymax(b)) / 2;
  NEW.r_3857 := greatest(public.st_xmax(b) - public.st_xmin(b), public.st_ymax(b) - public.st_ymin(b)) / 2;
  RETURN NEW;
END $$""")
    op.execute(f"REVOKE ALL ON FUNCTION {FUNCTION} FROM PUBLIC")
    op.execute("ALTER TABLE buildings " + ", ".join(f"ALTER COLUMN {c} DROP EXPRESSION" for c in BOX))
    op.execute(f"""CREATE TRIGGER buildings_box_3857 BEFORE INSERT OR UPDATE OF geom, {", ".join(BOX)} ON buildings
      FOR EACH ROW EXECUTE FUNCTION {FUNCTION}""")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS buildings_box_3857 ON buildings")
    op.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}")
    for ix in ("buildings_r_3857_ix", "buildings_large_3857_ix", "buildings_c_3857_ix"):
        op.execute(f"DROP INDEX IF EXISTS {ix}")
    op.execute("ALTER TABLE buildings " + ", ".join(f"DROP COLUMN {c}" for c in BOX))
    g = "ST_Transform(geom, 3857)"
    op.execute(f"""ALTER TABLE buildings
      ADD COLUMN cx_3857 double precision GENERATED ALWAYS AS ((ST_XMin({g}) + ST_XMax({g})) / 2) STORED,
      ADD COLUMN cy_3857 double precision GENERATED ALWAYS AS ((ST_YMin({g}) + ST_YMax({g})) / 2) STORED,
      ADD COLUMN r_3857 double precision GENERATED ALWAYS AS
        (greatest(ST_XMax({g}) - ST_XMin({g}), ST_YMax({g}) - ST_YMin({g})) / 2) STORED""")
    op.execute("CREATE INDEX buildings_c_3857_ix ON buildings (cx_3857, cy_3857)")
    op.execute(f"CREATE INDEX buildings_large_3857_ix ON buildings (r_3857) WHERE r_3857 > {MARGIN}")
    op.execute("CREATE INDEX buildings_r_3857_ix ON buildings (r_3857)")
