"""Assigning cadres to grids (and building heads to buildings), with history, audit and
conflict detection.

Every change ends or starts an ``assignments`` row (``valid_from``/``valid_to``); nothing
is overwritten. Each grid (and building) carries ``staff_version``: a change names the
version its author saw, the row is locked and the version compared and bumped in one
statement, so of two people editing the same grid at once the second gets a
``Conflict`` with the grid's current staff instead of silently overwriting the first.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, text

from gis.errors import BadInput, ConflictError
from gis.messages import msg
from layers.audit import record as audit
from layers.vocab import CADRE_ROLES, normalise


class AssignError(BadInput):
    """The change cannot be made as asked (unknown grid or cadre, nothing to remove)."""


@dataclass
class Conflict(ConflictError):
    """Someone changed this grid's staff since the caller looked at it."""

    target: str
    expected: int
    current: int
    staff: list[dict] = field(default_factory=list)
    key = "error.conflict"

    def __str__(self) -> str:
        names = "、".join(f"{s['name']}({s['role']})" for s in self.staff) or "无 / nobody"
        return (f"冲突：{self.target} 的人员已被他人修改（版本 {self.expected} → {self.current}），当前为：{names} / "
                f"conflict: the staff of {self.target} changed since you loaded it (version {self.expected} → {self.current}); now: {names}")

    def to_dict(self) -> dict:
        return {"ok": False, "conflict": True, "message": str(self), "current_version": self.current, "staff": self.staff}


@dataclass(frozen=True)
class Target:
    kind: str  # grid | building
    id: int
    key: str  # grid code or building source id
    district_code: str
    version: int


def target(conn: Connection, grid_code: str | None = None, building: str | None = None, lock: bool = False) -> Target:
    sql = ("SELECT 'grid', id, code, district_code, staff_version FROM grids WHERE code = :k AND valid_to IS NULL"
           if grid_code else "SELECT 'building', id, source_id, district_code, staff_version FROM buildings WHERE source_id = :k")
    row = conn.execute(text(sql + (" FOR UPDATE" if lock else "")), {"k": grid_code or building}).first()
    if row is None:
        raise AssignError(msg("assign.no_target_grid" if grid_code else "assign.no_target_building", name=repr(grid_code or building)))
    return Target(*row)


def staff(conn: Connection, t: Target) -> list[dict]:
    col = "grid_id" if t.kind == "grid" else "building_id"
    return [dict(r._mapping) for r in conn.execute(text(f"""
        SELECT a.id AS assignment_id, c.cadre_no, c.name, a.role, a.valid_from FROM assignments a JOIN cadres c ON c.id = a.cadre_id
        WHERE a.{col} = :id AND a.valid_to IS NULL ORDER BY a.role, c.cadre_no"""), {"id": t.id})]


def _cadre(conn: Connection, cadre_no: str) -> tuple[int, str, str]:
    row = conn.execute(text("SELECT id, role, name FROM cadres WHERE cadre_no = :n"), {"n": cadre_no}).first()
    if row is None:
        raise AssignError(msg("assign.no_cadre", cadre=repr(cadre_no)))
    return row.id, row.role, row.name


def _bump(conn: Connection, t: Target, expected: int | None) -> int:
    """Lock the target and move its version on; a stale ``expected`` is a conflict."""
    table = "grids" if t.kind == "grid" else "buildings"
    new = conn.execute(text(f"""UPDATE {table} SET staff_version = staff_version + 1
                                WHERE id = :id AND (CAST(:v AS integer) IS NULL OR staff_version = :v) RETURNING staff_version"""),
                       {"id": t.id, "v": expected}).scalar()
    if new is None:
        current = target(conn, **{"grid_code" if t.kind == "grid" else "building": t.key})
        raise Conflict(t.key, expected or 0, current.version, staff(conn, current))
    return int(new)


def assign(conn: Connection, cadre_no: str, *, grid_code: str | None = None, building: str | None = None,
           role: str | None = None, expected_version: int | None = None, actor: str | None = None) -> int:
    """Start an assignment; returns the target's new staff version."""
    t = target(conn, grid_code, building)
    cadre_id, cadre_role, _ = _cadre(conn, cadre_no)
    role = normalise(CADRE_ROLES, role) if role else cadre_role
    if role is None:
        raise AssignError(msg("assign.unknown_role"))
    version = _bump(conn, t, expected_version)
    col = "grid_id" if t.kind == "grid" else "building_id"
    exists = conn.execute(text(f"SELECT 1 FROM assignments WHERE cadre_id = :c AND {col} = :id AND valid_to IS NULL"), {"c": cadre_id, "id": t.id}).first()
    if exists:
        raise AssignError(msg("assign.already_assigned", cadre=cadre_no, target=t.key))
    before = staff(conn, t)
    # where the assignment is (migration 0026: filled by a trigger on one node, named here for Citus)
    place = conn.execute(text("SELECT community_code, id FROM grids WHERE id = :id" if t.kind == "grid"
                              else "SELECT community_code, grid_id FROM buildings WHERE id = :id"), {"id": t.id}).first()
    conn.execute(text(f"""INSERT INTO assignments (cadre_id, {col}, district_code, role, valid_from, community_code, place_grid_id)
                          VALUES (:c, :id, :d, :r, current_date, :cc, :pg)"""),
                 {"c": cadre_id, "id": t.id, "d": t.district_code, "r": role, "cc": place[0] if place else None,
                  "pg": place[1] if place else None})
    audit(conn, "assign", "assignments", actor=actor, row_key=f"{t.kind}:{t.key}", district_code=t.district_code,
          before={"staff": before}, after={"staff": staff(conn, t), "cadre_no": cadre_no, "role": role})
    return version


def unassign(conn: Connection, cadre_no: str, *, grid_code: str | None = None, building: str | None = None,
             expected_version: int | None = None, actor: str | None = None) -> int:
    """End an assignment (it stays in history with today's ``valid_to``)."""
    t = target(conn, grid_code, building)
    cadre_id, _, _ = _cadre(conn, cadre_no)
    version = _bump(conn, t, expected_version)
    before = staff(conn, t)
    col = "grid_id" if t.kind == "grid" else "building_id"
    ended = conn.execute(text(f"""UPDATE assignments SET valid_to = greatest(current_date, valid_from), version = version + 1
                                  WHERE cadre_id = :c AND {col} = :id AND valid_to IS NULL RETURNING id"""),
                         {"c": cadre_id, "id": t.id}).scalars().all()
    if not ended:
        raise AssignError(msg("assign.not_assigned", cadre=cadre_no, target=t.key))
    audit(conn, "unassign", "assignments", actor=actor, row_key=f"{t.kind}:{t.key}", district_code=t.district_code,
          before={"staff": before}, after={"staff": staff(conn, t), "cadre_no": cadre_no})
    return version
