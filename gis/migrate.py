"""Schema migrations (Alembic), callable from the CLI and from tests."""
from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text

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
    from gis.scope import secret

    engine = create_engine(url or get_settings().owner_database_url)
    try:
        with engine.begin() as conn:
            if conn.execute(text("SELECT to_regclass('wangge_secrets')")).scalar_one() is None:
                return False
            conn.execute(text("""INSERT INTO wangge_secrets (name, value) VALUES ('scope', :v)
                                 ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
                                 WHERE wangge_secrets.value <> EXCLUDED.value"""), {"v": secret()})
            from gis.citus import sync_secret

            sync_secret(conn)  # on Citus, every worker verifies the scope too
        return True
    finally:
        engine.dispose()
