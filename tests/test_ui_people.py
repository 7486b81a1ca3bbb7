"""The people screens (issue 17): the worker records a visit in headless Chromium and sees their
register masked; the secretary's register is masked; the leader sees counts only; the
administrator answers "who looked at this person". Every screen read is in the access log."""
from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import text

from gis.scope import SYSTEM, use_scope
from layers import people
from tests.accounts import open_screen

MASKED = re.compile(r"\d{6}\*{8}[\dX]{4}")
FULL_ID = re.compile(r"(?<![\d*])\d{17}[\dX](?![\d*])")


def _log(username: str, action: str | None = None) -> int:
    with use_scope(SYSTEM), people.owner_transaction() as c:
        return int(c.execute(text("SELECT count(*) FROM person_access_log WHERE username = :u AND (CAST(:a AS text) IS NULL OR action = :a)"),
                             {"u": username, "a": action}).scalar_one())


def _body(at) -> str:
    parts = [m.value for m in at.markdown] + [m.value for m in at.caption] + [str(m.value) for m in at.info]
    parts += [m.label + " " + str(m.value) for m in at.metric] + [m.value for m in at.title] + [m.value for m in at.subheader]
    for df in at.dataframe:
        parts.append(df.value.to_string())
    return "\n".join(str(p) for p in parts)


def test_secretary_register_is_masked_and_every_row_logged(accounts):
    sec = accounts["secretary"]
    before = _log(sec.username, "list")
    at = open_screen(sec, "people")
    assert not at.exception, at.exception
    body = _body(at)
    assert "本社区人员登记（脱敏）" in body and "各网格逾期走访" in body and "巡查覆盖率" in body
    assert MASKED.search(body) and not FULL_ID.search(body)
    assert "None" not in body and "nan" not in body.lower().replace("nanjing", "")
    assert _log(sec.username, "list") - before > 0


def test_leader_sees_counts_only(accounts):
    lead = accounts["leader"]
    before = _log(lead.username)
    at = open_screen(lead, "people")
    assert not at.exception, at.exception
    body = _body(at)
    assert "这里只显示人数和比例" in body and "逾期率" in body
    assert not MASKED.search(body) and "某" not in body  # no ID, no name
    assert _log(lead.username) == before  # counts are not reads of a person


def test_leader_map_of_a_city_is_per_community(accounts, monkeypatch):
    """Above OVERDUE_GRIDS_LIMIT grids (a city: 50,000) the leader's overdue map shows communities, not
    every grid's outline; the tables and figures are the same, and nobody's record is read."""
    from ui.screens import people as screen

    lead = accounts["leader"]
    before = _log(lead.username)
    monkeypatch.setattr(screen, "OVERDUE_GRIDS_LIMIT", 10)
    at = open_screen(lead, "people")
    assert not at.exception, at.exception
    body = _body(at)
    assert "地图按社区显示逾期走访率" in body and "地图按网格显示逾期走访率" not in body
    assert "逾期率" in body and not MASKED.search(body) and "某" not in body
    assert _log(lead.username) == before


def test_admin_answers_who_looked_at_this_person(accounts):
    sec = accounts["secretary"]
    open_screen(sec, "people")  # the secretary lists the register
    with use_scope(SYSTEM), people.owner_transaction() as c:
        pid = c.execute(text("SELECT person_id FROM person_access_log WHERE username = :u ORDER BY id DESC LIMIT 1"),
                        {"u": sec.username}).scalar_one()
    at = open_screen(accounts["admin"], "access-log")
    at.number_input(key="access_person").set_value(int(pid)).run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert sec.username in set(table["用户"]) and set(table["人员编号"]) == {pid}
    assert "列表查看" in set(table["操作"])


def test_worker_screen_without_browser(accounts):
    w = accounts["worker"]
    at = open_screen(w, "visits")
    assert not at.exception, at.exception
    body = _body(at)
    assert "今日走访（按步行路线排序）" in body and "我的登记人员" in body
    assert MASKED.search(body) and not FULL_ID.search(body)


@pytest.mark.browser
def test_worker_records_a_visit_in_the_browser(server, browser, accounts):
    from tests.test_ui_browser import Session, _text

    w = accounts["worker"]
    s = Session(browser, height=3200)
    try:
        s.sign_in(server, w)
        s.open(f"{server}/visits", "今日走访（按步行路线排序）")
        # st.dataframe draws on a canvas; its cells are mirrored in an accessible (hidden) table
        s.page.locator('[data-testid="stDataFrame"] [role="gridcell"]', has_text=MASKED).first.wait_for(state="attached", timeout=30000)
        cells = "\n".join(s.page.locator('[data-testid="stDataFrame"] [role="gridcell"]').all_inner_texts())
        body = _text(s.page) + "\n" + cells
        assert MASKED.search(cells) and not FULL_ID.search(body), "register not masked"
        assert "步行路程" in body and "某" in cells
        frame = s.map_frame()
        assert frame is not None and frame.locator(".leaflet-container").count() == 1
        # their overdue people's buildings on the route map, each with how many and how late (no names)
        route_map = _frame_with(s.page, "path.wg-overdue-buildings")
        assert route_map.locator("path.wg-overdue-rate").count() == 1  # their grid, in its overdue band
        route_map.locator("path.wg-overdue-buildings").first.dispatch_event("click")
        tip = route_map.locator(".leaflet-popup-content", has_text="逾期未走访")
        tip.wait_for(timeout=15000)
        assert re.search(r"逾期未走访：\d+ 人", tip.inner_text()) and "最久逾期" in tip.inner_text() and "某" not in tip.inner_text()
        s.shot("people_01_worker_route")
        before = _log(w.username, "visit")
        form = s.page.locator('[data-testid="stForm"]')
        form.get_by_text("见到本人").click()
        form.locator("input[aria-label='情况记录']").fill("浏览器测试：上门见到本人")
        form.get_by_role("button", name="保存走访").click()
        s.page.get_by_text("走访已保存。").wait_for(timeout=60000)
        s.wait_idle()
        s.shot("people_02_worker_visit_saved")
        assert _log(w.username, "visit") == before + 1
        with use_scope(SYSTEM), people.owner_transaction() as c:
            row = c.execute(text("SELECT visitor, outcome, note FROM visits ORDER BY id DESC LIMIT 1")).one()
        assert tuple(row) == (w.username, "met", "浏览器测试：上门见到本人")
        s.assert_offline()
    finally:
        s.close()


@pytest.mark.browser
def test_secretary_register_masked_in_the_browser(server, browser, accounts):
    from tests.test_ui_browser import Session, _text

    s = Session(browser, height=3200)
    try:
        s.sign_in(server, accounts["secretary"])
        s.open(f"{server}/people", "本社区人员登记（脱敏）")
        s.page.locator('[data-testid="stDataFrame"] [role="gridcell"]', has_text=MASKED).first.wait_for(state="attached", timeout=30000)
        cells = "\n".join(s.page.locator('[data-testid="stDataFrame"] [role="gridcell"]').all_inner_texts())
        body = _text(s.page)
        s.shot("people_03_secretary_register")
        assert "各网格逾期走访" in body and "巡查覆盖率" in body
        assert MASKED.search(cells) and not FULL_ID.search(body + cells)
        s.assert_offline()
    finally:
        s.close()


def _frame_with(page, selector: str, timeout: float = 60):
    """The map frame holding ``selector`` (a page has several maps; reruns may swap frames)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for fr in page.frames:
            try:
                if fr.locator(selector).count():
                    return fr
            except Exception:  # noqa: BLE001 - a frame detached meanwhile
                pass
        time.sleep(0.5)
    raise AssertionError(f"no map holding {selector}")


def _selected_person(page, username: str, grids: tuple[int, ...]) -> dict:
    """The person the visit form has selected (by the masked ID its label shows), with their building's point."""
    box = page.locator(".st-key-visit_person")
    box.wait_for(timeout=60000)
    # the select box is drawn before its chosen option's text while the page reruns: read it until
    # the label carries a masked ID (a missing one after a minute is a failure)
    deadline, label, found = time.time() + 60, "", None
    while found is None and time.time() < deadline:
        try:
            label = box.inner_text() + " " + " ".join(i.input_value() for i in box.locator("input").all()) + " " + " ".join(
                str(box.locator("[title]").evaluate_all("els => els.map(e => e.title)")))
        except Exception:  # noqa: BLE001 - the element was replaced by a rerun between two reads
            label = ""
        found = MASKED.search(label)
        if found is None:
            time.sleep(0.5)
    assert found, f"no masked ID in the selected person's label: {label!r}"
    masked = found.group(0)
    with use_scope(SYSTEM), people.owner_transaction() as c:
        row = c.execute(text("""SELECT p.id, ST_X(ST_PointOnSurface(b.geom)) AS x, ST_Y(ST_PointOnSurface(b.geom)) AS y
                                  FROM persons p JOIN buildings b ON b.id = p.building_id
                                 WHERE p.id_masked = :m AND p.grid_id = ANY(:g) AND p.anonymised_at IS NULL
                                   AND position(p.name IN :label) > 0 ORDER BY p.id LIMIT 1"""),
                        {"m": masked, "g": list(grids), "label": label}).one()
    return {"id": int(row.id), "x": float(row.x), "y": float(row.y)}


def _last_visit(pid: int):
    with use_scope(SYSTEM), people.owner_transaction() as c:
        return c.execute(text("SELECT far, distance_m, ST_X(geom) AS x, ST_Y(geom) AS y FROM visits WHERE person_id = :p ORDER BY id DESC LIMIT 1"),
                         {"p": pid}).one()


@pytest.mark.browser
def test_worker_visit_takes_the_devices_location_near_and_far(server, browser, accounts):
    """The visit form's ◎ takes the phone's position (geolocation overridden in Chromium): a visit
    at the person's building is not flagged, one a kilometre away is."""
    from gis.settings import get_settings
    from tests.test_ui_browser import Session

    w = accounts["worker"]
    s = Session(browser, height=4200)
    try:
        s.context.grant_permissions(["geolocation"], origin=server)
        s.sign_in(server, w)
        far_m = get_settings().visit_far_m
        shown = ""
        for where, dy, flagged in (("near", 0.00005, False), ("far", 0.01, True)):  # ~6 m, ~1.1 km north
            # opened afresh: a person visited leaves the due list, and the form then offers the next one
            s.open(f"{server}/visits", "记录走访")
            person = _selected_person(s.page, w.username, w.grids)
            s.context.set_geolocation({"latitude": person["y"] + dy, "longitude": person["x"], "accuracy": 8})
            s.page.get_by_text("还没有本机位置").first.wait_for(timeout=60000)
            frame = _frame_with(s.page, ".wg-locate")
            frame.locator(".wg-locate").click()
            try:
                got = s.page.wait_for_function(
                    "(old) => { const m = document.body.innerText.match(/已取得本机位置（(\\d\\d:\\d\\d:\\d\\d)/);"
                    " return m && m[1] !== old ? m[1] : null; }", arg=shown or "", timeout=60000)
            except Exception:
                s.shot(f"people_04_visit_not_located_{where}")
                raise
            shown = got.json_value()
            s.wait_idle()
            s.shot(f"people_04_visit_located_{where}")
            form = s.page.locator('[data-testid="stForm"]')
            form.get_by_text("见到本人").click()
            form.locator("input[aria-label='情况记录']").fill(f"浏览器测试：本机定位（{where}）")
            form.get_by_role("button", name="保存走访").click()
            s.page.get_by_text("已标记为异常" if flagged else "走访已保存，记录位置离对象楼栋").first.wait_for(timeout=60000)
            s.wait_idle()
            s.shot(f"people_05_visit_saved_{where}")
            v = _last_visit(person["id"])
            assert bool(v.far) is flagged, (where, v)
            assert (v.distance_m > far_m) if flagged else (v.distance_m < 30), (where, v.distance_m)
            assert abs(v.y - (person["y"] + dy)) < 1e-6 and abs(v.x - person["x"]) < 1e-6  # the device's place, not typed
        s.assert_offline()
    finally:
        s.close()


@pytest.mark.browser
def test_worker_records_a_patrol_with_the_phone(server, browser, accounts):
    """开始巡查 … 结束巡查 with the position moved during the walk (watchPosition): the fixes are
    stored as a track like an imported one (a cell-tower fix left out), coverage counts it, and
    the phone's copy of the fixes is cleared once stored."""
    from datetime import datetime

    from analysis.visits import today
    from gis.settings import get_settings
    from layers.people import BEIJING
    from tests.test_ui_browser import Session

    w = accounts["worker"]
    s = Session(browser, height=4200)
    track_id = None
    try:
        s.context.grant_permissions(["geolocation"], origin=server)
        s.sign_in(server, w)
        s.open(f"{server}/visits", "手机记录巡查")
        person = _selected_person(s.page, w.username, w.grids)
        walk = [(person["x"] + 0.0001 * k, person["y"] + 0.00003 * k, 6) for k in range(8)]
        walk.insert(4, (walk[3][0] + 0.005, walk[3][1], 800))  # a cell-tower fix, 500 m off: left out
        s.context.set_geolocation({"latitude": walk[0][1], "longitude": walk[0][0], "accuracy": walk[0][2]})
        frame = _frame_with(s.page, "button.wg-patrol")
        s.shot("people_06_patrol_ready")
        frame.locator("button.wg-patrol").click()
        status = frame.locator(".wg-device .wg-status")
        for k, (x, y, acc) in enumerate(walk):
            if k:
                s.page.wait_for_timeout(1100)  # a second between fixes
                s.context.set_geolocation({"latitude": y, "longitude": x, "accuracy": acc})
            frame.get_by_text(f"已记录 {k + 1} 个定位点").wait_for(timeout=30000)
        s.shot("people_07_patrol_recording")
        assert "巡查中" in status.inner_text()
        frame.locator("button.wg-patrol").click()  # 结束巡查
        s.page.get_by_text("巡查轨迹已保存").first.wait_for(timeout=60000)
        s.wait_idle()
        s.shot("people_08_patrol_saved")
        body = s.page.inner_text("body")
        assert "有 1 个定位点精度不够，未计入" in body
        with use_scope(SYSTEM), people.owner_transaction() as c:
            row = c.execute(text("""SELECT id, fixes, day, grid_ids, source_file, imported_by, ST_AsText(geom) AS wkt
                                      FROM patrol_tracks WHERE imported_by = :u ORDER BY id DESC LIMIT 1"""), {"u": w.username}).one()
            track_id = int(row.id)
            kept = [(x, y) for x, y, acc in walk if acc <= get_settings().patrol_fix_accuracy_m]
            assert row.fixes == len(kept) and row.source_file == "手机定位" and row.day == datetime.now(BEIJING).date()
            import shapely

            line = shapely.from_wkt(row.wkt)
            assert len(line.coords) == len(kept) and all(abs(a[0] - b[0]) < 1e-7 and abs(a[1] - b[1]) < 1e-7
                                                          for a, b in zip(line.coords, kept))
            grid = next(g for g in row.grid_ids if g in w.grids)
            # coverage as the function computes it (segments) against a count straight from the tracks
            got = c.execute(text("SELECT households_covered FROM patrol_coverage(:d, :d, :m) WHERE grid_id = :g"),
                            {"d": today(), "m": get_settings().patrol_distance_m, "g": grid}).scalar_one()
            want = c.execute(text("""SELECT coalesce(sum(b.households), 0) FROM buildings b WHERE b.grid_id = :g AND EXISTS (
                                       SELECT 1 FROM patrol_tracks t WHERE t.day = :d
                                          AND ST_DWithin(t.geom::geography, b.geom::geography, :m))"""),
                             {"d": today(), "m": get_settings().patrol_distance_m, "g": grid}).scalar_one()
            assert got == want > 0
        assert frame.page.evaluate(f"() => localStorage.getItem('wangge-patrol-{w.username}')") is None
        _frame_with(s.page, "button.wg-patrol").get_by_text("开始巡查").wait_for(timeout=30000)
        s.assert_offline()
    finally:
        if track_id is not None:
            with use_scope(SYSTEM), people.owner_transaction() as c:
                c.execute(text("DELETE FROM patrol_tracks WHERE id = :i"), {"i": track_id})
        s.close()


def test_building_detail_marks_estimated_households():
    """Issue 13's rule on the building detail popup: a household count estimated from floor area
    says 「估算」 (and so do the residents derived from it); a surveyed one stands alone."""
    from ui.common import detail_rows

    est = detail_rows("buildings", {"id": 1, "households": 40, "residents": 105, "households_source": "estimated"}, "zh")
    got = dict(zip(est[""], est[" "]))
    assert got["户数"] == "40（估算）" and got["人口"].endswith("（估算）")
    assert "估算" not in "".join(detail_rows("buildings", {"id": 1, "households": 40, "households_source": "surveyed"}, "zh")[" "])
    en = detail_rows("buildings", {"id": 1, "households": 40, "households_source": "estimated"}, "en")
    assert "40 (estimated)" in set(en[" "]) and "surveyed" not in "".join(en[" "]) and "estimated" not in set(en[""])


def _overdue_truth(community: str | None = None) -> dict[str, int]:
    """Overdue persons per grid code, counted straight from the tables (as the system)."""
    with use_scope(SYSTEM), people.owner_transaction() as c:
        return {r[0]: int(r[1]) for r in c.execute(text("""
            SELECT g.code, count(*) FROM persons p JOIN person_schedule s ON s.person_id = p.id JOIN grids g ON g.id = p.grid_id
             WHERE s.next_visit < (now() AT TIME ZONE 'Asia/Shanghai')::date
               AND (CAST(:c AS text) IS NULL OR g.community_code = CAST(:c AS text)) GROUP BY 1"""), {"c": community}).all()}


def _check_overdue_map(s, codes: list[str], truth: dict[str, int], shot: str) -> None:
    """The overdue map: one coloured path per grid, a legend in words, a click on the grid with the
    most overdue opens its figures (code, counts, rate) and no person."""
    frame = _frame_with(s.page, "path.wg-overdue-rate")
    paths = frame.locator("path.wg-overdue-rate")
    assert paths.count() == len(codes)
    frame.locator(".wg-legend summary").click()
    legend = frame.locator(".wg-legend").inner_text()
    assert "逾期走访率（按网格）" in legend and "没有逾期" in legend and "逾期率高于25%" in legend, legend
    code = max(truth, key=truth.get)
    # the features are drawn in the order of the grids' codes (analysis/visits.overdue_grids): the
    # busiest grid's path, clicked where it is (not at its box's centre, which may be a neighbour)
    paths.nth(codes.index(code)).dispatch_event("click")
    popup = frame.locator(".leaflet-popup-content", has_text=code)
    popup.wait_for(timeout=15000)
    text_ = popup.inner_text()
    assert f"逾期：{truth[code]}" in text_ and "逾期率：" in text_ and "登记人数：" in text_, text_
    assert not MASKED.search(text_) and "某" not in text_
    s.shot(shot)


@pytest.mark.browser
def test_overdue_visits_are_a_map_layer_per_grid(server, browser, accounts):
    """Secretary (their community's grids) and leader (every grid, counts only): the grids coloured
    by overdue rate, the legend in words, a grid's popup with its figures."""
    from tests.test_ui_browser import Session

    sec, lead = accounts["secretary"], accounts["leader"]
    with use_scope(SYSTEM), people.owner_transaction() as c:
        n_com = list(c.execute(text("SELECT code FROM grids WHERE valid_to IS NULL AND community_code = :c ORDER BY code"),
                               {"c": sec.communities[0]}).scalars())
        n_all = list(c.execute(text("SELECT code FROM grids WHERE valid_to IS NULL ORDER BY code")).scalars())
    for account, n, truth, shot, expect in ((sec, n_com, _overdue_truth(sec.communities[0]), "people_09_secretary_overdue_map", "各网格逾期走访"),
                                           (lead, n_all, _overdue_truth(), "people_10_leader_overdue_map", "各网格")):
        before = _log(account.username)
        s = Session(browser, height=2600)
        try:
            s.sign_in(server, account)
            s.open(f"{server}/people", expect)
            _check_overdue_map(s, n, truth, shot)
            s.assert_offline()
        finally:
            s.close()
        if account is lead:
            assert _log(account.username) == before  # the leader's map read nobody's record


from tests.test_ui_browser import browser, server  # noqa: E402,F401  (the shared browser fixtures)
