"""The administrator's grid screen and the leader's staffing screen, driven by AppTest
(the map itself is exercised by the browser tests)."""
from __future__ import annotations

from sqlalchemy import text

from gis.db import owner_engine


def _screen(name: str, geojson_limit: int | None = None):
    from streamlit.testing.v1 import AppTest

    def page(name: str, geojson_limit: int | None) -> None:
        from gis.scope import Scope, set_scope
        from ui.screens import grids, staffing

        if geojson_limit is not None:  # (a city's grid count, without a city)
            staffing.STAFFING_GEOJSON_LIMIT = geojson_limit
        # The screen alone, without the page script's sign-in: act as the role that owns it.
        set_scope(Scope(user="t_admin", role="admin") if name == "grids" else Scope(user="t_leader", role="leader"))
        {"grids": grids.render, "staffing": staffing.render}[name]()

    return AppTest.from_function(page, args=(name, geojson_limit), default_timeout=180).run()


def test_grid_screen_checks_proposes_and_discards(demo):
    at = _screen("grids")
    assert not at.exception, at.exception
    assert any("未发现问题" in s.value for s in at.success)
    at.selectbox(key="grids_community").set_value("420106010002").run()
    at.button(key="grids_propose").click().run()
    assert not at.exception, at.exception
    assert any("方案草稿" in m.value for m in at.markdown)
    draft = at.session_state["grids_draft"]
    at.button(key="grids_discard").click().run()
    with owner_engine().connect() as c:
        assert c.execute(text("SELECT status FROM grid_drafts WHERE id = :d"), {"d": draft}).scalar_one() == "discarded"


def test_staffing_screen_assigns_a_worker_and_the_gap_closes(demo):
    at = _screen("staffing")
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    before = int(metrics["无专职网格员的网格"])
    assert before == 5
    grid = at.selectbox(key="staff_grid").value
    try:
        at.selectbox(key="staff_cadre").set_value("C0078").run()
        at.button(key="staff_do_assign").click().run()
        assert not at.exception, at.exception
        assert int({m.label: m.value for m in at.metric}["无专职网格员的网格"]) == before - 1
    finally:
        with owner_engine().begin() as c:
            c.execute(text("""DELETE FROM assignments WHERE cadre_id = (SELECT id FROM cadres WHERE cadre_no = 'C0078')
                              AND grid_id = (SELECT id FROM grids WHERE code = :g AND valid_to IS NULL)"""), {"g": grid})
            c.execute(text("UPDATE grids SET staff_version = 0 WHERE code = :g AND valid_to IS NULL"), {"g": grid})
            c.execute(text("DELETE FROM audit_log WHERE actor = 'dashboard' AND row_key = :k"), {"k": f"grid:{grid}"})


def test_cadre_registry_edit_is_validated_and_audited(demo, conn):
    import pytest

    from layers.cadres import registry, update

    reg = registry(conn)
    assert len(reg) > 300 and {"cadre_no", "role", "phone"} <= set(reg.columns)
    update(conn, "C0078", {"phone": "13800000000", "role": "兼职网格员"}, actor="test")
    row = registry(conn).set_index("cadre_no").loc["C0078"]
    assert row.phone == "13800000000" and row.role == "part_time_worker"
    logged = conn.execute(text("SELECT before, after FROM audit_log WHERE action = 'cadre_edit' AND row_key = 'C0078'")).one()
    assert logged.after["role"] == "part_time_worker" and logged.before["role"] == "full_time_worker"
    with pytest.raises(ValueError):
        update(conn, "C0078", {"role": "emperor"})
    with pytest.raises(ValueError):
        update(conn, "C0078", {"cadre_no": "X"})


def test_building_head_assignment(demo, conn):
    from grid.assign import assign, staff, target

    building = conn.execute(text("SELECT source_id FROM buildings ORDER BY id LIMIT 1")).scalar_one()
    assign(conn, "C0078", building=building, role="building_head", actor="test")
    assert [s["cadre_no"] for s in staff(conn, target(conn, building=building)) if s["role"] == "building_head"].count("C0078") == 1


def test_staffing_map_of_a_city_draws_grid_tiles(demo):
    """Above STAFFING_GEOJSON_LIMIT grids the staffing map draws the grid tiles (a city's 50,000 outlines
    were 28 MB of GeoJSON in the page) and says where the worker-level findings are; below it, no such note."""
    from ui.screens import staffing

    note = "地图按网格状态着色"
    small = _screen("staffing")
    assert not small.exception, small.exception
    assert not any(note in c.value for c in small.caption)
    city = _screen("staffing", geojson_limit=10)
    try:
        assert not city.exception, city.exception
        shown = [c.value for c in city.caption if note in c.value]
        assert len(shown) == 1 and "69 个网格" in shown[0], shown
        assert {m.label: m.value for m in city.metric} == {m.label: m.value for m in small.metric}  # the same figures either way
    finally:
        staffing.STAFFING_GEOJSON_LIMIT = 5000
