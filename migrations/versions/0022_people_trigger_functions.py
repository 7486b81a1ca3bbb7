"""The people tables' trigger functions are not callable by the app role (issue 19's attacker test).

``patrol_tracks_segments()`` (SECURITY DEFINER: it writes ``patrol_segments``) and
``person_access_log_frozen()`` were executable by PUBLIC, as every new function is. A trigger
function called directly only raises an error, but nothing of the app's job needs to call it,
and the attacker test requires every function the app role may execute to be declared. A
trigger fires without its function's EXECUTE privilege (that is checked at CREATE TRIGGER).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06
"""
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

FUNCTIONS = ("patrol_tracks_segments()", "person_access_log_frozen()")


def upgrade() -> None:
    for fn in FUNCTIONS:
        op.execute(f"REVOKE ALL ON FUNCTION {fn} FROM PUBLIC")


def downgrade() -> None:
    for fn in FUNCTIONS:
        op.execute(f"GRANT EXECUTE ON FUNCTION {fn} TO PUBLIC")
