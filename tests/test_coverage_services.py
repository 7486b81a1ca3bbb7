"""Services coverage: walking distances on hand-built networks with known answers (a river
without a bridge, a bridge, one street), open-only facilities, radius settings and life
circles; the demo's planted gaps; an independent check against networkx; and freshness
(one edited facility re-walks only the homes within its reach)."""
from __future__ import annotations


import networkx as nx
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from analysis import network, services
from gis.settings import get_settings
from tests.coverage_world import building, clear_results, facility, road, world


def _river(conn, bridge_y: float | None = None, status: str = "open"):
    """West bank street x=0, east bank street x=102, no crossing (unless a bridge at y);
    a home 1 m west of the west street, a kindergarten 1 m east of... the east street's
    west side: 100 m straight line apart."""
    world(conn)
    road(conn, "WEST", [(0, -300), (0, 300)])
    road(conn, "EAST", [(102, -300), (102, 300)])
    if bridge_y is not None:
        road(conn, "BRIDGE", [(0, bridge_y), (102, bridge_y)])
    home = building(conn, "HOME", -3, -1, -1, 1, households=100)
    building(conn, "KG", 99, -1, 101, 1, use="public")
    fac = facility(conn, "F-KG", 100, 0, "kindergarten", status=status)
    return home, fac


def _row(conn, home, category="kindergarten"):
    return conn.execute(text("SELECT * FROM service_distances WHERE building_id = :b AND category = :c"),
                        {"b": home, "c": category}).mappings().one()


def _sub(conn, category="kindergarten"):
    cats = services.category_coverage(conn)
    return cats[(cats.scope == "subdistrict") & (cats.category == category)].iloc[0]


def test_a_river_without_a_bridge_keeps_a_facility_100_m_away_out_of_reach(empty):
    home, fac = _river(empty)
    services.refresh(empty)
    row = _row(empty, home)
    assert row["network_m"] is None and row["facility_id"] is None  # no walk reaches it
    assert row["straight_m"] == pytest.approx(100.0, abs=0.01) and row["straight_facility_id"] == fac
    sub = _sub(empty)
    assert sub.radius_m == 300 and sub.households == 100
    assert sub.households_beyond_network == 100 and sub.households_beyond_straight == 0  # the buffer claims it covered
    assert sub.overclaim_households == 100 and sub.share_within_straight == 1.0 and sub.share_within_network == 0.0


@pytest.mark.parametrize("bridge_y, within", [(150.0, False), (20.0, True)])
def test_a_bridge_makes_it_reachable_the_long_way_round(empty, bridge_y, within):
    home, _ = _river(empty, bridge_y)
    services.refresh(empty)
    walk = 1 + bridge_y + 102 + bridge_y + 1  # snap, up the west street, over, down, snap
    assert _row(empty, home)["network_m"] == pytest.approx(walk, abs=2.0)
    assert bool(_sub(empty).households_beyond_network == 0) == within


def test_one_street_same_edge_distance_and_snap(empty):
    world(empty)
    road(empty, "MAIN", [(0, -200), (0, 200)])
    home = building(empty, "HOME", -6, -0.5, -4, 0.5, households=10)  # 4 m off the street
    building(empty, "HS", 3, 49.5, 5, 50.5, use="public")  # 3 m off, 50 m along
    facility(empty, "F-HS", 4, 50, "health_station")
    services.refresh(empty)
    assert _row(empty, home, "health_station")["network_m"] == pytest.approx(4 + 50 + 3, abs=1.0)
    snaps = services.snaps(empty)
    assert snaps["home_snap_median_m"] == pytest.approx(4.0, abs=0.01)
    assert snaps["facilities"][0]["snap_m"] == pytest.approx(3.0, abs=0.01)


def test_only_open_facilities_count(empty):
    home, _ = _river(empty, 20.0, status="planned")
    services.refresh(empty)
    row = _row(empty, home)
    assert row["network_m"] is None and row["straight_m"] is None


def test_radius_setting_and_life_circles(empty, monkeypatch):
    home, _ = _river(empty, 150.0)  # kindergarten 404 m away on foot
    for i, cat in enumerate(("community_service_station", "health_station", "elderly_day_care")):
        building(empty, f"B{i}", -3, 10 + 10 * i, -1, 12 + 10 * i, use="public")
        facility(empty, f"F{i}", -2, 11 + 10 * i, cat)
    services.refresh(empty)
    circles = services.life_circle_coverage(empty).set_index(["scope", "circle"])
    assert circles.loc[("subdistrict", "5min"), "share_network"] == 0.0  # the kindergarten is across the river
    assert circles.loc[("subdistrict", "5min"), "share_straight"] == 1.0
    assert "kindergarten" in circles.loc[("subdistrict", "5min"), "required"]
    monkeypatch.setenv("WANGGE_SERVICE_RADIUS_M", '{"kindergarten": 500}')
    monkeypatch.setenv("WANGGE_LIFE_CIRCLE_5_M", "500")
    get_settings.cache_clear()
    try:
        assert services.radii()["kindergarten"] == 500
        ran = services.refresh(empty)
        assert ran["mode"] == "full"  # the settings changed: everything is recomputed
        assert _sub(empty).households_beyond_network == 0
        circles = services.life_circle_coverage(empty).set_index(["scope", "circle"])
        assert circles.loc[("subdistrict", "5min"), "share_network"] == 1.0
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_demo_services_find_the_planted_gaps(demo, conn):
    clear_results(conn)
    ran = services.refresh(conn)
    assert ran["homes"] == 1740
    cats = services.category_coverage(conn).set_index(["scope", "code", "category"])
    # no service station in 大成路 (003) and 复兴 (007): most of their households are out of reach
    for code in ("420106010003", "420106010007"):
        r = cats.loc[("community", code, "community_service_station")]
        assert r.households_beyond_network >= 0.85 * r.households
    r = cats.loc[("community", "420106010004", "health_station")]  # 彭刘杨 (004): no health station
    assert r.households_beyond_network >= 0.8 * r.households
    straight = cats.xs("community", level="scope").xs("community_service_station", level="category")["households_beyond_straight"]
    assert straight.idxmax() == "420106010003"  # even by straight line 003 is the worst served
    sub = cats.xs("subdistrict", level="scope")
    assert (sub.households_beyond_network >= sub.households_beyond_straight).all()
    assert (sub.overclaim_households > 0).all()  # buffers over-claim every category
    circles = services.life_circle_coverage(conn)
    assert (circles.share_network <= circles.share_straight).all()


def test_demo_walks_match_an_independent_networkx_computation(demo, conn):
    clear_results(conn)
    services.refresh(conn)
    srid = 4547
    g = network.load(conn, srid)
    homes = services._homes(conn, srid)
    facs = services._facilities(conn, srid)
    f = facs[(facs.category == "kindergarten") & (facs.status == "open")]
    pick = np.random.default_rng(7).choice(len(homes), 40, replace=False)
    hs, fs = network.snap(g, homes["geom"].to_numpy()[pick]), network.snap(g, f["reach"].to_numpy())
    on_edge: dict[int, list] = {}
    for kind, snap in (("h", hs), ("f", fs)):
        for i, (e, p, o) in enumerate(zip(snap.edge.tolist(), snap.pos.tolist(), snap.snap_m.tolist())):
            on_edge.setdefault(e, []).append((p, (kind, i), o))
    G = nx.MultiGraph()  # every edge cut at the snap points, each point hung off it by its snap distance
    for k, (a, b, length) in enumerate(zip(g.u.tolist(), g.v.tolist(), g.length.tolist())):
        seq = [(0.0, a), *sorted(((p, ("x", k, n)) for p, n, _ in on_edge.get(k, [])), key=lambda t: t[0]), (length, b)]
        for (p1, n1), (p2, n2) in zip(seq[:-1], seq[1:]):
            G.add_edge(n1, n2, weight=p2 - p1)
        for p, n, o in on_edge.get(k, []):
            G.add_edge(("x", k, n), n, weight=o)
    ref = nx.multi_source_dijkstra_path_length(G, [("f", i) for i in range(len(f))], weight="weight")
    stored = pd.read_sql(text("SELECT building_id, network_m FROM service_distances WHERE category = 'kindergarten'"), conn).set_index("building_id")
    hosts = set(f["host_id"].dropna().astype(int))
    checked = 0
    for i, b in enumerate(homes["id"].to_numpy()[pick]):
        want = ref.get(("h", i), np.inf)
        got = stored.loc[b, "network_m"]
        if b in hosts:
            continue
        if want > get_settings().service_search_max_m:
            assert np.isnan(got)
        else:
            assert got == pytest.approx(want, abs=0.051)  # stored to the decimetre
            checked += 1
    assert checked >= 20


def test_editing_a_facility_rewalks_only_the_homes_within_its_reach(demo, conn):
    clear_results(conn)
    services.refresh(conn)
    assert not services.stale(conn).stale.any()
    fac = conn.execute(text("SELECT id FROM facilities WHERE category = 'kindergarten' AND status = 'open' ORDER BY id LIMIT 1")).scalar_one()
    conn.execute(text("UPDATE facilities SET geom = ST_Transform(ST_Translate(ST_Transform(geom, 4547), 150, -80), 4326) WHERE id = :i"), {"i": fac})
    st = services.stale(conn)
    grids = st[st.scope == "grid"]
    assert 0 < grids.stale.sum() < len(grids)  # within 1.5 km of it, not everywhere
    ran = services.refresh(conn, facilities=[fac])  # speed is measured in bench/bench_coverage.py, not asserted here
    assert ran["mode"] == "incremental" and ran["facilities"] == [fac] and 0 < ran["homes_walked"] <= 1740
    assert not services.stale(conn).stale.any()
    after = pd.read_sql(text("SELECT building_id, category, network_m, straight_m FROM service_distances ORDER BY 1, 2"), conn)
    # closing another one: the homes that relied on it are walked again, to the next nearest
    other = conn.execute(text("""SELECT facility_id FROM service_distances WHERE category = 'kindergarten' AND facility_id <> :i
                                 GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"""), {"i": fac}).scalar_one()
    conn.execute(text("UPDATE facilities SET status = 'closed' WHERE id = :i"), {"i": other})
    ran = services.refresh(conn)
    assert ran["mode"] == "incremental" and other in ran["facilities"]
    assert conn.execute(text("SELECT count(*) FROM service_distances WHERE facility_id = :i OR straight_facility_id = :i"),
                        {"i": other}).scalar_one() == 0
    incremental = pd.read_sql(text("SELECT building_id, category, network_m, straight_m FROM service_distances ORDER BY 1, 2"), conn)
    services.refresh(conn, full=True)
    full = pd.read_sql(text("SELECT building_id, category, network_m, straight_m FROM service_distances ORDER BY 1, 2"), conn)
    assert len(incremental) == len(full) == len(after)
    for col in ("network_m", "straight_m"):
        a, b = incremental[col].to_numpy(dtype=float), full[col].to_numpy(dtype=float)
        assert np.array_equal(np.isnan(a), np.isnan(b)) and np.allclose(a[~np.isnan(a)], b[~np.isnan(b)], atol=0.11), col
