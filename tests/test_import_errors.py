"""Every kind of bad input stops the import with a problem that names the file, the row
(and ID) and what is wrong; nothing is written unless --skip-invalid asks for the rest."""
from __future__ import annotations

import geopandas as gpd
import pytest
from shapely.geometry import Point, Polygon
from sqlalchemy import text

from gis.problems import ImportFailed, Problem
from layers.importer import import_file
from tests import fixtures_files as ff
from tests.conftest import count


def failed(conn, layer: str, path, **kwargs) -> list[Problem]:
    """Import that must fail; returns its problems after checking nothing landed."""
    table = {"subdistricts": "subdistricts", "communities": "communities"}.get(layer, layer)
    before = count(conn, table)
    with pytest.raises(ImportFailed) as err:
        import_file(layer, path, conn=conn, **kwargs)
    assert count(conn, table) == before
    assert all(p.file == path.name for p in err.value.problems), err.value.problems
    return err.value.problems


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, problems
    return problems[0]


# --- text ---------------------------------------------------------------------------------

def test_undecodable_shapefile_names_row_3(empty, tmp_path):
    path = ff.undecodable_shapefile(tmp_path)
    p = only(failed(empty, "buildings", path))
    assert (p.file, p.row) == ("broken_text.shp", 3)
    assert "decode" in p.problem
    assert "broken_text.shp" in str(ImportFailed([p])) and "row 3" in str(ImportFailed([p]))


def test_undecodable_csv_names_its_row(empty, tmp_path):
    path = tmp_path / "facilities.csv"
    lines = ["编号,名称,类别,经度,纬度", f"F1,服务站,社区服务站,{ff.LON},{ff.LAT}", f"F2,幼儿园,幼儿园,{ff.LON},{ff.LAT}"]
    raw = "\n".join(lines).encode("gbk") + b"\nF3,\xff\xff," + f"药店,{ff.LON},{ff.LAT}\n".encode("gbk")
    path.write_bytes(raw)
    p = only(failed(empty, "facilities", path, crs="EPSG:4326"))
    assert p.row == 3 and "UTF-8" in p.problem and "GBK" in p.problem


def test_declared_encoding_that_does_not_fit(empty, tmp_path):
    path = ff.write_csv(tmp_path / "f.csv", ["编号", "名称", "类别"], [["F1", "服务站", "社区服务站"]], encoding="gbk")
    p = only(failed(empty, "facilities", path, encoding="utf-8"))
    assert "decode" in p.problem or "编码" in p.problem


def test_unknown_encoding_name(empty, tmp_path):
    path = ff.write_csv(tmp_path / "f.csv", ["编号", "类别"], [["F1", "药店"]])
    p = only(failed(empty, "facilities", path, encoding="gbx"))
    assert "unknown encoding 'gbx'" in p.problem


# --- geometry -----------------------------------------------------------------------------

def bowtie_file(tmp_path, n: int = 3, at: int = 1):
    gdf = ff.buildings(n)
    geoms = list(gdf.geometry)
    geoms[at] = ff.bowtie(*ff.spot(at))
    gdf = gdf.set_geometry(geoms)
    return ff.write(gdf, tmp_path / "bowtie.geojson")


def test_self_intersection_stops_the_import_by_default(empty, tmp_path):
    p = only(failed(empty, "buildings", bowtie_file(tmp_path)))
    assert (p.row, p.source_id) == (2, "B002")
    assert "Self-intersection" in p.problem and "--repair" in p.problem


def test_repair_fixes_and_reports_each_repair(empty, tmp_path):
    report = import_file("buildings", bowtie_file(tmp_path), repair=True, conn=empty)
    assert report.rows == 3
    [r] = report.repaired
    assert (r.file, r.row, r.source_id) == ("bowtie.geojson", 2, "B002") and "Self-intersection" in r.problem
    assert report.skipped == []
    fixed = empty.execute(text("SELECT ST_IsValid(geom), ST_NumGeometries(geom), GeometryType(geom) FROM buildings WHERE source_id = 'B002'")).one()
    assert tuple(fixed) == (True, 2, "MULTIPOLYGON")  # the bow-tie's two triangles


def test_skip_invalid_leaves_the_bowtie_out_and_says_so(empty, tmp_path):
    report = import_file("buildings", bowtie_file(tmp_path), skip_invalid=True, conn=empty)
    assert report.rows == 2 and [(p.row, p.source_id) for p in report.skipped] == [(2, "B002")]
    assert sorted(empty.execute(text("SELECT source_id FROM buildings")).scalars()) == ["B001", "B003"]


def test_empty_and_missing_geometry(empty, tmp_path):
    gdf = ff.buildings(3)
    gdf = gdf.set_geometry([gdf.geometry[0], Polygon(), None])
    problems = failed(empty, "buildings", ff.write(gdf, tmp_path / "empty.gpkg"))
    assert [(p.row, p.source_id) for p in problems] == [(2, "B002"), (3, "B003")]
    assert all("empty or missing geometry" in p.problem for p in problems)


def test_wrong_geometry_type(empty, tmp_path):
    gdf = ff.buildings(2)
    gdf = gdf.set_geometry([gdf.geometry[0], Point(ff.LON, ff.LAT)])
    p = only(failed(empty, "buildings", ff.write(gdf, tmp_path / "points.geojson")))
    assert (p.row, p.source_id) == (2, "B002") and "wrong geometry type Point" in p.problem and "MultiPolygon" in p.problem


def test_polygon_into_a_point_layer(empty, tmp_path):
    gdf = gpd.GeoDataFrame({"source_id": ["F1"], "category": ["药店"]}, geometry=[ff.square(ff.LON, ff.LAT)], crs=4326)
    p = only(failed(empty, "facilities", ff.write(gdf, tmp_path / "f.geojson")))
    assert p.row == 1 and "wrong geometry type Polygon" in p.problem


def test_coordinates_out_of_range(empty, tmp_path):
    path = ff.write_csv(tmp_path / "f.csv", ["编号", "类别", "经度", "纬度"], [
        ["F1", "药店", ff.LON, ff.LAT], ["F2", "药店", 200, ff.LAT], ["F3", "药店", ff.LON, -95]])
    problems = failed(empty, "facilities", path, crs="EPSG:4326")
    assert [(p.row, p.source_id) for p in problems] == [(2, "F2"), (3, "F3")]
    assert "out of range" in problems[0].problem and "200" in problems[0].problem


def test_non_numeric_coordinate(empty, tmp_path):
    path = ff.write_csv(tmp_path / "f.csv", ["编号", "类别", "经度", "纬度"], [["F1", "药店", ff.LON, ff.LAT], ["F2", "药店", "东经114", ff.LAT]])
    p = only(failed(empty, "facilities", path, crs="EPSG:4326"))
    assert p.row == 2 and "not a number" in p.problem and "东经114" in p.problem


def test_only_one_coordinate_column(empty, tmp_path):
    path = ff.write_csv(tmp_path / "f.csv", ["编号", "类别", "经度"], [["F1", "药店", ff.LON]])
    p = only(failed(empty, "facilities", path, crs="EPSG:4326"))
    assert p.row is None and "only one of the longitude/latitude" in p.problem


def test_bad_wkt_in_a_table(empty, tmp_path):
    path = ff.write_csv(tmp_path / "b.csv", ["编号", "wkt"], [["B001", ff.square(ff.LON, ff.LAT).wkt], ["B002", "POLYGON ((114.3 30.5, 11"]])
    p = only(failed(empty, "buildings", path, crs="EPSG:4326"))
    assert (p.row, p.column) == (2, "wkt") and "not a WKT geometry" in p.problem


# --- CRS ----------------------------------------------------------------------------------

def test_unknown_crs(empty, tmp_path):
    path = ff.write(ff.buildings(1), tmp_path / "b.geojson")
    p = only(failed(empty, "buildings", path, crs="EPSG:999999"))
    assert "unknown CRS" in p.problem and "999999" in p.problem
    p = only(failed(empty, "buildings", path, crs="beijing54-ish"))
    assert "unknown CRS" in p.problem


def test_csv_without_crs(empty, tmp_path):
    path = ff.write_csv(tmp_path / "f.csv", ["编号", "类别", "经度", "纬度"], [["F1", "药店", ff.LON, ff.LAT]])
    p = only(failed(empty, "facilities", path))
    assert p.row is None and "--crs" in p.problem


def test_shapefile_without_prj(empty, tmp_path):
    p = only(failed(empty, "buildings", ff.shapefile_without_prj(tmp_path)))
    assert p.row is None and "declares no CRS" in p.problem and "--crs" in p.problem


def test_shapefile_without_prj_imports_with_crs(empty, tmp_path):
    report = import_file("buildings", ff.shapefile_without_prj(tmp_path), crs="EPSG:4326", conn=empty)
    assert report.rows == 2 and report.crs == "EPSG:4326"


# --- fields -------------------------------------------------------------------------------

def test_missing_required_column(empty, tmp_path):
    path = ff.write(ff.buildings(2).drop(columns=["source_id"]), tmp_path / "noid.geojson")
    p = only(failed(empty, "buildings", path))
    assert p.row is None and p.column == "source_id" and "missing required field" in p.problem and "楼栋编号" in p.problem


def test_required_value_empty_in_one_row(empty, tmp_path):
    path = ff.write(ff.buildings(3, source_id=["B001", " ", "B003"]), tmp_path / "blank.geojson")
    p = only(failed(empty, "buildings", path))
    assert (p.row, p.column) == (2, "source_id") and "is empty" in p.problem


def test_duplicate_ids_within_the_file_name_both_rows(empty, tmp_path):
    path = ff.write(ff.buildings(4, source_id=["B001", "B002", "B001", "B004"]), tmp_path / "dup.geojson")
    p = only(failed(empty, "buildings", path))
    assert (p.row, p.source_id, p.column) == (3, "B001", "source_id")
    assert "duplicate ID" in p.problem and "row 1" in p.problem


def test_duplicate_ids_against_the_table(empty, tmp_path):
    import_file("buildings", ff.write(ff.buildings(3), tmp_path / "first.geojson"), conn=empty)
    second = ff.buildings(3, source_id=["B009", "B003", "B001"])
    problems = failed(empty, "buildings", ff.write(second, tmp_path / "second.geojson"))
    assert [(p.row, p.source_id) for p in problems] == [(2, "B003"), (3, "B001")]
    assert all("already in layer buildings" in p.problem and "--replace" in p.problem for p in problems)
    assert count(empty, "buildings") == 3


def test_bad_vocabulary_value(empty, tmp_path):
    path = ff.write_csv(tmp_path / "f.csv", ["编号", "类别", "经度", "纬度"], [
        ["F1", "药店", ff.LON, ff.LAT], ["F2", "游乐园", ff.LON, ff.LAT]])
    p = only(failed(empty, "facilities", path, crs="EPSG:4326"))
    assert (p.row, p.source_id, p.column) == (2, "F2", "category")
    assert "unknown category '游乐园'" in p.problem and "社区服务站" in p.problem


@pytest.mark.parametrize("value,words", [
    ("二十", "is not a number: '二十'"),
    ("12.5", "is not a whole number"),
    ("-3", "below the minimum 0"),
])
def test_bad_number(empty, tmp_path, value, words):
    path = ff.write(ff.buildings(3, households=["20", value, "22"]), tmp_path / "hh.geojson")
    p = only(failed(empty, "buildings", path))
    assert (p.row, p.source_id, p.column) == (2, "B002", "households") and words in p.problem


def test_bad_district_code_column(empty, tmp_path):
    path = ff.write(ff.buildings(2, district_code=["420106", "4201"]), tmp_path / "d.geojson")
    p = only(failed(empty, "buildings", path))
    assert (p.row, p.column) == (2, "district_code") and "6 digits" in p.problem


def test_every_problem_is_listed_in_one_run(empty, tmp_path):
    gdf = ff.buildings(4, households=[1, "x", 3, 4], source_id=["B001", "B002", "B001", "B004"])
    gdf = gdf.set_geometry([gdf.geometry[0], gdf.geometry[1], gdf.geometry[2], Point(ff.LON, ff.LAT)])
    problems = failed(empty, "buildings", ff.write(gdf, tmp_path / "many.geojson"))
    assert [p.row for p in problems] == [2, 3, 4]


# --- all or nothing -----------------------------------------------------------------------

def hundred_with_one_bad(tmp_path):
    gdf = ff.buildings(100, households=[10] * 57 + ["很多"] + [10] * 42)
    return ff.write(gdf, tmp_path / "hundred.gpkg")


def test_one_bad_row_in_a_hundred_writes_nothing(empty, tmp_path):
    p = only(failed(empty, "buildings", hundred_with_one_bad(tmp_path)))
    assert (p.row, p.source_id) == (58, "B058")
    assert count(empty, "buildings") == 0 and count(empty, "audit_log") == 0


def test_skip_invalid_keeps_source_row_numbers_for_later_checks(empty, tmp_path):
    """Rows skipped early must not shift the row numbers of problems found afterwards."""
    import_file("buildings", ff.write(ff.buildings(1, source_id=["B100"]), tmp_path / "first.geojson"), conn=empty)
    gdf = ff.buildings(3, source_id=["B001", "B002", "B100"], households=["x", 1, 2])
    problems = failed(empty, "buildings", ff.write(gdf, tmp_path / "second.geojson"), skip_invalid=True)
    assert [(p.row, p.source_id) for p in problems] == [(3, "B100")]


def test_skip_invalid_imports_the_other_99(empty, tmp_path):
    report = import_file("buildings", hundred_with_one_bad(tmp_path), skip_invalid=True, conn=empty)
    assert report.rows == 99 and count(empty, "buildings") == 99
    [s] = report.skipped
    assert (s.file, s.row, s.source_id, s.column) == ("hundred.gpkg", 58, "B058", "households")
    assert count(empty, "buildings", "source_id = 'B058'") == 0


def test_failure_in_a_later_stage_rolls_back_the_earlier_writes(empty, tmp_path):
    """Assignments write their staging rows, then find an unknown cadre: nothing stays."""
    ff.load_admin(empty, tmp_path)
    import_file("cadres", ff.write_csv(tmp_path / "c.csv", ["编号", "姓名", "角色"], [["C001", "张三", "网格长"]]), conn=empty)
    path = ff.write_csv(tmp_path / "a.csv", ["干部编号", "对象"], [["C001", ff.GRID], ["C001", ff.GRID_2], ["C404", ff.GRID]])
    p = only(failed(empty, "assignments", path))
    assert (p.row, p.source_id) == (3, "C404") and "no cadre 'C404'" in p.problem
    # the savepoint went, the caller's transaction did not
    assert count(empty, "cadres") == 1 and count(empty, "assignments") == 0


# --- layer rules --------------------------------------------------------------------------

@pytest.mark.parametrize("code,community,words", [
    ("42010601000A001", None, "14 or 15 digits"),
    ("420106010002001", ff.COMMUNITY, "does not start with its community code"),
    ("420106010001000", None, "serial must not be zero"),
])
def test_bad_grid_codes(empty, tmp_path, code, community, words):
    ff.load_admin(empty, tmp_path)
    gdf = gpd.GeoDataFrame({"code": ["420106010001003", code], "community_code": [None, community]},
                           geometry=[ff.square(ff.LON, ff.LAT)] * 2, crs=4326)
    p = only(failed(empty, "grids", ff.write(gdf, tmp_path / "grids.geojson")))
    assert (p.row, p.source_id, p.column) == (2, code, "code") and words in p.problem
    assert count(empty, "grids") == 2


def test_grid_of_an_unknown_community(empty, tmp_path):
    ff.load_admin(empty, tmp_path)
    gdf = gpd.GeoDataFrame({"code": ["420106010001003", "420106010099001"]}, geometry=[ff.square(ff.LON, ff.LAT)] * 2, crs=4326)
    p = only(failed(empty, "grids", ff.write(gdf, tmp_path / "grids.geojson")))
    assert (p.row, p.source_id) == (2, "420106010099001") and "420106010099" in p.problem


def test_unknown_community_code(empty, tmp_path):
    ff.load_admin(empty, tmp_path)
    path = ff.write(ff.points(["F1", "F2"], category=["药店", "药店"], community_code=[ff.COMMUNITY, "420106010077"]), tmp_path / "f.geojson")
    p = only(failed(empty, "facilities", path))
    assert (p.row, p.source_id, p.column) == (2, "F2", "community_code") and "no community '420106010077'" in p.problem


@pytest.mark.parametrize("device_id,words", [
    ("4201060100131000001", "20 digits"),
    ("99010601001310000001", "province code 99"),
    ("42010601001180000001", "not a camera"),
])
def test_bad_camera_device_id(empty, tmp_path, device_id, words):
    data = ff.camera_rows(2)
    data[1][0] = device_id
    path = ff.write_csv(tmp_path / "cameras.csv", ff.CAMERA_HEADER, data)
    p = only(failed(empty, "cameras", path, crs="EPSG:4326"))
    assert (p.row, p.source_id, p.column) == (2, device_id, "device_id") and words in p.problem


def test_direction_type_out_of_range(empty, tmp_path):
    data = ff.camera_rows(2)
    data[1][2] = 9
    path = ff.write_csv(tmp_path / "cameras.csv", ff.CAMERA_HEADER, data)
    p = only(failed(empty, "cameras", path, crs="EPSG:4326"))
    assert (p.row, p.column) == (2, "direction_type") and "above the maximum 8" in p.problem


def test_unknown_cadre_role_and_bad_phone(empty, tmp_path):
    path = ff.write_csv(tmp_path / "c.csv", ["编号", "姓名", "角色", "电话"], [
        ["C001", "张三", "网格长", "13800000000"], ["C002", "李四", "队长", ""], ["C003", "王五", "志愿者", "call me"]])
    problems = failed(empty, "cadres", path)
    assert [(p.row, p.source_id, p.column) for p in problems] == [(2, "C002", "role"), (3, "C003", "phone")]


def test_assignment_to_an_unknown_grid_and_a_bad_target_type(empty, tmp_path):
    ff.load_admin(empty, tmp_path)
    import_file("cadres", ff.write_csv(tmp_path / "c.csv", ["编号", "姓名", "角色"], [["C001", "张三", "网格长"]]), conn=empty)
    p = only(failed(empty, "assignments", ff.write_csv(tmp_path / "a.csv", ["干部编号", "对象"], [["C001", ff.GRID], ["C001", "420106010001077"]])))
    assert (p.row, p.source_id) == (2, "C001") and "no current grid '420106010001077'" in p.problem
    p = only(failed(empty, "assignments", ff.write_csv(tmp_path / "a2.csv", ["干部编号", "对象类型", "对象"], [["C001", "街道", ff.GRID]])))
    assert p.row == 1 and "target_type" in p.problem


def test_nul_and_control_characters_are_a_problem_of_the_row(empty, tmp_path):
    """Issue 19: "a\\0b" was stored as "a" (GDAL cuts at NUL); now the row is reported."""
    import json

    gj = tmp_path / "facilities.geojson"
    feats = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [ff.LON, ff.LAT]},
              "properties": {"编号": f"F{i}", "名称": name, "类别": "社区服务站"}}
             for i, name in enumerate(["服务站", "a\u0000b", "ok", "bell\u0007"], 1)]
    gj.write_text(json.dumps({"type": "FeatureCollection", "features": feats}), encoding="utf-8")
    problems = failed(empty, "facilities", gj)
    assert sorted(p.row for p in problems) == [2, 4] and all("control character" in p.problem for p in problems)

    csv = tmp_path / "facilities.csv"
    csv.write_bytes(f"编号,名称,类别,经度,纬度\nF1,a\x00b,社区服务站,{ff.LON},{ff.LAT}\nF2,好,社区服务站,{ff.LON},{ff.LAT}\n".encode())
    p = only(failed(empty, "facilities", csv, crs="EPSG:4326"))
    assert p.row == 1 and "control character" in p.problem
