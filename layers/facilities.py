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
