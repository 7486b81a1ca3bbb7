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
from shapely.ops import split

SRC_NAME = "wuhan-wuchang-streets.gpkg"
METRIC_CRS = 4547          # CGCS2000 3-degree Gauss-Kruger, CM 114E: metres for Wuhan
SEED = 20260101
MIN_BLOCK_AREA = 2_000.0   # m2: smaller faces are slivers (junction islands, ramps)
MIN_BLOCK_WIDTH = 20.0     # m: 2*area/perimeter below this = median strip between carriageways
REGION_AREA = 2.6e6        # m2 of blocks grown from the seed: a compact inner-city 街道
REGION_SEED_XY = (530_250.0, 3_380_700.0)   # EPSG:4547, west-central Wuchang
MAX_BLOCK_AREA = 15_000.0  # m2: superblocks are cut into compounds (小区) of at most this
HH_PER_GRID = 460          # target households per comprehensive grid (band 300-500)
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
    "walkup": ((10, 13), (30, 60), (16, 22), (8, 14)),
    "tower": ((15, 18), (24, 40), (30, 40), (16, 26)),
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
            for _ in range(12 if b.kind == "old" else 5):
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
        floors = int(rng.choice(*FLOORS[kind]))
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
