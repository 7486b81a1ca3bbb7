"""Buildings (楼栋) with households and residents, and their per-building group counts.

Group counts (standards §3) live in their own table, ``building_groups``: they are the
sensitive part, so row-level security and grants can treat them apart from footprints.
Counts only, never person records.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from gis.problems import ImportFailed, Problem
from layers.base import Field, ImportContext, LayerSpec, copy_rows, without_jit
from layers.vocab import BUILDING_USES, GROUPS

GROUP_ALIASES: dict[str, tuple[str, ...]] = {
    "elderly_65": ("老年人", "65岁以上", "elderly"), "elderly_alone": ("独居老人",), "disabled": ("残疾人",),
    "dibao": ("低保", "低保户"), "floating": ("流动人口",), "rental": ("出租屋", "出租户"),
    "released": ("刑满释放", "刑满释放人员"), "corrections": ("社区矫正", "矫正对象"),
    "at_risk_youth": ("重点青少年",), "party_members": ("党员",), "volunteers": ("志愿者",),
}

# A building belongs to the current grid holding most of its footprint (issue: grids).
# Polygon-first join; the intersection area is computed only for buildings not wholly
# inside one grid. {key}: the footprints' row key; {source}: their table.
_PICK_GRID = """
  SELECT DISTINCT ON (b.{key}) b.{key}, g.id AS grid_id, g.community_code
  FROM grids g JOIN {source} b ON g.valid_to IS NULL AND ST_Intersects(g.geom, b.geom)
  WHERE {where}
  ORDER BY b.{key}, CASE WHEN ST_Within(b.geom, g.geom) THEN 'Infinity'::float8
                      ELSE ST_Area(ST_Intersection(g.geom, b.geom)) END DESC, g.id"""
ASSIGN_GRIDS = f"""
UPDATE buildings b SET grid_id = pick.grid_id, community_code = pick.community_code
FROM ({_PICK_GRID.format(key="id", source="buildings", where="b.grid_id IS NULL AND b.id > :since")}
) pick
WHERE b.id = pick.id
"""
# Buildings outside every grid: the community holding a point of the footprint. Polygon-first
# too (`&&` lets the planner start from the communities); with no communities at all the
# EXISTS gate stops it before it touches a building (right after a bulk load the planner
# has no statistics and would otherwise walk all 100,000 of them).
ASSIGN_COMMUNITIES = """
UPDATE buildings b SET community_code = pick.code
FROM (
  SELECT b.id, c.code
  FROM communities c JOIN buildings b ON c.geom && b.geom
  WHERE b.community_code IS NULL AND b.id > :since AND ST_Contains(c.geom, ST_PointOnSurface(b.geom))
    AND EXISTS (SELECT 1 FROM communities)
) pick
WHERE b.id = pick.id
"""


def _prepare(frame: pd.DataFrame, ctx: ImportContext, problems: list[Problem]) -> pd.DataFrame:
    over = (frame["residents"].fillna(0) > 0) & (frame["households"].fillna(0) == 0)
    for i in over[over].index:
        ctx.notes.append(f"row {int(i) + 1}: residents without households")
    return frame


def _pick_grids(conn: Connection, frame: pd.DataFrame, ctx: ImportContext) -> None:
    """Each new building's grid, and so its community, chosen as ASSIGN_GRIDS chooses but
    before the rows are written: written once, not written and then rewritten by an UPDATE
    (which recomputes the EPSG:3857 copy, re-checks validity and re-indexes every row: 5 s
    for 100,000 buildings). The footprints go to a temporary table for the join."""
    frame["grid_id"] = pd.array([None] * len(frame), dtype="Int64")
    if not len(frame) or not conn.execute(text("SELECT EXISTS (SELECT 1 FROM grids WHERE valid_to IS NULL)")).scalar_one():
        return
    conn.execute(text("DROP TABLE IF EXISTS _stage_footprints"))  # an earlier import in the same transaction
    conn.execute(text("CREATE TEMP TABLE _stage_footprints (n integer, geom geometry) ON COMMIT DROP"))
    copy_rows(conn, "_stage_footprints", pd.DataFrame({"n": np.arange(len(frame)), "geom": frame["geom"].to_numpy()}), ["n", "geom"])
    conn.execute(text("CREATE INDEX ON _stage_footprints USING gist (geom)"))
    conn.execute(text("ANALYZE _stage_footprints"))
    with without_jit(conn):
        picks = conn.execute(text(_PICK_GRID.format(key="n", source="_stage_footprints", where="TRUE"))).all()
    if picks:
        n = np.array([p[0] for p in picks])
        grid_id = frame["grid_id"].array.copy()
        grid_id[n] = [p[1] for p in picks]
        community = frame["community_code"].to_numpy(dtype=object).copy()
        community[n] = [p[2] for p in picks]
        frame["grid_id"], frame["community_code"] = grid_id, community


def _write_groups(conn: Connection, frame: pd.DataFrame, ctx: ImportContext) -> None:
    cols = [g.code for g in GROUPS]
    if not any(frame[c].notna().any() for c in [*cols, "grid_code"]):
        return
    conn.execute(text("DROP TABLE IF EXISTS _stage_groups"))  # an earlier import in the same transaction
    conn.execute(text("CREATE TEMP TABLE _stage_groups (source_id text, district_code char(6), grid_code text, "
                      + ", ".join(f"{c} integer" for c in cols) + ") ON COMMIT DROP"))
    copy_rows(conn, "_stage_groups", frame, ["source_id", "district_code", "grid_code", *cols])
    unknown = conn.execute(text("""
        SELECT s.source_id, s.grid_code FROM _stage_groups s
        WHERE s.grid_code IS NOT NULL AND NOT EXISTS (SELECT 1 FROM grids g WHERE g.valid_to IS NULL AND g.code = s.grid_code)""")).all()
    if unknown:
        rows = {sid: i + 1 for i, sid in enumerate(frame["source_id"])}
        raise ImportFailed([Problem(ctx.file, f"网格编码不存在 / no current grid {code!r}", row=rows.get(sid), source_id=sid, column="grid_code")
                            for sid, code in unknown])
    conn.execute(text(f"""
        INSERT INTO building_groups (building_id, district_code, {", ".join(cols)})
        SELECT b.id, b.district_code, {", ".join(f"coalesce(s.{c}, 0)" for c in cols)}
        FROM _stage_groups s JOIN buildings b USING (district_code, source_id)
        WHERE {" OR ".join(f"s.{c} IS NOT NULL" for c in cols)}"""))
    conn.execute(text("""
        UPDATE buildings b SET grid_id = g.id, community_code = g.community_code
        FROM _stage_groups s JOIN grids g ON g.valid_to IS NULL AND g.code = s.grid_code
        WHERE b.district_code = s.district_code AND b.source_id = s.source_id"""))


BUILDINGS = LayerSpec(
    name="buildings", table="buildings", geom="MultiPolygon", id_field="source_id", zh="楼栋",
    fields=(
        Field("source_id", required=True, aliases=("id", "编号", "楼栋编号", "建筑编号", "BUILDING_ID", "osm_id")),
        Field("name", aliases=("名称", "楼栋名称", "NAME")),
        Field("address", aliases=("地址", "标准地址", "门牌地址", "ADDRESS")),
        Field("use", kind="vocab", vocab=BUILDING_USES, default="residential", aliases=("用途", "建筑用途", "类型", "type")),
        Field("floors", kind="int", min=1, max=200, aliases=("层数", "楼层", "楼层数", "levels", "building:levels", "FLOORS")),
        Field("height_m", kind="float", min=0.5, max=700, aliases=("高度", "height")),
        Field("households", kind="int", min=0, max=100000, default=0, aliases=("户数", "住户数", "HOUSEHOLDS")),
        Field("residents", kind="int", min=0, max=500000, default=0, aliases=("人口", "人数", "居住人口", "实有人口", "RESIDENTS")),
        Field("community_code", pattern=r"[0-9]{12}", aliases=("社区编码",)),
        Field("grid_code", pattern=r"[0-9]{14,15}", aliases=("网格编码",), store=False),
        *(Field(g.code, kind="int", min=0, store=False, aliases=(g.zh, *GROUP_ALIASES[g.code])) for g in GROUPS),
    ),
    # Grids are picked before writing (grid_id is written with the row); buildings outside
    # every grid then get the community under them.
    prepare=_prepare, before_write=_pick_grids, after_write=_write_groups, derived=("grid_id",),
    after_sql=(ASSIGN_COMMUNITIES,),
)


# --- queries for the dashboard (read-only; the app role) ---------------------------------

def _group_columns() -> str:
    """``, coalesce(bg.<group>, 0) AS <group> …`` when the current scope may read per-building
    group counts, else nothing: under a scope the policies deny them to (a planner, a leader
    without the grant) they would read as zeros, which is wrong rather than withheld."""
    from gis.scope import current

    scope = current()
    if scope is not None and not scope.sees_group_rows:
        return ""
    return "".join(f", coalesce(bg.{g.code}, 0) AS {g.code}" for g in GROUPS)


def grid_buildings(conn: Connection, grid_id: int, with_geometry: bool = False) -> pd.DataFrame:
    """A grid's buildings with households, residents and their group counts (counts only;
    the group columns only for a scope allowed to read them, ``_group_columns``)."""
    import geopandas as gpd

    sql = text(f"""
        SELECT b.id, b.source_id, b.name, b.address, b.use, b.floors, b.households, b.residents{_group_columns()}
               {', b.geom' if with_geometry else ''}
        FROM buildings b LEFT JOIN building_groups bg ON bg.building_id = b.id AND bg.district_code = b.district_code
        WHERE b.grid_id = :id ORDER BY coalesce(b.address, b.name, b.source_id), b.id""")
    if with_geometry:
        return gpd.read_postgis(sql, conn, geom_col="geom", params={"id": grid_id}).rename_geometry("geometry")
    return pd.read_sql(sql, conn, params={"id": grid_id})


def building_detail(conn: Connection, building_id: int) -> dict | None:
    """One building by id with its grid, community and (where the scope may read them) group counts."""
    row = conn.execute(text(f"""
        SELECT b.id, b.source_id, b.name, b.address, b.use, b.floors, b.height_m, b.households, b.residents,
               g.code AS grid_code, coalesce(g.name, g.code) AS grid_name, c.name AS community_name{_group_columns()}
        FROM buildings b LEFT JOIN grids g ON g.id = b.grid_id LEFT JOIN communities c ON c.code = b.community_code
        LEFT JOIN building_groups bg ON bg.building_id = b.id AND bg.district_code = b.district_code
        WHERE b.id = :id"""), {"id": building_id}).mappings().one_or_none()
    return dict(row) if row else None
