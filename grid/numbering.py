"""Numbering grids inside each community (standards §2): serials run west to east, then
north to south, like lines of text.

Codes are identifiers other records point at, so numbering is conservative: a grid
that already has a valid code in the deployment's layout keeps it; only grids without
one (new, or from another layout) get the next free serials in reading order. Re-running
on unchanged grids therefore changes nothing. ``renumber_all`` re-sequences a whole
community when a user explicitly asks for it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from gis.measure import metric_srid
from gis.settings import get_settings
from layers import codes
from layers.audit import record as audit


@dataclass(frozen=True)
class CodeChange:
    grid_id: int
    community_code: str
    old: str
    new: str


def reading_order(x: np.ndarray, y: np.ndarray, band_m: float) -> np.ndarray:
    """Indices in reading order: bands of ``band_m`` from the north, west to east in each."""
    if len(x) == 0:
        return np.array([], dtype=int)
    band = np.floor((y.max() - y) / band_m)
    return np.lexsort((x, band))


def plan(conn: Connection, community: str | None = None, layout: str | None = None, renumber_all: bool = False) -> list[CodeChange]:
    layout = layout or get_settings().grid_code_layout
    srid = metric_srid(conn)
    rows = pd.read_sql(text(f"""
        SELECT id, code, community_code, ST_X(p) AS x, ST_Y(p) AS y, ST_Area(ST_Transform(geom, {srid})) AS area
        FROM (SELECT id, code, community_code, geom, ST_Transform(ST_PointOnSurface(geom), {srid}) AS p
              FROM grids WHERE valid_to IS NULL AND (CAST(:c AS text) IS NULL OR community_code = :c)) g
        ORDER BY id"""), conn, params={"c": community})
    changes: list[CodeChange] = []
    for comm, frame in rows.groupby("community_code", sort=True):
        frame = frame.iloc[reading_order(frame["x"].to_numpy(), frame["y"].to_numpy(), get_settings().grid_numbering_band_m)]
        keep = pd.Series(False, index=frame.index)
        if not renumber_all:
            valid = frame["code"].map(lambda c: codes.problem(c, comm, layout) is None)
            keep = valid & ~frame["code"].duplicated()
        used = {int(c[12:]) for c in frame.loc[keep, "code"]}
        serial = 0
        for idx, row in frame.iterrows():
            if keep[idx]:
                continue
            serial += 1
            while serial in used:
                serial += 1
            used.add(serial)
            new = codes.make(comm, serial, layout)
            if new != row["code"]:
                changes.append(CodeChange(int(row["id"]), comm, row["code"], new))
    return changes


def apply(conn: Connection, changes: list[CodeChange], actor: str | None = None) -> None:
    """Write new codes in one statement (the unique index on current codes sees the end state)."""
    if not changes:
        return

    conn.execute(text("SET CONSTRAINTS grids_current_code_ex DEFERRED"))  # codes may swap places
    conn.execute(text("CREATE TEMP TABLE _codes (id bigint, code text) ON COMMIT DROP"))
    conn.execute(text("INSERT INTO _codes VALUES (:id, :code)"), [{"id": c.grid_id, "code": c.new} for c in changes])
    conn.execute(text("UPDATE grids g SET code = n.code FROM _codes n WHERE n.id = g.id"))
    conn.execute(text("DROP TABLE _codes"))
    for c in changes:
        audit(conn, "grid_code", "grids", actor=actor, row_key=str(c.grid_id), before={"code": c.old}, after={"code": c.new}, district_code=c.community_code[:6])
