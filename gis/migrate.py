"""Schema migrations (Alembic), callable from the CLI and from tests."""
from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text

from gis.scope import secret
from gis.settings import ROOT, get_settings


def _config(url: str | None = None) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = url or get_settings().owner_database_url
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    command.upgrade(_config(url), revision)
    store_scope_secret(url)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    command.downgrade(_config(url), revision)


def store_scope_secret(url: str | None = None) -> bool:
    """Write the scope-signing secret (gis/scope.py) into the owner-only ``wangge_secrets``,
    so the database verifies what the app signs. Runs as the owner after every migration;
    False when the schema predates the table (migration 0011)."""
    engine = create_engine(url or get_settings().owner_database_url)
    try:
        with engine.begin() as conn:
            if conn.execute(text("SELECT to_regclass('wangge_secrets')")).scalar_one() is None:
                return False
            conn.execute(text("""INSERT INTO wangge_secrets (name, value) VALUES ('scope', :v)
                                 ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
                                 WHERE wangge_secrets.value <> EXCLUDED.value"""), {"v": secret()})
            if conn.execute(text("SELECT to_regclass('wangge_config')")).scalar_one() is not None:
                store_config(conn)
            from gis.citus import sync_secret

            sync_secret(conn)  # on Citus, every worker verifies the scope too
        return True
    finally:
        engine.dispose()


# Settings the database enforces itself (migration 0016): a session's expiry and the sign-in
# slow-down and lock are decided by owner functions, never by what the app passes.
ENFORCED = ("session_max_hours", "session_idle_minutes", "auth_lock_after", "auth_lock_minutes",
            "auth_slowdown_after", "auth_slowdown_base_s")


def store_config(conn) -> None:
    """Copy the enforced settings into the owner-only ``wangge_config`` (runs as the owner)."""
    s = get_settings()
    for name in ENFORCED:
        conn.execute(text("""INSERT INTO wangge_config (name, value) VALUES (:n, :v)
                             ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
                             WHERE wangge_config.value <> EXCLUDED.value"""), {"n": name, "v": float(getattr(s, name))})
