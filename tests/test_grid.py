"""Grids: topology checks on planted faults, codes, statistics, delineation, drafts, rebalancing.

Runs on the committed demo (session fixture) inside a rolled-back transaction, so each
test may plant faults or accept proposals without disturbing the others.
"""
from __future__ import annotations

import json
import os
import subprocess

import pytest
import shapely
from sqlalchemy import text

from gis.settings import ROOT
from grid import drafts
from grid.checks import check, summary
from grid.delineate import propose
from grid.numbering import apply, plan
from grid.rebalance import suggest
from grid.stats import grid_stats, rollup, standing
from tests.conftest import count

COMMUNITY = "420106010002"
TOWER_COMMUNITY = "420106010006"


def _pair(conn):
    """Two current grids of one community that share a border."""
    return conn.execute(text("""
        SELECT a.code, b.code FROM grids a JOIN grids b ON a.community_code = b.community_code AND a.id < b.id
        WHERE a.valid_to IS NULL AND b.valid_to IS NULL AND a.community_code = :c
          AND ST_Length(ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom))::geography) > 20
        ORDER BY a.code, b.code LIMIT 1"""), {"c": COMMUNITY}).one()


def test_clean_demo_reports_nothing(demo, conn):
    problems = check(conn)
    assert problems.empty, problems.drop(columns="geom").to_string()


def test_overlap_is_found_with_its_area(demo, conn):
    a, b = _pair(conn)
    # Grow A by a 30 m disc centred on the shared border: half of it lies inside B.
    conn.execute(text("""
        UPDATE grids SET geom = ST_Multi(ST_Union(geom, (
          SELECT ST_Buffer(ST_LineInterpolatePoint(ST_LineMerge(ST_Intersection(ST_Boundary(ga.geom), ST_Boundary(gb.geom))), 0.5)::geography, 30)::geometry
          FROM grids ga, grids gb WHERE ga.code = :a AND gb.code = :b AND ga.valid_to IS NULL AND gb.valid_to IS NULL)))
        WHERE code = :a AND valid_to IS NULL"""), {"a": a, "b": b})
    problems = check(conn, COMMUNITY)
    overlaps = problems[problems.kind == "overlap"]
    assert len(overlaps) >= 1
    row = overlaps[(overlaps.grid_code.isin([a, b])) & (overlaps.other.isin([a, b]))].iloc[0]
    assert 900 < row.area_m2 < 1900  # about half a 30 m disc (1,414 m²)


def test_gap_sliver_multipart_outside_empty_and_stray_buildings(demo, conn):
    a, b = _pair(conn)
    # a hole in B (gap), a 5 m square island added to A far from it (multi-part + sliver),
    # a square outside every community added to A (outside), a building in no grid.
    conn.execute(text("""
        UPDATE grids SET geom = ST_Multi(ST_Difference(geom, ST_Buffer(ST_PointOnSurface(geom)::geography, 12)::geometry))
        WHERE code = :b AND valid_to IS NULL"""), {"b": b})
    conn.execute(text("""
        UPDATE grids SET geom = ST_Multi(ST_Union(geom, ST_MakeEnvelope(114.2000, 30.5000, 114.20005, 30.50005, 4326)))
        WHERE code = :a AND valid_to IS NULL"""), {"a": a})
    conn.execute(text("""
        INSERT INTO buildings (source_id, district_code, households, geom)
        VALUES ('STRAY1', '420106', 10, ST_Multi(ST_MakeEnvelope(114.1000, 30.4000, 114.1001, 30.4001, 4326)))"""))
    # empty grid: move every building of the last grid of the community elsewhere
    empty_code = conn.execute(text("SELECT max(code) FROM grids WHERE community_code = :c AND valid_to IS NULL AND code NOT IN (:a, :b)"),
                              {"c": COMMUNITY, "a": a, "b": b}).scalar_one()
    conn.execute(text("UPDATE buildings SET grid_id = (SELECT id FROM grids WHERE code = :a AND valid_to IS NULL) "
                      "WHERE grid_id = (SELECT id FROM grids WHERE code = :e AND valid_to IS NULL)"), {"a": a, "e": empty_code})
    problems = check(conn)
    got = summary(problems)
    gap = problems[problems.kind == "gap"]
    assert len(gap) == 1 and gap.iloc[0].community_code == COMMUNITY and 400 < gap.iloc[0].area_m2 < 500  # π·12² ≈ 452
    assert set(problems[problems.kind == "multipart"].grid_code) == {a}
    assert set(problems[problems.kind == "outside_community"].grid_code) == {a}
    sliver = problems[problems.kind == "sliver"]
    assert list(sliver.grid_code) == [a] and sliver.iloc[0].area_m2 < 50
    assert list(problems[problems.kind == "building_no_grid"].other) == ["STRAY1"]
    assert empty_code in set(problems[problems.kind == "empty"].grid_code)
    assert got["overlap"] == 0


def test_straddling_building_belongs_to_the_grid_holding_most_of_it(demo, conn):
    from layers.buildings import ASSIGN_GRIDS

    a, b = _pair(conn)
    # A 40 m square centred 10 m inside A from the shared border: about 3/4 in A.
    conn.execute(text("""
        WITH border AS (SELECT ST_LineInterpolatePoint(ST_LineMerge(ST_Intersection(ST_Boundary(ga.geom), ST_Boundary(gb.geom))), 0.5) AS p,
                               ST_PointOnSurface(ga.geom) AS inside
                        FROM grids ga, grids gb WHERE ga.code = :a AND gb.code = :b AND ga.valid_to IS NULL AND gb.valid_to IS NULL)
        INSERT INTO buildings (source_id, district_code, households, geom)
        SELECT 'STRADDLE1', '420106', 20, ST_Multi(ST_Transform(ST_Buffer(ST_Transform(
               ST_LineInterpolatePoint(ST_MakeLine(p, inside), 10 / ST_Distance(p::geography, inside::geography)), 4547), 20, 'quad_segs=1'), 4326))
        FROM border"""), {"a": a, "b": b})
    conn.execute(text(ASSIGN_GRIDS), {"since": 0})
    owner = conn.execute(text("SELECT g.code FROM buildings b JOIN grids g ON g.id = b.grid_id WHERE b.source_id = 'STRADDLE1'")).scalar_one()
    shares = dict(conn.execute(text("""
        SELECT g.code, ST_Area(ST_Intersection(g.geom, b.geom)::geography) FROM grids g, buildings b
        WHERE b.source_id = 'STRADDLE1' AND g.valid_to IS NULL AND ST_Intersects(g.geom, b.geom)""")).all())
    assert len(shares) == 2 and min(shares.values()) > 50, shares  # it really straddles
    assert owner == max(shares, key=shares.get)
    problems = check(conn, COMMUNITY)
    straddle = problems[problems.kind == "building_straddles"]
    assert list(straddle.other) == ["STRADDLE1"] and list(straddle.grid_code) == [owner]


def test_numbering_keeps_valid_codes_and_fills_the_rest(demo, conn):
    assert plan(conn) == []
    first = conn.execute(text("SELECT id, code FROM grids WHERE community_code = :c AND valid_to IS NULL ORDER BY code LIMIT 1"), {"c": COMMUNITY}).one()
    conn.execute(text("UPDATE grids SET code = :c || '99' WHERE id = :id"), {"c": COMMUNITY, "id": first.id})  # a 14-digit code
    changes = plan(conn, COMMUNITY, layout="15")
    assert [c.grid_id for c in changes] == [first.id]
    assert changes[0].new == first.code  # its old serial was the first free one
    apply(conn, changes)
    assert plan(conn, COMMUNITY, layout="15") == []
    # renumbering everything is stable too: a second run changes nothing
    apply(conn, plan(conn, COMMUNITY, renumber_all=True))
    assert plan(conn, COMMUNITY, renumber_all=True) == []
    # serials run west→east within the top band
    rows = conn.execute(text("SELECT code, ST_X(ST_PointOnSurface(geom)) FROM grids WHERE community_code = :c AND valid_to IS NULL ORDER BY code"), {"c": COMMUNITY}).all()
    assert rows[0][0].endswith("001")


def test_statistics_add_up_and_judge_the_band(demo, conn):
    grids = grid_stats(conn)
    total = conn.execute(text("SELECT sum(households) FROM buildings WHERE grid_id IS NOT NULL")).scalar_one()
    assert grids.households.sum() == total
    sub = rollup(grids, None).iloc[0]
    assert sub.households == total and sub.grids == count(conn, "grids", "valid_to IS NULL")
    tower = grids[grids.households == grids.households.max()].iloc[0]
    assert tower.standing == "over" and tower.households == 792
    assert (grids[grids.grid_type == "dedicated"].standing == "dedicated").all()
    import pandas as pd

    s = standing(pd.Series([299, 300, 500, 501, 0]), pd.Series(["comprehensive"] * 4 + ["dedicated"]), 300, 500)
    assert list(s) == ["under", "within", "within", "over", "dedicated"]


def _assert_tiles(conn, community, proposal):
    area = shapely.from_wkb(bytes(conn.execute(text("SELECT ST_AsBinary(ST_Transform(geom, 4547)) FROM communities WHERE code = :c"), {"c": community}).scalar_one()))
    import geopandas as gpd

    frame = proposal.frame().to_crs(4547)
    union = shapely.union_all(frame.geometry.values)
    assert shapely.symmetric_difference(union, area).area < 5
    assert sum(g.area for g in frame.geometry) - union.area < 5  # no overlaps
    assert all(len(shapely.get_parts(g)) == 1 for g in frame.geometry), "every proposed grid is contiguous"
    assert isinstance(frame, gpd.GeoDataFrame)


def test_delineation_is_deterministic_contiguous_and_in_band(demo, conn):
    one = propose(conn, COMMUNITY)
    two = propose(conn, COMMUNITY)
    assert [g.geom.wkb for g in one.grids] == [g.geom.wkb for g in two.grids]
    assert [g.households for g in one.grids] == [g.households for g in two.grids]
    _assert_tiles(conn, COMMUNITY, one)
    hh = [g.households for g in one.grids]
    assert sum(hh) == conn.execute(text("SELECT sum(households) FROM buildings WHERE community_code = :c"), {"c": COMMUNITY}).scalar_one()
    inside = [h for h in hh if 300 <= h <= 500]
    assert len(inside) >= len(hh) - 1
    for g in one.grids:  # every grid out of the band says why
        assert (g.note != "") == (not 300 <= g.households <= 500)
    # every building of the community is in exactly one proposed grid
    n = conn.execute(text("SELECT count(*) FROM buildings WHERE community_code = :c"), {"c": COMMUNITY}).scalar_one()
    assert len(one.building_grid) == n


def test_delineation_reports_the_tower_it_cannot_split(demo, conn):
    proposal = propose(conn, TOWER_COMMUNITY)
    _assert_tiles(conn, TOWER_COMMUNITY, proposal)
    over = [g for g in proposal.grids if g.standing == "over"]
    assert len(over) == 1 and over[0].households == 792
    assert any("792" in p and "single building" in p for p in proposal.problems)


def test_accepting_replaces_grids_keeps_history_and_carries_cadres(demo, conn):
    before = conn.execute(text("SELECT code FROM grids WHERE community_code = :c AND valid_to IS NULL ORDER BY code"), {"c": COMMUNITY}).scalars().all()
    live = count(conn, "assignments a JOIN grids g ON g.id = a.grid_id", f"a.valid_to IS NULL AND g.community_code = '{COMMUNITY}'")
    proposal = propose(conn, COMMUNITY)
    draft = drafts.save(conn, proposal, actor="test")
    assert len(drafts.parts(conn, draft)) == len(proposal.grids)
    result = drafts.accept(conn, draft, actor="test")
    assert result.retired == before
    assert len(result.created) == len(proposal.grids)
    assert count(conn, "grids", f"community_code = '{COMMUNITY}' AND valid_to IS NOT NULL") >= len(before)
    assert check(conn, COMMUNITY).query("kind in ['overlap', 'gap', 'outside_community', 'building_no_grid']").empty
    assert count(conn, "buildings", f"community_code = '{COMMUNITY}' AND grid_id IS NULL") == 0
    assert len(result.carried) + len(result.flagged) == live
    assert len(result.carried) > live / 2
    now_live = count(conn, "assignments a JOIN grids g ON g.id = a.grid_id", f"a.valid_to IS NULL AND g.community_code = '{COMMUNITY}'")
    assert now_live <= len(result.carried) and now_live > 0
    assert count(conn, "audit_log", "action = 'grid_draft_accept'") == 1
    with pytest.raises(drafts.DraftError):
        drafts.accept(conn, draft)


def test_draft_edit_and_discard(demo, conn):
    proposal = propose(conn, COMMUNITY)
    draft = drafts.save(conn, proposal)
    parts = drafts.parts(conn, draft)
    # merge two neighbouring draft grids
    a, b = conn.execute(text("""SELECT a.serial, b.serial FROM grid_draft_parts a JOIN grid_draft_parts b ON a.draft_id = b.draft_id AND a.serial < b.serial
                                AND ST_Length(ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom))::geography) > 5
                                WHERE a.draft_id = :d ORDER BY 1, 2 LIMIT 1"""), {"d": draft}).one()
    hh = dict(zip(parts.serial, parts.households))
    drafts.merge_parts(conn, draft, a, b)
    after = drafts.parts(conn, draft)
    assert len(after) == len(parts) - 1 and dict(zip(after.serial, after.households))[a] == hh[a] + hh[b]
    drafts.discard(conn, draft)
    with pytest.raises(drafts.DraftError):
        drafts.accept(conn, draft)
    assert count(conn, "grids", f"community_code = '{COMMUNITY}' AND valid_to IS NOT NULL") == 0


def test_rebalance_suggests_splits_and_merges(demo, conn):
    sugg = suggest(conn)
    by_grid = {s.grid: s for s in sugg}
    over = grid_stats(conn).query("standing == 'over'")
    for code, hh in zip(over.code, over.households):
        s = by_grid[code]
        assert s.action in ("split", "none") and sum(s.result) == hh
    tower = next(s for s in sugg if s.households == 792)
    assert tower.action == "none"
    merges = [s for s in sugg if s.action == "merge"]
    assert merges and all(s.result[0] <= 500 and s.other for s in merges)


def test_grid_cli(demo):
    env = {**os.environ, "WANGGE_DB_NAME": os.environ.get("WANGGE_DB_NAME", "wangge_test")}
    run = lambda *a: subprocess.run([str(ROOT / ".venv/bin/wangge"), "grid", *a, "--json"], capture_output=True, text=True, env=env, timeout=120)
    checked = run("check")
    assert checked.returncode == 0 and sum(json.loads(checked.stdout)["summary"].values()) == 0
    stats = json.loads(run("stats").stdout)
    assert stats["subdistrict"]["households"] == sum(g["households"] for g in stats["grids"])
    assert "300" in stats["rule"] and "500" in stats["rule"]
    proposal = run("delineate", "--community", COMMUNITY)
    assert proposal.returncode == 0, proposal.stderr
    body = json.loads(proposal.stdout)
    assert body["draft_id"] > 0 and body["accepted"] is None and len(body["grids"]) >= 7
    assert json.loads(run("code").stdout)["changes"] == []
    assert any(s["action"] == "merge" for s in json.loads(run("rebalance").stdout))
