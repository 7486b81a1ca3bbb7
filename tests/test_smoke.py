"""Every command and every screen, on three databases a user meets (issue 13):
(a) empty, (b) a real OpenStreetMap extract freshly imported and nothing else, (c) the demo.

Commands are enumerated from the typer app and screens from the role navigation
(ui.screens.ROLE_SCREENS), so a new command or screen is covered without editing this file;
a new command whose required arguments this file cannot fill fails here, by name.
Each command runs with and without ``--json``: no traceback, an exit code from the
documented set (0 done, 1 input rejected, 2 usage, 3 database unreachable, 4 version
conflict), and ``--json`` output parsed by a strict parser (NaN/Infinity refused).

Runs in its own database (``<test db>_smoke``, made by scripts/bootstrap.sh db) because the
states are committed and the CLI and the page script open their own connections.
"""
from __future__ import annotations

import json
from types import SimpleNamespace
import os
import subprocess
from pathlib import Path

import pytest
import typer
from sqlalchemy import text
from typer.testing import CliRunner

from gis.db import owner_engine, reset_engines
from gis.settings import ROOT, get_settings

REAL = ROOT / "tests" / "data" / "kouvola-pyrosm.osm.pbf"
EXIT_CODES = {0, 1, 2, 3, 4, 5}
# Commands that change the state: run after the others of a state.
LAST = ("import", "import-osm", "demo load", "db up", "user", "assign set", "assign remove", "scenario delete",
        "grid code", "grid rebalance", "cadres import")


def _strict(s: str):
    def refuse(name: str):
        raise ValueError(f"not JSON: {name}")

    return json.loads(s, parse_constant=refuse)


@pytest.fixture(scope="module")
def smoke_db():
    name = get_settings().db_name + "_smoke"
    env = {**os.environ, "WANGGE_DB_NAME": name}
    done = subprocess.run(["bash", str(ROOT / "scripts" / "bootstrap.sh"), "db"], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    before = os.environ.get("WANGGE_DB_NAME")
    os.environ["WANGGE_DB_NAME"] = name
    reset_engines()
    from gis.migrate import store_scope_secret

    store_scope_secret()
    yield name
    if before is None:
        os.environ.pop("WANGGE_DB_NAME", None)
    else:
        os.environ["WANGGE_DB_NAME"] = before
    reset_engines()


def _set_state(state: str) -> None:
    from gis.db import transaction
    from gis.scope import SYSTEM, use_scope
    from layers import demo
    from layers.importer import import_osm

    with use_scope(SYSTEM):
        if state == "demo":
            demo.load(force=True)
            return
        with transaction(owner=True) as c:
            demo.clear(c)
            c.execute(text("TRUNCATE siting_scenarios, grid_drafts RESTART IDENTITY CASCADE"))
        if state == "real":
            import_osm(REAL, skip_invalid=True, repair=True)


def commands() -> list[tuple[str, object]]:
    from cli.main import app

    out = []

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in sorted(subs.items()):
                walk(sub, [*path, name])
        else:
            out.append((" ".join(path), cmd))

    walk(typer.main.get_command(app), [])
    return out


def _facts() -> dict:
    with owner_engine().connect() as c:
        one = lambda sql: c.execute(text(sql)).scalar()  # noqa: E731
        return {
            "community": one("SELECT code FROM communities ORDER BY code LIMIT 1") or "420106010001",
            "grid": one("SELECT code FROM grids WHERE valid_to IS NULL ORDER BY code LIMIT 1") or "420106010001001",
            "cadre": one("SELECT cadre_no FROM cadres ORDER BY cadre_no LIMIT 1") or "C0001",
            "scenario": str(one("SELECT id FROM siting_scenarios ORDER BY id LIMIT 1") or 1),
        }


def _arguments(path: str, cmd, facts: dict, tmp: Path) -> list[str]:
    """Required arguments and options a user would give, by command."""
    csv = tmp / "cadres.csv"
    csv.write_text("cadre_no,name,role,community_code\nS0001,测试,专职网格员,%s\n" % facts["community"], encoding="utf-8")
    building = tmp / "one.geojson"
    building.write_text(json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"source_id": "smoke-1", "户数": 12},
                        "geometry": {"type": "Polygon", "coordinates": [[[26.95, 60.53], [26.9502, 60.53], [26.9502, 60.5301], [26.95, 60.53]]]}}]}))
    table = {
        "assign remove": [facts["grid"], facts["cadre"]],
        "assign set": [facts["grid"], facts["cadre"]],
        "audit export": [str(tmp / "audit.csv")],
        "cadres import": [str(csv)],
        "export": ["buildings", str(tmp / "buildings.gpkg")],
        "grid delineate": ["--community", facts["community"]],
        "import": ["buildings", str(building)],
        "import-osm": [str(REAL), "--skip-invalid", "--repair"],
        "scenario compare": [facts["scenario"]],
        "scenario delete": [str(10 ** 9)],
        "scenario export": [facts["scenario"], "--file", str(tmp / "s.xlsx")],
        "scenario map": [facts["scenario"], "--file", str(tmp / "s.pdf")],
        "site": ["--category", "community_service_station", "--model", "lscp", "--time-limit", "20"],
        "user add": ["smoke_user", "--role", "planner"],
        "user passwd": ["smoke_user"],
        "user set": ["smoke_user", "--name", "冒烟"],
        "apikey add": ["smoke_key"],
        "apikey revoke": ["smoke_key"],
        "events import": [str(tmp / "no_such_history.csv")],
        "events report": ["E0101", "--lon", "114.3", "--lat", "30.55"],
        "events file": ["1"],
        "events reject": ["1", "--reason", "not_case"],
        "events dispatch": ["1"],
        "events handle": ["1"],
        "events verify": ["1"],
        "events close": ["1"],
        "events show": ["1"],
        "events unit-member": ["smoke_user", "cg"],
        "people import": [str(tmp / "no_such_register.xlsx")],
        "visits import": [str(tmp / "no_such_visits.csv")],
        "patrol import": [str(tmp / "no_such_track.gpx"), "--cadre", facts["cadre"]],
    }
    if path in table:
        return table[path]
    missing = [p.name for p in cmd.params if p.required]
    assert not missing, f"`wangge {path}`: tests/test_smoke.py has no value for {missing}"
    return []


def _run_commands(state: str, tmp: Path) -> list[str]:
    from cli.main import app, exit_code
    from gis.errors import WanggeError

    runner = CliRunner()
    facts = _facts()
    failures = []
    cmds = sorted(commands(), key=lambda pc: (any(pc[0] == x or pc[0].startswith(x + " ") for x in LAST), pc[0]))
    env = {"WANGGE_ADMIN_PASSWORD": "smoke-Password-1234"}
    for path, cmd in cmds:
        has_json = any("--json" in getattr(p, "opts", []) for p in cmd.params)
        args = path.split() + _arguments(path, cmd, facts, tmp)
        for as_json in ([False, True] if has_json else [False]):
            argv = args + (["--json"] if as_json else [])
            result = runner.invoke(app, argv, env=env, input="smoke-Password-1234\nsmoke-Password-1234\n")
            said = (result.stdout or "") + (getattr(result, "stderr", "") or "")
            code = result.exit_code
            if isinstance(result.exception, WanggeError):  # what main() does with the project's errors
                code, said = exit_code(result.exception), said + result.exception.human()
                result = SimpleNamespace(exit_code=code, exception=None, stdout=json.dumps(result.exception.to_dict()) if as_json else "")
            where = f"[{state}] wangge {' '.join(argv)} → {result.exit_code}"
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                failures.append(f"{where}: {type(result.exception).__name__}: {result.exception}")
                continue
            if "Traceback" in said:
                failures.append(f"{where}: traceback in the output")
            if result.exit_code not in EXIT_CODES:
                failures.append(f"{where}: undocumented exit code")
            if as_json and result.exit_code in (0, 1, 4) and result.stdout.strip():
                try:
                    _strict(result.stdout)
                except ValueError as exc:
                    failures.append(f"{where}: not strict JSON: {exc}: {result.stdout[:200]!r}")
    return failures


def _run_screens(state: str) -> list[str]:
    from layers import users as auth
    from gis.db import transaction
    from gis.scope import SYSTEM, use_scope
    from tests.accounts import Account, open_screen
    from ui.screens import ROLE_SCREENS

    facts = _facts()
    with owner_engine().connect() as c:
        has_community = c.execute(text("SELECT EXISTS (SELECT 1 FROM communities)")).scalar()
        grids = tuple(c.execute(text("SELECT id FROM grids WHERE valid_to IS NULL AND community_code = :c ORDER BY code LIMIT 2"),
                                {"c": facts["community"]}).scalars())
    failures = []
    with owner_engine().begin() as c:
        c.execute(text("DELETE FROM users WHERE username LIKE 'smoke_%'"))
    for role, screens in ROLE_SCREENS.items():
        communities = (facts["community"],) if role in ("secretary", "worker") else ()
        if communities and not has_community or role == "worker" and not grids:
            continue  # a secretary needs a community, a worker grids: an empty database or a bare import has none to give
        account = Account(role, f"smoke_{role}", "smoke-Password-1234", communities, grids if role == "worker" else ())
        with use_scope(SYSTEM), transaction() as conn:
            auth.create_user(conn, account.username, account.password, role, communities=account.communities, grids=account.grids)
        for path, _title, _render in screens:
            try:
                at = open_screen(account, path)
            except Exception as exc:  # the script itself failed to run
                failures.append(f"[{state}] {role} /{path}: {type(exc).__name__}: {exc}")
                continue
            if at.exception:
                failures.append(f"[{state}] {role} /{path}: {[e.message for e in at.exception]}")
            shown = " ".join(str(m.value) for m in at.markdown) + " ".join(str(e.value) for e in at.error)
            if "Traceback" in shown:
                failures.append(f"[{state}] {role} /{path}: traceback on screen")
    return failures


@pytest.mark.parametrize("state", ["empty", "real", "demo"])
def test_every_command_and_screen(smoke_db, state, tmp_path):
    _set_state(state)
    failures = _run_screens(state)
    _set_state(state)
    failures += _run_commands(state, tmp_path)
    assert not failures, "\n".join(failures)
