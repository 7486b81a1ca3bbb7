"""Dashboard sessions (gis/sessions.py): one row per sign-in, found by the SHA-256 of the
cookie's token, ended by idle time, a day's limit, sign-out or the user's deactivation.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25
"""
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
CREATE TABLE user_sessions (
  token_sha256 char(64) PRIMARY KEY,
  user_id integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_seen timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz,
  user_agent text
)""")
    op.execute("CREATE INDEX user_sessions_user_ix ON user_sessions (user_id) WHERE revoked_at IS NULL")
    # The app opens, touches and ends sessions; it never deletes them (they are the sign-in record).
    op.execute("""
DO $$
DECLARE app text := coalesce(current_setting('wangge.app_role', true), 'wangge_app');
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = app) THEN
    EXECUTE format('GRANT SELECT, INSERT, UPDATE (last_seen, revoked_at) ON user_sessions TO %I', app);
  END IF;
END $$""")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS user_sessions")
