"""The walking network: a graph noded from the walkable ``roads`` rows, snapping onto it,
and nearest-facility walks along it.

Why a graph and not buffers: straight-line circles claim coverage across rivers, railways
and walls (standards §4). Why in Python and not pgRouting — measured on the 50,000-edge
benchmark city (bench/bench_coverage.py, figures in bench/results/coverage.json): from the
same facility nodes our heap walk took 0.02–0.25 s per category, pgRouting's
``pgr_drivingDistance`` 0.06–0.4 s plus 0.4 s to ship the topology, with identical
distances when the minimum over starts is taken (its ``equicost => true`` shortcut was off
by up to 16 m). pgRouting also starts walks only at nodes: a facility in the middle of a
300 m block would be moved to a corner. Here homes and facilities snap to the nearest
point *on* an edge and the walk starts from both ends of it with the right partial
lengths; a local walk after one edited facility needs only the roads around it.
``pgr_nearest`` keeps the pgRouting route for the benchmark's cross-check.

Noding follows OpenStreetMap's rule: lines meet where they share a vertex (or where one
ends on another: a T junction drawn without a shared vertex), not where they merely cross,
so a bridge over a street is no junction and a river with no bridge leaves two separate
networks.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np
import shapely
from sqlalchemy import Connection, text

from gis.copy import copy_into

NODE_TOLERANCE_M = 0.01  # vertices closer than this (after rounding) are one node


@dataclass
class Graph:
    """An undirected walking graph in a metric CRS. Edge k runs from node ``u[k]`` to
    ``v[k]`` along ``geoms[k]`` and is ``length[k]`` metres long."""

    srid: int
    geoms: np.ndarray
    u: np.ndarray
    v: np.ndarray
    length: np.ndarray
    road_id: np.ndarray
    node_xy: np.ndarray
    _csr: tuple | None = field(default=None, repr=False)
    _tree: shapely.STRtree | None = field(default=None, repr=False)

    @property
    def n_nodes(self) -> int:
        return len(self.node_xy)

    @property
    def tree(self) -> shapely.STRtree:
        if self._tree is None:
            self._tree = shapely.STRtree(self.geoms)
        return self._tree

    @property
    def csr(self) -> tuple[list[int], list[int], list[float]]:
        """Adjacency as plain lists (indptr, neighbour, weight): the fastest shape for a
        heapq walk in pure Python."""
        if self._csr is None:
            a = np.concatenate([self.u, self.v])
            b = np.concatenate([self.v, self.u])
            w = np.concatenate([self.length, self.length])
            keep = a != b  # a loop edge adds nothing to node distances
            a, b, w = a[keep], b[keep], w[keep]
            order = np.argsort(a, kind="stable")
            indptr = np.searchsorted(a[order], np.arange(self.n_nodes + 1))
            self._csr = (indptr.tolist(), b[order].tolist(), w[order].tolist())
        return self._csr


def _t_junctions(lines: np.ndarray) -> np.ndarray:
    """Give a line a vertex wherever another line ends on it (a street ending on another
    street meets it there, even when the data did not share a vertex: a T junction). Only
    ends shared with no other vertex are looked at: in most data that is a few dead ends."""
    coords, idx = shapely.get_coordinates(lines, return_index=True)
    key = np.round(coords / NODE_TOLERANCE_M).astype(np.int64)
    _, inv, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    n = np.bincount(idx, minlength=len(lines))
    first = np.concatenate([[0], np.cumsum(n)[:-1]])
    end_pos = np.concatenate([first, first + n - 1])
    owner = np.concatenate([np.arange(len(lines))] * 2)
    lone = counts[inv.ravel()[end_pos]] == 1
    if not lone.any():
        return lines
    ends = shapely.points(coords[end_pos[lone]])
    owner = owner[lone]
    pi, li = shapely.STRtree(lines).query(ends, predicate="dwithin", distance=NODE_TOLERANCE_M)
    other = owner[pi] != li
    pi, li = pi[other], li[other]
    if len(pi) == 0:
        return lines
    lines = lines.copy()
    for line in np.unique(li):
        geom = lines[line]
        coords = shapely.get_coordinates(geom)
        along = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(coords, axis=0).T))])
        pts = ends[pi[li == line]]
        at = shapely.line_locate_point(geom, pts)
        inner = (at > NODE_TOLERANCE_M) & (at < along[-1] - NODE_TOLERANCE_M)
        if not inner.any():
            continue
        new_xy = shapely.get_coordinates(shapely.line_interpolate_point(geom, at[inner]))
        merged = np.concatenate([along, at[inner]])
        order = np.argsort(merged, kind="stable")
        lines[line] = shapely.linestrings(np.concatenate([coords, new_xy])[order])
    return lines


def build(lines: np.ndarray, road_ids: np.ndarray | None = None, srid: int = 0) -> Graph:
    """Node metric LineStrings at their ends, at every vertex two lines (or one line twice)
    share, and where a line ends on another one; cut them there into edges."""
    lines = np.asarray(lines, dtype=object)
    if len(lines):
        lines = _t_junctions(lines)
    road_ids = np.arange(len(lines)) if road_ids is None else np.asarray(road_ids)
    if len(lines) == 0:
        return Graph(srid, np.array([], dtype=object), *(np.array([], dtype=np.int64),) * 2, np.array([]),
                     np.array([], dtype=np.int64), np.zeros((0, 2)))
    coords, line_of = shapely.get_coordinates(lines, return_index=True)
    key = np.round(coords / NODE_TOLERANCE_M).astype(np.int64)
    uniq, vertex = np.unique(key, axis=0, return_inverse=True)
    vertex = vertex.ravel()
    n_coords = np.bincount(line_of, minlength=len(lines))
    first = np.concatenate([[0], np.cumsum(n_coords)[:-1]])
    last = first + n_coords - 1
    shared = np.bincount(vertex, minlength=len(uniq)) > 1
    is_node = shared[vertex].copy()
    is_node[first] = True
    is_node[last] = True
    # Distance along each line to each of its vertices.
    step = np.hypot(*np.diff(coords, axis=0).T)
    step = np.concatenate([[0.0], step])
    step[first] = 0.0
    along = np.cumsum(step)
    along -= np.repeat(along[first], n_coords)
    # Consecutive node vertices of the same line bound an edge.
    node_pos = np.flatnonzero(is_node)
    same_line = line_of[node_pos[:-1]] == line_of[node_pos[1:]]
    start, end = node_pos[:-1][same_line], node_pos[1:][same_line]
    # Coordinates of each edge: start..end inclusive (shared node coordinates repeat).
    counts = end - start + 1
    edge_of = np.repeat(np.arange(len(start)), counts)
    offs = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    geoms = shapely.linestrings(coords[np.repeat(start, counts) + offs], indices=edge_of)
    node_ids, node_of_vertex = np.unique(vertex[node_pos], return_inverse=True)
    remap = np.full(len(uniq), -1, dtype=np.int64)
    remap[node_ids] = np.arange(len(node_ids))
    return Graph(
        srid=srid, geoms=geoms, u=remap[vertex[start]], v=remap[vertex[end]],
        length=along[end] - along[start], road_id=road_ids[line_of[start]],
        node_xy=uniq[node_ids] * NODE_TOLERANCE_M,
    )


def load(conn: Connection, srid: int, bbox: tuple[float, float, float, float] | None = None) -> Graph:
    """The graph of the walkable roads (all of them, or those meeting a metric bbox)."""
    where, params = "walkable", {}
    if bbox is not None:
        from analysis.runs import window

        near, wp = window(conn, "roads", "roads", bbox, srid)  # an index under row-level security
        where += f" AND {near} AND geom && ST_Transform(ST_MakeEnvelope(:x0, :y0, :x1, :y1, {srid}), 4326)"
        params = {**dict(zip(("x0", "y0", "x1", "y1"), bbox)), **wp}
    rows = conn.execute(text(f"SELECT id, ST_AsBinary(ST_Transform(geom, {srid})) FROM roads WHERE {where} ORDER BY id"), params).all()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    lines = shapely.from_wkb([bytes(r[1]) for r in rows]) if rows else np.array([], dtype=object)
    return build(lines, ids, srid)


@dataclass
class Snapped:
    """Where geometries join the network: edge index, metres from the edge's ``u`` end,
    and the straight distance walked to reach the edge (the snap distance)."""

    edge: np.ndarray
    pos: np.ndarray
    snap_m: np.ndarray

    def take(self, idx) -> "Snapped":
        return Snapped(self.edge[idx], self.pos[idx], self.snap_m[idx])


def snap(graph: Graph, geoms: np.ndarray) -> Snapped:
    """Snap each geometry (a point, or a footprint: its nearest side) to the nearest edge."""
    geoms = np.asarray(geoms, dtype=object)
    n = len(geoms)
    edge = np.full(n, -1, dtype=np.int64)
    pos = np.zeros(n)
    dist = np.full(n, np.inf)
    if n == 0 or len(graph.geoms) == 0:
        return Snapped(edge, pos, dist)
    (gi, ei), d = graph.tree.query_nearest(geoms, return_distance=True, all_matches=False)
    edge[gi], dist[gi] = ei, d
    touch = shapely.get_point(shapely.shortest_line(geoms[gi], graph.geoms[ei]), 1)
    pos[gi] = shapely.line_locate_point(graph.geoms[ei], touch)
    return Snapped(edge, pos, dist)


def _walk(graph: Graph, seeds: list[tuple[float, int, int]], cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """Multi-source Dijkstra from (cost, node, label) seeds, stopping at ``cutoff``:
    per node the cost of the nearest seed and that seed's label (-1 unreached)."""
    indptr, nbr, w = graph.csr
    best = [np.inf] * graph.n_nodes
    label = [-1] * graph.n_nodes
    done = [False] * graph.n_nodes
    heap = []
    for c, node, lab in seeds:
        if c <= cutoff and c < best[node]:
            best[node], label[node] = c, lab
            heap.append((c, node, lab))
    heapq.heapify(heap)
    pop, push = heapq.heappop, heapq.heappush
    while heap:
        d, n, lab = pop(heap)
        if done[n] or d > best[n]:
            continue
        done[n] = True
        for k in range(indptr[n], indptr[n + 1]):
            m = nbr[k]
            nd = d + w[k]
            if nd < best[m] and nd <= cutoff:
                best[m], label[m] = nd, lab
                push(heap, (nd, m, lab))
    return np.asarray(best), np.asarray(label, dtype=np.int64)


def nearest(graph: Graph, sources: Snapped, source_labels: np.ndarray, targets: Snapped,
            cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """Walking distance from each target to its nearest source (snap distances at both ends
    included) and that source's label; ``inf``/-1 where none lies within ``cutoff``."""
    dist = np.full(len(targets.edge), np.inf)
    lab = np.full(len(targets.edge), -1, dtype=np.int64)
    ok_s = sources.edge >= 0
    if not ok_s.any() or len(dist) == 0:
        return dist, lab
    e, p, off, sl = sources.edge[ok_s], sources.pos[ok_s], sources.snap_m[ok_s], np.asarray(source_labels)[ok_s]
    seeds = list(zip((off + p).tolist(), graph.u[e].tolist(), sl.tolist()))
    seeds += list(zip((off + graph.length[e] - p).tolist(), graph.v[e].tolist(), sl.tolist()))
    best, label = _walk(graph, seeds, cutoff)
    ok = targets.edge >= 0
    te, tp, toff = targets.edge[ok], targets.pos[ok], targets.snap_m[ok]
    via_u = best[graph.u[te]] + tp
    via_v = best[graph.v[te]] + graph.length[te] - tp
    use_u = via_u <= via_v
    d = toff + np.where(use_u, via_u, via_v)
    lb = np.where(use_u, label[graph.u[te]], label[graph.v[te]])
    # A source on the same edge may be nearer than either end of it.
    same_src = {}
    for k, (edge_k, pos_k, off_k, lab_k) in enumerate(zip(e.tolist(), p.tolist(), off.tolist(), sl.tolist())):
        same_src.setdefault(edge_k, []).append((pos_k, off_k, lab_k))
    if same_src:
        for i in np.flatnonzero(np.isin(te, list(same_src))):
            for pos_k, off_k, lab_k in same_src[int(te[i])]:
                direct = toff[i] + abs(tp[i] - pos_k) + off_k
                if direct < d[i]:
                    d[i], lb[i] = direct, lab_k
    d = np.where(d <= cutoff, d, np.inf)
    lb = np.where(np.isfinite(d), lb, -1)
    dist[ok], lab[ok] = d, lb
    return dist, lab


def pgr_nearest(conn: Connection, graph: Graph, source_nodes: np.ndarray, cutoff: float) -> dict[int, float]:
    """pgRouting's answer to the same question, from nodes: node → cost of the nearest
    source node within ``cutoff``. Used by the benchmark to compare speed and check the
    distances; the edges go to a temporary table. ``pgr_drivingDistance`` per start with the
    minimum taken here: its ``equicost => true`` shortcut was off by up to 16 m on the
    benchmark city (bench/results/coverage.json)."""
    conn.execute(text("CREATE TEMP TABLE IF NOT EXISTS walk_edges (id bigint, source bigint, target bigint, cost float8, reverse_cost float8) ON COMMIT DROP"))
    conn.execute(text("TRUNCATE walk_edges"))
    copy_into(conn, "walk_edges", ["id", "source", "target", "cost", "reverse_cost"],
              ((k, a, b, w, w) for k, (a, b, w) in enumerate(zip(graph.u.tolist(), graph.v.tolist(), graph.length.tolist()))))
    rows = conn.execute(text("""
        SELECT node, min(agg_cost) FROM pgr_drivingDistance('SELECT id, source, target, cost, reverse_cost FROM walk_edges',
               CAST(:starts AS bigint[]), :cutoff, directed => false) GROUP BY node"""),
        {"starts": sorted({int(s) for s in source_nodes}), "cutoff": cutoff}).all()
    return {int(n): float(c) for n, c in rows}
