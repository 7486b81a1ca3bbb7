"""Roads and paths: the walking network that life-circle distances are measured on."""
from __future__ import annotations

import pandas as pd

from gis.problems import Problem
from layers.base import Field, ImportContext, LayerSpec

# Classes nobody may walk along (OSM highway values; Chinese 快速路/高速 map here too).
NOT_WALKABLE = {"motorway", "motorway_link", "trunk", "trunk_link", "快速路", "高速公路"}


def _prepare(frame: pd.DataFrame, ctx: ImportContext, problems: list[Problem]) -> pd.DataFrame:
    by_class = ~frame["road_class"].isin(NOT_WALKABLE)
    frame["walkable"] = frame["walkable"].astype("boolean").fillna(by_class.astype("boolean"))
    return frame


ROADS = LayerSpec(
    name="roads", table="roads", geom="LineString", id_field="source_id", zh="道路",
    fields=(
        Field("source_id", required=True, aliases=("id", "编号", "道路编号", "osm_id")),
        Field("name", aliases=("名称", "道路名称", "路名", "NAME")),
        Field("road_class", aliases=("等级", "道路等级", "highway", "class", "fclass")),
        Field("walkable", kind="bool", aliases=("可步行", "步行")),
    ),
    prepare=_prepare,
)
