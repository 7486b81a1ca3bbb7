"""Export every layer to GeoJSON, GeoPackage and CSV, and read each export back in: the
same rows land again (round trip)."""
from __future__ import annotations

import pandas as pd
import pyogrio
import pytest
from sqlalchemy import text

from layers.export import export_layer, read_layer, status
from layers.importer import LOAD_ORDER, import_file
from tests import fixtures_files as ff
from tests.conftest import LAYER_TABLES, count


def file_rows(path) -> int:
    if path.suffix == ".csv":
        return len(pd.read_csv(path, dtype=str))
    return pyogrio.read_info(path)["features"]


def test_load_order_puts_parents_first():
    assert LOAD_ORDER.index("subdistricts") < LOAD_ORDER.index("communities") < LOAD_ORDER.index("grids") < LOAD_ORDER.index("buildings")
    assert LOAD_ORDER.index("cadres") < LOAD_ORDER.index("assignments") and LOAD_ORDER.index("buildings") < LOAD_ORDER.index("assignments")


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".csv"])
def test_every_layer_round_trips(empty, tmp_path, suffix):
    expected = ff.load_everything(empty, tmp_path)
    snapshot = {
        "buildings": empty.execute(text("SELECT source_id, name, households, ST_AsText(geom, 7) FROM buildings ORDER BY 1")).all(),
        "cameras": empty.execute(text("SELECT device_id, direction_type, azimuth, ST_AsText(geom, 7) FROM cameras ORDER BY 1")).all(),
        "roads": empty.execute(text("SELECT source_id, walkable FROM roads ORDER BY 1")).all(),
        "cadres": empty.execute(text("SELECT cadre_no, name, role, ST_AsText(geom, 7) FROM cadres ORDER BY 1")).all(),
        "assignments": empty.execute(text("""SELECT c.cadre_no, g.code, b.source_id FROM assignments a JOIN cadres c ON c.id = a.cadre_id
                                             LEFT JOIN grids g ON g.id = a.grid_id LEFT JOIN buildings b ON b.id = a.building_id ORDER BY 1""")).all(),
    }
    out = tmp_path / "out"
    out.mkdir()
    files = {}
    for layer in LOAD_ORDER:
        files[layer] = out / f"{layer}{suffix}"
        assert export_layer(empty, layer, files[layer]) == expected[layer], layer
        assert file_rows(files[layer]) == expected[layer], layer

    empty.execute(text(f"TRUNCATE {LAYER_TABLES} RESTART IDENTITY CASCADE"))
    for layer in LOAD_ORDER:
        report = import_file(layer, files[layer], crs="EPSG:4326" if suffix == ".csv" else None, conn=empty)
        assert report.rows == expected[layer], layer
        assert count(empty, layer, "valid_to IS NULL" if layer in ("grids", "assignments") else "TRUE") == expected[layer], layer

    assert empty.execute(text("SELECT source_id, name, households, ST_AsText(geom, 7) FROM buildings ORDER BY 1")).all() == snapshot["buildings"]
    assert empty.execute(text("SELECT device_id, direction_type, azimuth, ST_AsText(geom, 7) FROM cameras ORDER BY 1")).all() == snapshot["cameras"]
    assert empty.execute(text("SELECT source_id, walkable FROM roads ORDER BY 1")).all() == snapshot["roads"]
    assert empty.execute(text("SELECT cadre_no, name, role, ST_AsText(geom, 7) FROM cadres ORDER BY 1")).all() == snapshot["cadres"]
    assert empty.execute(text("""SELECT c.cadre_no, g.code, b.source_id FROM assignments a JOIN cadres c ON c.id = a.cadre_id
                                 LEFT JOIN grids g ON g.id = a.grid_id LEFT JOIN buildings b ON b.id = a.building_id ORDER BY 1""")).all() == snapshot["assignments"]


def test_export_writes_chinese_text_and_coordinates(empty, tmp_path):
    ff.load_everything(empty, tmp_path)
    export_layer(empty, "facilities", tmp_path / "f.csv")
    raw = (tmp_path / "f.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel opens it as UTF-8
    df = pd.read_csv(tmp_path / "f.csv", dtype=str, encoding="utf-8-sig")
    assert list(df.sort_values("source_id")["name"]) == ["服务站", "幼儿园", "药店"]
    assert {"lon", "lat"} <= set(df.columns) and "geom" not in df.columns
    export_layer(empty, "buildings", tmp_path / "b.geojson")
    back = pyogrio.read_dataframe(tmp_path / "b.geojson")
    assert back.crs.to_epsg() == 4326 and set(back.geom_type) == {"MultiPolygon"}
    assert sorted(back["name"]) == sorted(f"{i}号楼" for i in range(1, 7))
    assert not {"elderly_65", "disabled", "party_members"} & set(back.columns)  # group counts stay in building_groups


def test_export_only_current_grids(empty, tmp_path):
    ff.load_admin(empty, tmp_path)
    import_file("grids", ff.admin_gpkg(tmp_path), source_layer="grids", replace=True, conn=empty)
    assert count(empty, "grids") == 4
    assert export_layer(empty, "grids", tmp_path / "g.gpkg") == 2
    assert len(read_layer(empty, "grids")) == 2


def test_export_refuses_unknown_formats(empty, tmp_path):
    with pytest.raises(ValueError, match="use .geojson, .gpkg or .csv"):
        export_layer(empty, "buildings", tmp_path / "b.kml")


def test_status_counts_rows_and_last_import(empty, tmp_path):
    ff.load_everything(empty, tmp_path)
    by_layer = {r["layer"]: r for r in status(empty)}
    assert set(by_layer) == set(LOAD_ORDER)
    assert by_layer["buildings"]["rows"] == 6 and by_layer["buildings"]["zh"] == "楼栋"
    assert by_layer["buildings"]["last_import"] is not None
