"""Which metric CRS lengths and areas are measured in, per sub-district.

Stored geometry is EPSG:4326; measuring in degrees is meaningless and geography-type
maths is slow for overlays, so each sub-district records the projected CRS for its
place (settings.metric_srid overrides it for the whole deployment).
"""
from __future__ import annotations

from sqlalchemy import Connection, text

from gis.crs import metric_epsg
from gis.settings import get_settings


def refresh_metric_srids(conn: Connection) -> None:
    """Give every sub-district without one the metric CRS of its communities' centre."""
    rows = conn.execute(text("""
        SELECT s.code, ST_X(c.pt) AS lon, ST_Y(c.pt) AS lat
        FROM subdistricts s
        JOIN LATERAL (SELECT ST_Centroid(ST_Collect(geom)) AS pt FROM communities WHERE subdistrict_code = s.code) c ON true
        WHERE s.metric_srid IS NULL AND c.pt IS NOT NULL""")).all()
    for code, lon, lat in rows:
        conn.execute(text("UPDATE subdistricts SET metric_srid = :srid WHERE code = :code"), {"srid": metric_epsg(lon, lat), "code": code})


def metric_srid(conn: Connection, subdistrict_code: str | None = None) -> int:
    """The SRID to measure in: the setting if given, else the sub-district's (the first one's
    when none is named), else UTM/GK for the data's centre."""
    fixed = get_settings().metric_srid
    if fixed:
        return fixed
    srid = conn.execute(
        text("SELECT metric_srid FROM subdistricts WHERE (CAST(:c AS text) IS NULL OR code = :c) AND metric_srid IS NOT NULL ORDER BY code LIMIT 1"),
        {"c": subdistrict_code},
    ).scalar()
    if srid:
        return int(srid)
    pt = conn.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Centroid(ST_Extent(geom)::geometry) p FROM buildings) q")).first()
    return metric_epsg(pt[0], pt[1]) if pt and pt[0] is not None else 4547
