"""Schema migrations (Alembic), callable from the CLI and from tests."""
from __future__ import annotations

from alembic import command
from alembic.config import Config

from gis.settings import ROOT, get_settings


def _config(url: str | None = None) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = url or get_settings().owner_database_url
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    command.upgrade(_config(url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    command.downgrade(_config(url), revision)
