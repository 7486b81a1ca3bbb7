"""Vector tiles from PostGIS (webapp/tiles.py) on the demo sub-district."""
from __future__ import annotations

import math

import pytest
from sqlalchemy import text

from webapp import tiles
from gis.db import owner_engine


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


@pytest.fixture(scope="module")
def centre(demo: dict) -> tuple[float, float]:
    with owner_engine().connect() as c:
        x, y = c.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Centroid(ST_Collect(geom)) p FROM buildings) q")).one()
    return float(x), float(y)


@pytest.fixture
def conn(demo: dict):
    with owner_engine().connect() as c:
        yield c


def test_every_layer_has_a_tile_at_the_centre(conn, centre) -> None:
    x, y = _tile_of(*centre, 15)
    for layer in tiles.LAYER_NAMES:
        if layer == "events":  # the demo has no cases: tests/test_events_tiles.py makes some
            continue
        data = tiles.tile(conn, layer, 15, x, y)
        assert len(data) > 100, layer
        assert layer.encode() in data  # the MVT layer is named after the layer


def test_features_carry_ids_and_style_codes_only(conn, centre) -> None:
    x, y = _tile_of(*centre, 15)
    buildings = tiles.tile(conn, "buildings", 15, x, y)
    grids = tiles.tile(conn, "grids", 15, x, y)
    for attr in (b"address", b"households", b"residents", b"name", b"elderly_65"):
        assert attr not in buildings, attr  # attributes are looked up by id, never shipped
    assert b"st" in grids and any(s.encode() in grids for s in ("ok", "over", "under", "no_worker"))


def test_buildings_only_from_zoom_15(conn, centre) -> None:
    for z in (10, 12, 14):
        assert tiles.tile(conn, "buildings", z, *_tile_of(*centre, z)) == b""
    assert tiles.tile(conn, "grids", 12, *_tile_of(*centre, 12))  # grid shapes at every zoom
    assert tiles.tile(conn, "communities", 10, *_tile_of(*centre, 10))


def test_minor_roads_left_out_at_low_zoom(conn, centre) -> None:
    low = tiles.tile(conn, "roads", 12, *_tile_of(*centre, 12))
    with owner_engine().connect() as c:
        minor = c.execute(text("SELECT count(*) FROM roads WHERE NOT road_class = ANY(:m)"), {"m": list(tiles.MAJOR_ROADS)}).scalar_one()
    if minor:
        assert b"residential" not in low and b"living_street" not in low


def test_envelope_matches_postgis(conn) -> None:
    for z, x, y in ((0, 0, 0), (12, 3348, 1682), (17, 107158, 53847)):
        row = conn.execute(text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_TileEnvelope(:z, :x, :y) e) q"),
                           {"z": z, "x": x, "y": y}).one()
        assert tiles.tile_bounds(z, x, y) == pytest.approx(tuple(row), abs=1e-6)


def test_gcj02_shift_moves_features_not_data(conn, centre) -> None:
    x, y = _tile_of(*centre, 16)
    dx, dy = tiles.gcj_offset(16, x, y)
    assert 100 < math.hypot(dx, dy) < 1500  # GCJ-02 is a few hundred metres off in Wuhan
    plain = tiles.tile(conn, "buildings", 16, x, y)
    shifted = tiles.tile(conn, "buildings", 16, x, y, shift="gcj02")
    assert plain and shifted and plain != shifted
    assert tiles.tile(conn, "buildings", 16, x, y) == plain  # nothing stored was moved


def test_bad_requests(conn) -> None:
    with pytest.raises(KeyError):
        tiles.tile(conn, "people", 15, 0, 0)
    with pytest.raises(ValueError):
        tiles.tile(conn, "grids", 3, 8, 0)
    with pytest.raises(ValueError):
        tiles.tile(conn, "grids", 30, 0, 0)


@pytest.fixture(scope="module")
def leader_cookie(accounts: dict) -> str:
    """A signed-in street leader's session (tiles answer nobody else)."""
    from tests.accounts import session_token

    return session_token(accounts["leader"])


def _call(path_params: dict, query: bytes = b"", cookie: str | None = None):
    from starlette.requests import Request

    from gis.settings import get_settings

    headers = [(b"cookie", f"{get_settings().session_cookie}={cookie}".encode())] if cookie else []
    scope = {"type": "http", "method": "GET", "path": "/tiles", "query_string": query, "headers": headers,
             "path_params": path_params}
    response = tiles.tile_endpoint(Request(scope))
    return response


def test_http_endpoint(demo: dict, centre, leader_cookie: str) -> None:
    x, y = _tile_of(*centre, 15)
    assert _call({"layer": "buildings", "z": 15, "x": x, "y": y}).status_code == 401  # no session, no tile
    ok = _call({"layer": "buildings", "z": 15, "x": x, "y": y}, cookie=leader_cookie)
    assert ok.status_code == 200 and ok.media_type == "application/vnd.mapbox-vector-tile" and len(ok.body) > 100
    assert "db;dur=" in ok.headers["server-timing"] and "private" in ok.headers["cache-control"]
    assert _call({"layer": "buildings", "z": 12, "x": x >> 3, "y": y >> 3}, cookie=leader_cookie).status_code == 204
    assert _call({"layer": "nope", "z": 15, "x": x, "y": y}, cookie=leader_cookie).status_code == 404
    assert _call({"layer": "grids", "z": 2, "x": 9, "y": 0}, cookie=leader_cookie).status_code == 400
    shifted = _call({"layer": "buildings", "z": 15, "x": x, "y": y}, b"shift=gcj02", cookie=leader_cookie)
    assert shifted.status_code == 200 and shifted.body != ok.body


def test_route_path() -> None:
    """The path app.py mounts; outside Streamlit's reserved prefixes (/_stcore, /static, /media, /component)."""
    route = tiles.routes()[0]
    # plain segments: tile_coordinates checks them, so a bad one is a 400 rather than the page (issue 19)
    assert route.path == tiles.TILE_PATH == "/tiles/{layer}/{z}/{x}/{y}.pbf"


def test_512_pixel_tiles_are_the_parent_tile(conn, centre) -> None:
    """``size=512`` at display zoom z is the standard tile z-1 (a quarter of the requests)."""
    x, y = _tile_of(*centre, 15)
    big = tiles.tile(conn, "grids", 16, x, y, size=512)
    assert big == tiles.tile(conn, "grids", 15, x, y)
    assert tiles.tile(conn, "buildings", 15, x >> 1, y >> 1, size=512)  # display zoom 15: buildings shown
    assert tiles.tile(conn, "buildings", 14, x >> 2, y >> 2, size=512) == b""
    with pytest.raises(ValueError):
        tiles.tile(conn, "grids", 15, x, y, size=300)


def test_cache_reuses_tiles_until_the_data_change(demo: dict, centre, leader_cookie: str) -> None:
    x, y = _tile_of(*centre, 15)
    tiles.CACHE.clear()
    params = {"layer": "grids", "z": 15, "x": x, "y": y}
    first = _call(params, cookie=leader_cookie)
    again = _call(params, cookie=leader_cookie)
    assert first.headers["x-tile-cache"] == "miss" and again.headers["x-tile-cache"] == "hit"
    assert again.body == first.body
    assert _call(params, b"cache=0", cookie=leader_cookie).headers["x-tile-cache"] == "hit"  # bypass: administrators only
    with owner_engine().begin() as c:  # an edit of a building in the tile (its grid's colour follows it: migration 0024)
        c.execute(text("""UPDATE buildings SET households = households WHERE id = (SELECT id FROM buildings
                          ORDER BY geom <-> ST_SetSRID(ST_MakePoint(:x, :y), 4326) LIMIT 1)"""), {"x": centre[0], "y": centre[1]})
    try:
        assert _call(params, cookie=leader_cookie).headers["x-tile-cache"] == "miss"
    finally:
        tiles.CACHE.clear()


def test_cache_is_bounded() -> None:
    cache = tiles.TileCache(max_bytes=16 * 1000)
    for i in range(40):
        cache.put(("b", i), 1, b"x" * 900)
    assert cache._bytes <= 16 * 1000 and cache.get(("b", 0), 1) is None and cache.get(("b", 39), 1) is not None
    assert cache.get(("b", 39), 2) is None  # another data version: not reused


def test_bad_tile_coordinates_are_400_and_the_url_carries_no_session(demo: dict, centre, leader_cookie: str) -> None:
    """Issue 19: z 0..22, x and y inside the zoom's tiles, else 400; no ``?s=`` token; ``cache=0``
    is honoured for administrators only (checked above for a leader)."""
    for z, x, y in (("-1", "0", "0"), ("23", "0", "0"), ("2", "4", "0"), ("2", "0", "4"), ("a", "0", "0"), ("1", "1.5", "0")):
        assert _call({"layer": "grids", "z": z, "x": x, "y": y}, cookie=leader_cookie).status_code == 400, (z, x, y)
    x, y = _tile_of(*centre, 15)
    assert _call({"layer": "grids", "z": "15", "x": str(x), "y": str(y)}, cookie=leader_cookie).status_code in (200, 204)
    assert _call({"layer": "grids", "z": 15, "x": x, "y": y}, f"s={leader_cookie}".encode()).status_code == 401
