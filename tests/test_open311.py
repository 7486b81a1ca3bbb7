"""Open311 GeoReport v2 over real HTTP, from the dashboard's own process (``streamlit run
app.py`` on a free port, against the test database): services, a keyed POST (WGS-84 and
GCJ-02), the public GET with the specification's fields, sealed reporter, errors."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import prcoords
import pytest
from sqlalchemy import text

from gis import scope as scopes
from gis.db import owner_engine
from gis.scope import SYSTEM
from gis.settings import ROOT, get_settings

FIELDS = {"service_request_id", "status", "status_notes", "service_name", "service_code", "description",
          "agency_responsible", "service_notice", "requested_datetime", "updated_datetime", "expected_datetime",
          "address", "address_id", "zipcode", "lat", "long", "media_url"}


@pytest.fixture(scope="module")
def base(demo) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "WANGGE_DB_NAME": get_settings().db_name}
    log = open(ROOT / "tests" / "open311-server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true",
                             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                urllib.request.urlopen(url + "/open311/v2/services.json", timeout=2)
                break
            except (OSError, urllib.error.URLError):
                if proc.poll() is not None:
                    raise RuntimeError("streamlit exited: see tests/open311-server.log")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        with owner_engine().begin() as c:
            scopes.apply(c.connection.dbapi_connection, SYSTEM)
            c.execute(text("DELETE FROM events WHERE reported_by LIKE 'open311:test_%'"))
            c.execute(text("DELETE FROM api_keys WHERE name LIKE 'test_%'"))


@pytest.fixture(scope="module")
def key(base) -> str:
    import secrets

    k = secrets.token_urlsafe(24)
    with owner_engine().begin() as c:
        scopes.apply(c.connection.dbapi_connection, SYSTEM)
        c.execute(text("SELECT apikey_add('test_12345', :k)"), {"k": k})
    return k


def call(base: str, path: str, form: dict | None = None) -> tuple[int, object]:
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    try:
        with urllib.request.urlopen(urllib.request.Request(base + path, data=data), timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def a_point() -> tuple[float, float]:
    with owner_engine().connect() as c:
        return tuple(c.execute(text("""SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM grids
                                       WHERE valid_to IS NULL ORDER BY code LIMIT 1""")).one())


def test_services(base):
    status, body = call(base, "/open311/v2/services.json")
    assert status == 200 and {"service_code", "service_name", "metadata", "type", "keywords", "group"} <= set(body[0])
    codes = {s["service_code"]: s for s in body}
    assert codes["E0101"]["service_name"] == "暴露垃圾"
    assert call(base, "/open311/v2/services.json?lang=en")[1][0]["service_name"].isascii()
    assert call(base, "/open311/v2/services/E0303.json") == (200, {"service_code": "E0303", "attributes": []})
    assert call(base, "/open311/v2/services/X9999.json")[0] == 404
    assert call(base, "/open311/v2/services.xml")[0] == 404


def test_post_and_get(base, key):
    lon, lat = a_point()
    form = {"api_key": key, "service_code": "E0101", "lat": lat, "long": lon, "description": "路边垃圾堆积",
            "first_name": "三", "last_name": "张", "phone": "13800000000", "email": "z@example.org"}
    status, body = call(base, "/open311/v2/requests.json", form)
    assert status == 201, body
    rid = body[0]["service_request_id"]
    status, got = call(base, f"/open311/v2/requests/{rid}.json")
    assert status == 200 and set(got[0]) == FIELDS
    case = got[0]
    assert (case["status"], case["service_code"], case["description"]) == ("open", "E0101", "路边垃圾堆积")
    assert abs(case["lat"] - lat) < 1e-9 and abs(case["long"] - lon) < 1e-9
    assert "13800000000" not in json.dumps(got) and "张" not in json.dumps(got)  # sealed
    listed = call(base, "/open311/v2/requests.json?service_code=E0101&status=open")[1]
    assert rid in {r["service_request_id"] for r in listed}
    assert rid not in {r["service_request_id"] for r in call(base, "/open311/v2/requests.json?status=closed")[1]}
    with owner_engine().connect() as c:
        scopes.apply(c.connection.dbapi_connection, SYSTEM)
        row = c.execute(text("""SELECT e.source, e.reported_by, e.status, r.phone FROM events e JOIN event_reporters r
                                ON r.event_id = e.id WHERE e.id = :i"""), {"i": int(rid)}).one()
    assert tuple(row) == ("hotline", "open311:test_12345", "reported", "13800000000")


def test_gcj02_converted(base, key):
    lon, lat = a_point()
    glat, glon = prcoords.wgs_gcj((lat, lon))
    status, body = call(base, "/open311/v2/requests.json", {"api_key": key, "service_code": "E0503", "lat": glat,
                                                           "long": glon, "coord_system": "gcj02"})
    assert status == 201, body
    got = call(base, f"/open311/v2/requests/{body[0]['service_request_id']}.json")[1][0]
    assert abs(got["lat"] - lat) < 1e-5 and abs(got["long"] - lon) < 1e-5  # stored as WGS-84 (within a metre)


def test_errors(base, key):
    lon, lat = a_point()
    ok = {"api_key": key, "service_code": "E0101", "lat": lat, "long": lon}
    assert call(base, "/open311/v2/requests.json", {**ok, "api_key": "wrong"})[0] == 403
    assert call(base, "/open311/v2/requests.json", {k: v for k, v in ok.items() if k != "api_key"})[0] == 403
    status, body = call(base, "/open311/v2/requests.json", {**ok, "service_code": "Z1"})
    assert status == 400 and body[0]["code"] == 400 and "service_code" in body[0]["description"]
    assert call(base, "/open311/v2/requests.json", {**ok, "description": "x" * 4001})[0] == 400
    assert call(base, "/open311/v2/requests.json", {**ok, "lat": "north"})[0] == 400
    assert call(base, "/open311/v2/requests.json", {**ok, "lat": 0, "long": 0})[0] == 400  # in no grid
    assert call(base, "/open311/v2/requests/999999999.json")[0] == 404
    assert call(base, "/open311/v2/requests.json?status=maybe")[0] == 400


def test_only_public_cases_are_served(base):
    from gis.scope import use_scope
    from layers import events as ev

    lon, lat = a_point()
    with use_scope(SYSTEM), owner_engine().begin() as c:
        private = ev.report_event(c, "E0601", lon=lon, lat=lat, description="邻里纠纷 private", reported_by="open311:test_worker")
    assert call(base, f"/open311/v2/requests/{private}.json")[0] == 404
    assert private not in {int(r["service_request_id"]) for r in call(base, "/open311/v2/requests.json")[1]}
