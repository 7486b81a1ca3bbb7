"""The planner's siting screen (ui/screens/planner.py): AppTest drives the page script in
Chinese and English (runs on the demo, the saved scenario read back from the database,
comparison, downloads, a bad candidate file), and one journey in headless Chromium sees
the new sites and their catchments drawn, with every non-local request blocked.

Every expected figure is read from ``analysis.siting_scenarios`` (the same stored runs the
CLI's ``wangge scenario`` reads), never written into the test."""
from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

from analysis import siting_scenarios as sc
from gis.db import owner_engine
from tests.test_ui_browser import SHOTS, Session, _text, browser, server  # noqa: F401  (browser fixtures)

CATEGORY = "community_service_station"


# --- how a test opens the screen --------------------------------------------------------------

def _page() -> None:
    """The planner's screen as the app runs it for a signed-in planner (with a planner's scope)."""
    from gis.scope import Scope, set_scope

    set_scope(Scope(user="pytest_planner", role="planner"))
    from ui.screens import planner

    planner.render()


def _open(lang: str = "zh"):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_page, default_timeout=180)
    at.query_params["lang"] = lang
    at.run()
    assert not at.exception, at.exception
    return at


def _saved_ids() -> set[int]:
    with owner_engine().connect() as c:
        return set(c.execute(text("SELECT id FROM siting_scenarios")).scalars())


def _cleanup(ids) -> None:
    with owner_engine().begin() as c:
        for sid in ids:
            sc.delete(c, sid)


def _run(at, model: str, p: int | None = None, spacing: int = 100, radius: int | None = None, name: str | None = None):
    at.radio(key="plan_model").set_value(model).run()
    if p is not None:
        at.number_input(key="plan_p").set_value(p)
    if radius is not None:
        at.number_input(key="plan_radius").set_value(radius)
    if name:
        at.text_input(key="plan_name").set_value(name)
    at.radio(key="plan_cands").set_value("roads").run()
    at.number_input(key="plan_spacing").set_value(spacing)
    at.button(key="plan_run").click().run()
    assert not at.exception, at.exception
    return int(at.session_state["plan_show"])


def _frame_with(at, column: str) -> pd.DataFrame:
    for d in at.dataframe:
        if column in d.value.columns:
            return d.value
    raise AssertionError(f"no table with a column {column!r}: {[list(d.value.columns) for d in at.dataframe]}")


class Downloads:
    """Files handed to st.download_button, by file name (AppTest keeps them in a mock store)."""

    def __init__(self, monkeypatch):
        from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

        self.files: dict[str, bytes] = {}
        original = MemoryMediaFileStorage.load_and_get_id

        def keep(storage, path_or_data, mimetype, kind, filename=None):
            if filename and isinstance(path_or_data, bytes):
                self.files[filename] = path_or_data
            return original(storage, path_or_data, mimetype, kind, filename)

        monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", keep)


# --- AppTest ----------------------------------------------------------------------------------

def test_planner_runs_compares_and_exports_in_chinese(demo, monkeypatch):
    downloads = Downloads(monkeypatch)
    before = _saved_ids()
    ids: list[int] = []
    try:
        at = _open("zh")
        assert any("规划总览" in t.value for t in at.title)
        assert at.selectbox(key="plan_category").value == CATEGORY
        assert at.number_input(key="plan_radius").value == 300  # the category's standard radius
        ids.append(_run(at, "mclp", p=2, name="界面测试 mclp"))
        assert ids[0] not in before
        with owner_engine().connect() as c:
            row = sc.scenario(c, ids[0])
            sites = sc.sites(c, ids[0])
        assert (row["model"], row["p"], row["radius_m"], row["candidates"]) == ("mclp", 2, 300, "roads:100")
        # Status as HiGHS gave it; the figures and the sites table are the stored scenario's.
        assert row["status"] == "optimal" and any("最优" in s.value for s in at.success)
        metrics = {m.label: m.value for m in at.metric}
        assert metrics["新增站点"] == str(row["new_sites"]) == "2"
        assert metrics["目标值（半径内户数）"] == f"{row['objective']:,.0f}"
        assert metrics["半径内户数（方案）"] == f"{row['covered_weight']:,.0f}"
        assert any(m.label == "半径内户数（方案）" and m.proto.delta == f"/ {row['total_weight']:,.0f}" for m in at.metric)
        assert metrics["方案覆盖率"] == f"{row['covered_weight'] / row['total_weight']:.1%}"
        shown = _frame_with(at, "候选点")
        new = sites[~sites["existing"]].reset_index(drop=True)
        assert shown["候选点"].tolist() == new["site_key"].tolist()
        assert shown["服务户数"].tolist() == new["assigned_weight"].round(1).tolist()
        assert shown["服务楼栋"].tolist() == new["demand_points"].tolist()
        # A second run, then both side by side.
        at.radio(key="plan_model").set_value("mclp").run()
        ids.append(_run(at, "mclp", p=3, radius=400, spacing=150))
        assert at.number_input(key="plan_radius").value == 400
        at.multiselect(key="plan_compare").set_value(ids).run()
        assert not at.exception, at.exception
        with owner_engine().connect() as c:
            expected = sc.compare(c, ids, "zh")
            worst = sc.worst_grids(c, ids)
            all_sites = pd.concat([pd.DataFrame(sc.sites(c, i).drop(columns="geom")) for i in ids], ignore_index=True)
        table = _frame_with(at, f"#{ids[0]}")
        assert list(table.columns) == [f"#{i}" for i in ids]
        assert table.loc["新增站点 new sites"].tolist() == [str(v) for v in expected.loc["新增站点 new sites"]]
        assert table.loc["覆盖率 share covered"].tolist() == [str(v) for v in expected.loc["覆盖率 share covered"]]
        assert len(worst) > 0 and len(_frame_with(at, "半径内户数")) == len(worst)
        # Downloads: the files behind the buttons, against the analysis.
        stem = "siting_" + "_".join(map(str, ids))
        csv = pd.read_csv(io.BytesIO(downloads.files[f"{stem}.csv"]), index_col=0, encoding="utf-8-sig")
        assert list(csv.columns) == [f"#{i}" for i in ids]
        assert csv.loc["新增站点 new sites"].astype(int).tolist() == expected.loc["新增站点 new sites"].astype(int).tolist()
        assert csv.loc["覆盖户数 households covered"].astype(float).tolist() == pytest.approx(
            expected.loc["覆盖户数 households covered"].astype(float).tolist())
        xl = pd.read_excel(io.BytesIO(downloads.files[f"{stem}.xlsx"]), sheet_name=None)
        assert list(xl) == ["对比 comparison", "站点 sites", "最差网格 worst grids"]
        assert len(xl["站点 sites"]) == len(all_sites)
        assert sorted(xl["站点 sites"]["site_key"].astype(str)) == sorted(all_sites["site_key"].astype(str))
        assert len(xl["最差网格 worst grids"]) == len(worst)
        gj = json.loads(downloads.files[f"{stem}.geojson"].decode("utf-8"))
        assert len(gj["features"]) == len(all_sites)
        assert {f["properties"]["scenario_id"] for f in gj["features"]} == set(ids)
        assert sum(not f["properties"]["existing"] for f in gj["features"]) == 2 + 3
        assert {b.label for b in at.download_button} >= {"地图 PNG", "地图 PDF"}
        # Delete the shown scenario from the screen.
        at.selectbox(key="plan_show").set_value(ids[1]).run()
        at.button(key="plan_delete_button").click().run()
        assert not at.exception, at.exception
        assert ids[1] not in _saved_ids() and ids[0] in _saved_ids()
        assert any(f"#{ids[1]}" in s.value for s in at.success)
    finally:
        _cleanup(ids)


def test_planner_in_english_with_an_uploaded_candidate_file(demo):
    ids: list[int] = []
    try:
        at = _open("en")
        assert any("Planning" in t.value for t in at.title)
        with owner_engine().connect() as c:
            lon, lat = c.execute(text("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Collect(geom)) c FROM communities "
                                      "WHERE code = '420106010003') q")).one()
        gj = {"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"id": f"P{i}", "name": f"空置用房{i}"},
             "geometry": {"type": "Point", "coordinates": [lon + 0.0015 * i, lat]}} for i in range(3)]}
        at.radio(key="plan_model").set_value("mclp").run()
        at.number_input(key="plan_p").set_value(1)
        at.radio(key="plan_cands").set_value("file").run()
        at.file_uploader(key="plan_file").upload("../候选 点.geojson", json.dumps(gj).encode(), "application/geo+json")
        at.button(key="plan_run").click().run()
        assert not at.exception, at.exception
        ids.append(int(at.session_state["plan_show"]))
        with owner_engine().connect() as c:
            row = sc.scenario(c, ids[0])
            sites = sc.sites(c, ids[0])
        assert row["candidates"] == "file:候选_点.geojson"  # stored under the safe name
        assert any(s.value.startswith("Status: optimal") for s in at.success)
        metrics = {m.label: m.value for m in at.metric}
        assert metrics["New sites"] == "1" and metrics["Objective (households within the radius)"] == f"{row['objective']:,.0f}"
        shown = _frame_with(at, "Candidate")
        assert shown["Candidate"].tolist() == sites.loc[~sites["existing"], "site_key"].tolist()
        assert set(shown["Candidate"]) <= {"P0", "P1", "P2"}
        assert {b.label for b in at.download_button} >= {"Comparison CSV", "Sites GeoJSON", "Map PDF"}
    finally:
        _cleanup(ids)


def test_bad_candidate_file_names_the_row(demo):
    before = _saved_ids()
    at = _open("zh")
    at.radio(key="plan_cands").set_value("file").run()
    csv = "编号,名称,经度,纬度\nC1,甲,114.3150,30.5450\nC2,乙,东经114度,30.5460\nC3,丙,114.3170,30.5470\n"
    at.file_uploader(key="plan_file").upload("cands.csv", csv.encode("utf-8"), "text/csv")
    at.text_input(key="plan_crs").set_value("EPSG:4326")
    at.button(key="plan_run").click().run()
    assert not at.exception, at.exception
    assert any("候选点文件有误，未运行（1 个问题）" in e.value for e in at.error)
    report = at.table[0].value
    assert report.index.tolist() == ["2"]  # the data row, as the admin's import report numbers rows
    assert "东经114度" in " ".join(report.astype(str).to_numpy().ravel())
    assert _saved_ids() == before  # nothing was run or saved


def test_status_is_never_optimal_on_a_time_out():
    from ui.screens.planner import status_message

    row = {"status": "time_limit", "gap": 0.0123, "time_limit_s": 5.0}
    for lang in ("zh", "en"):
        kind, msg = status_message(row, lang)
        assert kind == "warning" and "1.2300%" in msg and "5" in msg
    assert "非最优" in status_message(row, "zh")[1] and "not proved optimal" in status_message(row, "en")[1]
    assert status_message({**row, "status": "optimal", "gap": 0.0}, "en")[0] == "success"
    assert status_message({**row, "status": "infeasible"}, "zh")[0] == "error"


# --- headless Chromium ------------------------------------------------------------------------

# Features of a small (GeoJSON) layer that Leaflet has put on the map: our features carry
# their layer name in their properties (ui/map.py), circle markers and polygons alike.
SMALL_DRAWN = """(name) => {
  var n = 0;
  if (!window.map) return 0;
  window.map.eachLayer(function (l) {
    if (l.feature && l.feature.properties && l.feature.properties.layer === name && l._path) n += 1;
  });
  return n;
}"""


@pytest.mark.browser
def test_planner_runs_a_scenario_and_sees_sites_and_catchments(demo, accounts: dict, server: str, browser) -> None:  # noqa: F811
    before = _saved_ids()
    s = Session(browser, height=3200)
    try:
        s.sign_in(server, accounts["planner"])  # lands on the planner's first screen, this one
        s.page.get_by_text("设施选址").first.wait_for(timeout=60000)
        s.wait_idle()
        s.page.get_by_text("最大覆盖 MCLP").first.click()
        s.wait_idle()
        s.page.get_by_role("button", name="运行选址").click()
        s.page.get_by_text("求解状态").first.wait_for(timeout=120000)
        s.wait_idle()
        new_ids = sorted(_saved_ids() - before)
        assert len(new_ids) == 1
        with owner_engine().connect() as c:
            row = sc.scenario(c, new_ids[0])
            hulls = sc.catchments(c, new_ids[0])
        n_new = int(row["new_sites"])
        assert n_new >= 1
        body = _text(s.page)
        assert f"选址结果 · 方案 #{new_ids[0]}" in body
        frame = s.map_frame()
        deadline = time.time() + 30
        drawn = {}
        while time.time() < deadline:
            drawn = {k: frame.evaluate(SMALL_DRAWN, k) for k in ("sites_new", "catchments", "homes")}
            if drawn["sites_new"] >= n_new and drawn["catchments"] >= n_new:
                break
            time.sleep(0.3)
        assert drawn["sites_new"] == n_new, drawn
        assert drawn["catchments"] == int((~hulls["existing"]).sum()) == n_new, drawn
        assert drawn["homes"] > 100, drawn
        legend = frame.locator(".wg-legend").text_content()
        assert "新增选址" in legend and "新站服务范围" in legend
        # each new site has its own colour, its catchment the same one
        fills = frame.evaluate("""() => { var out = {}; window.map.eachLayer(function (l) {
            if (l.feature && l._path && (l.feature.properties.layer === 'sites_new' || l.feature.properties.layer === 'catchments')) {
              var k = l.feature.properties.id; out[k] = out[k] || []; out[k].push(l.options.fillColor); } }); return out; }""")
        assert len({v[0] for v in fills.values()}) == min(n_new, 12) and all(len(set(v)) == 1 for v in fills.values())
        s.page.wait_for_timeout(1000)
        s.shot("40_planner_siting")
        with s.page.expect_download(timeout=120000) as dl:
            s.page.get_by_role("button", name="地图 PNG").click()
        png = Path(dl.value.path()).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        (SHOTS / "41_planner_siting_report.png").write_bytes(png)
        s.assert_offline()
    finally:
        s.close()
        _cleanup(_saved_ids() - before)


def test_unreachable_households_are_reported(demo):
    """A 50 m radius with two chosen buildings as candidates: most homes have no site within
    reach; the screen lists exactly the buildings the stored scenario marks unreachable."""
    ids: list[int] = []
    try:
        with owner_engine().connect() as c:
            chosen = c.execute(text("SELECT source_id FROM buildings WHERE community_code = '420106010003' AND households > 0 "
                                    "ORDER BY id LIMIT 2")).scalars().all()
        at = _open("zh")
        at.number_input(key="plan_radius").set_value(50)
        at.radio(key="plan_cands").set_value("buildings").run()
        at.text_input(key="plan_building_ids").set_value("，".join(chosen))
        at.button(key="plan_run").click().run()
        assert not at.exception, at.exception
        ids.append(int(at.session_state["plan_show"]))
        with owner_engine().connect() as c:
            row = sc.scenario(c, ids[0])
            demand = sc.demand(c, ids[0])
        unreachable = demand[demand["reason"] == "unreachable"]
        assert row["candidates"] == "buildings:" + ",".join(chosen) and row["radius_m"] == 50
        assert len(unreachable) > 0 and row["unreachable_weight"] == pytest.approx(unreachable["weight"].sum())
        note = " ".join(w.value for w in at.warning)
        assert f"{len(unreachable)} 栋楼（{unreachable['weight'].sum():,.0f} 户）" in note and "50 米" in note
        listed = _frame_with(at, "楼栋编号")
        assert sorted(listed["楼栋编号"]) == sorted(unreachable["source_id"])
    finally:
        _cleanup(ids)
