"""Generate the 紫阳街道 demo sub-district from the real Wuchang (Wuhan) street network.

Why: the platform needs a believable Chinese 街道 to demo and test against -- boundaries
that follow real streets, grids of 300-500 households, coded communities and grids,
cameras, facilities and cadres -- and no such open data exists.  So we take real OSM
streets (© OpenStreetMap contributors, ODbL 1.0) and *generate* everything else inside
the blocks they enclose.  Every attribute is synthetic; see README.md.

Deterministic: one seeded numpy Generator drives all randomness and every collection is
sorted before use, so the same input and seed give the same output.

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
import pyogrio
import shapely
from shapely import affinity
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box
from shapely.ops import nearest_points, split

SRC_NAME = "wuhan-wuchang-streets.gpkg"
METRIC_CRS = 4547          # CGCS2000 3-degree Gauss-Krueger, CM 114E: metres around Wuhan
SEED = 20260101
MIN_BLOCK_AREA = 2_000.0   # m2: smaller faces are slivers (junction islands, ramp loops)
MIN_BLOCK_WIDTH = 20.0     # m: 2*area/perimeter below this = median strip of a dual road
REGION_AREA = 2.6e6        # m2 of street blocks grown from the seed: a compact inner-city 街道
REGION_SEED_XY = (530_250.0, 3_380_700.0)   # EPSG:4547, west-central Wuchang
MAX_BLOCK_AREA = 8_000.0   # m2: superblocks are cut into compounds (小区) no larger than this
HH_PER_GRID = 440          # target households per comprehensive grid (band 300-500)
N_COMMUNITIES = 8
SETBACK = 5.0              # m between buildings and their block edge
ROAD_HALF_WIDTH = {"trunk": 18, "trunk_link": 8, "primary": 14, "primary_link": 7,
                   "secondary": 11, "secondary_link": 6, "tertiary": 8}   # others: 4-5 m
GROUPS = ("elderly_65", "elderly_alone", "disabled", "dibao", "floating", "rental", "released",
          "corrections", "at_risk_youth", "party_members", "volunteers")   # counts only
MAIN = ("trunk", "primary", "secondary", "tertiary")
DEDICATED = ("park", "hospital", "school", "middle_school")               # 专属 grids
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
MINOR_NAMES = ("花堤 昙华 胭脂 戈甲营 太平 糖坊 马道 三义 高家 棋盘 福寿 仁寿 吉祥 双柏 新民 "
               "永安 后长 西厂 东厂 三道 抚院 青石 月华 云架 铁佛 水陆 黄土 斗级营 蛇山 "
               "书院 长春 蒲圻 凤凰 白鹭 石灰 梅亭 锦绣 义井 瓦窑").split()
SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
            "于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江")
GIVEN = ("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰红建文辉力鹏飞宇婷雪琳晨浩"
         "欣颖佳俊峰斌丹萍鑫波海林宁慧云亮成荣新凯志燕梅莉晶蕾楠倩帆昊博睿楚汉江")
DIRS = ["北", "东北", "东", "东南", "南", "西南", "西", "西北"]
DIR_TYPE = [4, 6, 1, 5, 3, 7, 2, 8]       # GB/T 28181 DirectionType of N, NE, E, SE, ...
DEVICE_PREFIX = "42010601" + "00" + "131" + "0"   # centre code, industry, type, network
LENS = {102: (30, 46), 79: (40, 66), 51: (60, 91), 38: (80, 121)}   # HFOV -> view range
# planted gaps (community serials) -- README.md lists them
NO_STATION, NO_HEALTH, LOW_SERVICE, FEW_CAMERAS, SPLIT_GRID = (3, 7), (4,), (2, 6), (5, 8), (2, 7)
BIG_GRIDS = (5,)
PLANNED = {(4, "kindergarten"), (8, "culture_station")}


@dataclass
class Block:
    """A piece of land bounded by streets (or, inside a superblock, by compound walls)."""
    geom: Polygon                 # EPSG:4547; the blocks tile the sub-district exactly
    parent: int = 0               # index of the street block it was cut from
    kind: str = "walkup"          # walkup/tower/old/commercial/industrial/mega or DEDICATED
    street: str = ""              # address street and door number
    number: int = 0
    feet: list = field(default_factory=list)   # footprints; those from n_main on are sheds
    n_main: int = 0


def default_source() -> Path:
    """Why: the data sits beside the repo in ../shared, or wherever WANGGE_SHARED_DIR says."""
    env = os.environ.get("WANGGE_SHARED_DIR")
    for cand in ([Path(env) / "data" / SRC_NAME, Path(env) / SRC_NAME] if env else []):
        if cand.exists():
            return cand
    return Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / SRC_NAME


def bearing(dx: float, dy: float) -> float:
    """Compass azimuth (clockwise from north) of a vector in the metric CRS."""
    return float(np.degrees(np.arctan2(dx, dy)) % 360.0)


def octant(az: float) -> int:
    """0..7 = N, NE, E, SE, S, SW, W, NW sector containing azimuth `az`."""
    return int(((az + 22.5) % 360) // 45)


def junctions(lines) -> dict[tuple, list[tuple[float, int]]]:
    """Edge ends keyed by node (0.1 m): (outgoing bearing, edge index), sorted."""
    ends: dict[tuple, list] = {}
    for i, g in enumerate(lines):
        c = np.asarray(g.coords)
        for end, nxt in ((c[0], c[1]), (c[-1], c[-2])):
            ends.setdefault((round(end[0], 1), round(end[1], 1)), []).append(
                (bearing(*(nxt - end)), i))
    return {k: sorted(v) for k, v in sorted(ends.items())}


# --------------------------------------------------------------------------- blocks
def make_blocks(lines) -> list[Polygon]:
    """Polygonize the noded street network and hand slivers to their nearest real block.

    Why Voronoi: a median strip between two carriageways is split down its middle between
    the blocks on either side, so block (and grid) edges fall on the road centre line, as
    administrative boundaries do, and the blocks still tile the area without gaps.
    """
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(shapely.union_all(lines))))
    area = shapely.area(faces)
    thin = (area < MIN_BLOCK_AREA) | (2 * area / shapely.length(faces) < MIN_BLOCK_WIDTH)
    big = list(faces[~thin])
    tree = shapely.STRtree(big)
    extra: list[list] = [[] for _ in big]
    for cl in shapely.get_parts(shapely.union_all(faces[thin])):
        xy = shapely.get_coordinates(shapely.segmentize(cl.boundary, 3.0))
        xy = xy[np.sort(np.unique(np.round(xy, 3), axis=0, return_index=True)[1])]
        hit = tree.query_nearest(shapely.points(xy), max_distance=60.0, all_matches=False)
        lab = np.full(len(xy), -1)
        lab[hit[0]] = hit[1]
        owners = np.unique(lab[lab >= 0])
        if len(owners) == 1:
            extra[owners[0]].append(cl)
        elif len(owners) > 1:
            cells = shapely.get_parts(shapely.voronoi_polygons(
                shapely.multipoints(xy), extend_to=cl.buffer(100), ordered=True))
            for o in owners:
                extra[o].append(shapely.intersection(shapely.union_all(cells[lab == o]), cl))
    # stray crumbs detached from their block are left as road space
    return [max(shapely.get_parts(shapely.union_all([g, *ex])), key=lambda p: p.area)
            for g, ex in zip(big, extra)]


def adjacency(geoms) -> dict[int, list[int]]:
    """Blocks are neighbours when they share at least 5 m of edge (not just a corner)."""
    a, b = shapely.STRtree(geoms).query(shapely.buffer(geoms, 0.5), predicate="intersects")
    adj: dict[int, list[int]] = {i: [] for i in range(len(geoms))}
    for i, j in zip(a.tolist(), b.tolist()):
        if i < j and shapely.intersection(geoms[j].boundary, geoms[i].buffer(0.5)).length >= 5:
            adj[i].append(j)
            adj[j].append(i)
    return {k: sorted(v) for k, v in adj.items()}


def components(nodes: list[int], adj: dict[int, list[int]]) -> list[list[int]]:
    """Connected components of the block graph restricted to `nodes`."""
    todo, out = set(nodes), []
    for n in sorted(nodes):
        if n in todo:
            comp, stack = [], [n]
            todo.discard(n)
            while stack:
                comp.append(m := stack.pop())
                for k in adj[m]:
                    if k in todo:
                        todo.discard(k)
                        stack.append(k)
            out.append(sorted(comp))
    return out


def select_region(blocks: list[Polygon]) -> list[Polygon]:
    """Grow a compact, hole-free set of blocks from a seed until it reaches REGION_AREA.

    Why not all blocks: the 8 km2 of blocks in the extract would make a sparse 街道;
    under 3 km2 with ~28,000 households matches the density of old Wuchang.
    """
    adj = adjacency(blocks)
    d = np.hypot(*(shapely.get_coordinates(shapely.centroid(blocks)) - REGION_SEED_XY).T)
    chosen, heap, total = set(), [(d.min(), int(np.argmin(d)))], 0.0
    while heap and total < REGION_AREA:
        _, i = heapq.heappop(heap)
        if i not in chosen:
            chosen.add(i)
            total += blocks[i].area
            heap += [(d[j], j) for j in adj[i] if j not in chosen]
            heapq.heapify(heap)
    union = shapely.union_all([blocks[i] for i in sorted(chosen)])
    filled = shapely.union_all([Polygon(p.exterior) for p in shapely.get_parts(union)])
    chosen |= {i for i, b in enumerate(blocks) if filled.contains(b.representative_point())}
    keep = [blocks[i] for i in sorted(chosen)]
    return [keep[i] for i in max(components(list(range(len(keep))), adjacency(keep)), key=len)]


def subdivide(poly: Polygon, rng: np.random.Generator) -> list[Polygon]:
    """Cut a superblock across its long axis, recursively, into compounds.

    Why: Wuchang superblocks (up to 60 ha) hold many walled compounds reached by lanes the
    OSM street layer omits; grids of 300-500 households need that granularity.
    """
    if poly.area <= MAX_BLOCK_AREA:
        return [poly]
    ring = np.asarray(shapely.oriented_envelope(poly).exterior.coords)[:4]
    e1, e2 = ring[1] - ring[0], ring[2] - ring[1]
    axis = e1 if np.hypot(*e1) >= np.hypot(*e2) else e2
    u = axis / np.hypot(*axis)
    normal = np.array([-u[1], u[0]]) * 5e3
    for t in (rng.uniform(-0.08, 0.08), 0.0, -0.15, 0.15):
        p = ring.mean(axis=0) + axis * t
        parts = [g for g in shapely.get_parts(split(poly, LineString([p - normal, p + normal])))
                 if g.geom_type == "Polygon"]
        if len(parts) > 1 and min(g.area for g in parts) >= 3_000:
            return [q for g in parts for q in subdivide(g, rng)]
    return [poly]


# --------------------------------------------------------------------------- streets
def name_streets(roads: gpd.GeoDataFrame, ends: dict) -> list[str]:
    """Give each OSM edge a street name by chaining edges into strokes.

    Why: the extract carries no names.  Same-class edges that continue each other across
    a junction (deflection < 40 degrees) form one street and both carriageways of a dual
    road share its name.  The names are illustrative, not the real names of the streets.
    """
    geoms, cls = roads.geometry.values, roads["highway"].tolist()
    group = ["" if c.endswith("_link") else "main" if c in MAIN else "minor" for c in cls]
    parent = list(range(len(geoms)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for inc in ends.values():
        pairs = sorted((abs(180 - abs(a1 - a2) % 360), i, j) for n, (a1, i) in enumerate(inc)
                       for (a2, j) in inc[n + 1:] if group[i] and group[i] == group[j])
        used: set = set()
        for dev, i, j in pairs:
            if dev < 40 and not {i, j} & used:
                used |= {i, j}
                parent[find(i)] = find(j)
    chains: dict[int, list[int]] = {}
    for i in range(len(geoms)):
        chains.setdefault(find(i), []).append(i)
    length = {r: sum(geoms[i].length for i in v) for r, v in chains.items()}
    roots = sorted(chains, key=lambda r: (-length[r], r))
    merged = {r: shapely.line_merge(shapely.union_all(geoms[chains[r]])) for r in roots}
    mains = [r for r in roots if group[r] == "main" and length[r] > 150]
    for n, a in enumerate(mains):            # dual carriageways share one name
        pa = shapely.line_interpolate_point(merged[a], np.linspace(0, 1, 12), normalized=True)
        for b in mains[n + 1:]:
            if find(a) != find(b) and np.mean(shapely.distance(pa, merged[b]) < 45) > 0.8:
                parent[find(b)] = find(a)
    names: dict[int, str] = {}
    total: dict[int, float] = {}
    for r in roots:
        total[find(r)] = total.get(find(r), 0.0) + length[r]
    n_main = n_minor = 0
    for r in sorted(total, key=lambda r: (-total[r], r)):
        if group[r] == "main" and total[r] > 150 and n_main < len(MAIN_NAMES):
            names[r], n_main = MAIN_NAMES[n_main], n_main + 1
        elif group[r] == "minor" and total[r] > 120 and n_minor < len(MINOR_NAMES):
            names[r], n_minor = MINOR_NAMES[n_minor] + "巷里街"[n_minor % 3], n_minor + 1
    out = [names.get(find(i), "") for i in range(len(geoms))]
    for _ in range(3):                       # short junction pieces take a neighbour's name
        for inc in ends.values():
            for _, i in inc:
                if not out[i] and group[i]:
                    out[i] = next((out[j] for _, j in inc if out[j] and group[j] == group[i]), "")
    return out


# --------------------------------------------------------------------------- buildings
SPECS = {  # depth W, length L, gap between rows, gap along a row (metres)
    "walkup": ((10, 13), (14, 32), (22, 28), (6, 12)),
    "tower": ((15, 18), (20, 32), (50, 65), (28, 40)),
    "old": ((9, 12), (12, 20), (3, 5), (2.5, 4)),
    "commercial": ((14, 18), (25, 60), (14, 20), (10, 16)),
    "industrial": ((15, 18), (30, 60), (12, 18), (10, 14)),
    "school": ((12, 16), (40, 60), (35, 60), (25, 40)),
    "hospital": ((16, 18), (40, 60), (20, 30), (15, 20)),
    "park": ((10, 12), (10, 14), (50, 70), (50, 70)),
}
FLOORS = {"walkup": ([5, 6, 7, 8, 9], [.08, .45, .32, .10, .05]),
          "tower": ([18, 24, 26, 28, 30, 32, 33], [.15, .2, .15, .15, .15, .1, .1]),
          "old": ([1, 2, 3], [.25, .5, .25])}


def pack(area: Polygon, angle: float, kind: str, rng: np.random.Generator) -> list[Polygon]:
    """Lay rectangular footprints in rows across `area`, rotated by `angle` degrees.

    Why rows: Chinese compounds are rows of slabs spaced for sunlight (日照间距); rows
    also make footprints non-overlapping by construction.
    """
    (w0, w1), (l0, l1), rowgap, gap = SPECS.get(kind, SPECS["school"])
    origin = area.centroid
    a = affinity.rotate(area, -angle, origin=origin)
    shapely.prepare(a)
    minx, miny, maxx, maxy = a.bounds
    out, y = [], miny + rng.uniform(0, 4)
    while y < maxy:
        w, x = rng.uniform(w0, w1), minx + rng.uniform(0, 6)
        while x < maxx:
            for length in (rng.uniform(l0, l1), l0):
                if a.contains(r := box(x, y, x + length, y + w)):
                    out.append(affinity.rotate(r, angle, origin=origin))
                    x += length + rng.uniform(*gap)
                    break
            else:
                x += 4.0
        y += w + rng.uniform(*rowgap)
    return out


def core(geom: Polygon, setback: float, road_buf, tree) -> Polygon:
    """Buildable part of a block: set back from its edges and clear of every road."""
    area = geom.buffer(-setback)
    if len(near := tree.query(geom)):
        area = area.difference(shapely.union_all(road_buf[near]))
    return max(shapely.get_parts(area), key=lambda p: p.area, default=Polygon())


def street_angle(poly: Polygon) -> float:
    """Direction of the block's long side folded into [-45, 45): its street direction."""
    ring = np.asarray(shapely.oriented_envelope(poly).exterior.coords)
    return float((np.degrees(np.arctan2(*(ring[1] - ring[0])[::-1])) + 45) % 90 - 45)


def mega_tower(area: Polygon, ang: float) -> Polygon:
    """The planted single tower: 64 x 30 m, 33 floors, ~800 small flats."""
    c = area.centroid
    return affinity.rotate(box(c.x - 32, c.y - 15, c.x + 32, c.y + 15), ang, origin=c)


def place_buildings(blocks: list[Block], road_buf, tree, rng) -> None:
    """Fill each block's buildable core with footprints."""
    for b in blocks:
        area = core(b.geom, 3.0 if b.kind == "old" else SETBACK, road_buf, tree)
        if area.is_empty or area.area < 300:
            continue
        ang = street_angle(b.geom)
        if b.kind == "walkup" and rng.random() < 0.3:
            ang = 0.0                                   # south-facing slabs, 坐北朝南
        c = area.centroid
        if b.kind == "mega":
            feet = [mega_tower(area, ang)]
        else:
            feet = pack(area, ang, b.kind, rng)
            feet = feet[:3 if b.kind == "park" else 6] if b.kind in DEDICATED else feet
        b.n_main = len(feet)
        if b.kind in ("walkup", "tower", "old", "commercial"):   # shops, sheds, substations
            taken = shapely.union_all([f.buffer(4) for f in feet]) if feet else Polygon()
            for _ in range(40 if b.kind == "old" else 30):
                p = shapely.line_interpolate_point(area.exterior, rng.random(), normalized=True)
                v = np.subtract(c.coords[0], p.coords[0])
                p = affinity.translate(p, *(v / max(np.hypot(*v), 1e-9) * 8))
                sq = affinity.rotate(box(p.x - 7, p.y - 5, p.x + 7, p.y + 5), ang, origin=p)
                if area.contains(sq) and not taken.intersects(sq):
                    feet.append(sq)
                    taken = taken.union(sq.buffer(4))
        b.feet = feet


def describe(b: Block, fp: Polygon, shed: bool, main_lines, rng) -> dict:
    """Floors, use, households (floor area / 90 m2) and group counts for one footprint."""
    kind, hh = b.kind, 0
    if kind == "mega":
        floors, use, hh = 33, "residential", int(round(fp.area * 33 / 80))   # small flats
    elif shed and kind != "old":            # in old quarters a shed is one more old house
        floors, use = int(rng.integers(1, 3)), str(rng.choice(["commercial", "public"]))
    elif kind in FLOORS:
        floors, use = int(rng.choice(FLOORS[kind][0], p=FLOORS[kind][1])), "residential"
        if kind == "walkup" and fp.distance(main_lines) < 30 and rng.random() < 0.6:
            use = "mixed"                               # shops on the ground floor
        hh = int(round(fp.area * (floors - (use == "mixed")) / 90))
    elif kind == "commercial":
        office = rng.random() < 0.35
        floors = int(rng.integers(8, 25) if office else rng.integers(2, 6))
        use = "office" if office else "commercial"
    else:
        use = {"middle_school": "school", "park": "public"}.get(kind, kind)
        floors = {"school": 4, "middle_school": 5, "hospital": int(rng.integers(5, 19)),
                  "park": 1, "industrial": int(rng.integers(1, 4))}[kind]
    res = int(round(hh * rng.normal(2.6, 0.15))) if hh else 0
    old, bn = kind == "old", rng.binomial
    g = dict(elderly_65=bn(res, 0.19 if kind in ("old", "walkup") else 0.12),
             disabled=bn(res, 0.022), dibao=bn(hh, 0.025 if old else 0.012),
             floating=bn(res, 0.22 if old else 0.12), rental=bn(hh, 0.30 if old else 0.18),
             released=bn(res, 0.0015), corrections=bn(res, 0.0008),
             at_risk_youth=bn(res, 0.001), party_members=bn(res, 0.07),
             volunteers=bn(res, 0.05))
    g["elderly_alone"] = bn(g["elderly_65"], 0.13)
    return dict(floors=floors, use=use, households=hh, residents=res,
                **{k: int(v) for k, v in g.items()})


# --------------------------------------------------------------------------- partition
def partition(nodes: list[int], adj, w: np.ndarray, xy: np.ndarray, k: int,
              shares: np.ndarray | None = None, band=(300, 500)) -> list[list[int]]:
    """Split connected `nodes` into k contiguous groups whose weights follow `shares`.

    Why not k-means: a grid must be one contiguous piece.  Seeds come from weighted
    k-means, regions then grow one neighbouring block at a time (the one furthest below
    its target first), then boundary blocks move across while that evens totals out.
    """
    nodes, k = sorted(nodes), min(k, len(nodes))
    if k <= 1:
        return [nodes]
    share = np.full(k, 1 / k) if shares is None else np.asarray(shares[:k]) / sum(shares[:k])
    p, wt = xy[nodes], w[nodes] + 1.0
    c = [p[np.argmin(p[:, 0] - p[:, 1])]]
    for _ in range(k - 1):
        c.append(p[np.argmax(np.min([np.hypot(*(p - q).T) for q in c], axis=0))])
    c = np.array(c)
    for _ in range(20):
        lab = np.argmin(np.hypot(p[:, None, 0] - c[:, 0], p[:, None, 1] - c[:, 1]), axis=1)
        c = np.array([np.average(p[lab == j], 0, wt[lab == j]) if (lab == j).any() else c[j]
                      for j in range(k)])
    region, tot, heap = {n: -1 for n in nodes}, np.zeros(k), []
    for j in range(k):
        s = next(nodes[i] for i in np.argsort(np.hypot(*(p - c[j]).T), kind="stable")
                 if region[nodes[i]] == -1)
        region[s], tot[j] = j, w[s]
        heap.append((tot[j] / share[j], j))
    heapq.heapify(heap)
    while heap:
        _, j = heapq.heappop(heap)
        front = sorted({m for n in nodes if region[n] == j for m in adj[n] if region.get(m) == -1})
        if front:
            m = min(front, key=lambda m: (np.hypot(*(xy[m] - c[j])), m))
            region[m], tot[j] = j, tot[j] + w[m]
            heapq.heappush(heap, (tot[j] / share[j], j))
    target = tot.sum() * share

    def cost(t: float, j: int) -> float:     # squared miss, ten times dearer outside the band
        return (t - target[j]) ** 2 + 10 * (max(0, t - band[1]) ** 2 + max(0, band[0] - t) ** 2)

    for _ in range(400):                     # refine: move boundary blocks to the lighter side
        moves = set()
        for n in nodes:
            a = region[n]
            for b in {region[m] for m in adj[n] if region.get(m, a) != a}:
                gain = cost(tot[a], a) + cost(tot[b], b) - cost(tot[a] - w[n], a) - \
                    cost(tot[b] + w[n], b)
                if gain > 1.0:
                    moves.add((-gain, n, b))
        for _, n, b in sorted(moves):
            a = region[n]
            rest = [q for q in nodes if region[q] == a and q != n]
            if rest and len(components(rest, adj)) == 1:
                region[n], tot[a], tot[b] = b, tot[a] - w[n], tot[b] + w[n]
                break
        else:
            break
    return [sorted(n for n in nodes if region[n] == j) for j in range(k)]


def reading_order(xy: np.ndarray, band: float) -> np.ndarray:
    """Indices west->east inside bands of `band` metres counted from the north: the
    standard's serial order (west to east, then north to south)."""
    return np.lexsort((xy[:, 0], np.floor((xy[:, 1].max() - xy[:, 1]) / band)))


def to_wgs(geoms) -> np.ndarray:
    """EPSG:4547 -> EPSG:4326 on a 1e-7 degree (~1 cm) grid, kept valid."""
    g = gpd.GeoSeries(list(geoms), crs=METRIC_CRS).to_crs(4326).values
    return np.asarray(shapely.set_precision(g, 1e-7))


def multi(g) -> MultiPolygon:
    return MultiPolygon([p for p in shapely.get_parts(g) if p.geom_type == "Polygon"])


# --------------------------------------------------------------------------- pipeline
def land_use(blocks: list[Block], n_parent: int, main_lines, road_buf, rtree, rng) -> list[Block]:
    """Give blocks a use; merge neighbouring compounds into the dedicated units.

    Why per superblock: a real 街道 has whole quarters of walk-ups or old houses, not a
    salt-and-pepper mix; schools, the hospital and the park sit apart from each other.
    """
    pkind = rng.choice(["old", "walkup"], n_parent, p=[.2, .8])
    for b in blocks:
        b.kind = str(pkind[b.parent] if rng.random() < 0.65 else rng.choice(
            ["walkup", "tower", "old", "commercial"], p=[.35, .35, .15, .15]))
        if b.geom.distance(main_lines) < 25 and rng.random() < 0.12:
            b.kind = "commercial"
    adj, xy = adjacency([b.geom for b in blocks]), shapely.get_coordinates(
        shapely.centroid([b.geom for b in blocks]))
    chosen: list[int] = []
    for kind, want in (("park", 16e3), ("hospital", 12e3), ("middle_school", 15e3),
                       ("school", 10e3), ("school", 10e3), ("mega", 0), ("industrial", 9e3)):
        cand = [i for i, b in enumerate(blocks) if b.geom.area > 3e3 and b.parent >= 0
                and all(np.hypot(*(xy[i] - xy[j])) > 450 for j in chosen) and (kind != "mega" or (
                    a := core(b.geom, SETBACK, road_buf, rtree)).contains(
                        mega_tower(a, street_angle(b.geom))))]
        chosen.append(i := int(rng.choice(cand)))
        unit = [i]                          # merge neighbouring compounds of one superblock
        while sum(blocks[j].geom.area for j in unit) < want:
            nb = [j for u in unit for j in adj[u] if j not in unit and blocks[j].parent ==
                  blocks[i].parent and j not in chosen]
            if not nb:
                break
            unit.append(min(nb, key=lambda j: (np.hypot(*(xy[j] - xy[i])), j)))
        blocks[i].geom = shapely.union_all([blocks[j].geom for j in unit])
        blocks[i].kind = kind
        for j in unit[1:]:
            blocks[j].parent = -1           # absorbed
    return [b for b in blocks if b.parent >= 0]


def make_grids(blocks: list[Block], adj, xy, hh: np.ndarray, rng) -> tuple[list, list[dict]]:
    """Communities of unequal size, then grids inside each; both numbered in reading order.

    Dedicated units and the single tower are grids of their own; the rest of a community
    is split into contiguous grids of about HH_PER_GRID households.
    """
    comms = partition(list(range(len(blocks))), adj, hh, xy, N_COMMUNITIES,
                      rng.uniform(0.8, 1.2, N_COMMUNITIES), band=(2500, 4500))
    comms = [comms[i] for i in reading_order(np.array([xy[c].mean(0) for c in comms]), 1000.0)]
    rows = []
    for ci, cb in enumerate(comms):
        ccode = f"{SUBDISTRICT_CODE}{ci + 1:03d}"
        special = [i for i in cb if blocks[i].kind in DEDICATED + ("mega",)]
        groups = [[i] for i in special]
        for comp in components(sorted(set(cb) - set(special)), adj):
            k = max(1, round(hh[comp].sum() / HH_PER_GRID))
            k += hh[comp].sum() / k > 500       # keep the average inside the 300-500 band
            k -= ci + 1 in BIG_GRIDS and k > 3  # planted: one grid too few, all over 500
            groups += partition(comp, adj, hh, xy, k)
        if ci + 1 in SPLIT_GRID:                # planted: one grid cut in two, both < 300
            j = max(range(len(special), len(groups)), key=lambda j: (len(groups[j]), -j))
            groups += partition(groups.pop(j), adj, hh, xy, 2)
        for si, gi in enumerate(reading_order(np.array([xy[g].mean(0) for g in groups]), 300.0)):
            g = groups[gi]
            rows.append(dict(code=f"{ccode}{si + 1:03d}",
                             name=f"{COMMUNITY_NAMES[ci]}第{si + 1:02d}网格",
                             grid_type="专属" if blocks[g[0]].kind in DEDICATED else "综合",
                             community_code=ccode, blocks=g, households=int(hh[g].sum())))
    return comms, rows


def build(src: Path, seed: int) -> dict:
    """Run the whole pipeline; return the layers (EPSG:4326) and the two CSV tables."""
    rng = np.random.default_rng(seed)
    osm = gpd.read_file(src, layer="roads")
    roads = osm.to_crs(METRIC_CRS)
    lines, cls = roads.geometry.values, roads["highway"].to_numpy()
    region = shapely.coverage_clean(select_region(make_blocks(lines)), gap_width=1.0)
    blocks = [Block(g, parent=p) for p, r in enumerate(region) for g in subdivide(r, rng)]
    for b, g in zip(blocks, shapely.coverage_clean([b.geom for b in blocks], gap_width=1.0)):
        b.geom = max(shapely.get_parts(g), key=lambda q: q.area)
    main_lines = shapely.union_all(lines[np.isin(cls, ["trunk", "primary"])])
    road_buf = shapely.buffer(lines, [ROAD_HALF_WIDTH.get(
        c, 5 if c in ("residential", "unclassified") else 4) for c in cls])
    rtree = shapely.STRtree(road_buf)
    blocks = land_use(blocks, len(region), main_lines, road_buf, rtree, rng)
    geoms = [b.geom for b in blocks]
    adj, xy = adjacency(geoms), shapely.get_coordinates(shapely.centroid(geoms))
    # streets; each block takes a door number on its nearest named street
    ends = junctions(lines)
    names = name_streets(roads, ends)
    streets = {n: shapely.line_merge(shapely.union_all(lines[[m == n for m in names]]))
               for n in sorted(set(names) - {""})}
    named = np.flatnonzero([bool(n) for n in names])
    tree, taken = shapely.STRtree(lines[named]), set()
    for b in blocks:
        b.street = names[named[tree.query_nearest(b.geom.centroid)[0]]]
        num = 2 * int(streets[b.street].project(b.geom.centroid) / 25) + 1 + int(rng.random() < .5)
        while (b.street, num) in taken:
            num += 2
        b.number = num
        taken.add((b.street, num))
    place_buildings(blocks, road_buf, rtree, rng)
    bld = pd.DataFrame([dict(block=bi, k=k + 1, **describe(b, fp, k >= b.n_main, main_lines, rng))
                        for bi, b in enumerate(blocks) for k, fp in enumerate(b.feet)])
    hh_block = np.bincount(bld.block, weights=bld.households, minlength=len(blocks))
    comms, grid_rows = make_grids(blocks, adj, xy, hh_block, rng)
    block_grid = np.empty(len(blocks), dtype=object)
    for r in grid_rows:
        block_grid[r["blocks"]] = r["code"]
    # EPSG:4326 geometry: a clean coverage of blocks; grids and communities are its unions
    wgs = shapely.coverage_clean(to_wgs(geoms), gap_width=1e-6)
    grids = gpd.GeoDataFrame(grid_rows, crs=4326, geometry=[
        multi(shapely.coverage_union_all(wgs[r["blocks"]])) for r in grid_rows])
    codes = [f"{SUBDISTRICT_CODE}{i + 1:03d}" for i in range(len(comms))]
    communities = gpd.GeoDataFrame(
        dict(code=codes, name=COMMUNITY_NAMES[:len(codes)], subdistrict_code=SUBDISTRICT_CODE),
        crs=4326, geometry=[multi(shapely.coverage_union_all(
            grids.geometry.values[grids.community_code == c])) for c in codes])
    subdistrict = gpd.GeoDataFrame([dict(code=SUBDISTRICT_CODE, name=SUBDISTRICT_NAME, **DISTRICT)],
                                   crs=4326, geometry=[multi(shapely.coverage_union_all(
                                       communities.geometry.values))])
    bld.insert(0, "source_id", [f"B{i + 1:06d}" for i in range(len(bld))])
    bld["address"] = [f"武昌区{blocks[b].street}{blocks[b].number}号{k}栋"
                      for b, k in zip(bld.block, bld.k)]
    bld["grid_code"] = block_grid[bld.block.to_numpy()]
    bld["community_code"] = bld.grid_code.str[:12]
    bgeom = to_wgs([fp for b in blocks for fp in b.feet])
    bpts = shapely.set_precision(shapely.point_on_surface(bgeom), 1e-7)
    fac = facilities(bld, bpts, np.array([b.kind for b in blocks]), rng)
    cams = cameras(lines, cls, names, ends, streets, blocks, fac, communities, rng)
    cadres, assign = staffing(grids, bld, bpts, rng)
    keep = shapely.intersects(lines, shapely.union_all(geoms).buffer(30))
    road_out = gpd.GeoDataFrame(dict(
        source_id=[f"R{i + 1:05d}" for i in range(int(keep.sum()))],
        name=np.asarray(names, dtype=object)[keep], road_class=cls[keep],
        walkable=~np.isin(cls[keep], ["trunk", "trunk_link"])),
        geometry=osm.geometry.values[keep], crs=4326)
    cols = ["source_id", "address", "floors", "use", "households", "residents", *GROUPS]
    return dict(subdistrict=subdistrict, communities=communities,
                grids=grids.drop(columns=["blocks", "households"]),
                buildings=gpd.GeoDataFrame(bld[cols], geometry=[MultiPolygon([g]) for g in bgeom],
                                           crs=4326),
                cameras=cams, facilities=fac, roads=road_out, cadres=cadres, assignments=assign,
                grid_households=grids.set_index("code").households)


def facilities(bld: pd.DataFrame, bpts: np.ndarray, kinds: np.ndarray, rng) -> gpd.GeoDataFrame:
    """Community and sub-district facilities, each placed on a building.

    Planted gaps: no service station in NO_STATION, no health station in NO_HEALTH, and
    LOW_SERVICE communities stay below 30 m2 of service space per 100 households.
    """
    rows, used, blk = [], set(), bld.block.to_numpy()
    host = bld.use.isin(["public", "commercial", "mixed", "office"]).to_numpy()

    def r10(lo: float, hi: float) -> float:
        return float(round(rng.uniform(lo, hi) / 10) * 10)

    def on(mask: np.ndarray) -> int:
        idx = [i for i in np.flatnonzero(mask if mask.any() else host) if i not in used]
        used.add(i := int(idx[int(rng.integers(len(idx)))]))
        return i

    for s, cn in enumerate(COMMUNITY_NAMES, 1):
        inc = (bld.community_code == f"{SUBDISTRICT_CODE}{s:03d}").to_numpy()
        short, low, plan = cn.removesuffix("社区"), s in LOW_SERVICE, []
        if s not in NO_STATION:
            plan.append(("community_service_station", f"{cn}党群服务中心",
                         r10(260, 360) if low else r10(600, 1000), None))
        if s not in NO_HEALTH:
            plan.append(("health_station", f"{cn}卫生服务站", r10(120, 250), None))
        if not low:
            plan += [("elderly_day_care", f"{cn}老年人日间照料中心", r10(350, 750),
                      int(rng.integers(30, 61))),
                     ("culture_station", f"{cn}文化活动室",
                      r10(900, 1200) if s in NO_STATION else r10(400, 1200), None)]
        classes = int(rng.integers(6, 13))
        plan += [("kindergarten", f"{short}幼儿园", classes * 280.0, classes * 30),
                 ("pharmacy", f"{'老百姓 益丰 国大 同仁堂 九州通'.split()[s % 5]}大药房({short}店)",
                  r10(80, 200), None)]
        rows += [(c, n, a, cap, on(inc & host if (inc & host).any() else inc),
                  "planned" if (s, c) in PLANNED else "open") for c, n, a, cap in plan]
    schools = sorted(set(blk[np.isin(blk, np.flatnonzero(kinds == "school"))]))
    rows += [(c, n, a, cap, on(m), "open") for c, n, a, cap, m in [
        ("subdistrict_service_centre", "紫阳街道党群服务中心", r10(700, 1500), None, host),
        ("health_centre", "紫阳街社区卫生服务中心", r10(1700, 2000), None, host),
        ("police", "紫阳派出所", r10(1500, 3000), None, host),
        ("police", "首义路警务室", r10(60, 120), None, host),
        ("middle_school", "武昌区紫阳中学", r10(12000, 18000), 1500,
         np.isin(blk, np.flatnonzero(kinds == "middle_school"))),
        ("primary_school", "紫阳路小学", r10(8000, 12000), 1350, blk == schools[0]),
        ("primary_school", "首义路小学", r10(8000, 12000), 1800, blk == schools[-1]),
        ("pharmacy", "老百姓大药房(武珞路店)", r10(80, 200), None, host),
        ("pharmacy", "同仁堂药店(紫阳路店)", r10(80, 200), None, host)]]
    return gpd.GeoDataFrame(dict(
        source_id=[f"F{i + 1:04d}" for i in range(len(rows))], name=[r[1] for r in rows],
        category=[r[0] for r in rows], floor_area=[r[2] for r in rows],
        capacity=pd.array([r[3] for r in rows], dtype="Int64"), status=[r[5] for r in rows]),
        geometry=bpts[[r[4] for r in rows]], crs=4326)


def cameras(lines, cls, names, ends, streets, blocks, fac, communities, rng) -> gpd.GeoDataFrame:
    """Cameras at junctions (looking down a street), compound gates and service halls.

    Planted gap: inside the FEW_CAMERAS communities only one camera is left away from
    the boundary streets.
    """
    rank = {"trunk": 5, "primary": 4, "secondary": 3, "tertiary": 2}
    area = shapely.union_all([b.geom for b in blocks])
    near, inner = area.buffer(10), area.buffer(-2)
    cand = sorted((sum(x[0] for x in r[:3]), k, r) for k, r in (
        (k, sorted((-rank.get(cls[i], 1), az, i) for az, i in inc)) for k, inc in ends.items()
        if len(inc) >= 3 and near.contains(Point(k))))
    sites: list = []
    for score, k, r in cand:                 # busiest junctions first, 40 m apart
        if len(sites) < 100 and all(np.hypot(k[0] - q[0], k[1] - q[1]) > 40 for _, q, _ in sites):
            sites.append((-score, k, r))
    cams = []                                # x, y, azimuth|None, name, ptz, room, point, hfov
    for score, k, r in sites:
        nm = list(dict.fromkeys(names[i] for _, _, i in r if names[i]))
        label = f"{nm[0]}与{nm[1]}口" if len(nm) > 1 else f"{nm[0]}路口" if nm else "无名路口"
        pt = 1 if score >= 7 else 2
        if rng.random() < 0.2:
            cams.append((k[0] + 3, k[1] + 3, None, f"{label}-球机", 1, 1, pt, 79))
            continue
        for _, az, _ in r[:2 if score >= 7 else 1]:
            off = np.radians(az + 150)
            cams.append((k[0] + 5 * np.sin(off), k[1] + 5 * np.cos(off), az,
                         f"{label}-{DIRS[octant(az)]}", 3, 1, pt,
                         int(rng.choice(list(LENS), p=[.25, .35, .25, .15]))))
    for b in blocks:                         # compound gates, looking out onto the street
        if b.kind in ("walkup", "tower", "old", "mega", "hospital", "school") and rng.random() < .2:
            gate = nearest_points(b.geom.boundary, streets[b.street])[0]
            v = np.subtract(b.geom.centroid.coords[0], gate.coords[0])
            g, az = np.asarray(gate.coords[0]) + v / max(np.hypot(*v), 1e-9) * 3, bearing(*-v)
            cams.append((*g, az, f"{b.street}{b.number}号大门-{DIRS[octant(az)]}", 3, 1, 3,
                         int(rng.choice([102, 79]))))
    fm = gpd.GeoSeries(fac.geometry.values, crs=4326).to_crs(METRIC_CRS).values
    for cat, nm, p in zip(fac.category, fac.name, fm):
        if cat in ("community_service_station", "health_station", "police", "health_centre"):
            cams.append((p.x, p.y, float(rng.integers(0, 8) * 45), f"{nm}大厅", 2, 2, 3, 102))
    pts = np.array([p if inner.contains(p) else nearest_points(inner, p)[0]
                    for p in shapely.points([c[:2] for c in cams])])
    keep = np.ones(len(cams), bool)
    cm = communities.to_crs(METRIC_CRS).geometry.values
    for s in FEW_CAMERAS:
        inside = shapely.contains(cm[s - 1].buffer(-25), pts)
        keep &= ~inside | (np.cumsum(inside) == 1)
    cams, n = [c for c, k in zip(cams, keep) if k], int(keep.sum())
    off = set(rng.choice(n, size=round(0.03 * n), replace=False).tolist())
    hf = np.array([c[7] for c in cams], float)
    label = pd.Series([c[3] for c in cams])             # repeated names get -2, -3, ...
    label += label.groupby(label).cumcount().map(lambda i: f"-{i + 1}" if i else "")
    return gpd.GeoDataFrame(dict(
        device_id=[f"{DEVICE_PREFIX}{i + 1:06d}" for i in range(n)],
        name=label.tolist(), civil_code=SUBDISTRICT_CODE,
        direction_type=pd.array([None if c[2] is None else DIR_TYPE[octant(c[2])] for c in cams],
                                dtype="Int64"),
        azimuth=[np.nan if c[2] is None else round(c[2], 1) for c in cams], hfov=hf,
        vfov=np.round(np.degrees(2 * np.arctan(np.tan(np.radians(hf / 2)) * 9 / 16)), 1),
        max_view_distance=[float(rng.integers(*(LENS[51] if c[4] == 1 else LENS[c[7]])))
                           for c in cams],
        ptz_type=[c[4] for c in cams], room_type=[c[5] for c in cams],
        point_type=[c[6] for c in cams],
        status=["offline" if i in off else "online" for i in range(n)]),
        geometry=to_wgs(pts[keep]), crs=4326)


def staffing(grids: gpd.GeoDataFrame, bld: pd.DataFrame, bpts: np.ndarray, rng):
    """Cadres and their assignments, with staffing gaps planted on purpose.

    Planted: 5 comprehensive grids without a full-time worker, 3 full-time workers who
    carry two grids (far over 1 per 400 households), 2 full-time workers assigned nowhere
    and 1 living more than 2 km from their grid.
    """
    people, assign, seen = [], [], set()
    sw = 1 / np.arange(1, len(SURNAMES) + 1)           # Zipf-like surname frequencies
    gc, hh, codes = grids.code.tolist(), dict(zip(grids.code, grids.households)), \
        bld.grid_code.to_numpy().astype(str)
    comms = sorted(grids.community_code.unique())

    def person(role: str, where: str, targets=(), pt=None, day="2026-01-01", kind="grid") -> str:
        """Add a cadre living in a building of `where` (a grid or community code)."""
        if pt is None:
            idx = np.flatnonzero(np.char.startswith(codes, where))
            pt = bpts[idx[rng.integers(len(idx))]] if len(idx) else \
                shapely.point_on_surface(grids.geometry.values[gc.index(where)])
        nm = ph = ""
        while not nm or nm in seen:
            nm = rng.choice(list(SURNAMES), p=sw / sw.sum()) + "".join(
                rng.choice(list(GIVEN), size=int(rng.choice([1, 2], p=[.3, .7]))))
        while not ph or ph in seen:
            ph = str(rng.choice(["13", "15", "18"])) + "".join(map(str, rng.integers(0, 10, 9)))
        seen.update((nm, ph))
        no = f"C{len(people) + 1:04d}"
        people.append(dict(cadre_no=no, name=nm, role=role, community_code=where[:12], phone=ph,
                           lon=round(pt.x, 7), lat=round(pt.y, 7)))
        assign.extend(dict(cadre_no=no, target_type=kind, target=t, role=role, valid_from=day)
                      for t in targets)
        return no

    comp = [g for g, t in zip(gc, grids.grid_type) if t == "综合" and hh[g] > 0]
    empty = sorted(rng.choice(comp, 5, replace=False).tolist())
    rest, doubles = [g for g in comp if g not in empty], []
    for g in rest:                          # neighbouring serials of one community
        nxt = f"{g[:12]}{int(g[12:]) + 1:03d}"
        if len(doubles) < 3 and nxt in rest and not {g, nxt} & {x for d in doubles for x in d} \
                and rng.random() < 0.3:
            doubles.append((g, nxt))
    carried = {x for d in doubles for x in d}
    far = str(rng.choice([g for g in rest if g not in carried]))
    for cc in comms:
        person("community_secretary", cc)
        person("grid_chief", cc, [g for g in gc if g.startswith(cc)])
    for g in gc:
        if g == far:                        # lives some 2.7 km away, east-south-east
            c = gpd.GeoSeries(grids.geometry[gc.index(g)].centroid, crs=4326).to_crs(METRIC_CRS)[0]
            pt = gpd.GeoSeries([Point(c.x + 2600, c.y - 900)], crs=METRIC_CRS).to_crs(4326)[0]
            person("full_time_worker", g, [g], pt=pt)
        elif g not in empty and g not in carried:
            person("full_time_worker", g, [g])
    for a, b in doubles:
        no = person("full_time_worker", a, [a])
        assign.append(dict(cadre_no=no, target_type="grid", target=b, role="full_time_worker",
                           valid_from="2026-03-01"))
    for cc in comms[:2]:                    # on the books, assigned nowhere
        person("full_time_worker", cc)
    for n in range(0, len(comms), 2):       # one police officer per two communities
        person("police_officer", comms[n], [g for g in gc if g[:12] in comms[n:n + 2]])
    for g in gc:
        if rng.random() < 0.55:
            person("part_time_worker", g, [g])
        person("party_member", g, [g])
        for _ in range(int(rng.integers(1, 4))):
            person("volunteer", g, [g], day="2026-02-01")
    big = np.flatnonzero((bld.households >= 24).to_numpy())
    for i in sorted(rng.choice(big, size=int(len(big) * 0.3), replace=False).tolist()):
        person("building_head", codes[i], [bld.source_id.iat[i]], pt=bpts[i], kind="building")
    return pd.DataFrame(people), pd.DataFrame(assign)


def write(out: Path, res: dict) -> None:
    """Write demo.gpkg afresh (fixed layer order) and the two CSV files."""
    out.mkdir(parents=True, exist_ok=True)
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": "2026-01-01T00:00:00.000Z"})  # no clock
    (out / "demo.gpkg").unlink(missing_ok=True)
    for layer in ("subdistrict", "communities", "grids", "buildings", "cameras", "facilities",
                  "roads"):
        res[layer].to_file(out / "demo.gpkg", layer=layer, driver="GPKG", engine="pyogrio")
    for name in ("cadres", "assignments"):
        res[name].to_csv(out / f"{name}.csv", index=False, encoding="utf-8", lineterminator="\n")


def summary(res: dict) -> str:
    """The counts as a Markdown table (pasted into README.md)."""
    b, hh, g = res["buildings"], res["grid_households"], res["grids"]
    rows = [("communities", len(res["communities"])),
            ("grids (专属)", f"{len(g)} ({int((g.grid_type == '专属').sum())})"),
            ("buildings", len(b)), ("households", int(b.households.sum())),
            ("residents", int(b.residents.sum())), ("cameras", len(res["cameras"])),
            ("facilities", len(res["facilities"])), ("roads", len(res["roads"])),
            ("cadres", len(res["cadres"])), ("assignments", len(res["assignments"])),
            ("households per grid min / median / max",
             f"{hh.min()} / {int(hh.median())} / {hh.max()}"),
            ("grids > 500 / < 300 households", f"{(hh > 500).sum()} / {(hh < 300).sum()}")]
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
