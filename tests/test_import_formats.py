"""Every file format and every layer lands with the right values: GeoJSON, GeoPackage,
Shapefile (UTF-8 and GBK without .cpg), CSV with coordinate columns (UTF-8, UTF-8 with
BOM, GBK), Chinese and English headers, --map, and each layer's derived columns."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from gis.problems import ImportFailed
from layers.importer import import_file
from tests import fixtures_files as ff
from tests.conftest import count


def rows(conn, sql: str, **params) -> list:
    return conn.execute(text(sql), params).all()


# --- formats ------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".shp"])
def test_buildings_from_each_vector_format(empty, tmp_path, suffix):
    src = ff.buildings(5)
    path = ff.write(src, tmp_path / f"buildings{suffix}")
    report = import_file("buildings", path, conn=empty)
    assert (report.layer, report.rows, report.file, report.crs) == ("buildings", 5, path.name, "EPSG:4326")
    got = rows(empty, """SELECT source_id, name, use, floors, households, residents, district_code, GeometryType(geom), ST_SRID(geom),
                                ST_AsText(ST_Centroid(geom)) FROM buildings ORDER BY source_id""")
    assert [r[:8] for r in got] == [
        (f"B{i + 1:03d}", f"{i + 1}号楼", "residential", 6, 20 + i, 50 + i, "420106", "MULTIPOLYGON") for i in range(5)]
    assert {r[8] for r in got} == {4326}
    # the footprint is where the file put it (centroid to within a micro-degree)
    for r, geom in zip(got, src.geometry):
        x, y = map(float, r[9][6:-1].split())
        assert abs(x - geom.centroid.x) < 1e-6 and abs(y - geom.centroid.y) < 1e-6
    assert count(empty, "audit_log", "action = 'import' AND table_name = 'buildings'") == 1


def test_gbk_shapefile_without_cpg_keeps_chinese_text(empty, tmp_path):
    path = ff.gbk_shapefile(tmp_path)
    assert not path.with_suffix(".cpg").exists()
    report = import_file("buildings", path, conn=empty)
    assert report.rows == 3
    assert any("gb18030" in n or "gbk" in n.lower() for n in report.notes), report.notes
    got = rows(empty, "SELECT name, address FROM buildings ORDER BY source_id")
    assert got == [("一号楼", "武昌区中山路1号"), ("二号楼", "武昌区中山路2号"), ("三号楼", "武昌区中山路3号")]


def test_gbk_shapefile_with_cpg_936(empty, tmp_path):
    """ArcGIS writes "936" into the .cpg for GBK."""
    path = ff.gbk_shapefile(tmp_path)
    path.with_suffix(".cpg").write_text("936")
    import_file("buildings", path, conn=empty)
    assert rows(empty, "SELECT name FROM buildings ORDER BY source_id")[0][0] == "一号楼"


FACILITY_HEADER = ["编号", "名称", "类别", "建筑面积", "容量", "经度", "纬度"]
FACILITY_ROWS = [
    ["F1", "粮道街社区服务站", "社区服务站", "350.5", "", ff.LON + 0.001, ff.LAT + 0.001],
    ["F2", "中华路幼儿园", "幼儿园", "", "180", ff.LON + 0.002, ff.LAT + 0.002],
    ["F3", "彭刘杨路药店", "pharmacy", "", "", ff.LON + 0.006, ff.LAT + 0.001],
]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_csv_with_chinese_headers_in_any_encoding(empty, tmp_path, encoding):
    path = ff.write_csv(tmp_path / f"设施_{encoding}.csv", FACILITY_HEADER, FACILITY_ROWS, encoding=encoding)
    report = import_file("facilities", path, crs="EPSG:4326", conn=empty)
    assert report.rows == 3 and report.file == path.name
    got = rows(empty, "SELECT source_id, name, category, floor_area, capacity, status, ST_X(geom), ST_Y(geom) FROM facilities ORDER BY source_id")
    assert [r[:6] for r in got] == [
        ("F1", "粮道街社区服务站", "community_service_station", 350.5, None, "open"),
        ("F2", "中华路幼儿园", "kindergarten", None, 180, "open"),
        ("F3", "彭刘杨路药店", "pharmacy", None, None, "open"),
    ]
    for r, src in zip(got, FACILITY_ROWS):
        assert r[6] == pytest.approx(src[5], abs=1e-9) and r[7] == pytest.approx(src[6], abs=1e-9)


def test_csv_with_wkt_polygons(empty, tmp_path):
    """Polygons in a table come as WKT (what `wangge export` writes for them)."""
    src = ff.buildings(2)
    path = ff.write_csv(tmp_path / "b.csv", ["编号", "户数", "wkt"], [[s, h, g.wkt] for s, h, g in zip(src.source_id, src.households, src.geometry)])
    import_file("buildings", path, crs="EPSG:4326", conn=empty)
    got = dict(empty.execute(text("SELECT source_id, ST_AsText(geom) FROM buildings")).all())
    assert set(got) == {"B001", "B002"}
    import shapely
    assert shapely.from_wkt(got["B002"]).equals(shapely.multipolygons([src.geometry[1]]))


def test_attribute_table_in_a_geopackage(empty, tmp_path):
    """A GeoPackage table without geometry (cadres kept in the same file as the map layers)."""
    import pandas as pd

    path = tmp_path / "staff.gpkg"
    ff.write(pd.DataFrame({"工号": ["C001", "C002"], "姓名": ["张三", "李四"], "岗位": ["网格长", "兼职网格员"]}), path, layer="cadres")
    report = import_file("cadres", path, conn=empty)
    assert report.rows == 2 and report.crs is None
    assert rows(empty, "SELECT cadre_no, name, role, geom IS NULL FROM cadres ORDER BY 1") == [
        ("C001", "张三", "grid_chief", True), ("C002", "李四", "part_time_worker", True)]


def test_english_headers_any_case(empty, tmp_path):
    gdf = ff.buildings(2).rename(columns={"source_id": "BUILDING_ID", "households": "HOUSEHOLDS", "floors": "Floors", "name": "NAME"})
    path = ff.write(gdf, tmp_path / "english.geojson")
    import_file("buildings", path, conn=empty)
    assert rows(empty, "SELECT source_id, name, floors, households FROM buildings ORDER BY 1") == [
        ("B001", "1号楼", 6, 20), ("B002", "2号楼", 6, 21)]


def test_chinese_headers_and_layer_name(empty, tmp_path):
    gdf = ff.buildings(2).rename(columns={"source_id": "楼栋编号", "name": "楼栋名称", "use": "用途", "floors": "层数",
                                          "households": "户数", "residents": "实有人口"})
    gdf["用途"] = ["商住混合", "办公"]
    path = ff.write(gdf, tmp_path / "楼栋.gpkg")
    report = import_file("楼栋", path, conn=empty)
    assert report.layer == "buildings"
    assert rows(empty, "SELECT source_id, name, use, floors, households, residents FROM buildings ORDER BY 1") == [
        ("B001", "1号楼", "mixed", 6, 20, 50), ("B002", "2号楼", "office", 6, 21, 51)]


def test_map_renames_columns(empty, tmp_path):
    gdf = ff.buildings(2).rename(columns={"source_id": "楼号", "households": "住户合计"})
    path = ff.write(gdf, tmp_path / "mapped.geojson")
    with pytest.raises(ImportFailed) as err:  # without the mapping there is no ID column
        import_file("buildings", path, conn=empty)
    assert any(p.column == "source_id" and "missing required field" in p.problem for p in err.value.problems)
    import_file("buildings", path, mapping={"楼号": "source_id", "住户合计": "households"}, conn=empty)
    assert rows(empty, "SELECT source_id, households FROM buildings ORDER BY 1") == [("B001", 20), ("B002", 21)]


def test_map_wins_over_a_matching_header(empty, tmp_path):
    """--map name=address: the 'name' column goes to address even though 'name' is a field."""
    gdf = ff.buildings(1, name=["中山路1号"])
    path = ff.write(gdf, tmp_path / "m.geojson")
    import_file("buildings", path, mapping={"name": "address"}, conn=empty)
    assert rows(empty, "SELECT name, address FROM buildings") == [(None, "中山路1号")]


@pytest.mark.parametrize("mapping,column,words", [
    ({"no_such_column": "source_id"}, "no_such_column", "not in the file"),
    ({"name": "no_such_field"}, "no_such_field", "is not a field"),
])
def test_map_errors_name_the_column(empty, tmp_path, mapping, column, words):
    path = ff.write(ff.buildings(1), tmp_path / "m.geojson")
    with pytest.raises(ImportFailed) as err:
        import_file("buildings", path, mapping=mapping, conn=empty)
    [p] = err.value.problems
    assert (p.file, p.column) == ("m.geojson", column) and words in p.problem
    assert count(empty, "buildings") == 0


def test_osm_extract_is_refused_by_the_file_importer(empty, tmp_path):
    path = tmp_path / "extract.osm.pbf"
    path.write_bytes(b"\x00")
    with pytest.raises(ImportFailed) as err:
        import_file("buildings", path, conn=empty)
    [p] = err.value.problems
    assert p.file == "extract.osm.pbf" and "import-osm" in p.problem


def test_missing_file_is_named(empty, tmp_path):
    with pytest.raises(ImportFailed) as err:
        import_file("buildings", tmp_path / "nowhere.geojson", conn=empty)
    assert err.value.problems[0].file == "nowhere.geojson" and "not found" in err.value.problems[0].problem


def test_unknown_layer_lists_the_layers():
    with pytest.raises(KeyError) as err:
        import_file("parks", "x.geojson")
    assert "buildings" in str(err.value) and "楼栋" in str(err.value)


# --- layers -------------------------------------------------------------------------------

def test_admin_layers(empty, tmp_path):
    ff.load_admin(empty, tmp_path)
    assert rows(empty, "SELECT code, name, city_name, province_name FROM districts") == [("420106", "武昌区", "武汉市", "湖北省")]
    assert rows(empty, "SELECT code, district_code, name FROM subdistricts") == [("420106010", "420106", "中华路街道")]
    assert rows(empty, "SELECT code, subdistrict_code, district_code, name FROM communities ORDER BY 1") == [
        ("420106010001", "420106010", "420106", "粮道街社区"), ("420106010002", "420106010", "420106", "西城壕社区")]
    assert rows(empty, "SELECT code, community_code, district_code, grid_type, valid_from = current_date, valid_to FROM grids ORDER BY 1") == [
        (ff.GRID, ff.COMMUNITY, "420106", "comprehensive", True, None), (ff.GRID_2, ff.COMMUNITY, "420106", "comprehensive", True, None)]


def test_communities_before_their_subdistrict_get_a_placeholder(empty, tmp_path):
    path = ff.write(ff.communities(), tmp_path / "communities.geojson")
    report = import_file("communities", path, conn=empty)
    assert any("placeholder" in n and ff.SUBDISTRICT in n for n in report.notes)
    assert rows(empty, "SELECT code, name FROM subdistricts") == [(ff.SUBDISTRICT, ff.SUBDISTRICT)]
    # the sub-district outline is the union of its communities
    assert empty.execute(text("SELECT ST_Area(geom) FROM subdistricts")).scalar_one() == pytest.approx(0.010 * 0.005)


def test_buildings_with_group_counts_and_grid_codes(empty, tmp_path):
    ff.load_admin(empty, tmp_path)
    gdf = ff.buildings(3)
    gdf["老年人"] = [12, None, 3]
    gdf["残疾人"] = [1, None, 0]
    gdf["党员"] = [4, None, None]
    gdf["网格编码"] = [ff.GRID_2, None, None]  # building 1 lies in grid 1 but the file says grid 2
    path = ff.write(gdf, tmp_path / "buildings.gpkg")
    import_file("buildings", path, conn=empty)
    groups = rows(empty, """SELECT b.source_id, g.elderly_65, g.disabled, g.party_members, g.dibao, g.district_code
                            FROM building_groups g JOIN buildings b ON b.id = g.building_id ORDER BY 1""")
    assert groups == [("B001", 12, 1, 4, 0, "420106"), ("B003", 3, 0, 0, 0, "420106")]
    placed = rows(empty, "SELECT b.source_id, g.code, b.community_code FROM buildings b LEFT JOIN grids g ON g.id = b.grid_id ORDER BY 1")
    assert placed == [("B001", ff.GRID_2, ff.COMMUNITY), ("B002", ff.GRID, ff.COMMUNITY), ("B003", ff.GRID, ff.COMMUNITY)]
    # group columns are not columns of buildings
    cols = set(empty.execute(text("SELECT column_name FROM information_schema.columns WHERE table_name = 'buildings'")).scalars())
    assert not cols & {"elderly_65", "grid_code", "party_members"}


def test_two_imports_with_staging_tables_in_one_transaction(empty, tmp_path):
    """Group counts and assignments are staged in temporary tables; a second import in the
    same transaction (demo load, a caller's batch) must not trip over the first one's."""
    load_cadres(empty, tmp_path)
    for n, (sid, grid) in enumerate((("B001", ff.GRID), ("B002", ff.GRID_2))):
        gdf = ff.buildings(1, source_id=[sid], 老年人=[n + 1])
        import_file("buildings", ff.write(gdf, tmp_path / f"b{n}.geojson"), conn=empty)
        import_file("assignments", ff.write_csv(tmp_path / f"a{n}.csv", ["干部编号", "对象"], [[f"C00{n + 1}", grid]]), conn=empty)
    assert count(empty, "building_groups") == 2 and count(empty, "assignments") == 2


def test_buildings_loaded_before_grids_get_their_grid(empty, tmp_path):
    path = ff.write(ff.buildings(10), tmp_path / "b.geojson")
    import_file("buildings", path, conn=empty)
    assert count(empty, "buildings", "grid_id IS NULL") == 10
    ff.load_admin(empty, tmp_path)
    by_grid = dict(rows(empty, "SELECT g.code, count(*) FROM buildings b JOIN grids g ON g.id = b.grid_id GROUP BY 1"))
    # x = LON + 0.0001 + i * 0.00045 crosses the grid line at LON + 0.0025 after building 6
    assert by_grid == {ff.GRID: 6, ff.GRID_2: 4}


def test_cameras_direction_type_gives_azimuth_and_back(empty, tmp_path):
    header = ff.CAMERA_HEADER + ["方位角"]
    data = [r + [""] for r in ff.camera_rows(3)]  # DirectionType 1 (E), 2 (W), 3 (S)
    data.append(["42010601001310000009", "只有方位角", "", 79, 60, ff.LON, ff.LAT, "50"])  # azimuth 50 -> NE (6)
    path = ff.write_csv(tmp_path / "cameras.csv", header, data)
    import_file("cameras", path, crs="EPSG:4326", conn=empty)
    got = rows(empty, "SELECT device_id, direction_type, azimuth, hfov, max_view_distance, status FROM cameras ORDER BY device_id")
    assert got == [
        ("42010601001310000001", 1, 90.0, 79.0, 60.0, "online"),
        ("42010601001310000002", 2, 270.0, 79.0, 60.0, "online"),
        ("42010601001310000003", 3, 180.0, 79.0, 60.0, "online"),
        ("42010601001310000009", 6, 50.0, 79.0, 60.0, "online"),
    ]


def test_facilities_get_their_community(empty, tmp_path):
    ff.load_admin(empty, tmp_path)
    path = ff.write_csv(tmp_path / "f.csv", FACILITY_HEADER, FACILITY_ROWS)
    import_file("facilities", path, crs="4326", conn=empty)
    assert rows(empty, "SELECT source_id, community_code FROM facilities ORDER BY 1") == [
        ("F1", ff.COMMUNITY), ("F2", ff.COMMUNITY), ("F3", ff.COMMUNITY_2)]


def test_roads_walkable_from_class_unless_given(empty, tmp_path):
    import geopandas as gpd
    from shapely.geometry import LineString, MultiLineString

    line = LineString([(ff.LON, ff.LAT), (ff.LON + 0.001, ff.LAT)])
    gdf = gpd.GeoDataFrame({
        "source_id": ["R1", "R2", "R3", "R4"], "路名": ["中山路", "二环线", "小巷", "武昌路"],
        "highway": ["residential", "motorway", "footway", "trunk"], "可步行": [None, None, "否", "是"],
    }, geometry=[line, line, line, MultiLineString([[(0 + ff.LON, ff.LAT), (ff.LON + 0.001, ff.LAT)], [(ff.LON + 0.001, ff.LAT), (ff.LON + 0.002, ff.LAT)]])], crs=4326)
    path = ff.write(gdf, tmp_path / "roads.gpkg")
    import_file("roads", path, conn=empty)
    assert rows(empty, "SELECT source_id, name, road_class, walkable, GeometryType(geom) FROM roads ORDER BY 1") == [
        ("R1", "中山路", "residential", True, "LINESTRING"), ("R2", "二环线", "motorway", False, "LINESTRING"),
        ("R3", "小巷", "footway", False, "LINESTRING"), ("R4", "武昌路", "trunk", True, "LINESTRING")]


CADRE_HEADER = ["编号", "姓名", "角色", "社区编码", "电话"]
CADRE_ROWS = [
    ["C001", "张三", "网格长", ff.COMMUNITY, "027-88886666"],
    ["C002", "李四", "专职网格员", ff.COMMUNITY, "13800000000"],
    ["C003", "王五", "building_head", ff.COMMUNITY_2, ""],
]


def load_cadres(conn, tmp_path) -> None:
    ff.load_admin(conn, tmp_path)
    import_file("cadres", ff.write_csv(tmp_path / "cadres.csv", CADRE_HEADER, CADRE_ROWS), conn=conn)


def test_cadres_csv_without_coordinates(empty, tmp_path):
    load_cadres(empty, tmp_path)
    assert rows(empty, "SELECT cadre_no, name, role, community_code, phone, active, geom IS NULL FROM cadres ORDER BY 1") == [
        ("C001", "张三", "grid_chief", ff.COMMUNITY, "027-88886666", True, True),
        ("C002", "李四", "full_time_worker", ff.COMMUNITY, "13800000000", True, True),
        ("C003", "王五", "building_head", ff.COMMUNITY_2, None, True, True),
    ]


def test_assignments_resolve_cadre_numbers_grid_codes_and_buildings(empty, tmp_path):
    load_cadres(empty, tmp_path)
    import_file("buildings", ff.write(ff.buildings(2), tmp_path / "b.geojson"), conn=empty)
    path = ff.write_csv(tmp_path / "assignments.csv", ["干部编号", "对象类型", "对象", "角色", "开始日期"], [
        ["C001", "网格", ff.GRID, "", "2026-01-05"],
        ["C002", "grid", ff.GRID_2, "专职网格员", ""],
        ["C003", "楼栋", "B002", "", "2026-02-01"],
    ])
    report = import_file("assignments", path, conn=empty)
    assert report.rows == 3
    got = rows(empty, """SELECT c.cadre_no, g.code, b.source_id, a.role, a.valid_from::text, a.valid_to FROM assignments a
                         JOIN cadres c ON c.id = a.cadre_id LEFT JOIN grids g ON g.id = a.grid_id
                         LEFT JOIN buildings b ON b.id = a.building_id ORDER BY 1""")
    today = empty.execute(text("SELECT current_date::text")).scalar_one()
    assert got == [
        ("C001", ff.GRID, None, "grid_chief", "2026-01-05", None),
        ("C002", ff.GRID_2, None, "full_time_worker", today, None),
        ("C003", None, "B002", "building_head", "2026-02-01", None),
    ]


def test_replace_swaps_the_layer_and_retires_grids(empty, tmp_path):
    import_file("buildings", ff.write(ff.buildings(3), tmp_path / "b1.geojson"), conn=empty)
    import_file("buildings", ff.write(ff.buildings(2, name=["新1", "新2"]), tmp_path / "b2.geojson"), replace=True, conn=empty)
    assert rows(empty, "SELECT source_id, name FROM buildings ORDER BY 1") == [("B001", "新1"), ("B002", "新2")]
    ff.load_admin(empty, tmp_path)
    import_file("grids", ff.admin_gpkg(tmp_path), source_layer="grids", replace=True, conn=empty)
    assert count(empty, "grids") == 4 and count(empty, "grids", "valid_to IS NULL") == 2
