"""Facilities (配套设施) by GB 50180-2018 category, with floor area and opening status."""
from __future__ import annotations

from layers.base import Field, LayerSpec
from layers.vocab import FACILITY_CATEGORIES, FACILITY_STATUSES

FACILITIES = LayerSpec(
    name="facilities", table="facilities", geom="Point", id_field="source_id", zh="配套设施",
    fields=(
        Field("source_id", required=True, aliases=("id", "编号", "设施编号", "osm_id")),
        Field("name", aliases=("名称", "设施名称", "NAME")),
        Field("category", kind="vocab", vocab=FACILITY_CATEGORIES, required=True, aliases=("类别", "设施类别", "类型", "type")),
        Field("floor_area", kind="float", min=0, max=1_000_000, aliases=("建筑面积", "面积", "area")),
        Field("capacity", kind="int", min=0, aliases=("容量", "床位", "学位")),
        Field("status", kind="vocab", vocab=FACILITY_STATUSES, default="open", aliases=("状态",)),
        Field("community_code", pattern=r"[0-9]{12}", aliases=("社区编码",)),
    ),
    after_sql=(
        """UPDATE facilities f SET community_code = c.code FROM communities c
           WHERE f.community_code IS NULL AND f.id > :since AND ST_Contains(c.geom, f.geom)""",
    ),
)


# --- queries for the dashboard (read-only; the app role) ---------------------------------

def facilities_in(conn, bounds: tuple[float, float, float, float] | None = None, grid_id: int | None = None,
                  limit: int | None = None):
    """Facilities in a box (west, south, east, north) or in a grid: id, name, category, st, geometry
    (the first ``limit`` only, when given: a map draws a city's facilities as tiles instead)."""
    import geopandas as gpd
    from sqlalchemy import text

    where, params = _where(bounds, grid_id)
    return gpd.read_postgis(text(f"""
        SELECT f.id, f.name, f.category, f.status AS st, f.floor_area, f.geom FROM facilities f
        WHERE {where} ORDER BY f.category, f.name{" LIMIT :limit" if limit is not None else ""}"""), conn, geom_col="geom",
        params={**params, "limit": limit}).rename_geometry("geometry")


def facility_detail(conn, facility_id: int) -> dict | None:
    from sqlalchemy import text

    row = conn.execute(text("""
        SELECT f.id, f.source_id, f.name, f.category, f.status, f.floor_area, f.capacity, c.name AS community_name
        FROM facilities f LEFT JOIN communities c ON c.code = f.community_code WHERE f.id = :id"""),
        {"id": facility_id}).mappings().one_or_none()
    return dict(row) if row else None


def _where(bounds: tuple[float, float, float, float] | None, grid_id: int | None, alias: str = "f") -> tuple[str, dict]:
    """Point-layer filter: inside a grid (20 m of slack for points on its edge) or a box."""
    if grid_id is not None:
        return (f"EXISTS (SELECT 1 FROM grids g WHERE g.id = :grid AND ST_DWithin({alias}.geom_3857, g.geom_3857, 20))",
                {"grid": grid_id})
    if bounds is not None:
        w, s, e, n = bounds
        return f"{alias}.geom && ST_MakeEnvelope(:w, :s, :e, :n, 4326)", {"w": w, "s": s, "e": e, "n": n}
    return "TRUE", {}
