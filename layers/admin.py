"""Administrative areas: district (区), sub-district (街道), community (社区).

Codes follow GB/T 2260 (6-digit district) + 3-digit street + 3-digit community and are
kept as text: leading zeros matter and arithmetic on them is meaningless.
"""
from __future__ import annotations

import pandas as pd
from sqlalchemy import Connection, text

from gis.measure import refresh_metric_srids
from gis.problems import Problem
from layers.base import Field, ImportContext, LayerSpec

NAME = Field("name", required=True, aliases=("名称", "名字", "社区名称", "街道名称", "NAME"))


def _prepare_subdistrict(frame: pd.DataFrame, ctx: ImportContext, problems: list[Problem]) -> pd.DataFrame:
    frame["district_code"] = frame["code"].str[:6]
    return frame


def _ensure_district(conn: Connection, frame: pd.DataFrame, ctx: ImportContext) -> None:
    """A sub-district file names its district; make sure that district row exists."""
    for _, row in frame.drop_duplicates("district_code").iterrows():
        conn.execute(
            text("""INSERT INTO districts (code, name, city_name, province_name)
                    VALUES (CAST(:c AS text), coalesce(CAST(:n AS text), CAST(:c AS text)), :city, :prov)
                    ON CONFLICT (code) DO UPDATE SET name = coalesce(:n, districts.name),
                      city_name = coalesce(:city, districts.city_name), province_name = coalesce(:prov, districts.province_name)"""),
            {"c": row["district_code"], "n": row.get("district_name"), "city": row.get("city_name"), "prov": row.get("province_name")},
        )


SUBDISTRICTS = LayerSpec(
    name="subdistricts", table="subdistricts", geom="MultiPolygon", id_field="code", zh="街道",
    fields=(
        Field("code", required=True, pattern=r"[0-9]{9}", aliases=("编码", "街道编码", "区划代码", "CODE")),
        NAME,
        Field("district_name", aliases=("区名称", "区县"), store=False),
        Field("city_name", aliases=("市",), store=False),
        Field("province_name", aliases=("省",), store=False),
        Field("metric_srid", kind="int", min=1024, max=999999),
    ),
    geom_required=False, prepare=_prepare_subdistrict, before_write=_ensure_district,
    district_from_code=True, has_serial_id=False,
)


def _prepare_community(frame: pd.DataFrame, ctx: ImportContext, problems: list[Problem]) -> pd.DataFrame:
    frame["subdistrict_code"] = frame["code"].str[:9]
    return frame


def ensure_parents(conn: Connection, frame: pd.DataFrame, ctx: ImportContext) -> None:
    """Communities can arrive before their 街道 row (an OSM extract has none): create a
    placeholder district and sub-district named by code, and say so."""
    for sub in sorted({c for c in frame["subdistrict_code"].dropna()}):
        created = conn.execute(
            text("""WITH d AS (INSERT INTO districts (code, name) VALUES (left(CAST(:s AS text), 6), left(CAST(:s AS text), 6))
                               ON CONFLICT DO NOTHING RETURNING 1),
                         s AS (INSERT INTO subdistricts (code, district_code, name) VALUES (CAST(:s AS text), left(CAST(:s AS text), 6), CAST(:s AS text))
                               ON CONFLICT DO NOTHING RETURNING 1)
                    SELECT (SELECT count(*) FROM s)"""),
            {"s": sub},
        ).scalar_one()
        if created:
            ctx.notes.append(f"created placeholder sub-district {sub} (import the 街道 layer to name it)")


COMMUNITIES = LayerSpec(
    name="communities", table="communities", geom="MultiPolygon", id_field="code", zh="社区",
    fields=(
        Field("code", required=True, pattern=r"[0-9]{12}", aliases=("编码", "社区编码", "社区代码", "CODE")),
        NAME,
        Field("subdistrict_code", pattern=r"[0-9]{9}", aliases=("街道编码",)),
        Field("source_id", aliases=("osm_id", "源ID")),
    ),
    prepare=_prepare_community, before_write=ensure_parents, district_from_code=True, has_serial_id=False,
    after_write=lambda conn, frame, ctx: refresh_metric_srids(conn),
    after_sql=(
        # Keep the sub-district outline equal to the union of its communities when it has none.
        """UPDATE subdistricts s SET geom = u.geom
           FROM (SELECT subdistrict_code, ST_Multi(ST_Union(geom)) AS geom FROM communities GROUP BY 1) u
           WHERE u.subdistrict_code = s.code AND s.geom IS NULL""",
    ),
)
