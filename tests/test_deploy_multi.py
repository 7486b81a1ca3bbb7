"""The multi-process deployment, started by its own script: deploy/serve-multi.sh (two
``streamlit run app.py`` processes behind HAProxy with a sticky cookie, PgBouncer in
transaction mode in front of PostgreSQL), against the test database with the demo loaded.

Spoken to as a browser does (bench/stclient.py: the sign-in form over HTTP, the page over
Streamlit's websocket protocol, tiles over HTTP), through the proxy:
- a browser stays on one process: the proxy's cookie sends its requests and its websocket to the
  process that served its first request (HAProxy names it in ``X-Wangge-App``);
- new browsers are spread over both processes;
- both processes serve the same signed-in user the same page (the session and every figure come
  from the database), and a session ended is ended on both at the next page run (tiles within
  the tile route's 30 s memory of a cookie, per process);
- tiles through the proxy: the user's with the cookie, 401 without.

Skipped, with the reason, when HAProxy or PgBouncer is not installed (``MULTI=1
scripts/bootstrap.sh system``; ``make test`` installs them).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gis.settings import ROOT, get_settings

SCRIPT = ROOT / "deploy" / "serve-multi.sh"


def _installed(name: str) -> bool:
    return bool(shutil.which(name)) or Path("/usr/sbin", name).exists()


pytestmark = pytest.mark.skipif(not (_installed("haproxy") and _installed("pgbouncer")),
                                reason="HAProxy and PgBouncer are not installed (MULTI=1 scripts/bootstrap.sh system installs them)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def proxy(demo: dict) -> Iterator[str]:
    """deploy/serve-multi.sh start, two apps, on free ports; the proxy's URL."""
    import requests

    run = Path(tempfile.mkdtemp(prefix="wangge-multi-"))
    run.chmod(0o755)
    port = _free_port()
    env = {**os.environ, "WANGGE_DB_NAME": get_settings().db_name, "WANGGE_MULTI_DIR": str(run), "WANGGE_APPS": "2",
           "WANGGE_MULTI_PORT": str(port), "WANGGE_PGBOUNCER_PORT": str(_free_port()),
           "WANGGE_APP_PORTS": f"{_free_port()} {_free_port()}"}
    started = subprocess.run([str(SCRIPT), "start"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    base = f"http://127.0.0.1:{port}"
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        deadline = time.time() + 60
        seen = set()
        while time.time() < deadline and len(seen) < 2:  # both apps up and checked by HAProxy
            try:
                r = requests.get(base + "/_stcore/health", timeout=5)
                if r.status_code == 200:
                    seen.add(r.headers.get("X-Wangge-App"))
            except requests.RequestException:
                pass
            time.sleep(0.3)
        yield base
    finally:
        subprocess.run([str(SCRIPT), "stop"], cwd=ROOT, env=env, capture_output=True, timeout=120)
        shutil.rmtree(run, ignore_errors=True)


def _user(base: str, account):
    from bench.stclient import User

    return User(base, account.username, account.password, timeout=180)


def test_a_browser_stays_on_one_process(proxy: str, accounts: dict) -> None:
    u = _user(proxy, accounts["worker"])
    try:
        u.sign_in()
        first = u.http.cookies.get("WANGGE_APP")
        assert first in ("app1", "app2"), dict(u.http.cookies)
        for _ in range(5):
            r = u.http.get(proxy + "/_stcore/health", timeout=30)
            assert r.headers["X-Wangge-App"] == first
        u.open()
        assert u.served_by == first  # the websocket's upgrade went to the same process
        run = u.run("")
        assert run.status == "finished", run.texts[-3:]
        assert any(accounts["worker"].username in t for t in run.texts), run.texts[:10]
    finally:
        u.close()


def test_new_browsers_are_spread_over_the_processes(proxy: str, accounts: dict) -> None:
    users = [_user(proxy, accounts[role]) for role in ("leader", "secretary", "worker", "planner", "leader", "worker")]
    try:
        for u in users:
            u.sign_in()
            u.open()  # the open websocket counts for HAProxy's leastconn
        assert {u.served_by for u in users} == {"app1", "app2"}
    finally:
        for u in users:
            u.close()


def test_both_processes_serve_the_same_user_and_a_session_ends_on_both(proxy: str, accounts: dict) -> None:
    from gis.db import transaction
    from gis.scope import SYSTEM, use_scope
    from ui.i18n import t
    from webapp import sessions

    account = accounts["secretary"]
    signer = _user(proxy, account)
    signer.sign_in()
    token = signer.http.cookies.get(get_settings().session_cookie)
    signer.close()
    texts = {}
    for app in ("app1", "app2"):
        u = _user(proxy, account)
        u.http.cookies.set(get_settings().session_cookie, token)
        u.http.cookies.set("WANGGE_APP", app)
        try:
            u.open()
            assert u.served_by == app
            run = u.run("")
            assert run.status == "finished", run.texts[-3:]
            texts[app] = run.texts
            tile = u.http.get(proxy + "/tiles/grids/2/1/0.pbf?size=512", timeout=60)
            assert tile.status_code in (200, 204) and tile.headers["X-Wangge-App"] == app
        finally:
            u.close()
    assert any(account.username in x for x in texts["app1"])
    assert texts["app1"] == texts["app2"]  # the same page, figure for figure, from either process

    with use_scope(SYSTEM), transaction() as conn:  # signed out (as the sign-out button does)
        sessions.close_session(conn, token)
    for app in ("app1", "app2"):
        u = _user(proxy, account)
        u.http.cookies.set(get_settings().session_cookie, token)
        u.http.cookies.set("WANGGE_APP", app)
        try:
            run = u.run("")
            assert run.status == "finished"
            assert not any(account.username in x for x in run.texts)
            assert any(t("signin.go", "zh") in x for x in run.texts), run.texts[:8]
            # (tiles follow within webapp.tiles._SessionCache.TTL_S, each process its own cache)
        finally:
            u.close()


def test_tiles_need_the_session_through_the_proxy(proxy: str) -> None:
    import requests

    r = requests.get(proxy + "/tiles/grids/2/1/0.pbf?size=512", timeout=60)
    assert r.status_code == 401
