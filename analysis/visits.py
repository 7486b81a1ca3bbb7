"""The visit schedule (issue 17): who is due, in what walking order, and recording a visit.

Intervals come from ``visit_intervals`` (a settings table with the source of each value,
migration 0019); a person's next visit is their last visit that met them (or their
registration) plus the shortest interval of their groups at their risk grade. Everything here
reads people through the logging functions of layers/people.py.

The "today" list is ordered as a walk over the street network that the service coverage
builds (analysis/network.py): walking distances between the stops' buildings on the graph
(Dijkstra from each stop's edge ends), then nearest-neighbour from the first stop improved by
2-opt — exact enough for the 5–30 stops of a worker's day, and it never crosses a river
where no bridge is. A stop the network cannot reach is joined by a straight line, and said so.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from layers import people

FAR_STRAIGHT_FACTOR = 1.4  # unreachable on the network: straight line × this (a detour allowance) for ordering


def today() -> date:
    return datetime.now(people.BEIJING).date()


def due(conn: Connection, grid_id: int | None = None, on: date | None = None, channel: str = "app") -> pd.DataFrame:
    """Persons whose next visit is on or before ``on`` (default today, Beijing), with days overdue."""
    on = on or today()
    frame = people.list_people(conn, grid_id=grid_id, due_by=on, channel=channel, reason="走访计划 / visit schedule")
    frame["days_overdue"] = [(on - d).days if d is not None and not pd.isna(d) else 0 for d in frame["next_visit"]]
    return frame


@dataclass
class Route:
    order: list[int]  # row positions of the stops, in walking order
    legs_m: list[float]  # metres walked to reach each stop from the previous (0 for the first)
    straight: list[bool]  # leg not on the network (no connection): a straight line
    line: shapely.Geometry | None  # the walk, WGS-84

    @property
    def total_m(self) -> float:
        return float(sum(self.legs_m))


def route(conn: Connection, building_ids: list[int], start: tuple[float, float] | None = None) -> Route:
    """A walking order through the buildings (one stop per entry; repeated buildings are one stop
    in practice: distance 0). ``start`` (lon, lat) begins the walk nearest to it."""
    from pyproj import Transformer
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import dijkstra

    from analysis import network
    from gis.measure import metric_srid

    n = len(building_ids)
    if n == 0:
        return Route([], [], [], None)
    srid = metric_srid(conn)
    pts = dict((int(r[0]), (r[1], r[2])) for r in conn.execute(text(f"""
        SELECT id, ST_X(p), ST_Y(p) FROM (SELECT id, ST_Transform(ST_PointOnSurface(geom), {srid}) p FROM buildings
         WHERE id = ANY(:ids)) x"""), {"ids": [int(b) for b in building_ids]}))
    xy = np.array([pts.get(int(b), (np.nan, np.nan)) for b in building_ids], dtype=float)
    ok = ~np.isnan(xy).any(axis=1)
    if not ok.any():
        return Route(list(range(n)), [0.0] * n, [True] * n, None)
    xy[~ok] = xy[ok].mean(axis=0)
    x0, y0 = xy.min(axis=0) - 800
    x1, y1 = xy.max(axis=0) + 800
    graph = network.load(conn, srid, bbox=(x0, y0, x1, y1))
    euclid = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    dist = euclid * FAR_STRAIGHT_FACTOR
    straight = np.ones((n, n), dtype=bool)
    pred = None
    snapped = None
    if len(graph.geoms):
        snapped = network.snap(graph, shapely.points(xy))
        ends = np.unique(np.concatenate([graph.u[snapped.edge], graph.v[snapped.edge]]))
        mat = csr_matrix((np.concatenate([graph.length, graph.length]),
                          (np.concatenate([graph.u, graph.v]), np.concatenate([graph.v, graph.u]))),
                         shape=(graph.n_nodes, graph.n_nodes))
        d, pred = dijkstra(mat, directed=False, indices=ends, return_predecessors=True)
        row = {int(k): i for i, k in enumerate(ends)}
        e, p, s = snapped.edge, snapped.pos, snapped.snap_m
        L = graph.length[e]
        for i in range(n):
            for j in range(n):
                if i == j or euclid[i, j] < 0.01:  # the same building: no walk
                    dist[i, j], straight[i, j] = 0.0, False
                    continue
                best = np.inf
                for ni, ci in ((graph.u[e[i]], p[i]), (graph.v[e[i]], L[i] - p[i])):
                    for nj, cj in ((graph.u[e[j]], p[j]), (graph.v[e[j]], L[j] - p[j])):
                        best = min(best, ci + d[row[int(ni)], nj] + cj)
                if e[i] == e[j]:
                    best = min(best, abs(p[i] - p[j]))
                if np.isfinite(best):
                    dist[i, j], straight[i, j] = best + s[i] + s[j], False
    # nearest neighbour from the start, then 2-opt on the open path
    first = int(np.argmin(np.hypot(*(xy - _to_metric(start, srid)).T))) if start else 0
    order, left = [first], set(range(n)) - {first}
    while left:
        nxt = min(left, key=lambda k: dist[order[-1], k])
        order.append(nxt)
        left.discard(nxt)
    improved = True
    while improved and n > 3:
        improved = False
        for a in range(1, n - 1):
            for b in range(a + 1, n):
                before = dist[order[a - 1], order[a]] + (dist[order[b], order[b + 1]] if b + 1 < n else 0)
                after = dist[order[a - 1], order[b]] + (dist[order[a], order[b + 1]] if b + 1 < n else 0)
                if after + 1e-6 < before:
                    order[a:b + 1] = order[a:b + 1][::-1]
                    improved = True
    legs = [0.0] + [float(dist[order[k - 1], order[k]]) for k in range(1, n)]
    flags = [False] + [bool(straight[order[k - 1], order[k]]) for k in range(1, n)]
    line = _route_line(graph, snapped, pred, ends if snapped is not None else None, xy, order, straight, srid)
    return Route(order, legs, flags, line)


def _to_metric(lonlat: tuple[float, float], srid: int) -> np.ndarray:
    from pyproj import Transformer

    t = Transformer.from_crs(4326, srid, always_xy=True)
    return np.array(t.transform(*lonlat))


def _route_line(graph, snapped, pred, ends, xy, order, straight, srid) -> shapely.Geometry | None:
    """The walk as one line in WGS-84: through the network's nodes between stops (a straight
    line where the network has no connection)."""
    from pyproj import Transformer

    coords: list[tuple[float, float]] = [tuple(xy[order[0]])]
    row = {int(k): i for i, k in enumerate(ends)} if ends is not None else {}
    for a, b in zip(order, order[1:]):
        if snapped is not None and pred is not None and not straight[a, b]:
            ea, eb = snapped.edge[a], snapped.edge[b]
            la, lb = graph.length[ea], graph.length[eb]
            options = []
            for na, ca in ((int(graph.u[ea]), snapped.pos[a]), (int(graph.v[ea]), la - snapped.pos[a])):
                for nb, cb in ((int(graph.u[eb]), snapped.pos[b]), (int(graph.v[eb]), lb - snapped.pos[b])):
                    nodes, k, r = [nb], nb, row[na]
                    while k != na and k >= 0:
                        k = int(pred[r, k])
                        nodes.append(k)
                    if k == na:
                        walk = sum(np.hypot(*(graph.node_xy[x] - graph.node_xy[y])) for x, y in zip(nodes, nodes[1:]))
                        options.append((ca + walk + cb, nodes[::-1]))
            if options:
                coords += [tuple(graph.node_xy[k]) for k in min(options, key=lambda o: o[0])[1]]
        coords.append(tuple(xy[b]))
    if len(coords) < 2:
        return None
    t = Transformer.from_crs(srid, 4326, always_xy=True)
    return shapely.linestrings([t.transform(x, y) for x, y in coords])


def today_list(conn: Connection, grid_id: int | None = None, on: date | None = None,
               start: tuple[float, float] | None = None, channel: str = "app") -> tuple[pd.DataFrame, Route]:
    """The worker's list for the day, in walking order, with each leg's metres."""
    frame = due(conn, grid_id, on, channel=channel)
    if frame.empty:
        return frame, Route([], [], [], None)
    r = route(conn, [int(b) if b is not None and not pd.isna(b) else -1 for b in frame["building_id"]], start)
    out = frame.iloc[r.order].reset_index(drop=True)
    out["stop"] = range(1, len(out) + 1)
    out["walk_m"] = [round(v) for v in r.legs_m]
    out["straight"] = r.straight
    return out, r


def stop_points(conn: Connection, frame: pd.DataFrame) -> gpd.GeoDataFrame:
    """The day's stops as points (``id`` = stop number) at their buildings, for the map."""
    ids = [int(b) for b in frame["building_id"].dropna()] if len(frame) else []
    where: dict = {}
    if ids:
        pts = gpd.read_postgis(text("SELECT id, ST_PointOnSurface(geom) AS geom FROM buildings WHERE id = ANY(:ids)"), conn,
                               geom_col="geom", params={"ids": ids})
        where = dict(zip(pts["id"], pts.geometry))
    return gpd.GeoDataFrame({"id": list(frame["stop"]) if len(frame) else []},
                            geometry=[where.get(b) for b in frame["building_id"]] if len(frame) else [], crs=4326)


def record(conn: Connection, person_id: int, outcome: str, note: str | None = None, at: datetime | None = None,
           lon: float | None = None, lat: float | None = None, channel: str = "app") -> dict:
    """Record one visit (time, outcome, note, the device's place if it gave one); flagged when
    farther than ``WANGGE_VISIT_FAR_M`` from the person's building."""
    from gis.settings import get_settings

    if outcome not in people.OUTCOMES:
        raise people.PeopleError(f"unknown outcome {outcome!r}")
    row = conn.execute(text("""SELECT * FROM visit_record(:p, :at, :o, :n, CAST(:lon AS float8), CAST(:lat AS float8), :far, :ch)"""),
                       {"p": int(person_id), "at": at or datetime.now(people.BEIJING), "o": outcome, "n": note, "lon": lon,
                        "lat": lat, "far": get_settings().visit_far_m, "ch": channel}).one()
    return {"visit_id": int(row.visit_id), "distance_m": None if row.distance_m is None else round(float(row.distance_m), 1),
            "far": bool(row.far)}


OUTCOME_WORDS = {"见面": "met", "见到本人": "met", "已见面": "met", "未见": "absent", "未见到": "absent", "不在家": "absent",
                 "拒绝": "refused", "拒访": "refused", "met": "met", "absent": "absent", "refused": "refused"}
VISIT_HEADERS = {"人员编号": "person_id", "person_id": "person_id", "身份证号": "id_number", "id_number": "id_number",
                 "走访时间": "at", "时间": "at", "visited_at": "at", "结果": "outcome", "走访结果": "outcome", "outcome": "outcome",
                 "备注": "note", "情况": "note", "note": "note", "走访人": "visitor", "visitor": "visitor",
                 "经度": "lon", "lon": "lon", "纬度": "lat", "lat": "lat"}


def import_visits(path: str | Path, crs: str | None = None, *, conn: Connection | None = None) -> dict:
    """Past visits from a file (人员编号 or 身份证号, 走访时间, 结果, 备注, 走访人, 经度/纬度), all or nothing;
    ``crs='gcj02'`` converts AMap coordinates. Runs as the system (the CLI)."""
    from gis.crs import unshift
    from gis.problems import ImportFailed, Problem
    from gis.settings import get_settings

    path = Path(path)
    frame = people.read_table(path)
    frame = frame.rename(columns={c: VISIT_HEADERS[str(c).strip()] for c in frame.columns if str(c).strip() in VISIT_HEADERS})
    problems: list[Problem] = []
    if "at" not in frame.columns or "outcome" not in frame.columns or not ({"person_id", "id_number"} & set(frame.columns)):
        raise ImportFailed([Problem(path.name, "须有列：人员编号或身份证号、走访时间、结果 / needs columns 人员编号 or 身份证号, 走访时间, 结果")])
    rows = []
    with (people.owner_transaction() if conn is None else people._nullctx(conn)) as c:
        for i, r in enumerate(frame.to_dict("records"), start=2):
            pid = None
            try:
                if str(r.get("person_id") or "").strip():
                    pid = int(str(r["person_id"]).strip())
                else:
                    idn = people.validate_id(r.get("id_number"))
                    pid = c.execute(text("SELECT id FROM persons WHERE id_hash = :h"), {"h": people.keyed_hash(idn)}).scalar()
                if pid is None or c.execute(text("SELECT count(*) FROM persons WHERE id = :p AND anonymised_at IS NULL"),
                                            {"p": pid}).scalar_one() == 0:
                    raise ValueError("找不到此人 / no such person in the register")
                at = pd.to_datetime(str(r.get("at")).strip(), errors="coerce")
                if pd.isna(at):
                    raise ValueError("走访时间无法识别 / visit time is not a date and time")
                if at.tzinfo is None:
                    at = at.tz_localize("Asia/Shanghai")
                if at > pd.Timestamp.now(tz="Asia/Shanghai") + pd.Timedelta(minutes=10):
                    raise ValueError("走访时间在将来 / visit time is in the future")
                outcome = OUTCOME_WORDS.get(str(r.get("outcome") or "").strip())
                if outcome is None:
                    raise ValueError("结果应为 见面/未见/拒绝 / outcome must be 见面, 未见 or 拒绝")
                lon = lat = None
                if str(r.get("lon") or "").strip() and str(r.get("lat") or "").strip():
                    lon, lat = float(r["lon"]), float(r["lat"])
                    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                        raise ValueError("经纬度超出范围 / coordinates out of range")
                    if crs and crs.lower().replace("-", "") in ("gcj02", "bd09"):
                        p = unshift(np.array([shapely.Point(lon, lat)], dtype=object), "GCJ-02" if "gcj" in crs.lower() else "BD-09")[0]
                        lon, lat = p.x, p.y
                rows.append({"p": pid, "at": at.to_pydatetime(), "o": outcome, "n": str(r.get("note") or "").strip() or None,
                             "v": str(r.get("visitor") or "").strip() or "import", "lon": lon, "lat": lat})
            except ValueError as exc:
                problems.append(Problem(path.name, str(exc), row=i, source_id=str(pid) if pid else None))
        if problems:
            raise ImportFailed(problems)
        far_m = get_settings().visit_far_m
        far = 0
        for v in rows:
            far += bool(c.execute(text("""
                INSERT INTO visits (person_id, visited_at, visitor, outcome, note, geom, distance_m, far)
                SELECT :p, :at, :v, :o, :n, pt, d, coalesce(d > :far, false)
                  FROM (SELECT CASE WHEN CAST(:lon AS float8) IS NULL THEN NULL
                                    ELSE ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) END AS pt) q
                  LEFT JOIN LATERAL (SELECT ST_Distance(q.pt::geography, b.geom::geography)::real AS d
                                       FROM persons x JOIN buildings b ON b.id = x.building_id WHERE x.id = :p) dd ON true
                RETURNING far"""), {**v, "far": far_m}).scalar_one())
            if v["o"] == "met":
                c.execute(text("UPDATE persons SET last_visit_at = greatest(coalesce(last_visit_at, :at), :at) WHERE id = :p"), v)
        c.execute(text("SELECT people_log(CAST(:ids AS bigint[]), 'visit', 'import', 'cli')"),
                  {"ids": sorted({v["p"] for v in rows})})
    return {"file": path.name, "visits": len(rows), "far": int(far)}


def overdue_by_grid(conn: Connection, on: date | None = None) -> pd.DataFrame:
    """Per grid: persons on a schedule, due today, overdue and the overdue rate (counts only)."""
    frame = people.counts(conn, "grid", on)
    frame["overdue_rate"] = [round(o / s, 4) if s else 0.0 for o, s in zip(frame["overdue"], frame["scheduled"])]
    return frame


def overdue_band(overdue: int, scheduled: int, bands: list[float] | None = None) -> str:
    """A grid's overdue-rate band for the map: ``none`` (nobody on a schedule), ``zero``, ``low``
    (up to the first of ``WANGGE_VISIT_OVERDUE_BANDS``), ``mid`` (up to the second), ``high``."""
    from gis.settings import get_settings

    lo, hi = bands or get_settings().visit_overdue_bands
    if not scheduled:
        return "none"
    if not overdue:
        return "zero"
    rate = overdue / scheduled
    return "low" if rate <= lo + 1e-9 else "mid" if rate <= hi + 1e-9 else "high"


def count_bands(counts: pd.Series) -> tuple[list[str], tuple[int, int]]:
    """Overdue counts in bands (``zero``; ``low`` up to the median of the grids that have any,
    ``mid`` up to their upper quartile, ``high`` above) and the two limits."""
    pos = counts[counts > 0]
    q1, q2 = (int(np.ceil(pos.quantile(0.5))), int(np.ceil(pos.quantile(0.75)))) if len(pos) else (0, 0)
    return ["zero" if n == 0 else "low" if n <= q1 else "mid" if n <= q2 else "high" for n in counts], (q1, q2)


def overdue_grids(conn: Connection, community: str | None = None, grid_ids: list[int] | None = None,
                  on: date | None = None) -> gpd.GeoDataFrame:
    """The current grids (of one community, or these ids, or all the caller may see) with their
    overdue visits: persons on a schedule, due today, overdue, the rate and its band. The counts
    come from ``people_counts`` (migration 0019), the owner's function that returns counts only,
    for the caller's area whatever their role: no person's record is read (nothing is logged)."""
    on = on or today()
    frame = gpd.read_postgis(text("""
        SELECT g.id, g.code::text AS code, g.name AS grid_name, g.community_code::text AS community_code,
               coalesce(c.persons, 0) AS persons, coalesce(c.scheduled, 0) AS scheduled,
               coalesce(c.due_today, 0) AS due_today, coalesce(c.overdue, 0) AS overdue, g.geom
          FROM grids g LEFT JOIN people_counts('grid', CAST(:d AS date)) c ON c.code = g.code::text
         WHERE g.valid_to IS NULL
           AND (CAST(:com AS text) IS NULL OR g.community_code = CAST(:com AS text))
           AND (CAST(:ids AS bigint[]) IS NULL OR g.id = ANY(CAST(:ids AS bigint[])))
         ORDER BY g.code"""), conn, geom_col="geom",
        params={"d": on, "com": community, "ids": [int(i) for i in grid_ids] if grid_ids is not None else None})
    frame["overdue_rate"] = [round(o / s, 4) if s else None for o, s in zip(frame["overdue"], frame["scheduled"])]
    frame["rate_band"] = [overdue_band(int(o), int(s)) for o, s in zip(frame["overdue"], frame["scheduled"])]
    frame["count_band"] = count_bands(frame["overdue"])[0] if len(frame) else []
    return frame


def overdue_communities(conn: Connection, on: date | None = None) -> gpd.GeoDataFrame:
    """The communities the caller may see with their overdue visits, in the columns of
    :func:`overdue_grids` (``grid_name`` holds the community's name, ``id`` a serial): the map of a
    whole city, where 50,000 grid outlines would be tens of megabytes in the page. The counts are
    ``people_counts('community')``: counts only, nothing logged, as for the grids."""
    on = on or today()
    frame = gpd.read_postgis(text("""
        SELECT row_number() OVER (ORDER BY c.code) AS id, c.code::text AS code, c.name AS grid_name, c.code::text AS community_code,
               coalesce(pc.persons, 0) AS persons, coalesce(pc.scheduled, 0) AS scheduled,
               coalesce(pc.due_today, 0) AS due_today, coalesce(pc.overdue, 0) AS overdue, c.geom
          FROM communities c LEFT JOIN people_counts('community', CAST(:d AS date)) pc ON pc.code = c.code::text
         WHERE c.geom IS NOT NULL
         ORDER BY c.code"""), conn, geom_col="geom", params={"d": on})
    frame["overdue_rate"] = [round(o / s, 4) if s else None for o, s in zip(frame["overdue"], frame["scheduled"])]
    frame["rate_band"] = [overdue_band(int(o), int(s)) for o, s in zip(frame["overdue"], frame["scheduled"])]
    frame["count_band"] = count_bands(frame["overdue"])[0] if len(frame) else []
    return frame


DAYS_BANDS = (7, 30)  # a building's most overdue person: up to a week late, up to a month, more


def overdue_buildings(conn: Connection, due: pd.DataFrame) -> gpd.GeoDataFrame:
    """The buildings of a worker's overdue people (from their due list, already read and logged):
    footprint, address, how many people are overdue there and the longest delay, in bands
    (``low`` ≤ 7 days, ``mid`` ≤ 30, ``high`` more). Counts only: no name leaves the list."""
    late = due[(due["days_overdue"] > 0) & due["building_id"].notna()] if len(due) else due
    if late is None or late.empty:
        return gpd.GeoDataFrame({"id": [], "address": [], "overdue": [], "max_days": [], "band": []},
                                geometry=[], crs=4326)
    per = late.groupby(late["building_id"].astype(int)).agg(overdue=("id", "count"), max_days=("days_overdue", "max")).reset_index()
    shapes = gpd.read_postgis(text("SELECT id, address, geom FROM buildings WHERE id = ANY(:ids)"), conn, geom_col="geom",
                              params={"ids": [int(b) for b in per["building_id"]]})
    out = shapes.merge(per, left_on="id", right_on="building_id").drop(columns=["building_id"])
    out["band"] = ["low" if d <= DAYS_BANDS[0] else "mid" if d <= DAYS_BANDS[1] else "high" for d in out["max_days"]]
    return out


def building_shapes(conn: Connection, building_ids: list[int]) -> gpd.GeoDataFrame:
    """Footprints and addresses of these buildings (a person's home on the visit map)."""
    ids = [int(b) for b in building_ids if b is not None and not pd.isna(b)]
    return gpd.read_postgis(text("SELECT id, address, geom FROM buildings WHERE id = ANY(:ids)"), conn, geom_col="geom",
                            params={"ids": ids})
