"""What one camera sees: its sector from the GB/T 28181 catalogue fields, cut where
building footprints block the line of sight (2-D), in a metric CRS.

The model (standards §5):

- bearing from ``azimuth`` (degrees clockwise from north), else from ``DirectionType``;
- half-angle ``HorizontalFieldAngle / 2``;
- radius ``min(MaxViewDistance, d)`` where ``d`` is the distance at which the chosen
  image-detail level (IEC 62676-4 DORI pixels per metre) is still reached:
  ``d = H_px / (2 · ppm · tan(HFOV/2))`` (for a lens of 180° or more, where the tangent
  breaks down, the arc form ``d = H_px / (ppm · HFOV_rad)``);
- domes (PTZType 1) and cameras without a direction see a full circle: they can turn, or
  nobody recorded where they point; every such assumption is written on the camera;
- indoor cameras (RoomType 2) see the inside of the building they stand in (their view is
  that footprint within range): they count for the key place in that building, never for
  streets or open space.

Line of sight: a footprint hides everything behind it from the camera. For a convex
footprint the hidden region is the convex hull of its corners and their projections
beyond the range along the rays from the camera; for any other footprint (L, U shapes,
courtyards, or a camera inside the hull) it is the union of one such quadrilateral per
wall. Visible = sector − ∪ shadows. This is exact for straight walls (no sampling), and
it is vectorised across all camera-building pairs; only the final union and difference
run once per camera.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from analysis.runs import as_multipolygons
from gis.messages import msg
from layers.vocab import DIRECTION_TYPES


# IEC 62676-4 image-detail levels (standards §5), pixels per metre.
DORI_PPM: dict[str, float] = {"detection": 25.0, "observation": 62.5, "recognition": 125.0, "identification": 250.0}
ARC_STEP_DEG = 2.0  # sector arcs are drawn with a vertex at least every 2°
WALL_OFFSET_M = 0.5  # a camera found inside a footprint is moved this far out of its nearest wall

NOTES = ("dome_circle", "no_direction_circle", "wide_circle", "hfov_default", "no_max_distance", "indoor",
         "indoor_outside", "moved_out", "offline", "unknown")  # assumption codes; words: gis/messages.py camera.*


def note(code: str, **kw) -> str:
    """An assumption as ``code: words`` (a ``Message``: the dashboard picks one language)."""
    return msg(f"camera.{code}", **kw)


def dori_range(hfov_deg: np.ndarray, ppm: float, sensor_px: int) -> np.ndarray:
    """Distance (m) at which a camera of this HFOV still reaches ``ppm`` pixels per metre."""
    h = np.radians(np.asarray(hfov_deg, dtype=float))
    narrow = h < math.pi
    out = np.empty_like(h)
    out[narrow] = sensor_px / (2.0 * ppm * np.tan(h[narrow] / 2.0))
    out[~narrow] = sensor_px / (ppm * h[~narrow])
    return out


def parameters(cams: pd.DataFrame, detail: str, sensor_px: int, default_hfov: float) -> pd.DataFrame:
    """Shape, bearing, HFOV, range and the assumptions made, for each camera row (columns as
    the ``cameras`` table: direction_type, azimuth, hfov, max_view_distance, ptz_type,
    room_type, status)."""
    if detail not in DORI_PPM:
        raise KeyError(f"unknown detail level {detail!r}: one of {', '.join(DORI_PPM)}")
    ppm = DORI_PPM[detail]
    out = cams.copy()
    n = len(out)
    notes: list[list[str]] = [[] for _ in range(n)]
    az = pd.to_numeric(out["azimuth"], errors="coerce").astype(float)
    from_type = pd.to_numeric(out["direction_type"], errors="coerce").map(
        lambda t: DIRECTION_TYPES[int(t)][1] if pd.notna(t) and int(t) in DIRECTION_TYPES else np.nan).astype(float)
    az = az.where(az.notna(), from_type)
    hfov = pd.to_numeric(out["hfov"], errors="coerce").astype(float)
    mvd = pd.to_numeric(out["max_view_distance"], errors="coerce").astype(float)
    ptz = pd.to_numeric(out["ptz_type"], errors="coerce")
    room = pd.to_numeric(out["room_type"], errors="coerce")
    status = out["status"].fillna("unknown").to_numpy()
    shape = np.full(n, "sector", dtype=object)
    for i in range(n):
        if room.iloc[i] == 2:
            shape[i] = "indoor"
            notes[i].append(note("indoor"))
        elif ptz.iloc[i] == 1:
            shape[i] = "circle"
            notes[i].append(note("dome_circle"))
        elif np.isnan(az.iloc[i]):
            shape[i] = "circle"
            notes[i].append(note("no_direction_circle"))
        elif hfov.iloc[i] >= 360:
            shape[i] = "circle"
            notes[i].append(note("wide_circle"))
        if np.isnan(hfov.iloc[i]):
            notes[i].append(note("hfov_default", hfov=default_hfov))
        if np.isnan(mvd.iloc[i]):
            notes[i].append(note("no_max_distance"))
        if status[i] in ("offline", "unknown"):
            notes[i].append(note(status[i]))
    hfov_used = hfov.fillna(default_hfov).to_numpy()
    dori = dori_range(hfov_used, ppm, sensor_px)
    mvd_np = mvd.to_numpy()
    by_mvd = ~np.isnan(mvd_np) & (mvd_np < dori)
    out["shape"] = shape
    out["bearing"] = np.where(shape == "sector", az.to_numpy(), np.nan)
    out["hfov_used"] = hfov_used
    out["dori_range_m"] = dori
    out["range_m"] = np.where(by_mvd, mvd_np, dori)
    out["range_source"] = np.where(by_mvd, "MaxViewDistance", f"DORI {detail} {ppm:g} px/m")
    out["counted"] = status == "online"
    out["assumptions"] = notes
    return out


@dataclass
class Views:
    """Per camera: visible area (metric, MultiPolygon or None), unblocked sector area,
    the point actually used (moved out of a wall if needed), extra notes."""

    geom: np.ndarray
    sector_m2: np.ndarray
    x: np.ndarray
    y: np.ndarray
    notes: list[list[str]]


def sectors(x: np.ndarray, y: np.ndarray, shape: np.ndarray, bearing: np.ndarray, hfov: np.ndarray,
            radius: np.ndarray) -> np.ndarray:
    """Sector (or full-circle) polygons, vertices at least every ``ARC_STEP_DEG`` along the arc."""
    n = len(x)
    full = shape != "sector"
    span = np.where(full, 360.0, np.minimum(hfov, 359.0))
    k = np.maximum(2, np.ceil(span / ARC_STEP_DEG).astype(int) + 1)
    start = np.where(full, 0.0, bearing - span / 2.0)
    owner = np.repeat(np.arange(n), k)
    j = np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k)
    a = np.radians(start[owner] + span[owner] * j / (k[owner] - 1))
    px = x[owner] + radius[owner] * np.sin(a)
    py = y[owner] + radius[owner] * np.cos(a)
    # sector ring: centre, arc, centre; circle ring: arc closed on itself
    centre = ~full
    n_ring = k + np.where(centre, 2, 0)
    ring_owner = np.repeat(np.arange(n), n_ring)
    rx = np.empty(n_ring.sum())
    ry = np.empty(n_ring.sum())
    pos = np.cumsum(n_ring) - n_ring
    arc_pos = np.repeat(pos + centre.astype(int), k) + j
    rx[arc_pos], ry[arc_pos] = px, py
    rx[pos[centre]], ry[pos[centre]] = x[centre], y[centre]
    last = pos + n_ring - 1
    rx[last[centre]], ry[last[centre]] = x[centre], y[centre]
    rx[last[full]], ry[last[full]] = rx[pos[full]], ry[pos[full]]
    rings = shapely.linearrings(np.column_stack([rx, ry]), indices=ring_owner)
    return shapely.polygons(rings)


def _far(c: np.ndarray, p: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """``p`` pushed along the ray from ``c`` to ``dist`` from it — or 1 m beyond itself when
    it already lies farther (a corner beyond the range must not pull the shadow forward)."""
    v = p - c
    norm = np.hypot(v[:, 0], v[:, 1])
    reach = np.maximum(dist, norm + 1.0)
    norm[norm == 0] = 1.0
    return c + v / norm[:, None] * reach[:, None]


def _union(geoms: np.ndarray):
    """Union that survives GEOS robustness failures (slivers from nearly collinear walls):
    retry on valid inputs snapped to a millimetre grid."""
    try:
        return shapely.union_all(geoms)
    except shapely.errors.GEOSException:
        return shapely.union_all(shapely.make_valid(np.asarray(geoms, dtype=object)), grid_size=0.001)


def _difference(a, b):
    try:
        return shapely.difference(a, b)
    except shapely.errors.GEOSException:
        return shapely.difference(shapely.make_valid(a), shapely.make_valid(b), grid_size=0.001)


def _reach(radius: np.ndarray, extent: np.ndarray) -> np.ndarray:
    """How far to project corners so that the shadow's far edge clears the range: the far
    chord between two rays ``extent`` apart lies ``D·cos(extent/2)`` from the camera."""
    half = np.minimum(extent / 2.0, math.radians(89.5))
    return (radius + 1.0) / np.cos(half) + 1.0


def shadows(cx: np.ndarray, cy: np.ndarray, radius: np.ndarray, pair_cam: np.ndarray, pair_bld: np.ndarray,
            footprints: np.ndarray) -> np.ndarray:
    """The region each footprint hides from each camera (one polygon per pair)."""
    out = np.empty(len(pair_cam), dtype=object)
    if len(pair_cam) == 0:
        return out
    fp = footprints[pair_bld]
    hull = shapely.convex_hull(fp)
    cam_pts = shapely.points(cx[pair_cam], cy[pair_cam])
    convex = (shapely.get_num_interior_rings(shapely.get_geometry(fp, 0)) == 0) & (shapely.get_num_geometries(fp) == 1) \
        & (shapely.area(fp) >= 0.999 * shapely.area(hull)) & ~shapely.intersects(hull, cam_pts)

    # Convex footprints: hull of the corners and their far projections.
    cv = np.flatnonzero(convex)
    if len(cv):
        coords, idx = shapely.get_coordinates(shapely.get_exterior_ring(hull[cv]), return_index=True)
        c = np.column_stack([cx[pair_cam[cv]], cy[pair_cam[cv]]])[idx]
        v = coords - c
        ang = np.arctan2(v[:, 0], v[:, 1])
        mean = np.zeros((len(cv), 2))
        unit = v / np.maximum(np.hypot(v[:, 0], v[:, 1]), 1e-9)[:, None]
        np.add.at(mean, idx, unit)
        rel = (ang - np.arctan2(mean[:, 0], mean[:, 1])[idx] + math.pi) % (2 * math.pi) - math.pi
        hi = np.full(len(cv), -np.inf)
        lo = np.full(len(cv), np.inf)
        np.maximum.at(hi, idx, rel)
        np.minimum.at(lo, idx, rel)
        dist = _reach(radius[pair_cam[cv]], hi - lo)[idx]
        far = _far(c, coords, dist)
        both = np.concatenate([coords, far])
        owner = np.concatenate([idx, idx])
        order = np.argsort(owner, kind="stable")
        out[cv] = shapely.convex_hull(shapely.multipoints(shapely.points(both[order]), indices=owner[order]))

    # Any other footprint: one quadrilateral per wall (all rings, courtyards included).
    wl = np.flatnonzero(~convex)
    if len(wl):
        rings, ring_pair = shapely.get_rings(shapely.get_parts(fp[wl], return_index=True)[0], return_index=True)
        part_pair = shapely.get_parts(fp[wl], return_index=True)[1]
        ring_owner = part_pair[ring_pair]
        coords, idx = shapely.get_coordinates(rings, return_index=True)
        same = idx[:-1] == idx[1:]
        a, b = coords[:-1][same], coords[1:][same]
        owner = ring_owner[idx[:-1][same]]
        c = np.column_stack([cx[pair_cam[wl]], cy[pair_cam[wl]]])[owner]
        va, vb = a - c, b - c
        cross = va[:, 0] * vb[:, 1] - va[:, 1] * vb[:, 0]
        dot = (va * vb).sum(axis=1)
        extent = np.abs(np.arctan2(cross, dot))
        dist = _reach(radius[pair_cam[wl]][owner], extent)
        fa, fb = _far(c, a, dist), _far(c, b, dist)
        quads = shapely.polygons(np.stack([a, b, fb, fa, a], axis=1))
        bad = ~shapely.is_valid(quads)
        if bad.any():  # walls seen edge-on give zero-area spikes
            quads[bad] = shapely.make_valid(quads[bad])
        order = np.argsort(owner, kind="stable")
        quads, owner = quads[order], owner[order]
        bounds = np.searchsorted(owner, np.arange(len(wl) + 1))
        out[wl] = [_union(quads[bounds[i]:bounds[i + 1]]) for i in range(len(wl))]
    return out


def compute(params: pd.DataFrame, x: np.ndarray, y: np.ndarray, footprint_ids: np.ndarray,
            footprints: np.ndarray) -> Views:
    """Visible areas for cameras at metric (x, y) with ``parameters()`` columns, blocked by
    the given metric footprints (pass every footprint within range of the cameras)."""
    n = len(params)
    x, y = np.asarray(x, dtype=float).copy(), np.asarray(y, dtype=float).copy()
    notes: list[list[str]] = [[] for _ in range(n)]
    shape = params["shape"].to_numpy().astype(object)
    radius = params["range_m"].to_numpy(dtype=float)
    footprints = np.asarray(footprints, dtype=object)
    footprint_ids = np.asarray(footprint_ids)
    tree = shapely.STRtree(footprints) if len(footprints) else None
    host = np.full(n, -1, dtype=np.int64)
    if tree is not None and n:
        ci, bi = tree.query(shapely.points(x, y), predicate="within")
        for c_, b_ in zip(ci.tolist(), bi.tolist()):
            if host[c_] < 0:
                host[c_] = b_
    indoor = shape == "indoor"
    for i in np.flatnonzero(indoor & (host < 0)):
        notes[i].append(note("indoor_outside"))
        shape[i] = "circle"
    # Outdoor cameras inside a footprint are on its wall: step out of the nearest wall.
    for i in np.flatnonzero(~indoor & (host >= 0)):
        wall = shapely.boundary(footprints[host[i]])
        p = shapely.Point(x[i], y[i])
        q = shapely.get_point(shapely.shortest_line(p, wall), 1)
        d = np.array([q.x - x[i], q.y - y[i]])
        norm = float(np.hypot(*d))
        if norm == 0:
            continue
        x[i], y[i] = q.x + d[0] / norm * WALL_OFFSET_M, q.y + d[1] / norm * WALL_OFFSET_M
        notes[i].append(note("moved_out", bid=int(footprint_ids[host[i]]), m=WALL_OFFSET_M))
    sec = sectors(x, y, shape, params["bearing"].to_numpy(dtype=float), params["hfov_used"].to_numpy(dtype=float), radius)
    geom = np.empty(n, dtype=object)
    inside = np.flatnonzero(indoor & (host >= 0))
    if len(inside):
        geom[inside] = shapely.intersection(footprints[host[inside]], sec[inside])
    outdoor = np.flatnonzero(~(indoor & (host >= 0)))
    if tree is not None and len(outdoor):
        pc, pb = tree.query(sec[outdoor], predicate="intersects")
        pc = outdoor[pc]
        sh = shadows(x, y, radius, pc, pb, footprints)
        order = np.argsort(pc, kind="stable")
        pc, sh = pc[order], sh[order]
        bounds = np.searchsorted(pc, np.arange(n + 1))
        for i in outdoor.tolist():
            a, b = bounds[i], bounds[i + 1]
            geom[i] = sec[i] if a == b else _difference(sec[i], _union(sh[a:b]))
    else:
        geom[outdoor] = sec[outdoor]

    return Views(as_multipolygons(geom), shapely.area(sec), x, y, notes)
