"""One edit's coverage refresh: after moving a camera, adding or moving a facility, or changing
a building, bring the three stored coverage analyses (camera views and their units, walking
distances to services, compliance per community) up to date by recomputing only what that edit
can change, without the city-wide staleness checks.

Why a separate path: each analysis can find its own stale parts (``refresh()`` without ids),
but finding them fingerprints every camera's obstacles, every home and every unit of the city:
seconds to minutes at 1,000,000 buildings. An editor knows what it edited; from the ids this
module derives the reach of the edit:

- cameras: the edited cameras, and the cameras whose range reaches an edited footprint (its
  place now and, if it moved or went, where it was: ``before``); units (grids) the edited
  footprints lie in, since a unit's open space and facades depend on them;
- services: the edited facilities and homes (``services.refresh(facilities=, buildings=)``:
  homes within ``service_search_max_m`` of a facility's old or new place, and the edited homes);
- compliance: the communities of the edited facilities and buildings, where they are and where
  they were (a facility's former place is its stored ``service_facilities`` point).

``before``: building id → its footprint before the edit (EPSG:4326 WKT, WKB or a shapely
geometry), needed only when a footprint moved or was deleted; attribute edits (households,
use) need none. The result equals a full recompute after the same edit
(tests/test_coverage_edits.py checks it on a generated city).
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

import shapely
from sqlalchemy import Connection, text

from analysis import cameras as camera_cov
from analysis import compliance, services
from analysis.runs import UNITS_SQL, Timer


def _wkb(geom) -> bytes:
    if isinstance(geom, (bytes, bytearray, memoryview)):
        return bytes(geom)
    if isinstance(geom, str):
        geom = shapely.from_wkt(geom)
    return shapely.to_wkb(geom)


def refresh_after_edit(conn: Connection, *, cameras: Iterable[int] = (), facilities: Iterable[int] = (),
                       buildings: Iterable[int] = (), before: Mapping[int, object] | None = None,
                       detail: str | None = None, timings: dict | None = None) -> dict:
    """Refresh the stored coverage after an edit of these features (ids; deleted ones too)."""
    t0 = time.perf_counter()
    timer = Timer(timings)
    cam_ids = sorted({int(c) for c in cameras})
    fac_ids = sorted({int(f) for f in facilities})
    bld_ids = sorted({int(b) for b in buildings})
    old = [_wkb(g) for g in (before or {}).values() if g is not None]
    places = """(SELECT geom FROM buildings WHERE id = ANY(:b)
                 UNION ALL SELECT ST_SetSRID(ST_GeomFromWKB(w), 4326) FROM unnest(CAST(:old AS bytea[])) w)"""
    params = {"b": bld_ids, "old": old}
    near_cams: list[int] = []
    units: list[str] = []
    detail_ = camera_cov.detail_level(detail)
    if bld_ids or old:
        near_cams = [int(i) for i in conn.execute(text(f"""
            SELECT DISTINCT v.camera_id FROM {places} p
            JOIN cameras k ON ST_DWithin(k.geom_3857, ST_Transform(p.geom, 3857), (
                   (SELECT coalesce(max(range_m), 0) FROM camera_views WHERE detail_level = :d) + 2.0) / cos(radians(ST_Y(k.geom))))
            JOIN camera_views v ON v.camera_id = k.id AND v.detail_level = :d
            WHERE ST_DWithin(k.geom_3857, ST_Transform(p.geom, 3857), (v.range_m + 2.0) / cos(radians(ST_Y(k.geom))))"""),
            {**params, "d": detail_}).scalars()]
    if bld_ids or old or fac_ids:
        # a unit's own inputs: the footprints and facilities in it (where they are and were;
        # a facility's former unit is where its key place or its service point was stored)
        units = sorted({str(c).strip() for c in conn.execute(text(f"""
            SELECT u.code FROM ({UNITS_SQL}) u JOIN (
                {places} UNION ALL SELECT geom FROM facilities WHERE id = ANY(:f)
                UNION ALL SELECT geom FROM service_facilities WHERE facility_id = ANY(:f)) p
              ON u.geom && p.geom AND ST_Intersects(u.geom, p.geom)
            UNION SELECT unit_code FROM camera_key_places WHERE detail_level = :d AND facility_id = ANY(:f) AND unit_code IS NOT NULL"""),
            {**params, "f": fac_ids, "d": detail_}).scalars()})
    timer.lap("reach")
    out: dict = {"cameras_near_buildings": near_cams, "units_of_buildings": units}
    if cam_ids or near_cams or units:
        out["cameras"] = camera_cov.refresh(conn, detail, cameras=sorted(set(cam_ids) | set(near_cams)), units=units)
    timer.lap("cameras")
    if fac_ids or bld_ids:
        out["services"] = services.refresh(conn, facilities=fac_ids, buildings=bld_ids)
    timer.lap("services")
    communities = set()
    if fac_ids or bld_ids or old:
        communities = {str(c).strip() for c in conn.execute(text(f"""
            SELECT community_code FROM facilities WHERE id = ANY(:f) AND community_code IS NOT NULL
            UNION SELECT community_code FROM buildings WHERE id = ANY(:b) AND community_code IS NOT NULL
            UNION SELECT c.code FROM communities c JOIN (SELECT geom FROM service_facilities WHERE facility_id = ANY(:f)
                                                        UNION ALL {places}) p ON ST_Intersects(c.geom, p.geom)"""),
            {**params, "f": fac_ids}).scalars()}
    if communities:
        out["compliance"] = {"communities": sorted(communities), "rows": len(compliance.refresh(conn, communities=communities))}
    timer.lap("compliance")
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out
