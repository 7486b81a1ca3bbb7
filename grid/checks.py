"""Topology checks of the grid layer (standards §1: 全域覆盖、无缝拼接 — grids cover their
community completely, without overlap or holes, and never straddle two communities).

Each check is one SQL statement run by PostGIS on current grids, measured in the
sub-district's metric CRS, and returns rows with a geometry so the result is both a
table and a map layer. A clean layer returns nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import pandas as pd
from sqlalchemy import Connection, text

from gis.measure import metric_srid
from gis.settings import get_settings

# Areas below this are floating-point noise from shared edges, not faults.
NOISE_M2 = 1.0

KINDS = {
    "overlap": ("网格重叠", "Grids overlap"),
    "gap": ("社区未覆盖（空隙）", "Gap: community not covered"),
    "sliver": ("碎片多边形", "Sliver"),
    "outside_community": ("网格越出社区边界", "Grid crosses its community boundary"),
    "multipart": ("网格由多块组成", "Multi-part grid"),
    "empty": ("网格内无楼栋", "Empty grid (no buildings)"),
    "building_no_grid": ("楼栋不在任何网格内", "Building in no grid"),
    "building_straddles": ("楼栋跨网格", "Building straddles grids"),
}


@dataclass(frozen=True)
class CheckParams:
    community: str | None
    srid: int
    sliver_m2: float


def _sql(params: CheckParams) -> dict[str, str]:
    scope = "AND g.community_code = :community" if params.community else ""
    scope_b = "AND b.community_code = :community" if params.community else ""
    scope_c = "AND c.code = :community" if params.community else ""
    m = f"ST_Transform({{}}, {params.srid})"
    return {
        "overlap": f"""
            SELECT 'overlap' AS kind, a.code AS grid_code, a.community_code, b.code AS other,
                   ST_Area({m.format('ST_Intersection(a.geom, b.geom)')}) AS area_m2,
                   ST_Multi(ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 3)) AS geom
            FROM grids a JOIN grids b ON a.id < b.id AND ST_Intersects(a.geom, b.geom)
             AND NOT ST_Touches(a.geom, b.geom)
            WHERE a.valid_to IS NULL AND b.valid_to IS NULL {scope.replace('g.', 'a.')}""",
        "gap": f"""
            SELECT 'gap' AS kind, NULL AS grid_code, c.code AS community_code, NULL AS other,
                   ST_Area({m.format('d.geom')}) AS area_m2, ST_Multi(d.geom) AS geom
            FROM communities c
            CROSS JOIN LATERAL (
              SELECT (ST_Dump(ST_Difference(c.geom, coalesce(
                (SELECT ST_Union(g.geom) FROM grids g WHERE g.valid_to IS NULL AND g.community_code = c.code),
                ST_SetSRID('GEOMETRYCOLLECTION EMPTY'::geometry, 4326))))).geom
            ) d
            WHERE ST_Dimension(d.geom) = 2 {scope_c}""",
        "outside_community": f"""
            SELECT 'outside_community' AS kind, g.code, g.community_code, NULL,
                   ST_Area({m.format('ST_Difference(g.geom, c.geom)')}) AS area_m2,
                   ST_Multi(ST_CollectionExtract(ST_Difference(g.geom, c.geom), 3)) AS geom
            FROM grids g JOIN communities c ON c.code = g.community_code
            WHERE g.valid_to IS NULL AND NOT ST_CoveredBy(g.geom, c.geom) {scope}""",
        "multipart": f"""
            SELECT 'multipart', g.code, g.community_code, ST_NumGeometries(g.geom)::text,
                   ST_Area({m.format('g.geom')}), g.geom
            FROM grids g WHERE g.valid_to IS NULL AND ST_NumGeometries(g.geom) > 1 {scope}""",
        "sliver": f"""
            SELECT 'sliver', g.code, g.community_code, NULL, ST_Area({m.format('p.geom')}), ST_Multi(p.geom)
            FROM grids g CROSS JOIN LATERAL ST_Dump(g.geom) p
            WHERE g.valid_to IS NULL AND ST_Area({m.format('p.geom')}) < :sliver {scope}""",
        "empty": f"""
            SELECT 'empty', g.code, g.community_code, NULL, ST_Area({m.format('g.geom')}), g.geom
            FROM grids g WHERE g.valid_to IS NULL {scope}
              AND NOT EXISTS (SELECT 1 FROM buildings b WHERE b.grid_id = g.id)""",
        "building_no_grid": f"""
            SELECT 'building_no_grid', NULL, b.community_code, b.source_id, ST_Area({m.format('b.geom')}), b.geom
            FROM buildings b
            WHERE NOT EXISTS (SELECT 1 FROM grids g WHERE g.valid_to IS NULL AND ST_Intersects(g.geom, b.geom)) {scope_b}""",
        "building_straddles": f"""
            SELECT 'building_straddles', owner.code, b.community_code, b.source_id,
                   ST_Area({m.format('b.geom')}), b.geom
            FROM buildings b
            JOIN grids owner ON owner.id = b.grid_id
            WHERE NOT ST_CoveredBy(b.geom, owner.geom) {scope_b}
              AND EXISTS (SELECT 1 FROM grids g WHERE g.valid_to IS NULL AND g.id <> owner.id
                          AND ST_Intersects(g.geom, b.geom)
                          AND ST_Area({m.format('ST_Intersection(g.geom, b.geom)')}) > 0.01)""",
    }


def check(conn: Connection, community: str | None = None, sliver_m2: float | None = None) -> gpd.GeoDataFrame:
    """All problems of the current grids, one row each: kind, grid, community, other (the
    second grid of an overlap, the building ID, or the part count), area in m², geometry."""
    params = CheckParams(community, metric_srid(conn), sliver_m2 if sliver_m2 is not None else get_settings().grid_sliver_m2)
    frames = []
    for kind, sql in _sql(params).items():
        q = f"SELECT kind, grid_code, community_code, other, area_m2, geom FROM ({sql}) q(kind, grid_code, community_code, other, area_m2, geom)"
        if kind in ("overlap", "gap", "outside_community"):
            q += f" WHERE area_m2 > {NOISE_M2}"
        frames.append(gpd.read_postgis(text(q), conn, geom_col="geom", params={"community": community, "sliver": params.sliver_m2}))
    out = pd.concat(frames, ignore_index=True)
    out = gpd.GeoDataFrame(out, geometry="geom", crs=4326)
    out["area_m2"] = out["area_m2"].astype(float).round(1)
    return out.sort_values(["kind", "community_code", "grid_code", "other"], na_position="last").reset_index(drop=True)


def summary(problems: pd.DataFrame) -> dict[str, int]:
    return {k: int((problems["kind"] == k).sum()) for k in KINDS}
