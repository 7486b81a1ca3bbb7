"""The installed ``wangge`` command, run as a user runs it: --json output, exit codes, and
DATABASE_URL. These imports COMMIT (no rollback fixture), so they use district 110101,
which no other test uses, and delete what they wrote afterwards."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import prcoords
import pyogrio
import pytest
from pyproj import Geod
from sqlalchemy import text

from gis.db import owner_engine
from gis.settings import get_settings
from tests import fixtures_files as ff

WANGGE = Path(sys.executable).parent / "wangge"
DISTRICT = "110101"
pytestmark = pytest.mark.skipif(not WANGGE.exists(), reason="the wangge console command is not installed (pip install -e .)")


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "OWNER_DATABASE_URL", "WANGGE_DATABASE_URL", "WANGGE_OWNER_DATABASE_URL")}
    base["WANGGE_DB_NAME"] = get_settings().db_name
    return subprocess.run([str(WANGGE), *args], capture_output=True, text=True, timeout=60, env={**base, **(env or {})})


def committed(sql: str, **params):
    with owner_engine().connect() as c:
        return c.execute(text(sql), params).all()


def clean() -> None:
    with owner_engine().begin() as c:
        for table in ("building_groups", "buildings", "facilities", "audit_log"):
            c.execute(text(f"DELETE FROM {table} WHERE district_code = :d"), {"d": DISTRICT})


@pytest.fixture
def tidy():
    clean()
    yield
    clean()


def test_import_json_then_export(tidy, tmp_path):
    path = ff.write(ff.buildings(3, source_id=["CLI-1", "CLI-2", "CLI-3"]), tmp_path / "cli_buildings.geojson")
    done = run("import", "buildings", str(path), "--district", DISTRICT, "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["ok"] is True and (out["layer"], out["file"], out["rows"], out["crs"]) == ("buildings", "cli_buildings.geojson", 3, "EPSG:4326")
    assert out["skipped"] == [] and out["repaired"] == []
    assert committed("SELECT source_id, households FROM buildings WHERE district_code = :d ORDER BY 1", d=DISTRICT) == [
        ("CLI-1", 20), ("CLI-2", 21), ("CLI-3", 22)]
    assert committed("SELECT count(*) FROM audit_log WHERE action = 'import' AND district_code = :d", d=DISTRICT) == [(1,)]

    target = tmp_path / "exported.geojson"
    done = run("export", "buildings", str(target), "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    total = committed("SELECT count(*) FROM buildings")[0][0]
    assert out == {"ok": True, "layer": "buildings", "file": str(target), "rows": total}
    back = pyogrio.read_dataframe(target)
    assert len(back) == total and {"CLI-1", "CLI-2", "CLI-3"} <= set(back["source_id"])


def test_bad_file_exits_1_with_problems_by_row(tidy, tmp_path):
    gdf = ff.buildings(3, source_id=["CLI-1", "CLI-2", "CLI-3"], households=[1, "很多", 3])
    gdf = gdf.set_geometry([gdf.geometry[0], gdf.geometry[1], ff.bowtie(ff.LON, ff.LAT)])
    path = ff.write(gdf, tmp_path / "cli_bad.geojson")
    done = run("import", "buildings", str(path), "--district", DISTRICT, "--json")
    assert done.returncode == 1
    out = json.loads(done.stdout)
    assert out["ok"] is False
    assert [(p["file"], p["row"], p["source_id"]) for p in out["problems"]] == [("cli_bad.geojson", 2, "CLI-2"), ("cli_bad.geojson", 3, "CLI-3")]
    assert "not a number" in out["problems"][0]["problem"] and "Self-intersection" in out["problems"][1]["problem"]
    assert committed("SELECT count(*) FROM buildings WHERE district_code = :d", d=DISTRICT) == [(0,)]

    # --skip-invalid --repair: row 3 repaired, row 2 skipped, both reported
    done = run("import", "buildings", str(path), "--district", DISTRICT, "--skip-invalid", "--repair", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["rows"] == 2
    assert [(p["row"], p["source_id"]) for p in out["skipped"]] == [(2, "CLI-2")]
    assert [(p["row"], p["source_id"]) for p in out["repaired"]] == [(3, "CLI-3")]


def test_map_and_gcj02_from_the_command_line(tidy, tmp_path):
    truth = (116.3975, 39.9087)  # Dongcheng, Beijing: district 110101
    c = prcoords.wgs_gcj(prcoords.Coords(truth[1], truth[0]))
    path = ff.write_csv(tmp_path / "高德点位.csv", ["设施代码", "类别", "lng", "lat"], [["CLI-F1", "药店", f"{c.lon:.7f}", f"{c.lat:.7f}"]])
    done = run("import", "配套设施", str(path), "--crs", "gcj02", "--map", "设施代码=source_id", "--district", DISTRICT, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["crs"] == "GCJ-02"
    [(x, y)] = committed("SELECT ST_X(geom), ST_Y(geom) FROM facilities WHERE district_code = :d AND source_id = 'CLI-F1'", d=DISTRICT)
    assert Geod(ellps="WGS84").inv(truth[0], truth[1], x, y)[2] < 1.0


def test_status_json_matches_the_database():
    done = run("status", "--json")
    assert done.returncode == 0, done.stderr
    rows = {r["layer"]: r for r in json.loads(done.stdout)}
    assert list(rows) == ["subdistricts", "communities", "grids", "buildings", "cameras", "facilities", "roads", "cadres", "assignments"]
    assert rows["buildings"]["rows"] == committed("SELECT count(*) FROM buildings")[0][0]
    assert rows["grids"]["rows"] == committed("SELECT count(*) FROM grids WHERE valid_to IS NULL")[0][0]


def test_database_url_is_honoured():
    url = get_settings().owner_database_url.replace("postgresql+psycopg://", "postgresql://")
    done = run("status", "--json", env={"DATABASE_URL": url, "WANGGE_DB_NAME": "no_such_database_test"})
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)) == 9
    wrong = url.rsplit("/", 1)[0] + "/no_such_database_test"
    done = run("status", "--json", env={"DATABASE_URL": wrong})
    assert done.returncode != 0 and "no_such_database_test" in done.stderr


def test_usage_errors_exit_2(tmp_path):
    path = ff.write(ff.buildings(1), tmp_path / "b.geojson")
    # an unknown layer is rejected input like any unknown name (issue 19): exit 1, strict JSON
    done = run("import", "parks", str(path), "--json")
    assert done.returncode == 1 and "unknown layer 'parks'" in json.loads(done.stdout)["error"]
    done = run("import", "buildings", str(path), "--map", "no-equals-sign", "--json")
    assert done.returncode == 2 and "SRC=DEST" in done.stderr
