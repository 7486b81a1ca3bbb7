"""Automatic grid delineation: propose grids for a community from its streets, buildings
and households.

The natural units are the blocks the street network cuts the community into (grid
boundaries should follow roads, lanes and compound edges, standards §2). Blocks holding
more households than the band allows are bisected across their long axis, between
buildings, until they fit. Units are then grown into contiguous regions in reading order
(north-west first), each taking the adjacent unit that keeps it most compact, until it
reaches the middle of the band; regions left under the band are merged with a neighbour
or trade border units with it. Unit-free of households (parks, squares) join the
neighbour they share most border with. Everything is ordered explicitly, so the same
input gives the same proposal. Where the band cannot be met, the proposal says which
grid and why.

Why not max-p (spopt/pygeoda): it enforces a floor but no ceiling (design notes: regions
reached 2–3.4× the floor), and a community has only tens of blocks, where this greedy
pass with repair is instant and explainable.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely import STRtree
from sqlalchemy import Connection, text

from gis.measure import metric_srid
from gis.settings import get_settings
from grid.checks import NOISE_M2
from grid.numbering import reading_order
from layers.base import _polygonal

MIN_UNIT_M2 = 150.0  # blocks smaller than this are street slivers, merged into a neighbour
TOUCH_M = 1.0  # shared border needed for two units to count as adjacent


@dataclass
class Unit:
    geom: shapely.Geometry  # metric CRS
    households: int
    residents: int
    buildings: list[int]  # building ids


@dataclass
class ProposedGrid:
    serial: int
    geom: shapely.Geometry  # EPSG:4326
    households: int
    residents: int
    buildings: int
    units: int
    compactness: float  # Polsby-Popper, 1 = circle
    standing: str  # under | within | over | empty
    note: str = ""


@dataclass
class Proposal:
    community_code: str
    min_households: int
    max_households: int
    grids: list[ProposedGrid] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    building_grid: dict[int, int] = field(default_factory=dict)  # building id -> serial

    def frame(self) -> gpd.GeoDataFrame:
        rows = [{k: v for k, v in g.__dict__.items() if k != "geom"} for g in self.grids]
        return gpd.GeoDataFrame(rows, geometry=[g.geom for g in self.grids], crs=4326)

    def to_dict(self) -> dict:
        return {
            "community_code": self.community_code, "min": self.min_households, "max": self.max_households,
            "grids": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in g.__dict__.items() if k != "geom"} for g in self.grids],
            "problems": self.problems,
        }


# --- inputs ------------------------------------------------------------------------------

def _load(conn: Connection, community: str, srid: int, grid_id: int | None = None) -> tuple[shapely.Geometry, np.ndarray, pd.DataFrame]:
    """The area to divide (a community, or one grid when splitting it), its streets and buildings."""
    table, key = ("grids", grid_id) if grid_id is not None else ("communities", community)
    where = "id = :k" if grid_id is not None else "code = CAST(:k AS text)"
    row = conn.execute(text(f"SELECT ST_AsBinary(ST_Transform(geom, {srid})) FROM {table} WHERE {where}"), {"k": key}).first()
    if row is None:
        raise KeyError(f"no {table[:-1]} {key}")
    area = _polygonal(shapely.make_valid(shapely.from_wkb(bytes(row[0])))) or shapely.Polygon()  # real ward outlines are not always valid
    roads = conn.execute(text(f"""
        SELECT ST_AsBinary(ST_Transform(r.geom, {srid})) FROM roads r, {table} a
        WHERE a.{where.replace(':k', ':k')} AND ST_Intersects(r.geom, a.geom) ORDER BY r.id"""), {"k": key}).scalars().all()
    owner = "b.grid_id = :k" if grid_id is not None else "b.community_code = CAST(:k AS text)"
    buildings = pd.read_sql(text(f"""
        SELECT b.id, b.households, b.residents, coalesce(b.name, b.address, b.source_id) AS label, ST_AsBinary(ST_Transform(b.geom, {srid})) AS foot,
               ST_X(ST_Transform(ST_PointOnSurface(b.geom), {srid})) AS x, ST_Y(ST_Transform(ST_PointOnSurface(b.geom), {srid})) AS y
        FROM buildings b WHERE {owner} ORDER BY b.id"""), conn, params={"k": key})
    buildings["foot"] = shapely.from_wkb(buildings["foot"].map(bytes).to_numpy())
    return area, np.array([shapely.from_wkb(bytes(r)) for r in roads], dtype=object), buildings


def blocks(area: shapely.Geometry, roads: np.ndarray) -> list[shapely.Geometry]:
    """The community cut by its streets (and its own outline) into blocks."""
    lines = [shapely.boundary(area)]
    if len(roads):
        lines.append(shapely.intersection(shapely.union_all(roads), area.buffer(1.0)))
    noded = shapely.union_all(lines)
    polys = [p for p in shapely.get_parts(shapely.polygonize(shapely.get_parts(noded))) if p.area > 0]
    polys = [shapely.intersection(p, area) for p in polys]
    parts = [q for p in polys for q in shapely.get_parts(p) if q.geom_type == "Polygon" and q.area > 0.01]
    covered = shapely.union_all(parts) if parts else shapely.Polygon()
    rest = shapely.difference(area, covered)
    parts += [q for q in shapely.get_parts(rest) if q.geom_type == "Polygon" and q.area > 0.01]
    return _absorb_slivers(parts)


def _absorb_slivers(parts: list[shapely.Geometry]) -> list[shapely.Geometry]:
    parts = sorted(parts, key=lambda p: (-p.area, p.centroid.x, p.centroid.y))
    big = [p for p in parts if p.area >= MIN_UNIT_M2]
    small = [p for p in parts if p.area < MIN_UNIT_M2]
    if not big:
        return parts
    for s in small:
        border = [shapely.length(shapely.intersection(b.buffer(0.01), s)) for b in big]
        i = int(np.argmax(border))
        if border[i] > 0:
            big[i] = shapely.union(big[i], s)
        else:
            big.append(s)
    return big


def _bisect(poly: shapely.Geometry, feet: np.ndarray, hh: np.ndarray) -> tuple[shapely.Geometry, shapely.Geometry]:
    """Cut across the block's long axis through a gap between building footprints, at the
    gap that splits the households most evenly (through the median building if there is
    no gap, and the grid check then lists the buildings it crosses)."""
    rect = shapely.oriented_envelope(poly)
    coords = np.asarray(rect.exterior.coords)[:4] if rect.geom_type == "Polygon" else np.asarray(poly.envelope.exterior.coords)[:4]
    e1, e2 = coords[1] - coords[0], coords[2] - coords[1]
    axis = e1 if np.hypot(*e1) >= np.hypot(*e2) else e2
    axis = axis / (np.hypot(*axis) or 1.0)
    spans = []
    for f in feet:
        proj = shapely.get_coordinates(f) @ axis
        spans.append((proj.min(), proj.max()))
    spans_arr = np.array(spans)
    order = np.argsort(spans_arr[:, 0], kind="stable")
    cuts, reach = [], -np.inf
    for i in order:  # gaps between merged footprint intervals
        lo_i, hi_i = spans_arr[i]
        if reach > -np.inf and lo_i > reach:
            cuts.append((reach + lo_i) / 2)
        reach = max(reach, hi_i)
    mid = (spans_arr[:, 0] + spans_arr[:, 1]) / 2
    if not cuts:
        srt = np.sort(mid)
        cuts = [(srt[len(srt) // 2 - 1] + srt[len(srt) // 2]) / 2]
    total = hh.sum()
    cut = min(cuts, key=lambda c: (abs(hh[mid < c].sum() - total / 2), abs((mid < c).sum() - len(mid) / 2), c))
    normal = np.array([-axis[1], axis[0]])
    size = 1e5
    centre = np.array(poly.centroid.coords[0])
    origin = axis * cut + normal * (centre @ normal)
    a = origin + normal * size
    b = origin - normal * size
    side1 = shapely.Polygon([a, b, b - axis * size, a - axis * size])
    side2 = shapely.Polygon([a, b, b + axis * size, a + axis * size])
    return shapely.intersection(poly, side1), shapely.intersection(poly, side2)


def _assign(polys: list[shapely.Geometry], xy: np.ndarray) -> np.ndarray:
    """Index of the polygon each point lies in (the nearest one for points on an edge)."""
    owner = np.full(len(xy), -1)
    if not len(xy) or not polys:
        return owner
    tree = STRtree(polys)
    pts = shapely.points(xy)
    pi, gi = tree.query(pts, predicate="within")
    owner[pi] = gi
    lost = np.flatnonzero(owner < 0)
    if len(lost):
        near = tree.query_nearest(pts[lost], return_distance=False)
        owner[lost[near[0]]] = near[1]
    return owner


def _units(parts: list[shapely.Geometry], bld: pd.DataFrame, hi: int, problems: list[str], cap: float | None = None) -> list[Unit]:
    """Blocks with their buildings; blocks over ``cap`` households (default: the band's top)
    are bisected between buildings until they fit."""
    cap = hi if cap is None else cap
    xy = bld[["x", "y"]].to_numpy()
    households = bld["households"].to_numpy()
    feet = bld["foot"].to_numpy()
    owner = _assign(parts, xy)
    units: list[Unit] = []
    stack = [(parts[i], np.flatnonzero(owner == i)) for i in range(len(parts))]
    while stack:
        poly, idx = stack.pop(0)
        hh = int(households[idx].sum())
        if hh > cap and len(idx) > 1:
            pieces = [q for side in _bisect(poly, feet[idx], households[idx]) for q in shapely.get_parts(side)
                      if q.geom_type == "Polygon" and q.area > 0.01]
            where = _assign(pieces, xy[idx])
            if len(set(where)) > 1:
                stack[:0] = [(q, idx[where == k]) for k, q in enumerate(pieces)]
                continue
        if hh > hi and len(idx) == 1:
            problems.append(f"楼栋 {int(bld['id'].iloc[idx[0]])} 单栋 {hh} 户，超过上限 {hi} / a single building holds {hh} households, above the band's {hi}: it needs its own grid")
        for q in shapely.get_parts(poly):  # a concave block cut in two leaves separate pieces
            if q.geom_type != "Polygon" or q.area <= 0.01:
                continue
            inside = idx[shapely.contains_xy(q, xy[idx, 0], xy[idx, 1])] if len(shapely.get_parts(poly)) > 1 else idx
            units.append(Unit(q, int(households[inside].sum()), int(bld["residents"].to_numpy()[inside].sum()), [int(i) for i in bld["id"].to_numpy()[inside]]))
    return units


def _adjacency(units: list[Unit]) -> list[set[int]]:
    geoms = [u.geom for u in units]
    tree = STRtree(geoms)
    adj: list[set[int]] = [set() for _ in units]
    a, b = tree.query(np.array(geoms, dtype=object), predicate="intersects")
    for i, j in zip(a, b):
        if i < j and shapely.length(shapely.intersection(geoms[i].buffer(0.05), geoms[j].boundary)) > TOUCH_M:
            adj[i].add(int(j))
            adj[j].add(int(i))
    return adj


# --- regionalisation ----------------------------------------------------------------------

def _grow(units: list[Unit], adj: list[set[int]], lo: int, hi: int) -> list[int]:
    """Label each unit with a region, growing regions in reading order toward the band's middle."""
    pts = [_point(u.geom, []) for u in units]
    cx = np.array([p[0] for p in pts])
    cy = np.array([p[1] for p in pts])
    order = reading_order(cx, cy, get_settings().grid_numbering_band_m)
    hh = np.array([u.households for u in units])
    label = np.full(len(units), -1)
    target = (lo + hi) / 2
    region = 0
    for seed in order:
        if label[seed] >= 0 or hh[seed] == 0:
            continue
        members = [int(seed)]
        label[seed] = region
        total = int(hh[seed])
        while total < target:
            frontier = sorted({n for m in members for n in adj[m] if label[n] < 0 and hh[n] > 0})
            fits = [n for n in frontier if total + hh[n] <= hi]
            if not fits:
                break
            mx, my = np.average(cx[members], weights=np.maximum(hh[members], 1)), np.average(cy[members], weights=np.maximum(hh[members], 1))
            best = min(fits, key=lambda n: (np.hypot(cx[n] - mx, cy[n] - my), n))
            members.append(best)
            label[best] = region
            total += int(hh[best])
        region += 1
    return list(label)


def _neighbours(r: int, label: np.ndarray, adj: list[set[int]]) -> set[int]:
    return {int(label[n]) for m in np.flatnonzero(label == r) for n in adj[m] if label[n] >= 0 and label[n] != r}


def _repair(units: list[Unit], adj: list[set[int]], label: list[int], lo: int, hi: int) -> np.ndarray:
    """Merge regions under the band into a neighbour, or take border units from one."""
    lab = np.array(label)
    hh = np.array([u.households for u in units])
    _attach_empty(units, adj, lab)  # parks between two regions must not keep them apart
    for _ in range(4 * len(units)):
        totals = {r: int(hh[lab == r].sum()) for r in sorted(set(lab) - {-1})}
        under = [r for r, t in sorted(totals.items(), key=lambda kv: (kv[1], kv[0])) if t < lo]
        changed = False
        for r in under:
            nbrs = sorted(_neighbours(r, lab, adj), key=lambda n: (totals[n], n))
            merge = [n for n in nbrs if totals[n] + totals[r] <= hi]
            if merge:
                lab[lab == r] = merge[0]
                changed = True
                break
            moved = _dissolve(r, lab, adj, hh, totals, hi)
            if moved:
                changed = True
                break
            for n in nbrs:
                split = _resplit(sorted(np.flatnonzero((lab == r) | (lab == n))), units, adj, hh, lo, hi)
                if split is not None:
                    lab[split[0]], lab[split[1]] = r, n
                    changed = True
                    break
            if changed:
                break
            # take a unit from a neighbour that can spare it and stays connected
            for n in nbrs:
                for m in sorted(np.flatnonzero(lab == n), key=lambda m: (hh[m], m)):
                    if hh[m] == 0 or not (adj[m] & set(np.flatnonzero(lab == r))):
                        continue
                    if totals[n] - hh[m] >= lo and totals[r] + hh[m] <= hi and _connected(set(np.flatnonzero(lab == n)) - {m}, adj):
                        lab[m] = r
                        changed = True
                        break
                if changed:
                    break
            if changed:
                break
        if not changed:
            break
    _attach_empty(units, adj, lab)
    nxt = int(lab.max()) + 1 if len(lab) else 0
    for i in range(len(units)):
        if lab[i] < 0:
            lab[i] = nxt
            nxt += 1
    return lab


def _attach_empty(units: list[Unit], adj: list[set[int]], lab: np.ndarray) -> None:
    """Units without households (parks, squares) join the region they share most border with."""
    for _ in range(len(units)):
        loose = [i for i in range(len(units)) if lab[i] < 0 and any(lab[n] >= 0 for n in adj[i])]
        if not loose:
            break
        for i in loose:
            cands = sorted({int(lab[n]) for n in adj[i] if lab[n] >= 0})
            lab[i] = max(cands, key=lambda r: (sum(shapely.length(shapely.intersection(units[i].geom.buffer(0.05), units[m].geom.boundary)) for m in np.flatnonzero(lab == r)), -r))


def _dissolve(r: int, lab: np.ndarray, adj: list[set[int]], hh: np.ndarray, totals: dict[int, int], hi: int) -> bool:
    """Share an under-band region's units out among several neighbours with room for them.
    Only done when every unit finds a home; otherwise nothing changes."""
    trial = lab.copy()
    room = dict(totals)
    pending = sorted(np.flatnonzero(lab == r), key=lambda m: (-hh[m], m))
    for _ in range(len(pending) + 1):
        left = []
        for m in pending:
            homes = sorted({int(trial[n]) for n in adj[m] if trial[n] not in (r, -1)}, key=lambda x: (room[x], x))
            fit = [x for x in homes if room[x] + hh[m] <= hi]
            if fit:
                trial[m] = fit[0]
                room[fit[0]] += int(hh[m])
            else:
                left.append(m)
        if not left or len(left) == len(pending):
            pending = left
            break
        pending = left
    if pending:
        return False
    lab[:] = trial
    return True


def _resplit(members: list[int], units: list[Unit], adj: list[set[int]], hh: np.ndarray, lo: int, hi: int) -> tuple[list[int], list[int]] | None:
    """Split two neighbouring regions' units afresh into two contiguous parts inside the band:
    sweep along the direction the pair is longest in and take the first cut that works."""
    total = int(hh[members].sum())
    if not 2 * lo <= total <= 2 * hi:
        return None
    xy = np.array([[units[m].geom.centroid.x, units[m].geom.centroid.y] for m in members])
    spread = xy.max(axis=0) - xy.min(axis=0)
    for axis in sorted((0, 1), key=lambda a: -spread[a]):
        order = [members[i] for i in np.lexsort((np.array(members), xy[:, axis]))]
        acc = 0
        for k, m in enumerate(order[:-1]):
            acc += int(hh[m])
            if lo <= acc <= hi and lo <= total - acc <= hi:
                a, b = set(order[: k + 1]), set(order[k + 1:])
                if _connected({x for x in a if hh[x] > 0} | {x for x in a if hh[x] == 0 and adj[x] & a}, adj) and _connected(b, adj) and _connected(a, adj):
                    return sorted(a), sorted(b)
    return None


def _connected(members: set[int], adj: list[set[int]]) -> bool:
    if not members:
        return False
    seen, stack = set(), [min(members)]
    while stack:
        m = stack.pop()
        if m in seen:
            continue
        seen.add(m)
        stack.extend(n for n in adj[m] if n in members and n not in seen)
    return seen == members


# --- the proposal ---------------------------------------------------------------------------

def _tile(geoms: list[shapely.Geometry], community: shapely.Geometry, sliver_m2: float) -> list[shapely.Geometry]:
    """Make the regions tile the stored community exactly: clip to it, remove the
    millimetre overlaps reprojection leaves, and give each leftover sliver to the region it
    shares most border with (grids must cover the community without gaps, standards §1)."""
    out: list[shapely.Geometry] = []
    taken = shapely.Polygon()
    for g in geoms:
        piece = shapely.difference(shapely.intersection(shapely.make_valid(g), community), taken)
        out.append(piece)
        taken = shapely.union(taken, piece)
    for gap in shapely.get_parts(shapely.difference(community, taken)):
        if gap.geom_type != "Polygon" or gap.area == 0:
            continue
        out[_best_neighbour(gap, out)] = shapely.union(out[_best_neighbour(gap, out)], gap)
    # Fragments a difference leaves behind go to the neighbour they share most border with.
    for k, g in enumerate(out):
        parts = sorted(shapely.get_parts(g), key=lambda q: -q.area)
        for frag in parts[1:]:
            if frag.area < sliver_m2:
                out[k] = shapely.difference(out[k], frag)
                j = _best_neighbour(frag, out, exclude=k)
                out[j] = shapely.union(out[j], frag)
    return [_polygonal(g) or shapely.MultiPolygon() for g in out]


def _whole_buildings(geoms: list[shapely.Geometry], owned: list[list[int]], bld: pd.DataFrame) -> list[shapely.Geometry]:
    """Bend grid borders around buildings: a footprint belongs wholly to the grid that owns
    it (a building belongs to exactly one grid, standards §1), even where a cut crossed it."""
    foot = dict(zip(bld["id"].to_numpy(), bld["foot"].to_numpy()))
    mine = [shapely.union_all([foot[b] for b in ids]) if ids else shapely.Polygon() for ids in owned]
    out = []
    for k, g in enumerate(geoms):
        others = shapely.union_all([m for j, m in enumerate(mine) if j != k and shapely.intersects(m, g)])
        out.append(shapely.difference(shapely.union(g, mine[k]), others))
    return out


def _drop_dust(geom: shapely.Geometry, min_area: float) -> shapely.Geometry:
    """Overlay operations leave zero-area fragments; they are not places and must not make a grid multi-part."""
    parts = [q for q in shapely.get_parts(_polygonal(geom) or shapely.MultiPolygon()) if q.area >= min_area]
    return shapely.multipolygons(parts) if parts else shapely.MultiPolygon()


def _best_neighbour(piece: shapely.Geometry, regions: list[shapely.Geometry], exclude: int | None = None) -> int:
    shared = [-1.0 if k == exclude else shapely.length(shapely.intersection(shapely.boundary(piece), shapely.buffer(g, 0.01))) for k, g in enumerate(regions)]
    if max(shared) > 0:
        return int(np.argmax(shared))
    dist = [np.inf if k == exclude else shapely.distance(piece, g) for k, g in enumerate(regions)]
    return int(np.argmin(dist))



def _point(geom: shapely.Geometry, fallback: list[shapely.Geometry]) -> tuple[float, float]:
    """A point inside ``geom`` for ordering, or inside the first non-empty fallback."""
    for g in (geom, *fallback):
        if g is not None and not g.is_empty:
            p = g.representative_point()
            if not p.is_empty:
                return float(p.x), float(p.y)
    return 0.0, 0.0


def propose(conn: Connection, community: str, lo: int | None = None, hi: int | None = None, grid_id: int | None = None) -> Proposal:
    """A proposal for a community (or, with ``grid_id``, for splitting one of its grids)."""
    s = get_settings()
    lo = s.grid_households_min if lo is None else lo
    hi = s.grid_households_max if hi is None else hi
    srid = metric_srid(conn)
    area, roads, bld = _load(conn, community, srid, grid_id)
    proposal = Proposal(community, lo, hi)
    parts = blocks(area, roads)
    # Coarse units follow streets best; finer ones pack the band better. Try coarse first and
    # keep the finest only when it brings more grids into the band.
    best = None
    for step, cap in enumerate((hi, hi * 0.6, hi * 0.4, hi * 0.25)):
        problems: list[str] = []
        units = _units(parts, bld, hi, problems, cap)
        adj = _adjacency(units)
        lab = _repair(units, adj, _grow(units, adj, lo, hi), lo, hi)
        hh = np.array([u.households for u in units])
        totals = np.array([hh[lab == r].sum() for r in sorted(set(lab))])
        score = (int(((totals > 0) & ((totals < lo) | (totals > hi))).sum()), float(np.clip(lo - totals, 0, None).sum() + np.clip(totals - hi, 0, None).sum()), step)
        if best is None or score < best[0]:
            best = (score, units, lab, problems)
        if score[0] == 0:
            break
    _, units, lab, problems = best
    proposal.problems.extend(problems)

    regions = sorted(set(lab))
    # Snap to a centimetre grid so pieces cut from one block fuse with their neighbours.
    geoms = [shapely.union_all([units[i].geom for i in np.flatnonzero(lab == r)], grid_size=0.01) for r in regions]
    geoms = _whole_buildings(geoms, [[b for i in np.flatnonzero(lab == r) for b in units[i].buildings] for r in regions], bld)
    # A region whose every piece went to its neighbours' buildings is empty: its point is the
    # units' own (an empty geometry's point has no x: GEOS "getX called on empty Point").
    pts = [_point(g, [units[i].geom for i in np.flatnonzero(lab == r)]) for g, r in zip(geoms, regions)]
    cx = np.array([p[0] for p in pts])
    cy = np.array([p[1] for p in pts])
    tiled = [_drop_dust(g, NOISE_M2) for g in _tile(geoms, area, get_settings().grid_sliver_m2)]
    to_wgs = [_drop_dust(shapely.make_valid(g), NOISE_M2 / 1e10) for g in gpd.GeoSeries(tiled, crs=srid).to_crs(4326).values]
    for serial, k in enumerate(reading_order(cx, cy, s.grid_numbering_band_m), start=1):
        r = regions[k]
        members = np.flatnonzero(lab == r)
        hh = sum(units[i].households for i in members)
        g = geoms[k]
        pp = 4 * np.pi * g.area / (g.length ** 2) if g.length else 0.0
        standing = "empty" if hh == 0 else "under" if hh < lo else "over" if hh > hi else "within"
        note = ""
        if standing == "under":
            note = f"{hh} 户，低于下限 {lo}：相邻网格合并后会超过上限 {hi} / {hh} households, under {lo}; no neighbour can take it without exceeding {hi}"
        elif standing == "over":
            ids = [b for i in members for b in units[i].buildings]
            big = bld[bld["id"].isin(ids) & (bld["households"] > hi)]
            if len(big):  # name the building(s) above the band on their own
                names = "、".join(f"{r.label}（{int(r.households)} 户）" for r in big.itertuples())
                note = (f"{hh} 户，超过上限 {hi}：单栋楼 {names} 已超过上限，需单独成格 / {hh} households, over {hi}: "
                        f"building {names} alone is above the band and needs its own grid")
            else:
                note = f"{hh} 户，超过上限 {hi}：含无法再分的楼栋 / {hh} households, over {hi}: it holds buildings that cannot be split"
        elif standing == "empty":
            note = "无住户（公园、学校等）：可设为专属网格 / no households (park, school…): a dedicated grid candidate"
        if note:
            proposal.problems.append(f"网格 {serial:03d}: {note}")
        geom = to_wgs[k]
        proposal.grids.append(ProposedGrid(serial, geom, int(hh), sum(units[i].residents for i in members),
                                           sum(len(units[i].buildings) for i in members), len(members), float(pp), standing, note))
        for i in members:
            for b in units[i].buildings:
                proposal.building_grid[b] = serial
    return proposal
