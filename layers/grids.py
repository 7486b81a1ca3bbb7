"""Grids (网格): the unit everything is counted in. History is kept: a replaced grid gets
``valid_to`` rather than being deleted, so old assignments and statistics still resolve."""
from __future__ import annotations

from datetime import date

import pandas as pd

from gis.problems import Problem
from grid import codes
from layers.base import Field, ImportContext, LayerSpec
from layers.buildings import ASSIGN_GRIDS
from layers.vocab import GRID_TYPES


def _prepare(frame: pd.DataFrame, ctx: ImportContext, problems: list[Problem]) -> pd.DataFrame:
    given = frame["community_code"]
    frame["community_code"] = given.where(given.notna(), frame["code"].str[:12])
    frame["valid_from"] = frame["valid_from"].where(frame["valid_from"].notna(), date.today())
    for i, (code, community) in enumerate(zip(frame["code"], frame["community_code"])):
        if code is None:
            continue
        why = codes.problem(code, community)
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

