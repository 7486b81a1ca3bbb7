"""``wangge events …`` and ``wangge apikey …`` as a user runs them: strict JSON, exit codes,
one whole lifecycle from the command line, an import refused then accepted. These commit;
what they wrote is deleted afterwards."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from gis import scope as scopes
from gis.db import app_engine, owner_engine
from gis.scope import SYSTEM, use_scope
from gis.settings import get_settings

WANGGE = Path(sys.executable).parent / "wangge"
pytestmark = pytest.mark.skipif(not WANGGE.exists(), reason="the wangge console command is not installed")


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANGGE_DB_NAME": get_settings().db_name}
    return subprocess.run([str(WANGGE), *args], capture_output=True, text=True, timeout=120, env=env)


def strict(out: str):
    return json.loads(out, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))


@pytest.fixture
def cleanup(demo):
    yield
    with owner_engine().begin() as c:
        scopes.apply(c.connection.dbapi_connection, SYSTEM)
        c.execute(text("DELETE FROM events WHERE external_id LIKE 'import:clitest%' OR description = 'cli test'"))
        c.execute(text("DELETE FROM api_keys WHERE name = 'clitest_hotline'"))


def test_lifecycle_from_the_command_line(cleanup):
    with owner_engine().connect() as c:
        x, y = c.execute(text("SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM grids WHERE valid_to IS NULL ORDER BY code LIMIT 1")).one()
    r = run("events", "report", "E0101", "--lon", str(x), "--lat", str(y), "--description", "cli test", "--json")
    assert r.returncode == 0, r.stderr
    i = str(strict(r.stdout)["id"])
    r = run("events", "handle", i, "--json")
    assert r.returncode == 1 and strict(r.stdout)["reason"] == "wrong_status" and "Traceback" not in r.stderr
    for args in (["file", i], ["dispatch", i], ["handle", i, "--note", "已清运"], ["verify", i, "--fail", "--note", "未清干净"],
                 ["handle", i, "--note", "再次清运"], ["verify", i], ["close", i]):
        r = run("events", *args, "--json")
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    assert strict(r.stdout)["status"] == "closed"
    case = strict(run("events", "show", i, "--json").stdout)["case"]
    assert case["rework_count"] == 1 and case["unit_code"] == "huanwei" and len(case["transitions"]) == 8
    k = strict(run("events", "kpi", "--by", "grid", "--json").stdout)
    assert k["ok"] and sum(row["filed"] for row in k["rows"]) >= 1


def test_import_refused_then_accepted_and_kpi(cleanup, tmp_path):
    with owner_engine().connect() as c:
        x, y = c.execute(text("SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM grids WHERE valid_to IS NULL ORDER BY code LIMIT 1")).one()
    head = "编号,小类代码,经度,纬度,上报时间,立案时间,派遣时间,处置时间,核查时间,结案时间,返工次数,缓办\n"
    bad = tmp_path / "bad.csv"
    bad.write_text(head + f"clitest1,E0101,{x},{y},2026-03-02 08:40,2026-03-02 08:50,2026-03-02 09:00,2026-03-01 15:00,,,0,否\n", encoding="utf-8")
    r = run("events", "import", str(bad), "--json")
    assert r.returncode == 1 and strict(r.stdout)["problems"][0]["row"] == 2
    good = tmp_path / "good.csv"
    good.write_text(head + f"clitest1,E0101,{x},{y},2026-03-02 08:40,2026-03-02 08:50,2026-03-02 09:00,2026-03-02 15:00,"
                    f"2026-03-02 16:00,2026-03-03 10:00,0,否\n", encoding="gb18030")
    r = run("events", "import", str(good), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    k = strict(run("events", "kpi", "--period", "2026-03", "--by", "community", "--json").stdout)
    assert sum(row["closed_on_time"] for row in k["rows"]) >= 1
    assert all(row["rework_rate"] is None or 0 <= row["rework_rate"] <= 1 for row in k["rows"])
    assert run("events", "kpi", "--period", "2026-13").returncode == 2


def test_apikey_add_and_revoke(cleanup):
    r = run("apikey", "add", "clitest_hotline", "--json")
    key = strict(r.stdout)["key"]
    with use_scope(None), app_engine().connect() as c:  # as the Open311 endpoint asks, before any scope
        assert c.execute(text("SELECT apikey_check(:k)"), {"k": key}).scalar() == "clitest_hotline"
        assert c.execute(text("SELECT apikey_check('guess')")).scalar() is None
    with owner_engine().connect() as c:
        scopes.apply(c.connection.dbapi_connection, SYSTEM)
        stored = c.execute(text("SELECT key_hash FROM api_keys WHERE name = 'clitest_hotline'")).scalar_one()
    assert key not in stored and len(stored) == 64
    assert strict(run("apikey", "revoke", "clitest_hotline", "--json").stdout)["revoked"]
    with use_scope(None), app_engine().connect() as c:
        assert c.execute(text("SELECT apikey_check(:k)"), {"k": key}).scalar() is None
