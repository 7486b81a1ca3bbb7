"""Spatial layers, assignments and the audit log.

Storage CRS is EPSG:4326 (WGS-84) for every geometry; a generated EPSG:3857 copy sits
beside the large layers for vector tiles. Every layer row carries its 6-digit district
code so a city or province deployment can partition or distribute by district later.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""
from alembic import op

from layers.vocab import BUILDING_USES, CADRE_ROLES, FACILITY_CATEGORIES, GROUPS, codes

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

DISTRICT = "district_code char(6) NOT NULL CHECK (district_code ~ '^[0-9]{6}$')"


def _in(values: list[str]) -> str:
    return ", ".join("'" + v + "'" for v in values)


def _geom(table: str, kind: str, nullable: bool = False, tiles: bool = True) -> str:
    null = "" if nullable else " NOT NULL"
    cols = f"geom geometry({kind}, 4326){null} CHECK (ST_IsValid(geom))"
    if tiles:
        cols += f",\n  geom_3857 geometry({kind}, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED"
    return cols


def _gist(table: str, tiles: bool = True) -> None:
    op.execute(f"CREATE INDEX {table}_geom_gix ON {table} USING gist (geom)")
    if tiles:
        op.execute(f"CREATE INDEX {table}_geom_3857_gix ON {table} USING gist (geom_3857)")
    op.execute(f"CREATE INDEX {table}_district_ix ON {table} (district_code)")


def upgrade() -> None:
    op.execute(f"""
CREATE TABLE districts (
  code char(6) PRIMARY KEY CHECK (code ~ '^[0-9]{{6}}$'),
  name text NOT NULL,
  city_name text,
  province_name text
)""")
    op.execute(f"""
CREATE TABLE subdistricts (
  code char(9) PRIMARY KEY CHECK (code ~ '^[0-9]{{9}}$'),
  {DISTRICT} REFERENCES districts (code),
  name text NOT NULL,
  metric_srid integer,
  {_geom('subdistricts', 'MultiPolygon', nullable=True)},
  CHECK (left(code, 6) = district_code)
)""")
    _gist("subdistricts")
    op.execute(f"""
CREATE TABLE communities (
  code char(12) PRIMARY KEY CHECK (code ~ '^[0-9]{{12}}$'),
  subdistrict_code char(9) NOT NULL REFERENCES subdistricts (code),
  {DISTRICT},
  name text NOT NULL,
  source_id text,
  {_geom('communities', 'MultiPolygon')},
  CHECK (left(code, 9) = subdistrict_code AND left(code, 6) = district_code)
)""")
    _gist("communities")
    op.execute(f"""
CREATE TABLE grids (
  id bigserial PRIMARY KEY,
  code text NOT NULL CHECK (code ~ '^[0-9]{{14,15}}$'),
  name text,
  grid_type text NOT NULL DEFAULT 'comprehensive' CHECK (grid_type IN ('comprehensive', 'dedicated')),
  community_code char(12) NOT NULL REFERENCES communities (code),
  {DISTRICT},
  source_id text,
  {_geom('grids', 'MultiPolygon')},
  valid_from date NOT NULL DEFAULT current_date,
  valid_to date,
  CHECK (left(code, 12) = community_code AND left(code, 6) = district_code),
  CHECK (valid_to IS NULL OR valid_to >= valid_from)
)""")
    _gist("grids")
    op.execute("CREATE UNIQUE INDEX grids_current_code_ux ON grids (code) WHERE valid_to IS NULL")
    op.execute("CREATE INDEX grids_community_ix ON grids (community_code)")

    op.execute(f"""
CREATE TABLE buildings (
  id bigserial PRIMARY KEY,
  source_id text NOT NULL,
  {DISTRICT},
  community_code char(12) REFERENCES communities (code),
  grid_id bigint REFERENCES grids (id),
  name text,
  address text,
  use text NOT NULL DEFAULT 'residential' CHECK (use IN ({_in(codes(BUILDING_USES))})),
  floors smallint CHECK (floors BETWEEN 1 AND 200),
  height_m real CHECK (height_m > 0),
  households integer NOT NULL DEFAULT 0 CHECK (households >= 0),
  residents integer NOT NULL DEFAULT 0 CHECK (residents >= 0),
  {_geom('buildings', 'MultiPolygon')},
  UNIQUE (district_code, source_id)
)""")
    _gist("buildings")
    op.execute("CREATE INDEX buildings_grid_ix ON buildings (grid_id)")
    op.execute("CREATE INDEX buildings_community_ix ON buildings (community_code)")
    group_cols = ",\n  ".join(f"{g.code} integer NOT NULL DEFAULT 0 CHECK ({g.code} >= 0)" for g in GROUPS)
    op.execute(f"""
CREATE TABLE building_groups (
  building_id bigint PRIMARY KEY REFERENCES buildings (id) ON DELETE CASCADE,
  {DISTRICT},
  {group_cols}
)""")
    op.execute("CREATE INDEX building_groups_district_ix ON building_groups (district_code)")

    op.execute(f"""
CREATE TABLE cameras (
  id bigserial PRIMARY KEY,
  device_id char(20) NOT NULL UNIQUE CHECK (device_id ~ '^[0-9]{{20}}$'),
  source_id text,
  {DISTRICT},
  name text,
  civil_code text CHECK (civil_code ~ '^[0-9]{{2,12}}$'),
  direction_type smallint CHECK (direction_type BETWEEN 1 AND 8),
  azimuth real CHECK (azimuth >= 0 AND azimuth < 360),
  hfov real CHECK (hfov > 0 AND hfov <= 360),
  vfov real CHECK (vfov > 0 AND vfov <= 180),
  max_view_distance real CHECK (max_view_distance > 0),
  ptz_type smallint CHECK (ptz_type BETWEEN 1 AND 7),
  room_type smallint CHECK (room_type IN (1, 2)),
  point_type smallint CHECK (point_type IN (1, 2, 3)),
  status text NOT NULL DEFAULT 'online' CHECK (status IN ('online', 'offline', 'unknown')),
  {_geom('cameras', 'Point')}
)""")
    _gist("cameras")

    op.execute("""
CREATE TABLE facility_categories (
  code text PRIMARY KEY,
  name_zh text NOT NULL,
  name_en text NOT NULL,
  default_radius_m real,
  life_circle text
)""")
    for c in FACILITY_CATEGORIES:
        op.execute(
            "INSERT INTO facility_categories VALUES "
            f"('{c.code}', '{c.zh}', '{c.en}', {c.radius_m if c.radius_m is not None else 'NULL'}, "
            f"{repr(c.life_circle) if c.life_circle else 'NULL'})"
        )
    op.execute(f"""
CREATE TABLE facilities (
  id bigserial PRIMARY KEY,
  source_id text NOT NULL,
  {DISTRICT},
  community_code char(12) REFERENCES communities (code),
  name text,
  category text NOT NULL REFERENCES facility_categories (code),
  floor_area real CHECK (floor_area >= 0),
  capacity integer CHECK (capacity >= 0),
  status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'planned', 'closed')),
  {_geom('facilities', 'Point')},
  UNIQUE (district_code, source_id)
)""")
    _gist("facilities")

    op.execute(f"""
CREATE TABLE roads (
  id bigserial PRIMARY KEY,
  source_id text NOT NULL,
  {DISTRICT},
  name text,
  road_class text,
  walkable boolean NOT NULL DEFAULT true,
  {_geom('roads', 'LineString')},
  UNIQUE (district_code, source_id)
)""")
    _gist("roads")

    op.execute(f"""
CREATE TABLE cadres (
  id bigserial PRIMARY KEY,
  cadre_no text NOT NULL,
  {DISTRICT},
  name text NOT NULL,
  role text NOT NULL CHECK (role IN ({_in(codes(CADRE_ROLES))})),
  community_code char(12) REFERENCES communities (code),
  phone text CHECK (phone ~ '^[0-9+ -]{{5,20}}$'),
  active boolean NOT NULL DEFAULT true,
  {_geom('cadres', 'Point', nullable=True, tiles=False)},
  UNIQUE (district_code, cadre_no)
)""")
    _gist("cadres", tiles=False)

    op.execute(f"""
CREATE TABLE assignments (
  id bigserial PRIMARY KEY,
  cadre_id bigint NOT NULL REFERENCES cadres (id),
  grid_id bigint REFERENCES grids (id),
  building_id bigint REFERENCES buildings (id),
  {DISTRICT},
  role text NOT NULL CHECK (role IN ({_in(codes(CADRE_ROLES))})),
  valid_from date NOT NULL DEFAULT current_date,
  valid_to date,
  version integer NOT NULL DEFAULT 1,
  CHECK ((grid_id IS NULL) <> (building_id IS NULL)),
  CHECK (valid_to IS NULL OR valid_to >= valid_from)
)""")
    op.execute("CREATE INDEX assignments_grid_ix ON assignments (grid_id) WHERE valid_to IS NULL")
    op.execute("CREATE INDEX assignments_cadre_ix ON assignments (cadre_id) WHERE valid_to IS NULL")
    op.execute("CREATE INDEX assignments_district_ix ON assignments (district_code)")
    op.execute(
        "CREATE UNIQUE INDEX assignments_current_ux ON assignments "
        "(cadre_id, coalesce(grid_id, -1), coalesce(building_id, -1)) WHERE valid_to IS NULL"
    )

    op.execute("""
CREATE TABLE audit_log (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now(),
  actor text NOT NULL DEFAULT current_user,
  action text NOT NULL,
  table_name text,
  row_key text,
  district_code char(6),
  before jsonb,
  after jsonb
)""")
    op.execute("CREATE INDEX audit_log_at_ix ON audit_log (at)")

    # The app role reads and edits layers but never owns them and never rewrites history.
    op.execute("""
DO $$
DECLARE app text := coalesce(current_setting('wangge.app_role', true), 'wangge_app');
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = app) THEN
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON districts, subdistricts, communities, grids,
      buildings, building_groups, cameras, facilities, roads, cadres, assignments TO %I', app);
    EXECUTE format('GRANT SELECT ON facility_categories TO %I', app);
    EXECUTE format('GRANT SELECT, INSERT ON audit_log TO %I', app);
    EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO %I', app);
  END IF;
END $$""")


def downgrade() -> None:
    for table in (
        "audit_log", "assignments", "cadres", "roads", "facilities", "facility_categories", "cameras",
        "building_groups", "buildings", "grids", "communities", "subdistricts", "districts",
    ):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
