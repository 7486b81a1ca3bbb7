"""Camera coverage: compute and store every camera's visible area and the coverage of
each grid, community and sub-district; recompute only what an edit touches; tell stale
figures from fresh ones; read them back for the dashboard.

Storage (migration 0005): ``camera_views`` (one row per camera and detail level, with the
camera's fingerprint and the fingerprint of the footprints that could block it),
``camera_coverage`` (one row per measuring unit — a grid, or a community without grids —
plus summed community and sub-district rows), ``camera_key_places`` (each key place,
covered or not, and which cameras reach it), and a ``coverage_runs`` row per run with the
settings used.

Freshness: a view is stale when its camera row, a footprint within its range, or the
settings changed; a unit is stale when a stale (or new, or deleted) camera's view touches
it, or its own inputs (its outline, the roads, footprints and facilities in it) changed.
``refresh`` recomputes exactly those; ``refresh(cameras=[id])`` is the fast path after
one edit. See ``analysis/camera_views.py`` for the view model and ``analysis/camera_measure.py``
for what is measured.
"""
from __future__ import annotations

import time
from collections.abc import Iterable

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from analysis import camera_measure, camera_views as V
from analysis.runs import BUILDING_UNIT_JOIN, BUILDING_UNIT_SQL, Timer, UNITS_SQL, fingerprint, finish_run, last_run, lock, probe_table, read_metric, start_run, units as read_units, window
from gis.citus import is_citus
from gis.copy import copy_into
from gis.ewkb import ewkb_hex
from gis.measure import metric_srid
from gis.messages import msg
from gis.settings import get_settings
from layers.vocab import FACILITY_CATEGORIES

CAMERA_FP = ("md5(concat_ws('|', k.geom::text, k.direction_type, k.azimuth, k.hfov, k.max_view_distance, "
             "k.ptz_type, k.room_type, k.status))")
# Footprints within a camera's range (Web-Mercator copy with its scale at that latitude: index-backed).
NEAR_CAMERA = "ST_DWithin(b.geom_3857, k.geom_3857, ({r} + 2.0) / cos(radians(ST_Y(k.geom))))"
UNIT_FP = """md5(concat_ws('#', md5(u.geom::text),
  (SELECT string_agg(r.id || ':' || md5(r.geom::text), ',' ORDER BY r.id) FROM roads r WHERE r.geom && u.geom AND ST_Intersects(r.geom, u.geom)),
  (SELECT string_agg(b.id || ':' || coalesce(b.grid_id, 0) || ':' || md5(b.geom::text), ',' ORDER BY b.id) FROM buildings b
    WHERE b.geom && u.geom AND ST_Intersects(b.geom, u.geom)),
  (SELECT string_agg(f.id || ':' || md5(concat_ws('|', f.geom::text, f.status, f.category, f.name)), ',' ORDER BY f.id) FROM facilities f
    WHERE f.geom && u.geom AND ST_Intersects(f.geom, u.geom))))"""
FIGURES = camera_measure.FIGURES
WINDOW_MAX = 500  # up to this many cameras or units, place queries go through the leakproof index (analysis.runs.window)


def detail_level(level: str | None = None) -> str:
    level = level or get_settings().camera_detail_level
    if level not in V.DORI_PPM:
        raise KeyError(f"unknown detail level {level!r}: one of {', '.join(V.DORI_PPM)}")
    return level


def run_settings(detail: str) -> dict:
    """Every setting the figures depend on (stored with each run; a change makes all stale)."""
    s = get_settings()
    return {"detail_level": detail, "ppm": V.DORI_PPM[detail], "sensor_width_px": s.camera_sensor_width_px,
            "default_hfov": s.camera_default_hfov, "sample_m": s.camera_sample_m, "facade_max_m": s.camera_facade_max_m,
            "key_place_buffer_m": s.camera_key_place_buffer_m, "inner_road_m": s.camera_inner_road_m, "key_place_categories": key_categories(),
            "metric_srid_setting": s.metric_srid}


def key_categories() -> list[str]:
    return list(get_settings().key_place_categories) or [c.code for c in FACILITY_CATEGORIES]


# --- reading ------------------------------------------------------------------------------

def read_cameras(conn: Connection, srid: int, ids: Iterable[int] | None = None) -> pd.DataFrame:
    where, params = "TRUE", {}
    if ids is not None:
        where, params = "k.id = ANY(:ids)", {"ids": sorted({int(i) for i in ids})}
    return pd.read_sql(text(f"""
        SELECT k.id, k.device_id, k.name, k.district_code, k.status, k.direction_type, k.azimuth, k.hfov,
               k.max_view_distance, k.ptz_type, k.room_type,
               ST_X(ST_Transform(k.geom, {srid})) AS x, ST_Y(ST_Transform(k.geom, {srid})) AS y, {CAMERA_FP} AS camera_fp
        FROM cameras k WHERE {where} ORDER BY k.id"""), conn, params=params)


def _buildings(conn: Connection, srid: int, where: str = "TRUE", params: dict | None = None) -> pd.DataFrame:
    frame = read_metric(conn, f"""
        SELECT b.id, {BUILDING_UNIT_SQL} AS unit_code, ST_Transform(b.geom, {srid}) AS geom
        FROM buildings b {BUILDING_UNIT_JOIN} WHERE {where} ORDER BY b.id""", srid, params)
    return pd.DataFrame({"id": frame["id"].to_numpy(), "unit_code": frame["unit_code"].str.strip().to_numpy(),
                         "geom": frame.geometry.to_numpy()})


def _key_places(conn: Connection, srid: int, where: str = "TRUE", params: dict | None = None) -> pd.DataFrame:
    frame = read_metric(conn, f"""
        SELECT f.id, f.name, f.category, ST_Transform(f.geom, {srid}) AS geom FROM facilities f
        WHERE f.status = 'open' AND f.category = ANY(:cats) AND {where} ORDER BY f.id""", srid,
        {**(params or {}), "cats": key_categories()})
    return pd.DataFrame({"id": frame["id"].to_numpy(), "name": frame["name"].to_numpy(),
                         "category": frame["category"].to_numpy(), "geom": frame.geometry.to_numpy()})


def _roads(conn: Connection, srid: int, where: str = "TRUE", params: dict | None = None) -> np.ndarray:
    frame = read_metric(conn, f"SELECT r.id, ST_Transform(r.geom, {srid}) AS geom FROM roads r WHERE {where} ORDER BY r.id", srid, params)
    return frame.geometry.to_numpy()


def _stored_views(conn: Connection, srid: int, detail: str, where: str = "TRUE", params: dict | None = None) -> pd.DataFrame:
    frame = read_metric(conn, f"""
        SELECT v.camera_id, v.counted, v.shape, ST_Transform(v.geom, {srid}) AS geom FROM camera_views v
        WHERE v.detail_level = :d AND v.geom IS NOT NULL AND {where} ORDER BY v.camera_id""", srid, {**(params or {}), "d": detail})
    return pd.DataFrame({"camera_id": frame["camera_id"].to_numpy(), "counted": frame["counted"].to_numpy(dtype=bool),
                         "shape": frame["shape"].to_numpy(), "geom": frame.geometry.to_numpy()})


def _obstacles_fp(conn: Connection, ranges: dict[int, float]) -> dict[int, str]:
    """Fingerprint of the footprints within each camera's range (ids and outlines).

    The cameras go into a probe table (analysis.runs.probe_table): one pass over the
    footprints instead of one per camera (row-level security keeps the footprints' spatial
    index out of the join)."""
    if not ranges:
        return {}
    if not is_citus(conn):
        reach = probe_table(conn, "_camera_reach", """
            SELECT k.id, k.geom_3857, (q.r + 2.0) / cos(radians(ST_Y(k.geom))) AS d,
                   ST_Expand(k.geom_3857, (q.r + 2.0) / cos(radians(ST_Y(k.geom)))) AS box
            FROM unnest(CAST(:ids AS bigint[]), CAST(:rs AS float8[])) AS q(id, r) JOIN cameras k ON k.id = q.id""",
            {"ids": list(ranges), "rs": [float(r) for r in ranges.values()]}, gist=("box",))
        w, wp = ("TRUE", {})
        if len(ranges) <= WINDOW_MAX:  # a few cameras: only the footprints near them, by the leakproof index
            w, wp = window(conn, "buildings", "b", conn.execute(text(
                f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(box) AS e FROM {reach}) q")).one(), 3857)
        rows = conn.execute(text(f"""
            SELECT k.id, md5(coalesce(string_agg(x.bid || ':' || x.h, ',' ORDER BY x.bid), ''))
            FROM {reach} k LEFT JOIN (
              SELECT k.id AS cam, b.id AS bid, md5(b.geom::text) AS h FROM buildings b
              JOIN {reach} k ON k.box && b.geom_3857 AND ST_DWithin(b.geom_3857, k.geom_3857, k.d) WHERE {w}) x ON x.cam = k.id
            GROUP BY k.id"""), wp).all()
        return {int(i): fp for i, fp in rows}
    rows = conn.execute(text(f"""
        SELECT k.id, md5(coalesce(string_agg(b.id || ':' || md5(b.geom::text), ',' ORDER BY b.id), ''))
        FROM unnest(CAST(:ids AS bigint[]), CAST(:rs AS float8[])) AS q(id, r)
        JOIN cameras k ON k.id = q.id
        LEFT JOIN buildings b ON {NEAR_CAMERA.format(r='q.r')}
        GROUP BY k.id"""), {"ids": list(ranges), "rs": [float(r) for r in ranges.values()]}).all()
    return {int(i): fp for i, fp in rows}


def _unit_fps(conn: Connection, codes: Iterable[str] | None = None) -> dict[str, str]:
    """Fingerprint of each unit's own inputs (UNIT_FP: its outline, the roads, footprints and
    facilities in it). The units go into a probe table and roads, footprints and facilities
    are each read once (the same fingerprint as UNIT_FP's sub-queries, which read the layers
    once per unit under row-level security: 50,000 grids x 1,000,000 footprints)."""
    where, params = "TRUE", {}
    if codes is not None:
        where, params = "u.code = ANY(:codes)", {"codes": sorted(set(codes))}
    if is_citus(conn):
        return {c.strip(): fp for c, fp in conn.execute(text(f"SELECT u.code, {UNIT_FP} FROM ({UNITS_SQL}) u WHERE {where}"), params)}
    u = probe_table(conn, "_unit_probe", f"SELECT u.code, u.geom FROM ({UNITS_SQL}) u WHERE {where}", params)
    wb, wr, wp = "TRUE", "TRUE", {}
    if codes is not None and len(set(codes)) <= WINDOW_MAX:  # a few units: roads and footprints near them only
        box = conn.execute(text(f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) AS e FROM {u}) q")).one()
        if box[0] is not None:
            wb, pb = window(conn, "buildings", "b", box, 4326)
            wr, pr = window(conn, "roads", "r", box, 4326)
            wp = {**pb, **pr}
    rows = conn.execute(text(f"""
        SELECT u.code, md5(concat_ws('#', md5(u.geom::text), r.s, b.s, f.s)) FROM {u} u
        LEFT JOIN (SELECT u.code, string_agg(r.id || ':' || md5(r.geom::text), ',' ORDER BY r.id) AS s
                   FROM roads r JOIN {u} u ON r.geom && u.geom AND ST_Intersects(r.geom, u.geom) WHERE {wr} GROUP BY u.code) r ON r.code = u.code
        LEFT JOIN (SELECT u.code, string_agg(b.id || ':' || coalesce(b.grid_id, 0) || ':' || md5(b.geom::text), ',' ORDER BY b.id) AS s
                   FROM buildings b JOIN {u} u ON b.geom && u.geom AND ST_Intersects(b.geom, u.geom) WHERE {wb} GROUP BY u.code) b ON b.code = u.code
        LEFT JOIN (SELECT u.code, string_agg(f.id || ':' || md5(concat_ws('|', f.geom::text, f.status, f.category, f.name)), ',' ORDER BY f.id) AS s
                   FROM facilities f JOIN {u} u ON f.geom && u.geom AND ST_Intersects(f.geom, u.geom) GROUP BY u.code) f ON f.code = u.code"""), wp)
    return {c.strip(): fp for c, fp in rows}


# --- computing -----------------------------------------------------------------------------

def _compute_views(conn: Connection, srid: int, detail: str, cams: pd.DataFrame, buildings: pd.DataFrame | None = None,
                   timer: Timer | None = None) -> pd.DataFrame:
    """Views for the given camera rows (footprints read around them unless given)."""
    timer = timer or Timer()
    s = get_settings()
    params = V.parameters(cams, detail, s.camera_sensor_width_px, s.camera_default_hfov)
    if buildings is None:
        rmax = float(params["range_m"].max()) if len(params) else 0.0
        pad = rmax + 3.0
        w, wp = window(conn, "buildings", "b", (cams["x"].min() - pad, cams["y"].min() - pad, cams["x"].max() + pad, cams["y"].max() + pad), srid) \
            if 0 < len(cams) <= WINDOW_MAX else ("TRUE", {})
        buildings = _buildings(conn, srid, f"""b.id IN (SELECT b.id FROM cameras k JOIN buildings b ON {NEAR_CAMERA.format(r=':rmax')} AND {w}
                                                        WHERE k.id = ANY(:ids))""", {"ids": cams["id"].tolist(), "rmax": rmax, **wp})
    got = V.compute(params, cams["x"].to_numpy(), cams["y"].to_numpy(), buildings["id"].to_numpy(), buildings["geom"].to_numpy())
    params["geom"] = got.geom
    params["sector_m2"] = got.sector_m2
    params["visible_m2"] = [0.0 if g is None else shapely.area(g) for g in got.geom]
    params["x"], params["y"] = got.x, got.y
    params["assumptions"] = [a + b for a, b in zip(params["assumptions"], got.notes)]
    timer.lap("views")
    params["obstacles_fp"] = params["id"].map(_obstacles_fp(conn, dict(zip(params["id"].tolist(), params["range_m"].tolist()))))
    timer.lap("obstacles_fingerprints")
    return params


def _write_views(conn: Connection, srid: int, detail: str, run_id: int, at, views: pd.DataFrame, settings_fp: str) -> None:
    conn.execute(text("DELETE FROM camera_views WHERE detail_level = :d AND camera_id = ANY(:ids)"),
                 {"d": detail, "ids": views["id"].tolist()})
    conn.execute(text("""CREATE TEMP TABLE IF NOT EXISTS _views_stage (camera_id bigint, camera_fp text, obstacles_fp text,
        device_id text, district_code text, status text, counted boolean, shape text, azimuth real, hfov real, range_m real,
        dori_range_m real, range_source text, assumptions text[], sector_m2 float8, visible_m2 float8, geom text, pt text) ON COMMIT DROP"""))
    conn.execute(text("TRUNCATE _views_stage"))
    geoms = ewkb_hex(views["geom"].to_numpy(), srid)
    pts = ewkb_hex(shapely.points(views["x"].to_numpy(), views["y"].to_numpy()), srid)
    rows = (
        (int(r.id), r.camera_fp, r.obstacles_fp, r.device_id, r.district_code, r.status, bool(r.counted), r.shape,
         None if pd.isna(r.bearing) else float(r.bearing), float(r.hfov_used), float(r.range_m), float(r.dori_range_m),
         r.range_source, list(r.assumptions), float(r.sector_m2), float(r.visible_m2), g, p)
        for r, g, p in zip(views.itertuples(index=False), geoms, pts)
    )
    copy_into(conn, "_views_stage", ["camera_id", "camera_fp", "obstacles_fp", "device_id", "district_code", "status", "counted",
                                     "shape", "azimuth", "hfov", "range_m", "dori_range_m", "range_source", "assumptions",
                                     "sector_m2", "visible_m2", "geom", "pt"], rows)
    conn.execute(text("""
        INSERT INTO camera_views (camera_id, detail_level, run_id, computed_at, camera_fp, obstacles_fp, settings_fp, device_id,
               district_code, status, counted, shape, azimuth, hfov, range_m, dori_range_m, range_source, assumptions,
               sector_m2, visible_m2, geom, camera_geom)
        SELECT camera_id, :d, :run, :at, camera_fp, obstacles_fp, :sfp, device_id, district_code, status, counted, shape, azimuth,
               hfov, range_m, dori_range_m, range_source, assumptions, sector_m2, visible_m2,
               ST_Multi(ST_Transform(ST_GeomFromEWKB(decode(geom, 'hex')), 4326)),
               ST_Transform(ST_GeomFromEWKB(decode(pt, 'hex')), 4326)
        FROM _views_stage"""), {"d": detail, "run": run_id, "at": at, "sfp": settings_fp})


def _measure(conn: Connection, srid: int, detail: str, unit_codes: set[str] | None,
             fresh_views: pd.DataFrame | None = None, buildings: pd.DataFrame | None = None,
             cams: pd.DataFrame | None = None) -> tuple[gpd.GeoDataFrame, pd.DataFrame, pd.DataFrame]:
    """Measure all units (``unit_codes`` None: every input read whole) or some of them (with
    their neighbours as context and only the inputs around them read)."""
    s = get_settings()
    if unit_codes is None:
        units = read_units(conn, srid)
        roads = _roads(conn, srid)
        buildings = _buildings(conn, srid) if buildings is None else buildings
        places = _key_places(conn, srid)
        cams = read_cameras(conn, srid) if cams is None else cams
        views = fresh_views if fresh_views is not None else _stored_views(conn, srid, detail)
    else:
        target = read_units(conn, srid, unit_codes)
        if target.empty:
            return target, pd.DataFrame(columns=["code", *FIGURES]), pd.DataFrame()
        box = shapely.box(*target.total_bounds).buffer(s.camera_facade_max_m + 5.0)
        env = {"x0": box.bounds[0], "y0": box.bounds[1], "x1": box.bounds[2], "y1": box.bounds[3]}
        near = f"&& ST_Transform(ST_MakeEnvelope(:x0, :y0, :x1, :y1, {srid}), 4326)"
        context = read_units(conn, srid, conn.execute(text(f"SELECT u.code FROM ({UNITS_SQL}) u WHERE u.geom {near}"), env).scalars())
        units = context
        wr, pr = window(conn, "roads", "r", box.bounds, srid)  # the leakproof index (row-level security)
        wb, pb = window(conn, "buildings", "b", box.bounds, srid)
        roads = _roads(conn, srid, f"{wr} AND r.geom {near}", {**env, **pr})
        buildings = _buildings(conn, srid, f"{wb} AND b.geom {near}", {**env, **pb})
        places = _key_places(conn, srid, f"f.geom {near}", env)
        cams = read_cameras(conn, srid, conn.execute(text(f"SELECT id FROM cameras WHERE geom {near}"), env).scalars())
        views = _stored_views(conn, srid, detail, f"v.geom {near}", env)
    cams = cams.assign(counted=cams["status"].eq("online"))
    inner = read_metric(conn, f"""SELECT ST_Buffer(ST_Transform(c.geom, {srid}), -:m) AS geom FROM communities c
                                  WHERE c.code = ANY(:codes)""", srid, {"m": s.camera_inner_road_m,
                                                                       "codes": sorted(set(units["community_code"]))}).geometry.to_numpy()
    fig, key = camera_measure.measure(units, roads, buildings, places, cams, views, step=s.camera_sample_m,
                                      facade_max_m=s.camera_facade_max_m, key_buffer_m=s.camera_key_place_buffer_m,
                                      inner=inner, only=None if unit_codes is None else set(unit_codes))
    return units, fig, key


def _write_units(conn: Connection, detail: str, run_id: int, at, units: gpd.GeoDataFrame, fig: pd.DataFrame,
                 key: pd.DataFrame, settings_fp: str, codes: set[str] | None) -> None:
    """Replace the unit rows (all, or ``codes``) and their key places, then re-sum the
    community and sub-district rows."""
    if codes is None:
        conn.execute(text("DELETE FROM camera_coverage WHERE detail_level = :d"), {"d": detail})
        conn.execute(text("DELETE FROM camera_key_places WHERE detail_level = :d"), {"d": detail})
    else:
        conn.execute(text("DELETE FROM camera_coverage WHERE detail_level = :d AND measured AND code = ANY(:c)"), {"d": detail, "c": sorted(codes)})
        conn.execute(text("DELETE FROM camera_key_places WHERE detail_level = :d AND (unit_code = ANY(:c) OR facility_id = ANY(:f))"),
                     {"d": detail, "c": sorted(codes), "f": key["id"].tolist() if len(key) else []})
    fps = _unit_fps(conn, fig["code"].tolist())
    meta = units.set_index("code")
    rows = []
    for r in fig.itertuples(index=False):
        m = meta.loc[r.code]
        rows.append((detail, m.scope, r.code, m["name"], m.community_code, m.subdistrict_code, True, run_id, at, fps.get(r.code),
                     settings_fp, *(float(getattr(r, f)) for f in FIGURES[:8]), *(int(round(getattr(r, f))) for f in FIGURES[8:])))
    copy_into(conn, "camera_coverage", ["detail_level", "scope", "code", "name", "community_code", "subdistrict_code", "measured",
                                        "run_id", "computed_at", "inputs_fp", "settings_fp", *FIGURES], rows)
    if len(key):
        copy_into(conn, "camera_key_places", ["detail_level", "facility_id", "unit_code", "name", "category", "covered", "cameras",
                                              "run_id", "computed_at"],
                  ((detail, int(r.id), r.unit_code, r.name, r.category, bool(r.covered), list(r.cameras), run_id, at)
                   for r in key.itertuples(index=False)))
    _resum(conn, detail)


def _resum(conn: Connection, detail: str) -> None:
    """Community rows for communities with grids, and sub-district rows: sums of their parts,
    as fresh as their stalest part is old (computed_at = the oldest part's)."""
    sums = ", ".join(f"sum({f})" for f in FIGURES)
    cols = ", ".join(FIGURES)
    conn.execute(text("DELETE FROM camera_coverage WHERE detail_level = :d AND NOT measured"), {"d": detail})
    conn.execute(text(f"""
        INSERT INTO camera_coverage (detail_level, scope, code, name, community_code, subdistrict_code, measured, run_id, computed_at,
                                     settings_fp, {cols})
        SELECT :d, 'community', c.code, c.name, c.code, c.subdistrict_code, false, max(u.run_id), min(u.computed_at), min(u.settings_fp), {sums}
        FROM camera_coverage u JOIN communities c ON c.code = u.community_code
        WHERE u.detail_level = :d AND u.scope = 'grid' GROUP BY c.code"""), {"d": detail})
    conn.execute(text(f"""
        INSERT INTO camera_coverage (detail_level, scope, code, name, subdistrict_code, measured, run_id, computed_at, settings_fp, {cols})
        SELECT :d, 'subdistrict', s.code, s.name, s.code, false, max(u.run_id), min(u.computed_at), min(u.settings_fp), {sums}
        FROM camera_coverage u JOIN subdistricts s ON s.code = u.subdistrict_code
        WHERE u.detail_level = :d AND u.scope = 'community' GROUP BY s.code"""), {"d": detail})


def refresh(conn: Connection, detail: str | None = None, *, full: bool = False, cameras: Iterable[int] | None = None,
            units: Iterable[str] | None = None, timings: dict | None = None) -> dict:
    """Bring the stored camera coverage up to date and say what was recomputed.

    full: recompute everything (also when nothing is stored yet or the settings changed).
    cameras: the fast path after editing these cameras (ids; deleted ones too): their views
    and the units their old and new views touch, nothing else is checked. units: with it,
    units (grid codes) whose own inputs an edit changed (a footprint moved in them), measured
    again too (analysis/coverage_edits.py passes both after editing a building).
    Otherwise every stale view and unit is found (``stale``) and recomputed.
    timings: a dict to receive seconds per step.
    """
    t0 = time.perf_counter()
    timer = Timer(timings)
    detail = detail_level(detail)
    lock(conn, f"cameras.{detail}")
    srid = metric_srid(conn)
    cfg = {**run_settings(detail), "metric_srid": srid}
    cfg_fp = fingerprint(cfg)
    last = last_run(conn, "cameras", detail)
    stored = conn.execute(text("SELECT count(*) FROM camera_coverage WHERE detail_level = :d"), {"d": detail}).scalar_one()
    if full or last is None or last["settings_fp"] != cfg_fp or stored == 0:
        run_id, at = start_run(conn, "cameras", "full", cfg, detail_level=detail)
        cams = read_cameras(conn, srid)
        buildings = _buildings(conn, srid)
        timer.lap("read")
        views = _compute_views(conn, srid, detail, cams, buildings, timer)
        conn.execute(text("DELETE FROM camera_views WHERE detail_level = :d"), {"d": detail})
        _write_views(conn, srid, detail, run_id, at, views, cfg_fp)
        timer.lap("write_views")
        fresh = pd.DataFrame({"camera_id": views["id"], "counted": views["counted"], "shape": views["shape"], "geom": views["geom"]})
        units, fig, key = _measure(conn, srid, detail, None, fresh, buildings, cams)
        timer.lap("measure")
        _write_units(conn, detail, run_id, at, units, fig, key, cfg_fp, None)
        timer.lap("unit_fingerprints_and_write")
        touched = {"cameras": len(views), "units": len(fig), "mode": "full"}
        finish_run(conn, run_id, time.perf_counter() - t0, touched)
        return {"run_id": run_id, "mode": "full", "detail_level": detail, "cameras": len(views), "units": sorted(fig["code"]),
                "seconds": round(time.perf_counter() - t0, 3)}

    if cameras is not None or units is not None:
        changed_cams = {int(c) for c in cameras or ()}
        own_units: set[str] = {str(u).strip() for u in units or ()}
    else:
        st = stale_views(conn, detail)
        changed_cams = set(st.loc[st["stale"], "camera_id"].astype(int))
        us = stale_units(conn, detail, views=st)
        own_units = set(us.loc[us["own_inputs_changed"] | us["missing"], "code"])
        gone = set(us.loc[us["gone"], "code"])
        if gone:
            conn.execute(text("DELETE FROM camera_coverage WHERE detail_level = :d AND measured AND code = ANY(:c)"), {"d": detail, "c": sorted(gone)})
    if not changed_cams and not own_units:
        _resum(conn, detail)
        return {"run_id": None, "mode": "none", "detail_level": detail, "cameras": 0, "units": [], "seconds": round(time.perf_counter() - t0, 3)}
    run_id, at = start_run(conn, "cameras", "incremental", cfg, detail_level=detail)
    ids = sorted(changed_cams)
    # Units the old views (or old positions) touched, before they are replaced.
    touched_units = set(conn.execute(text(f"""
        SELECT u.code FROM ({UNITS_SQL}) u JOIN camera_views v ON v.detail_level = :d AND v.camera_id = ANY(:ids)
        WHERE ST_Intersects(u.geom, v.geom) OR ST_Intersects(u.geom, v.camera_geom)"""), {"d": detail, "ids": ids}).scalars())
    present = read_cameras(conn, srid, ids)
    deleted = sorted(set(ids) - set(present["id"].astype(int)))
    if deleted:
        conn.execute(text("DELETE FROM camera_views WHERE detail_level = :d AND camera_id = ANY(:ids)"), {"d": detail, "ids": deleted})
    if len(present):
        views = _compute_views(conn, srid, detail, present)
        _write_views(conn, srid, detail, run_id, at, views, cfg_fp)
        touched_units |= set(conn.execute(text(f"""
            SELECT u.code FROM ({UNITS_SQL}) u JOIN camera_views v ON v.detail_level = :d AND v.camera_id = ANY(:ids)
            WHERE ST_Intersects(u.geom, v.geom) OR ST_Intersects(u.geom, v.camera_geom)"""), {"d": detail, "ids": ids}).scalars())
    touched_units = {c.strip() for c in touched_units} | own_units
    if touched_units:
        units, fig, key = _measure(conn, srid, detail, touched_units)
        _write_units(conn, detail, run_id, at, units, fig, key, cfg_fp, touched_units)
    else:
        _resum(conn, detail)
    touched = {"cameras": ids, "deleted": deleted, "units": sorted(touched_units), "mode": "incremental"}
    finish_run(conn, run_id, time.perf_counter() - t0, touched)
    return {"run_id": run_id, "mode": "incremental", "detail_level": detail, "cameras": len(ids), "units": sorted(touched_units),
            "seconds": round(time.perf_counter() - t0, 3)}


# --- freshness -----------------------------------------------------------------------------

def stale_views(conn: Connection, detail: str | None = None) -> pd.DataFrame:
    """Per camera (current or stored): is its stored view stale, and why
    (new, deleted, camera changed, footprints in range changed, settings changed)."""
    detail = detail_level(detail)
    cfg_fp = fingerprint({**run_settings(detail), "metric_srid": metric_srid(conn)})
    frame = pd.read_sql(text(f"""
        SELECT coalesce(k.id, v.camera_id) AS camera_id, v.computed_at, k.id IS NULL AS deleted, v.camera_id IS NULL AS new,
               (k.id IS NOT NULL AND v.camera_id IS NOT NULL AND v.camera_fp <> {CAMERA_FP}) AS camera_changed,
               v.obstacles_fp, v.range_m, v.settings_fp <> :sfp AS settings_changed
        FROM cameras k FULL JOIN (SELECT * FROM camera_views WHERE detail_level = :d) v ON v.camera_id = k.id
        ORDER BY 1"""), conn, params={"d": detail, "sfp": cfg_fp})
    check = frame[~frame["deleted"] & ~frame["new"] & ~frame["camera_changed"]]
    now = _obstacles_fp(conn, dict(zip(check["camera_id"].astype(int), check["range_m"].astype(float))))
    frame["obstacles_changed"] = [bool(not (d or n or c)) and now.get(int(i)) != fp
                                  for i, d, n, c, fp in zip(frame["camera_id"], frame["deleted"], frame["new"], frame["camera_changed"], frame["obstacles_fp"])]
    frame["settings_changed"] = frame["settings_changed"].fillna(False).astype(bool)
    frame["stale"] = frame[["deleted", "new", "camera_changed", "obstacles_changed", "settings_changed"]].any(axis=1)
    return frame.drop(columns=["obstacles_fp", "range_m"])


def stale_units(conn: Connection, detail: str | None = None, views: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per measuring unit: stored ``computed_at`` and whether its figure is stale because its
    own inputs changed, a camera view touching it is stale, it is new (missing) or gone."""
    detail = detail_level(detail)
    views = stale_views(conn, detail) if views is None else views
    stored = pd.read_sql(text("SELECT code, computed_at, inputs_fp FROM camera_coverage WHERE detail_level = :d AND measured"),
                         conn, params={"d": detail})
    now = _unit_fps(conn)
    codes = sorted(set(now) | set(stored["code"]))
    frame = pd.DataFrame({"code": pd.Series(codes, dtype=object)})
    frame = frame.merge(stored.astype({"code": object}), on="code", how="left")  # same key type when either side is empty
    frame["missing"] = ~frame["code"].isin(stored["code"])
    frame["gone"] = ~frame["code"].isin(list(now))
    frame["own_inputs_changed"] = [not m and not g and now.get(c) != fp for c, fp, m, g in
                                   zip(frame["code"], frame["inputs_fp"], frame["missing"], frame["gone"])]
    bad = views.loc[views["stale"], "camera_id"].astype(int).tolist()
    touched: set[str] = set()
    if bad:
        touched = {c.strip() for c in conn.execute(text(f"""
            SELECT DISTINCT u.code FROM ({UNITS_SQL}) u
            WHERE EXISTS (SELECT 1 FROM camera_views v WHERE v.detail_level = :d AND v.camera_id = ANY(:ids)
                            AND (ST_Intersects(u.geom, v.geom) OR ST_Intersects(u.geom, v.camera_geom)))
               OR EXISTS (SELECT 1 FROM cameras k WHERE k.id = ANY(:ids) AND ST_DWithin(u.geom::geography, k.geom::geography,
                            (SELECT coalesce(max(range_m), 0) + 2 FROM camera_views WHERE detail_level = :d)))"""),
            {"d": detail, "ids": bad}).scalars()}
    frame["cameras_changed"] = frame["code"].isin(touched)
    frame["stale"] = frame[["missing", "gone", "own_inputs_changed", "cameras_changed"]].any(axis=1)
    return frame.drop(columns="inputs_fp")


# --- reading results (for the dashboard and the CLI) ----------------------------------------

def coverage(conn: Connection, detail: str | None = None, scope: str | None = None, community: str | None = None) -> pd.DataFrame:
    """Stored figures per grid, community and sub-district with shares (0–1)."""
    detail = detail_level(detail)
    frame = pd.read_sql(text("""
        SELECT * FROM camera_coverage WHERE detail_level = :d AND (CAST(:s AS text) IS NULL OR scope = :s)
          AND (CAST(:c AS text) IS NULL OR community_code = :c OR scope = 'subdistrict')
        ORDER BY CASE scope WHEN 'subdistrict' THEN 2 WHEN 'community' THEN 1 ELSE 0 END, code"""),
        conn, params={"d": detail, "s": scope, "c": community})
    for what, whole, part in (("road", "road_m", "road_covered_m"), ("inner_road", "inner_road_m", "inner_road_covered_m"),
                              ("open", "open_m2", "open_covered_m2"),
                              ("facade", "facade_m", "facade_covered_m")):
        frame[f"{what}_share"] = (frame[part] / frame[whole].where(frame[whole] > 0)).round(4)
    frame["key_places_share"] = (frame["key_places_covered"] / frame["key_places"].where(frame["key_places"] > 0)).round(4)
    return frame


def camera_report(conn: Connection, detail: str | None = None, community: str | None = None) -> pd.DataFrame:
    """Per camera: shape, range and where it came from, every assumption made, visible area."""
    detail = detail_level(detail)
    return pd.read_sql(text("""
        SELECT v.camera_id, v.device_id, k.name, v.status, v.counted, v.shape, v.azimuth, v.hfov, v.range_m, v.dori_range_m,
               v.range_source, v.assumptions, round(v.sector_m2::numeric, 2) AS sector_m2, round(v.visible_m2::numeric, 2) AS visible_m2,
               round((1 - v.visible_m2 / nullif(v.sector_m2, 0))::numeric, 3) AS blocked_share, v.computed_at,
               (SELECT c.code FROM communities c WHERE ST_Intersects(c.geom, v.camera_geom) LIMIT 1) AS community_code
        FROM camera_views v LEFT JOIN cameras k ON k.id = v.camera_id
        WHERE v.detail_level = :d ORDER BY v.device_id"""), conn, params={"d": detail}).pipe(
        lambda f: f if community is None else f[f["community_code"] == community].reset_index(drop=True))


def view_layer(conn: Connection, detail: str | None = None, community: str | None = None) -> gpd.GeoDataFrame:
    """The visible areas as a map layer (EPSG:4326)."""
    detail = detail_level(detail)
    return gpd.read_postgis(text("""
        SELECT v.camera_id, v.device_id, v.counted, v.shape, v.range_m, v.geom FROM camera_views v
        WHERE v.detail_level = :d AND v.geom IS NOT NULL
          AND (CAST(:c AS text) IS NULL OR EXISTS (SELECT 1 FROM communities c WHERE c.code = :c AND ST_Intersects(c.geom, v.geom)))
        ORDER BY v.camera_id"""), conn, geom_col="geom", params={"d": detail, "c": community})


def key_places(conn: Connection, detail: str | None = None, community: str | None = None) -> pd.DataFrame:
    """Every key place by name: covered or not, and the cameras that reach it (any status)."""
    detail = detail_level(detail)
    return pd.read_sql(text("""
        SELECT p.facility_id, p.name, p.category, p.unit_code, left(p.unit_code, 12) AS community_code, p.covered, p.cameras, p.computed_at
        FROM camera_key_places p WHERE p.detail_level = :d AND (CAST(:c AS text) IS NULL OR left(p.unit_code, 12) = :c)
        ORDER BY p.covered, p.unit_code, p.name"""), conn, params={"d": detail, "c": community})


def xueliang(conn: Connection, detail: str | None = None) -> pd.DataFrame:
    """雪亮工程 targets per community and sub-district (standards §5, 发改高技〔2015〕996号):
    key public areas 100 % covered; cameras reaching key areas ≥ 98 % serviceable (online).
    Each rule is named with its setting; uncovered key places are listed by name."""
    s = get_settings()
    detail = detail_level(detail)
    cov = coverage(conn, detail)
    cov = cov[cov["scope"].isin(["community", "subdistrict"])]
    places = key_places(conn, detail)
    cams = pd.read_sql(text("""
        SELECT DISTINCT left(p.unit_code, 12) AS community_code, c.cam AS camera_id, k.status
        FROM camera_key_places p CROSS JOIN LATERAL unnest(p.cameras) AS c(cam) JOIN cameras k ON k.id = c.cam
        WHERE p.detail_level = :d"""), conn, params={"d": detail})
    cover_rule = msg("xueliang.covered", v=s.key_places_covered_min)
    service_rule = msg("xueliang.serviceable", v=s.camera_serviceability_min)
    rows = []
    for r in cov.itertuples(index=False):
        mine = places if r.scope == "subdistrict" else places[places["community_code"] == r.code]
        cm = cams if r.scope == "subdistrict" else cams[cams["community_code"] == r.code]
        cm = cm.drop_duplicates("camera_id")
        share = r.key_places_covered / r.key_places if r.key_places else None
        online = (cm["status"] == "online").mean() if len(cm) else None
        rows.append({"scope": r.scope, "code": r.code, "name": r.name, "key_places": r.key_places,
                     "key_places_covered": r.key_places_covered, "key_places_share": None if share is None else round(share, 4),
                     "coverage_rule": cover_rule, "coverage_pass": None if share is None else bool(share >= s.key_places_covered_min - 1e-9),
                     "uncovered": "、".join(mine.loc[~mine["covered"], "name"].fillna("?").astype(str)),
                     "cameras_at_key_places": len(cm), "serviceable_share": None if online is None else round(float(online), 4),
                     "serviceability_rule": service_rule,
                     "serviceability_pass": None if online is None else bool(online >= s.camera_serviceability_min - 1e-9),
                     "computed_at": r.computed_at})
    # the same columns with no rows (nothing measured yet): callers select columns by name
    return pd.DataFrame(rows, columns=["scope", "code", "name", "key_places", "key_places_covered", "key_places_share",
                                       "coverage_rule", "coverage_pass", "uncovered", "cameras_at_key_places",
                                       "serviceable_share", "serviceability_rule", "serviceability_pass", "computed_at"])


def uncovered(conn: Connection, community: str | None = None, detail: str | None = None) -> gpd.GeoDataFrame:
    """Uncovered road stretches and uncovered open space, per unit, as a map layer (EPSG:4326):
    kind ('road' | 'open_space'), unit_code, length_m / area_m2, geometry. Computed from the
    stored views (exact overlay; a community takes well under a second)."""
    detail = detail_level(detail)
    srid = metric_srid(conn)
    codes = None
    if community is not None:
        codes = [c.strip() for c in conn.execute(text(f"SELECT code FROM ({UNITS_SQL}) u WHERE u.community_code = :c"), {"c": community}).scalars()]
    units = read_units(conn, srid, codes)
    rows: list[dict] = []
    if units.empty:
        return gpd.GeoDataFrame(rows, columns=["kind", "unit_code", "length_m", "area_m2", "geometry"], geometry="geometry", crs=4326)
    box = shapely.box(*units.total_bounds)
    env = dict(zip(("x0", "y0", "x1", "y1"), box.bounds))
    near = f"&& ST_Transform(ST_MakeEnvelope(:x0, :y0, :x1, :y1, {srid}), 4326)"
    roads = _roads(conn, srid, f"r.geom {near}", env)
    buildings = _buildings(conn, srid, f"b.geom {near}", env)
    views = _stored_views(conn, srid, detail, f"v.geom {near} AND v.counted AND v.shape <> 'indoor'", env)
    vtree = shapely.STRtree(views["geom"].to_numpy()) if len(views) else None
    btree = shapely.STRtree(buildings["geom"].to_numpy()) if len(buildings) else None
    rtree = shapely.STRtree(roads) if len(roads) else None
    for u in units.itertuples(index=False):
        g = u.geom
        seen = shapely.union_all(views["geom"].to_numpy()[vtree.query(g, predicate="intersects")]) if vtree is not None else shapely.Polygon()
        if rtree is not None:
            lines = shapely.intersection(shapely.union_all(roads[rtree.query(g, predicate="intersects")]), g)
            gap = shapely.line_merge(shapely.difference(lines, seen)) if not lines.is_empty else lines
            if not gap.is_empty and gap.length > 0.5:
                rows.append({"kind": "road", "unit_code": u.code, "length_m": round(gap.length, 1), "area_m2": None, "geometry": gap})
        built = shapely.union_all(buildings["geom"].to_numpy()[btree.query(g, predicate="intersects")]) if btree is not None else shapely.Polygon()
        open_gap = shapely.difference(shapely.difference(g, built), seen)
        if not open_gap.is_empty and open_gap.area > 1:
            rows.append({"kind": "open_space", "unit_code": u.code, "length_m": None, "area_m2": round(open_gap.area, 1), "geometry": open_gap})
    return gpd.GeoDataFrame(rows, columns=["kind", "unit_code", "length_m", "area_m2", "geometry"], geometry="geometry", crs=srid).to_crs(4326)
