"""Database engines and transactions.

Two engines on purpose: the app's role owns nothing, so row-level security (added with
the security work) binds it; the owner role runs migrations and bulk imports.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from sqlalchemy import Connection, Engine, create_engine

from gis.settings import get_settings


_ENGINES: dict[str, Engine] = {}


def _engine(url: str) -> Engine:
    if url not in _ENGINES:
        _ENGINES[url] = create_engine(url, pool_pre_ping=True)
    return _ENGINES[url]


def app_engine() -> Engine:
    return _engine(get_settings().database_url)


def owner_engine() -> Engine:
    return _engine(get_settings().owner_database_url)


@contextmanager
def transaction(owner: bool = False) -> Iterator[Connection]:
    """One transaction: everything inside lands together or not at all."""
    engine = owner_engine() if owner else app_engine()
    with engine.begin() as conn:
        yield conn


def reset_engines() -> None:
    """Forget cached engines (tests switch DATABASE_URL between databases)."""
    for engine in _ENGINES.values():
        engine.dispose()
    _ENGINES.clear()
    get_settings.cache_clear()
