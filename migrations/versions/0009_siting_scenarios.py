"""Siting scenarios (issue 7): each run of a siting model kept with its inputs, its
status and its results, so that planners can compare runs side by side and export them.

``siting_scenarios`` holds the inputs (category, model, radius, cut-off, p, candidates,
weight, time limit), the solver's status and gap, and the figures compared between runs;
``siting_scenario_sites`` every open site (new and existing) as a point;
``siting_scenario_demand`` where each home was assigned (the catchments and the worst-served
grids are read from it). No foreign keys to the layers on purpose: a scenario records what
was true when it ran, and stays readable after buildings or facilities change.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE siting_scenarios (
  id bigserial PRIMARY KEY,
  name text,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  created_by text NOT NULL DEFAULT current_user,
  category text NOT NULL,
  model text NOT NULL CHECK (model IN ('lscp', 'mclp', 'pmedian')),
  capacitated boolean NOT NULL DEFAULT false,
  radius_m real NOT NULL CHECK (radius_m > 0),
  cutoff_m real NOT NULL CHECK (cutoff_m >= radius_m),
  p integer CHECK (p >= 0),
  candidates text NOT NULL,
  weight text NOT NULL DEFAULT 'households',
  time_limit_s real NOT NULL,
  params jsonb NOT NULL DEFAULT '{}',
  status text NOT NULL,
  gap double precision,
  objective double precision,
  new_sites integer NOT NULL DEFAULT 0,
  total_weight double precision NOT NULL DEFAULT 0,
  covered_weight double precision NOT NULL DEFAULT 0,
  covered_before double precision NOT NULL DEFAULT 0,
  served_weight double precision NOT NULL DEFAULT 0,
  mean_distance_m real,
  p95_distance_m real,
  unreachable_weight double precision NOT NULL DEFAULT 0,
  unserved_weight double precision NOT NULL DEFAULT 0,
  solve_s real,
  worst_grids jsonb NOT NULL DEFAULT '[]',
  notes jsonb NOT NULL DEFAULT '[]'
)""")
    op.execute("CREATE INDEX siting_scenarios_category_ix ON siting_scenarios (category, id DESC)")
    op.execute("""
CREATE TABLE siting_scenario_sites (
  scenario_id bigint NOT NULL REFERENCES siting_scenarios (id) ON DELETE CASCADE,
  serial integer NOT NULL,
  site_key text NOT NULL,
  name text,
  existing boolean NOT NULL,
  facility_id bigint,
  capacity real,
  assigned_weight double precision NOT NULL DEFAULT 0,
  demand_points integer NOT NULL DEFAULT 0,
  geom geometry(Point, 4326) NOT NULL,
  PRIMARY KEY (scenario_id, serial)
)""")
    op.execute("CREATE INDEX siting_scenario_sites_geom_gix ON siting_scenario_sites USING gist (geom)")
    op.execute("""
CREATE TABLE siting_scenario_demand (
  scenario_id bigint NOT NULL REFERENCES siting_scenarios (id) ON DELETE CASCADE,
  building_id bigint NOT NULL,
  grid_code text,
  site_serial integer,
  share real NOT NULL DEFAULT 1,
  weight double precision NOT NULL,
  distance_m real,
  within_radius boolean NOT NULL DEFAULT false,
  reason text
)""")
    op.execute("CREATE INDEX siting_scenario_demand_ix ON siting_scenario_demand (scenario_id, site_serial)")
    op.execute("""
DO $$
DECLARE app text := coalesce(current_setting('wangge.app_role', true), 'wangge_app');
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = app) THEN
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON siting_scenarios, siting_scenario_sites, siting_scenario_demand TO %I', app);
    EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO %I', app);
  END IF;
END $$""")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS siting_scenario_demand, siting_scenario_sites, siting_scenarios CASCADE")
