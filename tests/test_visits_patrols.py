"""Visit schedule, walking order, visits, patrol tracks and coverage (issue 17), and the CLI's
strict JSON for them."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import text

from analysis import patrols, visits
from gis import scope as scope_mod
from gis.db import app_engine, owner_engine
from gis.problems import ImportFailed
from gis.scope import SYSTEM, Scope, use_scope
from gis.settings import get_settings
from layers import people

WANGGE = Path(sys.executable).parent / "wangge"


@pytest.fixture(scope="module")
def grid(demo) -> dict:
    with use_scope(SYSTEM), people.owner_transaction() as c:
        g = c.execute(text("""SELECT p.grid_id, g.code, g.community_code FROM persons p JOIN person_schedule s ON s.person_id = p.id
                                JOIN grids g ON g.id = p.grid_id
                               WHERE s.next_visit <= current_date GROUP BY 1, 2, 3 ORDER BY count(*) DESC LIMIT 1""")).one()
        cadre = c.execute(text("SELECT cadre_no FROM cadres ORDER BY cadre_no LIMIT 1")).scalar_one()
    return {"id": int(g[0]), "code": g[1], "community": g[2].strip(), "cadre": cadre}


@pytest.fixture
def sysconn():
    with owner_engine().connect() as c:
        tx = c.begin()
        scope_mod.apply(c.connection.dbapi_connection, SYSTEM)
        try:
            yield c
        finally:
            tx.rollback()


def worker(grid) -> Scope:
    return Scope(user="t_visits_worker", role="worker", communities=(grid["community"],), grids=(grid["id"],))


# --- schedule and route -------------------------------------------------------------------------------

def test_next_visit_follows_the_interval_settings(sysconn, grid):
    rows = sysconn.execute(text("""
        SELECT p.id, s.interval_days, s.next_visit, p.last_visit_at, g.group_code, g.risk_grade
          FROM persons p JOIN person_schedule s ON s.person_id = p.id JOIN person_groups g ON g.person_id = p.id
         WHERE g.group_code = 'mental' AND p.last_visit_at IS NOT NULL""")).all()
    assert rows
    for r in rows:
        want = 90 if r.risk_grade == 0 else 30 if r.risk_grade <= 2 else 7
        assert r.interval_days == want
        assert r.next_visit == (r.last_visit_at.astimezone(people.BEIJING).date() + timedelta(days=want))
    # the setting changes the schedule
    sysconn.execute(text("UPDATE visit_intervals SET interval_days = 3 WHERE group_code = 'mental' AND risk_min = 0"))
    r0 = [r for r in rows if r.risk_grade == 0]
    if r0:
        assert sysconn.execute(text("SELECT interval_days FROM person_schedule WHERE person_id = :p"), {"p": r0[0].id}).scalar_one() == 3


def test_today_list_is_a_walk_no_longer_than_the_list_order(grid):
    with use_scope(worker(grid)), app_engine().begin() as c:
        frame, route = visits.today_list(c, grid["id"])
        assert len(frame) >= 3 and (frame["grid_id"] == grid["id"]).all()
        assert (frame["days_overdue"] >= 0).all()
        unordered = visits.due(c, grid["id"])
        plain = visits.route(c, [int(b) for b in unordered["building_id"]])
        # the same stops walked in list order (no improvement): the route is never longer
        ids = [int(b) for b in unordered["building_id"]]
        assert sorted(frame["id"]) == sorted(unordered["id"])
    assert route.total_m <= plain.total_m + 1e-6
    assert route.line is not None and route.line.length > 0
    assert not any(route.straight)  # the demo's streets connect every building of the grid


def test_recording_a_visit_flags_a_far_location_and_moves_the_next_visit(grid):
    with use_scope(worker(grid)), app_engine().begin() as c:
        row = visits.due(c, grid["id"]).iloc[0]
        pid, bld = int(row["id"]), int(row["building_id"])
        lon, lat = c.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM buildings WHERE id = :b) x"),
                             {"b": bld}).one()
        near = visits.record(c, pid, "met", "测试：门口见到本人", lon=lon, lat=lat)
        far = visits.record(c, pid, "absent", "测试：远处", lon=lon + 0.01, lat=lat)
        assert not near["far"] and near["distance_m"] < get_settings().visit_far_m
        assert far["far"] and far["distance_m"] > 900
        after = people.person(c, pid, channel="test")
        assert after["next_visit"] > visits.today()
        assert {v["outcome"] for v in after["visits"]} >= {"met", "absent"}
        with pytest.raises(Exception, match="future"):
            visits.record(c, pid, "met", at=datetime.now(people.BEIJING) + timedelta(days=1))
        c.rollback()


def test_visit_import_all_or_nothing(tmp_path, grid, sysconn):
    pid = sysconn.execute(text("SELECT min(id) FROM persons WHERE grid_id = :g AND status = 'resident'"), {"g": grid["id"]}).scalar_one()
    n0 = sysconn.execute(text("SELECT count(*) FROM visits")).scalar_one()
    bad = pd.DataFrame([{"人员编号": pid, "走访时间": "2026-11-01 10:00", "结果": "见面", "走访人": "C0001"},
                        {"人员编号": 99999999, "走访时间": "2026-11-01 10:00", "结果": "见面"},
                        {"人员编号": pid, "走访时间": "不是时间", "结果": "见面"},
                        {"人员编号": pid, "走访时间": "2026-11-01 11:00", "结果": "聊天"}])
    bad.to_csv(tmp_path / "v.csv", index=False)
    with pytest.raises(ImportFailed) as err:
        visits.import_visits(tmp_path / "v.csv", conn=sysconn)
    assert {p.row for p in err.value.problems} == {3, 4, 5}
    assert sysconn.execute(text("SELECT count(*) FROM visits")).scalar_one() == n0
    out = visits.import_visits(_write(tmp_path / "ok.csv", bad.iloc[:1]), conn=sysconn)
    assert out["visits"] == 1


def _write(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


# --- patrols ---------------------------------------------------------------------------------------------

def _walk_track(sysconn, grid_id: int, hours: float = 2.5, step_s: int = 10) -> pd.DataFrame:
    """A walk along the grid's streets at 1.2 m/s, one fix every ``step_s`` seconds."""
    from pyproj import Transformer

    from gis.measure import metric_srid

    srid = metric_srid(sysconn)
    wkb = sysconn.execute(text(f"""
        SELECT ST_AsBinary(ST_Transform(ST_LineMerge(ST_Collect(ST_Intersection(r.geom, g.geom))), {srid}))
          FROM roads r JOIN grids g ON g.id = :g WHERE r.walkable AND ST_Intersects(r.geom, g.geom)"""), {"g": grid_id}).scalar_one()
    lines = shapely.get_parts(shapely.from_wkb(bytes(wkb)))
    lines = sorted(lines, key=lambda l: -l.length)[:3]
    pts = []
    for line in lines:
        d = np.arange(0, line.length, 1.2 * step_s)
        pts += list(shapely.line_interpolate_point(line, d))
    n = int(hours * 3600 / step_s)
    pts = (pts * (n // max(len(pts), 1) + 1))[:n]
    xy = np.array([[p.x, p.y] for p in pts])
    lon, lat = Transformer.from_crs(srid, 4326, always_xy=True).transform(xy[:, 0], xy[:, 1])
    t0 = pd.Timestamp("2026-12-01 08:00", tz="Asia/Shanghai")
    return pd.DataFrame({"时间": [t0 + pd.Timedelta(seconds=step_s * k) for k in range(n)], "经度": lon, "纬度": lat})


def test_patrol_import_gcj02_coverage_and_hours_match_a_geopandas_count(tmp_path, grid, sysconn):
    from gis.crs import shift
    from gis.measure import metric_srid

    track = _walk_track(sysconn, grid["id"])
    wgs = shapely.points(track[["经度", "纬度"]].to_numpy())
    gcj = shift(wgs, "GCJ-02")
    shifted = track.assign(经度=shapely.get_x(gcj), 纬度=shapely.get_y(gcj))
    shifted["时间"] = shifted["时间"].dt.strftime("%Y-%m-%d %H:%M:%S")
    path = _write(tmp_path / "轨迹.csv", shifted)
    rep = patrols.import_track(path, grid["cadre"], crs="gcj02", conn=sysconn)
    assert len(rep.tracks) == 1 and rep.tracks[0]["day"] == "2026-12-01"
    assert abs(rep.tracks[0]["hours"] - 2.5) < 0.01
    stored = sysconn.execute(text("SELECT ST_AsText(geom) FROM patrol_tracks WHERE id = :i"), {"i": rep.tracks[0]["id"]}).scalar_one()
    srid = metric_srid(sysconn)
    orig = gpd.GeoSeries([shapely.LineString(shapely.get_coordinates(wgs))], crs=4326).to_crs(srid)
    back = gpd.GeoSeries.from_wkt([stored], crs=4326).to_crs(srid)
    assert orig.iloc[0].hausdorff_distance(back.iloc[0]) < 1.0  # converted back, not stored shifted
    cov = patrols.coverage(sysconn, pd.Timestamp("2026-12-01").date(), pd.Timestamp("2026-12-01").date())
    row = cov[cov["grid_id"] == grid["id"]].iloc[0]
    # baseline: geopandas buffer-and-join in the metric CRS
    b = gpd.read_postgis(text("SELECT id, households, geom FROM buildings WHERE grid_id = :g"), sysconn, geom_col="geom",
                         params={"g": grid["id"]}).to_crs(srid)
    buf = back.buffer(get_settings().patrol_distance_m)
    hit = gpd.sjoin(b, gpd.GeoDataFrame(geometry=buf), predicate="intersects")
    expected = int(b[b["id"].isin(hit["id"])]["households"].sum())
    assert abs(int(row["households_covered"]) - expected) <= max(2, 0.01 * int(row["households"]))  # geodesic vs projected edge cases
    assert row["households"] == int(b["households"].sum()) and 0 < row["share"] <= 1
    assert row["band"] == patrols.band(row["share"]) and 0 < row["street_covered_m"] <= row["street_m"]
    hrs = patrols.hours(sysconn, pd.Timestamp("2026-12-01").date(), pd.Timestamp("2026-12-01").date())
    mine = hrs[hrs["cadre_no"] == grid["cadre"]].iloc[0]
    assert abs(mine["hours"] - 2.5) < 0.01 and bool(mine["meets_minimum"])


def test_street_lengths_are_kept_until_a_road_or_an_outline_changes(grid, sysconn):
    """A grid no track came near has nothing covered and its walkable street length, measured once
    and kept (migration 0030) until a road or a grid outline changes; an assignment keeps it."""
    day = pd.Timestamp("2020-01-01").date()  # no track that day
    version = "SELECT v FROM grid_streets_version"
    measured = """SELECT g.id, coalesce(sum(ST_Length(ST_CollectionExtract(ST_Intersection(r.geom, g.geom), 2)::geography)), 0) AS m
                    FROM grids g LEFT JOIN roads r ON r.walkable AND ST_Intersects(r.geom, g.geom)
                   WHERE g.valid_to IS NULL GROUP BY g.id"""
    first = patrols.coverage(sysconn, day, day).set_index("grid_id")
    direct = pd.read_sql(text(measured), sysconn).set_index("id")["m"]
    assert (first["households_covered"] == 0).all() and (first["street_covered_m"] == 0).all() and (first["tracks"] == 0).all()
    # (patrols.coverage rounds metres to 0.1: within 0.05 of the exact length, twice that for a difference)
    assert np.allclose(first["street_m"].to_numpy(), direct.reindex(first.index).to_numpy(), rtol=1e-9, atol=0.051)
    assert (first["street_m"] > 0).sum() > len(first) / 2
    kept = sysconn.execute(text("SELECT count(*) FROM grid_streets WHERE version = (SELECT v FROM grid_streets_version)")).scalar_one()
    assert kept == len(first)
    v0 = sysconn.execute(text(version)).scalar_one()
    sysconn.execute(text("UPDATE grids SET staff_version = staff_version + 1 WHERE id = :g"), {"g": grid["id"]})  # an assignment
    assert sysconn.execute(text(version)).scalar_one() == v0
    pd.testing.assert_frame_equal(patrols.coverage(sysconn, day, day).set_index("grid_id"), first)
    # a walkable road of the grid closed: the grid's length is measured again, less that road's part
    road, part = sysconn.execute(text("""
        SELECT r.id, ST_Length(ST_CollectionExtract(ST_Intersection(r.geom, g.geom), 2)::geography) FROM roads r JOIN grids g ON g.id = :g
         WHERE r.walkable AND ST_Intersects(r.geom, g.geom) ORDER BY 2 DESC LIMIT 1"""), {"g": grid["id"]}).one()
    sysconn.execute(text("UPDATE roads SET walkable = false WHERE id = :r"), {"r": road})
    assert sysconn.execute(text(version)).scalar_one() > v0
    after = patrols.coverage(sysconn, day, day).set_index("grid_id")
    assert after.loc[grid["id"], "street_m"] == pytest.approx(first.loc[grid["id"], "street_m"] - part, abs=0.101)


def test_patrol_bands():
    assert [patrols.band(s) for s in (1.0, 0.95, 0.949, 0.9, 0.86, 0.5, None, float("nan"))] == [
        "band_1", "band_1", "band_2", "band_2", "band_3", "below", "none", "none"]


def test_bad_tracks_are_refused_with_rows(tmp_path, grid, sysconn):
    bad = pd.DataFrame({"时间": ["2026-12-01 08:00:00", "昨天", "2026-12-01 08:00:20"], "经度": [114.3, 114.3, 999], "纬度": [30.5, 30.5, 30.5]})
    with pytest.raises(ImportFailed) as err:
        patrols.import_track(_write(tmp_path / "bad.csv", bad), grid["cadre"], conn=sysconn)
    assert {p.row for p in err.value.problems} == {3, 4}
    ok = pd.DataFrame({"时间": ["2026-12-01 08:00:00", "2026-12-01 08:00:10"], "经度": [114.3, 114.3001], "纬度": [30.5, 30.5]})
    with pytest.raises(ImportFailed, match="cadre"):
        patrols.import_track(_write(tmp_path / "ok.csv", ok), "NO-SUCH", conn=sysconn)


def test_gpx_tracks_are_read(tmp_path):
    gpx = tmp_path / "t.gpx"
    gpx.write_text("""<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>
<trkpt lat="30.54" lon="114.29"><time>2026-12-01T00:00:00Z</time></trkpt>
<trkpt lat="30.5401" lon="114.2901"><time>2026-12-01T00:00:10Z</time></trkpt>
<trkpt lat="30.5402" lon="114.2902"><time>2026-12-01T00:20:10Z</time></trkpt>
</trkseg></trk></gpx>""")
    fixes = patrols.read_fixes(gpx)
    days = patrols.split_days(fixes)
    assert len(fixes) == 3 and len(days) == 1 and days[0].active_s == 10  # the 20-minute gap is a break
    assert str(days[0].day) == "2026-12-01" and fixes["time"].iloc[0].hour == 8  # Beijing time


# --- patrols recorded on the phone (the browser's watchPosition fixes) ---------------------------------

def _device(frame: pd.DataFrame, acc: float = 5.0) -> list[dict]:
    """A walk's fixes as the phone's browser sends them: epoch milliseconds, lon, lat, accuracy."""
    return [{"t": int(pd.Timestamp(t).value // 1_000_000), "lon": float(x), "lat": float(y), "acc": acc}
            for t, x, y in zip(frame["时间"], frame["经度"], frame["纬度"])]


@pytest.fixture
def workerconn(grid):
    with use_scope(worker(grid)), app_engine().connect() as c:
        tx = c.begin()
        try:
            yield c
        finally:
            tx.rollback()


def test_a_recorded_patrol_is_stored_exactly_like_an_imported_one(tmp_path, grid, sysconn, workerconn):
    walk = _walk_track(sysconn, grid["id"], hours=0.5).iloc[::3].reset_index(drop=True)
    walk["时间"] = walk["时间"] - pd.Timedelta(days=200)  # a day no other test patrols
    day = walk["时间"].iloc[0].date()
    records = _device(walk)
    records.insert(5, {**records[5], "t": records[5]["t"] + 1000, "lon": records[5]["lon"] + 0.01, "acc": 900.0})  # a cell-tower fix
    out = patrols.record_track(workerconn, records, grid["id"], "t_visits_worker")
    assert out["imprecise"] == 1 and out["fixes"] == len(walk) and len(out["tracks"]) == 1
    mine = workerconn.execute(text("""SELECT fixes, active_s, length_m, grid_ids, ST_AsText(geom), source_file, imported_by, cadre_no
                                        FROM patrol_tracks WHERE id = :i"""), {"i": out["tracks"][0]["id"]}).one()
    assert mine.source_file == patrols.DEVICE_SOURCE and mine.imported_by == "t_visits_worker" and grid["id"] in mine.grid_ids
    cov_mine = patrols.coverage(workerconn, day, day)
    # the same fixes as a CSV through the import, in another transaction
    csv = walk.assign(时间=walk["时间"].dt.strftime("%Y-%m-%d %H:%M:%S"))
    rep = patrols.import_track(_write(tmp_path / "同一轨迹.csv", csv), mine.cadre_no, conn=sysconn)
    theirs = sysconn.execute(text("SELECT fixes, active_s, length_m, grid_ids, ST_AsText(geom) FROM patrol_tracks WHERE id = :i"),
                             {"i": rep.tracks[0]["id"]}).one()
    assert tuple(mine)[:5] == tuple(theirs)
    cov_theirs = patrols.coverage(sysconn, day, day)
    a = cov_mine[cov_mine["grid_id"] == grid["id"]].iloc[0]
    b = cov_theirs[cov_theirs["grid_id"] == grid["id"]].iloc[0]
    assert a["households_covered"] == b["households_covered"] > 0 and a["street_covered_m"] == b["street_covered_m"]


def test_a_recorded_patrol_splits_at_beijing_midnight(grid, sysconn, workerconn):
    walk = _walk_track(sysconn, grid["id"], hours=0.1)
    t0 = pd.Timestamp("2026-06-01 23:58:00", tz="Asia/Shanghai")
    walk["时间"] = [t0 + pd.Timedelta(seconds=10 * k) for k in range(len(walk))]
    out = patrols.record_track(workerconn, _device(walk), grid["id"], "t_visits_worker")
    assert [t["day"] for t in out["tracks"]] == ["2026-06-01", "2026-06-02"]


def test_a_recorded_patrol_outside_the_workers_grids_or_with_bad_fixes_is_refused(grid, sysconn, workerconn):
    far = sysconn.execute(text("""SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(geom) c FROM grids
                                    WHERE valid_to IS NULL AND NOT ST_DWithin(geom::geography,
                                          (SELECT geom::geography FROM grids WHERE id = :g), 300) LIMIT 1) q"""),
                          {"g": grid["id"]}).one()
    now = int(pd.Timestamp.now(tz="UTC").value // 1_000_000)
    fixes = [{"t": now + 10_000 * k, "lon": far[0] + 0.0001 * k, "lat": far[1], "acc": 5} for k in range(5)]
    with pytest.raises(ImportFailed, match="none of your grids"):
        patrols.record_track(workerconn, fixes, grid["id"], "t_visits_worker")
    bad = [{"t": now, "lon": 114.3, "lat": 30.5, "acc": 5}, {"t": None, "lon": 114.3, "lat": 30.5, "acc": 5},
           {"t": now + 20_000, "lon": 114.3, "lat": 999, "acc": 5}]
    with pytest.raises(ImportFailed) as err:
        patrols.record_track(workerconn, bad, grid["id"], "t_visits_worker")
    assert {p.row for p in err.value.problems} == {2, 3}
    with pytest.raises(ImportFailed, match="fewer than two"):
        patrols.record_track(workerconn, [{"t": now, "lon": 114.3, "lat": 30.5, "acc": 5}], grid["id"], "t_visits_worker")


# --- overdue visits per grid, for the map ---------------------------------------------------------------

def test_overdue_grids_are_counts_for_each_role_and_read_no_person(grid, sysconn):
    with use_scope(SYSTEM), people.owner_transaction() as c:
        logged = c.execute(text("SELECT count(*) FROM person_access_log")).scalar_one()
        truth = dict(c.execute(text("""SELECT p.grid_id, count(*) FROM persons p JOIN person_schedule s ON s.person_id = p.id
                                        WHERE s.next_visit < :d GROUP BY 1"""), {"d": visits.today()}).all())
    lead = Scope(user="t_overdue_leader", role="leader")
    sec = Scope(user="t_overdue_sec", role="secretary", communities=(grid["community"],))
    with use_scope(lead), app_engine().connect() as c:
        allg = visits.overdue_grids(c)
    with use_scope(sec), app_engine().connect() as c:
        mine = visits.overdue_grids(c, community=grid["community"])
    with use_scope(worker(grid)), app_engine().connect() as c:
        wk = visits.overdue_grids(c, grid_ids=[grid["id"]])
    assert {int(i): int(o) for i, o in zip(allg["id"], allg["overdue"]) if o} == {int(k): int(v) for k, v in truth.items()}
    assert set(mine["community_code"]) == {grid["community"]} and len(mine) < len(allg)
    assert int(mine.loc[mine["id"] == grid["id"], "overdue"].iloc[0]) == truth[grid["id"]]
    assert list(wk["id"]) == [grid["id"]] and int(wk["overdue"].iloc[0]) == truth[grid["id"]]
    for f in (allg, mine, wk):  # counts only: no column holds a person
        assert not {"name", "id_masked", "person_id"} & set(f.columns)
        assert set(f["rate_band"]) <= {"none", "zero", "low", "mid", "high"}
        assert all(b == visits.overdue_band(o, s) for b, o, s in zip(f["rate_band"], f["overdue"], f["scheduled"]))
    with use_scope(lead), app_engine().connect() as c:  # a city's map: per community, the same counts
        coms = visits.overdue_communities(c)
    per = allg.groupby("community_code")[["persons", "scheduled", "due_today", "overdue"]].sum()
    got = coms.set_index("code")[["persons", "scheduled", "due_today", "overdue"]]
    assert len(got) >= len(per) and (got.loc[per.index].to_numpy() == per.to_numpy()).all()
    assert not {"name", "id_masked", "person_id"} & set(coms.columns) and coms["id"].is_unique
    assert all(b == visits.overdue_band(o, s) for b, o, s in zip(coms["rate_band"], coms["overdue"], coms["scheduled"]))
    with use_scope(SYSTEM), people.owner_transaction() as c:
        assert c.execute(text("SELECT count(*) FROM person_access_log")).scalar_one() == logged  # nobody's record was read


def test_overdue_bands():
    assert [visits.overdue_band(o, s, [0.1, 0.25]) for o, s in ((0, 0), (0, 5), (1, 10), (2, 10), (1, 4), (5, 10))] == [
        "none", "zero", "low", "mid", "mid", "high"]
    bands, (q1, q2) = visits.count_bands(pd.Series([0, 1, 2, 3, 4, 10]))
    assert (q1, q2) == (3, 4) and bands == ["zero", "low", "low", "low", "mid", "high"]


# --- the command line ---------------------------------------------------------------------------------------

def run(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if "DATABASE_URL" not in k}
    env["WANGGE_DB_NAME"] = get_settings().db_name
    return subprocess.run([str(WANGGE), *args], capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.skipif(not WANGGE.exists(), reason="the wangge console command is not installed")
def test_cli_json_is_strict_and_reads_are_logged(grid):
    out = run("visits", "due", "--grid", grid["code"], "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert data["due"] and all(len(r["id_masked"]) == 18 and "*" * 8 in r["id_masked"] for r in data["due"])
    pid = data["due"][0]["id"]
    log = json.loads(run("people", "access-log", "--person", str(pid), "--json").stdout)
    assert any(r["channel"] == "cli" and r["action"] == "list" for r in log)
    cov = run("patrol", "coverage", "--period", "2026-12", "--json")
    assert cov.returncode == 0, cov.stderr
    json.loads(cov.stdout, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert run("visits", "due", "--grid", "NOPE", "--json").returncode == 1
    assert run("people", "anonymise", "--days", "100000", "--json").returncode == 0
