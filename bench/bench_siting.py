"""Siting at city scale: ``analysis.siting`` (sparse, HiGHS directly) against spopt 0.7
(dense cost matrix, PuLP, HiGHS through ``pulp.HiGHS``) on the same model and data, in
the same run.

Data: a synthetic city from bench/scale.py (20,000 homes with households, the street
lattice as the walking network), 1,000 candidate sites along the walkable roads (every
50 m, then 1,000 picked evenly), walking distances along the road graph of
``analysis/network.py`` computed once by ``analysis.siting_inputs.pairs_within`` (every
pair within the largest cut-off) and cached under /tmp. A smaller case, the homes and
candidates in a window of the same city, is where spopt can finish a p-median at all.

Fair by construction: both solvers read the same cached pairs; spopt gets them as the
dense matrix it requires (distance, or a penalty beyond the cut-off), built before its
clock starts; both ask HiGHS for the same relative gap (1e-6); each run is a fresh
process (peak memory = its ``ru_maxrss``), spopt's with a wall-clock cap (a subprocess
timeout) and an address-space cap so a dense model cannot take the machine down. Unfinished
spopt runs are recorded as "did not finish in N s" (or the memory error), never guessed.
For spopt the true HiGHS model status is read as well as PuLP's (PuLP maps a HiGHS time
limit to "Optimal"). Objectives are compared in the model's own units:

- LSCP: new sites (only homes some candidate reaches within the radius: spopt's LSCP is
  infeasible otherwise; ours reports the others as unreachable);
- MCLP: households within the radius;
- p-median (penalty form): Σ households × walk, a household with no open site within the
  cut-off counting the penalty P (spopt: P in the matrix beyond the cut-off).

    python -m bench.bench_siting [--cases lscp mclp pmedian_small pmedian_mid pmedian] [--spopt-cap 600] [--no-record]
    python -m bench.bench_siting --skip-baseline --no-record        # ours only, a smoke check (~20 s)

Writes bench/results/siting.json and one line per case to bench/results/history.csv.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench import common
from bench.common import ROOT, commit

CACHE = Path(os.environ.get("WANGGE_SITING_CACHE", "/tmp/wangge-siting-bench"))
GAP = 1e-6
MAX_CUTOFF = 300.0

# name -> model parameters; "window" picks a part of the city (fraction of its width)
CASES: dict[str, dict] = {
    "lscp": {"model": "lscp", "radius": 300.0},
    "mclp": {"model": "mclp", "radius": 300.0, "p": 100},
    "pmedian_small": {"model": "pmedian", "radius": 300.0, "cutoff": 300.0, "p": 10, "penalty": 600.0, "window": 0.32},
    "pmedian_mid": {"model": "pmedian", "radius": 300.0, "cutoff": 300.0, "p": 15, "penalty": 600.0, "window": 0.40},
    "pmedian": {"model": "pmedian", "radius": 300.0, "cutoff": 300.0, "p": 100, "penalty": 600.0},
    # issue 18's city: 100,000 homes x 5,000 candidates, p grown with the candidates (5x)
    "mclp_city": {"model": "mclp", "radius": 300.0, "p": 500},
    "pmedian_city": {"model": "pmedian", "radius": 300.0, "cutoff": 300.0, "p": 500, "penalty": 600.0},
}


# --- the instance -------------------------------------------------------------------------

def instance(n_demand: int = 20_000, n_candidates: int = 1_000, seed: int = 0, log=print, city: bool | None = None) -> dict:
    """Homes, candidates and walking distances (cached): arrays in a dict. ``city`` (default:
    from 100,000 homes up): issue 18's proportions (``bench.scale.city_sizes``: a road edge
    per 2 buildings, a grid per 20) instead of the lattice's default street blocks."""
    city = n_demand >= 100_000 if city is None else city
    path = CACHE / f"city-{n_demand}-{n_candidates}-{int(MAX_CUTOFF)}-{seed}{'-issue18' if city else ''}.npz"
    if path.exists():
        z = np.load(path)
        out = {k: z[k] for k in z.files}
        out["cached"] = True
        return out
    from analysis import network
    from analysis.siting_inputs import candidates_on_roads, pairs_within
    from bench.scale import METRIC_EPSG, city_sizes, generate

    t0 = time.perf_counter()
    frames = generate(**city_sizes(int(n_demand * 1.2)), seed=seed) if city else generate(buildings=int(n_demand * 1.2), seed=seed)
    b = frames["buildings"].to_crs(METRIC_EPSG)
    homes = b[b["households"] > 0].iloc[:n_demand]
    if len(homes) < n_demand:
        raise SystemExit(f"the city has only {len(homes)} homes")
    roads = frames["roads"].to_crs(METRIC_EPSG)
    t1 = time.perf_counter()
    graph = network.build(roads.geometry.to_numpy())
    cand = candidates_on_roads(graph, 50.0).frame
    cand = cand.iloc[np.unique(np.linspace(0, len(cand) - 1, n_candidates).round().astype(int))]
    site_snap = network.snap(graph, cand["reach"].to_numpy())
    home_snap = network.snap(graph, homes.geometry.to_numpy())
    si, di, dist = pairs_within(graph, site_snap, home_snap, MAX_CUTOFF)
    t2 = time.perf_counter()
    hp = homes.geometry.centroid
    out = {"weight": homes["households"].to_numpy(float), "demand_xy": np.column_stack([hp.x, hp.y]),
           "site_xy": np.column_stack([[p.x for p in cand["point"]], [p.y for p in cand["point"]]]),
           "pair_site": si.astype(np.int32), "pair_demand": di.astype(np.int32), "pair_distance": dist,
           "roads": np.array(len(roads)), "nodes": np.array(graph.n_nodes), "generate_s": np.array(t1 - t0),
           "distances_s": np.array(t2 - t1)}
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)
    log(f"instance: {n_demand:,} homes, {len(cand):,} candidates, {len(dist):,} pairs within {MAX_CUTOFF:.0f} m "
        f"({graph.n_nodes:,} nodes, {len(roads):,} road edges); generated in {t1 - t0:.1f} s, walking distances in {t2 - t1:.1f} s")
    out["cached"] = False
    return out


def case_data(inst: dict, case: dict) -> dict:
    """The instance, or the window of it the case asks for (pairs renumbered)."""
    if not case.get("window"):
        return inst
    f = case["window"]
    lo = inst["demand_xy"].min(axis=0)
    hi = inst["demand_xy"].max(axis=0)
    centre = (lo + hi) / 2
    half = (hi - lo) * f / 2
    dmask = np.all(np.abs(inst["demand_xy"] - centre) <= half, axis=1)
    smask = np.all(np.abs(inst["site_xy"] - centre) <= half, axis=1)
    keep = dmask[inst["pair_demand"]] & smask[inst["pair_site"]]
    dpos, spos = np.cumsum(dmask) - 1, np.cumsum(smask) - 1
    return {"weight": inst["weight"][dmask], "demand_xy": inst["demand_xy"][dmask], "site_xy": inst["site_xy"][smask],
            "pair_demand": dpos[inst["pair_demand"][keep]], "pair_site": spos[inst["pair_site"][keep]],
            "pair_distance": inst["pair_distance"][keep]}


# --- one run, in its own process ----------------------------------------------------------

def _ours(data: dict, case: dict, time_limit: float) -> dict:
    from analysis.siting import SitingInput, solve

    n, m = len(data["weight"]), len(data["site_xy"])
    inp = SitingInput(np.arange(n), data["weight"], np.arange(m), None, None, data["pair_demand"], data["pair_site"],
                      data["pair_distance"], MAX_CUTOFF)
    t0 = time.perf_counter()
    res = solve(inp, case["model"], case["radius"], case.get("p"), cutoff=case.get("cutoff"), time_limit=time_limit,
                mip_gap=GAP, unserved_penalty=case.get("penalty"))
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "status": res.status, "gap": res.gap, "objective": res.objective,
            "sites": sorted(int(s) for s in res.new_sites["site_id"]), "coverage_share": res.coverage_share,
            "details": {k: v for k, v in res.details.items() if k in ("method", "lp_rounds", "mip_rounds", "cuts", "rows", "cols",
                                                                      "nodes", "fixed_by_reduced_cost", "lp_bound", "bound")}}


def _spopt(data: dict, case: dict, time_limit: float) -> dict:
    import pulp
    from spopt.locate import LSCP, MCLP, PMedian

    n, m = len(data["weight"]), len(data["site_xy"])
    r = case["radius"]
    cut = case.get("cutoff", r)
    far = case.get("penalty") or (r + 1.0)
    keep_rows = np.arange(n)
    if case["model"] == "lscp":  # spopt's LSCP needs every row coverable
        near = data["pair_distance"] <= r
        keep_rows = np.unique(data["pair_demand"][near])
    cost = np.full((n, m), far)
    limit = cut if case["model"] == "pmedian" else r
    ok = data["pair_distance"] <= limit
    cost[data["pair_demand"][ok], data["pair_site"][ok]] = data["pair_distance"][ok]
    cost = cost[keep_rows]
    w = data["weight"][keep_rows]
    # HiGHS stops a little before the process is killed, so a time-out shows how PuLP reports it
    solver = pulp.HiGHS(msg=False, timeLimit=0.9 * time_limit, gapRel=GAP)
    t0 = time.perf_counter()
    if case["model"] == "lscp":
        model = LSCP.from_cost_matrix(cost, r)
    elif case["model"] == "mclp":
        model = MCLP.from_cost_matrix(cost, w, r, p_facilities=case["p"])
    else:
        model = PMedian.from_cost_matrix(cost, w, p_facilities=case["p"])
    built = time.perf_counter() - t0
    model = model.solve(solver, results=False)
    seconds = time.perf_counter() - t0
    highs_status = None
    sm = getattr(model.problem, "solverModel", None)
    if sm is not None:
        highs_status = sm.modelStatusToString(sm.getModelStatus())
    sites = sorted(j for j, v in enumerate(model.fac_vars) if (v.value() or 0) > 0.5)
    return {"seconds": seconds, "build_s": built, "status": pulp.LpStatus[model.problem.status], "highs_status": highs_status,
            "objective": float(pulp.value(model.problem.objective)), "sites": sites}


def _child(method: str, case_name: str, time_limit: float, n_demand: int, n_candidates: int) -> dict:
    case = CASES[case_name]
    data = case_data(instance(n_demand, n_candidates, log=lambda *_: None), case)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = (_ours if method == "ours" else _spopt)(data, case, time_limit)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {**out, "method": method, "case": case_name, "peak_rss_mb": peak / 1024, "rss_before_mb": before / 1024,
            "demand": len(data["weight"]), "candidates": len(data["site_xy"]), "pairs": len(data["pair_distance"])}


def _run(method: str, case: str, time_limit: float, cap_s: float, mem_gb: float, n_demand: int, n_candidates: int) -> dict:
    cmd = [sys.executable, "-m", "bench.bench_siting", "--child", method, "--case", case, "--time-limit", str(time_limit),
           "--demand", str(n_demand), "--candidates", str(n_candidates)]

    def limit() -> None:
        if mem_gb:
            cap = int(mem_gb * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    started = time.perf_counter()
    try:
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=os.environ.copy(), timeout=cap_s,
                             preexec_fn=limit)
    except subprocess.TimeoutExpired:
        return {"method": method, "case": case, "finished": False, "seconds": round(time.perf_counter() - started, 1),
                "why": f"did not finish in {cap_s:.0f} s (killed)"}
    wall = time.perf_counter() - started
    if out.returncode:
        tail = (out.stderr or "").strip().splitlines()[-1:] or [""]
        # an allocation refused under the cap shows as MemoryError, or (inside PuLP's C
        # extension) as "returned NULL without setting an exception"
        memory = "MemoryError" in out.stderr or "without setting an exception" in out.stderr or out.returncode in (-9, 137)
        why = f"stopped by the {mem_gb:g} GB address-space cap" if memory and mem_gb else "failed"
        return {"method": method, "case": case, "finished": False, "seconds": round(wall, 1),
                "why": f"did not finish: {why} after {wall:.0f} s ({tail[0][:160]})"}
    res = {**json.loads(out.stdout.strip().splitlines()[-1]), "wall_s": round(wall, 1)}
    # finished = an answer proved optimal; spopt's PuLP says "Optimal" on a HiGHS time-out,
    # so its own HiGHS status decides
    proved = res.get("highs_status", "Optimal") == "Optimal" if method == "spopt" else res.get("status") == "optimal"
    res["finished"] = proved
    if not proved:
        res["why"] = (f"did not finish: HiGHS stopped at its time limit after {res['seconds']:.0f} s "
                      f"(PuLP reported {res.get('status')!r}), best objective {res.get('objective')}" if method == "spopt"
                      else f"not proved optimal: {res.get('status')}, gap {res.get('gap')}")
    return res


# --- the benchmark ------------------------------------------------------------------------

def _versions() -> dict:
    from importlib.metadata import version

    import highspy  # noqa: F401

    return {"python": platform.python_version(), "highspy": version("highspy"), "spopt": version("spopt"),
            "pulp": version("pulp"), "numpy": np.__version__, "cpus": os.cpu_count(), "machine": platform.machine()}


def _same(a: float | None, b: float | None) -> bool | None:
    if a is None or b is None:
        return None
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b)) + 1e-6


def run(cases: list[str], n_demand: int = 20_000, n_candidates: int = 1_000, spopt_cap: float = 600.0, mem_gb: float = 8.0,
        time_limit: float = 600.0, record: bool = True, skip_baseline: bool = False, log=print, record_as: str = "siting") -> dict:
    t_all = time.perf_counter()
    inst = instance(n_demand, n_candidates, log=log)
    if inst.get("cached"):
        log(f"instance from the cache ({CACHE}): {len(inst['pair_distance']):,} pairs; walking distances had taken "
            f"{float(inst['distances_s']):.1f} s")
    results = []
    for name in cases:
        case = CASES[name]
        ours = _run("ours", name, time_limit, time_limit + 120, 0, n_demand, n_candidates)
        base = (_run("spopt", name, spopt_cap, spopt_cap, mem_gb, n_demand, n_candidates) if not skip_baseline
                else {"finished": False, "seconds": 0.0, "why": "not run (--skip-baseline)"})
        same = _same(ours.get("objective"), base.get("objective")) if base.get("objective") is not None else None
        ratio = round(base["seconds"] / ours["seconds"], 1) if base.get("finished") and ours.get("finished") else None
        row = {"case": name, "params": case, "ours": ours, "spopt": base, "same_objective": same, "speedup": ratio}
        results.append(row)
        size = f"{ours.get('demand', '?')} x {ours.get('candidates', '?')}"
        log(f"{name:14s} {size:>13s}  ours {ours.get('seconds', float('nan')):7.1f} s {ours.get('status')} obj {ours.get('objective')} "
            f"peak {ours.get('peak_rss_mb', 0):.0f} MB | spopt " +
            (f"{base['seconds']:7.1f} s {base['status']}/{base.get('highs_status')} obj {base['objective']} peak {base['peak_rss_mb']:.0f} MB"
             if base.get("finished") else base["why"]) + (f" | {ratio}x" if ratio else "") + f" | same objective: {same}")
    result = {
        "benchmark": "siting",
        "what": "analysis.siting (sparse, HiGHS direct) vs spopt 0.7 (dense, PuLP + HiGHS), same cached network distances",
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "commit": commit(("analysis/siting.py", "analysis/siting_inputs.py", "bench/bench_siting.py")),
        "instance": {"demand": n_demand, "candidates": n_candidates, "pairs_within_m": MAX_CUTOFF,
                     "pairs": len(inst["pair_distance"]), "households": float(inst["weight"].sum()),
                     "road_edges": int(inst["roads"]), "network_nodes": int(inst["nodes"]),
                     "walking_distances_s": round(float(inst["distances_s"]), 1), "from_cache": bool(inst.get("cached"))},
        "mip_rel_gap": GAP, "spopt_cap_s": spopt_cap, "spopt_memory_cap_gb": mem_gb, "ours_time_limit_s": time_limit,
        "load_average": os.getloadavg(), "cases": results, "versions": _versions(),
        "wall_s": round(time.perf_counter() - t_all, 1),
    }
    if record:
        save(result, record_as)
    return result


def save(result: dict, name: str = "siting") -> None:
    rows = []
    for c in result["cases"]:
        o, b = c["ours"], c["spopt"]
        rows.append([result["date"], f"siting:{c['case']}", result["commit"], f"{o.get('demand')}x{o.get('candidates')}", 1,
                     round(b["seconds"], 2) if b.get("finished") else f"DNF>{b['seconds']:.0f}",
                     round(o["seconds"], 2) if o.get("finished") else "DNF", c["speedup"] or "",
                     round(b["peak_rss_mb"], 1) if b.get("peak_rss_mb") else "", round(o.get("peak_rss_mb", 0), 1),
                     c["same_objective"]])
    common.save(name, result, rows)


def main(argv: list[str] | None = None) -> dict | None:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_siting", description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    ap.add_argument("--demand", type=int, default=20_000)
    ap.add_argument("--candidates", type=int, default=1_000)
    ap.add_argument("--spopt-cap", type=float, default=600.0, help="seconds before a spopt run is stopped")
    ap.add_argument("--memory-cap-gb", type=float, default=8.0, help="address-space cap for a spopt run")
    ap.add_argument("--time-limit", type=float, default=600.0, help="solver time limit (ours; spopt gets its cap)")
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--record-as", default="siting", help="results/<name>.json (siting_city for issue 18's 100,000 x 5,000)")
    ap.add_argument("--skip-baseline", action="store_true", help="ours only (a smoke check)")
    ap.add_argument("--child", choices=("ours", "spopt"), help=argparse.SUPPRESS)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args.case, args.time_limit, args.demand, args.candidates), default=float))
        return None
    return run(args.cases, args.demand, args.candidates, args.spopt_cap, args.memory_cap_gb, args.time_limit,
               not args.no_record, args.skip_baseline, record_as=args.record_as)


if __name__ == "__main__":
    main()
