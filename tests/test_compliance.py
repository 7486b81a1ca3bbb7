"""Standards compliance per community (floor area per 100 households, office rooms,
one-stop centre, health station, culture room), stored results going stale, and the
``wangge coverage``/``wangge compliance`` command line on the demo."""
from __future__ import annotations

import json
import os
import subprocess

import pytest
from sqlalchemy import text

from analysis import compliance
from gis.db import owner_engine
from gis.settings import ROOT
from tests.coverage_world import COVERAGE_TABLES, building, clear_results, facility, world


def test_demo_planted_facility_gaps_fail_their_rules(demo, conn):
    clear_results(conn)
    frame = compliance.refresh(conn).set_index("community_code")
    per100 = frame["service_m2_per_100_households"]
    assert per100["420106010002"] == pytest.approx(8.8, abs=0.05) and per100["420106010006"] == pytest.approx(8.3, abs=0.05)
    assert per100["420106010001"] == pytest.approx(48.1, abs=0.05)  # as data/boundaries/README.md says
    failing = set(frame.index[frame["pass_service_space_complete"] == False])  # noqa: E712
    assert failing == {"420106010002", "420106010006"}
    assert set(frame.index[frame["pass_service_space_new"] == False]) == failing  # noqa: E712 — 8 m² fails the 20 m² rule too
    no_station = set(frame.index[frame["pass_community_office"] == False])  # noqa: E712
    assert no_station == {"420106010003", "420106010007"}
    assert set(frame.index[frame["pass_one_stop_centre"] == False]) == no_station  # noqa: E712
    assert set(frame.index[frame["pass_health_station"] == False]) == {"420106010004"}  # noqa: E712
    # 008's culture room is only planned: it does not count
    assert "420106010008" in set(frame.index[frame["pass_culture_room"] == False])  # noqa: E712
    rules = compliance.rules().set_index("rule")
    assert "30" in rules.loc["service_space_complete", "rule_name"] and "2022" in rules.loc["service_space_complete", "reference"]
    assert rules.loc["community_office", "setting"] == "community_office_min_m2" and rules.loc["community_office", "threshold"] == 200
    summary = compliance.summary(frame.reset_index()).set_index("rule")
    assert summary.loc["health_station", "failing_communities"] == "彭刘杨社区"
    # stored, then stale once a station's floor area changes
    stored = compliance.stored(conn)
    assert len(stored) == 8 * 6 and not stored.stale.any()
    conn.execute(text("UPDATE facilities SET floor_area = 2000 WHERE community_code = '420106010002' AND category = 'community_service_station'"))
    stored = compliance.stored(conn)
    assert set(stored.loc[stored.stale, "community_code"]) == {"420106010002"}
    assert compliance.compute(conn, "420106010002").iloc[0]["pass_service_space_complete"] == True  # noqa: E712


def test_hand_built_community(empty):
    world(empty)
    building(empty, "H", 0, 0, 50, 50, households=1000)
    facility(empty, "S", 10, 10, "community_service_station", floor_area=150)
    facility(empty, "D", 20, 20, "elderly_day_care", floor_area=200)
    facility(empty, "C", 30, 30, "culture_station")  # no floor area recorded
    facility(empty, "X", 40, 40, "kindergarten", floor_area=3000)  # not service space
    facility(empty, "P", 45, 45, "health_station", status="planned", floor_area=150)
    row = compliance.compute(empty).iloc[0]
    assert row.service_m2 == 350 and row.service_m2_per_100_households == 35.0
    assert row.pass_service_space_complete and row.pass_service_space_new
    assert row.office_m2 == 150 and not row.pass_community_office and row.pass_one_stop_centre
    assert not row.pass_health_station and row.culture_rooms == 1 and row.pass_culture_room
    assert row.floor_area_unknown == "C" and set(row.rules_failed) == {"community_office", "health_station"}


def _cli(*args):
    env = {**os.environ, "WANGGE_DB_NAME": os.environ.get("WANGGE_DB_NAME", "wangge_test")}
    return subprocess.run([str(ROOT / ".venv/bin/wangge"), *args], capture_output=True, text=True, env=env, timeout=180)


def test_coverage_and_compliance_cli(demo):
    try:
        comp = _cli("compliance", "--json")
        assert comp.returncode == 0, comp.stderr
        body = json.loads(comp.stdout)
        assert len(body["communities"]) == 8 and {r["rule"] for r in body["rules"]} >= {"service_space_complete", "culture_room"}
        assert next(r for r in body["subdistrict"] if r["rule"] == "health_station")["failing"] == 1
        cams = _cli("coverage", "cameras", "--detail", "detection", "--community", "420106010005", "--json")
        assert cams.returncode == 0, cams.stderr
        body = json.loads(cams.stdout)
        assert body["detail_level"] == "detection" and len(body["communities"]) == 1 and len(body["subdistrict"]) == 1
        assert body["grids"] and all(g["community_code"] == "420106010005" for g in body["grids"])
        assert body["assumption_counts"]["dome_circle"] >= 1 and body["xueliang"][0]["coverage_rule"].startswith("雪亮工程")
        srv = _cli("coverage", "services", "--category", "kindergarten", "--json")
        assert srv.returncode == 0, srv.stderr
        body = json.loads(srv.stdout)
        assert {r["category"] for r in body["categories"]} == {"kindergarten"} and body["life_circles"]
        human = _cli("coverage", "cameras")
        assert human.returncode == 0 and "雪亮工程" in human.stdout and "dome_circle" in human.stdout
    finally:
        with owner_engine().begin() as c:  # leave the shared test database without stored results
            c.execute(text(f"TRUNCATE {COVERAGE_TABLES} RESTART IDENTITY"))
