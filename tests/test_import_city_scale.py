"""The buildings import at a city's size (issue 18) keeps what the import promised.

``layers.buildings._pick_grids`` picks a grid in Python for each building within one and leaves
the rest to the server; a load of ``REBUILD_INDEXES_MIN_ROWS`` or more drops the secondary indexes
and the foreign keys and adds them back after the rows (``layers.base.copy_rows``); migration 0028
fills the box columns by a trigger. Checked here on a generated city with buildings moved across
grid boundaries and out of every grid: the grids and communities are the ones the SQL rule
(``ASSIGN_GRIDS``, ``ASSIGN_COMMUNITIES``) picks, the box columns are 0024's expressions, the
constraints and indexes are all back, building_stats sums the rows, and a bad key still fails
the whole load."""
from __future__ import annotations

import pytest
import shapely
from sqlalchemy import text

from bench.scale import generate, write_gpkg
from gis.problems import ImportFailed
from layers.base import REBUILD_INDEXES_MIN_ROWS
from layers.buildings import ASSIGN_COMMUNITIES, ASSIGN_GRIDS
from layers.importer import import_file
from tests.conftest import count

N = REBUILD_INDEXES_MIN_ROWS + 2_000  # the bulk path


def _city(tmp_path):
    frames = generate(buildings=N, grids=N // 20, cameras=10, facilities=10, seed=3)
    b = frames["buildings"]
    geoms = b.geometry.values.copy()
    across = slice(0, N, 37)  # moved 40 m east: many now straddle a grid boundary
    geoms[across] = shapely.transform(geoms[across], lambda xy: xy + [0.0004, 0.0])
    away = slice(5, N, 401)  # moved out of the city: in no grid
    geoms[away] = shapely.transform(geoms[away], lambda xy: xy + [0.5, 0.0])
    frames["buildings"] = b.set_geometry(geoms)
    return write_gpkg(frames, tmp_path / "city.gpkg")


def _places(conn) -> dict:
    return {r[0]: (r[1], r[2]) for r in conn.execute(text("SELECT id, grid_id, community_code FROM buildings"))}


def test_city_import_picks_the_grids_the_sql_rule_picks(empty, tmp_path):
    gpkg = _city(tmp_path)
    for name in ("subdistricts", "communities", "grids", "buildings"):
        import_file(name, gpkg, source_layer=name, conn=empty)
    assert count(empty, "buildings") == N
    straddling = count(empty, "buildings b", "NOT EXISTS (SELECT 1 FROM grids g WHERE ST_Within(b.geom, g.geom)) "
                                             "AND EXISTS (SELECT 1 FROM grids g WHERE ST_Intersects(b.geom, g.geom))")
    outside = count(empty, "buildings b", "NOT EXISTS (SELECT 1 FROM grids g WHERE ST_Intersects(b.geom, g.geom))")
    assert straddling > 50 and outside > 10, (straddling, outside)  # both of the server's cases are exercised
    picked = _places(empty)
    empty.execute(text("UPDATE buildings SET grid_id = NULL, community_code = NULL"))
    empty.execute(text(ASSIGN_GRIDS), {"since": 0})
    empty.execute(text(ASSIGN_COMMUNITIES), {"since": 0})
    assert _places(empty) == picked
    # the box columns are 0024's generated expressions, now filled once per row by 0028's trigger
    g = "ST_Transform(geom, 3857)"
    assert count(empty, "buildings", f"cx_3857 = (ST_XMin({g}) + ST_XMax({g})) / 2 AND cy_3857 = (ST_YMin({g}) + ST_YMax({g})) / 2 "
                                     f"AND r_3857 = greatest(ST_XMax({g}) - ST_XMin({g}), ST_YMax({g}) - ST_YMin({g})) / 2") == N
    empty.execute(text("UPDATE buildings SET cx_3857 = 0, r_3857 = -1 WHERE id = 1"))  # a write to the box is overwritten
    assert count(empty, "buildings", f"id = 1 AND cx_3857 = (ST_XMin({g}) + ST_XMax({g})) / 2 AND r_3857 > 0") == 1
    # the keys and indexes dropped for the load are back, and building_stats sums the rows
    keys = set(empty.execute(text("SELECT conname FROM pg_constraint WHERE conrelid = 'buildings'::regclass AND contype = 'f'")).scalars())
    assert keys == {"buildings_community_code_fkey", "buildings_grid_id_fkey"}
    indexes = set(empty.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'buildings'")).scalars())
    assert {"buildings_geom_gix", "buildings_geom_3857_gix", "buildings_c_3857_ix", "buildings_r_3857_ix", "buildings_grid_ix"} <= indexes
    live = "SELECT community_code, grid_id, count(*)::int, sum(households)::bigint FROM buildings GROUP BY 1, 2"
    kept = "SELECT community_code, grid_id, buildings, households FROM building_stats"
    assert empty.execute(text(f"SELECT count(*) FROM (({live}) EXCEPT ({kept})) d")).scalar_one() == 0
    assert empty.execute(text(f"SELECT count(*) FROM (({kept}) EXCEPT ({live})) d")).scalar_one() == 0


def test_a_bad_key_in_a_city_size_load_is_named_by_row_and_nothing_is_written(empty, tmp_path):
    gpkg = _city(tmp_path)
    for name in ("subdistricts", "communities", "grids"):
        import_file(name, gpkg, source_layer=name, conn=empty)
    import geopandas as gpd

    b = gpd.read_file(gpkg, layer="buildings")
    b.loc[7, "community_code"] = "420106020999"  # no such community
    bad = tmp_path / "bad.gpkg"
    b.to_file(bad, layer="buildings")
    with pytest.raises(ImportFailed) as exc:
        import_file("buildings", bad, source_layer="buildings", conn=empty)
    assert [(p.row, p.column) for p in exc.value.problems] == [(8, "community_code")]
    assert count(empty, "buildings") == 0
    assert count(empty, "pg_constraint", "conrelid = 'buildings'::regclass AND contype = 'f'") == 2
