"""The real-data case: the Monaco OpenStreetMap extract (© OpenStreetMap contributors, ODbL)."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from gis.problems import ImportFailed
from layers.importer import import_osm
from tests.conftest import MONACO, count


def test_monaco_counts(empty):
    reports = import_osm(MONACO, repair=True, conn=empty)
    assert {r.layer: r.rows for r in reports}["buildings"] == 1283
    assert count(empty, "buildings") == 1283
    assert count(empty, "communities") == 6
    assert count(empty, "cameras") == 14
    assert count(empty, "roads") == 2811
    by_cat = dict(empty.execute(text("SELECT category, count(*) FROM facilities GROUP BY 1")).all())
    assert by_cat["school"] + by_cat.get("kindergarten", 0) >= 10
    assert by_cat["hospital"] == 7 and by_cat["police"] == 9 and by_cat["pharmacy"] == 12 and by_cat["fire_station"] == 2
    names = set(empty.execute(text("SELECT name FROM communities")).scalars())
    assert names == {"Fontvieille", "Monaco-Ville", "La Condamine", "La Rousse", "Larvotto", "Monte-Carlo"}
    # shared/data/README.md says 461; the extract itself holds 462 buildings tagged building:levels.
    assert count(empty, "buildings", "floors IS NOT NULL") == 462
    # every building with a ward under it got that ward
    inside = count(empty, "buildings b", "EXISTS (SELECT 1 FROM communities c WHERE ST_Contains(c.geom, ST_PointOnSurface(b.geom)))")
    assert inside > 800 and count(empty, "buildings", "community_code IS NOT NULL") == inside
    repaired = [p for r in reports for p in r.repaired]
    assert [p.source_id for p in repaired] == ["r11384697"]


def test_monaco_broken_feature_stops_import_by_default(empty):
    with pytest.raises(ImportFailed) as err:
        import_osm(MONACO, conn=empty)
    problems = err.value.problems
    assert [p.source_id for p in problems] == ["r11384697"]
    assert "Self-intersection" in problems[0].problem
    assert count(empty, "buildings") == 0 and count(empty, "cameras") == 0


def test_monaco_skip_invalid_reports_what_it_skipped(empty):
    reports = import_osm(MONACO, skip_invalid=True, conn=empty)
    buildings = next(r for r in reports if r.layer == "buildings")
    assert buildings.rows == 1282
    assert [p.source_id for p in buildings.skipped] == ["r11384697"]
    assert count(empty, "buildings") == 1282
