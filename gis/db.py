"""Database engines and transactions.

Two engines on purpose: the app's role owns nothing, so row-level security (migration
0011) binds it; the owner role runs migrations and bulk imports. Every transaction on the
app engine starts by setting the signed scope of whoever the app acts for
(``gis.scope.current()``); without one the policies return no rows.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, create_engine, event

from gis import scope
from gis.settings import get_settings

_ENGINES: dict[str, Engine] = {}


def connect_args() -> dict:
    """psycopg options every engine of the app passes: no server-side prepared statements when
    the connection goes through a pooler in transaction mode (``WANGGE_DB_POOLED``): psycopg
    prepares a query it has run five times under a name (``_pg3_0``) on *its* server connection,
    which PgBouncer hands to other clients between transactions."""
    return {"prepare_threshold": None} if get_settings().db_pooled else {}


def _engine(url: str) -> Engine:
    if url not in _ENGINES:
        _ENGINES[url] = create_engine(url, pool_pre_ping=True, connect_args=connect_args())
    return _ENGINES[url]


def _apply_scope(conn: Connection) -> None:
    """SQLAlchemy ``begin`` hook: the first statement of each app transaction sets the scope."""
    scope.apply(conn.connection.dbapi_connection, scope.current())


def app_engine() -> Engine:
    """The app's engine (role that owns nothing); each transaction carries the current scope."""
    engine = _engine(get_settings().database_url)
    if not event.contains(engine, "begin", _apply_scope):
        event.listen(engine, "begin", _apply_scope)
    return engine


def _no_jit(dbapi_connection, _record) -> None:
    """The owner's sessions run without JIT too: row-level security is FORCEd on the owner
    (migration 0016), and the policies' subplans inflate cost estimates past jit_above_cost,
    where compiling costs more than the query (bench/bench_rls.py: 1.8 s instead of 0.2 s)."""
    cur = dbapi_connection.cursor()
    try:
        cur.execute("SET jit = off")
        dbapi_connection.commit()
    finally:
        cur.close()


def owner_engine() -> Engine:
    engine = _engine(get_settings().owner_database_url)
    if not event.contains(engine, "connect", _no_jit):
        event.listen(engine, "connect", _no_jit)
    return engine


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


BUSY_STATES = ("40P01", "40001", "55P03")  # deadlock, serialization failure, lock not available


def classify_error(exc: BaseException) -> str | None:
    """What a database error means for the person who saw it: ``busy`` (a concurrent change
    won: try again), ``server_stale`` (the server's binaries were upgraded under the running
    cluster, e.g. it cannot load ``plpgsql.so``: restart it), ``unreachable`` (no connection),
    or None (anything else)."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    orig = getattr(exc, "orig", exc)
    state = getattr(orig, "sqlstate", None)
    if state in BUSY_STATES:
        return "busy"
    message = str(orig)
    if "could not load library" in message or "incompatible library" in message or state == "58P01":
        return "server_stale"
    if isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated):
        return "unreachable"
    return None
