"""The city-scale synthetic generator (bench/scale.py): deterministic, and every layer goes
through the ordinary importers with the hierarchy intact."""
from __future__ import annotations

import numpy as np
import shapely

from bench.scale import LAYERS, generate, write_gpkg
from layers.importer import import_file
from tests.conftest import count

SIZE = dict(buildings=2_000, grids=60, cameras=120, facilities=40, seed=7)


def test_generate_is_deterministic_and_exact():
    a, b = generate(**SIZE), generate(**SIZE)
    assert list(a) == list(LAYERS)
    for name in LAYERS:
        assert a[name].drop(columns="geometry").equals(b[name].drop(columns="geometry")), name
        assert (shapely.to_wkb(a[name].geometry.values) == shapely.to_wkb(b[name].geometry.values)).all(), name
    assert {k: len(v) for k, v in a.items() if k in ("buildings", "grids", "cameras", "facilities")} == \
        {"buildings": 2_000, "grids": 60, "cameras": 120, "facilities": 40}
    assert not generate(**{**SIZE, "seed": 8})["buildings"].geometry.geom_equals(a["buildings"].geometry).all()
    assert len(generate(buildings=2_000, grids=60, roads=1_000)["roads"]) == 1_000
    # footprints never overlap (measured in metres)
    fp = a["buildings"].to_crs(4547).geometry.values
    i, j = shapely.STRtree(fp).query(fp, predicate="intersects")
    assert (i == j).all()
    assert a["grids"]["code"].str.fullmatch(r"420106020\d{6}").all()
    assert a["cameras"]["device_id"].str.fullmatch(r"42010602001310\d{6}").all()


def test_small_city_imports_and_every_building_lands_in_a_grid(empty, tmp_path):
    frames = generate(**SIZE)
    gpkg = write_gpkg(frames, tmp_path / "city.gpkg")
    reports = {name: import_file(name, gpkg, source_layer=name, conn=empty) for name in LAYERS}
    assert {k: r.rows for k, r in reports.items()} == {k: len(v) for k, v in frames.items()}
    assert count(empty, "buildings") == 2_000
    assert count(empty, "buildings", "grid_id IS NULL") == 0
    # each building lies inside the grid it was given, and that grid's community is its own
    assert count(empty, "buildings b JOIN grids g ON g.id = b.grid_id",
                 "ST_Within(b.geom, g.geom) AND b.community_code = g.community_code") == 2_000
    assert count(empty, "grids g JOIN communities c ON c.code = g.community_code", "ST_Within(ST_PointOnSurface(g.geom), c.geom)") == 60
    assert count(empty, "facilities", "community_code IS NULL") == 0
    assert count(empty, "subdistricts", "code = '420106020' AND metric_srid = 4547") == 1
    hh = np.asarray(frames["buildings"]["households"]).sum()
    assert int(empty.exec_driver_sql("SELECT sum(households) FROM buildings").scalar_one()) == hh


def test_city_proportions_and_a_city_with_more_than_999_communities_worth_of_grids():
    """Issue 18's city: 1,000,000 buildings, 50,000 grids, 25,000 cameras, 4,000 facilities,
    500,000 road edges; its 50,000 grids (a community per 12 would be 4,167, more than a
    3-digit code holds) go into 999 communities."""
    from bench.scale import city_sizes

    assert city_sizes(1_000_000) == dict(buildings=1_000_000, grids=50_000, cameras=25_000, facilities=4_000, roads=500_000)
    frames = generate(buildings=24_000, grids=12_000, cameras=10, facilities=15, roads=30_000)
    assert {k: len(v) for k, v in frames.items()} == {"subdistricts": 1, "communities": 999, "grids": 12_000, "buildings": 24_000,
                                                      "roads": 30_000, "cameras": 10, "facilities": 15}
    assert frames["communities"]["code"].is_unique and frames["grids"]["code"].is_unique
    assert frames["grids"]["code"].str[:12].isin(frames["communities"]["code"]).all()
