"""Camera coverage: hand-built cases with known answers, the demo's planted camera gaps,
the Monaco extract, and freshness (one edited camera recomputes only the grids it touches).

Every test runs in a rolled-back transaction (``empty`` or ``conn``) and starts from no
stored results."""
from __future__ import annotations

import math

import pytest
from sqlalchemy import text

from analysis import cameras, freshness, services
from analysis.camera_views import DORI_PPM, dori_range
from layers.importer import import_osm
from tests.conftest import MONACO
from tests.coverage_world import building, camera, clear_results, facility, road, world

EAST = dict(azimuth=90.0, direction_type=1, hfov=90.0, max_view_distance=50.0, ptz_type=3, room_type=1)
R90 = 1920 / (2 * 62.5 * math.tan(math.radians(45)))  # observation range of a 90° lens: 15.36 m


def _unit(conn, detail="observation"):
    return cameras.coverage(conn, detail, scope="grid").iloc[0]


def test_a_wall_hides_what_is_behind_it(empty):
    world(empty)
    camera(empty, 1, 0, 0, **EAST)
    wall = building(empty, "WALL", 10, -30, 12, 30)
    road(empty, "FRONT", [(5, -40), (5, 40)])
    road(empty, "BEHIND", [(20, -40), (20, 40)])
    cameras.refresh(empty, "observation")
    view = cameras.camera_report(empty).iloc[0]
    assert view.range_m == pytest.approx(R90, abs=0.01) and view["shape"] == "sector"
    assert view.visible_m2 == pytest.approx(100.0, abs=0.5)  # the triangle up to the wall, nothing beyond
    assert view.sector_m2 == pytest.approx(math.pi * R90 ** 2 / 4, rel=0.002)
    u = _unit(empty)
    assert u.road_m == pytest.approx(160, abs=0.5)
    assert u.road_covered_m == pytest.approx(10, abs=1.0)  # |y| ≤ 5 on the road in front; nothing behind
    assert u.open_covered_m2 == pytest.approx(100, abs=0.5)
    assert u.facade_m == pytest.approx(120, abs=1.0)  # the wall's two long faces each face a road
    assert u.facade_covered_m == pytest.approx(19, abs=1.0)  # the west face seen for |y| ≤ 9.5 (0.5 m in front)
    gaps = cameras.uncovered(empty)
    behind = gaps[gaps.kind == "road"].to_crs(4547).geometry.iloc[0]
    assert behind.length == pytest.approx(150, abs=1.0)
    assert wall > 0


def test_a_fixed_camera_facing_east_does_not_see_a_road_to_its_west(empty):
    world(empty)
    camera(empty, 1, 0, 0, **EAST)
    road(empty, "WEST", [(-5, -40), (-5, 40)])
    cameras.refresh(empty, "detection")  # even at the longest range
    u = _unit(empty, "detection")
    assert u.road_m == pytest.approx(80, abs=0.5) and u.road_covered_m == 0
    road(empty, "EAST", [(5, -40), (5, 40)])
    cameras.refresh(empty, "detection")
    assert _unit(empty, "detection").road_covered_m == pytest.approx(10, abs=1.0)


@pytest.mark.parametrize("detail", list(DORI_PPM))
def test_sector_range_follows_the_dori_formula(empty, detail):
    world(empty)
    camera(empty, 1, 0, 0, **{**EAST, "hfov": 79.0, "max_view_distance": 200.0})
    camera(empty, 2, 100, 100, **{**EAST, "hfov": 38.0, "max_view_distance": 10.0})
    cameras.refresh(empty, detail)
    rep = cameras.camera_report(empty, detail).set_index("device_id")
    free = rep.iloc[0]
    expected = 1920 / (2 * DORI_PPM[detail] * math.tan(math.radians(79 / 2)))
    assert free.range_m == pytest.approx(expected, rel=1e-5) and free.range_source.startswith("DORI " + detail)
    assert free.visible_m2 == pytest.approx(math.pi * expected ** 2 * 79 / 360, rel=0.002)
    capped = rep.iloc[1]
    d38 = dori_range([38.0], DORI_PPM[detail], 1920)[0]
    assert capped.range_m == pytest.approx(min(10.0, d38), rel=1e-5)
    assert capped.range_source == ("MaxViewDistance" if d38 > 10 else f"DORI {detail} {DORI_PPM[detail]:g} px/m")


def test_domes_and_cameras_without_direction_are_circles_and_say_so(empty):
    world(empty)
    dome = camera(empty, 1, 0, 0, **{**EAST, "ptz_type": 1})  # a dome with a direction: still a circle
    blind = camera(empty, 2, 200, 0, ptz_type=3, room_type=1)  # nothing but a position
    off = camera(empty, 3, -200, 0, **{**EAST, "ptz_type": 1})
    empty.execute(text("UPDATE cameras SET status = 'offline' WHERE id = :i"), {"i": off})
    road(empty, "R", [(-220, 0), (220, 0)])
    cameras.refresh(empty)
    rep = cameras.camera_report(empty).set_index("camera_id")
    assert rep.loc[dome, "shape"] == "circle" and any(a.startswith("dome_circle") for a in rep.loc[dome, "assumptions"])
    assert rep.loc[dome, "visible_m2"] == pytest.approx(math.pi * R90 ** 2, rel=0.002)
    notes = rep.loc[blind, "assumptions"]
    assert rep.loc[blind, "shape"] == "circle"
    assert {n.split(":")[0] for n in notes} == {"no_direction_circle", "hfov_default", "no_max_distance"}
    assert any("79°" in n for n in notes)  # the default used is named
    assert rep.loc[blind, "range_m"] == pytest.approx(dori_range([79.0], 62.5, 1920)[0], rel=1e-5)
    assert not rep.loc[off, "counted"] and any(a.startswith("offline") for a in rep.loc[off, "assumptions"])
    u = _unit(empty)
    # the dome and the blind camera each see a diameter of the road; the offline one counts nothing
    expected = 2 * R90 + 2 * rep.loc[blind, "range_m"]
    assert u.road_covered_m == pytest.approx(expected, abs=2.0)
    assert u.cameras == 3 and u.cameras_counted == 2


def test_key_places_and_the_xueliang_target_by_name(empty):
    world(empty)
    building(empty, "SCHOOL", 20, -10, 60, 10)
    facility(empty, "F1", 40, 0, "primary_school", name="测试小学")
    building(empty, "CLINIC", -60, 100, -40, 120)
    facility(empty, "F2", -50, 110, "health_station", name="测试卫生站")
    hall = building(empty, "HALL", 200, 200, 220, 220, use="public")
    facility(empty, "F3", 210, 210, "community_service_station", name="测试服务站")
    camera(empty, 1, 8, 0, **EAST)  # looks at the school's west wall from 12 m
    camera(empty, 2, 210, 210, ptz_type=3, room_type=2, hfov=79.0, max_view_distance=10.0)  # indoor, in the hall
    road(empty, "R", [(-100, -20), (100, -20)])
    cameras.refresh(empty)
    places = cameras.key_places(empty).set_index("name")
    assert places.loc["测试小学", "covered"] and places.loc["测试服务站", "covered"]
    assert not places.loc["测试卫生站", "covered"]
    check = cameras.xueliang(empty).set_index("scope")
    sub = check.loc["subdistrict"]
    assert sub.key_places == 3 and sub.key_places_covered == 2 and sub.coverage_pass == False
    assert sub.uncovered == "测试卫生站" and "100%" in sub.coverage_rule and "996" in sub.coverage_rule
    assert sub.serviceability_pass == True
    # the indoor camera covers its building's key place but no street
    rep = cameras.camera_report(empty).set_index("shape")
    assert rep.loc["indoor", "visible_m2"] == pytest.approx(math.pi * 10 ** 2, rel=0.002)  # the hall within its 10 m range
    assert hall > 0


def test_demo_cameras_find_the_planted_gaps(demo, conn):
    clear_results(conn)
    ran = cameras.refresh(conn)
    assert ran["mode"] == "full" and ran["cameras"] == 189 and len(ran["units"]) == 69
    cov = cameras.coverage(conn).set_index("code")
    com = cov[cov.scope == "community"]
    sub = cov[cov.scope == "subdistrict"].iloc[0]
    # 起义门 (005): the fewest cameras and the lowest road coverage of all communities
    assert com["road_share"].idxmin() == "420106010005"
    # 起义门 and 阅马场 (008): one camera each inside; their inner streets are watched less than the sub-district's
    for code in ("420106010005", "420106010008"):
        assert com.loc[code, "inner_road_share"] < sub.inner_road_share
    assert com.loc["420106010005", "inner_road_share"] < 0.6 * sub.inner_road_share
    # sums: grids add up to their community, communities to the sub-district
    grids = cov[cov.scope == "grid"]
    assert grids.road_m.sum() == pytest.approx(sub.road_m, rel=1e-9)
    assert com.cameras.sum() == 189 and sub.cameras_counted == 183  # 6 offline do not count
    assert 0 < sub.road_share < 1 and 0 < sub.open_share < sub.road_share
    rep = cameras.camera_report(conn)
    assert (rep["shape"] == "circle").sum() == 17 and (rep["shape"] == "indoor").sum() == 13
    assert rep.loc[~rep.counted, "status"].eq("offline").sum() == 6
    check = cameras.xueliang(conn)
    assert not check.coverage_pass.any()  # no community has every key place covered
    assert check.set_index("code").loc["420106010005", "key_places_covered"] == 0


def test_monaco_gives_camera_and_service_figures_with_every_assumption_stated(empty):
    clear_results(empty)
    import_osm(MONACO, repair=True, conn=empty)
    ran = cameras.refresh(empty, "detection")
    assert ran["cameras"] == 14
    rep = cameras.camera_report(empty, "detection")
    assert len(rep) == 14 and rep.assumptions.map(len).gt(0).all()
    codes = rep.assumptions.map(lambda a: {n.split(":")[0] for n in a})
    no_direction = rep.azimuth.isna()
    assert codes[no_direction].map(lambda c: bool(c & {"dome_circle", "no_direction_circle"})).all()
    assert codes.map(lambda c: "hfov_default" in c and "no_max_distance" in c).all()  # OSM has neither: defaults named
    cov = cameras.coverage(empty, "detection")
    com = cov[cov.scope == "community"]
    assert len(com) == 6 and com.road_m.gt(0).all()
    sub = cov[cov.scope == "subdistrict"].iloc[0]
    assert 0 < sub.road_covered_m < sub.road_m and sub.cameras == com.cameras.sum()
    srv = services.refresh(empty)
    assert srv["homes"] > 400 and srv["edges"] > 1000
    cats = services.category_coverage(empty)
    kg = cats[(cats.scope == "subdistrict") & (cats.category == "kindergarten")].iloc[0]
    assert kg.homes > 0 and kg.households > 0  # OSM has no household counts: estimated from floor area (issue 13)
    assert kg.homes_beyond_network >= kg.homes_beyond_straight > 0
    print(f"\nMonaco (detection): roads {sub.road_m / 1000:.1f} km, {sub.road_share:.1%} covered; open space {sub.open_share:.2%}; "
          f"kindergarten within 300 m: network {kg.share_within_network:.1%}, straight {kg.share_within_straight:.1%}")


def test_editing_one_camera_recomputes_only_the_grids_it_touches(demo, conn):
    clear_results(conn)
    cameras.refresh(conn)
    assert not cameras.stale_units(conn).stale.any()
    before = cameras.coverage(conn, scope="grid").set_index("code")
    cam = conn.execute(text("""SELECT v.camera_id FROM camera_views v WHERE v.shape = 'sector' AND v.counted
                               ORDER BY v.visible_m2 DESC LIMIT 1""")).scalar_one()
    conn.execute(text("UPDATE cameras SET azimuth = (azimuth::numeric + 180) % 360, direction_type = NULL WHERE id = :i"), {"i": cam})
    views = cameras.stale_views(conn)
    assert views.loc[views.stale, "camera_id"].tolist() == [cam] and views.set_index("camera_id").loc[cam, "camera_changed"]
    flagged = cameras.stale_units(conn, views=views)
    stale = set(flagged.loc[flagged.stale, "code"])
    assert 1 <= len(stale) <= 4
    status = freshness.status(conn)
    assert set(status[(status.analysis == "cameras") & status.stale].code) == stale  # what the dashboard reads
    ran = cameras.refresh(conn, cameras=[cam])  # speed is measured in bench/bench_coverage.py, not asserted here
    assert ran["mode"] == "incremental" and set(ran["units"]) == stale
    assert not cameras.stale_units(conn).stale.any()
    after = cameras.coverage(conn, scope="grid").set_index("code")
    untouched = after.index.difference(sorted(stale))
    assert (after.loc[untouched, "computed_at"] == before.loc[untouched, "computed_at"]).all()
    assert (after.loc[sorted(stale), "computed_at"] > before.loc[sorted(stale), "computed_at"]).all()
    # the incremental figures equal a full recomputation
    cameras.refresh(conn, full=True)
    full = cameras.coverage(conn, scope="grid").set_index("code")
    for col in ("road_covered_m", "open_covered_m2", "facade_covered_m", "key_places_covered", "cameras_counted"):
        assert after[col].to_numpy() == pytest.approx(full[col].to_numpy(), abs=0.05), col
    # a building put up in front of a camera makes that camera's view stale
    conn.execute(text("""INSERT INTO buildings (source_id, district_code, households, geom)
        SELECT 'NEWWALL', '420106', 0, ST_Multi(ST_Transform(ST_Buffer(ST_Transform(camera_geom, 4547), 3, 'quad_segs=1'), 4326))
        FROM (SELECT ST_Transform(ST_Translate(ST_Transform(k.geom, 4547), 6, 0), 4326) AS camera_geom FROM cameras k WHERE k.id = :i) q"""),
                 {"i": cam})
    views = cameras.stale_views(conn)
    assert cam in set(views.loc[views.obstacles_changed, "camera_id"])
    ran = cameras.refresh(conn)
    assert ran["mode"] == "incremental" and ran["cameras"] >= 1
    assert not cameras.stale_units(conn).stale.any()
