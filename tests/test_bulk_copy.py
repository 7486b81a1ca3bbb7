"""The write path of every import (layers.base.copy_rows): binary COPY, its CSV fallback,
and the secondary indexes built after a large load into an empty table."""
from __future__ import annotations

import pandas as pd
import psycopg
import pytest
import shapely
from sqlalchemy import text

from bench.scale import generate
from layers.base import REBUILD_INDEXES_MIN_ROWS, copy_rows
from layers.importer import import_file
from tests.conftest import count

INDEXES = "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'buildings'::regclass ORDER BY 1"


def test_large_load_into_empty_table_keeps_every_index(empty, tmp_path):
    before = empty.execute(text(INDEXES)).all()
    frames = generate(buildings=REBUILD_INDEXES_MIN_ROWS + 500, seed=3)
    path = tmp_path / "b.gpkg"
    frames["buildings"].to_file(path, layer="buildings", driver="GPKG")
    report = import_file("buildings", path, source_layer="buildings", conn=empty)
    assert report.rows == REBUILD_INDEXES_MIN_ROWS + 500 == count(empty, "buildings")
    assert empty.execute(text(INDEXES)).all() == before
    # the rebuilt GiST index answers, and the stored geometry is the file's
    hit = empty.execute(text("SELECT count(*) FROM buildings WHERE geom && ST_MakeEnvelope(114.2, 30.4, 114.4, 30.7, 4326)")).scalar_one()
    assert hit == report.rows
    first = frames["buildings"].iloc[0]
    wkb = empty.execute(text("SELECT ST_AsBinary(geom) FROM buildings WHERE source_id = :s"), {"s": first["source_id"]}).scalar_one()
    assert shapely.from_wkb(bytes(wkb)).equals_exact(first.geometry, 0)
    assert empty.execute(text("SELECT ST_SRID(geom) FROM buildings LIMIT 1")).scalar_one() == 4326


def test_failed_bulk_load_restores_indexes(empty):
    before = empty.execute(text(INDEXES)).all()
    n = REBUILD_INDEXES_MIN_ROWS
    frame = pd.DataFrame({
        "source_id": [f"X{i}" for i in range(n)], "district_code": "420106",
        "floors": [3] * (n - 1) + [500],  # the last row breaks CHECK (floors BETWEEN 1 AND 200)
        "geom": shapely.multipolygons([[shapely.box(114.3, 30.5, 114.3001, 30.5001)]] * n),
    })
    with pytest.raises(psycopg.errors.CheckViolation):
        copy_rows(empty, "buildings", frame, ["source_id", "district_code", "floors", "geom"], bulk=True)
    assert empty.execute(text(INDEXES)).all() == before
    assert count(empty, "buildings") == 0


def test_binary_and_csv_copies_store_the_same(empty):
    empty.execute(text("CREATE TEMP TABLE t_bin (s text, c char(3), i smallint, f real, b boolean, d date, g geometry(Point, 4326))"))
    empty.execute(text("CREATE TEMP TABLE t_csv (s text, c char(3), i smallint, f real, b boolean, d date, g geometry(Point, 4326), n numeric)"))
    frame = pd.DataFrame({
        "s": ["a,\"b\"", None, "网格"], "c": ["001", "002", None], "i": pd.array([1, None, 3], dtype="Int64"),
        "f": [1.5, None, 2.0], "b": pd.array([True, None, False], dtype="boolean"),
        "d": [pd.Timestamp("2026-11-25").date(), None, pd.Timestamp("2026-01-01").date()],
        "g": [shapely.Point(114.3, 30.5), None, shapely.Point(114.31, 30.51)], "n": [1, 2, 3],
    })
    cols = ["s", "c", "i", "f", "b", "d", "g"]
    copy_rows(empty, "t_bin", frame, cols)
    copy_rows(empty, "t_csv", frame, [*cols, "n"])  # numeric has no binary dumper here: CSV
    sel = "SELECT s, c, i, f, b, d, ST_AsEWKT(g) FROM {} ORDER BY c NULLS LAST"
    got = empty.execute(text(sel.format("t_bin"))).all()
    assert got == empty.execute(text(sel.format("t_csv"))).all()
    assert got[0][0] == 'a,"b"' and got[2][0] == "网格" and got[0][6] == "SRID=4326;POINT(114.3 30.5)" and got[1][6] is None
