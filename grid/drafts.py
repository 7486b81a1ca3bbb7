"""Delineation drafts: save a proposal, show it beside the current grids, edit it, accept
or discard it.

Accepting replaces the community's grids in one transaction: the old grids are retired
(``valid_to`` = today, never deleted), the draft's parts become grids with codes in
reading order, buildings are re-assigned, and cadre assignments move to the new grid
that clearly corresponds to their old one (it holds at least half of the old grid's
households, or of its area when it had none). The others are ended and listed, so
nobody is silently dropped. A topology check runs before commit; any overlap, gap or
crossing aborts the whole acceptance.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import geopandas as gpd
from sqlalchemy import Connection, text

from gis.errors import BadInput
from gis.measure import metric_srid
from gis.messages import msg
from gis.settings import get_settings
from grid.checks import check
from grid.delineate import Proposal
from layers import codes
from layers.audit import record as audit
from layers.buildings import ASSIGN_GRIDS

CORRESPONDS = 0.5  # share of an old grid's households a new grid must hold to inherit its cadres


class DraftError(BadInput):
    """The draft cannot be accepted or edited as asked; nothing was changed."""


@dataclass
class Acceptance:
    draft_id: int
    community_code: str
    retired: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    carried: list[dict] = field(default_factory=list)  # cadre, old grid, new grid, share
    flagged: list[dict] = field(default_factory=list)  # cadre, old grid, best share: needs a person to decide

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def save(conn: Connection, proposal: Proposal, actor: str | None = None) -> int:
    draft_id = conn.execute(text("""
        INSERT INTO grid_drafts (community_code, district_code, created_by, params, problems)
        VALUES (CAST(:c AS text), left(CAST(:c AS text), 6), coalesce(:actor, current_user), CAST(:params AS jsonb), CAST(:problems AS jsonb)) RETURNING id"""),
        {"c": proposal.community_code, "actor": actor, "params": json.dumps({"min": proposal.min_households, "max": proposal.max_households}),
         "problems": json.dumps(proposal.problems, ensure_ascii=False)}).scalar_one()
    conn.execute(text("""
        INSERT INTO grid_draft_parts (draft_id, serial, district_code, households, residents, buildings, compactness, standing, note, geom)
        VALUES (:d, :serial, left(:c, 6), :households, :residents, :buildings, :compactness, :standing, :note, ST_GeomFromWKB(:wkb, 4326))"""),
        [{"d": draft_id, "c": proposal.community_code, "serial": g.serial, "households": g.households, "residents": g.residents,
          "buildings": g.buildings, "compactness": g.compactness, "standing": g.standing, "note": g.note, "wkb": g.geom.wkb}
         for g in proposal.grids])
    audit(conn, "grid_draft", "grid_drafts", actor=actor, row_key=str(draft_id), after=proposal.to_dict(), district_code=proposal.community_code[:6])
    return int(draft_id)


def parts(conn: Connection, draft_id: int) -> gpd.GeoDataFrame:
    return gpd.read_postgis(text("SELECT * FROM grid_draft_parts WHERE draft_id = :d ORDER BY serial"), conn, geom_col="geom", params={"d": draft_id})


def _draft(conn: Connection, draft_id: int, lock: bool = False):
    row = conn.execute(text(f"SELECT id, community_code, status FROM grid_drafts WHERE id = :d {'FOR UPDATE' if lock else ''}"), {"d": draft_id}).first()
    if row is None:
        raise DraftError(msg("draft.unknown", draft=draft_id))
    if row.status != "draft":
        raise DraftError(msg("draft.not_open", draft=draft_id, status=row.status))
    return row


def merge_parts(conn: Connection, draft_id: int, keep: int, absorb: int, actor: str | None = None) -> None:
    """An edit: fold one draft grid into a neighbour (they must share a border)."""
    _draft(conn, draft_id, lock=True)
    touching = conn.execute(text("""
        SELECT ST_Length(ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom))::geography) FROM grid_draft_parts a, grid_draft_parts b
        WHERE a.draft_id = :d AND b.draft_id = :d AND a.serial = :k AND b.serial = :a"""), {"d": draft_id, "k": keep, "a": absorb}).scalar()
    if not touching:
        raise DraftError(msg("draft.not_adjacent", keep=keep, absorb=absorb))
    conn.execute(text("""
        UPDATE grid_draft_parts k SET geom = ST_Multi(ST_Union(k.geom, a.geom)), households = k.households + a.households,
               residents = k.residents + a.residents, buildings = k.buildings + a.buildings, note = 'merged by hand'
        FROM grid_draft_parts a WHERE k.draft_id = :d AND a.draft_id = :d AND k.serial = :k AND a.serial = :a"""),
        {"d": draft_id, "k": keep, "a": absorb})
    conn.execute(text("DELETE FROM grid_draft_parts WHERE draft_id = :d AND serial = :a"), {"d": draft_id, "a": absorb})
    audit(conn, "grid_draft_edit", "grid_drafts", actor=actor, row_key=str(draft_id), after={"merge": [keep, absorb]})


def discard(conn: Connection, draft_id: int, actor: str | None = None) -> None:
    _draft(conn, draft_id, lock=True)
    conn.execute(text("UPDATE grid_drafts SET status = 'discarded', decided_at = now() WHERE id = :d"), {"d": draft_id})
    audit(conn, "grid_draft_discard", "grid_drafts", actor=actor, row_key=str(draft_id))


def accept(conn: Connection, draft_id: int, actor: str | None = None, layout: str | None = None) -> Acceptance:
    """Replace the community's grids by the draft (call inside a transaction; on any
    problem a DraftError is raised and the caller's transaction must roll back)."""
    layout = layout or get_settings().grid_code_layout
    draft = _draft(conn, draft_id, lock=True)
    community = draft.community_code
    result = Acceptance(draft_id, community)
    srid = metric_srid(conn)

    old = conn.execute(text("SELECT id, code FROM grids WHERE community_code = :c AND valid_to IS NULL ORDER BY code FOR UPDATE"), {"c": community}).all()
    result.retired = [o.code for o in old]
    old_ids = [o.id for o in old]
    # What each old grid held, to decide where its cadres go.
    held = {r.grid_id: (r.households, r.area) for r in conn.execute(text(f"""
        SELECT g.id AS grid_id, coalesce(sum(b.households), 0) AS households, ST_Area(ST_Transform(g.geom, {srid})) AS area
        FROM grids g LEFT JOIN buildings b ON b.grid_id = g.id WHERE g.id = ANY(:ids) GROUP BY g.id"""), {"ids": old_ids})}
    conn.execute(text("UPDATE buildings SET grid_id = NULL WHERE grid_id = ANY(:ids)"), {"ids": old_ids})
    conn.execute(text("UPDATE grids SET valid_to = greatest(current_date, valid_from) WHERE id = ANY(:ids)"), {"ids": old_ids})

    new_ids: dict[int, int] = {}
    for p in conn.execute(text("SELECT serial, households FROM grid_draft_parts WHERE draft_id = :d ORDER BY serial"), {"d": draft_id}).all():
        code = codes.make(community, p.serial, layout)
        new_ids[p.serial] = conn.execute(text("""
            INSERT INTO grids (code, name, grid_type, community_code, district_code, geom, valid_from)
            SELECT :code, c.name || '第' || lpad(CAST(:serial AS text), 2, '0') || '网格', CASE WHEN p.households = 0 THEN 'dedicated' ELSE 'comprehensive' END,
                   CAST(:c AS text), left(CAST(:c AS text), 6), p.geom, current_date
            FROM grid_draft_parts p JOIN communities c ON c.code = CAST(:c AS text) WHERE p.draft_id = :d AND p.serial = :serial RETURNING id"""),
            {"code": code, "serial": p.serial, "c": community, "d": draft_id}).scalar_one()
        result.created.append(code)
    conn.execute(text(ASSIGN_GRIDS.replace("b.id > :since", "b.community_code = :c OR b.community_code IS NULL")), {"c": community})

    faults = check(conn, community)
    faults = faults[faults["kind"].isin(["overlap", "gap", "outside_community"])]
    if len(faults):
        raise DraftError(msg("draft.bad_topology", faults="; ".join(
            f"{k} {a:.0f} m²" for k, a in zip(faults["kind"], faults["area_m2"]))))

    _carry_assignments(conn, old_ids, held, list(new_ids.values()), srid, result)
    conn.execute(text("UPDATE grid_drafts SET status = 'accepted', decided_at = now() WHERE id = :d"), {"d": draft_id})
    audit(conn, "grid_draft_accept", "grids", actor=actor, row_key=str(draft_id), before={"grids": result.retired},
          after={"grids": result.created, "carried": result.carried, "flagged": result.flagged}, district_code=community[:6])

    from gis.citus import sync_building_places
    sync_building_places(conn)  # Citus: buildings' copies follow their new grid (gis/citus.py)
    return result


def _carry_assignments(conn: Connection, old_ids: list[int], held: dict, new_ids: list[int], srid: int, result: Acceptance) -> None:
    shares = conn.execute(text(f"""
        SELECT o.id AS old_id, o.code AS old_code, n.id AS new_id, n.code AS new_code,
               coalesce((SELECT sum(b.households) FROM buildings b WHERE b.grid_id = n.id AND ST_Intersects(b.geom, o.geom)
                          AND ST_Contains(o.geom, ST_PointOnSurface(b.geom))), 0) AS hh,
               ST_Area(ST_Transform(ST_Intersection(o.geom, n.geom), {srid})) AS area
        FROM grids o JOIN grids n ON n.id = ANY(:new) AND ST_Intersects(o.geom, n.geom)
        WHERE o.id = ANY(:old)"""), {"old": old_ids, "new": new_ids}).all()
    best: dict[int, tuple[float, int, str, str]] = {}
    for s in shares:
        hh, area = held[s.old_id]
        share = (s.hh / hh) if hh else (s.area / area if area else 0.0)
        if s.old_id not in best or share > best[s.old_id][0]:
            best[s.old_id] = (float(share), s.new_id, s.new_code, s.old_code)
    live = conn.execute(text("""
        SELECT a.id, a.cadre_id, c.cadre_no, c.name, a.grid_id, a.role, a.district_code FROM assignments a JOIN cadres c ON c.id = a.cadre_id
        WHERE a.grid_id = ANY(:old) AND a.valid_to IS NULL ORDER BY a.id"""), {"old": old_ids}).all()
    for a in live:
        share, new_id, new_code, old_code = best.get(a.grid_id, (0.0, None, None, None))
        conn.execute(text("UPDATE assignments SET valid_to = greatest(current_date, valid_from), version = version + 1 WHERE id = :id"), {"id": a.id})
        entry = {"cadre_no": a.cadre_no, "name": a.name, "role": a.role, "old_grid": old_code, "share": round(share, 3)}
        if new_id is not None and share >= CORRESPONDS:
            community = conn.execute(text("SELECT community_code FROM grids WHERE id = :g"), {"g": new_id}).scalar_one_or_none()
            conn.execute(text("""INSERT INTO assignments (cadre_id, grid_id, district_code, role, valid_from, community_code, place_grid_id)
                                 VALUES (:c, :g, :d, :r, current_date, :cc, :g) ON CONFLICT DO NOTHING"""),
                         {"c": a.cadre_id, "g": new_id, "d": a.district_code, "r": a.role, "cc": community})
            result.carried.append({**entry, "new_grid": new_code})
        else:
            result.flagged.append({**entry, "new_grid": new_code})

