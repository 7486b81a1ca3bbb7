"""Services coverage: walking distance along the road network from every home to the
nearest open facility of each category, against each category's service radius and the
5-, 10- and 15-minute life circles (GB 50180-2018, standards §4), with the straight-line
figure beside it so that the buffers' over-claim shows.

- Homes: buildings with households, or of residential/mixed use (an OpenStreetMap import
  has no household counts; its figures are then in buildings).
- Walks start at the footprint's side nearest the network (a building's door is on its
  street side) and end at the facility's building (a facility point stands in a building;
  a point in no footprint is used as it is). Both snaps are part of the walking distance
  and are reported (``snap_m``). Networks: analysis/network.py.
- Straight line: from the footprint to the facility's building, the distance a buffer
  would use; it never exceeds the walk.
- A home in the same building as a facility is 0 m from it.
- Only facilities with status ``open`` count. Walks are followed up to
  ``service_search_max_m``; farther is "beyond" (NULL).
- Radii: ``layers/vocab.py`` defaults, overridden per category by ``service_radius_m``.
  The life circles' required categories are the settings ``life_circle_*_categories``.

Storage: ``service_buildings`` (one row per home: its fingerprint, snap, and arrays of
distances and nearest facilities in the run's category order; ``service_distances`` is the
same in long form, a view), ``service_facilities`` (where each facility stood and its
fingerprint, so an edit knows what it touches), a ``coverage_runs`` row per run. Figures
per grid, community and sub-district are summed from the stored distances on reading.
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from analysis import network
from analysis.runs import Timer, fingerprint, finish_run, last_run, lock, probe_table, read_metric, start_run, window
from gis.citus import is_citus
from gis.copy import copy_into, copy_text
from gis.ewkb import ewkb_hex
from gis.measure import metric_srid
from gis.settings import get_settings
from layers.vocab import FACILITY_CATEGORIES

HOME = "(b.households > 0 OR b.use IN ('residential', 'mixed'))"
BUILDING_FP = "md5(concat_ws('|', b.geom::text, b.households, b.use, b.grid_id, b.community_code))"
FACILITY_FP = "md5(concat_ws('|', f.geom::text, f.category, f.status))"
ROADS_FP = "SELECT md5(coalesce(string_agg(r.id || ':' || md5(r.geom::text), ',' ORDER BY r.id), '')) FROM roads r WHERE r.walkable"


# --- rules ---------------------------------------------------------------------------------

def radii() -> dict[str, float]:
    """Service radius per category: vocab default, settings override."""
    s = get_settings()
    out = {c.code: float(c.radius_m) for c in FACILITY_CATEGORIES if c.radius_m is not None}
    out.update({k: float(v) for k, v in s.service_radius_m.items()})
    return out


def life_circles() -> dict[str, tuple[float, list[str]]]:
    """Life circle → (walking distance, required categories): the one place they are defined
    (settings ``life_circle_{5,10,15}_m`` and ``life_circle_{5,10,15}_categories``)."""
    s = get_settings()
    return {"5min": (s.life_circle_5_m, list(s.life_circle_5_categories)),
            "10min": (s.life_circle_10_m, list(s.life_circle_10_categories)),
            "15min": (s.life_circle_15_m, list(s.life_circle_15_categories))}


def categories() -> list[str]:
    """Categories analysed: every one with a radius or required by a life circle."""
    want = set(radii()) | {c for _, cats in life_circles().values() for c in cats}
    return [c.code for c in FACILITY_CATEGORIES if c.code in want] + sorted(want - {c.code for c in FACILITY_CATEGORIES})


def run_settings() -> dict:
    return {"radii": radii(), "life_circles": life_circles(), "categories": categories(),
            "search_max_m": get_settings().service_search_max_m, "metric_srid_setting": get_settings().metric_srid}


# --- reading -------------------------------------------------------------------------------

def _homes(conn: Connection, srid: int, where: str = "TRUE", params: dict | None = None) -> pd.DataFrame:
    frame = read_metric(conn, f"""
        SELECT b.id, b.households, {BUILDING_FP} AS fp, b.district_code, b.community_code, b.grid_id, ST_Transform(b.geom, {srid}) AS geom
        FROM buildings b WHERE {HOME} AND {where} ORDER BY b.id""", srid, params)
    return pd.DataFrame({"id": frame["id"].to_numpy(), "households": frame["households"].to_numpy(),
                         "fp": frame["fp"].to_numpy(), "district_code": frame["district_code"].to_numpy(),
                         "community_code": frame["community_code"].to_numpy(),
                         "grid_id": pd.array(frame["grid_id"], dtype="Int64"), "geom": frame.geometry.to_numpy()})


def _facilities(conn: Connection, srid: int, where: str = "TRUE", params: dict | None = None) -> pd.DataFrame:
    """Facilities of the analysed categories with the building they stand in (if any)."""
    # the host is the lowest-numbered building under the point; as a grouped join rather than a
    # LATERAL … LIMIT 1, which Citus cannot run when buildings are distributed (same answer).
    # The host's outline is read by id in a second query: joining buildings back by id in an outer
    # join (facilities LEFT JOIN hosts LEFT JOIN buildings) crashes the Citus 13.2 coordinator
    # under row-level security (segmentation fault; README, Citus).
    # On one node the facilities go into a probe table first: the footprints are read once, not
    # once per facility (row-level security keeps their spatial index out of the join).
    hosts = """SELECT f.id AS facility_id, min(b.id) AS building_id FROM facilities f JOIN buildings b ON ST_Intersects(b.geom, f.geom)
               WHERE f.category = ANY(:cats) GROUP BY f.id"""
    if not is_citus(conn):
        probe = probe_table(conn, "_facility_probe", f"SELECT f.id, f.geom FROM facilities f WHERE f.category = ANY(:cats) AND {where}",
                            {**(params or {}), "cats": categories()})
        w, wp = "TRUE", {}
        if where != "TRUE":  # a part of the city: only the footprints near it, by the leakproof index
            box = conn.execute(text(f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) AS e FROM {probe}) q")).one()
            if box[0] is not None:
                w, wp = window(conn, "buildings", "b", box, 4326)
                params = {**(params or {}), **wp}
        hosts = f"""SELECT p.id AS facility_id, min(b.id) AS building_id FROM buildings b
                    JOIN {probe} p ON b.geom && p.geom AND ST_Intersects(b.geom, p.geom) WHERE {w} GROUP BY p.id"""
    frame = read_metric(conn, f"""
        WITH hosts AS ({hosts})
        SELECT f.id, f.category, f.status, {FACILITY_FP} AS fp, ST_Transform(f.geom, {srid}) AS geom, x.building_id AS host_id
        FROM facilities f
        LEFT JOIN hosts x ON x.facility_id = f.id
        WHERE f.category = ANY(:cats) AND {where} ORDER BY f.id""", srid, {**(params or {}), "cats": categories()})
    ids = sorted({int(i) for i in frame["host_id"].dropna()})
    outlines = {int(i): shapely.from_wkb(bytes(w)) for i, w in conn.execute(text(
        f"SELECT id, ST_AsBinary(ST_Transform(geom, {srid})) FROM buildings WHERE id = ANY(:ids)"), {"ids": ids}).all()} if ids else {}
    host = np.array([None if pd.isna(h) else outlines.get(int(h)) for h in frame["host_id"]], dtype=object)
    frame["host_id"] = [None if h is None else int(i) for i, h in zip(frame["host_id"], host)]
    pts = frame.geometry.to_numpy()
    return pd.DataFrame({"id": frame["id"].to_numpy(), "category": frame["category"].to_numpy(), "status": frame["status"].to_numpy(),
                         "fp": frame["fp"].to_numpy(), "point": pts, "host_id": frame["host_id"].to_numpy(),
                         "reach": np.where([h is None for h in host], pts, host)})


# --- computing -----------------------------------------------------------------------------

@dataclass
class Distances:
    """Per home (rows) and category (columns): walk and straight line to the nearest open
    facility (NaN: none within the search distance) and that facility's id (-1: none)."""

    categories: list[str]
    network_m: np.ndarray
    facility_id: np.ndarray
    straight_m: np.ndarray
    straight_facility_id: np.ndarray


def _distances(graph: network.Graph, homes: pd.DataFrame, homes_snap: network.Snapped, facilities: pd.DataFrame,
               cats: list[str], cutoff: float) -> Distances:
    """Every home × category: walking and straight-line distance to the nearest open facility."""
    n, k = len(homes), len(cats)
    out = Distances(list(cats), np.full((n, k), np.nan), np.full((n, k), -1, dtype=np.int64), np.full((n, k), np.nan),
                    np.full((n, k), -1, dtype=np.int64))
    open_f = facilities[facilities["status"] == "open"]
    if n == 0 or open_f.empty:
        return out
    fac_snap = network.snap(graph, open_f["reach"].to_numpy())
    geoms = homes["geom"].to_numpy()
    ids = homes["id"].to_numpy()
    for j, cat in enumerate(cats):
        mine = np.flatnonzero(open_f["category"].to_numpy() == cat)
        if len(mine) == 0:
            continue
        fids = open_f["id"].to_numpy()[mine]
        d, lab = network.nearest(graph, fac_snap.take(mine), fids, homes_snap, cutoff)
        out.network_m[:, j] = np.where(np.isfinite(d), d, np.nan)
        out.facility_id[:, j] = lab
        tree = shapely.STRtree(open_f["reach"].to_numpy()[mine])
        (hi, fi), dist = tree.query_nearest(geoms, max_distance=cutoff, return_distance=True, all_matches=False)
        out.straight_m[hi, j] = dist
        out.straight_facility_id[hi, j] = fids[fi]
        # A home in the facility's own building is 0 m from it.
        hosts = open_f["host_id"].to_numpy()[mine]
        okh = pd.notna(hosts)
        same = pd.Series(fids[okh], index=hosts[okh].astype(np.int64)).groupby(level=0).first()
        at_home = np.isin(ids, same.index.to_numpy())
        if at_home.any():
            out.network_m[at_home, j] = 0.0
            out.straight_m[at_home, j] = 0.0
            out.facility_id[at_home, j] = same.reindex(ids[at_home]).to_numpy()
            out.straight_facility_id[at_home, j] = out.facility_id[at_home, j]
    return out


def _array_literals(values: np.ndarray, fmt: str) -> list[str]:
    """Postgres array literals, one per row ('{1.5,NULL}'); ``fmt`` '%.1f' or '%d'."""
    missing = np.isnan(values) if values.dtype.kind == "f" else values < 0
    rows = []
    for vals, miss in zip(values.tolist(), missing.tolist()):
        rows.append("{" + ",".join("NULL" if m else fmt % v for v, m in zip(vals, miss)) + "}")
    return rows


def _write_homes(conn: Connection, run_id: int, at, homes: pd.DataFrame, homes_snap: network.Snapped,
                 graph: network.Graph, dist: Distances) -> None:
    """One row per home (distances to the decimetre): a plain-text COPY built without a
    Python object per home and category."""
    road = np.where(homes_snap.edge >= 0, graph.road_id[np.maximum(homes_snap.edge, 0)] if len(graph.road_id) else -1, -1)
    cats = "{" + ",".join(dist.categories) + "}"
    stamp = at.isoformat()
    # The building's place goes with the row: the insert trigger of migration 0021 then has no
    # building to look up per row (a million look-ups in a city's full run).
    null = chr(92) + "N"
    place = [f"{d}\t{null if c is None or c != c else c}\t{null if g is None or g is pd.NA else g}"
             for d, c, g in zip(homes["district_code"].tolist(), homes["community_code"].tolist(), homes["grid_id"].tolist())]
    cols = zip(homes["id"].tolist(), homes["fp"].tolist(), homes["households"].tolist(), road.tolist(), homes_snap.snap_m.tolist(),
               _array_literals(dist.network_m, "%.1f"), _array_literals(dist.facility_id, "%d"),
               _array_literals(dist.straight_m, "%.1f"), _array_literals(dist.straight_facility_id, "%d"), place)
    lines = [f"{b}\t{run_id}\t{stamp}\t{fp}\t{h}\t{rd if rd >= 0 else null}\t"
             f"{'%.2f' % sm if sm == sm and sm != float('inf') else null}\t{cats}\t{n}\t{f}\t{st}\t{sf}\t{pl}"
             for b, fp, h, rd, sm, n, f, st, sf, pl in cols]
    columns = ["building_id", "run_id", "computed_at", "building_fp", "households", "road_id", "snap_m",
               "categories", "network_m", "facility_id", "straight_m", "straight_facility_id", "district_code", "community_code", "grid_id"]
    copy_text(conn, "service_buildings", columns, lines)  # row-level security: a staging table


def _write_facilities(conn: Connection, run_id: int, at, graph: network.Graph, facilities: pd.DataFrame, srid: int) -> None:
    if facilities.empty:
        return
    snap = network.snap(graph, facilities["reach"].to_numpy())
    froad = np.where(snap.edge >= 0, graph.road_id[np.maximum(snap.edge, 0)] if len(graph.road_id) else -1, -1)
    conn.execute(text("CREATE TEMP TABLE IF NOT EXISTS _fac_stage (facility_id bigint, fp text, category text, counted boolean, "
                      "road_id bigint, snap_m real, pt text) ON COMMIT DROP"))
    conn.execute(text("TRUNCATE _fac_stage"))
    copy_into(conn, "_fac_stage", ["facility_id", "fp", "category", "counted", "road_id", "snap_m", "pt"],
              ((int(i), fp, c, st == "open", None if rd < 0 else int(rd), None if not np.isfinite(sm) else float(sm), g)
               for i, fp, c, st, rd, sm, g in zip(facilities["id"], facilities["fp"], facilities["category"], facilities["status"],
                                                   froad, snap.snap_m, ewkb_hex(facilities["point"].to_numpy(), srid))))
    conn.execute(text("""
        INSERT INTO service_facilities (facility_id, run_id, computed_at, facility_fp, category, counted, road_id, snap_m, geom)
        SELECT facility_id, :run, :at, fp, category, counted, road_id, snap_m, ST_Transform(ST_GeomFromEWKB(decode(pt, 'hex')), 4326)
        FROM _fac_stage"""), {"run": run_id, "at": at})


def refresh(conn: Connection, *, full: bool = False, facilities: Iterable[int] | None = None,
            buildings: Iterable[int] | None = None, timings: dict | None = None) -> dict:
    """Bring the stored distances up to date and say what was recomputed.

    full: everything (also when nothing is stored, or the settings or the walkable roads
    changed). facilities / buildings: the fast path after editing these facilities or
    buildings (ids, deleted ones too): only they are compared with what is stored, instead
    of fingerprinting every home of the city (a full scan: seconds at 1,000,000 buildings).
    Otherwise every changed facility and home is found. Either way only the homes a changed
    facility can reach (within ``service_search_max_m``) and the changed homes are walked
    again. timings: a dict to receive seconds per step.
    """
    t0 = time.perf_counter()
    timer = Timer(timings)
    lock(conn, "services")
    s = get_settings()
    srid = metric_srid(conn)
    cfg = {**run_settings(), "metric_srid": srid}
    cfg_fp = fingerprint(cfg)
    cutoff = s.service_search_max_m
    cats = categories()
    last = last_run(conn, "services")
    stored = conn.execute(text("SELECT EXISTS (SELECT 1 FROM service_buildings)")).scalar_one()
    last_roads = last["inputs"].get("roads_fp") if last else None
    # The walkable roads' fingerprint reads every road (seconds in a city). An edit of named
    # facilities or buildings did not touch the roads: the last run's fingerprint is carried
    # forward, so a road edit not yet refreshed still makes the next unnamed refresh full.
    targeted = facilities is not None or buildings is not None
    roads_fp = last_roads if targeted and last_roads is not None and not full else conn.execute(text(ROADS_FP)).scalar_one()
    if full or last is None or last["settings_fp"] != cfg_fp or last_roads != roads_fp or not stored:
        run_id, at = start_run(conn, "services", "full", cfg, {"roads_fp": roads_fp})
        graph = network.load(conn, srid)
        timer.lap("graph")
        homes = _homes(conn, srid)
        facs = _facilities(conn, srid)
        timer.lap("read")
        snap = network.snap(graph, homes["geom"].to_numpy())
        timer.lap("snap")
        dist = _distances(graph, homes, snap, facs, cats, cutoff)
        timer.lap("walks_and_straight_lines")
        conn.execute(text("DELETE FROM service_buildings"))  # DELETE, not TRUNCATE: the app role may run this
        conn.execute(text("DELETE FROM service_facilities"))
        _write_homes(conn, run_id, at, homes, snap, graph, dist)
        _write_facilities(conn, run_id, at, graph, facs, srid)
        timer.lap("write")
        touched = {"mode": "full", "homes": len(homes), "facilities": len(facs), "edges": len(graph.geoms), "nodes": graph.n_nodes}
        finish_run(conn, run_id, time.perf_counter() - t0, touched)
        return {"run_id": run_id, **touched, "seconds": round(time.perf_counter() - t0, 3)}

    fac_changes = _facility_changes(conn, None if not targeted else {int(f) for f in facilities or ()})
    home_changes = _home_changes(conn, None if not targeted else {int(b) for b in buildings or ()})
    if fac_changes.empty and home_changes.empty:
        return {"run_id": None, "mode": "none", "homes": 0, "facilities": 0, "seconds": round(time.perf_counter() - t0, 3)}
    run_id, at = start_run(conn, "services", "incremental", cfg, {"roads_fp": roads_fp})
    changed_ids = fac_changes["facility_id"].astype(int).tolist()
    # Homes near a changed facility (old or new place) or relying on one: walked again for
    # that facility's categories only; changed homes: for every category.
    fac_cats = [c for c in cats if c in set(fac_changes["old_category"].dropna()) | set(fac_changes["new_category"].dropna())]
    near: set[int] = set()
    if changed_ids:
        places = """(SELECT geom FROM service_facilities WHERE facility_id = ANY(:ids)
                     UNION ALL SELECT geom FROM facilities WHERE id = ANY(:ids))"""
        w, wp = "TRUE", {}
        box = conn.execute(text(f"""SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)
                                    FROM (SELECT ST_Extent(ST_Transform(geom, {srid})) AS e FROM {places} p) q"""), {"ids": changed_ids}).one()
        if box[0] is not None and len(changed_ids) <= 500:  # the homes near a few places, by the leakproof index
            pad = cutoff + 2.0
            w, wp = window(conn, "buildings", "b", (box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad), srid)
        near = set(int(i) for i in conn.execute(text(f"""
            SELECT b.id FROM {places} p
            JOIN buildings b ON ST_DWithin(b.geom_3857, ST_Transform(p.geom, 3857), :d / cos(radians(ST_Y(p.geom))))
            WHERE {HOME} AND {w}
            UNION SELECT building_id FROM service_buildings
            WHERE facility_id && CAST(:ids AS bigint[]) OR straight_facility_id && CAST(:ids AS bigint[])"""),
            {"ids": changed_ids, "d": cutoff + 1.0, **wp}).scalars())
    gone = home_changes.loc[home_changes["state"] == "gone", "building_id"].astype(int).tolist()
    changed_homes = set(home_changes.loc[home_changes["state"] != "gone", "building_id"].astype(int))
    again = near | changed_homes
    kept = _stored_arrays(conn, sorted(near - changed_homes), cats)
    conn.execute(text("DELETE FROM service_buildings WHERE building_id = ANY(:ids)"), {"ids": sorted(again | set(gone))})
    walked = 0
    if again:
        homes = _homes(conn, srid, "b.id = ANY(:ids)", {"ids": sorted(again)})
        if len(homes):
            box = shapely.box(*shapely.total_bounds(homes["geom"].to_numpy())).buffer(cutoff + 1.0, join_style="mitre")
            env = dict(zip(("x0", "y0", "x1", "y1"), box.bounds))
            graph = network.load(conn, srid, box.bounds)
            facs = _facilities(conn, srid, f"f.geom && ST_Transform(ST_MakeEnvelope(:x0, :y0, :x1, :y1, {srid}), 4326)", env)
            snap = network.snap(graph, homes["geom"].to_numpy())
            ids = homes["id"].to_numpy()
            full_rows = np.isin(ids, list(changed_homes)) | ~np.isin(ids, list(kept))
            dist = _distances(graph, homes.iloc[np.flatnonzero(full_rows)].reset_index(drop=True), snap.take(np.flatnonzero(full_rows)),
                              facs, cats, cutoff)
            merged = Distances(cats, np.full((len(ids), len(cats)), np.nan), np.full((len(ids), len(cats)), -1, dtype=np.int64),
                               np.full((len(ids), len(cats)), np.nan), np.full((len(ids), len(cats)), -1, dtype=np.int64))
            rows = np.flatnonzero(full_rows)
            for name in ("network_m", "facility_id", "straight_m", "straight_facility_id"):
                getattr(merged, name)[rows] = getattr(dist, name)
            part = np.flatnonzero(~full_rows)
            if len(part):
                old = np.array([kept[i] for i in ids[part]], dtype=object)
                for j, name in enumerate(("network_m", "facility_id", "straight_m", "straight_facility_id")):
                    getattr(merged, name)[part] = np.stack(old[:, j])
                sub = _distances(graph, homes.iloc[part].reset_index(drop=True), snap.take(part), facs, fac_cats, cutoff)
                where = [cats.index(c) for c in fac_cats]
                for name in ("network_m", "facility_id", "straight_m", "straight_facility_id"):
                    block = getattr(merged, name)
                    block[np.ix_(part, where)] = getattr(sub, name)
            _write_homes(conn, run_id, at, homes, snap, graph, merged)
            walked = len(homes)
    if changed_ids:
        conn.execute(text("DELETE FROM service_facilities WHERE facility_id = ANY(:ids)"), {"ids": changed_ids})
        present = _facilities(conn, srid, "f.id = ANY(:ids)", {"ids": changed_ids})
        if len(present):
            box = shapely.box(*shapely.total_bounds(present["reach"].to_numpy())).buffer(cutoff, join_style="mitre")
            _write_facilities(conn, run_id, at, network.load(conn, srid, box.bounds), present, srid)
    touched = {"mode": "incremental", "facilities": changed_ids, "categories": fac_cats, "homes_changed": len(home_changes),
               "homes_walked": walked}
    finish_run(conn, run_id, time.perf_counter() - t0, touched)
    return {"run_id": run_id, **touched, "seconds": round(time.perf_counter() - t0, 3)}


def _stored_arrays(conn: Connection, ids: list[int], cats: list[str]) -> dict[int, tuple]:
    """The stored per-category arrays of these homes (only rows in the current category order)."""
    if not ids:
        return {}
    out = {}
    for r in conn.execute(text("""SELECT building_id, categories, network_m, facility_id, straight_m, straight_facility_id
                                  FROM service_buildings WHERE building_id = ANY(:ids)"""), {"ids": ids}):
        if list(r.categories) != cats:
            continue
        out[int(r.building_id)] = (np.array(r.network_m, dtype=float), np.array([-1 if v is None else v for v in r.facility_id], dtype=np.int64),
                                   np.array(r.straight_m, dtype=float), np.array([-1 if v is None else v for v in r.straight_facility_id], dtype=np.int64))
    return out


def _facility_changes(conn: Connection, only: set[int] | None = None) -> pd.DataFrame:
    """Facilities new, deleted, or changed (position, category, status) since last computed."""
    frame = pd.read_sql(text(f"""
        SELECT coalesce(f.id, s.facility_id) AS facility_id, s.category AS old_category, f.category AS new_category,
               CASE WHEN f.id IS NULL THEN 'gone' WHEN s.facility_id IS NULL THEN 'new' ELSE 'changed' END AS state
        FROM (SELECT * FROM facilities f WHERE f.category = ANY(:cats)) f
        FULL JOIN service_facilities s ON s.facility_id = f.id
        WHERE (f.id IS NULL OR s.facility_id IS NULL OR s.facility_fp <> {FACILITY_FP})
          AND (CAST(:only AS bigint[]) IS NULL OR coalesce(f.id, s.facility_id) = ANY(:only))"""),
        conn, params={"cats": categories(), "only": None if only is None else sorted(only)})
    return frame


def _home_changes(conn: Connection, only: set[int] | None = None) -> pd.DataFrame:
    """Homes new, gone (deleted or no longer a home), or changed since last computed
    (``only``: among these buildings; both sides are restricted before the join, so the
    check is two index probes rather than a fingerprint of every home)."""
    if only is not None and not only:
        return pd.DataFrame({"building_id": pd.Series([], dtype="int64"), "state": pd.Series([], dtype=object)})
    bw, sw = ("b.id = ANY(:only)", "WHERE building_id = ANY(:only)") if only is not None else ("TRUE", "")
    return pd.read_sql(text(f"""
        SELECT coalesce(b.id, s.building_id) AS building_id,
               CASE WHEN b.id IS NULL THEN 'gone' WHEN s.building_id IS NULL THEN 'new' ELSE 'changed' END AS state
        FROM (SELECT b.id, b.district_code, {BUILDING_FP} AS fp FROM buildings b WHERE {HOME} AND {bw}) b
        FULL JOIN (SELECT * FROM service_buildings {sw}) s ON s.building_id = b.id AND s.district_code = b.district_code
        WHERE b.id IS NULL OR s.building_id IS NULL OR s.building_fp <> b.fp"""), conn,
        params={"only": sorted(only)} if only is not None else None)


# --- freshness -----------------------------------------------------------------------------

def stale(conn: Connection) -> pd.DataFrame:
    """Per grid and community: when its service figures were computed, and whether they are
    stale (a home in it, a facility within reach of it, the walkable roads or the settings
    changed since)."""
    cutoff = get_settings().service_search_max_m
    last = last_run(conn, "services")
    cfg_fp = fingerprint({**run_settings(), "metric_srid": metric_srid(conn)})
    everything = last is None or last["settings_fp"] != cfg_fp or last["inputs"].get("roads_fp") != conn.execute(text(ROADS_FP)).scalar_one()
    fac = _facility_changes(conn)
    homes = _home_changes(conn)
    ids = fac["facility_id"].astype(int).tolist()
    frame = pd.read_sql(text(f"""
        WITH u AS (
          SELECT 'grid' AS scope, g.code, g.community_code, g.geom, (SELECT array_agg(id) FROM buildings WHERE grid_id = g.id) AS b
          FROM grids g WHERE g.valid_to IS NULL
          UNION ALL
          SELECT 'community', c.code, c.code, c.geom, (SELECT array_agg(id) FROM buildings WHERE community_code = c.code) FROM communities c)
        SELECT u.scope, u.code, u.community_code,
               (SELECT min(s.computed_at) FROM service_buildings s WHERE s.building_id = ANY(u.b)) AS computed_at,
               coalesce(u.b && CAST(:homes AS bigint[]), false) AS homes_changed,
               EXISTS (SELECT 1 FROM (SELECT geom FROM service_facilities WHERE facility_id = ANY(:ids)
                                      UNION ALL SELECT geom FROM facilities WHERE id = ANY(:ids)) p
                       WHERE ST_DWithin(u.geom::geography, p.geom::geography, :d)) AS facilities_changed
        FROM u ORDER BY u.scope DESC, u.code"""),
        conn, params={"homes": homes["building_id"].astype(int).tolist(), "ids": ids, "d": cutoff})
    frame["inputs_changed_everywhere"] = everything
    frame["stale"] = frame["homes_changed"] | frame["facilities_changed"] | everything
    return frame


# --- reading results -----------------------------------------------------------------------

def _joined(conn: Connection, community: str | None = None) -> pd.DataFrame:
    """The stored distances in long form (home × category) with each home's grid, community
    and households; built from the per-home arrays (faster than the view for a city)."""
    rows = conn.execute(text("""
        SELECT s.building_id, s.categories, s.network_m, s.straight_m, s.facility_id, s.computed_at,
               b.households, g.code AS grid_code, b.community_code, c.subdistrict_code
        FROM service_buildings s JOIN buildings b ON b.id = s.building_id AND b.district_code = s.district_code
        LEFT JOIN grids g ON g.id = b.grid_id AND g.valid_to IS NULL
        LEFT JOIN communities c ON c.code = b.community_code
        WHERE CAST(:c AS text) IS NULL OR b.community_code = :c"""), {"c": community}).all()
    cols = ["building_id", "category", "network_m", "straight_m", "facility_id", "computed_at", "households", "grid_code",
            "community_code", "subdistrict_code"]
    if not rows:
        return pd.DataFrame(columns=cols)
    k = np.array([len(r.categories) for r in rows])
    rep = np.repeat(np.arange(len(rows)), k)
    flat = lambda name, dtype: np.array([v for r in rows for v in getattr(r, name)], dtype=dtype)  # noqa: E731
    frame = pd.DataFrame({
        "building_id": np.array([r.building_id for r in rows])[rep], "category": flat("categories", object),
        "network_m": flat("network_m", float), "straight_m": flat("straight_m", float),
        "facility_id": pd.array([v for r in rows for v in r.facility_id], dtype="Int64"),
    })
    for name in ("computed_at", "households", "grid_code", "community_code", "subdistrict_code"):
        frame[name] = pd.Series([getattr(r, name) for r in rows]).to_numpy()[rep]
    for name in ("community_code", "subdistrict_code"):
        frame[name] = frame[name].where(frame[name].isna(), frame[name].astype(str).str.strip())
    return frame[cols]


def _scopes(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return [("grid", "grid_code"), ("community", "community_code"), ("subdistrict", "subdistrict_code")]


def category_coverage(conn: Connection, community: str | None = None, category: str | None = None) -> pd.DataFrame:
    """Per grid, community and sub-district × category: homes and households beyond the
    radius by walking and by straight line, shares within, and the over-claim (households
    a buffer calls served that the walk does not reach)."""
    r = radii()
    j = _joined(conn, community)
    if category is not None:
        j = j[j["category"] == category]
    j = j[j["category"].isin(list(r))]
    j["radius_m"] = j["category"].map(r)
    j["net_ok"] = j["network_m"].notna() & (j["network_m"] <= j["radius_m"])
    j["str_ok"] = j["straight_m"].notna() & (j["straight_m"] <= j["radius_m"])
    j["hh_net"] = j["households"] * j["net_ok"]
    j["hh_str"] = j["households"] * j["str_ok"]
    out = []
    for scope, key in _scopes(j):
        sub = j[j[key].notna()]
        if sub.empty:
            continue
        g = sub.groupby([key, "category"]).agg(
            homes=("building_id", "size"), households=("households", "sum"), homes_within_network=("net_ok", "sum"),
            homes_within_straight=("str_ok", "sum"), households_within_network=("hh_net", "sum"),
            households_within_straight=("hh_str", "sum"), median_network_m=("network_m", "median"),
            computed_at=("computed_at", "min")).reset_index().rename(columns={key: "code"})
        g.insert(0, "scope", scope)
        out.append(g)
    cols = ["scope", "code", "category", "category_zh", "radius_m", "homes", "households", "households_beyond_network",
            "households_beyond_straight", "homes_beyond_network", "homes_beyond_straight", "share_within_network",
            "share_within_straight", "overclaim_households", "median_network_m", "computed_at"]
    if not out:
        return pd.DataFrame(columns=cols)  # nothing measured yet: the columns, no rows (callers select by name)
    f = pd.concat(out, ignore_index=True)
    f["radius_m"] = f["category"].map(r)
    f["households_beyond_network"] = f["households"] - f["households_within_network"]
    f["households_beyond_straight"] = f["households"] - f["households_within_straight"]
    f["homes_beyond_network"] = f["homes"] - f["homes_within_network"]
    f["homes_beyond_straight"] = f["homes"] - f["homes_within_straight"]
    weight = np.where(f["households"] > 0, f["households"], np.nan)
    f["share_within_network"] = np.where(f["households"] > 0, f["households_within_network"] / weight, f["homes_within_network"] / f["homes"]).round(4)
    f["share_within_straight"] = np.where(f["households"] > 0, f["households_within_straight"] / weight, f["homes_within_straight"] / f["homes"]).round(4)
    f["overclaim_households"] = f["households_within_straight"] - f["households_within_network"]
    f["median_network_m"] = f["median_network_m"].round(1)
    names = {c.code: c.zh for c in FACILITY_CATEGORIES}
    f["category_zh"] = f["category"].map(names)
    return f[cols].sort_values(["scope", "code", "category"], key=lambda s: s.map({"grid": 0, "community": 1, "subdistrict": 2}) if s.name == "scope" else s).reset_index(drop=True)


def life_circle_coverage(conn: Connection, community: str | None = None) -> pd.DataFrame:
    """Per grid, community and sub-district × life circle: the share of households (homes
    where there are no household counts) whose circle holds every required category, by
    walking and by straight line."""
    j = _joined(conn, community)
    if j.empty:  # nothing measured yet: the columns, no rows (callers select by name)
        return pd.DataFrame(columns=["scope", "code", "circle", "distance_m", "required", "homes", "households", "homes_complete_network",
                                     "homes_complete_straight", "households_complete_network", "households_complete_straight",
                                     "computed_at", "share_network", "share_straight"])
    wide = j.set_index(["building_id", "category"])[["network_m", "straight_m"]]
    net, st = wide["network_m"].unstack(), wide["straight_m"].unstack()
    homes = j.drop_duplicates("building_id").set_index("building_id")[["households", "grid_code", "community_code", "subdistrict_code", "computed_at"]]
    out = []
    for circle, (dist, cats) in life_circles().items():
        def complete(tab: pd.DataFrame) -> pd.Series:
            have = tab.reindex(columns=cats)
            return (have.notna() & (have <= dist)).all(axis=1).reindex(homes.index, fill_value=False)
        h = homes.assign(net=complete(net), straight=complete(st))
        h["hh_net"] = h["households"] * h["net"]
        h["hh_str"] = h["households"] * h["straight"]
        for scope, key in _scopes(h):
            sub = h[h[key].notna()]
            if sub.empty:
                continue
            g = sub.groupby(key).agg(homes=("net", "size"), households=("households", "sum"), homes_complete_network=("net", "sum"),
                                     homes_complete_straight=("straight", "sum"), households_complete_network=("hh_net", "sum"),
                                     households_complete_straight=("hh_str", "sum"), computed_at=("computed_at", "min")).reset_index()
            g = g.rename(columns={key: "code"})
            g.insert(0, "scope", scope)
            g.insert(2, "circle", circle)
            g.insert(3, "distance_m", dist)
            g.insert(4, "required", "、".join(cats))
            out.append(g)
    f = pd.concat(out, ignore_index=True)
    hh = f["households"].where(f["households"] > 0)
    f["share_network"] = np.where(f["households"] > 0, f["households_complete_network"] / hh, f["homes_complete_network"] / f["homes"]).round(4)
    f["share_straight"] = np.where(f["households"] > 0, f["households_complete_straight"] / hh, f["homes_complete_straight"] / f["homes"]).round(4)
    return f


def home_layer(conn: Connection, category: str, community: str | None = None) -> gpd.GeoDataFrame:
    """Homes with their distances to a category, as a map layer (EPSG:4326): ``within``
    by walking, and ``overclaimed`` where only the straight line says so."""
    radius = radii().get(category)
    frame = gpd.read_postgis(text("""
        SELECT b.id AS building_id, b.households, b.community_code, d.network_m, d.straight_m, d.facility_id, sb.snap_m, b.geom
        FROM service_distances d JOIN buildings b ON b.id = d.building_id AND b.district_code = d.district_code
        LEFT JOIN service_buildings sb ON sb.building_id = b.id AND sb.district_code = b.district_code
        WHERE d.category = :cat AND (CAST(:c AS text) IS NULL OR b.community_code = :c) ORDER BY b.id"""),
        conn, geom_col="geom", params={"cat": category, "c": community})
    if radius is not None:
        frame["within"] = frame["network_m"].notna() & (frame["network_m"] <= radius)
        frame["overclaimed"] = ~frame["within"] & frame["straight_m"].notna() & (frame["straight_m"] <= radius)
    return frame


def snaps(conn: Connection) -> dict:
    """How far homes and facilities are from the walkable network (the snap distances)."""
    b = pd.read_sql(text("SELECT snap_m FROM service_buildings"), conn)["snap_m"]
    f = pd.read_sql(text("""SELECT s.facility_id, f.name, s.category, s.snap_m FROM service_facilities s
                            LEFT JOIN facilities f ON f.id = s.facility_id ORDER BY s.snap_m DESC NULLS FIRST"""), conn)
    q = b.quantile([0.5, 0.95]).round(1).tolist() if len(b) else [None, None]
    return {"homes": int(len(b)), "home_snap_median_m": q[0], "home_snap_p95_m": q[1],
            "home_snap_max_m": None if b.empty else round(float(b.max()), 1), "homes_unsnapped": int(b.isna().sum()),
            "facilities": f.round({"snap_m": 1}).to_dict("records")}
