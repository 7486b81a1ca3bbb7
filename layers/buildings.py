"""Buildings (楼栋) with households and residents, and their per-building group counts.

Group counts (standards §3) live in their own table, ``building_groups``: they are the
sensitive part, so row-level security and grants can treat them apart from footprints.
Counts only, never person records.
"""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from gis.crs import metric_epsg
from gis.problems import ImportFailed, Problem
from gis.scope import current
from gis.settings import get_settings
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


# --- households where the source has none (standards §2, issue 13) -----------------------

HOUSEHOLD_SOURCES = ("surveyed", "estimated", "unknown")
ESTIMATED_USES = {"residential": 1.0, "mixed": 0.5}  # share of the gross floor area that is dwellings [verify]


def storeys(floors: pd.Series, height_m: pd.Series, building_type: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Storeys per building and where they came from: levels given (``levels``), else height ÷
    storey height (``height``), else the default for the building type (``default``)."""
    s = get_settings()
    given = pd.to_numeric(floors, errors="coerce").to_numpy(dtype=float)
    from_height = np.maximum(np.round(pd.to_numeric(height_m, errors="coerce").to_numpy(dtype=float) / s.storey_height_m), 1)
    kind = building_type.fillna("").astype(str).to_numpy()
    default = np.array([s.default_storeys.get(k, s.default_storeys.get("", 3)) for k in kind], dtype=float)
    out = np.where(np.isfinite(given) & (given >= 1), given, np.where(np.isfinite(from_height), from_height, default))
    how = np.where(np.isfinite(given) & (given >= 1), "levels", np.where(np.isfinite(from_height), "height", "default"))
    return out, how


def estimate_households(frame: pd.DataFrame, geoms: np.ndarray) -> pd.DataFrame:
    """Households and residents for the buildings whose source gave no household count.

    Residential (and half of mixed-use) buildings: gross floor area (footprint in the metric
    CRS of the place × storeys) ÷ floor area per dwelling, at least one dwelling for a
    footprint that can hold one, exactly one for a family house; residents = households ×
    persons per household (7th census). Other uses get none. ``households_source`` says
    which figures were surveyed, estimated or are unknown. ``geoms`` are EPSG:4326."""
    s = get_settings()
    out = frame.copy()
    given = out["households"].notna().to_numpy()
    source = np.where(given, "surveyed", "unknown").astype(object)
    if "households_source" in out:  # a file Wangge exported keeps saying which counts were estimates
        said = out["households_source"].astype("string").str.strip().str.lower()
        keep = given & said.isin(HOUSEHOLD_SOURCES).fillna(False).to_numpy()
        source[keep] = said[keep].to_numpy(dtype=object)
    hh = out["households"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    res = out["residents"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    use = out["use"].fillna("residential").astype(str).to_numpy()
    share = pd.Series(use).map(ESTIMATED_USES).fillna(0.0).to_numpy(dtype=float)  # (vectorised: 1.5 s at 1,000,000 as a loop)
    todo = ~given & (share > 0) & ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    if todo.any():
        g = gpd.GeoSeries(geoms[todo], crs=4326)
        c = g.union_all().centroid
        area = g.to_crs(metric_epsg(c.x, c.y)).area.to_numpy()
        kind = out["building_type"] if "building_type" in out else pd.Series([""] * len(out), index=out.index)
        n_storeys, _ = storeys(out["floors"][todo], out["height_m"][todo], kind[todo])
        gfa = area * n_storeys * share[todo]
        est = np.round(gfa / s.floor_area_per_dwelling_m2)
        est = np.where(area >= s.dwelling_min_footprint_m2, np.maximum(est, 1), 0)
        single = kind[todo].fillna("").astype(str).isin(s.single_dwelling_types).to_numpy()
        est = np.where(single & (area >= s.dwelling_min_footprint_m2), 1, est)
        hh[todo] = est
        source[todo] = "estimated"
        missing_res = todo & np.isnan(res)
        res[missing_res] = np.round(hh[missing_res] * s.persons_per_household)
    out["households"] = pd.array(np.where(np.isnan(hh), 0, hh).astype(int), dtype="Int64")
    out["residents"] = pd.array(np.where(np.isnan(res), 0, res).astype(int), dtype="Int64")
    out["households_source"] = source
    return out


def _estimate(frame: pd.DataFrame, ctx: ImportContext) -> None:
    """Fill in households where the file gave none (in place) and note the totals."""
    est = estimate_households(frame, np.asarray(frame["geom"].to_numpy(), dtype=object))
    for c in ("households", "residents", "households_source"):
        frame[c] = est[c].to_numpy() if c == "households_source" else est[c].array
    n = int((est["households_source"] == "estimated").sum())
    if n:
        s = get_settings()
        hh = int(est.loc[est["households_source"] == "estimated", "households"].sum())
        ctx.notes.append(
            f"户数为估算 / households estimated for {n} residential buildings without a count: {hh} households, "
            f"{int(round(hh * s.persons_per_household))} residents (floor area per dwelling {s.floor_area_per_dwelling_m2:g} m², "
            f"storey height {s.storey_height_m:g} m, {s.persons_per_household:g} persons per household)")


def plausibility(conn: Connection, source_ids: list[str] | None = None, residential_land_ha: float | None = None) -> dict:
    """The figures a user checks estimated households against: households per hectare (of
    residential land when known, else of community land, gross) and persons per residential
    building; with ``source_ids``, for those buildings only (one import)."""
    from gis.measure import metric_srid

    srid = metric_srid(conn)
    where = "source_id = ANY(:ids)" if source_ids is not None else "TRUE"
    row = conn.execute(text(f"""
        SELECT count(*) FILTER (WHERE use IN ('residential', 'mixed')) AS residential_buildings,
               coalesce(sum(households), 0) AS households, coalesce(sum(residents), 0) AS residents,
               count(*) FILTER (WHERE households_source = 'estimated') AS estimated_buildings,
               coalesce(sum(households) FILTER (WHERE households_source = 'estimated'), 0) AS estimated_households
        FROM buildings WHERE {where}"""), {"ids": source_ids}).mappings().one()
    out = {k: int(v) for k, v in row.items()}
    if residential_land_ha is None:
        land = conn.execute(text(f"SELECT sum(ST_Area(ST_Transform(geom, {srid}))) / 10000 FROM communities")).scalar()
        out["land"] = "community (gross)"
    else:
        land = residential_land_ha
        out["land"] = "residential (landuse=residential)"
    out["land_ha"] = round(float(land), 1) if land else None
    out["households_per_ha"] = round(out["households"] / float(land), 1) if land else None
    out["persons_per_residential_building"] = round(out["residents"] / out["residential_buildings"], 1) if out["residential_buildings"] else None
    return out


def plausibility_text(p: dict) -> str:
    per_ha = "—" if p["households_per_ha"] is None else f"{p['households_per_ha']:g}"
    per_b = "—" if p["persons_per_residential_building"] is None else f"{p['persons_per_residential_building']:g}"
    return (f"核对 / check: 每公顷{'居住用地' if p['land'].startswith('residential') else '社区用地'} {per_ha} 户 "
            f"(households per hectare of {p['land']} land, {p['land_ha'] or '—'} ha); 每栋住宅 {per_b} 人 / persons per residential building; "
            f"{p['estimated_buildings']} 栋估算 / buildings estimated ({p['estimated_households']} households)")


def _before_write(conn: Connection, frame: pd.DataFrame, ctx: ImportContext) -> None:
    _estimate(frame, ctx)
    _pick_grids(conn, frame, ctx)


def _pick_grids(conn: Connection, frame: pd.DataFrame, ctx: ImportContext) -> None:
    """Each new building's grid, and so its community, chosen as ASSIGN_GRIDS chooses but
    before the rows are written: written once, not written and then rewritten by an UPDATE
    (which recomputes the EPSG:3857 copy, re-checks validity and re-indexes every row: 5 s
    for 100,000 buildings).

    A building within a current grid (most of them) takes that grid, the lowest id if more
    than one holds it (the query's ``'Infinity'`` rank, ties by ``g.id``): found here, with the
    current grids read once and each prepared grid tested against the footprints its box
    meets (``contains(grid, building)`` is ``ST_Within(building, grid)``; 2.2 s at 1,000,000
    buildings where the join in SQL took 16 s with the footprints' copy and GiST index). The
    rest (across a grid boundary, or outside every grid) go to the server, which ranks their
    grids by shared area exactly as before; usually few."""
    frame["grid_id"] = pd.array([None] * len(frame), dtype="Int64")
    if not len(frame):
        return
    grids = conn.execute(text("SELECT id, community_code, ST_AsBinary(geom) FROM grids WHERE valid_to IS NULL ORDER BY id")).all()
    if not grids:
        return
    gid = np.array([g[0] for g in grids], dtype=np.int64)
    gcommunity = np.array([g[1] for g in grids], dtype=object)
    outlines = shapely.from_wkb([bytes(g[2]) for g in grids])
    geoms = np.asarray(frame["geom"].to_numpy(), dtype=object)
    present = np.flatnonzero(~(shapely.is_missing(geoms) | shapely.is_empty(geoms)))
    pick = np.full(len(frame), -1, dtype=np.int64)  # position in `grids`
    if len(present):
        gi, bi = shapely.STRtree(geoms[present]).query(outlines, predicate="contains")
        if len(bi):
            b = present[bi]
            order = np.lexsort((gid[gi], b))  # by building, then grid id: the first is the pick
            b, g = b[order], gi[order]
            first = np.r_[True, b[1:] != b[:-1]]
            pick[b[first]] = g[first]
    grid_id = np.where(pick >= 0, gid[np.maximum(pick, 0)], -1)
    community = frame["community_code"].to_numpy(dtype=object).copy()
    community[pick >= 0] = gcommunity[pick[pick >= 0]]
    rest = present[pick[present] < 0]
    if len(rest):
        conn.execute(text("DROP TABLE IF EXISTS _stage_footprints"))  # an earlier import in the same transaction
        conn.execute(text("CREATE TEMP TABLE _stage_footprints (n integer, geom geometry) ON COMMIT DROP"))
        copy_rows(conn, "_stage_footprints", pd.DataFrame({"n": rest, "geom": geoms[rest]}), ["n", "geom"])
        conn.execute(text("CREATE INDEX ON _stage_footprints USING gist (geom)"))
        conn.execute(text("ANALYZE _stage_footprints"))
        with without_jit(conn):
            picks = conn.execute(text(_PICK_GRID.format(key="n", source="_stage_footprints", where="TRUE"))).all()
        for n, g, c in picks:
            grid_id[n], community[n] = g, c
    frame["grid_id"] = pd.arrays.IntegerArray(np.where(grid_id >= 0, grid_id, 0).astype(np.int64), grid_id < 0)
    frame["community_code"] = community


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
        # No default: a missing count is estimated (residential) or unknown, never a silent 0.
        Field("households", kind="int", min=0, max=100000, aliases=("户数", "住户数", "HOUSEHOLDS")),
        Field("residents", kind="int", min=0, max=500000, aliases=("人口", "人数", "居住人口", "实有人口", "RESIDENTS")),
        Field("building_type", store=False, aliases=("建筑类型",)),
        Field("households_source", store=False, aliases=("户数来源",)),  # surveyed | estimated | unknown (written as derived)  # OSM building=*: default storeys
        Field("community_code", pattern=r"[0-9]{12}", aliases=("社区编码",)),
        Field("grid_code", pattern=r"[0-9]{14,15}", aliases=("网格编码",), store=False),
        *(Field(g.code, kind="int", min=0, store=False, aliases=(g.zh, *GROUP_ALIASES[g.code])) for g in GROUPS),
    ),
    # Grids are picked before writing (grid_id is written with the row); buildings outside
    # every grid then get the community under them.
    prepare=_prepare, before_write=_before_write, after_write=_write_groups, derived=("grid_id", "households_source"),
    after_sql=(ASSIGN_COMMUNITIES,),
)


# --- queries for the dashboard (read-only; the app role) ---------------------------------

def _group_columns() -> str:
    """``, coalesce(bg.<group>, 0) AS <group> …`` when the current scope may read per-building
    group counts, else nothing: under a scope the policies deny them to (a planner, a leader
    without the grant) they would read as zeros, which is wrong rather than withheld."""
    scope = current()
    if scope is not None and not scope.sees_group_rows:
        return ""
    return "".join(f", coalesce(bg.{g.code}, 0) AS {g.code}" for g in GROUPS)


def grid_buildings(conn: Connection, grid_id: int, with_geometry: bool = False) -> pd.DataFrame:
    """A grid's buildings with households, residents and their group counts (counts only;
    the group columns only for a scope allowed to read them, ``_group_columns``)."""
    import geopandas as gpd

    sql = text(f"""
        SELECT b.id, b.source_id, b.name, b.address, b.use, b.floors, b.households, b.residents, b.households_source{_group_columns()}
               {', b.geom' if with_geometry else ''}
        FROM buildings b LEFT JOIN building_groups bg ON bg.building_id = b.id AND bg.district_code = b.district_code
        WHERE b.grid_id = :id ORDER BY coalesce(b.address, b.name, b.source_id), b.id""")
    if with_geometry:
        return gpd.read_postgis(sql, conn, geom_col="geom", params={"id": grid_id}).rename_geometry("geometry")
    return pd.read_sql(sql, conn, params={"id": grid_id})


def building_detail(conn: Connection, building_id: int) -> dict | None:
    """One building by id with its grid, community and (where the scope may read them) group counts."""
    row = conn.execute(text(f"""
        SELECT b.id, b.source_id, b.name, b.address, b.use, b.floors, b.height_m, b.households, b.residents, b.households_source,
               g.code AS grid_code, coalesce(g.name, g.code) AS grid_name, c.name AS community_name{_group_columns()}
        FROM buildings b LEFT JOIN grids g ON g.id = b.grid_id LEFT JOIN communities c ON c.code = b.community_code
        LEFT JOIN building_groups bg ON bg.building_id = b.id AND bg.district_code = b.district_code
        WHERE b.id = :id"""), {"id": building_id}).mappings().one_or_none()
    return dict(row) if row else None
