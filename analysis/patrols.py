"""Patrol tracks and patrol coverage (issue 17, standards §2).

巡查覆盖率 = households in buildings within ``WANGGE_PATROL_DISTANCE_M`` of a track of the period
÷ households in the grid, judged in the bands ≥95 / 90–94 / 85–89 % (``WANGGE_PATROL_BANDS``);
beside it the street length covered (walkable roads of the grid inside the same distance of a
track) and the patrol hours per worker and day (fixes at most ``WANGGE_PATROL_GAP_S`` apart
count; at least ``WANGGE_PATROL_MIN_HOURS`` a day). Coverage is computed in the database by
``patrol_coverage`` (migration 0019), which returns figures only (tracks are whereabouts,
PIPL Art. 28: a leader sees figures, a worker their grid's tracks, a secretary their community's).

Tracks come from GPX (GDAL's GPX driver inside pyogrio) or CSV of time/lon/lat; GCJ-02 (AMap)
or BD-09 tracks are converted back to WGS-84 (gis/crs.py) before anything is stored.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from gis.problems import ImportFailed, Problem
from gis.settings import get_settings

TIME_COLS = ("时间", "定位时间", "time", "timestamp", "datetime")
LON_COLS = ("经度", "lon", "lng", "longitude", "x")
LAT_COLS = ("纬度", "lat", "latitude", "y")


def read_fixes(path: str | Path, crs: str | None = None) -> pd.DataFrame:
    """Fixes (time as Beijing-aware timestamps, lon, lat in WGS-84), sorted by time."""
    path = Path(path)
    if path.suffix.lower() == ".gpx":
        import pyogrio

        try:
            gdf = pyogrio.read_dataframe(path, layer="track_points")
        except Exception as exc:  # noqa: BLE001 - GDAL says what is wrong with the file
            raise ImportFailed([Problem(path.name, f"无法读取GPX轨迹点 / cannot read the GPX track points: {exc}")]) from None
        frame = pd.DataFrame({"time": gdf.get("time"), "lon": gdf.geometry.x, "lat": gdf.geometry.y})
    else:
        from layers.people import read_table

        raw = read_table(path)
        cols = {str(c).strip().lower(): c for c in raw.columns}
        pick = lambda names: next((cols[n.lower()] for n in names if n.lower() in cols), None)  # noqa: E731
        t, x, y = pick(TIME_COLS), pick(LON_COLS), pick(LAT_COLS)
        if t is None or x is None or y is None:
            raise ImportFailed([Problem(path.name, "须有列：时间、经度、纬度 / needs columns time, lon, lat")])
        frame = pd.DataFrame({"time": raw[t], "lon": pd.to_numeric(raw[x], errors="coerce"),
                              "lat": pd.to_numeric(raw[y], errors="coerce")})
    return _checked(frame, path.name, crs, first_row=2)


def _checked(frame: pd.DataFrame, source: str, crs: str | None, first_row: int) -> pd.DataFrame:
    """The validation every track goes through, from a file or from the phone: each time a date
    and time, each fix's coordinates present and in range (every bad row named), times without a
    zone read as Beijing time, GCJ-02/BD-09 converted to WGS-84; sorted by time."""
    problems: list[Problem] = []
    times = pd.to_datetime(frame["time"], errors="coerce", utc=False)
    for i in np.flatnonzero(times.isna().to_numpy()):
        problems.append(Problem(source, "时间无法识别 / time is not a date and time", row=int(i) + first_row))
    bad = frame["lon"].isna() | frame["lat"].isna() | ~frame["lon"].between(-180, 180) | ~frame["lat"].between(-90, 90)
    for i in np.flatnonzero(bad.to_numpy()):
        problems.append(Problem(source, "经纬度缺失或超出范围 / coordinates missing or out of range", row=int(i) + first_row))
    if problems:
        raise ImportFailed(problems)
    if getattr(times.dt, "tz", None) is None:
        times = times.dt.tz_localize("Asia/Shanghai")
    frame = frame.assign(time=times.dt.tz_convert("Asia/Shanghai"))
    if crs and crs.lower().replace("-", "") in ("gcj02", "bd09"):
        from gis.crs import unshift

        pts = unshift(shapely.points(frame[["lon", "lat"]].to_numpy()), "GCJ-02" if "gcj" in crs.lower() else "BD-09")
        frame["lon"], frame["lat"] = shapely.get_x(pts), shapely.get_y(pts)
    elif crs and crs.upper() not in ("EPSG:4326", "4326", "WGS84", "EPSG:4490", "4490"):
        raise ImportFailed([Problem(source, f"轨迹坐标系只支持 WGS-84、CGCS2000、gcj02、bd09，而不是 {crs} / unsupported CRS")])
    return frame.sort_values("time").reset_index(drop=True)


DEVICE_SOURCE = "手机定位"  # source_file of a track recorded in the browser (the screens name it so)


def device_fixes(records: list[dict], max_accuracy_m: float | None = None) -> tuple[pd.DataFrame, int]:
    """Fixes the phone's browser collected (``navigator.geolocation.watchPosition``: ``t`` epoch
    milliseconds, ``lon``, ``lat``, ``acc`` metres) as a track's fixes, through the same checks
    as a file's; fixes less precise than ``WANGGE_PATROL_FIX_ACCURACY_M`` (a phone without
    satellites reports its cell tower, hundreds of metres off) are left out and counted."""
    limit = get_settings().patrol_fix_accuracy_m if max_accuracy_m is None else max_accuracy_m
    frame = pd.DataFrame.from_records(list(records or []), columns=["t", "lon", "lat", "acc"])
    for col in ("t", "lon", "lat", "acc"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    # epoch milliseconds (UTC) as instants; a time outside 2000..2100 is no time
    ok_t = frame["t"].between(946684800000, 4102444800000)
    frame["time"] = pd.to_datetime(frame["t"].where(ok_t), unit="ms", utc=True)
    imprecise = frame["acc"].notna() & (frame["acc"] > limit)
    kept = frame[~imprecise].reset_index(drop=True)
    if len(kept) == 0:
        return kept[["time", "lon", "lat"]], int(imprecise.sum())
    return _checked(kept[["time", "lon", "lat"]], DEVICE_SOURCE, None, first_row=1), int(imprecise.sum())


@dataclass
class TrackDay:
    day: date
    started_at: pd.Timestamp
    ended_at: pd.Timestamp
    fixes: int
    active_s: float
    length_m: float
    line: shapely.LineString


def split_days(fixes: pd.DataFrame, gap_s: float | None = None) -> list[TrackDay]:
    """One track per Beijing day; patrol time counts only steps at most ``gap_s`` apart."""
    from pyproj import Geod

    gap = get_settings().patrol_gap_s if gap_s is None else gap_s
    geod = Geod(ellps="WGS84")
    out = []
    for day, part in fixes.groupby(fixes["time"].dt.date):
        xy = part[["lon", "lat"]].to_numpy()
        keep = np.r_[True, (np.abs(np.diff(xy, axis=0)) > 0).any(axis=1)]
        if keep.sum() < 2:
            continue
        dt = part["time"].diff().dt.total_seconds().to_numpy()[1:]
        active = float(dt[dt <= gap].sum())
        _, _, dist = geod.inv(xy[:-1, 0], xy[:-1, 1], xy[1:, 0], xy[1:, 1])
        out.append(TrackDay(day, part["time"].iloc[0], part["time"].iloc[-1], int(len(part)), active,
                            float(np.sum(dist)), shapely.LineString(xy[keep])))
    return out


@dataclass
class TrackReport:
    file: str
    cadre_no: str
    tracks: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"file": self.file, "cadre_no": self.cadre_no, "tracks": self.tracks}


def import_track(path: str | Path, cadre_no: str, crs: str | None = None, *, conn: Connection | None = None) -> TrackReport:
    """Store a worker's track (one row per day), all or nothing; the grids it passes are noted
    so that row-level security can give it to that grid's worker and community's secretary."""
    from layers import audit
    from layers.people import _nullctx, owner_transaction

    path = Path(path)
    fixes = read_fixes(path, crs)
    days = split_days(fixes)
    if not days:
        raise ImportFailed([Problem(path.name, "轨迹少于两个不同位置 / the track has fewer than two distinct fixes")])
    report = TrackReport(path.name, cadre_no)
    with (owner_transaction() if conn is None else _nullctx(conn)) as c:
        cadre = c.execute(text("SELECT district_code FROM cadres WHERE cadre_no = :n"), {"n": cadre_no}).first()
        if cadre is None:
            raise ImportFailed([Problem(path.name, f"找不到干部编号 {cadre_no}（先导入干部） / no such cadre", source_id=cadre_no)])
        report.tracks = store_days(c, days, cadre_no, cadre.district_code, path.name, "cli")
        audit.record(c, "import_patrol", "patrol_tracks", row_key=cadre_no,
                     after={"file": path.name, "tracks": len(report.tracks)})
    return report


def store_days(c: Connection, days: list[TrackDay], cadre_no: str, district_code: str, source: str, by: str) -> list[dict]:
    """Insert one ``patrol_tracks`` row per Beijing day (its segments are cut by the table's
    trigger, which is what coverage reads), noting the grids and communities the track passes
    within ``WANGGE_PATROL_DISTANCE_M``: row-level security gives the track to those grids'
    workers and communities' secretaries, and refuses a worker's track that passes none of theirs."""
    d_m = get_settings().patrol_distance_m
    out = []
    for t in days:
        row = c.execute(text("""
            WITH tr AS (SELECT ST_SetSRID(ST_GeomFromText(:wkt), 4326) AS geom),
                 g AS (SELECT array_agg(g.id ORDER BY g.id) AS ids, array_agg(DISTINCT g.community_code) AS coms
                         FROM grids g, tr WHERE g.valid_to IS NULL AND g.geom && ST_Expand(tr.geom, 0.001)
                          AND ST_DWithin(g.geom::geography, tr.geom::geography, :d))
            INSERT INTO patrol_tracks (district_code, cadre_no, day, started_at, ended_at, fixes, active_s, length_m,
                                       grid_ids, community_codes, source_file, imported_by, geom)
            SELECT :dist, :cadre, :day, :s, :e, :n, :act, :len, coalesce(g.ids, '{}'), coalesce(g.coms, '{}'),
                   :file, :by, tr.geom FROM tr, g
            RETURNING id, cardinality(grid_ids)"""),
            {"wkt": t.line.wkt, "d": d_m, "dist": district_code, "cadre": cadre_no, "day": t.day,
             "s": t.started_at.to_pydatetime(), "e": t.ended_at.to_pydatetime(), "n": t.fixes, "act": t.active_s,
             "len": t.length_m, "file": source, "by": by}).one()
        out.append({"id": int(row[0]), "day": t.day.isoformat(), "fixes": t.fixes,
                    "hours": round(t.active_s / 3600, 2), "length_m": round(t.length_m, 1), "grids": int(row[1])})
    return out


def record_track(conn: Connection, records: list[dict], grid_id: int, username: str) -> dict:
    """A patrol recorded in the phone's browser, stored exactly as an imported track (the same
    checks, one track per Beijing day, the same segments and coverage), in the caller's own
    transaction under their signed scope: the database refuses a track that passes none of the
    caller's grids. The worker is the grid's full-time worker (their cadre number, as an import
    names it), or the signed-in user where the grid has none on record."""
    from gis.scope import current
    from layers import audit
    from layers.cadres import grid_staff

    fixes, imprecise = device_fixes(records)
    days = split_days(fixes) if len(fixes) else []
    if not days:
        raise ImportFailed([Problem(DEVICE_SOURCE, "轨迹少于两个不同位置 / the track has fewer than two distinct fixes")])
    grid = conn.execute(text("SELECT district_code FROM grids WHERE id = :g AND valid_to IS NULL"), {"g": int(grid_id)}).first()
    if grid is None:
        raise ImportFailed([Problem(DEVICE_SOURCE, "找不到网格 / no such grid", source_id=str(grid_id))])
    scope = current()
    if scope is not None and scope.role == "worker":  # the database refuses it too (row-level security); said plainly here
        passed = conn.execute(text("""
            SELECT array_agg(g.id) FROM grids g, (SELECT ST_SetSRID(ST_GeomFromText(:wkt), 4326) AS geom) tr
             WHERE g.valid_to IS NULL AND g.geom && ST_Expand(tr.geom, 0.001) AND ST_DWithin(g.geom::geography, tr.geom::geography, :d)"""),
            {"wkt": shapely.MultiLineString([t.line for t in days]).wkt, "d": get_settings().patrol_distance_m}).scalar() or []
        if not set(int(g) for g in passed) & set(int(g) for g in scope.grids):
            raise ImportFailed([Problem(DEVICE_SOURCE, "轨迹没有经过您负责的网格，未保存 / the track passes none of your grids: not stored")])
    staff = grid_staff(conn, int(grid_id))
    workers = staff[staff["role"] == "full_time_worker"]["cadre_no"] if len(staff) else []
    cadre_no = str(workers.iloc[0]) if len(workers) else username
    tracks = store_days(conn, days, cadre_no, grid.district_code, DEVICE_SOURCE, username)
    audit.record(conn, "record_patrol", "patrol_tracks", row_key=cadre_no,
                 after={"tracks": len(tracks), "fixes": int(len(fixes))})  # (the action says it came from a phone)
    return {"cadre_no": cadre_no, "tracks": tracks, "fixes": int(len(fixes)), "imprecise": imprecise}


def band(share: float | None) -> str:
    """'band_1' ≥95 %, 'band_2' 90–94 %, 'band_3' 85–89 %, 'below' under (standards §2, practice)."""
    if share is None or share != share:  # None or NaN: a grid without households
        return "none"
    for k, lim in enumerate(get_settings().patrol_bands, start=1):
        if share + 1e-9 >= lim:
            return f"band_{k}"
    return "below"


def coverage(conn: Connection, start: date, end: date, distance_m: float | None = None) -> pd.DataFrame:
    """Per grid of the caller's area: households covered, share, band, street metres covered."""
    d = get_settings().patrol_distance_m if distance_m is None else distance_m
    frame = pd.read_sql(text("SELECT * FROM patrol_coverage(:a, :b, :d)"), conn, params={"a": start, "b": end, "d": float(d)})
    frame["share"] = [round(c / h, 4) if h else None for c, h in zip(frame["households_covered"], frame["households"])]
    frame["street_share"] = [round(c / s, 4) if s else None for c, s in zip(frame["street_covered_m"], frame["street_m"])]
    frame["band"] = [band(s) for s in frame["share"]]
    for col in ("street_m", "street_covered_m"):
        frame[col] = frame[col].round(1)
    return frame


def hours(conn: Connection, start: date, end: date) -> pd.DataFrame:
    """Patrol hours per worker and day, against the daily minimum."""
    frame = pd.read_sql(text("SELECT * FROM patrol_hours(:a, :b)"), conn, params={"a": start, "b": end})
    frame["hours"] = frame["hours"].round(2)
    frame["meets_minimum"] = frame["hours"] >= get_settings().patrol_min_hours
    return frame


def grid_map(conn: Connection, grid_id: int, start: date, end: date, distance_m: float | None = None):
    """The tracks over one grid in the period and the buildings not patrolled (for a map); the
    tracks come through row-level security (their worker, their secretary)."""
    import geopandas as gpd

    d = get_settings().patrol_distance_m if distance_m is None else distance_m
    tracks = gpd.read_postgis(text("""SELECT id, cadre_no, day, geom FROM patrol_tracks
                                       WHERE :g = ANY(grid_ids) AND day BETWEEN :a AND :b ORDER BY day, id"""),
                              conn, geom_col="geom", params={"g": grid_id, "a": start, "b": end})
    missed = gpd.read_postgis(text("""
        SELECT b.id, b.address, b.households, b.geom FROM buildings b
         WHERE b.grid_id = :g AND NOT EXISTS (
           SELECT 1 FROM patrol_tracks t WHERE :g = ANY(t.grid_ids) AND t.day BETWEEN :a AND :b
              AND t.geom && ST_Expand(b.geom, :d / 80000.0) AND ST_DWithin(t.geom::geography, b.geom::geography, :d))"""),
        conn, geom_col="geom", params={"g": grid_id, "a": start, "b": end, "d": float(d)})
    return tracks, missed
