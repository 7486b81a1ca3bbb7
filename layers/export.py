"""Export any layer to GeoJSON, GeoPackage or CSV (geometry as WKT; points also as lon/lat)."""
from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
from sqlalchemy import Connection, text

from gis.inert import inert_frame
from layers.importer import LAYERS, layer_spec

CURRENT = {"grids": "WHERE valid_to IS NULL", "assignments": "WHERE valid_to IS NULL"}
# Assignments point at rows by internal id; the export also names the cadre and the target
# the way an import file does, so that the file can be read back in.
ASSIGNMENTS = """
SELECT a.id, c.cadre_no, CASE WHEN a.grid_id IS NOT NULL THEN 'grid' ELSE 'building' END AS target_type,
       coalesce(g.code, b.source_id) AS target, a.role, a.valid_from, a.district_code, a.cadre_id, a.grid_id, a.building_id, a.version
FROM assignments a JOIN cadres c ON c.id = a.cadre_id
LEFT JOIN grids g ON g.id = a.grid_id LEFT JOIN buildings b ON b.id = a.building_id
WHERE a.valid_to IS NULL ORDER BY a.id"""


def read_layer(conn: Connection, name: str, where: str = "", params: dict | None = None) -> gpd.GeoDataFrame:
    """A layer as a GeoDataFrame in EPSG:4326, without the columns the database derives from
    the geometry (the tile copy, the look-up box centre and size of migration 0025)."""
    spec = layer_spec(name)
    cols = [r[0] for r in conn.execute(text(
        "SELECT column_name FROM information_schema.columns WHERE table_name = :t AND is_generated = 'NEVER' "
        "AND column_name NOT IN ('cx_3857', 'cy_3857', 'r_3857') ORDER BY ordinal_position"),  # (buildings': filled by a trigger, 0028)
        {"t": spec.table})]
    clause = where or CURRENT.get(spec.table, "")
    sql = f"SELECT {', '.join(cols)} FROM {spec.table} {clause} ORDER BY 1"
    if "geom" in cols:
        return gpd.read_postgis(text(sql), conn, geom_col="geom", params=params)
    import pandas as pd

    return gpd.GeoDataFrame(pd.read_sql(text(sql), conn, params=params))


def export_layer(conn: Connection, name: str, path: str | Path) -> int:
    path = Path(path)
    if layer_spec(name).table == "assignments":
        frame = gpd.GeoDataFrame(pd.read_sql(text(ASSIGNMENTS), conn))
    else:
        frame = read_layer(conn, name)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        out = frame.drop(columns=[frame.geometry.name]) if "geom" in frame else frame
        if "geom" in frame:
            pts = frame.geom_type == "Point"
            if pts.all():
                out["lon"], out["lat"] = frame.geometry.x.round(7), frame.geometry.y.round(7)
            else:
                out["wkt"] = frame.geometry.to_wkt(rounding_precision=7)
        inert_frame(pd.DataFrame(out)).to_csv(path, index=False, encoding="utf-8-sig")
    elif suffix in (".geojson", ".json"):
        frame.to_file(path, driver="GeoJSON")
    elif suffix == ".gpkg" and "geom" not in frame:  # an attribute table (assignments)
        pyogrio.write_dataframe(pd.DataFrame(frame), path, driver="GPKG", layer=layer_spec(name).name)
    elif suffix == ".gpkg":
        frame.to_file(path, driver="GPKG", layer=layer_spec(name).name)
    else:
        raise ValueError(f"unsupported export format {suffix!r}: use .geojson, .gpkg or .csv")
    return len(frame)


def status(conn: Connection) -> list[dict]:
    """Rows per layer and when each was last imported."""
    rows = []
    for spec in LAYERS.values():
        clause = CURRENT.get(spec.table, "")
        n = conn.execute(text(f"SELECT count(*) FROM {spec.table} {clause}")).scalar_one()
        last = conn.execute(text("SELECT max(at) FROM audit_log WHERE action = 'import' AND table_name = :t"), {"t": spec.table}).scalar_one()
        rows.append({"layer": spec.name, "zh": spec.zh, "rows": int(n), "last_import": last.isoformat(timespec="seconds") if last else None})
        if spec.table == "buildings":  # estimated households and the figures to check them against (issue 13)
            from layers.buildings import plausibility

            rows[-1]["households"] = plausibility(conn)
    return rows
