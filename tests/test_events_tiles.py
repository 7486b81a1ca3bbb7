"""The event layer's vector tiles (issue 16 point 5) over real HTTP: a tile server on loopback
(the tile routes app.py mounts, served by uvicorn), signed-in users by their session cookie.

A worker's tile holds only their grids' cases (row-level security), no session no tile, each
feature carries its stage and an overdue flag and nothing of the case's text, a change to a
case shows in the next tile (the cache follows ``audit_version()``), and below the detail
zoom nearby cases come as one point with their count."""
from __future__ import annotations

import math
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from gis import scope as scopes
from gis.db import app_engine, owner_engine
from gis.scope import SYSTEM, use_scope
from gis.settings import get_settings
from layers import events as ev
from webapp import tiles

SECRET = "井盖破损_秘密描述"  # a description that must never reach a tile


# --- a minimal Mapbox Vector Tile reader (protobuf wire format; the spec's fields only) ---------

def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, object]]:
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _varint(buf, i)
        elif wire == 2:
            n, i = _varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wire == 5:
            v, i = buf[i:i + 4], i + 4
        elif wire == 1:
            v, i = buf[i:i + 8], i + 8
        else:
            raise ValueError(f"wire type {wire}")
        yield num, v


def _packed(buf: bytes) -> list[int]:
    out, i = [], 0
    while i < len(buf):
        v, i = _varint(buf, i)
        out.append(v)
    return out


def _zigzag(v: int) -> int:
    return (v >> 1) ^ -(v & 1)


def decode(data: bytes) -> dict[str, list[dict]]:
    """``{layer: [{"id", "type", "xy", **properties}]}`` (point features: first point, tile units)."""
    import struct

    layers = {}
    for num, raw in _fields(data):
        if num != 3:
            continue
        name, keys, values, feats = "", [], [], []
        for n, v in _fields(raw):
            if n == 1:
                name = v.decode()
            elif n == 3:
                keys.append(v.decode())
            elif n == 4:
                for vn, vv in _fields(v):
                    values.append({1: lambda x: x.decode(), 2: lambda x: struct.unpack("<f", x)[0],
                                   3: lambda x: struct.unpack("<d", x)[0], 4: lambda x: x, 5: lambda x: x,
                                   6: _zigzag, 7: bool}[vn](vv))
            elif n == 2:
                feats.append(v)
        out = []
        for f in feats:
            rec: dict = {"id": None}
            for n, v in _fields(f):
                if n == 1:
                    rec["id"] = v
                elif n == 2:
                    tags = _packed(v)
                    rec.update({keys[tags[k]]: values[tags[k + 1]] for k in range(0, len(tags), 2)})
                elif n == 3:
                    rec["type"] = v
                elif n == 4:
                    g = _packed(v)
                    rec["xy"] = (_zigzag(g[1]), _zigzag(g[2]))
            out.append(rec)
        layers[name] = out
    return layers


# --- the place, the cases, the server ----------------------------------------------------------

def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


@pytest.fixture(scope="module")
def cases(accounts: dict) -> Iterator[dict]:
    """In the worker's first grid (A): a reported case, an overdue dispatched one and two more a
    few metres away (a cluster below the detail zoom), a closed one; in a grid of another
    community (B): one case. Made through ``layers.events`` as the system, like the CLI."""
    worker = accounts["worker"]
    with owner_engine().connect() as c:
        a = c.execute(text("SELECT id, community_code, ST_X(ST_PointOnSurface(geom)) x, ST_Y(ST_PointOnSurface(geom)) y "
                           "FROM grids WHERE id = :g"), {"g": worker.grids[0]}).one()
        b = c.execute(text("""SELECT id, ST_X(ST_PointOnSurface(geom)) x, ST_Y(ST_PointOnSurface(geom)) y FROM grids
                              WHERE valid_to IS NULL AND community_code <> :c ORDER BY code LIMIT 1"""),
                      {"c": a.community_code}).one()
    d = 0.00002  # about 2 m
    with use_scope(SYSTEM), app_engine().begin() as c:
        ids = {
            "reported": ev.report_event(c, "E0101", lon=a.x, lat=a.y, description=SECRET),
            "late": ev.report_event(c, "E0101", lon=a.x + d, lat=a.y, description=SECRET),
            "near": ev.report_event(c, "E0101", lon=a.x, lat=a.y + d, description=SECRET),
            "closed": ev.report_event(c, "E0101", lon=a.x - d, lat=a.y, description=SECRET),
            "other": ev.report_event(c, "E0101", lon=b.x, lat=b.y, description=SECRET),
        }
        for key in ("late", "closed"):
            ev.act(c, ids[key], "file")
            ev.act(c, ids[key], "dispatch")
        ev.act(c, ids["closed"], "handle", "已清理")
        ev.act(c, ids["closed"], "verify_pass")
        ev.act(c, ids["closed"], "close")
    with owner_engine().begin() as c:  # the dispatched case ran past its limit an hour ago (the owner: trusted)
        scopes.apply(c.connection.dbapi_connection, SYSTEM)
        c.execute(text("UPDATE events SET stage_due_at = now() - interval '1 hour' WHERE id = :i"), {"i": ids["late"]})
    yield {"ids": ids, "a": (a.x, a.y), "b": (b.x, b.y), "grid_a": int(a.id), "grid_b": int(b.id)}
    with owner_engine().begin() as c:
        scopes.apply(c.connection.dbapi_connection, SYSTEM)
        c.execute(text("DELETE FROM events WHERE id = ANY(:i)"), {"i": list(ids.values())})


@pytest.fixture(scope="module")
def server(demo: dict) -> Iterator[str]:
    """The tile routes on a loopback port (uvicorn in a thread of this process)."""
    import uvicorn
    from starlette.applications import Starlette

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(Starlette(routes=tiles.routes()), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    assert srv.started, "tile server did not start"
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def cookies(accounts: dict) -> dict[str, str]:
    from tests.accounts import session_token

    return {role: session_token(accounts[role]) for role in ("worker", "leader", "admin")}


def get(server: str, z: int, x: int, y: int, cookie: str | None = None, query: str = "size=512") -> tuple[int, bytes, object]:
    req = urllib.request.Request(f"{server}/tiles/events/{z}/{x}/{y}.pbf?{query}")
    if cookie:
        req.add_header("Cookie", f"{get_settings().session_cookie}={cookie}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


def _z_tile(point: tuple[float, float], z: int) -> tuple[int, int, int]:
    """The 512-px tile (display zoom z, as the map asks) holding ``point``."""
    x, y = _tile_of(*point, z - 1)
    return z, x, y


def features(server: str, point: tuple[float, float], z: int, cookie: str) -> list[dict]:
    status, body, _ = get(server, *_z_tile(point, z), cookie=cookie)
    assert status in (200, 204), (status, body[:200])
    return decode(body).get("events", []) if status == 200 else []


# --- the tests ---------------------------------------------------------------------------------

def test_no_session_no_tile(server, cases) -> None:
    assert get(server, *_z_tile(cases["a"], 18))[0] == 401
    assert get(server, *_z_tile(cases["a"], 18), cookie="not-a-session")[0] == 401


def test_features_carry_stage_and_overdue_only(server, cases, cookies) -> None:
    tiles.CACHE.clear()
    status, body, headers = get(server, *_z_tile(cases["a"], 18), cookie=cookies["leader"])
    assert status == 200 and headers["Content-Type"] == "application/vnd.mapbox-vector-tile"
    assert SECRET.encode() not in body and b"description" not in body and b"reported_by" not in body
    feats = {f["id"]: f for f in decode(body)["events"]}
    ids = cases["ids"]
    assert feats[ids["reported"]]["s"] == "reported" and feats[ids["reported"]]["o"] is False
    assert feats[ids["late"]]["s"] == "dispatched" and feats[ids["late"]]["o"] is True
    assert ids["closed"] not in feats  # the layer shows open cases
    assert all(set(f) <= {"id", "type", "xy", "s", "o"} for f in feats.values())
    assert all(f["type"] == 1 for f in feats.values())  # points


def test_a_worker_sees_only_their_grids_cases(server, cases, cookies) -> None:
    ids = cases["ids"]
    mine = {f["id"] for f in features(server, cases["a"], 18, cookies["worker"])}
    assert {ids["reported"], ids["late"], ids["near"]} <= mine
    assert not features(server, cases["b"], 18, cookies["worker"])  # another community's grid: nothing
    assert ids["other"] in {f["id"] for f in features(server, cases["b"], 18, cookies["leader"])}
    # on a GCJ-02 basemap the same cases, moved (the envelope is moved back to select them)
    import prcoords

    g = prcoords.wgs_gcj(prcoords.Coords(cases["a"][1], cases["a"][0]))
    status, body, _ = get(server, *_z_tile((g.lon, g.lat), 18), cookie=cookies["worker"], query="size=512&shift=gcj02")
    assert status == 200 and {ids["reported"], ids["late"], ids["near"]} <= {f["id"] for f in decode(body)["events"]}
    # below the detail zoom too: the worker's clusters count only their own cases
    low = features(server, cases["b"], 13, cookies["worker"])
    leader_low = features(server, cases["b"], 13, cookies["leader"])
    assert sum(f.get("n", 1) for f in low) < sum(f.get("n", 1) for f in leader_low)


def test_nearby_cases_are_one_point_below_the_detail_zoom(server, cases, cookies) -> None:
    ids = cases["ids"]
    low = features(server, cases["a"], 15, cookies["worker"])
    cluster = [f for f in low if f.get("n")]
    assert len(cluster) == 1 and cluster[0]["n"] == 3 and cluster[0]["id"] is None  # reported, late and near
    assert cluster[0]["o"] is True  # one of them is overdue
    assert cluster[0]["s"] in ("reported", "dispatched")
    assert sum(f.get("n", 1) for f in low) == 3  # the closed case is not drawn; each open case counted once
    assert {f["id"] for f in features(server, cases["a"], tiles.EVENTS_DETAIL_ZOOM, cookies["worker"])} >= {
        ids["reported"], ids["late"], ids["near"]}


def test_a_case_change_shows_in_the_next_tile(server, cases, cookies) -> None:
    tiles.CACHE.clear()
    where = _z_tile(cases["a"], 18)
    first = get(server, *where, cookie=cookies["worker"])
    again = get(server, *where, cookie=cookies["worker"])
    assert first[2]["X-Tile-Cache"] == "miss" and again[2]["X-Tile-Cache"] == "hit" and again[1] == first[1]
    with use_scope(SYSTEM), app_engine().begin() as c:  # the command centre files the reported case
        ev.act(c, cases["ids"]["reported"], "file")
    after = get(server, *where, cookie=cookies["worker"])
    assert after[2]["X-Tile-Cache"] == "miss"
    feats = {f["id"]: f for f in decode(after[1])["events"]}
    assert feats[cases["ids"]["reported"]]["s"] == "filed"
    # a new report shows too
    with use_scope(SYSTEM), app_engine().begin() as c:
        new = ev.report_event(c, "E0101", lon=cases["a"][0] - 0.00001, lat=cases["a"][1] - 0.00001)
    try:
        assert new in {f["id"] for f in features(server, cases["a"], 18, cookies["worker"])}
    finally:
        with owner_engine().begin() as c:
            scopes.apply(c.connection.dbapi_connection, SYSTEM)
            c.execute(text("DELETE FROM events WHERE id = :i"), {"i": new})


def test_an_empty_place_is_204(server, cases, cookies) -> None:
    assert get(server, 18, 0, 0, cookie=cookies["leader"])[0] == 204
