"""The app through a real PgBouncer in transaction mode (deploy/serve-multi.sh's own configuration).

The worst case on purpose: PgBouncer is started with ONE server connection
(``WANGGE_PGBOUNCER_POOL=1``), so every client's transaction runs on the same PostgreSQL
backend, one after the other. If anything the app sets outlived its transaction — the signed
scope above all — the next client's transaction would see it. What is checked:

- the scope set in one transaction is gone in the next client's transaction on the same server
  connection (and a session-level SET *would* leak there: the hazard is real, the test can fail);
- scopes of several users, in threads, through PgBouncer, each see exactly their own rows;
- sign-in, session resolution and sign-out (the owner's SECURITY DEFINER functions) work through it;
- the app's path (sign-in, pages' reads, a tile) leaves no session-level setting behind;
- prepared statements: psycopg's server-side ones break through PgBouncer 1.18 (shown), and the
  app's engines with ``WANGGE_DB_POOLED=true`` prepare none (the same query many times, interleaved).

Skipped, with the reason, when PgBouncer is not installed (``MULTI=1 scripts/bootstrap.sh system``
installs it; ``make test`` does).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from gis import scope as sc
from gis.settings import ROOT, get_settings

SCRIPT = ROOT / "deploy" / "serve-multi.sh"
PGBOUNCER = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)
# parameters PgBouncer itself keeps per client (it SETs them on the server connection as clients change)
TRACKED = {"client_encoding", "DateStyle", "TimeZone", "standard_conforming_strings", "application_name", "IntervalStyle"}

pytestmark = pytest.mark.skipif(PGBOUNCER is None, reason="PgBouncer is not installed (MULTI=1 scripts/bootstrap.sh system installs it)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(pool: int) -> Iterator[int]:
    run = Path(tempfile.mkdtemp(prefix="wangge-pgb-"))
    run.chmod(0o755)
    port = _free_port()
    env = {**os.environ, "WANGGE_MULTI_DIR": str(run), "WANGGE_PGBOUNCER_PORT": str(port), "WANGGE_PGBOUNCER_POOL": str(pool)}
    subprocess.run([str(SCRIPT), "pgbouncer"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=60)
    try:
        yield port
    finally:
        subprocess.run([str(SCRIPT), "stop"], cwd=ROOT, env=env, check=False, capture_output=True, timeout=60)
        shutil.rmtree(run, ignore_errors=True)


@pytest.fixture(scope="module")
def bouncer() -> Iterator[int]:
    """PgBouncer as deploy/serve-multi.sh configures it, with one server connection; its port."""
    yield from _start(1)


@pytest.fixture(scope="module")
def bouncer2() -> Iterator[int]:
    """The same with two server connections: a failed sign-in counts the failure in a transaction
    of its own while its first one is open (layers/users.py), so it needs two at once (which is
    why serve-multi.sh sizes the pool above the apps' connections)."""
    yield from _start(2)


def _dsn(port: int) -> str:
    s = get_settings()
    return f"host=127.0.0.1 port={port} dbname={s.db_name} user={s.db_app_user} password={s.db_app_password}"


def _raw(port: int, **kw):
    import psycopg

    return psycopg.connect(_dsn(port), prepare_threshold=None, **kw)


@pytest.fixture
def pooled_app(bouncer: int, monkeypatch) -> Iterator[None]:
    """The app's engines (gis.db, the tiles') pointed at PgBouncer as serve-multi.sh starts the apps:
    DATABASE_URL through it, the owner's straight, WANGGE_DB_POOLED=true."""
    yield from _point_app_at(bouncer, monkeypatch)


@pytest.fixture
def pooled_app2(bouncer2: int, monkeypatch) -> Iterator[None]:
    yield from _point_app_at(bouncer2, monkeypatch)


def _point_app_at(port: int, monkeypatch) -> Iterator[None]:
    from sqlalchemy.engine import make_url

    from gis.db import reset_engines
    from webapp import tiles

    s = get_settings()
    pooled = make_url(s.database_url).set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    monkeypatch.setenv("DATABASE_URL", pooled)
    monkeypatch.setenv("OWNER_DATABASE_URL", s.owner_database_url)
    monkeypatch.setenv("WANGGE_DB_POOLED", "true")
    reset_engines()
    tiles._engine.cache_clear()
    tiles.SESSIONS._items.clear()
    yield
    monkeypatch.undo()
    reset_engines()
    tiles._engine.cache_clear()
    tiles.SESSIONS._items.clear()


def _scopes(accounts: dict) -> dict[str, sc.Scope | None]:
    a = accounts
    return {"worker": sc.Scope(a["worker"].username, "worker", a["worker"].communities, a["worker"].grids),
            "secretary": sc.Scope(a["secretary"].username, "secretary", a["secretary"].communities),
            "leader": sc.Scope(a["leader"].username, "leader"), "none": None}


def _expected(scopes: dict) -> dict[str, int]:
    """Buildings each scope reads, straight from PostgreSQL (no pooler)."""
    import psycopg

    s = get_settings()
    out = {}
    with psycopg.connect(f"host={s.db_host} port={s.db_port} dbname={s.db_name} user={s.db_app_user} "
                         f"password={s.db_app_password}") as c:
        for name, scope in scopes.items():
            with c.transaction():
                sc.apply(c, scope)
                out[name] = c.execute("SELECT count(*) FROM buildings").fetchone()[0]
    return out


def test_every_client_shares_the_one_server_connection(bouncer: int) -> None:
    with _raw(bouncer, autocommit=True) as a, _raw(bouncer, autocommit=True) as b:
        assert a.execute("SELECT pg_backend_pid()").fetchone() == b.execute("SELECT pg_backend_pid()").fetchone()


def test_scope_ends_with_its_transaction(bouncer: int, demo: dict, accounts: dict) -> None:
    scopes = _scopes(accounts)
    expected = _expected(scopes)
    assert 0 < expected["worker"] < expected["leader"] and expected["none"] == 0
    with _raw(bouncer) as a, _raw(bouncer) as b:
        with a.transaction():
            sc.apply(a, scopes["leader"])
            pid_a = a.execute("SELECT pg_backend_pid()").fetchone()[0]
            assert a.execute("SELECT count(*) FROM buildings").fetchone()[0] == expected["leader"]
        with b.transaction():  # another client, next on the same server connection, sets nothing
            pid_b = b.execute("SELECT pg_backend_pid()").fetchone()[0]
            assert b.execute("SELECT coalesce(current_setting('wangge.scope', true), '')").fetchone()[0] == ""
            assert b.execute("SELECT count(*) FROM buildings").fetchone()[0] == 0
        assert pid_a == pid_b


def test_a_session_level_set_would_leak(bouncer: int, demo: dict, accounts: dict) -> None:
    """Why the app never uses one: the same value set with plain SET (not SET LOCAL) is read by
    the next client. (Reset afterwards.)"""
    token = sc.token(_scopes(accounts)["leader"])
    with _raw(bouncer, autocommit=True) as a, _raw(bouncer, autocommit=True) as b:
        a.execute(f"SET wangge.scope = '{token}'")
        try:
            assert b.execute("SELECT current_setting('wangge.scope', true)").fetchone()[0] == token
            assert b.execute("SELECT count(*) FROM buildings").fetchone()[0] > 0
        finally:
            a.execute("RESET wangge.scope")
        assert b.execute("SELECT count(*) FROM buildings").fetchone()[0] == 0


def test_scopes_in_parallel_each_see_their_own(pooled_app, demo: dict, accounts: dict) -> None:
    """Four users' transactions interleaved through PgBouncer's one server connection, on the
    app's own engine: every count is that user's, never another's."""
    from gis.db import transaction

    scopes = _scopes(accounts)
    expected = _expected(scopes)
    seen: list[tuple[str, int, int]] = []
    failures: list[BaseException] = []

    def user(name: str) -> None:
        try:
            with sc.use_scope(scopes[name]):
                for _ in range(15):
                    with transaction() as conn:
                        n = conn.execute(text("SELECT count(*) FROM buildings")).scalar_one()
                        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
                    seen.append((name, n, pid))
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=user, args=(name,)) for name in scopes for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures, failures
    assert len(seen) == len(threads) * 15
    assert len({pid for _, _, pid in seen}) == 1  # all on one server connection
    wrong = [(name, n) for name, n, _ in seen if n != expected[name]]
    assert not wrong, f"a transaction saw another scope's rows: {wrong[:5]} (expected {expected})"


def test_sign_in_pages_and_tiles_through_pgbouncer_leave_no_session_setting(pooled_app2, bouncer2: int, demo: dict,
                                                                             accounts: dict) -> None:
    from gis.db import transaction
    from webapp import sessions, signin, tiles

    worker = accounts["worker"]
    token, code, _ = signin.sign_in(worker.username, worker.password, "pytest-pgbouncer")
    assert token and code is None
    wrong, code, _ = signin.sign_in(worker.username, "not the password", "pytest-pgbouncer")
    assert wrong is None and code == "bad_credentials"
    with sc.use_scope(sc.SYSTEM), transaction() as conn:
        status, user = sessions.signed_in_user(conn, token)
    assert status == "ok" and user.username == worker.username
    with sc.use_scope(user.scope()), transaction() as conn:  # what a page reads, under the user's scope
        from analysis import overview

        figures = overview.figures(conn)
        assert figures
        mvt = tiles.tile(conn, "grids", 2, 1, 0, size=512)  # the quarter of the world holding the demo
        assert isinstance(mvt, bytes)
    with sc.use_scope(sc.SYSTEM), transaction() as conn:
        sessions.close_session(conn, token)
    with sc.use_scope(sc.SYSTEM), transaction() as conn:
        assert sessions.signed_in_user(conn, token)[0] != "ok"
    # what is left on the two server connections all of this ran on (two clients at once hold both)
    with _raw(bouncer2) as c, _raw(bouncer2) as d:
        pids = set()
        for x in (c, d):
            x.execute("SELECT 1")  # in a transaction from here: each client holds its own server connection
            pids.add(x.execute("SELECT pg_backend_pid()").fetchone()[0])
            left = x.execute("""SELECT name, setting FROM pg_settings WHERE source = 'session'""").fetchall()
            assert [r for r in left if r[0] not in TRACKED] == []
            assert x.execute("SELECT coalesce(current_setting('wangge.scope', true), '')").fetchone()[0] == ""
            assert x.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0] == 0
        assert len(pids) == 2


def test_prepared_statements(pooled_app, bouncer: int, demo: dict) -> None:
    """psycopg prepares a query after a few runs under a name on its server connection; through
    PgBouncer the next client's prepare of the same name fails. The app's engines prepare none."""
    import psycopg

    from gis.db import app_engine

    with psycopg.connect(_dsn(bouncer), autocommit=True, prepare_threshold=0) as a, \
            psycopg.connect(_dsn(bouncer), autocommit=True, prepare_threshold=0) as b:
        a.execute("SELECT 1 + %s", [1])
        with pytest.raises(psycopg.errors.DuplicatePreparedStatement):
            b.execute("SELECT 1 + %s", [1])
        a.execute("DEALLOCATE ALL")
    engine = app_engine()
    with sc.use_scope(sc.SYSTEM):
        c1, c2 = engine.connect(), engine.connect()
        try:
            for i in range(20):
                for c in (c1, c2):
                    with c.begin():
                        assert c.execute(text("SELECT count(*) + :i FROM grids WHERE valid_to IS NULL"), {"i": i}).scalar_one() \
                            == demo["grids"] + i
        finally:
            c1.close()
            c2.close()


def test_sign_in_holds_no_connection_while_hashing(pooled_app2, demo: dict, accounts: dict, monkeypatch) -> None:
    """The Argon2id hashing (0.3 s of CPU alone, tens of seconds when fifty people sign in at
    once) runs outside any transaction: a transaction open for it would hold a pooled connection,
    and through PgBouncer a server connection (bench/bench_load.py saw the pool run dry: HTTP 500)."""
    from gis.db import app_engine
    from layers import users
    from webapp import signin

    held: list[int] = []
    real = users._compute

    def watched(*args, **kw):
        held.append(app_engine().pool.checkedout())
        return real(*args, **kw)

    monkeypatch.setattr(users, "_compute", watched)
    worker = accounts["worker"]
    token, code, _ = signin.sign_in(worker.username, worker.password, "pytest-pgbouncer")
    assert token and code is None
    assert held == [0], f"connections checked out while hashing: {held}"
    token, code, _ = signin.sign_in(worker.username, "not the password", "pytest-pgbouncer")
    assert token is None and code == "bad_credentials"
    assert held == [0, 0]
