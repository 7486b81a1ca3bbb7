"""The coverage screens (ui/screens/coverage.py) driven by Streamlit's AppTest, in Chinese
and English: the figures shown are the analysis functions' figures, the stale notice
appears after a camera or a facility is edited (and goes after a recompute), nothing
stored means "compute now" rather than a crash, and the exports hold the rows the
analyses return. The map itself is checked in the browser (tests/test_ui_coverage.py).

The results are computed and committed into the shared test database by ``results`` and
removed at the end of the module (other tests expect none, as the CLI test leaves it);
edits to cameras and facilities are undone in ``finally`` blocks.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from analysis import cameras, compliance, services
from gis.db import owner_engine, transaction
from gis.scope import SYSTEM, Scope, use_scope
from gis.settings import get_settings
from tests.coverage_world import COVERAGE_TABLES

LEADER = Scope(user="t_leader", role="leader")
CATEGORY = "kindergarten"


def compute_all() -> None:
    """Every analysis, stored (as the leader's 「立即计算」 or the CLI would)."""
    detail = get_settings().camera_detail_level
    with use_scope(SYSTEM):
        with transaction(owner=True) as c:
            cameras.refresh(c, detail)
        with transaction(owner=True) as c:
            services.refresh(c)
        with transaction(owner=True) as c:
            compliance.refresh(c)


def clear_results() -> None:
    with owner_engine().begin() as c:
        c.execute(text(f"TRUNCATE {COVERAGE_TABLES} RESTART IDENTITY"))


@pytest.fixture(scope="module")
def results(demo: dict) -> Iterator[None]:
    compute_all()
    yield
    clear_results()


@pytest.fixture
def fresh(results: None) -> None:
    """Stored results for every analysis and nothing stale (a test before may have cleared them)."""
    with owner_engine().connect() as c:
        if not c.execute(text("SELECT count(*) FROM coverage_runs")).scalar_one():
            compute_all()


def screen(lang: str = "zh", **state):
    """The leader's coverage screen alone, as the leader (the page script's sign-in is
    tested in test_ui_apptest.py; ROLE_SCREENS puts this screen in the leader's menu)."""
    from streamlit.testing.v1 import AppTest

    def page(lang: str) -> None:
        import streamlit as st

        from gis.scope import Scope, set_scope
        from ui.screens import coverage

        set_scope(Scope(user="t_leader", role="leader"))
        st.session_state.setdefault("lang", lang)
        coverage.render()

    at = AppTest.from_function(page, args=(lang,), default_timeout=240)
    for k, v in state.items():
        at.session_state[k] = v
    return at.run()


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _frame_with(at, column: str):
    return next(d.value for d in at.dataframe if column in getattr(d.value, "columns", []))


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


# --- the leader's screen -------------------------------------------------------------------------

def test_the_coverage_screen_is_the_leaders_second(demo: dict) -> None:
    from ui.screens import ROLE_SCREENS

    assert [p for p, _, _ in ROLE_SCREENS["leader"]][:2] == ["overview", "coverage"]
    assert all("coverage" not in [p for p, _, _ in ROLE_SCREENS[r]] for r in ("secretary", "worker", "planner"))


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_leader_screen_shows_the_analysis_figures(fresh: None, lang: str) -> None:
    from ui.i18n import t

    at = screen(lang, cov_category=CATEGORY)
    assert not at.exception, at.exception
    assert any(t("page.coverage", lang) in x.value for x in at.title)
    headers = [h.value for h in at.header]
    for key in ("cov.cameras", "cov.services", "cov.compliance_part", "cov.worst", "cov.exports"):
        assert t(key, lang) in headers
    assert not at.warning, [w.value for w in at.warning]  # fresh: no stale notice
    detail = get_settings().camera_detail_level
    with use_scope(LEADER), owner_engine().connect() as c:
        cov = cameras.coverage(c, detail)
        cc = services.category_coverage(c, category=CATEGORY)
        xl = cameras.xueliang(c, detail)
        ct = compliance.stored_table(c)
    whole = cov[cov.scope == "subdistrict"].iloc[0]
    shown = _metrics(at)
    assert shown[t("cov.road_share", lang)] == _pct(whole.road_share)
    assert shown[t("cov.key_places", lang)] == f"{whole.key_places_covered}/{whole.key_places}"
    sub = cc[cc.scope == "subdistrict"].iloc[0]
    assert shown[t("cov.beyond_network", lang)] == f"{int(sub.households_beyond_network):,}"
    assert shown[t("cov.beyond_straight", lang)] == f"{int(sub.households_beyond_straight):,}"
    # per community: the camera table and the walking table (walk beside straight line)
    cams = _frame_with(at, t("cov.road_uncovered_m", lang))
    comm = cov[cov.scope == "community"]
    assert cams[t("col.code", lang)].tolist() == comm.code.str.strip().tolist()
    assert cams[t("cov.road_share", lang)].tolist() == [_pct(v) for v in comm.road_share]
    walk = _frame_with(at, t("cov.overclaim", lang))
    mine = cc[cc.scope == "community"]
    assert walk[t("cov.beyond_network", lang)].tolist() == mine.households_beyond_network.tolist()
    assert walk[t("cov.beyond_straight", lang)].tolist() == mine.households_beyond_straight.tolist()
    # 雪亮工程 by name: every uncovered key place named
    check = _frame_with(at, t("cov.uncovered_places", lang))
    assert check[t("cov.uncovered_places", lang)].tolist() == xl.uncovered.tolist()
    assert set(check[t("cov.target_met", lang)]) <= {"✓", "✗", "—"}
    # compliance: one row per community, ✓/✗ as stored
    comp = _frame_with(at, t("cov.rules_passed", lang))
    assert len(comp) == len(ct) == 8
    col = f"{t('cov.rule.health_station', lang)} {t('cov.pass', lang)}"
    assert comp[col].tolist() == ["✓" if v else "✗" for v in ct.pass_health_station]
    assert comp[t("cov.rules_passed", lang)].tolist() == ct.rules_passed.tolist()
    # life circles, worst grids, downloads
    assert any(t("cov.circle_15min_network", lang) in getattr(d.value, "columns", []) for d in at.dataframe)
    worst = _frame_with(at, t("cov.road_uncovered_share", lang))
    assert len(worst) == 10
    labels = [b.label for b in at.get("download_button")]
    assert {t("cov.csv", lang), t("cov.excel", lang), t("cov.geojson", lang)} <= set(labels)


def test_detail_level_and_category_choices(fresh: None) -> None:
    at = screen("zh")
    assert at.selectbox(key="cov_detail").options == ["探测（25 像素/米）", "观察（62.5 像素/米）", "识别（125 像素/米）", "辨认（250 像素/米）"]
    at.selectbox(key="cov_detail").set_value("identification").run()
    assert not at.exception, at.exception
    # nothing stored at that level yet: it says so, the other analyses still show
    assert any("尚未计算" in i.value and "视频监控" in i.value for i in at.info)
    assert "服务设施步行可达" in [h.value for h in at.header]


def test_no_results_offers_to_compute(demo: dict, results: None) -> None:
    clear_results()
    at = screen("zh")
    assert not at.exception, at.exception
    assert any("尚无覆盖分析结果" in i.value for i in at.info)
    assert not at.dataframe and not at.metric
    at.button(key="cov_recompute").click().run()
    assert not at.exception, at.exception
    assert any("已重新计算" in s.value for s in at.success)
    assert "视频监控覆盖" in [h.value for h in at.header] and at.metric
    with owner_engine().connect() as c:
        runs = dict(c.execute(text("SELECT analysis, count(*) FROM coverage_runs GROUP BY 1")).all())
    assert set(runs) == {"cameras", "services", "compliance"}


# --- freshness -------------------------------------------------------------------------------------

def _camera_in(grid_code: str) -> int:
    """A counted sector camera whose view lies over the grid."""
    with owner_engine().connect() as c:
        return int(c.execute(text("""
            SELECT v.camera_id FROM camera_views v JOIN grids g ON g.code = :g AND g.valid_to IS NULL
            WHERE v.shape = 'sector' AND v.counted AND ST_Intersects(v.geom, g.geom)
            ORDER BY ST_Area(ST_Intersection(v.geom, g.geom)) DESC LIMIT 1"""), {"g": grid_code}).scalar_one())


def test_stale_notice_after_editing_a_camera_and_a_facility_then_recompute(fresh: None, accounts: dict) -> None:
    from tests.accounts import apptest

    worker = accounts["worker"]
    with owner_engine().connect() as c:
        grid = c.execute(text("SELECT code FROM grids WHERE id = :i"), {"i": worker.grids[0]}).scalar_one().strip()
        fac = c.execute(text("SELECT id FROM facilities WHERE category = :k AND status = 'open' ORDER BY id LIMIT 1"),
                        {"k": CATEGORY}).scalar_one()
    cam = _camera_in(grid)
    with owner_engine().begin() as c:
        before_cam = c.execute(text("SELECT azimuth, direction_type FROM cameras WHERE id = :i"), {"i": cam}).one()
        before_fac = c.execute(text("SELECT geom FROM facilities WHERE id = :i"), {"i": fac}).scalar_one()
        c.execute(text("UPDATE cameras SET azimuth = (coalesce(azimuth, 0)::numeric + 180) % 360, direction_type = NULL WHERE id = :i"),
                  {"i": cam})
        c.execute(text("UPDATE facilities SET geom = ST_Transform(ST_Translate(ST_Transform(geom, 4547), 150, -80), 4326) WHERE id = :i"),
                  {"i": fac})
    try:
        at = screen("zh")
        assert not at.exception, at.exception
        notice = " ".join(w.value for w in at.warning)
        assert "数据已过期" in notice and "摄像头有变更" in notice and "服务设施有变更" in notice
        assert at.button(key="cov_recompute").label == "重新计算（只更新变化部分）"
        # the worker of a touched grid sees the notice for their grid
        wat = apptest(worker)
        assert not wat.exception, wat.exception
        assert any("数据已过期" in w.value and "视频监控" in w.value for w in wat.warning)
        assert not wat.get("button") or all(b.key != "cov_recompute" for b in wat.button)  # the worker does not recompute
        # English says the same
        en = screen("en")
        assert any("Figures out of date" in w.value and "a camera changed" in w.value for w in en.warning)
        # recompute: incremental (only what the edits touch), then nothing is stale
        at.button(key="cov_recompute").click().run()
        assert not at.exception, at.exception
        done = " ".join(s.value for s in at.success)
        assert "视频监控 增量更新" in done and "服务设施可达 增量更新" in done
        assert not any("数据已过期" in w.value for w in at.warning)
        ran = at.session_state["cov_recompute_result"]
        assert ran["cameras"]["mode"] == "incremental" and ran["cameras"]["cameras"] >= 1
        assert grid in ran["cameras"]["units"] and ran["services"]["facilities"] == [fac]
    finally:
        with owner_engine().begin() as c:
            c.execute(text("UPDATE cameras SET azimuth = :a, direction_type = :d WHERE id = :i"),
                      {"a": before_cam.azimuth, "d": before_cam.direction_type, "i": cam})
            c.execute(text("UPDATE facilities SET geom = :g WHERE id = :i"), {"g": before_fac, "i": fac})
        compute_all()  # back to fresh for the tests after


# --- the grid worker ---------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["zh", "en"])
def test_worker_sees_their_grid_coverage(fresh: None, accounts: dict, lang: str) -> None:
    from tests.accounts import apptest
    from ui.i18n import t

    worker = accounts["worker"]
    at = apptest(worker, lang=lang)
    assert not at.exception, at.exception
    assert t("cov.my_grid", lang) in [h.value for h in at.header]
    gid = at.selectbox(key="worker_grid").value
    with owner_engine().connect() as c:
        code = c.execute(text("SELECT code FROM grids WHERE id = :i"), {"i": int(gid)}).scalar_one().strip()
    detail = get_settings().camera_detail_level
    with use_scope(LEADER), owner_engine().connect() as c:
        cov = cameras.coverage(c, detail, scope="grid")
        cc = services.category_coverage(c)
    row = cov[cov.code.str.strip() == code].iloc[0]
    shown = _metrics(at)
    assert shown[t("cov.road_share", lang)] == _pct(row.road_share)
    assert shown[t("cov.key_places", lang)] == f"{row.key_places_covered}/{row.key_places}"
    table = _frame_with(at, t("cov.beyond_network", lang))
    mine = cc[(cc.scope == "grid") & (cc.code.str.strip() == code)]
    assert table[t("cov.beyond_network", lang)].tolist() == mine.households_beyond_network.tolist()
    assert table[t("cov.beyond_straight", lang)].tolist() == mine.households_beyond_straight.tolist()
    # the rest of the worker's screen is still there
    assert any(t("page.my_grid", lang) in x.value for x in at.title)


# --- exports ---------------------------------------------------------------------------------------

def test_exports_hold_the_analysis_rows(fresh: None) -> None:
    from openpyxl import load_workbook

    from ui import coverage_data as cd
    from ui.i18n import t
    from ui.screens import coverage as screen_mod

    detail = get_settings().camera_detail_level
    with use_scope(LEADER):
        version = cd.versions(detail)
        cov = cd.camera_figures(detail, version)
        cc = cd.category_coverage(version)
        layers = screen_mod.export_layers(detail, version, CATEGORY)
        ct = cd.compliance_table(version)
        with owner_engine().connect() as c:
            gaps = cameras.uncovered(c, None, detail)
            views = cameras.view_layer(c, detail)
            homes = services.home_layer(c, CATEGORY)
            expect_cc = services.category_coverage(c, category=CATEGORY)
    # CSV of the per-community walking table: one row per community, the analysis' numbers
    table = screen_mod.service_table(cc, CATEGORY, "community", "zh")
    rows = list(csv.DictReader(io.StringIO(screen_mod.csv_bytes(table).decode("utf-8-sig"))))
    want = expect_cc[expect_cc.scope == "community"]
    assert [r["编码"] for r in rows] == want.code.str.strip().tolist()
    assert [int(r[t("cov.beyond_network", "zh")]) for r in rows] == want.households_beyond_network.tolist()
    assert [int(r[t("cov.beyond_straight", "zh")]) for r in rows] == want.households_beyond_straight.tolist()
    # GeoJSON layers: the analysis' features, one for one
    gj = json.loads(screen_mod.geojson_bytes(layers["uncovered"]))
    assert gj["type"] == "FeatureCollection" and len(gj["features"]) == len(gaps)
    assert sorted(f["properties"]["kind"] for f in gj["features"]) == sorted(gaps.kind)
    road = sum(f["properties"]["length_m"] or 0 for f in gj["features"])
    assert road == pytest.approx(gaps.length_m.fillna(0).sum(), abs=0.5)
    gj = json.loads(screen_mod.geojson_bytes(layers["camera_views"]))
    assert sorted(f["properties"]["camera_id"] for f in gj["features"]) == sorted(views.camera_id)
    gj = json.loads(screen_mod.geojson_bytes(layers["homes_out_of_reach"]))
    assert sorted(f["properties"]["building_id"] for f in gj["features"]) == sorted(homes.loc[~homes["within"], "building_id"])
    assert {f["properties"]["reach"] for f in gj["features"]} <= {"overclaimed", "beyond"}
    gj = json.loads(screen_mod.geojson_bytes(layers["compliance"]))
    assert {f["properties"]["community_code"]: f["properties"]["failed"] for f in gj["features"]} == {
        r.community_code: len([x for x in r.rules_failed.split(",") if x]) for r in ct.itertuples()}
    # Excel: every table a sheet, rows as shown
    sheets = {"视频覆盖-社区": screen_mod.camera_table(cov, "community", "zh"), "可达-社区": table,
              "达标": screen_mod.compliance_display(ct, "zh")}
    book = load_workbook(io.BytesIO(screen_mod.excel_bytes(sheets)))
    assert book.sheetnames == list(sheets)
    for name, frame in sheets.items():
        assert book[name].max_row == len(frame) + 1
    assert book["达标"].max_row == 9


def test_dynamic_labels_exist() -> None:
    """Labels looked up by code (not caught by the literal-key test in test_ui_apptest.py)."""
    from analysis.camera_views import DORI_PPM
    from ui.i18n import T

    keys = {f"cov.detail.{d}" for d in DORI_PPM} | {f"cov.analysis.{a}" for a in ("cameras", "services", "compliance")}
    keys |= {f"cov.why.{w}" for w in ("missing", "gone", "own_inputs_changed", "cameras_changed", "homes_changed",
                                       "facilities_changed", "inputs_changed_everywhere", "facilities_or_households_changed")}
    keys |= {f"cov.scope.{s}" for s in ("grid", "community", "subdistrict")} | {f"cov.mode.{m}" for m in ("full", "incremental", "none")}
    keys |= {f"cov.theme.{k}" for k in ("cameras", "services", "compliance")}
    keys |= {f"cov.layer.{k}" for k in ("uncovered", "camera_views", "homes_out_of_reach", "compliance")}
    keys |= {f"cov.rule.{r}" for r in compliance.rules()["rule"]} | {f"cov.circle.{c}" for c in services.life_circles()}
    keys |= {f"cov.circle_{c}_{h}" for c in services.life_circles() for h in ("network", "straight")}
    keys |= {f"layer.{n}" for n in ("camera_views", "uncovered_roads", "uncovered_areas", "homes_reach", "compliance")}
    keys |= {f"legend.{n}" for n in ("view_counted", "view_not_counted", "reach_within", "reach_overclaimed", "reach_beyond",
                                     "comp_pass", "comp_fail_one", "comp_fail_more")}
    assert not sorted(keys - set(T))


def test_leader_map_narrows_to_one_community(fresh: None) -> None:
    """The leader's coverage map can show one community: exactly that community's gaps,
    views and homes, framed on it (a city's whole set is heavy to draw)."""
    from ui import coverage_data as cd
    from ui.screens import coverage as screen

    detail = get_settings().camera_detail_level
    with owner_engine().connect() as c:
        sub, community = c.execute(text("SELECT left(code, 9), code FROM communities ORDER BY code LIMIT 1")).one()
        expected_gaps = cameras.uncovered(c, community.strip(), detail)
        expected_homes = services.home_layer(c, CATEGORY, community.strip())
    with use_scope(LEADER):
        version = cd.versions(detail)
        whole = {g.name: g.frame for g in screen._leader_map(sub, detail, version, CATEGORY, "cameras").small}
        one = screen._leader_map(sub, detail, version, CATEGORY, "cameras", community.strip())
        homes = {g.name: g.frame for g in screen._leader_map(sub, detail, version, CATEGORY, "services", community.strip()).small}
    layers = {g.name: g.frame for g in one.small}
    roads = expected_gaps[expected_gaps["kind"] == "road"]
    assert 0 < len(layers["uncovered_roads"]) == len(roads) < len(whole["uncovered_roads"])
    assert 0 < len(layers["camera_views"]) < len(whole["camera_views"])
    assert len(homes["homes_reach"]) == len(expected_homes)
    b = one.bounds  # framed on the community, inside the sub-district's frame
    with owner_engine().connect() as c:
        box = c.execute(text("SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) FROM communities WHERE code = :c"),
                        {"c": community}).one()
    assert b == pytest.approx(tuple(box), abs=1e-3)
