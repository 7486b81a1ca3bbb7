"""How much of each measuring unit the cameras' visible areas cover: road centre lines,
open space, street-facing building edges and key places.

Definitions (each reported with the figures):

- **road centre lines**: every ``roads`` row (walkable or not). Lines are measured with
  points every ``camera_sample_m`` metres (each carrying its stretch of road); a point on
  the border of two units (a street that *is* the border between two grids) counts half
  to each, so nothing is measured twice. Sampling, not overlay, because centre lines run
  along grid borders and overlay would split them by rounding noise. (Points are tested
  against the prepared polygons from coordinate arrays: no geometry per point.)
- **inner streets**: the part of those centre lines more than ``camera_inner_road_m``
  inside the community's boundary (the boundary streets are shared with neighbours).
- **open space** (公共空间): the unit's area minus building footprints — streets, squares,
  compound yards. Exact polygon overlay.
- **street-facing building edges**: footprint walls (outer rings, ≥ 0.5 m) for which a line
  straight out from the wall's middle meets a road centre line within
  ``camera_facade_max_m``; a wall counts as seen where a view reaches the ground 0.5 m in
  front of it.
- **key places** (重点公共区域): open facilities (of ``key_place_categories``, default all).
  A facility stands inside a building, which no street camera sees into, so it counts as
  covered when a counted view comes within ``camera_key_place_buffer_m`` of its building
  (its entrance side), or when an indoor camera stands in that building.

Only counted cameras (status online) cover anything; offline and unknown do not.
"""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

BORDER_TOL_M = 0.5
FRONT_OFFSET_M = 0.5
MIN_WALL_M = 0.5

FIGURES = ["road_m", "road_covered_m", "inner_road_m", "inner_road_covered_m", "open_m2", "open_covered_m2", "facade_m", "facade_covered_m",
           "key_places", "key_places_covered", "cameras", "cameras_counted"]


def line_samples(lines: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points every ``step`` m along each line (at the middle of each stretch): x, y, and
    the length each point stands for."""
    lines = np.asarray(lines, dtype=object)
    if len(lines) == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    coords, idx = shapely.get_coordinates(lines, return_index=True)
    seg = np.hypot(*np.diff(coords, axis=0).T)
    seg[idx[1:] != idx[:-1]] = 0.0  # no segment between two lines
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    first = np.searchsorted(idx, np.arange(len(lines)))
    length = shapely.length(lines)
    n = np.maximum(1, np.ceil(length / step).astype(np.int64))
    n[length <= 0] = 0
    owner = np.repeat(np.arange(len(lines)), n)
    k = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    each = np.where(n > 0, length / np.maximum(n, 1), 0.0)
    at = cum[first][owner] + (k + 0.5) * each[owner]
    j = np.clip(np.searchsorted(cum, at, side="right") - 1, 0, len(coords) - 2)
    t = np.where(seg[j] > 0, (at - cum[j]) / np.where(seg[j] > 0, seg[j], 1.0), 0.0)
    xy = coords[j] + t[:, None] * (coords[j + 1] - coords[j])
    return xy[:, 0], xy[:, 1], each[owner]


def street_walls(footprints: np.ndarray, owner_unit: np.ndarray, roads: np.ndarray, max_m: float):
    """Walls facing a road centre line within ``max_m`` (the outward perpendicular from the
    wall's middle meets it): start, end, outward unit normal, length, the building's unit."""
    empty = (np.zeros((0, 2)), np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0), np.zeros(0, dtype=object))
    if len(footprints) == 0 or len(roads) == 0:
        return empty
    polys, pidx = shapely.get_parts(shapely.orient_polygons(np.asarray(footprints, dtype=object), exterior_cw=False), return_index=True)
    coords, ridx = shapely.get_coordinates(shapely.get_exterior_ring(polys), return_index=True)
    same = ridx[:-1] == ridx[1:]
    a, b = coords[:-1][same], coords[1:][same]
    bld = pidx[ridx[:-1][same]]
    d = b - a
    length = np.hypot(d[:, 0], d[:, 1])
    ok = length >= MIN_WALL_M
    a, b, d, length, bld = a[ok], b[ok], d[ok], length[ok], bld[ok]
    normal = np.column_stack([d[:, 1], -d[:, 0]]) / length[:, None]  # outward for a counter-clockwise ring
    mid = (a + b) / 2.0
    rays = shapely.linestrings(np.stack([mid + normal * FRONT_OFFSET_M, mid + normal * max_m], axis=1))
    hit, _ = shapely.STRtree(np.asarray(roads, dtype=object)).query(rays, predicate="intersects")
    keep = np.zeros(len(rays), dtype=bool)
    keep[hit] = True  # (a mask, not np.unique: hash-based unique is slow on millions)
    return a[keep], b[keep], normal[keep], length[keep], np.asarray(owner_unit, dtype=object)[bld[keep]]


def wall_samples(a, b, normal, length, step: float):
    n = np.maximum(1, np.ceil(length / step).astype(np.int64))
    owner = np.repeat(np.arange(len(a)), n)
    k = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    t = ((k + 0.5) / n[owner])[:, None]
    xy = a[owner] + t * (b[owner] - a[owner]) + normal[owner] * FRONT_OFFSET_M
    return xy[:, 0], xy[:, 1], (length / n)[owner], owner


class SampleIndex:
    """Sample points bucketed in square cells: which of them lie in a polygon, without
    making a geometry per point (millions of road samples in a city): candidates from the
    cells under the polygon's box, then ``intersects_xy`` on the prepared polygon."""

    def __init__(self, x: np.ndarray, y: np.ndarray, cell: float = 50.0) -> None:
        self.x, self.y, self.cell = np.asarray(x, dtype=float), np.asarray(y, dtype=float), cell
        if len(self.x) == 0:
            self.ny, self.order, self.key, self.x0, self.y0 = 1, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), 0.0, 0.0
            return
        self.x0, self.y0 = float(self.x.min()), float(self.y.min())
        cx = ((self.x - self.x0) // cell).astype(np.int64)
        cy = ((self.y - self.y0) // cell).astype(np.int64)
        self.ny = int(cy.max()) + 1
        key = cx * self.ny + cy
        self.order = np.argsort(key)
        self.key = key[self.order]

    def _candidates(self, bounds) -> np.ndarray:
        cx0 = max(0, int((bounds[0] - self.x0) // self.cell))
        cx1 = int((bounds[2] - self.x0) // self.cell)
        cy0 = max(0, int((bounds[1] - self.y0) // self.cell))
        cy1 = min(self.ny - 1, int((bounds[3] - self.y0) // self.cell))
        if cy1 < cy0 or cx1 < cx0:
            return np.zeros(0, dtype=np.int64)
        cols = np.arange(cx0, cx1 + 1) * self.ny
        lo = np.searchsorted(self.key, cols + cy0)
        hi = np.searchsorted(self.key, cols + cy1, side="right")
        keep = hi > lo
        if not keep.any():
            return np.zeros(0, dtype=np.int64)
        return self.order[np.concatenate([np.arange(a, b) for a, b in zip(lo[keep], hi[keep])])]

    def hits(self, polygons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(polygon index, sample index) for every sample in (or on) every polygon."""
        gi, si = [], []
        if len(self.x) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        for k, g in enumerate(polygons):
            if g is None or g.is_empty:
                continue
            c = self._candidates(g.bounds)
            if len(c) == 0:
                continue
            m = shapely.intersects_xy(g, self.x[c], self.y[c])
            if m.any():
                si.append(c[m])
                gi.append(np.full(int(m.sum()), k, dtype=np.int64))
        if not si:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(gi), np.concatenate(si)

    def covered(self, polygons: np.ndarray) -> np.ndarray:
        hit = np.zeros(len(self.x), dtype=bool)
        hit[self.hits(polygons)[1]] = True
        return hit


def _unit_weights(index: SampleIndex, unit_geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sample, unit, weight) pairs: a sample within ``BORDER_TOL_M`` of several units (a
    centre line that is the border, give or take rounding) counts 1/n to each."""
    grown = shapely.buffer(np.asarray(unit_geoms, dtype=object), BORDER_TOL_M, quad_segs=2)
    ui, si = index.hits(grown)
    count = np.bincount(si, minlength=len(index.x))
    return si, ui, 1.0 / np.maximum(count[si], 1)


def measure(units: gpd.GeoDataFrame, roads: np.ndarray, buildings: pd.DataFrame, key_places: pd.DataFrame,
            cameras: pd.DataFrame, views: pd.DataFrame, *, step: float, facade_max_m: float,
            key_buffer_m: float, inner: np.ndarray | None = None, only: set[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Figures per unit and the key-place list. All geometry metric.

    units: code, geom. inner: the communities' inner areas (shrunk by the inner-street
    distance), any order. roads: LineStrings. buildings: id, unit_code, geom. key_places: id,
    name, category, geom (point). cameras: id, x, y, counted. views: camera_id, counted,
    shape, geom. ``only``: codes to report (the others are context for border weights).
    """
    codes = units["code"].to_numpy()
    ugeom = units.geometry.to_numpy()
    n_u = len(units)
    fig = pd.DataFrame(0.0, index=pd.Index(codes, name="code"), columns=FIGURES)
    vgeom = views["geom"].to_numpy()
    counted = views["counted"].to_numpy(dtype=bool) & np.array([g is not None for g in vgeom], dtype=bool)
    outdoor = counted & (views["shape"].to_numpy() != "indoor")
    out_views = vgeom[outdoor]

    # Roads.
    x, y, w = line_samples(roads, step)
    index = SampleIndex(x, y)
    if only is not None and len(x):  # keep the samples near the units reported
        near = np.zeros(len(x), dtype=bool)
        near[index.hits(shapely.buffer(ugeom[np.isin(codes, list(only))], BORDER_TOL_M, quad_segs=2))[1]] = True
        x, y, w = x[near], y[near], w[near]
        index = SampleIndex(x, y)
    si, ui, wt = _unit_weights(index, ugeom)
    hit = index.covered(out_views)
    fig["road_m"] = np.bincount(ui, weights=w[si] * wt, minlength=n_u)
    fig["road_covered_m"] = np.bincount(ui, weights=w[si] * wt * hit[si], minlength=n_u)
    if inner is not None and len(x):
        inside = index.covered(np.asarray(inner, dtype=object))
        fig["inner_road_m"] = np.bincount(ui, weights=w[si] * wt * inside[si], minlength=n_u)
        fig["inner_road_covered_m"] = np.bincount(ui, weights=w[si] * wt * (inside & hit)[si], minlength=n_u)

    # Open space: unit area minus footprints; covered part exact.
    bgeom = buildings["geom"].to_numpy() if len(buildings) else np.zeros(0, dtype=object)
    built = np.zeros(n_u)
    if len(bgeom):
        bi, uj = shapely.STRtree(bgeom).query(ugeom, predicate="intersects")[::-1]
        inside = shapely.within(bgeom[bi], ugeom[uj])
        area = np.where(inside, shapely.area(bgeom[bi]), 0.0)
        part = ~inside
        if part.any():
            area[part] = shapely.area(shapely.intersection(bgeom[bi[part]], ugeom[uj[part]]))
        built = np.bincount(uj, weights=area, minlength=n_u)
    fig["open_m2"] = shapely.area(ugeom) - built
    if len(out_views):
        vi, uj = shapely.STRtree(ugeom).query(out_views, predicate="intersects")
        want = np.ones(len(uj), dtype=bool) if only is None else np.isin(codes[uj], list(only))
        vi, uj = vi[want], uj[want]
        pieces = shapely.intersection(out_views[vi], ugeom[uj])
        order = np.argsort(uj, kind="stable")
        uj, pieces = uj[order], pieces[order]
        bounds = np.searchsorted(uj, np.arange(n_u + 1))
        cov = np.zeros(n_u)
        for u in np.flatnonzero(bounds[1:] > bounds[:-1]):
            merged = shapely.union_all(pieces[bounds[u]:bounds[u + 1]])
            cov[u] = shapely.area(merged)
        # Views exclude the footprints that block them; an uninvolved footprint (none) would be
        # subtracted here: keep the figure within the open area.
        fig["open_covered_m2"] = np.minimum(cov, fig["open_m2"].to_numpy())

    # Street-facing building edges.
    if len(bgeom):
        a, b, normal, length, wall_unit = street_walls(bgeom, buildings["unit_code"].to_numpy(), roads, facade_max_m)
        if len(a):
            fx, fy, fw, fo = wall_samples(a, b, normal, length, step)
            fhit = SampleIndex(fx, fy).covered(out_views)
            frame = pd.DataFrame({"unit": wall_unit[fo], "w": fw, "hit": fw * fhit})
            frame = frame[frame["unit"].notna()]
            sums = frame.groupby("unit")[["w", "hit"]].sum()
            sums = sums[sums.index.isin(codes)]
            fig.loc[sums.index, "facade_m"] = sums["w"].to_numpy()
            fig.loc[sums.index, "facade_covered_m"] = sums["hit"].to_numpy()

    # Key places.
    places = key_places.copy()
    places["unit_code"] = None
    places["covered"] = False
    places["cameras"] = [[] for _ in range(len(places))]
    if len(places):
        pts = places["geom"].to_numpy()
        hu, hi = shapely.STRtree(ugeom).query(pts, predicate="intersects")
        unit_of = np.full(len(places), None, dtype=object)
        for p_, u_ in zip(hu.tolist(), hi.tolist()):
            if unit_of[p_] is None:
                unit_of[p_] = codes[u_]
        places["unit_code"] = unit_of
        region = shapely.buffer(pts, key_buffer_m)
        if len(bgeom):
            pi, bj = shapely.STRtree(bgeom).query(pts, predicate="within")
            hosts = pd.Series(bj, index=pi).groupby(level=0).first()
            region[hosts.index.to_numpy()] = shapely.buffer(bgeom[hosts.to_numpy()], key_buffer_m)
        have = np.array([g is not None for g in vgeom], dtype=bool)
        if have.any():
            vidx = np.flatnonzero(have)
            ri, vj = shapely.STRtree(vgeom[vidx]).query(region, predicate="intersects")
            cam_ids = views["camera_id"].to_numpy()[vidx][vj]
            cnt = views["counted"].to_numpy(dtype=bool)[vidx][vj]
            seen = pd.DataFrame({"p": ri, "cam": cam_ids, "counted": cnt})
            places["cameras"] = [sorted(int(c) for c in seen.loc[seen.p == i, "cam"]) for i in range(len(places))]
            places.loc[np.unique(ri[cnt]), "covered"] = True
        per = places[places["unit_code"].notna()].groupby("unit_code").agg(n=("id", "size"), c=("covered", "sum"))
        per = per[per.index.isin(codes)]
        fig.loc[per.index, "key_places"] = per["n"].to_numpy()
        fig.loc[per.index, "key_places_covered"] = per["c"].to_numpy()

    # Cameras standing in each unit.
    if len(cameras):
        ci, uj = shapely.STRtree(ugeom).query(shapely.points(cameras["x"], cameras["y"]), predicate="intersects")
        first = pd.Series(uj, index=ci).groupby(level=0).first()
        fig["cameras"] = np.bincount(first.to_numpy(), minlength=n_u)
        fig["cameras_counted"] = np.bincount(first.to_numpy(), weights=cameras["counted"].to_numpy(dtype=float)[first.index.to_numpy()], minlength=n_u)

    fig = fig.reset_index()
    if only is not None:
        fig = fig[fig["code"].isin(only)]
        places = places[places["unit_code"].isin(only)]
    return fig.reset_index(drop=True), places.drop(columns="geom").reset_index(drop=True)
