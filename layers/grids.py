"""Grids (网格): the unit everything is counted in. History is kept: a replaced grid gets
``valid_to`` rather than being deleted, so old assignments and statistics still resolve."""
from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import pandas as pd

from gis.problems import Problem
from gis.settings import get_settings
from layers import codes
from layers.base import Field, ImportContext, LayerSpec
from layers.buildings import ASSIGN_GRIDS
from layers.vocab import GRID_TYPES

if TYPE_CHECKING:
    import geopandas as gpd


def _prepare(frame: pd.DataFrame, ctx: ImportContext, problems: list[Problem]) -> pd.DataFrame:
    given = frame["community_code"]
    frame["community_code"] = given.where(given.notna(), frame["code"].str[:12])
    frame["valid_from"] = frame["valid_from"].where(frame["valid_from"].notna(), date.today())
    for i, (code, community) in enumerate(zip(frame["code"], frame["community_code"])):
        if code is None:
            continue
        why = codes.problem(code, community, get_settings().grid_code_layout)
        if why:
            problems.append(Problem(ctx.file, why, row=i + 1, source_id=code, column="code"))
    return frame


GRIDS = LayerSpec(
    name="grids", table="grids", geom="MultiPolygon", id_field="code", zh="网格",
    fields=(
        Field("code", required=True, aliases=("网格编码", "编码", "网格代码", "CODE")),
        Field("name", aliases=("网格名称", "名称", "NAME")),
        Field("grid_type", kind="vocab", vocab=GRID_TYPES, default="comprehensive", aliases=("网格类型", "类型", "type")),
        Field("community_code", pattern=r"[0-9]{12}", aliases=("社区编码",)),
        Field("source_id", aliases=("源ID",)),
        Field("valid_from", kind="date", aliases=("生效日期",)),
    ),
    prepare=_prepare, district_from_code=True,
    # Buildings loaded before their grids get their grid now.
    after_sql=(ASSIGN_GRIDS.replace("b.id > :since", "TRUE"),),
)



# --- queries for the dashboard (read-only; the app role) ---------------------------------

def grid_choices(conn, community_code: str | None = None) -> "pd.DataFrame":
    """Current grids to pick from: id, code, name, community code and name."""
    from sqlalchemy import text

    return pd.read_sql(text("""
        SELECT g.id, g.code, coalesce(g.name, g.code) AS name, g.community_code, c.name AS community_name
        FROM grids g JOIN communities c ON c.code = g.community_code
        WHERE g.valid_to IS NULL AND (CAST(:c AS text) IS NULL OR g.community_code = :c)
        ORDER BY g.code"""), conn, params={"c": community_code})


def grid_detail(conn, grid_id: int) -> dict | None:
    """One current or past grid by id: code, name, type, community, area in m²."""
    from sqlalchemy import text

    row = conn.execute(text("""
        SELECT g.id, g.code, g.name, g.grid_type, g.community_code, c.name AS community_name, g.valid_from, g.valid_to,
               round(ST_Area(g.geom::geography))::bigint AS area_m2
        FROM grids g JOIN communities c ON c.code = g.community_code WHERE g.id = :id"""), {"id": grid_id}).mappings().one_or_none()
    return dict(row) if row else None


def grid_shape(conn, grid_id: int) -> "gpd.GeoDataFrame":
    """The grid's outline (id, geometry) for the map and the handouts."""
    import geopandas as gpd
    from sqlalchemy import text

    return gpd.read_postgis(text("SELECT id, code, name, geom FROM grids WHERE id = :id"), conn, geom_col="geom",
                            params={"id": grid_id}).rename_geometry("geometry")


def neighbours(conn, grid_id: int) -> "gpd.GeoDataFrame":
    """Current grids sharing a boundary with this one (within 5 m: digitised edges rarely meet exactly)."""
    import geopandas as gpd
    from sqlalchemy import text

    return gpd.read_postgis(text("""
        SELECT n.id, n.code, coalesce(n.name, n.code) AS name, n.geom
        FROM grids g JOIN grids n ON n.valid_to IS NULL AND n.id <> g.id AND ST_DWithin(n.geom_3857, g.geom_3857, 5)
        WHERE g.id = :id ORDER BY n.code"""), conn, geom_col="geom", params={"id": grid_id}).rename_geometry("geometry")
