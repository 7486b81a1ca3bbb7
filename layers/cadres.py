"""Cadres (干部/网格员) and their assignments to grids and buildings.

An assignment is never overwritten: ending one sets ``valid_to`` so that "who was
responsible for this grid on that day" stays answerable.
"""
from __future__ import annotations

from datetime import date

import pandas as pd
from sqlalchemy import Connection, text

from gis.problems import ImportFailed, Problem
from gis.settings import get_settings
from layers.audit import record as audit
from layers.base import Field, ImportContext, LayerSpec, copy_rows
from layers.vocab import CADRE_ROLES, normalise

CADRES = LayerSpec(
    name="cadres", table="cadres", geom="Point", id_field="cadre_no", zh="干部", geom_required=False,
    fields=(
        Field("cadre_no", required=True, aliases=("编号", "工号", "人员编号", "id")),
        Field("name", required=True, aliases=("姓名", "名字", "NAME")),
        Field("role", kind="vocab", vocab=CADRE_ROLES, required=True, aliases=("角色", "职务", "岗位")),
        Field("community_code", pattern=r"[0-9]{12}", aliases=("社区编码", "所属社区")),
        Field("phone", pattern=r"[0-9+ -]{5,20}", aliases=("电话", "手机", "联系电话", "联系方式")),
        Field("active", kind="bool", default=True, aliases=("在岗",)),
    ),
)


def _prepare_assignments(frame: pd.DataFrame, ctx: ImportContext, problems: list[Problem]) -> pd.DataFrame:
    kinds = frame["target_type"].fillna("grid").str.lower().map({"grid": "grid", "网格": "grid", "building": "building", "楼栋": "building"})
    for i in frame.index[kinds.isna()]:
        problems.append(Problem(ctx.file, f"target_type 须为 grid 或 building / got {frame.at[i, 'target_type']!r}", row=int(i) + 1))
    frame["target_type"] = kinds
    frame["valid_from"] = frame["valid_from"].where(frame["valid_from"].notna(), date.today())
    frame["row"] = range(1, len(frame) + 1)
    return frame


def _write_assignments(conn: Connection, frame: pd.DataFrame, ctx: ImportContext) -> None:
    """Resolve cadre numbers, grid codes and building IDs to rows; any that do not resolve
    stop the whole import, by row."""
    conn.execute(text("DROP TABLE IF EXISTS _stage_assign"))  # an earlier import in the same transaction
    conn.execute(text("""CREATE TEMP TABLE _stage_assign (row integer, cadre_no text, target_type text, target text,
                         role text, valid_from date, district_code char(6)) ON COMMIT DROP"""))
    copy_rows(conn, "_stage_assign", frame, ["row", "cadre_no", "target_type", "target", "role", "valid_from", "district_code"])
    # the named buildings first, by themselves (on Citus a distributed read; joined below with the
    # coordinator's tables: Citus 13.2 crashed on the one-statement join of a temporary table, cadres
    # and buildings)
    conn.execute(text("DROP TABLE IF EXISTS _stage_assign_b"))
    conn.execute(text("""CREATE TEMP TABLE _stage_assign_b ON COMMIT DROP AS
        SELECT id, source_id, district_code, community_code, grid_id FROM buildings
        WHERE source_id = ANY(ARRAY(SELECT target FROM _stage_assign WHERE target_type = 'building'))"""))
    missing = conn.execute(text("""
        SELECT s.row, s.cadre_no, s.target_type, s.target, c.id IS NULL AS no_cadre
        FROM _stage_assign s
        LEFT JOIN cadres c ON c.cadre_no = s.cadre_no AND c.district_code = s.district_code
        LEFT JOIN grids g ON s.target_type = 'grid' AND g.code = s.target AND g.valid_to IS NULL
        LEFT JOIN _stage_assign_b b ON s.target_type = 'building' AND b.source_id = s.target AND b.district_code = s.district_code
        WHERE c.id IS NULL OR (g.id IS NULL AND b.id IS NULL) ORDER BY s.row""")).all()
    if missing:
        raise ImportFailed([
            Problem(ctx.file, f"干部编号不存在 / no cadre {m.cadre_no!r}" if m.no_cadre else f"目标不存在 / no current {m.target_type} {m.target!r}", row=m.row, source_id=m.cadre_no)
            for m in missing
        ])
    conn.execute(text("""
        INSERT INTO assignments (cadre_id, grid_id, building_id, district_code, role, valid_from, community_code, place_grid_id)
        SELECT c.id, g.id, b.id, s.district_code, coalesce(s.role, c.role), s.valid_from,
               coalesce(g.community_code, b.community_code), coalesce(g.id, b.grid_id)  -- where it is (0026: a trigger on one node)
        FROM _stage_assign s
        JOIN cadres c ON c.cadre_no = s.cadre_no AND c.district_code = s.district_code
        LEFT JOIN grids g ON s.target_type = 'grid' AND g.code = s.target AND g.valid_to IS NULL
        LEFT JOIN _stage_assign_b b ON s.target_type = 'building' AND b.source_id = s.target AND b.district_code = s.district_code"""))


ASSIGNMENTS = LayerSpec(
    name="assignments", table="assignments", geom=None, id_field="cadre_no", zh="分配", geom_required=False,
    fields=(
        Field("cadre_no", required=True, aliases=("干部编号", "编号", "工号")),
        Field("target_type", aliases=("对象类型",), store=False),
        Field("target", required=True, aliases=("对象", "网格编码", "楼栋编号", "grid_code"), store=False),
        Field("role", kind="vocab", vocab=CADRE_ROLES, aliases=("角色", "职务")),
        Field("valid_from", kind="date", aliases=("开始日期", "起始日期")),
    ),
    prepare=_prepare_assignments, after_write=_write_assignments, unique_id=False, direct_copy=False,
)


# --- queries for the dashboard (read-only; the app role) ---------------------------------

def grid_staff(conn: Connection, grid_id: int) -> pd.DataFrame:
    """Who currently works a grid: name, role, phone (staff contact details, not residents')."""
    return pd.read_sql(text("""
        SELECT c.cadre_no, c.name, a.role, c.phone FROM assignments a JOIN cadres c ON c.id = a.cadre_id
        WHERE a.grid_id = :id AND a.valid_to IS NULL AND c.active
        ORDER BY array_position(ARRAY['grid_chief','full_time_worker','part_time_worker','police_officer'], a.role::text) NULLS LAST, c.name"""),
        conn, params={"id": grid_id})


EDITABLE = ("name", "role", "community_code", "phone", "active")


def worker_ratio(conn: Connection, community: str | None = None) -> pd.DataFrame:
    """Per community: households, active full-time workers, workers the ratio asks for, shortfall."""
    per = get_settings().households_per_worker
    frame = pd.read_sql(text("""
        SELECT c.code AS community_code, c.name AS community_name,
               -- (building_stats: the buildings' totals kept by triggers, migration 0024; a sum over the buildings per
               -- community cost 1.7 s at 1,000,000 buildings)
               coalesce((SELECT sum(households) FROM building_stats WHERE community_code = c.code), 0)::int AS households,
               (SELECT count(*) FROM cadres WHERE community_code = c.code AND role = 'full_time_worker' AND active)::int AS workers
        FROM communities c WHERE CAST(:c AS text) IS NULL OR c.code = :c ORDER BY c.code"""), conn, params={"c": community})
    frame["needed"] = -(-frame["households"] // per)
    frame["missing"] = (frame["needed"] - frame["workers"]).clip(lower=0)
    return frame


def registry(conn: Connection, community: str | None = None) -> pd.DataFrame:
    """The cadre registry for editing (location shown as lon/lat, edited by import)."""
    return pd.read_sql(text("""
        SELECT cadre_no, name, role, community_code, phone, active, ST_X(geom) AS lon, ST_Y(geom) AS lat
        FROM cadres WHERE CAST(:c AS text) IS NULL OR community_code = :c ORDER BY cadre_no"""), conn, params={"c": community})


def update(conn: Connection, cadre_no: str, changes: dict, actor: str | None = None) -> None:
    """Change a cadre's registry fields, validated like an import, audited with before/after."""
    bad = set(changes) - set(EDITABLE)
    if bad:
        raise ValueError(f"not editable: {sorted(bad)}")
    if "role" in changes:
        role = normalise(CADRE_ROLES, changes["role"])
        if role is None:
            raise ValueError(f"未知角色 / unknown role {changes['role']!r}")
        changes["role"] = role
    before = conn.execute(text(f"SELECT {', '.join(EDITABLE)}, district_code FROM cadres WHERE cadre_no = :n FOR UPDATE"), {"n": cadre_no}).first()
    if before is None:
        raise ValueError(f"干部编号不存在 / no cadre {cadre_no!r}")
    sets = ", ".join(f"{k} = :{k}" for k in changes)
    conn.execute(text(f"UPDATE cadres SET {sets} WHERE cadre_no = :n"), {**changes, "n": cadre_no})
    audit(conn, "cadre_edit", "cadres", actor=actor, row_key=cadre_no, district_code=before.district_code,
          before={k: getattr(before, k) for k in changes}, after=changes)
