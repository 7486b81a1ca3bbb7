"""A city-scale synthetic data set that the benchmarks share (import, map rendering,
coverage, siting).

One sub-district holding a whole city's worth of features, laid out on a jittered street
lattice near Wuhan: communities and grids are rectangles of street blocks whose edges run
along the road centre lines (so the hierarchy nests exactly), buildings are rectangular
footprints set back inside the blocks (one per slot, so none overlap), cameras stand
beside the streets and facilities sit in buildings. Everything is built in EPSG:4547
(CGCS2000 3-degree GK, CM 114E: metres around Wuhan) and delivered in EPSG:4326 with the
columns the importers read, so ``layers.importer.import_file`` accepts every layer.

Vectorised throughout (numpy/shapely; Python loops only over grids and communities):
100,000 buildings take a few seconds. Deterministic: one seeded ``numpy`` Generator.

    python -m bench.scale --buildings 100000 --out /tmp/city.gpkg
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import Transformer

from layers.vocab import BUILDING_USES, FACILITY_CATEGORIES

METRIC_EPSG = 4547  # CGCS2000 / 3-degree Gauss-Kruger CM 114E
CENTRE_LONLAT = (114.30, 30.55)  # Wuhan
DISTRICT = dict(district_code="420106", district_name="武昌区", city_name="武汉市", province_name="湖北省")
SUBDISTRICT_CODE, SUBDISTRICT_NAME = "420106020", "基准城街道"
# Order of layers for import (parents first) and the layer names inside the GeoPackage.
LAYERS = ("subdistricts", "communities", "grids", "buildings", "roads", "cameras", "facilities")
GEOM_TYPES = {"subdistricts": "MultiPolygon", "communities": "MultiPolygon", "grids": "MultiPolygon", "buildings": "MultiPolygon",
              "roads": "LineString", "cameras": "Point", "facilities": "Point"}

SLOT_W, SLOT_H = 28.0, 24.0  # m: one building per slot
SETBACK = 12.0  # m from the street centre line to the first slot
JITTER = 4.0  # m: street nodes move by up to this much (must stay below SETBACK)
BUILDINGS_PER_BLOCK = 10  # default lattice density when no road count is given
USES = ("residential", "mixed", "commercial", "office", "public", "school", "hospital", "industrial", "other")
USE_P = (0.80, 0.06, 0.05, 0.03, 0.02, 0.01, 0.005, 0.015, 0.01)
LENS = {102: (30, 46), 79: (40, 66), 51: (60, 91), 38: (80, 121)}  # HFOV -> view range (m), as the demo
DIR_TYPE = np.array([4, 6, 1, 5, 3, 7, 2, 8])  # GB/T 28181 DirectionType of N, NE, E, SE, S, SW, W, NW
FACILITY_P = {  # relative frequency and floor-area range (m2) per category
    "community_service_station": (10, 200, 600), "health_station": (8, 150, 400), "elderly_day_care": (6, 300, 800),
    "kindergarten": (8, 1500, 4000), "culture_station": (5, 250, 1200), "primary_school": (4, 6000, 15000),
    "middle_school": (2, 10000, 20000), "health_centre": (2, 1500, 3000), "subdistrict_service_centre": (1, 700, 1500),
    "school": (1, 5000, 15000), "hospital": (1, 8000, 40000), "clinic": (6, 60, 300), "police": (3, 60, 3000),
    "pharmacy": (10, 60, 250), "fire_station": (1, 1500, 4000),
}
COMMUNITY_A = "紫阳首义大成彭刘起义张洞复兴阅马文昌粮道察院五福长湖千家读书体育宝积和平友谊中华自由红楼湖北楚材南湖凤凰得胜兰亭积玉"
COMMUNITY_B = "东西南北中新老上下前后"
assert set(FACILITY_P) == {c.code for c in FACILITY_CATEGORIES}
assert set(USES) == {u.code for u in BUILDING_USES}


def city_sizes(buildings: int) -> dict[str, int]:
    """Issue 18's city proportions for a building count: 1,000,000 buildings, 50,000 grids,
    25,000 cameras, 4,000 facilities, 500,000 road edges, scaled down 10x at a time."""
    return dict(buildings=buildings, grids=max(1, buildings // 20), cameras=max(1, buildings // 40),
                facilities=max(len(FACILITY_CATEGORIES), buildings // 250), roads=max(4, buildings // 2))


def generate(
    buildings: int = 100_000,
    grids: int | None = None,
    cameras: int | None = None,
    facilities: int | None = None,
    roads: int | None = None,
    communities: int | None = None,
    seed: int = 0,
) -> dict[str, gpd.GeoDataFrame]:
    """The layers of a synthetic city, keyed by importer layer name (in import order), EPSG:4326.

    ``roads`` is the exact number of road edges (LineStrings): the lattice is the largest
    near-square one with no more edges, and some edges are split to make up the rest.
    Defaults: a grid per 20 buildings (about 400 households), a community per 12 grids,
    a camera per 40 buildings, a facility per 250, a street block per 10 buildings.
    """
    if buildings < 1:
        raise ValueError("buildings must be at least 1")
    grids = grids or max(1, buildings // 20)
    # a community per 12 grids, at most 999 (a 3-digit code in one sub-district): a city's
    # 50,000 grids become 999 communities of about 50 grids each
    communities = communities or min(999, max(1, math.ceil(grids / 12)))
    cameras = max(1, buildings // 40) if cameras is None else cameras
    facilities = max(len(FACILITY_CATEGORIES), buildings // 250) if facilities is None else facilities
    if not 1 <= communities <= min(grids, 999):
        raise ValueError(f"communities must be between 1 and min(grids, 999), got {communities}")
    if math.ceil(grids / communities) > 999:
        raise ValueError("more than 999 grids per community: raise communities")
    if cameras > 999_999:
        raise ValueError("at most 999,999 cameras (6-digit serial)")
    rng = np.random.default_rng(seed)

    nx, ny = _lattice(buildings, grids, roads)
    # Street line positions (irregular spacing), then every node jittered.
    per_block = math.ceil(buildings / (nx * ny))
    cols = max(1, math.ceil(math.sqrt(per_block * SLOT_H / SLOT_W)))
    rows = math.ceil(per_block / cols)
    widths = cols * SLOT_W * rng.uniform(1.0, 1.3, nx) + 2 * SETBACK
    heights = rows * SLOT_H * rng.uniform(1.0, 1.3, ny) + 2 * SETBACK
    cx, cy = Transformer.from_crs(4326, METRIC_EPSG, always_xy=True).transform(*CENTRE_LONLAT)
    xs = np.concatenate([[0.0], np.cumsum(widths)]) + cx - widths.sum() / 2
    ys = np.concatenate([[0.0], np.cumsum(heights)]) + cy - heights.sum() / 2
    X = xs[:, None] + rng.uniform(-JITTER, JITTER, (nx + 1, ny + 1))
    Y = ys[None, :] + rng.uniform(-JITTER, JITTER, (nx + 1, ny + 1))

    comm_rects, grid_rects, grid_comm = _hierarchy(nx, ny, grids, communities)
    block_grid = np.empty((nx, ny), dtype=np.int64)
    for g, (i0, i1, j0, j1) in enumerate(grid_rects):
        block_grid[i0:i1, j0:j1] = g

    out: dict[str, gpd.GeoDataFrame] = {}
    comm_codes = [f"{SUBDISTRICT_CODE}{c + 1:03d}" for c in range(communities)]
    comm_names = [_community_name(c) for c in range(communities)]
    serial = np.zeros(communities, dtype=int)
    grid_codes, grid_names = [], []
    for c in grid_comm:
        serial[c] += 1
        grid_codes.append(f"{comm_codes[c]}{serial[c]:03d}")
        grid_names.append(f"{comm_names[c]}第{serial[c]}网格")

    whole = _ring_polygon(X, Y, 0, nx, 0, ny)
    out["subdistricts"] = _frame(dict(
        code=[SUBDISTRICT_CODE], name=[SUBDISTRICT_NAME], metric_srid=[METRIC_EPSG], **{k: [v] for k, v in DISTRICT.items()}),
        [whole])
    out["communities"] = _frame(dict(code=comm_codes, name=comm_names, subdistrict_code=SUBDISTRICT_CODE),
                                [_ring_polygon(X, Y, *r) for r in comm_rects])
    out["grids"] = _frame(dict(code=grid_codes, name=grid_names, grid_type="comprehensive",
                               community_code=[comm_codes[c] for c in grid_comm]),
                          [_ring_polygon(X, Y, *r) for r in grid_rects])

    b = _buildings(buildings, nx, ny, xs, ys, rows, cols, rng)
    out["buildings"] = b.pop("frame")
    edges = _roads(X, Y, nx, ny, roads, rng)
    out["roads"] = edges.pop("frame")
    out["cameras"] = _cameras(cameras, edges, out["communities"], comm_codes, rng)
    out["facilities"] = _facilities(facilities, b["centres"], rng)
    return out


# --- layout --------------------------------------------------------------------------------

def _edges(nx: int, ny: int) -> int:
    return nx * (ny + 1) + ny * (nx + 1)


def _lattice(buildings: int, grids: int, roads: int | None) -> tuple[int, int]:
    """Blocks across and down: from the road edge count when given, else a block per 10 buildings."""
    if roads is None:
        blocks = max(grids, math.ceil(buildings / BUILDINGS_PER_BLOCK))
        nx = math.ceil(math.sqrt(blocks))
        return nx, math.ceil(blocks / nx)
    n = max(1, int((-1 + math.sqrt(1 + 2 * roads)) // 2))
    while _edges(n + 1, n + 1) <= roads:
        n += 1
    while n > 1 and _edges(n, n) > roads:
        n -= 1
    nx, ny = (n + 1, n) if _edges(n + 1, n) <= roads else (n, n)
    if _edges(nx, ny) > roads or nx * ny < grids:
        raise ValueError(f"{roads} road edges make too few street blocks for {grids} grids")
    return nx, ny


def _split(i0: int, i1: int, j0: int, j1: int, n: int, out: list[tuple[int, int, int, int]]) -> None:
    """Cut a rectangle of blocks into n rectangles (k-d halving along the longer side)."""
    if n == 1:
        out.append((i0, i1, j0, j1))
        return
    w, h = i1 - i0, j1 - j0
    if w >= h:
        k = w // 2
        n1 = min(max(round(n * k / w), 1, n - (w - k) * h), n - 1, k * h)
        _split(i0, i0 + k, j0, j1, n1, out)
        _split(i0 + k, i1, j0, j1, n - n1, out)
    else:
        k = h // 2
        n1 = min(max(round(n * k / h), 1, n - (h - k) * w), n - 1, k * w)
        _split(i0, i1, j0, j0 + k, n1, out)
        _split(i0, i1, j0 + k, j1, n - n1, out)


def _hierarchy(nx: int, ny: int, grids: int, communities: int):
    """Community rectangles, then each cut into its share of the grids (by blocks)."""
    comm: list[tuple[int, int, int, int]] = []
    _split(0, nx, 0, ny, communities, comm)
    cells = np.array([(i1 - i0) * (j1 - j0) for i0, i1, j0, j1 in comm])
    share = np.maximum(1, np.floor(grids * cells / cells.sum()).astype(int))
    share = np.minimum(share, np.minimum(cells, 999))
    while share.sum() < grids:  # hand out the remainder where there is room, largest first
        room = np.flatnonzero(share < np.minimum(cells, 999))
        share[room[np.argmax(cells[room] / share[room])]] += 1
    while share.sum() > grids:
        share[np.argmax(np.where(share > 1, share, 0))] -= 1
    rects: list[tuple[int, int, int, int]] = []
    owner: list[int] = []
    for c, (r, n) in enumerate(zip(comm, share)):
        part: list[tuple[int, int, int, int]] = []
        _split(*r, int(n), part)
        rects += part
        owner += [c] * len(part)
    return comm, rects, owner


def _ring_polygon(X: np.ndarray, Y: np.ndarray, i0: int, i1: int, j0: int, j1: int) -> shapely.Polygon:
    """The outline of blocks [i0,i1) x [j0,j1) through every street node on its edge, so
    that neighbours share their vertices exactly (no slivers after reprojection)."""
    ii = np.concatenate([np.arange(i0, i1), np.full(j1 - j0, i1), np.arange(i1, i0, -1), np.full(j1 - j0 + 1, i0)])
    jj = np.concatenate([np.full(i1 - i0, j0), np.arange(j0, j1), np.full(i1 - i0, j1), np.arange(j1, j0 - 1, -1)])
    return shapely.Polygon(np.column_stack([X[ii, jj], Y[ii, jj]]))


def _community_name(c: int) -> str:
    a = COMMUNITY_A[2 * (c % (len(COMMUNITY_A) // 2)):][:2]
    b = COMMUNITY_B[(c // (len(COMMUNITY_A) // 2)) % len(COMMUNITY_B)]
    rounds = c // ((len(COMMUNITY_A) // 2) * len(COMMUNITY_B))
    return f"{a}{b}{'' if rounds == 0 else rounds + 1}社区"


# --- layers --------------------------------------------------------------------------------

def _frame(columns: dict, geoms, crs: int = METRIC_EPSG) -> gpd.GeoDataFrame:
    """A layer in EPSG:4326; polygons promoted to MultiPolygon as the tables store them."""
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) and shapely.get_type_id(geoms[0]) == 3:
        geoms = shapely.multipolygons(geoms[:, None])
    gs = gpd.GeoSeries(geoms, crs=crs).to_crs(4326)
    return gpd.GeoDataFrame(pd.DataFrame(columns, index=range(len(geoms))), geometry=gs.values, crs=4326)


def _buildings(n: int, nx: int, ny: int, xs: np.ndarray, ys: np.ndarray, rows: int, cols: int, rng) -> dict:
    blocks = nx * ny
    slots = rows * cols
    # n spread over the blocks (some get one more), each block's slots picked at random
    count = np.full(blocks, n // blocks)
    count[rng.permutation(blocks)[: n % blocks]] += 1
    rank = rng.random((blocks, slots)).argsort(axis=1).argsort(axis=1)
    blk, slot = np.nonzero(rank < count[:, None])
    bi, bj = blk // ny, blk % ny
    sr, sc = slot // cols, slot % cols
    sw = (xs[bi + 1] - xs[bi] - 2 * SETBACK) / cols
    sh = (ys[bj + 1] - ys[bj] - 2 * SETBACK) / rows
    w, d = sw * rng.uniform(0.45, 0.85, n), sh * rng.uniform(0.45, 0.85, n)
    margin = 1.5  # m of clear space to the slot edge: neighbours never touch
    x0 = xs[bi] + SETBACK + sc * sw + margin + rng.random(n) * (sw - w - 2 * margin)
    y0 = ys[bj] + SETBACK + sr * sh + margin + rng.random(n) * (sh - d - 2 * margin)
    x0, y0, w, d = (np.round(v, 2) for v in (x0, y0, w, d))
    boxes = shapely.box(x0, y0, x0 + w, y0 + d)

    use = rng.choice(np.array(USES), size=n, p=USE_P)
    residential = np.isin(use, ("residential", "mixed"))
    floors = np.where(residential, rng.choice(np.arange(2, 34), size=n, p=_floors_p()), rng.integers(1, 13, n))
    units = rng.integers(1, 3, n)
    households = np.where(residential, floors * units * 2 * np.where(use == "mixed", 0.5, 1.0), 0).astype(np.int64)
    residents = np.round(households * rng.uniform(2.0, 3.2, n)).astype(np.int64)
    height = np.round(floors * 3.0 + rng.uniform(0.0, 1.5, n), 1)
    street = pd.Series(bj + 1).astype(str)
    number = pd.Series(bi * cols * 2 + sc * 2 + 1 + (sr % 2)).astype(str)
    address = (SUBDISTRICT_NAME[:-2] + "纬" + street + "路" + number + "号").to_numpy()
    name = np.full(n, None, dtype=object)
    special = ~residential
    name[special] = (pd.Series(use[special]).map({u.code: u.zh for u in BUILDING_USES}) + "楼" + pd.Series(np.flatnonzero(special) + 1).astype(str)).to_numpy()
    frame = _frame(dict(
        source_id=(pd.Series(np.arange(1, n + 1)).astype(str).str.zfill(7).radd("B")).to_numpy(),
        district_code=DISTRICT["district_code"], name=name, address=address, use=use,
        floors=floors.astype(np.int64), height_m=height, households=households, residents=residents,
    ), boxes)
    return {"frame": frame, "centres": shapely.centroid(boxes)}


def _floors_p() -> np.ndarray:
    """Mostly 2-7 storey walk-ups, some 8-18, a few towers up to 33."""
    f = np.arange(2, 34)
    p = np.where(f <= 7, 8.0, np.where(f <= 18, 1.5, 0.4))
    return p / p.sum()


def _roads(X: np.ndarray, Y: np.ndarray, nx: int, ny: int, roads: int | None, rng) -> dict:
    """Every lattice edge a LineString (split in equal pieces to reach an exact count)."""
    # vertical lines i (ny edges each), then horizontal lines j (nx edges each)
    vi, vj = np.meshgrid(np.arange(nx + 1), np.arange(ny), indexing="ij")
    hi, hj = np.meshgrid(np.arange(nx), np.arange(ny + 1), indexing="ij")
    a = np.concatenate([np.column_stack([X[vi, vj].ravel(), Y[vi, vj].ravel()]), np.column_stack([X[hi, hj].ravel(), Y[hi, hj].ravel()])])
    b = np.concatenate([np.column_stack([X[vi, vj + 1].ravel(), Y[vi, vj + 1].ravel()]), np.column_stack([X[hi + 1, hj].ravel(), Y[hi + 1, hj].ravel()])])
    line = np.concatenate([vi.ravel(), hj.ravel()])
    vertical = np.arange(len(a)) < vi.size
    e = len(a)
    pieces = np.ones(e, dtype=np.int64)
    if roads is not None and roads > e:
        extra = roads - e
        pieces += extra // e
        pieces[rng.choice(e, extra % e, replace=False)] += 1
    k = np.concatenate([np.arange(p) for p in pieces]) if pieces.max() > 1 else np.zeros(e, dtype=np.int64)
    idx = np.repeat(np.arange(e), pieces)
    t0, t1 = (k / pieces[idx])[:, None], ((k + 1) / pieces[idx])[:, None]
    p0, p1 = a[idx] + t0 * (b[idx] - a[idx]), a[idx] + t1 * (b[idx] - a[idx])
    geoms = shapely.linestrings(np.stack([p0, p1], axis=1))
    ln = line[idx]
    cls = np.where(ln % 8 == 0, "primary", np.where(ln % 4 == 0, "secondary", np.where(ln % 2 == 0, "tertiary", "residential")))
    suffix = pd.Series(cls).map({"primary": "大道", "secondary": "路", "tertiary": "路", "residential": "街"})
    name = np.where(vertical[idx], "经", "纬") + pd.Series(ln + 1).astype(str).to_numpy() + suffix.to_numpy()
    m = len(geoms)
    frame = _frame(dict(
        source_id=(pd.Series(np.arange(1, m + 1)).astype(str).str.zfill(7).radd("R")).to_numpy(),
        name=name, road_class=cls, walkable=np.ones(m, dtype=bool),
    ), geoms)
    return {"frame": frame, "p0": p0, "p1": p1}


def _cameras(n: int, edges: dict, communities: gpd.GeoDataFrame, comm_codes: list[str], rng) -> gpd.GeoDataFrame:
    """On poles 4-8 m beside a street, looking along it."""
    p0, p1 = edges["p0"], edges["p1"]
    e = rng.integers(0, len(p0), n)
    t = rng.uniform(0.15, 0.85, n)[:, None]
    v = p1[e] - p0[e]
    length = np.hypot(v[:, 0], v[:, 1])[:, None]
    normal = np.column_stack([-v[:, 1], v[:, 0]]) / length
    side = rng.choice([-1.0, 1.0], n)[:, None] * rng.uniform(4.0, 8.0, n)[:, None]
    xy = p0[e] + t * v + side * normal
    forward = rng.choice([-1.0, 1.0], n)[:, None] * v
    azimuth = np.round(np.degrees(np.arctan2(forward[:, 0], forward[:, 1])) % 360.0, 1) % 360.0
    octant = (((azimuth + 22.5) % 360) // 45).astype(int)
    hfov = rng.choice(np.array(list(LENS)), size=n, p=[0.25, 0.35, 0.25, 0.15])
    lo = np.array([LENS[h][0] for h in hfov.tolist()]) if n else np.array([])
    hi = np.array([LENS[h][1] for h in hfov.tolist()]) if n else np.array([])
    pts = shapely.points(xy)
    civil = np.full(n, SUBDISTRICT_CODE, dtype=object)
    metric = communities.geometry.to_crs(METRIC_EPSG).values
    hit_pt, hit_c = shapely.STRtree(metric).query(pts, predicate="within")
    civil[hit_pt] = np.asarray(comm_codes, dtype=object)[hit_c]
    serial = pd.Series(np.arange(1, n + 1)).astype(str).str.zfill(6)
    prefix = SUBDISTRICT_CODE[:8] + "00" + "131" + "0"  # centre, industry, type (camera), network
    status = rng.choice(np.array(["online", "offline", "unknown"]), size=n, p=[0.95, 0.04, 0.01])
    return _frame(dict(
        device_id=(prefix + serial).to_numpy(), name=("监控点" + serial).to_numpy(), civil_code=civil,
        direction_type=DIR_TYPE[octant].astype(np.int64), azimuth=azimuth, hfov=hfov.astype(float),
        vfov=np.round(np.degrees(2 * np.arctan(np.tan(np.radians(hfov / 2)) * 9 / 16)), 1),
        max_view_distance=np.floor(lo + rng.random(n) * (hi - lo)).astype(float),
        ptz_type=rng.choice(np.array([1, 2, 3]), size=n, p=[0.2, 0.2, 0.6]).astype(np.int64),
        room_type=np.ones(n, dtype=np.int64),
        point_type=rng.choice(np.array([1, 2, 3]), size=n, p=[0.2, 0.3, 0.5]).astype(np.int64),
        status=status,
    ), pts)


def _facilities(n: int, centres: np.ndarray, rng) -> gpd.GeoDataFrame:
    """In buildings (a building's centre), categories in proportion to FACILITY_P."""
    codes = np.array(list(FACILITY_P))
    weight = np.array([FACILITY_P[c][0] for c in codes], dtype=float)
    # every category at least once, the rest drawn by weight
    cat = np.concatenate([codes[: min(n, len(codes))], rng.choice(codes, size=max(0, n - len(codes)), p=weight / weight.sum())])
    host = rng.choice(len(centres), size=n, replace=n > len(centres))
    lo = np.array([FACILITY_P[c][1] for c in cat.tolist()], dtype=float)
    hi = np.array([FACILITY_P[c][2] for c in cat.tolist()], dtype=float)
    area = np.round(lo + rng.random(n) * (hi - lo), -1)
    zh = pd.Series(cat).map({c.code: c.zh for c in FACILITY_CATEGORIES})
    return _frame(dict(
        source_id=(pd.Series(np.arange(1, n + 1)).astype(str).str.zfill(6).radd("F")).to_numpy(),
        name=(zh + pd.Series(np.arange(1, n + 1)).astype(str)).to_numpy(), category=cat,
        floor_area=area, capacity=np.round(area / 10).astype(np.int64),
        status=rng.choice(np.array(["open", "planned", "closed"]), size=n, p=[0.9, 0.07, 0.03]),
    ), centres[host])


# --- output --------------------------------------------------------------------------------

def write_gpkg(frames: dict[str, gpd.GeoDataFrame], path: str | Path) -> Path:
    """Every layer into one GeoPackage (replacing the file), layer names = importer layer names."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    for name, gdf in frames.items():
        geom_type = GEOM_TYPES.get(name, "Unknown")
        pyogrio.write_dataframe(gdf, path, layer=name, driver="GPKG", geometry_type=geom_type, use_arrow=True)
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    ap.add_argument("--buildings", type=int, default=100_000)
    ap.add_argument("--grids", type=int)
    ap.add_argument("--communities", type=int)
    ap.add_argument("--cameras", type=int)
    ap.add_argument("--facilities", type=int)
    ap.add_argument("--roads", type=int, help="exact number of road edges (default: the lattice's)")
    ap.add_argument("--city", action="store_true",
                    help="issue 18's proportions (a grid per 20 buildings, a camera per 40, a facility per 250, a road edge per 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("/tmp/city.gpkg"))
    args = ap.parse_args(argv)
    sizes = dict(buildings=args.buildings, grids=args.grids, cameras=args.cameras, facilities=args.facilities, roads=args.roads)
    if args.city:
        sizes = {**city_sizes(args.buildings), **{k: v for k, v in sizes.items() if v is not None}}
    t0 = time.perf_counter()
    frames = generate(**sizes, communities=args.communities, seed=args.seed)
    t1 = time.perf_counter()
    write_gpkg(frames, args.out)
    t2 = time.perf_counter()
    counts = ", ".join(f"{k} {len(v):,}" for k, v in frames.items())
    print(f"{args.out}: {counts} (generated in {t1 - t0:.1f} s, written in {t2 - t1:.1f} s)")


if __name__ == "__main__":
    main()
