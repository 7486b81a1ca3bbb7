"""Test fixtures against the real PostGIS that ``make test`` starts (database wangge_test).

Two kinds of tests share one database:
- ``conn``/``empty``: an owner connection inside a transaction that is rolled back at the
  end; ``empty`` truncates every layer first (TRUNCATE is transactional in PostgreSQL), so
  import tests start from nothing and leave the committed demo untouched;
- ``demo``: the demo sub-district, loaded and committed once per session, for reads and
  for the browser tests' server.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

os.environ.setdefault("WANGGE_DB_NAME", "wangge_test")

from gis.db import owner_engine  # noqa: E402
from gis.settings import ROOT, get_settings  # noqa: E402

SHARED = Path(os.environ.get("WANGGE_SHARED_DIR", ROOT.parent / "shared"))
# The shared copy when it is beside the repository, else the vendored one (same bytes, ODbL).
MONACO = next(p for p in (SHARED / "data" / "monaco-2023-12-26.osm.pbf", ROOT / "tests" / "data" / "monaco-2023-12-26.osm.pbf") if p.exists())
WUCHANG = SHARED / "data" / "wuhan-wuchang-streets.gpkg"
LAYER_TABLES = "assignments, cadres, building_groups, buildings, cameras, facilities, roads, grids, communities, subdistricts, districts, audit_log"


def pytest_configure(config: pytest.Config) -> None:
    name = get_settings().db_name
    if not name.endswith("_test") and not os.environ.get("WANGGE_ALLOW_ANY_DB"):
        raise pytest.UsageError(f"tests truncate tables: refusing to run against database {name!r} (set WANGGE_DB_NAME=wangge_test)")


@pytest.fixture(scope="session")
def demo() -> dict:
    """The demo sub-district, committed (loaded fresh once per session)."""
    from layers import demo as demo_data

    demo_data.load(force=True)
    with owner_engine().connect() as c:
        return {row[0]: row[1] for row in c.execute(text(
            "SELECT 'buildings', count(*) FROM buildings UNION ALL SELECT 'grids', count(*) FROM grids WHERE valid_to IS NULL"))}


@pytest.fixture(scope="session", autouse=True)
def scope_secret() -> None:
    """The database verifies the scope the app signs with the secret from the settings
    (gis/scope.py); store it, in case the test database was migrated under another one."""
    from gis.migrate import store_scope_secret

    store_scope_secret()


@pytest.fixture(autouse=True)
def system_scope() -> Iterator[None]:
    """Tests act as the system (like the CLI) unless they set another scope themselves: the
    app role's row-level policies then show every row (tests/test_security_db.py proves the rest)."""
    from gis.scope import SYSTEM, use_scope

    with use_scope(SYSTEM):
        yield


@pytest.fixture
def conn() -> Iterator[Connection]:
    """An owner connection whose work is rolled back after the test."""
    with owner_engine().connect() as c:
        tx = c.begin()
        try:
            yield c
        finally:
            tx.rollback()


@pytest.fixture
def empty(conn: Connection) -> Connection:
    """Like ``conn``, with every layer emptied first (inside the rolled-back transaction)."""
    conn.execute(text(f"TRUNCATE {LAYER_TABLES} RESTART IDENTITY CASCADE"))
    return conn


def count(conn: Connection, table: str, where: str = "TRUE") -> int:
    return int(conn.execute(text(f"SELECT count(*) FROM {table} WHERE {where}")).scalar_one())


@pytest.fixture(scope="session")
def accounts(demo: dict) -> dict:
    """One signed-in-able user per role (tests/accounts.py)."""
    from tests.accounts import make_accounts

    return make_accounts()
