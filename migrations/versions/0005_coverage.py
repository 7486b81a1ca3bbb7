"""Coverage results (issue 6): camera views and their coverage, walking distances to
facilities, standards compliance, each stored with when it was computed and from what.

Every result row carries ``computed_at`` and a fingerprint (md5) of the input rows it was
computed from, so the dashboard can tell a stale figure from a fresh one and an edit
recomputes only what it touches (analysis/freshness.py). No foreign keys to the layers on
purpose: when a camera or facility is deleted, its stored row is what tells the next
refresh where it used to be and which grids to recompute.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLES = ("coverage_runs", "camera_views", "camera_coverage", "camera_key_places", "service_buildings",
          "service_facilities", "service_distances", "compliance_results")


def upgrade() -> None:
    op.execute("""
CREATE TABLE coverage_runs (
  id bigserial PRIMARY KEY,
  analysis text NOT NULL CHECK (analysis IN ('cameras', 'services', 'compliance')),
  mode text NOT NULL CHECK (mode IN ('full', 'incremental')),
  detail_level text,
  computed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  computed_by text NOT NULL DEFAULT current_user,
  settings jsonb NOT NULL DEFAULT '{}',
  settings_fp text NOT NULL,
  inputs jsonb NOT NULL DEFAULT '{}',
  touched jsonb NOT NULL DEFAULT '{}',
  seconds real
)""")
    op.execute("CREATE INDEX coverage_runs_ix ON coverage_runs (analysis, detail_level, id DESC)")
    op.execute("""
CREATE TABLE camera_views (
  camera_id bigint NOT NULL,
  detail_level text NOT NULL,
  run_id bigint NOT NULL REFERENCES coverage_runs (id),
  computed_at timestamptz NOT NULL,
  camera_fp text NOT NULL,
  obstacles_fp text NOT NULL,
  settings_fp text NOT NULL,
  device_id text,
  district_code char(6),
  status text,
  counted boolean NOT NULL,
  shape text NOT NULL CHECK (shape IN ('sector', 'circle', 'indoor')),
  azimuth real,
  hfov real NOT NULL,
  range_m real NOT NULL,
  dori_range_m real NOT NULL,
  range_source text NOT NULL,
  assumptions text[] NOT NULL DEFAULT '{}',
  sector_m2 double precision NOT NULL,
  visible_m2 double precision NOT NULL,
  geom geometry(MultiPolygon, 4326),
  PRIMARY KEY (camera_id, detail_level)
)""")
    op.execute("CREATE INDEX camera_views_geom_gix ON camera_views USING gist (geom)")
    op.execute("""
CREATE TABLE camera_coverage (
  detail_level text NOT NULL,
  scope text NOT NULL CHECK (scope IN ('grid', 'community', 'subdistrict')),
  code text NOT NULL,
  name text,
  community_code char(12),
  subdistrict_code char(9),
  measured boolean NOT NULL,
  run_id bigint NOT NULL REFERENCES coverage_runs (id),
  computed_at timestamptz NOT NULL,
  inputs_fp text,
  settings_fp text NOT NULL,
  road_m double precision NOT NULL DEFAULT 0,
  road_covered_m double precision NOT NULL DEFAULT 0,
  open_m2 double precision NOT NULL DEFAULT 0,
  open_covered_m2 double precision NOT NULL DEFAULT 0,
  facade_m double precision NOT NULL DEFAULT 0,
  facade_covered_m double precision NOT NULL DEFAULT 0,
  key_places integer NOT NULL DEFAULT 0,
  key_places_covered integer NOT NULL DEFAULT 0,
  cameras integer NOT NULL DEFAULT 0,
  cameras_counted integer NOT NULL DEFAULT 0,
  PRIMARY KEY (detail_level, scope, code)
)""")
    op.execute("""
CREATE TABLE camera_key_places (
  detail_level text NOT NULL,
  facility_id bigint NOT NULL,
  unit_code text,
  name text,
  category text,
  covered boolean NOT NULL,
  cameras bigint[] NOT NULL DEFAULT '{}',
  run_id bigint NOT NULL REFERENCES coverage_runs (id),
  computed_at timestamptz NOT NULL,
  PRIMARY KEY (detail_level, facility_id)
)""")
    op.execute("""
CREATE TABLE service_buildings (
  building_id bigint PRIMARY KEY,
  run_id bigint NOT NULL REFERENCES coverage_runs (id),
  computed_at timestamptz NOT NULL,
  building_fp text NOT NULL,
  households integer NOT NULL,
  road_id bigint,
  snap_m real
)""")
    op.execute("""
CREATE TABLE service_facilities (
  facility_id bigint PRIMARY KEY,
  run_id bigint NOT NULL REFERENCES coverage_runs (id),
  computed_at timestamptz NOT NULL,
  facility_fp text NOT NULL,
  category text NOT NULL,
  counted boolean NOT NULL,
  road_id bigint,
  snap_m real,
  geom geometry(Point, 4326) NOT NULL
)""")
    op.execute("""
CREATE TABLE service_distances (
  building_id bigint NOT NULL,
  category text NOT NULL,
  network_m real,
  facility_id bigint,
  straight_m real,
  straight_facility_id bigint,
  run_id bigint NOT NULL REFERENCES coverage_runs (id),
  computed_at timestamptz NOT NULL,
  PRIMARY KEY (building_id, category)
)""")
    op.execute("CREATE INDEX service_distances_facility_ix ON service_distances (facility_id)")
    op.execute("CREATE INDEX service_distances_straight_facility_ix ON service_distances (straight_facility_id)")
    op.execute("""
CREATE TABLE compliance_results (
  community_code char(12) NOT NULL,
  rule text NOT NULL,
  rule_name text NOT NULL,
  setting text,
  threshold double precision,
  value double precision,
  passed boolean NOT NULL,
  detail text,
  run_id bigint NOT NULL REFERENCES coverage_runs (id),
  computed_at timestamptz NOT NULL,
  inputs_fp text NOT NULL,
  PRIMARY KEY (community_code, rule)
)""")
    op.execute(f"""
DO $$
DECLARE app text := coalesce(current_setting('wangge.app_role', true), 'wangge_app');
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = app) THEN
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON {", ".join(TABLES)} TO %I', app);
    EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO %I', app);
  END IF;
END $$""")


def downgrade() -> None:
    op.execute(f"DROP TABLE IF EXISTS {', '.join(reversed(TABLES))} CASCADE")
