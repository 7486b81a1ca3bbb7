"""One edit's coverage refresh (analysis/coverage_edits.py) leaves exactly what a full
recompute after the same edit leaves: camera views, unit figures and key places, per-home
walking distances and facility points, compliance per community. On a generated city
(bench/scale.py), with the edits issue 18 names: move a camera, add a facility, change a
building (its households; and a footprint moved, with its former outline given)."""
from __future__ import annotations

import json
import math

import pytest
import shapely
from sqlalchemy import text

from analysis import cameras, compliance, services
from analysis.coverage_edits import refresh_after_edit
from bench.scale import LAYERS, generate, write_gpkg
from layers.importer import import_file

SIZE = dict(buildings=2_000, grids=60, cameras=150, facilities=60, roads=1_200, seed=11)
# every stored row, less the columns that only say when and in which run it was computed
TABLES = {
    "camera_views": "camera_id, detail_level",
    "camera_coverage": "detail_level, scope, code",
    "camera_key_places": "detail_level, facility_id",
    "service_buildings": "building_id",
    "service_facilities": "facility_id",
    "compliance_results": "community_code, rule",
}


def _snapshot(conn) -> dict[str, list[str]]:
    out = {}
    for table, key in TABLES.items():
        out[table] = conn.execute(text(f"""
            SELECT (to_jsonb(t) - 'run_id' - 'computed_at' - 'id')::text FROM {table} t ORDER BY {key}""")).scalars().all()
    return out


def _full(conn) -> None:
    cameras.refresh(conn, full=True)
    services.refresh(conn, full=True)
    compliance.refresh(conn)


@pytest.fixture
def city(empty, tmp_path):
    gpkg = write_gpkg(generate(**SIZE), tmp_path / "city.gpkg")
    for name in LAYERS:
        import_file(name, gpkg, source_layer=name, conn=empty)
    _full(empty)
    return empty


def _same(a, b) -> bool:
    """Equal, floats to 1e-6 m (a unit measured with its neighbours as context sums its
    pieces in another order than the whole city: the last bits of a float differ)."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _assert_same_as_full(conn, ran: dict) -> None:
    after_edit = _snapshot(conn)
    _full(conn)
    full = _snapshot(conn)
    for table in TABLES:
        assert len(after_edit[table]) == len(full[table]), table
        diff = [(a, b) for a, b in zip(after_edit[table], full[table]) if not _same(json.loads(a), json.loads(b))]
        assert not diff, f"{table}: {len(diff)} rows differ from a full recompute, e.g. {diff[:2]} (ran {ran})"


def test_moving_one_camera_refreshes_as_a_full_recompute_would(city):
    cam = city.execute(text("SELECT camera_id FROM camera_views WHERE shape = 'sector' AND counted ORDER BY camera_id LIMIT 1")).scalar_one()
    city.execute(text("""UPDATE cameras SET azimuth = (azimuth::numeric + 90) % 360, direction_type = NULL,
                         geom = ST_Transform(ST_Translate(ST_Transform(geom, 4547), 3, -2), 4326) WHERE id = :i"""), {"i": cam})
    ran = refresh_after_edit(city, cameras=[cam])
    assert ran["cameras"]["mode"] == "incremental" and ran["cameras"]["units"]
    _assert_same_as_full(city, ran)


def test_adding_one_facility_refreshes_as_a_full_recompute_would(city):
    # a kindergarten (a service category) with a floor area (compliance counts culture and
    # service rooms; a culture station is added too) in a home near the middle of the city
    host = city.execute(text("""SELECT b.id FROM buildings b WHERE b.households > 0
                                ORDER BY ST_Distance(b.geom, (SELECT ST_Centroid(geom) FROM subdistricts)) LIMIT 1""")).scalar_one()
    new = city.execute(text("""
        INSERT INTO facilities (source_id, district_code, community_code, name, category, floor_area, capacity, status, geom)
        SELECT 'F-NEW-' || c.cat, '420106', b.community_code, '新设施', c.cat, 900, 90, 'open', ST_PointOnSurface(b.geom)
        FROM buildings b, unnest(ARRAY['kindergarten', 'culture_station']) c(cat) WHERE b.id = :h RETURNING id"""),
        {"h": host}).scalars().all()
    ran = refresh_after_edit(city, facilities=new)
    assert ran["services"]["mode"] == "incremental" and ran["services"]["homes_walked"] > 0
    assert ran["compliance"]["communities"]
    _assert_same_as_full(city, ran)


def test_changing_one_building_refreshes_as_a_full_recompute_would(city):
    b = city.execute(text("SELECT id FROM buildings WHERE households > 0 ORDER BY id LIMIT 1 OFFSET 500")).scalar_one()
    city.execute(text("UPDATE buildings SET households = households + 40, residents = residents + 100 WHERE id = :b"), {"b": b})
    ran = refresh_after_edit(city, buildings=[b])
    assert ran["services"]["homes_walked"] == 1 and ran["compliance"]["communities"]
    _assert_same_as_full(city, ran)


def test_moving_one_footprint_refreshes_as_a_full_recompute_would(city):
    # a footprint near a camera, moved 1 m (it stays in its slot and grid): the views that
    # reach it, its unit's open space and facades, its walk and its community all change
    b, old = city.execute(text("""
        SELECT b.id, ST_AsText(b.geom) FROM buildings b JOIN cameras k ON ST_DWithin(b.geom::geography, k.geom::geography, 20)
        WHERE b.households > 0 ORDER BY b.id LIMIT 1""")).one()
    city.execute(text("UPDATE buildings SET geom = ST_Transform(ST_Translate(ST_Transform(geom, 4547), 1, 0.5), 4326) WHERE id = :b"), {"b": b})
    ran = refresh_after_edit(city, buildings=[b], before={b: shapely.from_wkt(old)})
    assert ran["cameras_near_buildings"] and ran["units_of_buildings"]
    _assert_same_as_full(city, ran)


def test_an_edit_without_its_refresh_differs_from_a_full_recompute(city):
    """The comparison can fail: the same edit, not refreshed, is caught."""
    b = city.execute(text("SELECT id FROM buildings WHERE households > 0 ORDER BY id LIMIT 1")).scalar_one()
    city.execute(text("UPDATE buildings SET households = households + 40 WHERE id = :b"), {"b": b})
    with pytest.raises(AssertionError, match="differ from a full recompute"):
        _assert_same_as_full(city, {})
