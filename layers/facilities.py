"""Facilities (配套设施) by GB 50180-2018 category, with floor area and opening status."""
from __future__ import annotations

from layers.base import Field, LayerSpec
from layers.vocab import FACILITY_CATEGORIES, FACILITY_STATUSES


def _place_in_communities(conn, frame, ctx) -> None:
    """Each new facility's community, looked up in a temporary copy of the community outlines.

    Why not only the UPDATE in ``after_sql``: both tables force row-level security, under which
    PostgreSQL uses no spatial index for the join, so every new facility was tested against
    every community outline (4,000 facilities x 999 communities: 8 s of a city's import). The
    temporary copy has no policy: its GiST index serves the join. The UPDATE above stays for
    Citus (no joins with temporary tables there) and finds nothing left to do on one node."""
    from sqlalchemy import text

    if conn.execute(text("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')")).scalar_one():
        return
    conn.execute(text("DROP TABLE IF EXISTS pg_temp._community_outlines"))
    conn.execute(text("CREATE TEMP TABLE _community_outlines ON COMMIT DROP AS SELECT code, geom FROM communities"))
    conn.execute(text("CREATE INDEX ON pg_temp._community_outlines USING gist (geom)"))
    conn.execute(text("ANALYZE pg_temp._community_outlines"))
    conn.execute(text("""
        UPDATE facilities f SET community_code = c.code FROM pg_temp._community_outlines c
        WHERE f.community_code IS NULL AND f.district_code = ANY(:d) AND f.source_id = ANY(:ids) AND ST_Contains(c.geom, f.geom)"""),
        {"d": sorted(set(frame["district_code"].astype(str))), "ids": frame["source_id"].astype(str).tolist()})


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
    after_write=_place_in_communities,
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
