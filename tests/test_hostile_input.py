"""Hostile input to every text box and upload of the dashboard: SQL injection, path
traversal in file names, NUL bytes, markup, oversized files and malformed geometry. Each
must be refused (or treated as plain text) with a clear message, and the database must be
exactly as before. Driven through the real page script (AppTest) signed in as the role
that owns the screen; the sign-in form itself is tried in tests/test_signin.py."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from gis.db import owner_engine

HOSTILE = [
    "'; DROP TABLE buildings; --",
    "' OR '1'='1",
    "1); DELETE FROM users; --",
    "../../../../etc/passwd",
    "<img src=x onerror=alert(1)>",
    "名字\x00注入",
    "%00%27%20OR%201=1",
]
TABLES = ("users", "buildings", "building_groups", "grids", "cadres", "assignments", "facilities", "events", "siting_scenarios")


def fingerprint() -> dict[str, str]:
    """A digest of every row of the tables a screen could change (and the audit log's length)."""
    out = {}
    with owner_engine().connect() as c:
        for table in TABLES:
            out[table] = c.execute(text(f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t")).scalar_one()
        out["audit_log"] = str(c.execute(text("SELECT count(*) FROM audit_log")).scalar_one())
    return out


def _errors(at) -> str:
    return " ".join(e.value for e in at.error) + " ".join(w.value for w in at.warning)


@pytest.mark.parametrize("value", HOSTILE)
def test_new_user_form(accounts: dict, value: str) -> None:
    before = fingerprint()
    at = _admin_page(accounts, "users")
    at.text_input(key="new_username").input(value)
    at.text_input(key="new_display").input(value)
    at.text_input(key="new_pw1").input(value * 2)
    at.text_input(key="new_pw2").input(value * 2)
    at.button[[b.label for b in at.button].index("新建用户")].click().run()
    assert not at.exception, at.exception
    assert "未保存" in _errors(at) and "用户名" in _errors(at)
    assert fingerprint() == before


@pytest.mark.parametrize("value", HOSTILE)
def test_audit_filter(accounts: dict, value: str) -> None:
    before = fingerprint()
    at = _admin_page(accounts, "audit")
    at.text_input(key="audit_actor").input(value).run()
    assert not at.exception, at.exception
    assert "共 0 条" in " ".join(c.value for c in at.caption)
    assert fingerprint() == before


@pytest.mark.parametrize("value", HOSTILE)
def test_building_head_boxes(accounts: dict, value: str) -> None:
    before = fingerprint()
    at = _page(accounts["leader"], "staffing")
    at.text_input(key="staff_building").input(value[:64])
    at.text_input(key="staff_head").input(value[:32])
    at.button(key="staff_head_assign").click().run()
    assert not at.exception, at.exception
    assert _errors(at), "no message for a building/cadre that does not exist"
    assert fingerprint() == before


@pytest.mark.parametrize("value", HOSTILE)
def test_import_crs_and_layer_boxes(accounts: dict, value: str) -> None:
    before = fingerprint()
    at = _admin_page(accounts, "import")
    at.selectbox(key="admin_layer").set_value("facilities")
    at.file_uploader(key="admin_files").set_value(("ok.geojson", json.dumps(_facility_collection()).encode(), "application/geo+json"))
    at.text_input(key="admin_crs").input(value)
    at.button(key="admin_import").click().run()
    assert not at.exception, at.exception
    assert _errors(at)
    assert fingerprint() == before


@pytest.mark.parametrize("name", [
    "../../../../tmp/wangge_pwned.geojson", "..\\..\\windows\\system32\\evil.geojson", "/etc/cron.d/evil.geojson",
    ".hidden.geojson", "名单'; DROP TABLE facilities; --.geojson",
])
def test_upload_names_cannot_leave_the_upload_folder(accounts: dict, name: str, tmp_path) -> None:
    """A file named to escape is imported (or refused) as a plain name inside a fresh folder."""
    from pathlib import Path

    before = fingerprint()
    at = _admin_page(accounts, "import")
    at.selectbox(key="admin_layer").set_value("facilities")
    bad = _facility_collection(geometry={"type": "Point", "coordinates": ["x", 30.5]})  # and not importable
    at.file_uploader(key="admin_files").set_value((name, json.dumps(bad).encode(), "application/geo+json"))
    at.button(key="admin_import").click().run()
    assert not at.exception, at.exception
    assert _errors(at)
    assert not Path("/tmp/wangge_pwned.geojson").exists() and not Path("/etc/cron.d/evil.geojson").exists()
    assert fingerprint() == before


@pytest.mark.parametrize("geometry", [
    {"type": "Point", "coordinates": [114.3]},
    {"type": "Point", "coordinates": [514.3, 30.5]},
    {"type": "Polygon", "coordinates": [[[114.3, 30.5], [114.31, 30.5], [114.3, 30.5]]]},
    None,  # a feature without geometry
    {"type": "LineString", "coordinates": [[114.3, 30.5], [114.31, 30.51]]},  # a line where points belong
])
def test_malformed_geometry_is_refused(accounts: dict, geometry) -> None:
    before = fingerprint()
    at = _admin_page(accounts, "import")
    at.selectbox(key="admin_layer").set_value("facilities")
    at.file_uploader(key="admin_files").set_value(("bad.geojson", json.dumps(_facility_collection(geometry=geometry)).encode(),
                                                   "application/geo+json"))
    at.button(key="admin_import").click().run()
    assert not at.exception, at.exception
    assert _errors(at), "refused without a message"
    assert fingerprint() == before


def test_oversized_upload_is_refused_before_reading(accounts: dict, monkeypatch) -> None:
    from gis.settings import get_settings

    monkeypatch.setattr(get_settings(), "max_upload_mb", 1)
    before = fingerprint()
    at = _admin_page(accounts, "import")
    at.selectbox(key="admin_layer").set_value("facilities")
    big = json.dumps(_facility_collection()).encode() + b" " * (2 * 2**20)
    at.file_uploader(key="admin_files").set_value(("big.geojson", big, "application/geo+json"))
    at.button(key="admin_import").click().run()
    assert not at.exception, at.exception
    assert "文件过大" in _errors(at) and "big.geojson" in _errors(at)
    assert fingerprint() == before


def test_markup_in_a_display_name_stays_text(accounts: dict) -> None:
    """A name with markup, saved by an administrator, is shown as those characters."""
    at = _admin_page(accounts, "users")
    shown = " ".join(str(df.value.to_dict()) for df in at.dataframe)
    assert "<img" not in " ".join(m.value for m in at.markdown if getattr(m, "allow_html", False))
    assert shown  # the user table is there


@pytest.mark.parametrize("value", HOSTILE)
def test_planner_building_ids(accounts: dict, value: str) -> None:
    """Candidate buildings named by hostile IDs: refused with a message, no scenario saved."""
    before = fingerprint()
    at = _page(accounts["planner"], "planning")
    at.radio(key="plan_cands").set_value("buildings").run()
    at.text_input(key="plan_building_ids").input(value)
    at.button(key="plan_run").click().run()
    assert not at.exception, at.exception
    assert _errors(at)
    assert fingerprint() == before


def test_planner_oversized_candidate_file(accounts: dict, monkeypatch) -> None:
    from gis.settings import get_settings

    monkeypatch.setattr(get_settings(), "max_upload_mb", 1)
    before = fingerprint()
    at = _page(accounts["planner"], "planning")
    at.radio(key="plan_cands").set_value("file").run()
    at.file_uploader(key="plan_file").set_value(("big.geojson", b" " * (2 * 2**20), "application/geo+json"))
    at.button(key="plan_run").click().run()
    assert not at.exception, at.exception
    assert "文件过大" in _errors(at)
    assert fingerprint() == before


# --- helpers ------------------------------------------------------------------------------

GOOD_POINT = {"type": "Point", "coordinates": [114.315, 30.549]}


def _facility_collection(geometry=GOOD_POINT) -> dict:
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"source_id": "HOSTILE-1", "name": "测试站", "category": "社区服务站"},
         "geometry": geometry}]}


def _page(account, path: str):
    from tests.accounts import open_screen

    return open_screen(account, path)


def _admin_page(accounts: dict, path: str):
    return _page(accounts["admin"], path)
