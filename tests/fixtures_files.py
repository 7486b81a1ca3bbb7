"""Builds the files the import tests read, at test time, into a temporary directory:
no binary fixtures are committed. Everything sits in Wuchang, Wuhan (district 420106),
in one sub-district with two communities and two grids in the first community.
"""
from __future__ import annotations

import csv
from pathlib import Path

import geopandas as gpd
import pyogrio
import shapely
from shapely.geometry import Point, Polygon

LON, LAT = 114.300, 30.550
DISTRICT = "420106"
SUBDISTRICT = "420106010"
COMMUNITY = "420106010001"
COMMUNITY_2 = "420106010002"
GRID = "420106010001001"
GRID_2 = "420106010001002"
STEP = 0.00045  # buildings sit on a grid of this spacing (about 45 m)


def square(lon: float, lat: float, d: float = 0.0002) -> Polygon:
    return shapely.box(lon, lat, lon + d, lat + d)


def bowtie(lon: float, lat: float, d: float = 0.0002) -> Polygon:
    """A self-intersecting ring: invalid, and make_valid turns it into two triangles."""
    return Polygon([(lon, lat), (lon + d, lat + d), (lon + d, lat), (lon, lat + d)])


def spot(i: int) -> tuple[float, float]:
    """South-west corner of the i-th building (ten to a row, inside community 1 for i < 100)."""
    return LON + 0.0001 + (i % 10) * STEP, LAT + 0.0001 + (i // 10) * STEP


def buildings(n: int = 5, *, crs: int | None = 4326, **columns) -> gpd.GeoDataFrame:
    """n valid buildings B001…; keyword arguments add or replace columns (lists of n values)."""
    data = {
        "source_id": [f"B{i + 1:03d}" for i in range(n)],
        "name": [f"{i + 1}号楼" for i in range(n)],
        "use": ["住宅"] * n,
        "floors": [6] * n,
        "households": [20 + i for i in range(n)],
        "residents": [50 + i for i in range(n)],
    }
    data.update(columns)
    return gpd.GeoDataFrame(data, geometry=[square(*spot(i)) for i in range(n)], crs=crs)


def write(gdf: gpd.GeoDataFrame, path: Path, **kwargs) -> Path:
    """Write with pyogrio; the driver follows the suffix (.geojson, .gpkg, .shp)."""
    pyogrio.write_dataframe(gdf, path, **kwargs)
    return path


def write_csv(path: Path, header: list[str], rows: list[list], encoding: str = "utf-8") -> Path:
    with open(path, "w", newline="", encoding=encoding) as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def gbk_shapefile(folder: Path, name: str = "gbk_buildings") -> Path:
    """A shapefile as Chinese desktop GIS writes it: GBK attribute text and no .cpg."""
    gdf = buildings(3, name=["一号楼", "二号楼", "三号楼"], address=["武昌区中山路1号", "武昌区中山路2号", "武昌区中山路3号"])
    path = write(gdf, folder / f"{name}.shp", encoding="GBK")
    path.with_suffix(".cpg").unlink()
    return path


def undecodable_shapefile(folder: Path) -> Path:
    """A GBK shapefile (Chinese in rows 1 and 2) whose third record holds bytes that are
    neither UTF-8 nor GBK/GB18030 (0xFF never starts a character in either)."""
    path = gbk_shapefile(folder, "broken_text")
    dbf = path.with_suffix(".dbf")
    data = dbf.read_bytes()
    third = "三号楼".encode("gbk")
    assert data.count(third) == 1
    dbf.write_bytes(data.replace(third, b"\xff" * len(third)))
    return path


def shapefile_without_prj(folder: Path) -> Path:
    path = write(buildings(2), folder / "no_prj.shp")
    path.with_suffix(".prj").unlink()
    return path


# --- administrative layers ------------------------------------------------------------------

def subdistricts() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"code": [SUBDISTRICT], "name": ["中华路街道"], "district_name": ["武昌区"], "city_name": ["武汉市"], "province_name": ["湖北省"]},
        geometry=[shapely.box(LON, LAT, LON + 0.010, LAT + 0.005)], crs=4326)


def communities() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"code": [COMMUNITY, COMMUNITY_2], "name": ["粮道街社区", "西城壕社区"]},
        geometry=[shapely.box(LON, LAT, LON + 0.005, LAT + 0.005), shapely.box(LON + 0.005, LAT, LON + 0.010, LAT + 0.005)], crs=4326)


def grids() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"code": [GRID, GRID_2], "name": ["第一网格", "第二网格"], "grid_type": ["综合网格", "综合网格"]},
        geometry=[shapely.box(LON, LAT, LON + 0.0025, LAT + 0.005), shapely.box(LON + 0.0025, LAT, LON + 0.005, LAT + 0.005)], crs=4326)


def admin_gpkg(folder: Path) -> Path:
    """One GeoPackage with the sub-district, its communities and grids as three layers."""
    path = folder / "admin.gpkg"
    path.unlink(missing_ok=True)
    write(subdistricts(), path, layer="subdistrict")
    write(communities(), path, layer="communities", append=True)
    write(grids(), path, layer="grids", append=True)
    return path


def load_admin(conn, folder: Path) -> None:
    """Import the sub-district, communities and grids through the ordinary importer."""
    from layers.importer import import_file

    path = admin_gpkg(folder)
    for layer, inner in (("subdistricts", "subdistrict"), ("communities", "communities"), ("grids", "grids")):
        import_file(layer, path, source_layer=inner, conn=conn)


# --- point layers ---------------------------------------------------------------------------

def camera_rows(n: int = 3) -> list[list]:
    """DeviceID, Name, DirectionType, HorizontalFieldAngle, MaxViewDistance, lon, lat."""
    return [[f"420106010013100000{i + 1:02d}", f"摄像头{i + 1}", (i % 8) + 1, 79, 60, LON + 0.001 * (i + 1), LAT + 0.001] for i in range(n)]


CAMERA_HEADER = ["DeviceID", "Name", "DirectionType", "HorizontalFieldAngle", "MaxViewDistance", "lon", "lat"]


def points(ids: list[str], **columns) -> gpd.GeoDataFrame:
    data = {"source_id": ids, **columns}
    return gpd.GeoDataFrame(data, geometry=[Point(LON + 0.0005 * (i + 1), LAT + 0.0005) for i in range(len(ids))], crs=4326)


def load_everything(conn, folder: Path) -> dict[str, int]:
    """Every layer, small but complete (group counts, cameras, cadres with and without a
    location, assignments to grids and buildings). Returns the rows per layer."""
    from shapely.geometry import LineString

    from layers.importer import import_file

    load_admin(conn, folder)
    b = buildings(6)
    b["老年人"] = [5, 0, None, 2, None, None]
    b["网格编码"] = [GRID, None, None, None, None, None]
    import_file("buildings", write(b, folder / "all_buildings.gpkg"), conn=conn)
    import_file("cameras", write_csv(folder / "all_cameras.csv", CAMERA_HEADER, camera_rows(4)), crs="EPSG:4326", conn=conn)
    import_file("facilities", write(points(["F1", "F2", "F3"], category=["社区服务站", "幼儿园", "药店"], name=["服务站", "幼儿园", "药店"]),
                                    folder / "all_facilities.geojson"), conn=conn)
    roads = gpd.GeoDataFrame({"source_id": ["R1", "R2"], "name": ["中山路", "二环线"], "road_class": ["residential", "motorway"]},
                             geometry=[LineString([(LON, LAT), (LON + 0.003, LAT)]), LineString([(LON, LAT + 0.004), (LON + 0.006, LAT + 0.004)])], crs=4326)
    import_file("roads", write(roads, folder / "all_roads.geojson"), conn=conn)
    import_file("cadres", write_csv(folder / "all_cadres.csv", ["编号", "姓名", "角色", "社区编码", "经度", "纬度"], [
        ["C001", "张三", "网格长", COMMUNITY, LON + 0.001, LAT + 0.001],
        ["C002", "李四", "专职网格员", COMMUNITY, "", ""],
        ["C003", "王五", "楼栋长", COMMUNITY_2, "", ""],
    ]), crs="EPSG:4326", conn=conn)
    import_file("assignments", write_csv(folder / "all_assignments.csv", ["干部编号", "对象类型", "对象"], [
        ["C001", "网格", GRID], ["C002", "网格", GRID_2], ["C003", "楼栋", "B002"],
    ]), conn=conn)
    return {"subdistricts": 1, "communities": 2, "grids": 2, "buildings": 6, "cameras": 4, "facilities": 3,
            "roads": 2, "cadres": 3, "assignments": 3}
