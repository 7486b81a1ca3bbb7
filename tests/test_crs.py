"""Coordinates (standards §7): any EPSG CRS is reprojected to the stored WGS-84; data
declared GCJ-02 (AMap, Tencent) or BD-09 (Baidu) is shifted back to WGS-84 to within 1 m."""
from __future__ import annotations

import numpy as np
import prcoords
import pytest
import shapely
from pyproj import Geod
from sqlalchemy import text

from gis.crs import CRSProblem, parse_crs, shift, unshift
from gis.problems import ImportFailed
from layers.importer import import_file
from tests import fixtures_files as ff

GEOD = Geod(ellps="WGS84")


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return GEOD.inv(a[0], a[1], b[0], b[1])[2]


def stored_points(conn, table: str = "facilities") -> dict[str, tuple[float, float]]:
    return {r[0]: (r[1], r[2]) for r in conn.execute(text(f"SELECT source_id, ST_X(geom), ST_Y(geom) FROM {table}"))}


@pytest.mark.parametrize("given,label,shifted", [
    ("EPSG:4547", "EPSG:4547", None), ("4490", "EPSG:4490", None), (4326, "EPSG:4326", None),
    ("gcj02", "GCJ-02", "GCJ-02"), ("GCJ-02", "GCJ-02", "GCJ-02"), ("bd09", "BD-09", "BD-09"), (" BD-09 ", "BD-09", "BD-09"),
])
def test_parse_crs(given, label, shifted):
    crs = parse_crs(given)
    assert crs.label == label and crs.shift == shifted


def test_parse_crs_nothing_and_nonsense():
    assert parse_crs(None) is None and parse_crs("") is None
    with pytest.raises(CRSProblem, match="unknown CRS 'wgs84-ish'"):
        parse_crs("wgs84-ish")


@pytest.mark.parametrize("lon,lat", [(114.30, 30.55), (116.397, 39.909), (87.617, 43.793), (126.535, 45.802), (113.264, 23.129)])
@pytest.mark.parametrize("kind,forward", [("GCJ-02", prcoords.wgs_gcj), ("BD-09", prcoords.wgs_bd)])
def test_unshift_inverts_the_map_shift_to_under_a_metre(lon, lat, kind, forward):
    c = forward(prcoords.Coords(lat, lon))
    assert metres((lon, lat), (c.lon, c.lat)) > 100  # the shift is real, so the check below can fail
    [back] = unshift(np.array([shapely.Point(c.lon, c.lat)]), kind)
    assert metres((lon, lat), (back.x, back.y)) < 1.0
    [again] = shift(np.array([back]), kind)
    assert metres((c.lon, c.lat), (again.x, again.y)) < 1.0


TRUTH = {"F1": (114.3012, 30.5523), "F2": (114.3185, 30.5461), "F3": (114.2907, 30.5602)}


@pytest.mark.parametrize("declared,forward", [("gcj02", prcoords.wgs_gcj), ("bd09", prcoords.wgs_bd)])
def test_csv_from_a_shifted_map_is_stored_in_wgs84(empty, tmp_path, declared, forward):
    data = []
    for sid, (lon, lat) in TRUTH.items():
        c = forward(prcoords.Coords(lat, lon))
        data.append([sid, "药店", f"{c.lon:.7f}", f"{c.lat:.7f}"])
    path = ff.write_csv(tmp_path / f"poi_{declared}.csv", ["编号", "类别", "lng", "lat"], data)
    report = import_file("facilities", path, crs=declared, conn=empty)
    assert report.crs == {"gcj02": "GCJ-02", "bd09": "BD-09"}[declared]
    assert any("to WGS-84" in n for n in report.notes)
    got = stored_points(empty)
    for sid, truth in TRUTH.items():
        assert metres(truth, got[sid]) < 1.0, (sid, metres(truth, got[sid]))


def test_polygons_from_gcj02_have_every_vertex_unshifted(empty, tmp_path):
    src = ff.buildings(2)
    moved = src.set_geometry(list(shift(np.asarray(src.geometry.values, dtype=object), "GCJ-02")))
    path = ff.write(moved, tmp_path / "amap.geojson")
    import_file("buildings", path, crs="gcj02", conn=empty)
    stored = dict(empty.execute(text("SELECT source_id, ST_AsText(geom) FROM buildings")).all())
    for sid, truth in zip(src.source_id, src.geometry):
        got = shapely.from_wkt(stored[sid])
        a, b = shapely.get_coordinates(truth.exterior), shapely.get_coordinates(got.geoms[0].exterior)
        assert len(a) == len(b)
        assert max(metres(tuple(p), tuple(q)) for p, q in zip(a, b)) < 1.0


def test_cgcs2000_gauss_kruger_geojson_is_reprojected(empty, tmp_path):
    src = ff.buildings(3)
    path = ff.write(src.to_crs(4547), tmp_path / "gk_4547.geojson")
    assert 'EPSG::4547' in path.read_text()
    report = import_file("buildings", path, conn=empty)
    assert report.crs == "EPSG:4547"
    rows = dict(empty.execute(text("SELECT source_id, ST_AsText(ST_Centroid(geom)) FROM buildings")).all())
    for sid, truth in zip(src.source_id, src.geometry):
        c = shapely.from_wkt(rows[sid])
        assert metres((truth.centroid.x, truth.centroid.y), (c.x, c.y)) < 0.01
    # area survives the round trip through the projected CRS (a 0.0002° square, about 19 m × 22 m)
    area = empty.execute(text("SELECT ST_Area(geom::geography) FROM buildings WHERE source_id = 'B001'")).scalar_one()
    assert area == pytest.approx(abs(GEOD.geometry_area_perimeter(src.geometry[0])[0]), rel=1e-3)


def test_cgcs2000_geographic_csv(empty, tmp_path):
    path = ff.write_csv(tmp_path / "f.csv", ["编号", "类别", "经度", "纬度"], [["F1", "药店", 114.3012, 30.5523]])
    report = import_file("facilities", path, crs="EPSG:4490", conn=empty)
    assert report.crs == "EPSG:4490"
    assert metres(TRUTH["F1"], stored_points(empty)["F1"]) < 1.0


def test_declared_crs_wins_over_the_file_and_says_so(empty, tmp_path):
    """A GeoJSON that claims WGS-84 but holds AMap coordinates: --crs gcj02 corrects it."""
    lon, lat = TRUTH["F1"]
    c = prcoords.wgs_gcj(prcoords.Coords(lat, lon))
    gdf = ff.points(["F1"], category=["药店"]).set_geometry([shapely.Point(c.lon, c.lat)])
    path = ff.write(gdf, tmp_path / "picked.geojson")
    import_file("facilities", path, crs="gcj02", conn=empty)
    assert metres(TRUTH["F1"], stored_points(empty)["F1"]) < 1.0


def test_file_crs_and_declared_epsg_disagree(empty, tmp_path):
    src = ff.buildings(1)
    path = ff.write(src, tmp_path / "b.geojson")  # EPSG:4326
    report = import_file("buildings", path, crs="EPSG:4490", conn=empty)
    assert any("using the declared EPSG:4490" in n for n in report.notes)


def test_projected_coordinates_that_fall_off_the_earth(empty, tmp_path):
    path = ff.write_csv(tmp_path / "gk.csv", ["编号", "类别", "x", "y"], [
        ["F1", "药店", 500000, 3380000], ["F2", "药店", 1e12, 1e12]])
    with pytest.raises(ImportFailed) as err:
        import_file("facilities", path, crs="EPSG:4547", conn=empty)
    [p] = err.value.problems
    assert (p.file, p.row, p.source_id) == ("gk.csv", 2, "F2") and "EPSG:4547" in p.problem


def test_projected_csv_is_reprojected(empty, tmp_path):
    from pyproj import Transformer

    x, y = Transformer.from_crs(4326, 4547, always_xy=True).transform(*TRUTH["F2"])
    path = ff.write_csv(tmp_path / "gk.csv", ["编号", "类别", "x", "y"], [["F2", "药店", f"{x:.3f}", f"{y:.3f}"]])
    import_file("facilities", path, crs="4547", conn=empty)
    assert metres(TRUTH["F2"], stored_points(empty)["F2"]) < 0.01
