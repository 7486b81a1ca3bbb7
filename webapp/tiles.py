"""Mapbox vector tiles straight from PostGIS, served by the dashboard's own process.

Why tiles: a sub-district has a few thousand buildings, a city a few hundred thousand;
shipping them as GeoJSON to the browser took 11 s for 50k polygons (design notes). A
tile holds only what one 256-px square shows, cut and quantised by ``ST_AsMVT`` over
the generated ``geom_3857`` columns (indexed), so the cost follows the screen, not
the city.

Each feature carries its ``id`` and the one or two codes the map colours it by, never
its attributes: a click sends the id back to Python, which looks the rest up
(``layers.*.…_detail``). Features never leave their district's rows unfiltered here;
row-level security on the app role does that once it lands.

The route is mounted by ``app.py`` through ``st.App(..., routes=[...])``:
``/tiles/{layer}/{z}/{x}/{y}.pbf``; an optional ``?shift=gcj02`` moves the tile's
features onto a GCJ-02 basemap (AMap) by the offset at the tile's centre, which is
exact to well under a metre at the zooms buildings show (the offset changes by a few
metres over ten kilometres); stored data are never shifted.
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from functools import cache

from sqlalchemy import Connection, Engine, create_engine, text

from analysis.overview import community_worst_in_box_sql, grid_status_in_box_sql
from gis.db import _apply_scope, transaction
from gis.scope import SYSTEM, cache_key, use_scope
from gis.settings import get_settings
from webapp import sessions

# A map asks for a dozen tiles at once; a browser sends six at a time per host. Each
# PostgreSQL backend loads PostGIS on its first spatial call (about half a second), so
# the tile connections are kept open in a pool of their own rather than made per burst.
TILE_CONNECTIONS = 8
EXTENT = 4096  # MVT grid per tile (the spec's default)
BUFFER = 64  # pixels of neighbouring geometry kept so outlines do not break at tile seams
MAX_ZOOM = 22
# Buildings are drawn from this zoom; below it a tile would carry a whole district's
# footprints (1.3 MB at z12 for 100k buildings) for shapes a few pixels wide.
BUILDINGS_MIN_ZOOM = 15
# Below this zoom only the main road classes are sent.
ROADS_DETAIL_ZOOM = 14
MAJOR_ROADS = ("motorway", "trunk", "primary", "secondary", "快速路", "主干路", "次干路")
# Event cases (issue 16): the open ones (migration 0020 indexes their geom_3857). Below
# EVENTS_DETAIL_ZOOM a tile is cut into EVENT_CELLS x EVENT_CELLS cells (16 px on the map's
# 512-px tiles) and a cell holding several cases sends one point (their mean position, the
# commonest stage, overdue if any is, how many): a tile then holds at most ~1,100 points
# whatever the city's case load (100,000 open cases put 25,000 in one z15 tile otherwise).
# Cells are aligned on the whole world's grid, so two tiles agree on a cell at their seam.
EVENT_OPEN = ("reported", "filed", "dispatched", "handled", "verified", "deferred")
EVENTS_DETAIL_ZOOM = 18
EVENT_CELLS = 32
# Below this zoom a city's cases fill every cell: cells twice as wide (32 px), so the
# clusters, drawn larger with their count, do not overlap into a wall.
EVENTS_COARSE_BELOW = 15


@dataclass(frozen=True)
class TileLayer:
    """One MVT layer: which rows, which few attributes, from which zoom."""

    name: str
    sql: str  # selects the attributes and ``geom`` (EPSG:3857) of rows meeting :env (a 3857 box)
    attrs: tuple[str, ...]  # the attribute columns the tile carries (``id`` first)
    min_zoom: int = 0
    int_id: bool = True  # ``id`` is an integer: sent as the MVT feature id
    sql_low: str | None = None  # below ``detail_zoom``: the aggregated form (same attributes)
    detail_zoom: int = 0
    buffer: int = BUFFER  # MVT units kept beyond the tile's edge
    fresh_s: float | None = None  # the tile also depends on the clock: reused at most this long


# Rows are found by the plain numbers of their box (migration 0024: cx/cy_3857, r_3857): under
# FORCE row-level security PostgreSQL uses no index for PostGIS's && (not leakproof), and every
# tile read the whole table; float comparisons are leakproof. A feature meeting the tile has its
# centre within BOX_MARGIN metres of it, unless it is larger (the partial index on r_3857 finds those).
BOX_MARGIN = {"buildings": 100, "roads": 500, "grids": 1000}  # migration 0024 BOX_MARGIN


def _near(alias: str, table: str) -> str:
    m = BOX_MARGIN[table]
    return (f"(({alias}.cx_3857 BETWEEN CAST(:mx0 AS float8) - {m} AND CAST(:mx1 AS float8) + {m} "
            f"AND {alias}.cy_3857 BETWEEN CAST(:my0 AS float8) - {m} AND CAST(:my1 AS float8) + {m}) OR {alias}.r_3857 > {m})")


def _grids_sql() -> str:
    # The status a grid is coloured by is an analysis (analysis/overview.py owns its
    # rules); the tile only carries the verdict.
    return (f"SELECT s.id, s.grid_type AS t, s.status AS st, s.geom_3857 AS geom "
            f"FROM ({grid_status_in_box_sql(':env', _near('g', 'grids'))}) s")


# Below this display zoom the main roads of a tile travel as one multi-line per class (no ids: the
# roads layer is not clickable), not one feature per road piece: a city's 500,000 pieces made a
# 1.2 MB z11 tile (391 kB now; merging the lines too took 3-8 s a tile, so they are only collected).
ROADS_MERGED_BELOW = 13


def _roads_low_sql() -> str:
    return (f"SELECT NULL::bigint AS id, r.road_class AS c, ST_Collect(r.geom_3857) AS geom FROM roads r "
            f"WHERE {_near('r', 'roads')} AND r.geom_3857 && :env AND r.road_class = ANY(:major) GROUP BY r.road_class")


# Below this display zoom the grids layer sends one feature per community (its outline, coloured
# by the most pressing verdict among its grids, no id: a click there picks the community): a grid
# is a few pixels wide, and a city's opening view would carry 50,000 of them.
GRIDS_DETAIL_ZOOM = 12


def _grids_low_sql() -> str:
    return (f"SELECT NULL::bigint AS id, 'comprehensive'::text AS t, s.status AS st, s.geom_3857 AS geom "
            f"FROM ({community_worst_in_box_sql(':env', _near('g', 'grids'))}) s")


_OPEN_SQL = ", ".join(f"'{s}'" for s in EVENT_OPEN)
# overdue as layers/events.py reads it (CASE_COLS): open, not deferred, past the stage's limit
_OVERDUE_SQL = "(e.status IN ('reported', 'filed', 'dispatched', 'handled', 'verified') AND e.stage_due_at < now())"
# The tile's box with one cell's margin (a dot near the edge is drawn whole by both tiles), on
# the plain coordinates: under the table's forced row-level security PostgreSQL uses no index
# for PostGIS's && (not leakproof), but does for float comparisons (migration 0020).
_EVENTS_BOX = (f"e.x_3857 BETWEEN :bx0 AND :bx1 AND e.y_3857 BETWEEN :by0 AND :by1 AND e.status IN ({_OPEN_SQL})")


def _events_sql() -> str:
    """Each open case the scope may read (row-level security on ``events`` decides): its id,
    stage and overdue flag, nothing else (no description, no reporter)."""
    return f"SELECT e.id, e.status AS s, {_OVERDUE_SQL} AS o, NULL::integer AS n, e.geom_3857 AS geom FROM events e WHERE {_EVENTS_BOX}"


def _events_cells_sql() -> str:
    """One point per occupied cell: a lone case as itself (with its id), several as a
    cluster (no id, ``n`` cases, the commonest stage, overdue if any is)."""
    half = 20037508.342789244
    # (counted per cell and stage first: a hash aggregate; the commonest stage is then picked
    # among a handful of rows per cell, not by sorting every case as mode() would)
    return f"""
        WITH k AS (
          SELECT floor((e.x_3857 + {half}) / CAST(:cell AS float8)) AS cx, floor((e.y_3857 + {half}) / CAST(:cell AS float8)) AS cy,
                 e.status, count(*) AS k, bool_or({_OVERDUE_SQL}) AS o, sum(e.x_3857) AS sx, sum(e.y_3857) AS sy, min(e.id) AS id
          FROM events e WHERE {_EVENTS_BOX}
          GROUP BY 1, 2, 3)
        SELECT CASE WHEN sum(k) = 1 THEN min(id) END AS id, (array_agg(status ORDER BY k DESC, status))[1] AS s,
               bool_or(o) AS o, CASE WHEN sum(k) > 1 THEN sum(k)::integer END AS n,
               ST_SetSRID(ST_MakePoint(sum(sx) / sum(k), sum(sy) / sum(k)), 3857) AS geom
        FROM k GROUP BY cx, cy"""


@cache
def _layers() -> dict[str, TileLayer]:
    return {
        "communities": TileLayer(
            "communities",
            "SELECT c.code AS id, c.geom_3857 AS geom FROM communities c WHERE c.geom_3857 && :env",
            ("id",),
            int_id=False,  # community codes are text
        ),
        "grids": TileLayer(
            "grids",
            _grids_sql(),
            ("id", "t", "st"),
            sql_low=_grids_low_sql(),
            detail_zoom=GRIDS_DETAIL_ZOOM,
        ),
        "buildings": TileLayer(
            "buildings",
            f"""SELECT b.id, b.use AS u, (b.households > 0) AS h, b.geom_3857 AS geom
               FROM buildings b WHERE {_near('b', 'buildings')} AND b.geom_3857 && :env""",
            ("id", "u", "h"),
            min_zoom=BUILDINGS_MIN_ZOOM,
        ),
        "roads": TileLayer(
            "roads",
            f"""SELECT r.id, r.road_class AS c, r.geom_3857 AS geom FROM roads r
               WHERE {_near('r', 'roads')} AND r.geom_3857 && :env AND (:z >= {ROADS_DETAIL_ZOOM} OR r.road_class = ANY(:major))""",
            ("id", "c"),
            sql_low=_roads_low_sql(),
            detail_zoom=ROADS_MERGED_BELOW,
        ),
        # points of a city's size (25,000 cameras, 4,000 facilities at 1,000,000 buildings): as
        # tiles when a screen's area holds more than ui/map.py POINTS_GEOJSON_LIMIT of them
        "cameras": TileLayer(
            "cameras",
            "SELECT k.id, k.status AS st, k.geom_3857 AS geom FROM cameras k WHERE k.geom_3857 && :env",
            ("id", "st"),
        ),
        "facilities": TileLayer(
            "facilities",
            "SELECT f.id, f.geom_3857 AS geom FROM facilities f WHERE f.geom_3857 && :env",
            ("id",),
        ),
        "events": TileLayer(
            "events",
            _events_sql(),
            ("id", "s", "o", "n"),
            sql_low=_events_cells_sql(),
            detail_zoom=EVENTS_DETAIL_ZOOM,
            buffer=2 * EXTENT // EVENT_CELLS,  # the one-cell margin (of the coarse cells)
            fresh_s=60.0,  # a case turns overdue with no edit: a tile is at most a minute behind the clock
        ),
    }


LAYER_NAMES = ("communities", "grids", "buildings", "roads", "events", "cameras", "facilities")


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """The tile's EPSG:3857 box (xmin, ymin, xmax, ymax), as ST_TileEnvelope computes it."""
    half = 20037508.342789244
    size = 2 * half / (1 << z)
    return (-half + x * size, half - (y + 1) * size, -half + (x + 1) * size, half - y * size)


def gcj_offset(z: int, x: int, y: int) -> tuple[float, float]:
    """EPSG:3857 metres (dx, dy) that move WGS-84 positions onto GCJ-02 at the tile's centre."""
    import prcoords

    xmin, ymin, xmax, ymax = tile_bounds(z, x, y)
    cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
    lon = cx / 20037508.342789244 * 180
    lat = math.degrees(2 * math.atan(math.exp(cy / 6378137.0)) - math.pi / 2)
    shifted = prcoords.wgs_gcj(prcoords.Coords(lat, lon))
    sx = shifted.lon / 180 * 20037508.342789244
    sy = 6378137.0 * math.log(math.tan(math.pi / 4 + math.radians(shifted.lat) / 2))
    return sx - cx, sy - cy


def tile(conn: Connection, layer: str, z: int, x: int, y: int, shift: str | None = None, size: int = 256) -> bytes:
    """The MVT bytes of one layer's tile (empty bytes where the layer has nothing to show).

    See ``tile_query`` for the zoom rules and sizes."""
    q = tile_query(layer, z, x, y, shift=shift, size=size)
    if q is None:
        return b""
    sql, params, low = q
    if low:
        # the cells are counted in a hash table: tens of thousands of cases at low zoom would
        # otherwise be sorted on disk under the default 4 MB (for this transaction only)
        conn.execute(text("SELECT set_config('work_mem', '32MB', true)"))
    data = conn.execute(text(sql), params).scalar_one()
    return bytes(data or b"")


def tile_query(layer: str, z: int, x: int, y: int, shift: str | None = None, size: int = 256) -> tuple[str, dict, bool] | None:
    """The SQL and parameters of one layer's tile, and whether it is the aggregated (low-zoom) form;
    None where the layer shows nothing at this zoom. (Apart from ``tile`` so that a benchmark can
    EXPLAIN exactly what a tile runs.)

    ``size=512``: the map asks for 512-pixel tiles (a quarter of the requests of 256-pixel
    ones, which is what a browser's six connections per host make count); ``z/x/y`` then
    index the 512-pixel grid at display zoom ``z``, i.e. the standard tile ``z-1/x/y``.
    Zoom rules (buildings from 15, minor roads from 14) apply to the display zoom.
    """
    spec = _layers().get(layer)
    if spec is None:
        raise KeyError(layer)
    if size not in (256, 512):
        raise ValueError(f"tile size {size}: 256 or 512")
    zq = z - 1 if size == 512 else z
    if not (0 <= zq <= MAX_ZOOM and 0 <= x < (1 << zq) and 0 <= y < (1 << zq)):
        raise ValueError(f"no tile {z}/{x}/{y} at {size} px")
    if z < spec.min_zoom:
        return None
    dx, dy = gcj_offset(zq, x, y) if shift == "gcj02" else (0.0, 0.0)
    if dx or dy:
        # Rows are selected against the envelope moved back by the offset, then moved onto it.
        box = "ST_Translate((SELECT tile FROM bounds), -CAST(:dx AS float8), -CAST(:dy AS float8))"
        geom = "ST_Translate(src.geom, CAST(:dx AS float8), CAST(:dy AS float8))"
    else:  # no copy of every geometry when nothing moves (half the time of a building tile)
        box, geom = "(SELECT tile FROM bounds)", "src.geom"
    # An integer id travels as the MVT feature id (not a property): smaller tiles.
    fid = ", 'id'" if spec.int_id else ""
    body = spec.sql_low if spec.sql_low and z < spec.detail_zoom else spec.sql
    # Each feature's ST_AsMVTGeom (clip, snap, Wagyu's validation: most of a building tile's
    # work) is computed once: with the ``mvt`` step as a plain sub-query PostgreSQL inlined it
    # and computed it twice, in the ``IS NOT NULL`` filter and again for the output (EXPLAIN at
    # 1,000,000 buildings; bench/README.md "Tiles at 1,000,000 buildings"). ``OFFSET 0`` keeps
    # the step apart without a materialised CTE's copy of every row.
    sql = f"""
        WITH bounds AS (SELECT ST_TileEnvelope(:zq, :x, :y) AS tile),
        src AS ({body.replace(':env', box)})
        SELECT ST_AsMVT(m, CAST(:name AS text), {EXTENT}, 'mvtgeom'{fid})
        FROM (SELECT {", ".join(spec.attrs)}, mvtgeom FROM (
                SELECT src.*, ST_AsMVTGeom({geom}, bounds.tile, {EXTENT}, {spec.buffer}, true) AS mvtgeom
                FROM src, bounds OFFSET 0) mvt
              WHERE mvtgeom IS NOT NULL) m
    """
    cell = 2 * 20037508.342789244 / (1 << zq) / (EVENT_CELLS if z >= EVENTS_COARSE_BELOW else EVENT_CELLS // 2)
    # the envelope with a cell's margin, moved back by the basemap's offset (as ``box`` above)
    x0, y0, x1, y1 = tile_bounds(zq, x, y)
    params = {"z": z, "zq": zq, "x": x, "y": y, "dx": dx, "dy": dy, "name": layer, "major": list(MAJOR_ROADS), "cell": cell,
              "bx0": x0 - cell - dx, "bx1": x1 + cell - dx, "by0": y0 - cell - dy, "by1": y1 + cell - dy,
              "mx0": x0 - dx, "mx1": x1 - dx, "my0": y0 - dy, "my1": y1 - dy}
    return sql, params, bool(spec.sql_low and z < spec.detail_zoom)



# --- cache -------------------------------------------------------------------------------

class TileCache:
    """Recently made tiles, kept while the data they show are unchanged.

    Why: tiles change only when data do, and everyone opening the dashboard looks at the
    same few places; a z15 building tile costs PostGIS tens of milliseconds. A tile is
    reused while the version of the area it covers is the one it was made under
    (``tile_version``: per z14 cell, bumped by triggers on the rows it shows, migration 0024;
    the newest audit row for events), and for at most ``TTL_S`` seconds in any case. Keys
    hold the asking scope's area (``area_key``): row-level security decides what a tile
    holds. Bounded by bytes, least recently used first out.
    """

    TTL_S = 300.0
    # Layers versioned per cell by the triggers (EPOCH_LAYERS): every write to what they show
    # bumps their version, so the age limit only bounds memory of a quiet city, not staleness.
    EPOCH_TTL_S = 3600.0

    def __init__(self, max_bytes: int = 64 * 2**20):
        from collections import OrderedDict
        from threading import Lock

        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple, tuple[float, int, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = Lock()

    def get(self, key: tuple, version: int, ttl_s: float | None = None) -> bytes | None:
        """The tile made under ``version``, if younger than ``ttl_s`` (default ``TTL_S``)."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            made, v, data = item
            if v != version or time.monotonic() - made > (self.TTL_S if ttl_s is None else ttl_s):
                self._drop(key)
                return None
            self._items.move_to_end(key)
            return data

    def put(self, key: tuple, version: int, data: bytes) -> None:
        if len(data) > self.max_bytes // 16:
            return
        with self._lock:
            if key in self._items:
                self._drop(key)
            self._items[key] = (time.monotonic(), version, data)
            self._bytes += len(data)
            while self._bytes > self.max_bytes and self._items:
                self._drop(next(iter(self._items)))

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def _drop(self, key: tuple) -> None:
        _, _, data = self._items.pop(key)
        self._bytes -= len(data)


CACHE = TileCache()


def data_version(conn: Connection) -> int:
    """The newest audit row's id: changes whenever an import or an edit lands (through a
    definer function: the log itself is readable by administrators only). The version of
    layers without their own (``events``, which also ages with the clock)."""
    return int(conn.execute(text("SELECT audit_version()")).scalar_one())


# Layers whose tiles are versioned per area (migration 0024's ``tile_epochs``): triggers on the
# rows each shows bump the version of the z14 cells those rows cover, so an edit forgets the
# tiles around it and no other (a building's households: its own tiles and its grid's).
EPOCH_LAYERS = ("communities", "grids", "buildings", "roads")
EPOCH_ZOOM = 14  # migration 0024 CELL_ZOOM


def epoch_cells(zq: int, x: int, y: int) -> tuple[int, int, int, int]:
    """The z14 cells (x0, y0, x1, y1) whose versions a standard tile ``zq/x/y`` depends on.

    At z14 and deeper a tile lies in one cell (a feature near its edge has bumped this cell
    too: the triggers grow each box by a 64th of a cell, a z14 tile's buffer). Above it a tile
    spans 2^(14-zq) cells a side, plus its 64-pixel buffer: as many cells again as that buffer
    is wide (at least one)."""
    if zq >= EPOCH_ZOOM:
        shift = zq - EPOCH_ZOOM
        return x >> shift, y >> shift, x >> shift, y >> shift
    span = 1 << (EPOCH_ZOOM - zq)
    pad = max(1, -(-span * BUFFER // EXTENT))
    return x * span - pad, y * span - pad, (x + 1) * span - 1 + pad, (y + 1) * span - 1 + pad


def tile_version(conn: Connection, layer: str, zq: int, x: int, y: int) -> int | None:
    """What a cached tile of ``layer`` at standard tile ``zq/x/y`` is valid for: the newest
    version of the cells it covers (per-area layers), else the newest audit row.

    None: the layer's versions are not kept (its ``{layer}_tile_epochs_insert`` trigger is gone:
    on Citus, ``wangge db distribute`` drops them, gis/citus.py), so no tile of it may be cached --
    a cache that nothing invalidates would serve stale tiles. Checked in the same query (an index
    look-up in pg_trigger), so a database distributed while the server runs is followed at once."""
    return tile_state(conn, layer, zq, x, y)[0]


# What a map layer's tile holds of the asking scope's world: the read policies of the tables its
# SQL reads decide which rows it carries, and nothing else about the user does (the attributes are
# the same for everyone). Communities and roads: every valid scope reads every row (their policies
# ask only for a valid signed scope). Buildings: the area ``wangge_area('buildings')`` gives (the
# policy's own function). Grids: the outlines are everyone's, the verdict reads ``building_stats``
# (the buildings' area) and ``assignments`` (its own area; its policy looks into buildings and
# grids). tests/test_tiles_cache.py checks these policies against this table, so a policy that
# starts reading something else fails there before a tile crosses scopes.
AREA_TABLES = {"communities": (), "roads": (), "buildings": ("buildings",), "grids": ("buildings", "assignments")}
# ... and the tables whose read policies those are (the layer's SQL, its low-zoom form -- grids
# below GRIDS_DETAIL_ZOOM join communities -- and the policies' sub-queries)
LAYER_TABLES = {"communities": ("communities",), "roads": ("roads",), "buildings": ("buildings",),
                "grids": ("grids", "communities", "building_stats", "assignments", "buildings")}


def _area_sql(layer: str) -> str:
    """SQL text naming what ``layer``'s tile holds for the current scope: ``-`` when the scope is
    not valid (every policy then yields nothing); else, per table of ``AREA_TABLES``, ``all`` or
    its communities and grids (sorted, so the same area in another order is the same key)."""
    parts = ["CASE WHEN wangge_scope() IS NULL THEN '-' ELSE 'signed' END"]
    for table in AREA_TABLES[layer]:
        parts.append(f"""(SELECT CASE WHEN a.all_rows THEN '{table}:all' ELSE format('{table}:c=%s:g=%s',
                coalesce(array_to_string(ARRAY(SELECT DISTINCT u FROM unnest(a.communities) u ORDER BY 1), ','), '-'),
                coalesce(array_to_string(ARRAY(SELECT DISTINCT u FROM unnest(a.grids) u ORDER BY 1), ','), '-')) END
              FROM wangge_area('{table}', false) a)""")
    return " || '|' || ".join(parts)


def tile_state(conn: Connection, layer: str, zq: int, x: int, y: int) -> tuple[int | None, str | None]:
    """``(version, area)`` of a tile in one query: ``tile_version``'s version, and for the layers of
    ``AREA_TABLES`` the area its content depends on (``_area_sql``: computed by the database from the
    scope it verified, with the function the policies use), so that users of the same area -- two
    leaders of the whole city, an administrator -- share a cached tile and a narrower scope never
    gets a wider one's. Other layers: None (the caller keys them by user)."""
    if layer not in EPOCH_LAYERS:
        return data_version(conn), None
    x0, y0, x1, y1 = epoch_cells(zq, x, y)
    row = conn.execute(text(f"""
        SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass('public.' || :layer)
                                 AND tgname = :layer || '_tile_epochs_insert')
               THEN (SELECT coalesce(max(v), 0) FROM tile_epochs
                     WHERE layer = :layer AND cx BETWEEN :x0 AND :x1 AND cy BETWEEN :y0 AND :y1) END AS v,
               {_area_sql(layer)} AS area"""),
        {"layer": layer, "x0": x0, "y0": y0, "x1": x1, "y1": y1}).one()
    return row.v, row.area


def area_key(conn: Connection, scope, layer: str) -> str:
    """The part of the cache key that stands for who asks: for the map's layers (``AREA_TABLES``)
    the area the database gives for the scope of this connection's transaction (``tile_state``);
    for the others (events: units see the cases dispatched to them) the user."""
    if layer in AREA_TABLES:
        return str(tile_state(conn, layer, 0, 0, 0)[1])
    return cache_key(scope)


# --- HTTP --------------------------------------------------------------------------------

class _SessionCache:
    """Which user a session cookie belongs to, remembered for a few seconds.

    Why: a map view asks for dozens of tiles at once; checking the session in the
    database for each would double the work. Thirty seconds bounds how long a revoked
    session can still fetch tiles.
    """

    TTL_S = 30.0

    def __init__(self) -> None:
        from threading import Lock

        self._items: dict[str, tuple[float, object]] = {}
        self._lock = Lock()

    def scope_for(self, token: str | None):
        """The signed-in user's ``Scope`` for a session token, or None."""
        if not token:
            return None
        now = time.monotonic()
        with self._lock:
            item = self._items.get(token)
            if item and now - item[0] < self.TTL_S:
                return item[1]
        with use_scope(SYSTEM), transaction() as conn:
            _, user = sessions.signed_in_user(conn, token)
        scope = user.scope() if user is not None else None
        with self._lock:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[token] = (now, scope)
        return scope


SESSIONS = _SessionCache()


def tile_endpoint(request):  # starlette.requests.Request -> Response; sync: Starlette runs it in a thread
    """``GET /tiles/{layer}/{z}/{x}/{y}.pbf``: one tile for the signed-in user, 204 when empty.

    The user comes from the session cookie (never from the URL); their scope is set for the tile's
    transaction, so row-level security cuts buildings to their area exactly as on the
    pages. No session: 401.
    """
    from starlette.responses import Response

    p = request.path_params
    shift = request.query_params.get("shift")
    try:
        z, x, y = tile_coordinates(p["z"], p["x"], p["y"])
    except ValueError as exc:
        return Response(str(exc), status_code=400)
    # the session only from the HttpOnly cookie: a token in a URL ends up in logs and Referer headers
    token = request.cookies.get(get_settings().session_cookie)
    scope = SESSIONS.scope_for(token)
    if scope is None:
        return Response("sign in first", status_code=401)
    # ?cache=0 (always from PostGIS, for benchmarks) only for administrators: anyone else could
    # make every tile request cost a database query
    use_cache = request.query_params.get("cache") != "0" or scope.role not in ("admin", "system")
    hit = False
    try:
        size = int(request.query_params.get("size", 256))
        spec = _layers().get(p["layer"])
        started = time.perf_counter()
        with use_scope(scope), tile_engine().connect() as conn:
            zq = z - 1 if size == 512 else z
            version, area = tile_state(conn, p["layer"], zq, x, y) if 0 <= zq else (0, None)
            # the layer's area as the database computed it for this scope, else (other layers) the user
            key = (area if area is not None else cache_key(scope), p["layer"], z, x, y, shift, size)
            if spec is not None and spec.fresh_s:
                key += (int(time.time() // spec.fresh_s),)
            use_cache = use_cache and version is not None  # no versions kept (on Citus): never from the cache
            data = CACHE.get(key, version, CACHE.EPOCH_TTL_S if p["layer"] in EPOCH_LAYERS else None) if use_cache else None
            hit = data is not None
            if data is None:
                data = tile(conn, p["layer"], z, x, y, shift=shift, size=size)
                if version is not None:  # ... nor into it
                    CACHE.put(key, version, data)
        ms = (time.perf_counter() - started) * 1000
    except KeyError:
        return Response(f"unknown layer {p['layer']!r}; layers: {', '.join(LAYER_NAMES)}", status_code=404)
    except ValueError as exc:
        return Response(str(exc), status_code=400)
    headers = {"Cache-Control": "private, max-age=60", "Server-Timing": f"db;dur={ms:.1f}",
               "X-Tile-Cache": "hit" if hit else "miss", "Vary": "Cookie"}
    if not data:
        return Response(status_code=204, headers=headers)
    return Response(data, media_type="application/vnd.mapbox-vector-tile", headers=headers)


TILE_PATH = "/tiles/{layer}/{z}/{x}/{y}.pbf"  # parsed by tile_coordinates: a bad one is a 400, not the page
MAX_ZOOM = 22


def tile_coordinates(z: str | int, x: str | int, y: str | int) -> tuple[int, int, int]:
    """``(z, x, y)`` as numbers, or ValueError: z in 0..22, x and y within the 2^z tiles of that zoom."""
    if not all(re.fullmatch(r"[0-9]{1,8}", str(v)) for v in (z, x, y)):
        raise ValueError("tile coordinates must be non-negative integers")
    zi, xi, yi = int(z), int(x), int(y)
    if zi > MAX_ZOOM:
        raise ValueError(f"zoom must be between 0 and {MAX_ZOOM}")
    if xi >= 2 ** zi or yi >= 2 ** zi:
        raise ValueError(f"x and y must be below {2 ** zi} at zoom {zi}")
    return zi, xi, yi


@cache
def _engine(url: str) -> Engine:
    from gis.db import connect_args

    return create_engine(url, pool_size=TILE_CONNECTIONS, max_overflow=TILE_CONNECTIONS, pool_pre_ping=True,
                         pool_recycle=3600, connect_args=connect_args())


def tile_engine() -> Engine:
    """The app role's connections for tiles (row-level security binds them like the pages':
    each transaction carries the current scope, see ``gis.db``)."""
    from sqlalchemy import event

    engine = _engine(get_settings().database_url)
    if not event.contains(engine, "begin", _apply_scope):
        event.listen(engine, "begin", _apply_scope)
    return engine


def warm() -> None:
    """Open the tile connections and have each load PostGIS and plan the tile queries, so
    the first map after a restart does not pay half a second per connection."""
    from concurrent.futures import ThreadPoolExecutor

    def one(_: int) -> Connection:
        with use_scope(SYSTEM):  # an empty corner tile: plans the queries, shows nobody anything
            conn = tile_engine().connect()
            for layer in LAYER_NAMES:
                tile(conn, layer, BUILDINGS_MIN_ZOOM, 0, 0)
            conn.commit()
        return conn

    with ThreadPoolExecutor(TILE_CONNECTIONS) as pool:
        conns = list(pool.map(one, range(TILE_CONNECTIONS)))
    for conn in conns:  # back to the pool, still open
        conn.close()


def routes() -> list:
    """The Starlette routes ``app.py`` hands to ``st.App``."""
    from starlette.routing import Route

    return [Route(TILE_PATH, tile_endpoint, methods=["GET"])]
