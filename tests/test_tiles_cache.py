"""The tile cache at a city's size (issue 18): versions per area, kept by triggers on the rows
a tile shows (migration 0024 ``tile_epochs``), and keys that never let a tile cross scopes.

What must hold: an edit forgets the tiles showing what it changed (a building: its own tiles
and its grid's, whose colour follows the households; an assignment: its grid's) and no other
tile; a tile cached for one area is never served to a scope with another area (row-level
security decides what a tile holds), and is shared by users with the same area.
"""
from __future__ import annotations

import math
import secrets

import pytest
from sqlalchemy import text

from gis.db import owner_engine, transaction
from gis.scope import SYSTEM, use_scope
from webapp import tiles

HALF = 20037508.342789244
CELL = 2 * HALF / (1 << tiles.EPOCH_ZOOM)


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def _cells(xmin: float, ymin: float, xmax: float, ymax: float) -> set[tuple[int, int]]:
    """The z14 cells a box touches, grown by a 64th of a cell (as the migration computes them)."""
    m = CELL / 64
    xs = range(math.floor((xmin - m + HALF) / CELL), math.floor((xmax + m + HALF) / CELL) + 1)
    ys = range(math.floor((HALF - ymax - m) / CELL), math.floor((HALF - ymin + m) / CELL) + 1)
    return {(x, y) for x in xs for y in ys}


def _epochs() -> dict[tuple[str, int, int], int]:
    with owner_engine().connect() as c:
        return {(r.layer, r.cx, r.cy): r.v for r in c.execute(text("SELECT layer, cx, cy, v FROM tile_epochs"))}


def _changed(before: dict, after: dict) -> set[tuple[str, int, int]]:
    return {k for k, v in after.items() if before.get(k) != v}


def _box(c, sql: str, params: dict) -> tuple[float, float, float, float]:
    return tuple(float(v) for v in c.execute(text(
        f"SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM ({sql}) q(b)"), params).one())


@pytest.fixture(scope="module")
def sessions(accounts: dict) -> dict:
    """Sessions of the leader, the worker (two grids) and a second leader (the same area as the first)."""
    from layers import users as auth
    from tests.accounts import session_token
    from webapp import sessions as web_sessions

    password = secrets.token_urlsafe(12)
    with use_scope(SYSTEM), transaction() as conn:
        if auth.get_user(conn, "t_leader2") is None:
            auth.create_user(conn, "t_leader2", password, "leader", display_name="测试leader2")
        else:
            auth.set_password(conn, "t_leader2", password)
        user = auth.authenticate(conn, "t_leader2", password)
        second = web_sessions.open_session(conn, user.id, "pytest")
    return {"leader": session_token(accounts["leader"]), "worker": session_token(accounts["worker"]), "leader2": second}


def _call(layer: str, z: int, x: int, y: int, cookie: str):
    from starlette.requests import Request

    from gis.settings import get_settings

    scope = {"type": "http", "method": "GET", "path": "/tiles", "query_string": b"",
             "headers": [(b"cookie", f"{get_settings().session_cookie}={cookie}".encode())],
             "path_params": {"layer": layer, "z": z, "x": x, "y": y}}
    return tiles.tile_endpoint(Request(scope))


@pytest.fixture(scope="module")
def worker_building(demo: dict, accounts: dict) -> dict:
    """A building of the worker's first grid, its z15 tile, and a z15 building tile in a cell far from it."""
    grid = accounts["worker"].grids[0]
    with owner_engine().connect() as c:
        b = c.execute(text("""SELECT id, ST_X(ST_Centroid(geom)) AS lon, ST_Y(ST_Centroid(geom)) AS lat
                               FROM buildings WHERE grid_id = :g ORDER BY id LIMIT 1"""), {"g": grid}).one()
        far = c.execute(text("""SELECT ST_X(ST_Centroid(b.geom)), ST_Y(ST_Centroid(b.geom)) FROM buildings b, buildings o
                                 WHERE o.id = :id ORDER BY ST_Distance(b.geom_3857, o.geom_3857) DESC LIMIT 1"""),
                        {"id": b.id}).one()
    return {"id": int(b.id), "grid": grid, "tile": _tile_of(b.lon, b.lat, 15), "far": _tile_of(far[0], far[1], 15)}


def test_versions_cover_the_tile_and_its_buffer() -> None:
    """A deep tile depends on its one cell; a shallow one on every cell under it plus its buffer."""
    assert tiles.epoch_cells(16, 100, 200) == (25, 50, 25, 50)
    assert tiles.epoch_cells(14, 7, 9) == (7, 9, 7, 9)
    x0, y0, x1, y1 = tiles.epoch_cells(12, 3, 5)  # 4 x 4 cells, one more on each side
    assert (x0, y0, x1, y1) == (11, 19, 16, 24)
    x0, _, x1, _ = tiles.epoch_cells(4, 1, 1)  # 1024 cells a side: the buffer is 16 cells
    assert (x0, x1) == (1024 - 16, 2047 + 16)


def test_an_edit_bumps_exactly_the_cells_of_what_it_changed(demo: dict, worker_building: dict) -> None:
    """A building's households: its own cells (buildings layer) and its grid's (grids layer), nothing else."""
    bid, grid = worker_building["id"], worker_building["grid"]
    with owner_engine().connect() as c:
        own = _cells(*_box(c, "SELECT geom_3857::box2d FROM buildings WHERE id = :id", {"id": bid}))
        of_grid = _cells(*_box(c, "SELECT geom_3857::box2d FROM grids WHERE id = :g", {"g": grid}))
    before = _epochs()
    with owner_engine().begin() as c:
        c.execute(text("UPDATE buildings SET households = households + 1 WHERE id = :id"), {"id": bid})
    try:
        changed = _changed(before, _epochs())
        assert changed == {("buildings", *k) for k in own} | {("grids", *k) for k in of_grid}
    finally:
        with owner_engine().begin() as c:
            c.execute(text("UPDATE buildings SET households = households - 1 WHERE id = :id"), {"id": bid})
    # an assignment's change: its grid's colour, not the buildings
    before = _epochs()
    with owner_engine().begin() as c:
        n = c.execute(text("UPDATE assignments SET role = role WHERE grid_id = :g"), {"g": grid}).rowcount
    if n:
        assert _changed(before, _epochs()) == {("grids", *k) for k in of_grid}


def test_an_edit_forgets_its_tiles_and_keeps_the_others(demo: dict, worker_building: dict, sessions: dict) -> None:
    tiles.CACHE.clear()
    (x, y), (fx, fy) = worker_building["tile"], worker_building["far"]
    assert tiles.epoch_cells(15, x, y) != tiles.epoch_cells(15, fx, fy), "the demo is too small for a far tile"
    leader = sessions["leader"]
    for layer, tx, ty in (("buildings", x, y), ("grids", x, y), ("buildings", fx, fy)):
        assert _call(layer, 15, tx, ty, leader).headers["x-tile-cache"] == "miss"
        assert _call(layer, 15, tx, ty, leader).headers["x-tile-cache"] == "hit"
    with owner_engine().begin() as c:
        c.execute(text("UPDATE buildings SET households = households + 1 WHERE id = :id"), {"id": worker_building["id"]})
    try:
        assert _call("buildings", 15, x, y, leader).headers["x-tile-cache"] == "miss"
        assert _call("grids", 15, x, y, leader).headers["x-tile-cache"] == "miss"
        assert _call("buildings", 15, fx, fy, leader).headers["x-tile-cache"] == "hit"  # far away: kept
        assert _call("buildings", 15, x, y, leader).headers["x-tile-cache"] == "hit"  # made again, kept again
    finally:
        with owner_engine().begin() as c:
            c.execute(text("UPDATE buildings SET households = households - 1 WHERE id = :id"), {"id": worker_building["id"]})
        tiles.CACHE.clear()


def test_a_cached_tile_never_crosses_scopes(demo: dict, accounts: dict, worker_building: dict, sessions: dict) -> None:
    """The leader's cached tile is not the worker's (who sees their two grids' buildings only); a
    second leader (same area) gets the first leader's tile from the cache."""
    from gis.scope import Scope

    tiles.CACHE.clear()
    x, y = worker_building["far"]  # a tile with buildings outside the worker's grids
    lead = _call("buildings", 15, x, y, sessions["leader"])
    assert lead.headers["x-tile-cache"] == "miss" and lead.status_code == 200
    work = _call("buildings", 15, x, y, sessions["worker"])
    assert work.headers["x-tile-cache"] == "miss"
    a = accounts["worker"]
    with use_scope(Scope(a.username, "worker", a.communities, a.grids)), tiles.tile_engine().connect() as c:
        own = tiles.tile(c, "buildings", 15, x, y)
    assert (work.body if work.status_code == 200 else b"") == own
    assert own != lead.body  # what RLS lets the worker see differs from the leader's tile
    second = _call("buildings", 15, x, y, sessions["leader2"])
    assert second.headers["x-tile-cache"] == "hit" and second.body == lead.body
    tiles.CACHE.clear()


def _key(scope, layer: str) -> str:
    with use_scope(scope), tiles.tile_engine().connect() as c:
        return tiles.area_key(c, scope, layer)


def test_keys_name_the_area_not_the_user(demo: dict) -> None:
    """The key is what the policies let the scope read, computed by the database: the same area
    under another name (or another role with the same reach) is the same key; a narrower area,
    or another worker's grids, is another key; events stay per user."""
    from gis.scope import Scope

    a, b = Scope("a", "leader"), Scope("b", "leader")
    with owner_engine().connect() as c:
        codes = [r[0] for r in c.execute(text("SELECT code FROM communities ORDER BY code LIMIT 2"))]
        grids = [int(r[0]) for r in c.execute(text("SELECT id FROM grids ORDER BY id LIMIT 2"))]
    one = Scope("c", "leader", (codes[0],))
    for layer in ("buildings", "grids"):
        assert _key(a, layer) == _key(b, layer) == _key(Scope("x", "admin"), layer)  # the whole city, whoever asks
        assert _key(a, layer) != _key(one, layer)
        assert _key(one, layer) == _key(Scope("d", "secretary", (codes[0],)), layer)  # one community: the same rows
        assert _key(one, layer) != _key(Scope("d", "secretary", (codes[1],)), layer)
        assert _key(Scope("w", "worker", (), (grids[0],)), layer) != _key(Scope("w", "worker", (), (grids[1],)), layer)
        assert _key(Scope("w", "worker", (), tuple(grids)), layer) == _key(Scope("v", "worker", (), tuple(reversed(grids))), layer)
        assert _key(Scope("w", "worker", (), (grids[0],)), layer) != _key(a, layer)
    # communities and roads: every signed-in scope reads every row
    assert len({_key(s, layer) for s in (a, one, Scope("w", "worker", (), (grids[0],)), Scope("u", "unit"))
                for layer in ("communities",)}) == 1
    assert _key(a, "events") != _key(b, "events")  # events: per user (units see their own cases)
    assert _key(None, "buildings") != _key(a, "buildings")  # no scope: nothing, and a key of its own


def test_the_key_follows_every_policy_a_layer_reads(demo: dict) -> None:
    """``AREA_TABLES`` holds what the read policies of a layer's tables depend on: each policy may
    ask only for the owner, a valid scope, or ``wangge_area`` of a table the layer's key carries.
    A policy that starts reading the role, the user or another table's area fails here (the key
    would then let one scope's tile reach another)."""
    import re

    allowed_plain = (r"\(CURRENT_USER = 'wangge_owner'::name\)", r"\(\s*SELECT wangge_scope_role\(\) AS wangge_scope_role\) IS NOT NULL",
                     r"wangge_scope\(\) IS NOT NULL")
    with owner_engine().connect() as c:
        quals = c.execute(text("SELECT tablename, string_agg(qual, ' OR ') FROM pg_policies "
                               "WHERE cmd IN ('SELECT', 'ALL') AND schemaname = 'public' GROUP BY 1")).all()
    quals = dict(quals)
    for layer, tables in tiles.LAYER_TABLES.items():
        for table in tables:
            qual = quals[table]
            areas = set(re.findall(r"wangge_area\('(\w+)'::text, (\w+)\)", qual))
            assert areas <= {(t, "false") for t in tiles.AREA_TABLES[layer]}, (layer, table, areas)
            rest = re.sub(r"wangge_area\('\w+'::text, false\)( wangge_area\(all_rows, communities, grids\))?", "", qual)
            rest = re.sub(r"wangge_area\.(all_rows|communities|grids)\b", "", rest)
            for pattern in allowed_plain:
                rest = re.sub(pattern, "", rest)
            assert "wangge_" not in rest and "current_setting" not in rest.lower(), (layer, table, rest)
            # the tables a policy looks into are the layer's own (their policies are checked too)
            for other in re.findall(r"FROM (\w+) \w+\s+WHERE", qual):
                assert other in tables, (layer, table, other)


def test_same_area_shares_and_narrower_never_gets_wider(demo: dict, accounts: dict, worker_building: dict) -> None:
    """Through the route: an administrator's tile serves a leader of the whole city (same rows); a
    secretary of one community, and the worker, each get their own; roads are everyone's."""
    from gis.scope import Scope
    from layers import users as auth
    from webapp import sessions as web_sessions

    x, y = worker_building["far"]
    with owner_engine().connect() as c:
        code = c.execute(text("SELECT community_code FROM grids WHERE id = :g"), {"g": worker_building["grid"]}).scalar_one()
    password = secrets.token_urlsafe(12)
    cookies = {}
    with use_scope(SYSTEM), transaction() as conn:
        for name, role, communities in (("t_admin_tc", "admin", ()), ("t_sec_tc", "secretary", (code,)), ("t_lead_tc", "leader", ())):
            if auth.get_user(conn, name) is None:
                auth.create_user(conn, name, password, role, display_name="测试" + name, communities=list(communities))
            else:
                auth.set_password(conn, name, password)
            cookies[name] = web_sessions.open_session(conn, auth.authenticate(conn, name, password).id, "pytest")
    from tests.accounts import session_token

    worker = session_token(accounts["worker"])
    tiles.CACHE.clear()
    try:
        made = _call("buildings", 15, x, y, cookies["t_admin_tc"])
        assert made.headers["x-tile-cache"] == "miss" and made.status_code == 200
        lead = _call("buildings", 15, x, y, cookies["t_lead_tc"])
        assert lead.headers["x-tile-cache"] == "hit" and lead.body == made.body
        for cookie, scope in ((cookies["t_sec_tc"], Scope("t_sec_tc", "secretary", (code,))),
                              (worker, Scope(accounts["worker"].username, "worker", accounts["worker"].communities, accounts["worker"].grids))):
            got = _call("buildings", 15, x, y, cookie)
            assert got.headers["x-tile-cache"] == "miss"
            with use_scope(scope), tiles.tile_engine().connect() as c:
                own = tiles.tile(c, "buildings", 15, x, y)
            assert (got.body if got.status_code == 200 else b"") == own != made.body
        road = _call("roads", 15, x, y, cookies["t_admin_tc"])
        assert road.headers["x-tile-cache"] == "miss"
        again = _call("roads", 15, x, y, worker)
        assert again.headers["x-tile-cache"] == "hit" and again.body == road.body
    finally:
        tiles.CACHE.clear()


def test_low_zoom_roads_travel_as_one_feature_per_class(demo: dict) -> None:
    """Below ROADS_MERGED_BELOW the main roads of a tile are one multi-line per class: a smaller tile
    than one feature per road piece, with the same classes."""
    from dataclasses import replace

    from gis.scope import SYSTEM

    with owner_engine().connect() as c:
        lon, lat = c.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Centroid(ST_Extent(geom)::geometry) p FROM roads) q")).one()
    z = tiles.ROADS_MERGED_BELOW - 1
    x, y = _tile_of(lon, lat, z - 1)  # the 512-px tile at display zoom z is the standard tile z-1
    layers = tiles._layers()
    spec = layers["roads"]
    with use_scope(SYSTEM), tiles.tile_engine().connect() as c:
        low = tiles.tile(c, "roads", z, x, y, size=512)
        layers["roads"] = replace(spec, sql_low=None, detail_zoom=0)
        try:
            pieces = tiles.tile(c, "roads", z, x, y, size=512)
        finally:
            layers["roads"] = spec
    assert low and pieces and len(low) < len(pieces)
    for cls in (b"primary", b"secondary", b"residential"):
        assert (cls in low) == (cls in pieces)


def test_versioned_layers_are_kept_longer_than_the_others(monkeypatch) -> None:
    """A tile of a per-cell-versioned layer is reused for up to EPOCH_TTL_S (its version moves on
    every write); others for TTL_S."""
    cache = tiles.TileCache()
    now = [1000.0]
    monkeypatch.setattr(tiles.time, "monotonic", lambda: now[0])
    cache.put(("a",), 1, b"x")
    cache.put(("b",), 1, b"y")
    now[0] += tiles.TileCache.TTL_S + 1
    assert cache.get(("a",), 1) is None
    assert cache.get(("b",), 1, tiles.TileCache.EPOCH_TTL_S) == b"y"
    assert cache.get(("b",), 2, tiles.TileCache.EPOCH_TTL_S) is None  # another version: gone
