"""Grid drafts: automatic delineation proposals kept for review, editing and acceptance.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE grid_drafts (
  id bigserial PRIMARY KEY,
  community_code char(12) NOT NULL REFERENCES communities (code),
  district_code char(6) NOT NULL CHECK (district_code ~ '^[0-9]{6}$'),
  created_at timestamptz NOT NULL DEFAULT now(),
  created_by text NOT NULL DEFAULT current_user,
  params jsonb NOT NULL DEFAULT '{}',
  problems jsonb NOT NULL DEFAULT '[]',
  status text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'accepted', 'discarded')),
  decided_at timestamptz
)""")
    op.execute("""
CREATE TABLE grid_draft_parts (
  draft_id bigint NOT NULL REFERENCES grid_drafts (id) ON DELETE CASCADE,
  serial integer NOT NULL,
  district_code char(6) NOT NULL,
  households integer NOT NULL DEFAULT 0,
  residents integer NOT NULL DEFAULT 0,
  buildings integer NOT NULL DEFAULT 0,
  compactness real,
  standing text,
  note text,
  geom geometry(MultiPolygon, 4326) NOT NULL CHECK (ST_IsValid(geom)),
  PRIMARY KEY (draft_id, serial)
)""")
    op.execute("CREATE INDEX grid_draft_parts_geom_gix ON grid_draft_parts USING gist (geom)")
    op.execute("""
DO $$
DECLARE app text := coalesce(current_setting('wangge.app_role', true), 'wangge_app');
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = app) THEN
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON grid_drafts, grid_draft_parts TO %I', app);
    EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO %I', app);
  END IF;
END $$""")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS grid_draft_parts, grid_drafts CASCADE")
