"""The siting models' input from the database: demand, candidate sites, existing
facilities and the walking distances between them (a ``siting.SitingInput``).

- Demand: buildings with households (``weight="households"``), or with residents of a
  group from ``building_groups`` (``weight="elderly_65"`` for elderly day care). A walk
  starts at the footprint's side nearest the network, as in ``analysis/services.py``.
- Existing facilities of the category with status ``open`` stay open and count; a walk
  ends at the building the facility stands in (its point when it stands in none). Their
  ``capacity`` column is used by capacitated runs (NULL: unlimited).
- Candidates, one of:
  ``roads[:SPACING]``   points along the walkable roads every SPACING metres (default 50),
                        the "generated candidates on walkable land";
  ``buildings:use=public`` / ``buildings:B000123,B000456``  chosen buildings (idle public
                        buildings), walks end at their footprint;
  a file (GeoJSON, GeoPackage, Shapefile, CSV/Excel with lon/lat) of points or parcels
                        (a parcel is reached at its side nearest the network), with
                        optional ``id``/``name``/``capacity`` columns.
- Distances: along the walkable road graph of ``analysis/network.py`` (the coverage work's
  graph: OSM noding, T junctions, snapping onto edges), every pair within the cut-off,
  snap distances at both ends included. ``pairs_within`` is the one function that walks.
"""
from __future__ import annotations

import heapq
import re
import time
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from sqlalchemy import Connection, text

from analysis import network
from analysis.runs import read_metric
from analysis.services import radii
from analysis.siting import SitingError, SitingInput
from gis.crs import unshift
from gis.measure import metric_srid
from gis.messages import msg
from gis.problems import ImportFailed
from gis.readers import read_vector
from gis.scope import current
from layers.vocab import FACILITY_CATEGORIES, GROUPS, codes

DEFAULT_SPACING_M = 50.0


# --- distances ----------------------------------------------------------------------------

def _bounded_walk(indptr: list, nbr: list, w: list, seeds: list[tuple[float, int]], cutoff: float) -> dict[int, float]:
    """Dijkstra from (cost, node) seeds, stopping at ``cutoff``: reached node → cost."""
    best: dict[int, float] = {}
    heap = []
    for c, n in seeds:
        if c <= cutoff and c < best.get(n, np.inf):
            best[n] = c
            heap.append((c, n))
    heapq.heapify(heap)
    done: set[int] = set()
    pop, push = heapq.heappop, heapq.heappush
    while heap:
        d, n = pop(heap)
        if n in done:
            continue
        done.add(n)
        for k in range(indptr[n], indptr[n + 1]):
            m = nbr[k]
            nd = d + w[k]
            if nd <= cutoff and nd < best.get(m, np.inf):
                best[m] = nd
                push(heap, (nd, m))
    return best


def pairs_within(graph: network.Graph, sources: network.Snapped, targets: network.Snapped,
                 cutoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (source, target) pair whose walking distance is within ``cutoff``: a bounded
    walk from each source (both ends of its edge, with the partial lengths), read off at
    both ends of each target's edge, plus the direct way along a shared edge. Snap
    distances at both ends count. Returns (source index, target index, metres)."""
    out_s, out_t, out_d = [], [], []
    ok_t = np.flatnonzero(targets.edge >= 0)
    if len(ok_t) == 0 or len(graph.geoms) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    te, tp, toff = targets.edge[ok_t], targets.pos[ok_t], targets.snap_m[ok_t]
    tu, tv, tl = graph.u[te], graph.v[te], graph.length[te]
    # node -> targets on an edge ending there; edge -> targets on it
    node_of = np.concatenate([tu, tv])
    tgt = np.concatenate([np.arange(len(ok_t))] * 2)
    order = np.argsort(node_of, kind="stable")
    by_node = tgt[order]
    node_ptr = np.searchsorted(node_of[order], np.arange(graph.n_nodes + 1))
    e_order = np.argsort(te, kind="stable")
    by_edge = e_order
    edge_ptr = np.searchsorted(te[e_order], np.arange(len(graph.geoms) + 1))
    indptr, nbr, w = graph.csr
    nd = np.full(graph.n_nodes, np.inf)
    for s in np.flatnonzero(sources.edge >= 0):
        e, p, off = int(sources.edge[s]), float(sources.pos[s]), float(sources.snap_m[s])
        if off > cutoff:
            continue
        reached = _bounded_walk(indptr, nbr, w, [(off + p, int(graph.u[e])), (off + graph.length[e] - p, int(graph.v[e]))], cutoff)
        nodes = np.fromiter(reached.keys(), np.int64, len(reached))
        nd[nodes] = np.fromiter(reached.values(), float, len(reached))
        cand = [by_node[node_ptr[n]:node_ptr[n + 1]] for n in nodes.tolist()]
        cand.append(by_edge[edge_ptr[e]:edge_ptr[e + 1]])
        c = np.unique(np.concatenate(cand)) if cand else np.zeros(0, np.int64)
        d = toff[c] + np.minimum(nd[tu[c]] + tp[c], nd[tv[c]] + tl[c] - tp[c])
        same = te[c] == e
        if same.any():
            d[same] = np.minimum(d[same], toff[c[same]] + np.abs(tp[c[same]] - p) + off)
        keep = d <= cutoff
        out_s.append(np.full(keep.sum(), s))
        out_t.append(ok_t[c[keep]])
        out_d.append(d[keep])
        nd[nodes] = np.inf
    if not out_s:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(out_s), np.concatenate(out_t), np.concatenate(out_d)


# --- candidates ---------------------------------------------------------------------------

@dataclass
class Candidates:
    """Candidate sites in the metric CRS: ``reach`` is what a walk ends at (a point, a
    footprint or a parcel)."""

    frame: pd.DataFrame  # id, name, capacity, point (metric), reach (metric)
    source: str  # what they are, for the scenario record


def candidates_on_roads(graph: network.Graph, spacing: float = DEFAULT_SPACING_M) -> Candidates:
    """Points along every walkable edge every ``spacing`` metres (half a step in from each
    end, so a junction does not get one candidate per street meeting there)."""
    if spacing <= 0:
        raise SitingError("spacing must be positive")
    lengths = graph.length
    n = np.floor(lengths / spacing).astype(int) + 1
    n = np.where(lengths > 0, n, 0)
    edge = np.repeat(np.arange(len(lengths)), n)
    k = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    along = (k + 0.5) * (lengths[edge] / np.maximum(n[edge], 1))
    pts = shapely.line_interpolate_point(graph.geoms[edge], along)
    ids = np.array([f"R{i + 1:05d}" for i in range(len(pts))], dtype=object)
    frame = pd.DataFrame({"id": ids, "name": [f"道路候选点 {i}" for i in ids], "capacity": np.nan, "point": pts, "reach": pts})
    return Candidates(frame, f"roads:{spacing:g}")


def candidates_from_buildings(conn: Connection, srid: int, source_ids: list[str] | None = None,
                              use: str | None = None) -> Candidates:
    where, params = [], {}
    if source_ids:
        where.append("b.source_id = ANY(:ids)")
        params["ids"] = list(source_ids)
    if use:
        where.append("b.use = :use")
        params["use"] = use
    if not where:
        raise SitingError("choose buildings by source id or by use")
    frame = read_metric(conn, f"""
        SELECT b.source_id AS id, coalesce(b.name, b.address, b.source_id) AS name, ST_Transform(b.geom, {srid}) AS geom
        FROM buildings b WHERE {' AND '.join(where)} ORDER BY b.source_id""", srid, params)
    if source_ids:
        missing = sorted(set(source_ids) - set(frame["id"]))
        if missing:
            raise SitingError(f"unknown buildings: {', '.join(missing[:10])}")
    geoms = frame.geometry.to_numpy()
    out = pd.DataFrame({"id": frame["id"].astype(str).to_numpy(), "name": frame["name"].to_numpy(), "capacity": np.nan,
                        "point": shapely.point_on_surface(geoms), "reach": geoms})
    return Candidates(out, "buildings:" + (f"use={use}" if use else ",".join(source_ids or [])))


ID_COLS = ("id", "编号", "source_id", "site_id", "候选编号")
NAME_COLS = ("name", "名称", "地址", "address")
CAP_COLS = ("capacity", "容量", "床位", "学位")


def candidates_from_file(path: str | Path, srid: int, crs: str | None = None, layer: str | None = None) -> Candidates:
    """Points or parcels from a vector file or a lon/lat table (reprojected; GCJ-02/BD-09 undone)."""
    try:
        src = read_vector(path, layer=layer, crs=crs)
    except ImportFailed as exc:
        raise SitingError(str(exc)) from exc
    frame = src.frame
    frame = frame[~frame.geometry.isna() & ~frame.geometry.is_empty]
    if src.crs is None:
        raise SitingError(f"{Path(path).name}: no CRS (pass crs=...)")
    geoms = frame.geometry.to_numpy()
    if src.crs.shift:
        geoms = unshift(geoms, src.crs.shift)
    metric = gpd.GeoSeries(geoms, crs=src.crs.crs).to_crs(srid).to_numpy()
    if len(metric) == 0:
        raise SitingError(f"{Path(path).name}: no candidate geometries")

    def pick(names, default):
        low = {str(c).lower(): c for c in frame.columns}
        for n in names:
            if n.lower() in low:
                return frame[low[n.lower()]].to_numpy()
        return default

    ids = pick(ID_COLS, np.array([f"C{i + 1:04d}" for i in range(len(frame))], dtype=object))
    ids = np.array([str(v) for v in ids], dtype=object)
    if len(set(ids)) != len(ids):
        raise SitingError(f"{Path(path).name}: candidate ids are not unique")
    cap = pd.to_numeric(pd.Series(pick(CAP_COLS, np.full(len(frame), np.nan))), errors="coerce").to_numpy(float)
    out = pd.DataFrame({"id": ids, "name": pick(NAME_COLS, ids), "capacity": cap,
                        "point": np.where(shapely.get_type_id(metric) == 0, metric, shapely.point_on_surface(metric)),
                        "reach": metric})
    return Candidates(out, f"file:{Path(path).name}")


def parse_candidates(conn: Connection, spec: str | Path | Candidates | None, srid: int, graph: network.Graph,
                     crs: str | None = None) -> Candidates:
    """``None``/``roads[:SPACING]``/``buildings:use=USE``/``buildings:ID,ID``/a file path."""
    if isinstance(spec, Candidates):
        return spec
    text_ = "roads" if spec is None else str(spec)
    if text_ == "roads" or re.fullmatch(r"roads:[0-9.]+", text_):
        return candidates_on_roads(graph, float(text_.split(":")[1]) if ":" in text_ else DEFAULT_SPACING_M)
    if text_.startswith("buildings:"):
        rest = text_.split(":", 1)[1]
        if rest.startswith("use="):
            return candidates_from_buildings(conn, srid, use=rest[4:])
        return candidates_from_buildings(conn, srid, source_ids=[s.strip() for s in rest.split(",") if s.strip()])
    if not Path(text_).exists():
        raise SitingError(f"candidates: no such file {text_!r} (or use roads[:SPACING], buildings:use=public, buildings:ID,ID)")
    return candidates_from_file(text_, srid, crs=crs)


# --- demand and existing facilities -------------------------------------------------------

def _demand(conn: Connection, srid: int, weight: str) -> pd.DataFrame:
    """Demand per building: households, or a group's members (counted per building where the
    scope may read them, else estimated from the grid's total of that group)."""
    if weight == "households":
        w_sql, join = "b.households", ""
    elif weight in codes(GROUPS):
        scope = current()
        if scope is not None and not scope.sees_group_rows:
            # Row-level security hides per-building group counts from this role (a planner, a
            # leader without the grant). Estimate from what it may read: the grid's total of the
            # group (group_totals, an aggregate) shared out over the grid's homes by households.
            w_sql = f"(b.households::double precision * gt.{weight} / nullif(gt.households, 0))"
            join = "LEFT JOIN grids gg ON gg.id = b.grid_id LEFT JOIN group_totals('grid') gt ON gt.code = gg.code"
        else:
            w_sql, join = f"coalesce(g.{weight}, 0)", "LEFT JOIN building_groups g ON g.building_id = b.id AND g.district_code = b.district_code"
    else:
        raise SitingError(f"unknown weight {weight!r}: households or one of {', '.join(codes(GROUPS))}")
    frame = read_metric(conn, f"""
        SELECT b.id, b.source_id, coalesce(b.address, b.name, b.source_id) AS label, gr.code AS grid_code,
               b.community_code, {w_sql} AS weight, ST_X(ST_PointOnSurface(b.geom)) AS lon, ST_Y(ST_PointOnSurface(b.geom)) AS lat,
               ST_Transform(b.geom, {srid}) AS geom
        FROM buildings b {join} LEFT JOIN grids gr ON gr.id = b.grid_id
        WHERE {w_sql} > 0 ORDER BY b.id""", srid)
    return frame


def _existing(conn: Connection, srid: int, category: str) -> pd.DataFrame:
    # the host is the lowest-numbered building under the point: a grouped join, then its outline by
    # id (Citus runs neither a LATERAL … LIMIT 1 over distributed buildings nor an outer join back to
    # them; the same form as analysis.services._facilities, the same answer)
    frame = read_metric(conn, f"""
        WITH hosts AS (SELECT f.id AS facility_id, min(b.id) AS building_id FROM facilities f
                       JOIN buildings b ON ST_Intersects(b.geom, f.geom)
                       WHERE f.category = :cat AND f.status = 'open' GROUP BY f.id)
        SELECT 'F' || f.id AS site_key, f.id, f.source_id, f.name, f.capacity, ST_X(f.geom) AS lon, ST_Y(f.geom) AS lat,
               ST_Transform(f.geom, {srid}) AS geom, x.building_id AS host_id
        FROM facilities f LEFT JOIN hosts x ON x.facility_id = f.id
        WHERE f.category = :cat AND f.status = 'open' ORDER BY f.id""", srid, {"cat": category})
    ids = sorted({int(i) for i in frame["host_id"].dropna()})
    outlines = {int(i): shapely.from_wkb(bytes(w)) for i, w in conn.execute(text(
        f"SELECT id, ST_AsBinary(ST_Transform(geom, {srid})) FROM buildings WHERE id = ANY(:ids)"), {"ids": ids}).all()} if ids else {}
    host = [None if pd.isna(h) else outlines.get(int(h)) for h in frame.pop("host_id")]
    frame["reach"] = [p if h is None else h for p, h in zip(frame.geometry.to_numpy(), host)]
    return frame


def default_radius(category: str) -> float:
    r = radii().get(category)
    if r is None:
        raise SitingError(f"category {category!r} has no service radius: pass radius=")
    return float(r)


def build_input(conn: Connection, category: str, *, radius: float | None = None, cutoff: float | None = None,
                weight: str = "households", candidates: str | Path | Candidates | None = None, crs: str | None = None,
                candidate_capacity: float | None = None, include_existing: bool = True) -> SitingInput:
    """Everything the models need for one category, from the database (see the module doc).
    ``cutoff`` (how far walks are followed; default the radius) may exceed the radius for a
    p-median that should still assign far households."""
    if category not in codes(FACILITY_CATEGORIES):
        raise SitingError(f"unknown category {category!r}: one of {', '.join(codes(FACILITY_CATEGORIES))}")
    t0 = time.perf_counter()
    radius = float(radius) if radius is not None else default_radius(category)
    cutoff = max(float(cutoff) if cutoff is not None else radius, radius)
    srid = metric_srid(conn)
    graph = network.load(conn, srid)
    demand = _demand(conn, srid, weight)
    notes = []
    if weight == "households" and len(demand) == 0:
        # an OpenStreetMap import has no household counts: count homes instead
        demand = read_metric(conn, f"""
            SELECT b.id, b.source_id, coalesce(b.address, b.name, b.source_id) AS label, gr.code AS grid_code, b.community_code,
                   1 AS weight, ST_X(ST_PointOnSurface(b.geom)) AS lon, ST_Y(ST_PointOnSurface(b.geom)) AS lat,
                   ST_Transform(b.geom, {srid}) AS geom
            FROM buildings b LEFT JOIN grids gr ON gr.id = b.grid_id WHERE b.use IN ('residential', 'mixed') ORDER BY b.id""", srid)
        notes.append(msg("siting.no_households"))
    existing = _existing(conn, srid, category) if include_existing else _existing(conn, srid, category).iloc[0:0]
    cands = parse_candidates(conn, candidates, srid, graph, crs)
    cf = cands.frame
    if candidate_capacity is not None:
        cf = cf.assign(capacity=np.where(np.isnan(cf["capacity"].to_numpy(float)), candidate_capacity, cf["capacity"]))
    to_ll = Transformer.from_crs(srid, 4326, always_xy=True)
    cx, cy = to_ll.transform(shapely.get_x(cf["point"].to_numpy()), shapely.get_y(cf["point"].to_numpy()))
    t_read = time.perf_counter()

    site_ids = np.concatenate([existing["site_key"].to_numpy(dtype=object), cf["id"].to_numpy(dtype=object)])
    if len(set(site_ids)) != len(site_ids):
        raise SitingError("candidate ids clash with existing facilities (F<id>): rename them")
    reach = np.concatenate([np.asarray(existing["reach"].tolist() if len(existing) else [], dtype=object),
                            cf["reach"].to_numpy(dtype=object)])
    site_snap = network.snap(graph, reach)
    demand_snap = network.snap(graph, demand.geometry.to_numpy())
    si, di, dist = pairs_within(graph, site_snap, demand_snap, cutoff)
    # a home in the facility's own building is 0 m from it
    if len(existing) and len(demand):
        tree = shapely.STRtree(demand.geometry.to_numpy())
        fi, bi = tree.query(existing.geometry.to_numpy(), predicate="intersects")
        if len(fi):
            si, di, dist = np.concatenate([si, fi]), np.concatenate([di, bi]), np.concatenate([dist, np.zeros(len(fi))])
    t_walk = time.perf_counter()
    unsnapped = int((demand_snap.edge < 0).sum())
    if unsnapped:
        notes.append(msg("siting.unsnapped", buildings=unsnapped))
    inp = SitingInput(
        demand_id=demand["id"].to_numpy(), weight=demand["weight"].to_numpy(float), site_id=site_ids,
        existing=np.concatenate([np.ones(len(existing), bool), np.zeros(len(cf), bool)]),
        capacity=np.concatenate([existing["capacity"].to_numpy(dtype=float) if len(existing) else np.zeros(0),
                                 cf["capacity"].to_numpy(dtype=float)]),
        pair_demand=di, pair_site=si, pair_distance=dist, cutoff=cutoff,
        demand_group=demand["grid_code"].to_numpy(dtype=object), demand_label=demand["source_id"].to_numpy(dtype=object),
        site_name=np.concatenate([existing["name"].to_numpy(dtype=object), cf["name"].to_numpy(dtype=object)]),
        demand_xy=demand[["lon", "lat"]].to_numpy(float),
        site_xy=np.vstack([existing[["lon", "lat"]].to_numpy(float).reshape(-1, 2), np.column_stack([cx, cy]).reshape(-1, 2)]),
        meta={"category": category, "radius_m": radius, "cutoff_m": cutoff, "weight": weight, "candidates": cands.source,
              "candidate_count": len(cf), "existing_count": len(existing), "demand_count": len(demand),
              "demand_weight": float(demand["weight"].sum()), "pairs": len(dist), "srid": srid,
              "network": {"nodes": graph.n_nodes, "edges": len(graph.geoms), "engine": "analysis.network road graph"},
              "seconds": {"read": round(t_read - t0, 3), "walk": round(t_walk - t_read, 3)}, "notes": notes,
              "existing_facility_ids": existing["id"].tolist()},
    )
    return inp
