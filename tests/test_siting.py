"""Siting: every model against brute force on small instances (all subsets of ~8 candidates,
and every assignment for the capacitated ones), honest status under a time limit,
unreachable demand, walking distances against the coverage network, the demo's planted
gaps, and scenarios (store, compare, export, map) through the CLI."""
from __future__ import annotations

import itertools
import json
import os
import subprocess

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from analysis import network
from analysis.siting import SitingError, SitingInput, solve
from gis.settings import ROOT

CUT = 45.0


# --- brute force ----------------------------------------------------------------------------

def _instance(seed: int, n: int = 8, m: int = 7, n_exist: int = 1, cutoff: float = CUT, cap: bool = False) -> SitingInput:
    """Random points in a 100 m square; pairs within the cut-off (straight line is enough
    here: the models only see the sparse table)."""
    rng = np.random.default_rng(seed)
    dxy, sxy = rng.uniform(0, 100, (n, 2)), rng.uniform(0, 100, (m, 2))
    d = np.linalg.norm(dxy[:, None] - sxy[None], axis=2)
    i, j = np.nonzero(d <= cutoff)
    existing = np.zeros(m, bool)
    existing[:n_exist] = True
    capacity = rng.integers(8, 25, m).astype(float) if cap else None
    return SitingInput(np.arange(n), rng.integers(1, 10, n).astype(float), np.arange(m) + 100, existing, capacity,
                       i, j, d[i, j], cutoff)


def _brute(inp: SitingInput, model: str, r: float, p: int | None = None, cap: bool = False, penalty: float | None = None):
    """The optimum by enumeration, as a tuple compared lexicographically:
    lscp (sites,) / capacitated (-served, sites); mclp (-covered,); p-median (-served, metres)
    or, with a penalty, (metres + penalty × unserved,)."""
    n, m = inp.n_demand, inp.n_sites
    D = np.full((n, m), np.inf)
    D[inp.pair_demand, inp.pair_site] = inp.pair_distance
    E, N, w = list(np.flatnonzero(inp.existing)), list(np.flatnonzero(~inp.existing)), inp.weight
    reach = (D <= r).any(1) & (w > 0)
    best = None
    for k in (range(len(N) + 1) if model == "lscp" else [p]):
        for S in itertools.combinations(N, k):
            open_ = E + list(S)
            if not cap:
                dmin = np.min(np.where(D[:, open_] <= r, D[:, open_], np.inf), axis=1) if open_ else np.full(n, np.inf)
                dmin = np.where(reach, dmin, np.inf)
                served = np.isfinite(dmin)
                if model == "lscp":
                    key = (k,) if served[reach].all() else None
                elif model == "mclp":
                    key = (-w[served].sum(),)
                elif penalty is None:
                    key = (-w[served].sum(), (w * np.where(served, dmin, 0)).sum())
                else:
                    key = ((w * np.where(served, np.minimum(dmin, penalty), penalty)).sum(),)
            else:
                key = None
                options = [[None] + [j for j in open_ if D[i, j] <= r] if reach[i] else [None] for i in range(n)]
                for a in itertools.product(*options):
                    load: dict = {}
                    for i, j in enumerate(a):
                        if j is not None:
                            load[j] = load.get(j, 0) + w[i]
                    if any(v > inp.capacity[j] + 1e-9 for j, v in load.items()):
                        continue
                    srv = sum(w[i] for i, j in enumerate(a) if j is not None)
                    dist = sum(w[i] * D[i, j] for i, j in enumerate(a) if j is not None)
                    kk = {"lscp": (-srv, k), "mclp": (-srv,), "pmedian": (-srv, dist)}[model]
                    key = kk if key is None or kk < key else key
            if key is not None and (best is None or key < best):
                best = key
        if model == "lscp" and not cap and best is not None:
            break
    return best


def _got(res, model: str, cap: bool = False, penalty: float | None = None):
    if model == "lscp":
        return (-res.served_weight, res.objective) if cap else (res.objective,)
    if model == "mclp":
        return (-res.covered_weight,)
    return (res.objective,) if penalty is not None else (-res.served_weight, res.objective)


@pytest.mark.parametrize("model,p,penalty", [("lscp", None, None), ("mclp", 1, None), ("mclp", 3, None),
                                             ("pmedian", 2, None), ("pmedian", 3, 60.0)])
def test_matches_brute_force(model, p, penalty):
    for seed in range(12):
        inp = _instance(seed, n=9, m=8, n_exist=seed % 3)
        res = solve(inp, model, CUT, p, unserved_penalty=penalty, time_limit=20)
        assert res.status == "optimal" and (res.gap or 0.0) < 1e-6
        assert np.allclose(_got(res, model, penalty=penalty), _brute(inp, model, CUT, p, penalty=penalty), rtol=1e-6), (seed, model)
        if model == "pmedian":  # the compact formulation (x_ij ≤ y_j) agrees with the Benders one
            other = solve(inp, model, CUT, p, unserved_penalty=penalty, method="compact")
            assert other.objective == pytest.approx(res.objective, rel=1e-6) and other.served_weight == res.served_weight


@pytest.mark.parametrize("model,p", [("lscp", None), ("mclp", 2), ("pmedian", 2)])
def test_capacitated_matches_brute_force(model, p):
    for seed in range(8):
        inp = _instance(200 + seed, n=6, m=6, n_exist=seed % 2, cap=True, cutoff=50.0)
        res = solve(inp, model, 50.0, p, capacitated=True, time_limit=20)
        assert res.status == "optimal"
        assert np.allclose(_got(res, model, cap=True), _brute(inp, model, 50.0, p, cap=True), rtol=1e-6), (seed, model)
        assert (res.sites["assigned_weight"] <= res.sites["capacity"].fillna(np.inf) + 1e-6).all()
        split = solve(inp, model, 50.0, p, capacitated=True, split_demand=True)
        assert split.served_weight >= res.served_weight - 1e-6  # splitting a building can only help


def test_hand_instance():
    """Five homes on a street at 0–400 m (10, 20, 30, 10 and 5 households), candidates
    A–E every 100 m, radius 100 m. Two sites cover everyone (A+D, B+D or B+E). One site
    covers 60 households at best (B or C); the p-median takes C, whose walks are shorter
    (20×100 + 10×100 = 3000 against B's 4000). With two sites it takes B+D (4500 against
    5000 for B+E and 5500 for A+D)."""
    homes = np.array([0, 100, 200, 300, 400.0])
    d = np.abs(homes[:, None] - homes[None])
    i, j = np.nonzero(d <= 100)
    inp = SitingInput(np.arange(5), np.array([10, 20, 30, 10, 5.0]), np.array(list("ABCDE")), None, None, i, j, d[i, j], 100.0)
    res = solve(inp, "lscp", 100)
    assert res.objective == 2 and res.coverage_share == 1 and set(res.new_sites["site_id"]) in ({"A", "D"}, {"B", "D"}, {"B", "E"})
    res = solve(inp, "mclp", 100, 1)
    assert res.covered_weight == 60 and res.new_sites["site_id"].tolist() in (["B"], ["C"])
    res = solve(inp, "pmedian", 100, 1)  # lexicographic: serve 60, then walk least
    assert res.new_sites["site_id"].tolist() == ["C"] and res.objective == 3000 and res.mean_distance_m == pytest.approx(50)
    assert res.unserved["demand_id"].tolist() == [0, 4] and res.served_weight == 60
    res = solve(inp, "pmedian", 100, 2)
    assert set(res.new_sites["site_id"]) == {"B", "D"} and res.objective == 4500 and res.served_weight == 75


def test_unreachable_demand_is_reported():
    inp = _instance(3, n=8, m=6, n_exist=1)
    far = SitingInput(np.append(inp.demand_id, 99), np.append(inp.weight, 7.0), inp.site_id, inp.existing, None,
                      inp.pair_demand, inp.pair_site, inp.pair_distance, CUT)
    for model, p in (("lscp", None), ("mclp", 2), ("pmedian", 2)):
        res = solve(far, model, CUT, p)
        assert 99 in res.unreachable["demand_id"].tolist() and res.unreachable["weight"].sum() >= 7
        assert res.total_weight == far.weight.sum() and res.covered_weight <= res.total_weight - 7
        row = res.assignment[res.assignment["demand_id"] == 99].iloc[0]
        assert row["reason"] == "unreachable" and pd.isna(row["site_id"])
        assert any("unreachable" in n for n in res.notes)
    with pytest.raises(SitingError):
        solve(far, "mclp", CUT)  # p is required


def _hard_mclp() -> SitingInput:
    rng = np.random.default_rng(7)
    n, m, side, r = 6000, 600, 6000.0, 450.0
    dxy, sxy = rng.uniform(0, side, (n, 2)), rng.uniform(0, side, (m, 2))
    pi, pj, pd_ = [], [], []
    for j in range(m):
        dd = np.hypot(*(dxy - sxy[j]).T) * 1.25
        k = np.flatnonzero(dd <= r)
        pi.append(k), pj.append(np.full(len(k), j)), pd_.append(dd[k])
    return SitingInput(np.arange(n), rng.integers(1, 60, n).astype(float), np.arange(m), None, None,
                       np.concatenate(pi), np.concatenate(pj), np.concatenate(pd_), r)


def test_time_limit_reports_a_gap_not_optimal():
    inp = _hard_mclp()
    for model, p, kw in (("mclp", 60, {}), ("pmedian", 150, {"unserved_penalty": 900.0})):
        res = solve(inp, model, 450.0, p, time_limit=1.0, **kw)
        assert res.status == "time_limit" and not res.is_optimal, (model, res.status)
        assert res.has_solution and res.gap is not None and res.gap > 0  # the best found, and how far it may be
        assert any("time limit" in n for n in res.notes)
        assert res.solve_seconds < 15


# --- the database ---------------------------------------------------------------------------

def test_walking_pairs_agree_with_the_coverage_network(demo, conn):
    """The nearest site by pairs_within equals analysis.network.nearest (the coverage walk)."""
    import shapely

    from analysis.siting_inputs import build_input, candidates_on_roads, pairs_within
    from gis.measure import metric_srid

    inp = build_input(conn, "health_station", radius=400)
    srid = metric_srid(conn)
    graph = network.load(conn, srid)
    homes = conn.execute(text(f"SELECT id, ST_AsBinary(ST_Transform(geom, {srid})) FROM buildings WHERE households > 0 ORDER BY id")).all()
    geoms = shapely.from_wkb([bytes(h[1]) for h in homes])
    hs = network.snap(graph, geoms)
    cand = candidates_on_roads(graph, 80.0).frame["reach"].to_numpy()
    cs = network.snap(graph, cand)
    si, di, dist = pairs_within(graph, cs, hs, 400.0)
    mine = np.full(len(geoms), np.inf)
    np.minimum.at(mine, di, dist)
    theirs, _ = network.nearest(graph, cs, np.arange(len(cand)), hs, 400.0)
    assert np.allclose(np.where(np.isfinite(mine), mine, -1), np.where(np.isfinite(theirs), theirs, -1), atol=1e-6)
    assert inp.meta["existing_count"] == 7 and inp.meta["pairs"] > 0


def _catchment_community(res) -> dict:
    """For each new site, the community most of its assigned households live in (a road
    candidate often stands on a community boundary, so its point says little)."""
    a = res.assignment[res.assignment["site_id"].isin(res.new_sites["site_id"])]
    a = a.assign(community=a["group"].astype(str).str[:12])
    per = a.groupby(["site_id", "community"])["weight"].sum().reset_index()
    return per.sort_values("weight").groupby("site_id").last()["community"].to_dict()


def test_demo_planted_station_gaps(demo, conn):
    """大成路 (…003) and 复兴 (…007) have no community service station: an LSCP at the
    category's 300 m opens stations whose catchments are in both and reaches every home; at
    500 m, of the two best new stations (MCLP, p=2) one serves 大成路, the worst-served community."""
    from analysis.siting_inputs import build_input

    stations = conn.execute(text("SELECT community_code FROM facilities WHERE category = 'community_service_station' AND status = 'open'")).scalars().all()
    assert "420106010003" not in stations and "420106010007" not in stations
    inp = build_input(conn, "community_service_station")
    assert inp.meta["radius_m"] == 300 and inp.meta["existing_count"] == len(stations)
    res = solve(inp, "lscp", time_limit=30)
    assert res.is_optimal and res.coverage_share == 1.0 and len(res.unreachable) == 0
    serves = list(_catchment_community(res).values())
    assert serves.count("420106010003") >= 1 and serves.count("420106010007") >= 1
    wide = build_input(conn, "community_service_station", radius=500, candidates="roads:100")
    comm = pd.Series(wide.demand_group).astype(str).str[:12].to_numpy()
    near = wide.existing[wide.pair_site] & (wide.pair_distance <= 500)
    before = pd.Series(np.isin(np.arange(wide.n_demand), wide.pair_demand[near]) * wide.weight).groupby(comm).sum() / \
        pd.Series(wide.weight).groupby(comm).sum()
    assert before.idxmin() == "420106010003"
    two = solve(wide, "mclp", 500, 2, time_limit=30)
    assert two.is_optimal and "420106010003" in _catchment_community(two).values()
    assert two.covered_weight > two.covered_before


def test_candidates_from_files_and_buildings(demo, conn, tmp_path):
    """Candidate files (GeoJSON points and a parcel, a CSV with lon/lat in GCJ-02 and a
    capacity column) and chosen buildings feed the same models; capacities are used."""
    from analysis.siting_inputs import build_input

    lon, lat = conn.execute(text("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Collect(geom)) c FROM communities WHERE code = '420106010003') q")).one()
    d = 0.0015
    gj = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": "P1", "name": "空置用房一"}, "geometry": {"type": "Point", "coordinates": [lon, lat]}},
        {"type": "Feature", "properties": {"id": "P2", "name": "空置用房二"}, "geometry": {"type": "Point", "coordinates": [lon + d, lat]}},
        {"type": "Feature", "properties": {"id": "L1", "name": "地块"}, "geometry": {"type": "Polygon", "coordinates": [[
            [lon - d, lat - d], [lon - d / 2, lat - d], [lon - d / 2, lat - d / 2], [lon - d, lat - d / 2], [lon - d, lat - d]]]}}]}
    (tmp_path / "cands.geojson").write_text(json.dumps(gj, ensure_ascii=False))
    inp = build_input(conn, "community_service_station", candidates=tmp_path / "cands.geojson")
    assert inp.meta["candidate_count"] == 3 and inp.meta["candidates"] == "file:cands.geojson"
    assert {"P1", "P2", "L1"} <= set(inp.site_id) and inp.pair_distance.size > 0
    res = solve(inp, "mclp", p=1)
    assert res.is_optimal and len(res.new_sites) == 1 and res.covered_weight > res.covered_before
    (tmp_path / "cands.csv").write_text("编号,名称,经度,纬度,容量\nC1,甲,%f,%f,300\nC2,乙,%f,%f,300\n" % (lon, lat, lon + d, lat), encoding="utf-8")
    cap = build_input(conn, "community_service_station", candidates=tmp_path / "cands.csv", crs="gcj02")
    assert list(cap.site_id[~cap.existing]) == ["C1", "C2"] and (cap.capacity[~cap.existing] == 300).all()
    res = solve(cap, "mclp", p=2, capacitated=True, split_demand=True)
    new = res.new_sites
    assert res.is_optimal and (new["assigned_weight"] <= 300 + 1e-6).all()
    chosen = conn.execute(text("SELECT source_id FROM buildings WHERE community_code = '420106010007' AND households > 0 ORDER BY id LIMIT 4")).scalars().all()
    blds = build_input(conn, "community_service_station", candidates="buildings:" + ",".join(chosen))
    assert sorted(blds.site_id[~blds.existing]) == sorted(chosen)
    with pytest.raises(SitingError):
        build_input(conn, "community_service_station", candidates="buildings:NOPE")
    with pytest.raises(SitingError):
        build_input(conn, "community_service_station", candidates=tmp_path / "missing.geojson")


def test_cli_scenarios_compare_export_map(demo, tmp_path):
    """`wangge site` stores scenarios; `wangge scenario compare|export|map` read them back;
    the other formats through the same functions in-process (each CLI call costs ~2 s)."""
    from analysis import siting_scenarios as sc
    from gis.db import owner_engine

    env = {**os.environ, "WANGGE_DB_NAME": os.environ.get("WANGGE_DB_NAME", "wangge_test")}

    def run(*a):
        return subprocess.run([str(ROOT / ".venv/bin/wangge"), *a], capture_output=True, text=True, env=env, timeout=180)

    ids = []
    try:
        a = run("site", "--category", "community_service_station", "--model", "lscp", "--json", "--name", "test lscp")
        assert a.returncode == 0, a.stderr
        body = json.loads(a.stdout)
        assert body["status"] == "optimal" and body["gap"] == 0 and body["coverage_share"] == 1.0 and body["new_sites"] > 0
        ids.append(body["scenario_id"])
        b = run("site", "--category", "community_service_station", "--model", "mclp", "-p", "3", "--radius", "400",
                "--candidates", "roads:100", "--time-limit", "20", "--json")
        body_b = json.loads(b.stdout)
        assert b.returncode == 0 and body_b["new_sites"] == 3 and body_b["p"] == 3 and body_b["radius_m"] == 400
        assert body_b["covered_before"] < body_b["covered_weight"] < body_b["total_weight"]
        ids.append(body_b["scenario_id"])
        human = run("site", "--category", "health_station", "--model", "pmedian", "-p", "1", "--no-save")
        assert human.returncode == 0 and "状态 status: optimal" in human.stdout and "new sites (1)" in human.stdout
        cmp_ = json.loads(run("scenario", "compare", *map(str, ids), "--json").stdout)
        assert set(cmp_) == {f"#{i}" for i in ids}
        assert cmp_[f"#{ids[0]}"]["覆盖率 share covered"] == 1.0 and cmp_[f"#{ids[1]}"]["新增站点 new sites"] == 3
        for cmd, name in (("export", "cmp.xlsx"), ("map", "map.pdf")):
            r = run("scenario", cmd, *map(str, ids), "--out", str(tmp_path / name))
            assert r.returncode == 0, r.stderr
        xl = pd.read_excel(tmp_path / "cmp.xlsx", sheet_name=None)
        assert len(xl) == 3 and len(xl["站点 sites"]) == body["open_sites"] + body_b["open_sites"]
        assert (tmp_path / "map.pdf").read_bytes()[:4] == b"%PDF"
        with owner_engine().connect() as conn:
            sc.export(conn, ids, tmp_path / "cmp.csv")
            sc.export(conn, ids, tmp_path / "sites.geojson")
            sc.map_figure(conn, ids[1:], tmp_path / "map.png", before=True)
            pts = sc.homes(conn, ids[1])
            row = sc.scenario(conn, ids[1])
            assert pts.loc[pts["covered_before"], "weight"].sum() == pytest.approx(row["covered_before"])
            assert pts.loc[pts["covered_after"], "weight"].sum() == pytest.approx(row["covered_weight"])
            assert {i for i in ids} <= set(sc.list_scenarios(conn)["id"])
            hulls = sc.catchments(conn, ids[1])
            assert len(hulls[~hulls["existing"]]) == 3 and (hulls["weight"] > 0).all()
            with pytest.raises(SitingError):
                sc.run(conn, "nope", "lscp", save_run=False)
        assert "覆盖率" in (tmp_path / "cmp.csv").read_text(encoding="utf-8-sig")
        gj = json.loads((tmp_path / "sites.geojson").read_text())
        assert {f["properties"]["scenario_id"] for f in gj["features"]} == set(ids)
        assert all(f["geometry"]["type"] == "Point" for f in gj["features"])
        assert (tmp_path / "map.png").read_bytes()[:4] == b"\x89PNG"
    finally:
        if ids:
            run("scenario", "delete", *map(str, ids))
