"""Database states named for what they are (issue 19): a deadlock or serialization failure is
retried and then reported as busy (exit 5), not as an unreachable database; a server upgraded
under its running cluster is detected by the setup and named by the CLI."""
from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from gis.db import classify_error, owner_engine

ROOT = Path(__file__).resolve().parents[1]


def _real_deadlock() -> DBAPIError:
    """Two transactions that lock two rows in opposite orders: PostgreSQL aborts one."""
    engine = owner_engine()
    with engine.begin() as c:
        c.execute(text("DROP TABLE IF EXISTS deadlock_probe_19"))
        c.execute(text("CREATE TABLE deadlock_probe_19 (id int PRIMARY KEY, v int)"))
        c.execute(text("INSERT INTO deadlock_probe_19 VALUES (1, 0), (2, 0)"))
    errors: list[DBAPIError] = []
    barrier = threading.Barrier(2)

    def worker(first: int, second: int) -> None:
        try:
            with engine.begin() as c:
                c.execute(text("UPDATE deadlock_probe_19 SET v = v + 1 WHERE id = :i"), {"i": first})
                barrier.wait()
                c.execute(text("UPDATE deadlock_probe_19 SET v = v + 1 WHERE id = :i"), {"i": second})
        except DBAPIError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=a) for a in ((1, 2), (2, 1))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        with engine.begin() as c:
            c.execute(text("DROP TABLE IF EXISTS deadlock_probe_19"))
    assert len(errors) == 1
    return errors[0]


def test_a_deadlock_is_busy_and_retried_then_exit_5(demo, monkeypatch) -> None:
    from cli import main as cli_main

    exc = _real_deadlock()
    assert classify_error(exc) == "busy"
    calls = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) < 3:
            raise exc

    monkeypatch.setattr(cli_main, "app", flaky)
    monkeypatch.setattr("time.sleep", lambda s: None)
    cli_main.main()  # two deadlocks, then it goes through
    assert len(calls) == 3

    def always() -> None:
        calls.append(1)
        raise exc

    calls.clear()
    monkeypatch.setattr(cli_main, "app", always)
    with pytest.raises(SystemExit) as stop:
        cli_main.main()
    assert stop.value.code == cli_main.EXIT_BUSY == 5 and len(calls) == cli_main.BUSY_RETRIES + 1


def test_a_stale_server_and_an_unreachable_one_are_told_apart() -> None:
    stale = OperationalError("SELECT 1", {}, Exception('could not load library "/usr/lib/postgresql/15/lib/plpgsql.so": '
                                                        "undefined symbol: pg_encoding_max_length_wrapper"))
    assert classify_error(stale) == "server_stale"
    gone = OperationalError("connect", {}, Exception("connection refused"))
    assert classify_error(gone) == "unreachable"


def test_setup_notices_a_server_older_than_its_binaries() -> None:
    """Without restarting anything: the versions are given as the setup would read them."""
    env = {**os.environ, "WANGGE_PG_INSTALLED_VERSION": "15.20", "WANGGE_PG_RUNNING_VERSION": "15.18"}
    r = subprocess.run([str(ROOT / "scripts/bootstrap.sh"), "cluster-check"], env=env, capture_output=True, text=True)
    assert r.returncode == 10 and "older than the installed server binaries" in r.stdout and "plpgsql.so" in r.stdout
    for installed, running in (("15.18", "15.18"), ("15.9", "15.18")):
        env |= {"WANGGE_PG_INSTALLED_VERSION": installed, "WANGGE_PG_RUNNING_VERSION": running}
        assert subprocess.run([str(ROOT / "scripts/bootstrap.sh"), "cluster-check"], env=env, capture_output=True).returncode == 0
    # and the real machine, as it runs now
    real = subprocess.run([str(ROOT / "scripts/bootstrap.sh"), "cluster-check"], capture_output=True, text=True)
    assert real.returncode in (0, 10)


def test_every_command_refuses_an_unknown_community_or_layer(demo, monkeypatch) -> None:
    """Issue 19: each command with ``--community`` (found from the CLI itself, so a new one is
    tried too) exits 1 on a code that names no community, at once; so does an unknown layer."""
    import json as _json

    import typer
    from typer.testing import CliRunner

    from cli.main import app, exit_code
    from gis.errors import WanggeError

    def commands(group, path=()):
        for name, cmd in getattr(group, "commands", {}).items():
            yield from commands(cmd, (*path, name))
        if not getattr(group, "commands", None):
            yield path, group

    def invoke(args):
        """The command as ``main()`` runs it: an error of the family becomes its exit code and message."""
        r = CliRunner().invoke(app, args)
        if isinstance(r.exception, WanggeError):
            return exit_code(r.exception), r.output + r.exception.human()
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            raise r.exception
        return r.exit_code, r.output

    root = typer.main.get_command(app)
    tried = []
    for path, cmd in commands(root):
        if any("--community" in p.opts for p in cmd.params):
            required = {p.name: p for p in cmd.params if p.required and "--community" not in p.opts}
            args = [*path, "--community", "NONSENSE"]
            if path[0] == "user":  # a user's name comes first; a secretary must name a community
                with owner_engine().connect() as c:
                    someone = c.execute(text("SELECT username FROM users ORDER BY id LIMIT 1")).scalar_one_or_none()
                if path[-1] != "add" and someone is None:
                    continue
                who = "atk_unknown_community" if path[-1] == "add" else someone
                args = [*path, who, "--community", "NONSENSE"] + (["--role", "secretary"] if path[-1] == "add" else [])
                monkeypatch.setenv("WANGGE_ADMIN_PASSWORD", "a-long-enough-password")
            if "category" in required:
                args += ["--category", "community_service_station"]
            started = time.monotonic()
            code, output = invoke(args)
            assert code == 1 and "NONSENSE" in output, (args, code, output[-300:])
            assert time.monotonic() - started < 30, args
            tried.append(" ".join(path))
    assert {"grid check", "compliance", "coverage cameras", "coverage services", "grid delineate"} <= set(tried), tried
    for args in (["export", "NONSENSE", "/tmp/never.gpkg"], ["import", "NONSENSE", str(ROOT / "README.md")]):
        r = CliRunner().invoke(app, args, catch_exceptions=False)
        assert r.exit_code == 1 and "unknown layer" in r.output, (args, r.output[-300:])
    for args in (["coverage", "cameras", "--detail", "NONSENSE"], ["coverage", "services", "--category", "NONSENSE"]):
        r = CliRunner().invoke(app, args, catch_exceptions=False)
        assert r.exit_code == 1 and "NONSENSE" in r.output, (args, r.output[-300:])
    monkeypatch.setattr("sys.argv", ["wangge", "grid", "check", "--community", "NONSENSE", "--json"])
    r = CliRunner().invoke(app, ["grid", "check", "--community", "NONSENSE", "--json"], catch_exceptions=False)
    assert r.exit_code == 1 and _json.loads(r.output)["ok"] is False
