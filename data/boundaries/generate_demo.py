"""Generate the 紫阳街道 demo sub-district from the real Wuchang (Wuhan) street network.

Why: the platform needs a believable Chinese 街道 to demo and test against -- boundaries
that follow real streets, grids of 300-500 households, coded communities and grids,
cameras, facilities and cadres -- and no such open data exists.  We therefore take
real OSM streets (© OpenStreetMap contributors, ODbL 1.0) and *generate* everything
else inside the blocks they enclose.  Every number is synthetic; see README.md.

Deterministic: one seeded numpy Generator drives all randomness, and every collection
is sorted before it is used, so the same input gives the same output.

Usage: python data/boundaries/generate_demo.py [SOURCE.gpkg] [--out DIR] [--seed N]
"""
from __future__ import annotations

import argparse
import heapq
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely import affinity
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box
from shapely.ops import nearest_points, split

SRC_NAME = "wuhan-wuchang-streets.gpkg"
METRIC_CRS = 4547          # CGCS2000 3-degree Gauss-Kruger, CM 114E: metres for Wuhan
SEED = 20260101
MIN_BLOCK_AREA = 2_000.0   # m2: smaller faces are slivers (junction islands, ramps)
MIN_BLOCK_WIDTH = 20.0     # m: 2*area/perimeter below this = median strip between carriageways
REGION_AREA = 2.6e6        # m2 of blocks grown from the seed: a compact inner-city 街道
REGION_SEED_XY = (530_250.0, 3_380_700.0)   # EPSG:4547, west-central Wuchang
MAX_BLOCK_AREA = 15_000.0  # m2: superblocks are cut into compounds (小区) of at most this
HH_PER_GRID = 450          # target households per comprehensive grid (band 300-500)
N_COMMUNITIES = 8
SETBACK = 5.0              # m between a building and its block edge
ROAD_HALF_WIDTH = {"trunk": 18, "trunk_link": 8, "primary": 14, "primary_link": 7,
                   "secondary": 11, "secondary_link": 6, "tertiary": 8, "unclassified": 5,
                   "residential": 5, "living_street": 4, "pedestrian": 3}
MAIN = ("trunk", "primary", "secondary", "tertiary")
DISTRICT = dict(district_code="420106", district_name="武昌区", city_name="武汉市",
                province_name="湖北省")
SUBDISTRICT_CODE, SUBDISTRICT_NAME = "420106010", "紫阳街道"   # illustrative code
COMMUNITY_NAMES = ["紫阳社区", "首义社区", "大成路社区", "彭刘杨社区", "起义门社区",
                   "张之洞社区", "复兴社区", "阅马场社区"]
MAIN_NAMES = ("武珞路 中山路 首义路 彭刘杨路 张之洞路 紫阳路 复兴路 大成路 解放路 民主路 "
              "阅马场路 紫阳东路 文昌路 候补街 胭脂路 粮道街 察院街 五福路 长湖路 千家街 "
              "都府堤 读书院路 体育街 起义街 首义南路 紫阳西路 大东门路 小东门街 武车路 "
              "宝积路 三层楼路 和平路 友谊路 中华路 自由路 红楼路 湖北路 楚材街 司门口路 "
              "南湖路 蛇山北路 凤凰山路 得胜路 兰亭路 积玉路 彭刘杨西路 复兴东路 大成东路").split()
MINOR_NAMES = ("花堤 昙华 胭脂 戈甲营 太平 糖坊 马道 三义 高家 棋盘 福寿 仁寿 吉祥 双柏 "
               "新民 永安 后长 西厂 东厂 三道 抚院 青石 月华 云架 铁佛 水陆 黄土 斗级营 "
               "蛇山 书院 长春 蒲圻 候补 凤凰 白鹭 石灰 梅亭 锦绣 义井 瓦窑").split()
SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
            "于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江")
GIVEN = ("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰红建文辉力鹏飞宇婷雪琳晨浩"
         "欣颖佳俊峰斌丹萍鑫波海林宁慧云亮成荣新凯志燕梅莉晶蕾楠倩帆昊博睿楚汉江")
DIRS = ["北", "东北", "东", "东南", "南", "西南", "西", "西北"]
DIR_TYPE = [4, 6, 1, 5, 3, 7, 2, 8]       # GB/T 28181 DirectionType for N, NE, E, ...
DEVICE_PREFIX = "42010601" + "00" + "131" + "0"   # centre code, industry, type, network
LENS = {102: (30, 45), 79: (40, 65), 51: (60, 90), 38: (80, 120)}  # HFOV -> view distance


@dataclass
class Block:
    """A block of land bounded by streets (or, inside a superblock, by compound walls)."""
    geom: Polygon                 # territory, EPSG:4547; blocks tile the sub-district
    kind: str = "walkup"          # walkup/tower/old/commercial/industrial/school/...
    parent: int = 0               # original street block it was cut from
    buildings: list = field(default_factory=list)
    street: str = ""
    number: int = 0


def default_source() -> Path:
    """Why: the data lives beside the repo in ../shared, or wherever WANGGE_SHARED_DIR says."""
    env = os.environ.get("WANGGE_SHARED_DIR")
    if env:
        for cand in (Path(env) / "data" / SRC_NAME, Path(env) / SRC_NAME):
            if cand.exists():
                return cand
    return Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / SRC_NAME


def bearing(dx: float, dy: float) -> float:
    """Compass azimuth (clockwise from north) of a vector in the metric CRS."""
    return float(np.degrees(np.arctan2(dx, dy)) % 360.0)


def octant(az: float) -> int:
    return int(((az + 22.5) % 360) // 45)


# --------------------------------------------------------------------------- blocks
def make_blocks(roads: gpd.GeoDataFrame) -> list[Polygon]:
    """Polygonize the noded street network; hand slivers to their nearest real block.

    Why Voronoi: a median strip between two carriageways is split down its middle
    between the blocks on either side, so block (and grid) edges fall on the road
    centre line, as administrative boundaries do, and the blocks still tile the area.
    """
    noded = shapely.union_all(roads.geometry.values)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    area = shapely.area(faces)
    thin = (area < MIN_BLOCK_AREA) | (2 * area / shapely.length(faces) < MIN_BLOCK_WIDTH)
    big = list(faces[~thin])
    tree = shapely.STRtree(big)
    extra: list[list] = [[] for _ in big]
    for cl in shapely.get_parts(shapely.union_all(faces[thin])):
        xy = shapely.get_coordinates(shapely.segmentize(cl.boundary, 3.0))
        _, first = np.unique(np.round(xy, 3), axis=0, return_index=True)
        xy = xy[np.sort(first)]
        pts = shapely.points(xy)
        hit = tree.query_nearest(pts, max_distance=60.0, all_matches=False)
        if hit.shape[1] == 0:
            continue
        lab = np.full(len(pts), -1)
        lab[hit[0]] = hit[1]
        owners = np.unique(lab[lab >= 0])
        if len(owners) == 1 or len(xy) < 4:
            extra[owners[0]].append(cl)
            continue
        cells = shapely.get_parts(shapely.voronoi_polygons(
            shapely.multipoints(xy), extend_to=cl.buffer(100), ordered=True))
        for o in owners:
            extra[o].append(shapely.intersection(shapely.union_all(cells[lab == o]), cl))
    out = []
    for g, ex in zip(big, extra):
        u = shapely.union_all([g, *ex]) if ex else g
        parts = sorted(shapely.get_parts(u), key=lambda p: -p.area)
        out.append(parts[0])            # stray corner crumbs are left as road space
    return out


def adjacency(geoms: list, min_shared: float = 5.0) -> dict[int, list[int]]:
    """Blocks are neighbours when they share at least `min_shared` metres of edge."""
    tree = shapely.STRtree(geoms)
    a, b = tree.query(shapely.buffer(geoms, 0.5), predicate="intersects")
    adj: dict[int, list[int]] = {i: [] for i in range(len(geoms))}
    for i, j in zip(a, b):
        if i < j and shapely.length(shapely.intersection(
                geoms[j].boundary, geoms[i].buffer(0.5))) >= min_shared:
            adj[int(i)].append(int(j))
            adj[int(j)].append(int(i))
    return {k: sorted(v) for k, v in adj.items()}


def select_region(blocks: list[Polygon]) -> list[Polygon]:
    """Grow a compact, hole-free set of blocks from a seed until it reaches REGION_AREA."""
    adj = adjacency(blocks)
    cen = shapely.get_coordinates(shapely.centroid(blocks))
    d = np.hypot(*(cen - np.array(REGION_SEED_XY)).T)
    seed = int(np.argmin(d))
    chosen, heap, total = set(), [(d[seed], seed)], 0.0
    while heap and total < REGION_AREA:
        _, i = heapq.heappop(heap)
        if i in chosen:
            continue
        chosen.add(i)
        total += blocks[i].area
        for j in adj[i]:
            if j not in chosen:
                heapq.heappush(heap, (d[j], j))
    union = shapely.union_all([blocks[i] for i in sorted(chosen)])
    filled = shapely.union_all([Polygon(p.exterior) for p in shapely.get_parts(union)])
    for i in range(len(blocks)):      # take in blocks enclosed by the region
        if i not in chosen and filled.contains(blocks[i].representative_point()):
            chosen.add(i)
    keep = [blocks[i] for i in sorted(chosen)]
    comp = components(list(range(len(keep))), adjacency(keep))
    return [keep[i] for i in max(comp, key=len)]


def components(nodes: list[int], adj: dict[int, list[int]]) -> list[list[int]]:
    """Connected components of the block graph restricted to `nodes` (sorted lists)."""
    todo, out = set(nodes), []
    for n in nodes:
        if n not in todo:
            continue
        comp, stack = [], [n]
        todo.discard(n)
        while stack:
            m = stack.pop()
            comp.append(m)
            for k in adj[m]:
                if k in todo:
                    todo.discard(k)
                    stack.append(k)
        out.append(sorted(comp))
    return out


def subdivide(poly: Polygon, rng: np.random.Generator) -> list[Polygon]:
    """Cut a superblock into compounds across its long axis, recursively.

    Why: Wuchang superblocks (up to 60 ha) hold many walled compounds reached by lanes
    that OSM's street layer omits; grids of 300-500 households need that granularity.
    """
    if poly.area <= MAX_BLOCK_AREA:
        return [poly]
    ring = np.asarray(shapely.oriented_envelope(poly).exterior.coords)[:4]
    e1, e2 = ring[1] - ring[0], ring[2] - ring[1]
    axis = e1 if np.hypot(*e1) >= np.hypot(*e2) else e2
    u = axis / np.hypot(*axis)
    centre = ring.mean(axis=0)
    for t in (rng.uniform(-0.08, 0.08), 0.0, -0.15, 0.15):
        p = centre + u * t * np.hypot(*axis)
        cut = LineString([p - [-u[1] * 5e3, u[0] * 5e3], p + [-u[1] * 5e3, u[0] * 5e3]])
        parts = [g for g in shapely.get_parts(split(poly, cut)) if g.geom_type == "Polygon"]
        if len(parts) > 1 and min(g.area for g in parts) >= 3_000:
            return [q for g in parts for q in subdivide(g, rng)]
    return [poly]


# --------------------------------------------------------------------------- streets
def name_streets(roads: gpd.GeoDataFrame) -> list[str]:
    """Give every OSM edge a street name by chaining edges into strokes.

    Why: the extract has no names.  Edges of the same class that continue each other
    across a junction (deflection < 40 degrees) form one street; the two carriageways of
    a dual road get the same name.  Names are illustrative, not the real street names.
    """
    geoms = list(roads.geometry.values)
    cls = roads["highway"].tolist()
    group = [("main" if c in MAIN else "minor") if not c.endswith("_link") else "" for c in cls]
    parent = list(range(len(geoms)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    ends: dict[tuple, list] = {}
    for i, g in enumerate(geoms):
        c = np.asarray(g.coords)
        for end, nxt in ((c[0], c[1]), (c[-1], c[-2])):
            key = (round(end[0], 1), round(end[1], 1))
            ends.setdefault(key, []).append((i, bearing(*(nxt - end))))
    for key in sorted(ends):
        inc = ends[key]
        pairs = sorted((abs(180 - abs(a1 - a2) % 360), i, j) for n, (i, a1) in enumerate(inc)
                       for (j, a2) in inc[n + 1:] if group[i] and group[i] == group[j])
        used: set = set()
        for dev, i, j in pairs:
            if dev < 40 and i not in used and j not in used:
                used |= {i, j}
                parent[find(i)] = find(j)
    chains: dict[int, list[int]] = {}
    for i in range(len(geoms)):
        chains.setdefault(find(i), []).append(i)
    roots = sorted(chains, key=lambda r: (-sum(geoms[i].length for i in chains[r]), r))
    merged = {r: shapely.union_all([geoms[i] for i in chains[r]]) for r in roots}
    mains = [r for r in roots if group[r] == "main" and merged[r].length > 150]
    for n, a in enumerate(mains):            # dual carriageways: same name
        pa = shapely.line_interpolate_point(shapely.line_merge(merged[a]), np.linspace(0, 1, 12),
                                            normalized=True)
        for b in mains[n + 1:]:
            if find(a) != find(b) and np.mean(shapely.distance(pa, merged[b]) < 45) > 0.8:
                parent[find(b)] = find(a)
    names: dict[int, str] = {}
    n_main = n_minor = 0
    for r in roots:
        root = find(r)
        if root in names or not group[r]:
            continue
        length = sum(merged[q].length for q in roots if find(q) == root)
        if group[r] == "main" and length > 150 and n_main < len(MAIN_NAMES):
            names[root], n_main = MAIN_NAMES[n_main], n_main + 1
        elif group[r] == "minor" and length > 120 and n_minor < len(MINOR_NAMES):
            names[root] = MINOR_NAMES[n_minor] + ("巷", "里", "街")[n_minor % 3]
            n_minor += 1
    return [names.get(find(i), "") for i in range(len(geoms))]


# --------------------------------------------------------------------------- buildings
SPECS = {  # depth W, length L, gap between rows, gap along a row (metres)
    "walkup": ((10, 13), (30, 60), (20, 26), (8, 14)),
    "tower": ((15, 18), (20, 32), (38, 50), (20, 30)),
    "old": ((9, 12), (12, 20), (3, 5), (2.5, 4)),
    "commercial": ((14, 18), (25, 60), (14, 20), (10, 16)),
    "industrial": ((15, 18), (30, 60), (12, 18), (10, 14)),
    "school": ((12, 16), (40, 60), (35, 60), (25, 40)),
    "middle_school": ((12, 16), (40, 60), (35, 60), (25, 40)),
    "hospital": ((16, 18), (40, 60), (20, 30), (15, 20)),
    "park": ((10, 12), (10, 14), (50, 70), (50, 70)),
}


def pack(area: Polygon, angle: float, kind: str, rng: np.random.Generator) -> list[Polygon]:
    """Lay rectangular footprints in rows across `area`, rotated by `angle` degrees."""
    (w0, w1), (l0, l1), rowgap, gap = SPECS[kind]
    origin = area.centroid
    a = affinity.rotate(area, -angle, origin=origin)
    shapely.prepare(a)
    minx, miny, maxx, maxy = a.bounds
    out, y = [], miny + rng.uniform(0, 4)
    while y < maxy:
        w, x = rng.uniform(w0, w1), minx + rng.uniform(0, 6)
        while x < maxx:
            for length in (rng.uniform(l0, l1), l0):
                r = box(x, y, x + length, y + w)
                if a.contains(r):
                    out.append(affinity.rotate(r, angle, origin=origin))
                    x += length + rng.uniform(*gap)
                    break
            else:
                x += 4.0
        y += w + rng.uniform(*rowgap)
    return out


def block_angle(poly: Polygon) -> float:
    """Direction of the block's long side folded into [-45, 45): the street direction."""
    ring = np.asarray(shapely.oriented_envelope(poly).exterior.coords)
    e = ring[1] - ring[0]
    return float((np.degrees(np.arctan2(e[1], e[0])) + 45) % 90 - 45)


FLOORS = {"walkup": ([5, 6, 7, 8, 9], [.08, .45, .32, .10, .05]),
          "tower": ([18, 24, 26, 28, 30, 32, 33], [.15, .2, .15, .15, .15, .1, .1]),
          "old": ([1, 2, 3], [.25, .5, .25])}


def building_rows(blocks: list[Block], road_buf, roads_main, rng) -> list[dict]:
    """Fill each block with footprints and give them floors, use and households."""
    rows: list[dict] = []
    tree = shapely.STRtree(road_buf)
    for bi, b in enumerate(blocks):
        setback = 3.0 if b.kind == "old" else SETBACK
        near = road_buf[tree.query(b.geom)]
        area = b.geom.buffer(-setback)
        if len(near):
            area = area.difference(shapely.union_all(near))
        area = max(shapely.get_parts(area), key=lambda p: p.area, default=Polygon())
        if area.is_empty or area.area < 300:
            continue
        ang = 0.0 if (b.kind == "walkup" and rng.random() < 0.3) else block_angle(b.geom)
        if b.kind == "mega":
            c = area.centroid
            fp = affinity.rotate(box(c.x - 32, c.y - 15, c.x + 32, c.y + 15), ang, origin=c)
            feet = [fp] if area.contains(fp) else pack(area, ang, "tower", rng)
        else:
            feet = pack(area, ang, b.kind, rng)
        if b.kind in ("school", "middle_school", "hospital"):
            feet = feet[:6]
        elif b.kind == "park":
            feet = feet[:3]
        if b.kind in ("walkup", "tower", "old", "commercial"):   # shops, substations...
            taken = shapely.union_all([f.buffer(4) for f in feet]) if feet else Polygon()
            for _ in range(30 if b.kind == "old" else 20):
                p = shapely.line_interpolate_point(area.exterior, rng.random(), normalized=True)
                v = np.subtract(area.centroid.coords[0], p.coords[0])
                p = affinity.translate(p, *(v / max(np.hypot(*v), 1e-9) * 8))
                sq = affinity.rotate(box(p.x - 7, p.y - 5, p.x + 7, p.y + 5), ang, origin=p)
                if area.contains(sq) and not taken.intersects(sq):
                    feet.append(sq)
                    taken = taken.union(sq.buffer(4))
        for k, fp in enumerate(feet):
            rows.append(make_building(b, bi, k, fp, len(feet), roads_main, rng))
    return rows


def make_building(b: Block, bi: int, k: int, fp: Polygon, n: int, roads_main, rng) -> dict:
    """Floors, use and households for one footprint (households = floor area / 90 m2)."""
    ancillary = fp.area < 150 and b.kind != "old"
    kind = b.kind
    if kind == "mega":
        floors, use, hh = 33, "residential", int(round(fp.area * 33 / 80))   # small flats
    elif ancillary:
        floors, use = int(rng.integers(1, 3)), str(rng.choice(["commercial", "public"]))
        hh = 0
    elif kind in FLOORS:
        floors = int(rng.choice(FLOORS[kind][0], p=FLOORS[kind][1]))
        use = "residential"
        if kind == "walkup" and fp.distance(roads_main) < 30 and rng.random() < 0.6:
            use = "mixed"                                   # shops on the ground floor
        hh = int(round(fp.area * (floors - (use == "mixed")) / 90))
    elif kind == "commercial":
        office = rng.random() < 0.35
        floors = int(rng.integers(8, 25)) if office else int(rng.integers(2, 6))
        use, hh = ("office" if office else "commercial"), 0
    else:
        use = {"school": "school", "middle_school": "school", "hospital": "hospital",
               "park": "public", "industrial": "industrial"}[kind]
        floors = {"school": 4, "middle_school": 5, "hospital": int(rng.integers(5, 19)),
                  "park": 1, "industrial": int(rng.integers(1, 4))}[kind]
        hh = 0
    res = int(round(hh * rng.normal(2.6, 0.15))) if hh else 0
    old = kind in ("old", "walkup")
    bn = rng.binomial
    g = dict(elderly_65=bn(res, 0.19 if old else 0.12), disabled=bn(res, 0.022),
             dibao=bn(hh, 0.025 if kind == "old" else 0.012),
             floating=bn(res, 0.22 if kind == "old" else 0.12),
             rental=bn(hh, 0.30 if kind == "old" else 0.18), released=bn(res, 0.0015),
             corrections=bn(res, 0.0008), at_risk_youth=bn(res, 0.001),
             party_members=bn(res, 0.07), volunteers=bn(res, 0.05))
    g["elderly_alone"] = bn(g["elderly_65"], 0.13)
    return dict(block=bi, k=k + 1, geometry=fp, floors=floors, use=use, households=hh,
                residents=res, **{key: int(v) for key, v in g.items()})


# --------------------------------------------------------------------------- partition
def partition(nodes: list[int], adj, w: np.ndarray, xy: np.ndarray, k: int) -> list[list[int]]:
    """Split connected `nodes` into k contiguous groups of similar total weight.

    Why not k-means: a grid must be one contiguous piece.  Seeds from weighted k-means,
    then regions grow one neighbouring block at a time (lightest region first), then
    boundary blocks move to lighter neighbours while that evens the totals out.
    """
    nodes, k = sorted(nodes), min(k, len(nodes))
    if k <= 1:
        return [nodes]
    p, wt = xy[nodes], w[nodes] + 1.0
    centres = [p[np.argmin(p[:, 0] - p[:, 1])]]
    for _ in range(k - 1):
        centres.append(p[np.argmax(np.min([np.hypot(*(p - c).T) for c in centres], axis=0))])
    c = np.array(centres)
    for _ in range(20):
        lab = np.argmin(np.hypot(p[:, None, 0] - c[None, :, 0], p[:, None, 1] - c[None, :, 1]), 1)
        c = np.array([np.average(p[lab == j], 0, wt[lab == j]) if (lab == j).any() else c[j]
                      for j in range(k)])
    seeds: list[int] = []
    for j in range(k):
        order = np.argsort(np.hypot(*(p - c[j]).T), kind="stable")
        seeds.append(next(nodes[i] for i in order if nodes[i] not in seeds))
    region = {n: -1 for n in nodes}
    tot = np.zeros(k)
    heap = []
    for j, s in enumerate(seeds):
        region[s], tot[j] = j, w[s]
        heap.append((tot[j], j))
    heapq.heapify(heap)
    while heap:
        _, j = heapq.heappop(heap)
        front = sorted({m for n in nodes if region[n] == j for m in adj[n]
                        if region.get(m) == -1})
        if not front:
            continue
        m = min(front, key=lambda m: (np.hypot(*(xy[m] - c[j])), m))
        region[m], tot[j] = j, tot[j] + w[m]
        heapq.heappush(heap, (tot[j], j))
    target = tot.sum() / k
    for _ in range(400):                     # refine: move boundary blocks to lighter side
        moves = []
        for n in nodes:
            a = region[n]
            for m in adj[n]:
                b = region.get(m, a)
                if b != a and tot[a] > tot[b]:
                    gain = (tot[a] - target) ** 2 + (tot[b] - target) ** 2 - \
                        (tot[a] - w[n] - target) ** 2 - (tot[b] + w[n] - target) ** 2
                    if gain > 1.0:
                        moves.append((-gain, n, b))
        for _, n, b in sorted(set(moves)):
            a = region[n]
            rest = [q for q in nodes if region[q] == a and q != n]
            if rest and len(components(rest, adj)) == 1:
                region[n], tot[a], tot[b] = b, tot[a] - w[n], tot[b] + w[n]
                break
        else:
            break
    return [sorted(n for n in nodes if region[n] == j) for j in range(k)]


def reading_order(xy: np.ndarray, band: float) -> np.ndarray:
    """Indices sorted west->east within bands of `band` metres taken from the north."""
    rowno = np.floor((xy[:, 1].max() - xy[:, 1]) / band)
    return np.lexsort((xy[:, 0], rowno))


def to_wgs(geoms, precision: bool = True) -> np.ndarray:
    """EPSG:4547 -> EPSG:4326 on a 1e-7 degree (~1 cm) grid, kept valid."""
    g = gpd.GeoSeries(list(geoms), crs=METRIC_CRS).to_crs(4326).values
    return np.asarray(shapely.make_valid(shapely.set_precision(g, 1e-7)) if precision else g)


def multi(g) -> MultiPolygon:
    parts = [p for p in shapely.get_parts(g) if p.geom_type == "Polygon"]
    return MultiPolygon(parts)


# --------------------------------------------------------------------------- main
def build(src: Path, seed: int) -> dict:
    """Run the whole pipeline; return layers (EPSG:4326 GeoDataFrames) and CSV frames."""
    rng = np.random.default_rng(seed)
    osm = gpd.read_file(src, layer="roads")
    roads = osm.to_crs(METRIC_CRS)
    region = select_region(make_blocks(roads))
    region = list(shapely.coverage_clean(region, gap_width=1.0))
    blocks = [Block(g, parent=p) for p, r in enumerate(region) for g in subdivide(r, rng)]
    geoms = shapely.coverage_clean([b.geom for b in blocks], gap_width=1.0)
    for b, g in zip(blocks, geoms):
        b.geom = max(shapely.get_parts(g), key=lambda q: q.area)
    adj = adjacency([b.geom for b in blocks])
    xy = shapely.get_coordinates(shapely.centroid([b.geom for b in blocks]))
    road_cls = roads["highway"].to_numpy()
    main_lines = shapely.union_all(roads.geometry.values[np.isin(road_cls, ["trunk", "primary"])])
    # land use: coherent per superblock, with dedicated (专属) units spread out
    pkind = rng.choice(["old", "walkup", "tower", "commercial"], len(region), p=[.4, .45, .08, .07])
    for b in blocks:
        b.kind = str(pkind[b.parent] if rng.random() < 0.75 else rng.choice(
            ["walkup", "old", "commercial", "tower"], p=[.45, .35, .12, .08]))
        if b.geom.distance(main_lines) < 25 and rng.random() < 0.25:
            b.kind = "commercial"
    chosen: list[int] = []
    for kind, lo, hi in (("park", 9e3, 16e3), ("hospital", 9e3, 16e3), ("middle_school", 9e3, 16e3),
                         ("school", 7e3, 16e3), ("school", 7e3, 16e3), ("mega", 3e3, 7e3),
                         ("industrial", 6e3, 16e3)):
        cand = [i for i, b in enumerate(blocks) if lo <= b.geom.area <= hi and i not in chosen
                and all(np.hypot(*(xy[i] - xy[j])) > 450 for j in chosen)]
        i = int(rng.choice(cand))
        blocks[i].kind = kind
        chosen.append(i)
    # streets and addresses: each block takes a door number on its nearest named street
    road_names = name_streets(roads)
    named = [i for i, n in enumerate(road_names) if n]
    stree = shapely.STRtree(roads.geometry.values[named])
    used_numbers: set = set()
    for b in blocks:
        j = named[int(stree.query_nearest(b.geom.centroid)[0])]
        b.street = road_names[j]
        line = roads.geometry.values[j]
        num = 2 * int(line.project(b.geom.centroid) / 25) + 1 + int(rng.random() < 0.5)
        while (b.street, num) in used_numbers:
            num += 2
        used_numbers.add((b.street, num))
        b.number = num
    # buildings
    half = np.array([ROAD_HALF_WIDTH.get(c, 4) for c in road_cls], float)
    road_buf = shapely.buffer(roads.geometry.values, half)
    brow = building_rows(blocks, road_buf, main_lines, rng)
    hh_block = np.zeros(len(blocks))
    for r in brow:
        hh_block[r["block"]] += r["households"]
    # communities, then grids inside each community
    comms = partition(list(range(len(blocks))), adj, hh_block, xy, N_COMMUNITIES)
    cxy = np.array([np.average(xy[c], 0) for c in comms])
    comms = [comms[i] for i in reading_order(cxy, 1000.0)]
    grid_rows, block_grid = [], {}
    for ci, cb in enumerate(comms):
        ccode = f"{SUBDISTRICT_CODE}{ci + 1:03d}"
        special = [i for i in cb if blocks[i].kind in ("park", "hospital", "school",
                                                        "middle_school", "mega")]
        groups = [[i] for i in special]
        for comp in components(sorted(set(cb) - set(special)), adj):
            k = max(1, int(round(hh_block[comp].sum() / HH_PER_GRID)))
            groups += partition(comp, adj, hh_block, xy, k)
        gxy = np.array([np.average(xy[g], 0) for g in groups])
        for si, gi in enumerate(reading_order(gxy, 300.0)):
            g = groups[gi]
            code = f"{ccode}{si + 1:03d}"
            gtype = "专属" if blocks[g[0]].kind in ("park", "hospital", "school",
                                                   "middle_school") else "综合"
            for i in g:
                block_grid[i] = code
            grid_rows.append(dict(code=code, name=f"{COMMUNITY_NAMES[ci]}第{si + 1:02d}网格",
                                  grid_type=gtype, community_code=ccode, blocks=g,
                                  households=int(hh_block[g].sum())))
    # geometry in EPSG:4326: clean coverage of blocks, grids and communities are its unions
    wgs = shapely.coverage_clean(to_wgs([b.geom for b in blocks]), gap_width=1e-6)
    grids = gpd.GeoDataFrame(grid_rows, geometry=[multi(shapely.coverage_union_all(wgs[r["blocks"]]))
                                                 for r in grid_rows], crs=4326)
    comm_rows = [dict(code=f"{SUBDISTRICT_CODE}{ci + 1:03d}", name=COMMUNITY_NAMES[ci],
                      subdistrict_code=SUBDISTRICT_CODE) for ci in range(len(comms))]
    communities = gpd.GeoDataFrame(comm_rows, geometry=[multi(shapely.coverage_union_all(
        grids.geometry.values[grids.community_code == r["code"]])) for r in comm_rows], crs=4326)
    boundary = multi(shapely.coverage_union_all(communities.geometry.values))
    subdistrict = gpd.GeoDataFrame([dict(code=SUBDISTRICT_CODE, name=SUBDISTRICT_NAME, **DISTRICT)],
                                   geometry=[boundary], crs=4326)
    # buildings table
    bld = pd.DataFrame(brow)
    bld.insert(0, "source_id", [f"B{i + 1:06d}" for i in range(len(bld))])
    bld["address"] = [f"武昌区{blocks[b].street}{blocks[b].number}号{k}栋" for b, k in zip(bld.block, bld.k)]
    bld["grid_code"] = [block_grid[b] for b in bld.block]
    bld["community_code"] = bld.grid_code.str[:12]
    bgeom = [MultiPolygon([g]) for g in to_wgs(bld.pop("geometry"))]
    bpts = shapely.point_on_surface(bgeom)
    kinds = np.array([b.kind for b in blocks])
    fac = facilities(bld, bpts, kinds, comms, rng)
    cams = cameras(roads, road_names, blocks, fac, communities, rng)
    cadres, assign = staffing(grids, bld, bpts, rng)
    cols = ["source_id", "address", "floors", "use", "households", "residents", "elderly_65",
            "elderly_alone", "disabled", "dibao", "floating", "rental", "released",
            "corrections", "at_risk_youth", "party_members", "volunteers"]
    keep = shapely.intersects(roads.geometry.values, shapely.buffer(
        shapely.union_all([b.geom for b in blocks]), 30))
    road_out = gpd.GeoDataFrame(dict(
        source_id=[f"R{i + 1:05d}" for i in range(int(keep.sum()))],
        name=np.asarray(road_names, dtype=object)[keep], road_class=road_cls[keep],
        walkable=~np.isin(road_cls[keep], ["trunk", "trunk_link"])),
        geometry=osm.geometry.values[keep], crs=4326)
    return dict(subdistrict=subdistrict, communities=communities,
                grids=grids.drop(columns=["blocks", "households"]),
                buildings=gpd.GeoDataFrame(bld[cols], geometry=bgeom, crs=4326),
                cameras=cams, facilities=fac, roads=road_out, cadres=cadres, assignments=assign,
                _grid_households=grids[["code", "households"]], _buildings_full=bld)


def pick(mask: np.ndarray, rng, used: set) -> int:
    """A random building index from `mask` not yet hosting a facility."""
    idx = [i for i in np.flatnonzero(mask) if i not in used]
    i = int(idx[int(rng.integers(len(idx)))])
    used.add(i)
    return i


def facilities(bld: pd.DataFrame, bpts: np.ndarray, kinds: np.ndarray, comms, rng) -> gpd.GeoDataFrame:
    """Community and sub-district facilities on buildings, with gaps planted on purpose.

    Planted: communities 003 and 007 have no service station; 004 no health station;
    002 and 006 have only a small station, below 30 m2 of service space per 100 households.
    """
    rows, used = [], set()
    host = bld.use.isin(["public", "commercial", "mixed", "office"]).to_numpy()
    r10 = lambda lo, hi: float(round(rng.uniform(lo, hi) / 10) * 10)
    for ci in range(len(comms)):
        cc, cn = f"{SUBDISTRICT_CODE}{ci + 1:03d}", COMMUNITY_NAMES[ci]
        inc = (bld.community_code == cc).to_numpy()
        low, nost = ci + 1 in (2, 6), ci + 1 in (3, 7)
        plan = [("community_service_station", f"{cn}党群服务中心",
                 r10(260, 360) if low else r10(600, 1000), None)] if not nost else []
        if ci + 1 != 4:
            plan.append(("health_station", f"{cn}卫生服务站", r10(120, 250), None))
        if not low:
            plan += [("elderly_day_care", f"{cn}老年人日间照料中心", r10(350, 750), int(rng.integers(30, 61))),
                     ("culture_station", f"{cn}文化活动室", r10(900, 1200) if nost else r10(400, 1200), None)]
        classes = int(rng.integers(6, 13))
        plan += [("kindergarten", f"{cn.removesuffix('社区')}幼儿园", classes * 280.0, classes * 30),
                 ("pharmacy", f"{['老百姓', '益丰', '国大', '同仁堂', '九州通'][ci % 5]}大药房({cn.removesuffix('社区')}店)",
                  r10(80, 200), None)]
        for cat, name, area, cap in plan:
            rows.append((cat, name, area, cap, pick(inc & host if (inc & host).any() else inc, rng, used)))
    is_kind = lambda k: np.isin(bld.block.to_numpy(), np.flatnonzero(kinds == k))
    sub = [("subdistrict_service_centre", "紫阳街道党群服务中心", r10(700, 1500), None, host),
           ("health_centre", "紫阳街社区卫生服务中心", r10(1700, 2000), None, host),
           ("police", "紫阳派出所", r10(1500, 3000), None, host),
           ("police", "首义路警务室", r10(60, 120), None, host),
           ("middle_school", "武昌区紫阳中学", r10(12000, 18000), 1500, is_kind("middle_school"))]
    for n, school in enumerate(["紫阳路小学", "首义路小学"]):
        sub.append(("primary_school", school, r10(8000, 12000), 1350 + 450 * n,
                    is_kind("school") & (bld.block.to_numpy() == sorted(set(bld.block[is_kind("school")]))[n])))
    for name in ["老百姓大药房(武珞路店)", "同仁堂药店(紫阳路店)"]:
        sub.append(("pharmacy", name, r10(80, 200), None, host))
    rows += [(c, n, a, cap, pick(m, rng, used)) for c, n, a, cap, m in sub]
    status = ["open"] * len(rows)
    for i in (3, 11):                       # two planned facilities
        status[i] = "planned"
    return gpd.GeoDataFrame(dict(
        source_id=[f"F{i + 1:04d}" for i in range(len(rows))], name=[r[1] for r in rows],
        category=[r[0] for r in rows], floor_area=[r[2] for r in rows],
        capacity=pd.array([r[3] for r in rows], dtype="Int64"), status=status),
        geometry=shapely.set_precision(bpts[[r[4] for r in rows]], 1e-7), crs=4326)


def cameras(roads, names, blocks, fac, communities, rng) -> gpd.GeoDataFrame:
    """Cameras at junctions (looking down a street), compound gates and indoors.

    Planted gap: inside communities 003 and 007 only the boundary streets keep cameras.
    """
    rank = {"trunk": 5, "primary": 4, "secondary": 3, "tertiary": 2}
    inc: dict[tuple, list] = {}
    for i, (g, c) in enumerate(zip(roads.geometry.values, roads.highway)):
        xy = np.asarray(g.coords)
        for end, nxt in ((xy[0], xy[1]), (xy[-1], xy[-2])):
            key = (round(end[0], 1), round(end[1], 1))
            inc.setdefault(key, []).append((-rank.get(c, 1), bearing(*(nxt - end)), i))
    area = shapely.union_all([b.geom for b in blocks]).buffer(10)
    nodes = sorted((sum(-r for r, _, _ in v[:3]) * -1, k) for k, v in inc.items()
                   if len(v) >= 3 and area.contains(Point(k)))
    sites: list = []
    for score, k in nodes:
        if all(np.hypot(k[0] - s[1][0], k[1] - s[1][1]) > 40 for s in sites) and len(sites) < 115:
            sites.append((-score, k))
    cams = []   # (x, y, azimuth or None, name, ptz, room, point_type, hfov)
    for score, k in sites:
        edges = sorted(inc[k])
        nm = [names[i] for _, _, i in edges if names[i]]
        nm = list(dict.fromkeys(nm))
        label = f"{nm[0]}与{nm[1]}口" if len(nm) > 1 else (f"{nm[0]}路口" if nm else "无名路口")
        if rng.random() < 0.12:
            cams.append((k[0] + 3, k[1] + 3, None, f"{label}-球机", 1, 1, 1 if score >= 7 else 2, 79))
            continue
        for _, az, i in edges[:2 if score >= 7 else 1]:
            off = np.radians(az + 150)
            cams.append((k[0] + 5 * np.sin(off), k[1] + 5 * np.cos(off), az,
                         f"{label}-{DIRS[octant(az)]}", 3, 1, 1 if score >= 7 else 2,
                         int(rng.choice(list(LENS), p=[.25, .35, .25, .15]))))
    street_geom = {n: shapely.union_all(roads.geometry.values[np.asarray(names) == n])
                   for n in sorted(set(names) - {""})}
    for b in blocks:
        if b.kind in ("walkup", "tower", "old", "mega", "school", "hospital") and rng.random() < 0.45:
            line = street_geom[b.street]
            gate, on = nearest_points(b.geom.boundary, line)
            v = np.subtract(b.geom.centroid.coords[0], gate.coords[0])
            gx, gy = np.asarray(gate.coords[0]) + v / max(np.hypot(*v), 1e-9) * 3
            az = bearing(*-v)
            cams.append((gx, gy, az, f"{b.street}{b.number}号大门-{DIRS[octant(az)]}", 3, 1, 3,
                         int(rng.choice([102, 79]))))
    fm = gpd.GeoSeries(fac.geometry.values, crs=4326).to_crs(METRIC_CRS).values
    for (cat, nm), p in zip(fac[["category", "name"]].itertuples(index=False), fm):
        if cat in ("community_service_station", "health_station", "police", "health_centre"):
            az = float(rng.integers(0, 8) * 45)
            cams.append((p.x, p.y, az, f"{nm}大厅", 2, 2, 3, 102))
    pts = to_wgs(shapely.points([(c[0], c[1]) for c in cams]))
    keep = np.ones(len(cams), bool)
    cm = communities.to_crs(METRIC_CRS)
    for serial in (3, 7):                   # planted gap: strip the interior streets
        poly = cm.geometry.values[serial - 1]
        inner = shapely.contains(poly.buffer(-25), shapely.points([(c[0], c[1]) for c in cams]))
        keep &= ~inner | (np.cumsum(inner) == 1)
    cams = [c for c, k in zip(cams, keep) if k]
    pts = pts[keep]
    n = len(cams)
    off = set(rng.choice(n, size=max(1, round(0.03 * n)), replace=False).tolist())
    hf = np.array([c[7] for c in cams], float)
    return gpd.GeoDataFrame(dict(
        device_id=[f"{DEVICE_PREFIX}{i + 1:06d}" for i in range(n)],
        name=[c[3] for c in cams], civil_code=SUBDISTRICT_CODE,
        direction_type=pd.array([DIR_TYPE[octant(c[2])] if c[2] is not None else None
                                 for c in cams], dtype="Int64"),
        azimuth=[round(c[2], 1) if c[2] is not None else np.nan for c in cams], hfov=hf,
        vfov=np.round(np.degrees(2 * np.arctan(np.tan(np.radians(hf / 2)) * 9 / 16)), 1),
        max_view_distance=[float(rng.integers(60, 101)) if c[4] == 1 else
                           float(rng.integers(*LENS[c[7]])) for c in cams],
        ptz_type=[c[4] for c in cams], room_type=[c[5] for c in cams],
        point_type=[c[6] for c in cams],
        status=["offline" if i in off else "online" for i in range(n)]), geometry=pts, crs=4326)


def staffing(grids: gpd.GeoDataFrame, bld: pd.DataFrame, bpts: np.ndarray, rng):
    """Cadres and their assignments, with staffing gaps planted on purpose.

    Planted: 5 comprehensive grids without a full-time worker, 3 full-time workers
    carrying two grids (over 400 households), 2 workers assigned nowhere and one
    worker living more than 2 km from their grid.
    """
    people, assign = [], []
    names_used: set = set()
    phones: set = set()
    sw = 1 / np.arange(1, len(SURNAMES) + 1)

    def person(role: str, cc: str, pt: Point) -> str:
        while True:
            nm = rng.choice(list(SURNAMES), p=sw / sw.sum()) + "".join(
                rng.choice(list(GIVEN), size=int(rng.choice([1, 2], p=[.3, .7]))))
            if nm not in names_used:
                break
        while True:
            ph = str(rng.choice(["13", "15", "18"])) + "".join(map(str, rng.integers(0, 10, 9)))
            if ph not in phones:
                break
        names_used.add(nm)
        phones.add(ph)
        no = f"C{len(people) + 1:04d}"
        people.append(dict(cadre_no=no, name=nm, role=role, community_code=cc, phone=ph,
                           lon=round(pt.x, 7), lat=round(pt.y, 7)))
        return no

    def home(mask, grid: str | None = None) -> Point:
        idx = np.flatnonzero(mask)
        if len(idx) == 0:                   # a park grid may hold no building at all
            return shapely.point_on_surface(grids.geometry.values[gc.index(grid)])
        return bpts[idx[int(rng.integers(len(idx)))]]

    def link(no, kind, target, role, day="2026-01-01"):
        assign.append(dict(cadre_no=no, target_type=kind, target=target, role=role, valid_from=day))

    gc = grids.code.tolist()
    ingrid = {g: (bld.grid_code == g).to_numpy() for g in gc}
    comms = sorted(grids.community_code.unique())
    hh = dict(zip(grids.code, grids.households))
    comp = [g for g in gc if grids.grid_type[gc.index(g)] == "综合" and hh[g] > 0]
    empty = sorted(rng.choice(comp, 5, replace=False).tolist())
    rest = [g for g in comp if g not in empty]
    doubles = []
    for g in rest:                                  # adjacent serials in one community
        nxt = f"{g[:12]}{int(g[12:]) + 1:03d}"
        if len(doubles) < 3 and nxt in rest and not any({g, nxt} & set(d) for d in doubles) \
                and rng.random() < 0.3:
            doubles.append((g, nxt))
    carried = {g for d in doubles for g in d}
    far_grid = str(rng.choice([g for g in rest if g not in carried]))
    for cc in comms:
        incc = (bld.community_code == cc).to_numpy()
        person("community_secretary", cc, home(incc))
        chief = person("grid_chief", cc, home(incc))
        for g in gc:
            if g.startswith(cc):
                link(chief, "grid", g, "grid_chief")
    for g in gc:
        if g in empty or g in carried:
            continue
        if g == far_grid:
            c = gpd.GeoSeries([home(ingrid[g], g)], crs=4326).to_crs(METRIC_CRS).values[0]
            pt = gpd.GeoSeries([Point(c.x + 2600, c.y - 900)], crs=METRIC_CRS).to_crs(4326).values[0]
        else:
            pt = home(ingrid[g], g)
        link(person("full_time_worker", g[:12], pt), "grid", g, "full_time_worker")
    for a, b in doubles:
        no = person("full_time_worker", a[:12], home(ingrid[a]))
        link(no, "grid", a, "full_time_worker")
        link(no, "grid", b, "full_time_worker", "2026-03-01")
    for cc in comms[:2]:
        person("full_time_worker", cc, home((bld.community_code == cc).to_numpy()))
    for n in range(0, len(comms), 2):               # one police officer per two communities
        cs = comms[n:n + 2]
        no = person("police_officer", cs[0], home((bld.community_code == cs[0]).to_numpy()))
        for g in gc:
            if g[:12] in cs:
                link(no, "grid", g, "police_officer")
    for g in gc:
        if rng.random() < 0.55:
            link(person("part_time_worker", g[:12], home(ingrid[g], g)), "grid", g, "part_time_worker")
        link(person("party_member", g[:12], home(ingrid[g], g)), "grid", g, "party_member")
        for _ in range(int(rng.integers(1, 4))):
            link(person("volunteer", g[:12], home(ingrid[g], g)), "grid", g, "volunteer", "2026-02-01")
    big = np.flatnonzero((bld.households >= 40).to_numpy())
    for i in sorted(rng.choice(big, size=int(len(big) * 0.35), replace=False).tolist()):
        no = person("building_head", bld.community_code.iat[i], bpts[i])
        link(no, "building", bld.source_id.iat[i], "building_head")
    return pd.DataFrame(people), pd.DataFrame(assign)


def write(out: Path, res: dict) -> None:
    """Write demo.gpkg (fresh file, fixed layer order) and the two CSV files."""
    gpkg = out / "demo.gpkg"
    gpkg.unlink(missing_ok=True)
    for layer in ("subdistrict", "communities", "grids", "buildings", "cameras", "facilities", "roads"):
        res[layer].to_file(gpkg, layer=layer, driver="GPKG", engine="pyogrio")
    for name in ("cadres", "assignments"):
        res[name].to_csv(out / f"{name}.csv", index=False, encoding="utf-8", lineterminator="\n")


def summary(res: dict) -> str:
    """Counts as a Markdown table, for the README and the console."""
    b, hh = res["buildings"], res["_grid_households"].households
    rows = [("communities", len(res["communities"])), ("grids", len(res["grids"])),
            ("  of which 专属", int((res["grids"].grid_type == "专属").sum())),
            ("buildings", len(b)), ("households", int(b.households.sum())),
            ("residents", int(b.residents.sum())), ("cameras", len(res["cameras"])),
            ("facilities", len(res["facilities"])), ("roads", len(res["roads"])),
            ("cadres", len(res["cadres"])), ("assignments", len(res["assignments"])),
            ("households per grid min/median/max", f"{hh.min()} / {int(hh.median())} / {hh.max()}"),
            ("grids > 500 / < 300 households", f"{int((hh > 500).sum())} / {int((hh < 300).sum())}")]
    return "\n".join(["| item | count |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("source", nargs="?", type=Path, default=None,
                    help="street GeoPackage (default: $WANGGE_SHARED_DIR or ../shared/data)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args()
    t0 = time.perf_counter()
    res = build((args.source or default_source()).resolve(), args.seed)
    write(args.out, res)
    print(summary(res))
    print(f"written to {args.out} in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
