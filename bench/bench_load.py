"""Fifty signed-in users at once: one Streamlit process against several behind a proxy.

What each user does (``bench/stclient.py``: what a browser does, over loopback, without
painting): signs in through the real form (``POST /signin``: Argon2id, a session row), opens
the page's websocket and runs their role's screens in turn as the navigation does (a street
leader: overview, staffing; a community secretary: community; a grid worker: my grid; each
run waits for Streamlit's ``script_finished``), and after the screen with the map, a pan and
zoom over their area: the map's tile layers (grids, communities, roads, buildings; 512-px
tiles, 3 × 2 per view, six requests at a time as a browser does) at display zooms 14, 15, 16
and a pan at 16: 96 tile requests per user. Every user starts at once; each does this once (bounded in count) and
every request has a time-out (bounded in time).

Measured per request kind (sign-in, landing screen, each further screen, tile): p50/p95 of
latency, the number of errors (HTTP ≥ 400 other than an empty tile, a page run that did not
finish, an exception shown on a page); the server processes' resident memory before the
users, after they all ran (sessions still open) and its growth per session.

Configurations, in the same run (the baseline first):
- ``one-1``: one Streamlit process, three users (a leader, a secretary, a worker) one at a time
  (the latency a person sees alone);
- ``one-10``, ``one-50``: one Streamlit process, 10 and 50 users at once;
- ``multi-1``, ``multi-10``, ``multi-50``: the same against ``deploy/serve-multi.sh``: N Streamlit
  processes (default 2, the machine's cores) behind HAProxy with sticky sessions, PgBouncer in
  transaction mode in front of PostgreSQL.

The crowds reuse the accounts (each crowd signs in afresh), so a later crowd may find some of
its tiles in the server's tile cache; both configurations run the same sequence.

    WANGGE_DB_NAME=wangge_load_bench python -m bench.bench_load --setup --gpkg /work/wt/data/city_100k.gpkg
    WANGGE_DB_NAME=wangge_load_bench python -m bench.bench_load [--users 50] [--apps 2]

Writes bench/results/load.json and a line per configuration to bench/results/history.csv.
``--setup`` empties the database (its name must contain "bench") and loads the city.
"""
from __future__ import annotations

import argparse
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from bench import common
from bench.common import LAYER_TABLES, ROOT, check_database, commit, owner_engine
from bench.stclient import User, tiles_for_view

PREFIX = "load_"
SCREENS = {"leader": ["overview", "staffing"], "secretary": ["community"], "worker": ["my-grid"]}
TILE_LAYERS = ("grids", "communities", "roads", "buildings")
VIEWS = [14, 15, 16]  # display zooms of the zoom-in; then one pan at 16
MIX = {"leader": 10, "secretary": 15, "worker": 25}  # of 50; scaled for other counts


# --- data ---------------------------------------------------------------------------------------

def setup(gpkg: Path | None, buildings: int, log=print) -> None:
    """Empty the bench database, import the city (a GeoPackage of ``bench/scale.py``'s, or one
    generated here), and analyse."""
    from sqlalchemy import text

    from bench.scale import LAYERS, generate, write_gpkg
    from layers.importer import import_file

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if gpkg is None:
            gpkg = write_gpkg(generate(buildings=buildings, seed=0), Path(tmp) / "city.gpkg")
        with owner_engine().begin() as c:
            c.execute(text(f"TRUNCATE {LAYER_TABLES} RESTART IDENTITY CASCADE"))
        for layer in LAYERS:
            import_file(layer, gpkg, source_layer=layer)
    with owner_engine().begin() as c:
        c.execute(text("ANALYZE"))
        n = c.execute(text("SELECT count(*) FROM buildings")).scalar_one()
    log(f"city imported: {n:,} buildings in {time.perf_counter() - t0:.1f} s")


def make_users(total: int, password: str, log=print) -> list[dict]:
    """``total`` accounts in the mix of ``MIX`` (leaders for the whole sub-district, secretaries
    of distinct communities, workers of distinct grids), made as an administrator makes them;
    each with the centre of its area for the map's pan and zoom."""
    from sqlalchemy import text

    from gis.db import transaction
    from gis.scope import SYSTEM, use_scope
    from layers import users as auth

    counts = {r: max(1, round(total * n / 50)) for r, n in MIX.items()}
    counts["worker"] = total - counts["leader"] - counts["secretary"]
    with owner_engine().begin() as c:
        c.execute(text("DELETE FROM users WHERE username LIKE :p"), {"p": PREFIX + "%"})
        comms = c.execute(text("""SELECT code, ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)) FROM communities
                                  ORDER BY code""")).all()
        grids = c.execute(text("""SELECT DISTINCT ON (community_code) id, community_code, ST_X(ST_Centroid(geom)),
                                         ST_Y(ST_Centroid(geom)) FROM grids WHERE valid_to IS NULL
                                  ORDER BY community_code, code""")).all()
        x, y = c.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Centroid(ST_Extent(geom)::geometry) p "
                              "FROM communities) q")).one()
    made: list[dict] = []
    with use_scope(SYSTEM), transaction() as conn:
        for role, n in counts.items():
            for i in range(n):
                name = f"{PREFIX}{role}_{i:02d}"
                if role == "leader":
                    kw, centre = {}, (x, y)
                elif role == "secretary":
                    code, cx, cy = comms[i % len(comms)]
                    kw, centre = {"communities": (code,)}, (cx, cy)
                else:
                    gid, code, cx, cy = grids[i % len(grids)]
                    kw, centre = {"communities": (code,), "grids": (int(gid),)}, (cx, cy)
                auth.create_user(conn, name, password, role, display_name=f"负载{role}{i:02d}", **kw)
                made.append({"username": name, "role": role, "centre": (float(centre[0]), float(centre[1]))})
    log(f"{len(made)} accounts: {counts}")
    return made


# --- servers --------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen | None = None, timeout: float = 120) -> None:
    import requests

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode})")
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


class OneProcess:
    """``streamlit run app.py`` as ``make demo`` starts it, straight to PostgreSQL."""

    def __init__(self, log_dir: Path):
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(log_dir / "one.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(self.port), "--server.address",
             "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"], cwd=ROOT, env=dict(os.environ), stdout=self.log, stderr=subprocess.STDOUT)
        _wait_http(self.base + "/_stcore/health", self.proc)

    def pids(self) -> list[int]:
        return [self.proc.pid]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


class Multi:
    """``deploy/serve-multi.sh``: N app processes behind HAProxy (sticky), PgBouncer in transaction mode."""

    def __init__(self, apps: int, run_dir: Path):
        self.port = _free_port()
        self.env = {**os.environ, "WANGGE_APPS": str(apps), "WANGGE_MULTI_PORT": str(self.port),
                    "WANGGE_MULTI_DIR": str(run_dir), "WANGGE_PGBOUNCER_PORT": str(_free_port()),
                    "WANGGE_APP_PORTS": " ".join(str(_free_port()) for _ in range(apps))}
        self.base = f"http://127.0.0.1:{self.port}"
        self.run_dir = run_dir
        subprocess.run([str(ROOT / "deploy" / "serve-multi.sh"), "start"], cwd=ROOT, env=self.env, check=True)
        _wait_http(self.base + "/_stcore/health")

    def pids(self) -> list[int]:
        return [int(p.read_text()) for p in sorted(self.run_dir.glob("app*.pid"))]

    def stop(self) -> None:
        subprocess.run([str(ROOT / "deploy" / "serve-multi.sh"), "stop"], cwd=ROOT, env=self.env, check=False)


def rss_mb(pids: list[int]) -> float:
    import psutil

    return round(sum(psutil.Process(p).memory_info().rss for p in pids) / 2 ** 20, 1)


def cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds the app processes have used (PostgreSQL's backends not included)."""
    import psutil

    return sum(sum(psutil.Process(p).cpu_times()[:2]) for p in pids)


# --- one user ---------------------------------------------------------------------------------------

def journey(base: str, account: dict, password: str, record, deadline: float, timeout: float) -> User:
    """One user's visit; every request's latency goes to ``record(kind, seconds, ok)``. Past
    ``deadline`` (``time.perf_counter()``) the remaining steps are skipped and counted as such."""
    u = User(base, account["username"], password, timeout=timeout)
    t0 = time.perf_counter()
    try:
        record("signin", u.sign_in(), True)  # the POST (the form's GET is a static page)
    except Exception as exc:  # noqa: BLE001 - counted as an error (with the time it took), the user stops
        record("signin", time.perf_counter() - t0, False, str(exc)[:200])
        return u
    took, status, _ = u.get("/")
    record("html", took, status == 200)
    screens = SCREENS[account["role"]]
    for i, screen in enumerate(screens):
        if time.perf_counter() > deadline:
            record("skipped", 0.0, False, "past the deadline")
            return u
        t0 = time.perf_counter()
        try:
            run = u.run("" if i == 0 else screen)
            ok = run.status == "finished" and not any("无权" in t and "EXCEPTION" in t for t in run.texts)
            record("page_first" if i == 0 else "page_next", run.seconds, ok,
                   None if ok else f"{run.status}: {[t for t in run.texts if 'EXCEPTION' in t][:1]}")
        except Exception as exc:  # noqa: BLE001
            record("page_first" if i == 0 else "page_next", time.perf_counter() - t0, False, str(exc)[:200])
        if i == 0:
            tiles(u, account["centre"], record, deadline)
    return u


def tiles(u: User, centre: tuple[float, float], record, deadline: float) -> None:
    """The map's pan and zoom: every tile layer of each view, six requests at a time."""
    lon, lat = centre
    views = [tiles_for_view(lon, lat, z) for z in VIEWS]
    views.append(tiles_for_view(lon + 0.004, lat, VIEWS[-1]))  # a pan of ~400 m east at z16
    for view in views:
        if time.perf_counter() > deadline:
            record("skipped", 0.0, False, "past the deadline")
            return
        paths = [f"/tiles/{layer}/{z}/{x}/{y}.pbf?size=512" for (z, x, y) in view for layer in TILE_LAYERS]

        def one(path: str) -> None:
            t0 = time.perf_counter()
            try:
                took, r = u.fetch(path)
                ok = r.status_code in (200, 204)
                record("tile", took, ok, None if ok else f"HTTP {r.status_code}")
                # the server's tile cache (webapp/tiles.py) says whether it made the tile or had it
                record("tile_" + (r.headers.get("X-Tile-Cache") or "none"), took, ok)
            except Exception as exc:  # noqa: BLE001
                record("tile", time.perf_counter() - t0, False, str(exc)[:200])

        with ThreadPoolExecutor(6) as pool:
            list(pool.map(one, paths))


def crowd(base: str, accounts: list[dict], password: str, pids: list[int], timeout: float, budget: float,
          log=print) -> dict:
    """All ``accounts`` at once; latencies per kind, errors, memory before and after."""
    lat: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    samples: list[str] = []
    lock = threading.Lock()

    def record(kind: str, seconds: float, ok: bool, why: str | None = None) -> None:
        with lock:
            lat[kind].append(seconds)
            if not ok:
                errors[kind] += 1
                if why and len(samples) < 10:
                    samples.append(f"{kind}: {why}")

    before, cpu0 = rss_mb(pids), cpu_s(pids)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(len(accounts)) as pool:
        users = list(pool.map(lambda a: journey(base, a, password, record, t0 + budget, timeout), accounts))
    wall = time.perf_counter() - t0
    time.sleep(2)
    after, cpu1 = rss_mb(pids), cpu_s(pids)
    served = defaultdict(int)
    for u in users:
        served[u.served_by or "-"] += 1
    for u in users:
        u.close()
    time.sleep(5)
    closed = rss_mb(pids)
    out = {"users": len(accounts), "budget_s": budget, "wall_s": round(wall, 1), "rss_before_mb": before, "rss_after_mb": after,
           "rss_per_session_mb": round((after - before) / len(accounts), 2), "rss_after_close_mb": closed,
           "app_cpu_s": round(cpu1 - cpu0, 1), "served_by": dict(served),
           "errors": dict(errors), "error_samples": samples, "kinds": {}}
    for kind, xs in lat.items():
        xs = sorted(xs)
        out["kinds"][kind] = {"n": len(xs), "p50_ms": round(1000 * statistics.median(xs), 1),
                              "p95_ms": round(1000 * xs[min(len(xs) - 1, int(0.95 * len(xs)))], 1),
                              "max_ms": round(1000 * xs[-1], 1)}
    log(f"  {len(accounts)} users, {wall:.1f} s, RSS {before} → {after} MB ({closed} MB once closed), "
        f"app CPU {cpu1 - cpu0:.0f} s, served by {dict(served)}, errors {dict(errors) or 0}")
    for kind, k in out["kinds"].items():
        log(f"    {kind:<11} n={k['n']:<5} p50 {k['p50_ms']:>8.1f} ms  p95 {k['p95_ms']:>8.1f} ms  max {k['max_ms']:>8.1f} ms")
    return out


def sequential(base: str, accounts: list[dict], password: str, pids: list[int], timeout: float, log=print) -> dict:
    """The baseline: the same journeys, one user at a time."""
    lat: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)

    def record(kind: str, seconds: float, ok: bool, why: str | None = None) -> None:
        lat[kind].append(seconds)
        if not ok:
            errors[kind] += 1

    before, cpu0 = rss_mb(pids), cpu_s(pids)
    t0 = time.perf_counter()
    users = [journey(base, a, password, record, t0 + 3600, timeout) for a in accounts]
    wall = time.perf_counter() - t0
    after, cpu1 = rss_mb(pids), cpu_s(pids)
    for u in users:
        u.close()
    out = {"users": len(accounts), "one_at_a_time": True, "wall_s": round(wall, 1), "rss_before_mb": before,
           "rss_after_mb": after, "rss_per_session_mb": round((after - before) / len(accounts), 2),
           "app_cpu_s": round(cpu1 - cpu0, 1),
           "errors": dict(errors), "kinds": {}}
    for kind, xs in lat.items():
        xs = sorted(xs)
        out["kinds"][kind] = {"n": len(xs), "p50_ms": round(1000 * statistics.median(xs), 1),
                              "p95_ms": round(1000 * xs[min(len(xs) - 1, int(0.95 * len(xs)))], 1),
                              "max_ms": round(1000 * xs[-1], 1)}
    log(f"  {len(accounts)} users one at a time, {wall:.1f} s, RSS {before} → {after} MB, app CPU {cpu1 - cpu0:.0f} s, "
        f"errors {dict(errors) or 0}")
    for kind, k in out["kinds"].items():
        log(f"    {kind:<11} n={k['n']:<5} p50 {k['p50_ms']:>8.1f} ms  p95 {k['p95_ms']:>8.1f} ms  max {k['max_ms']:>8.1f} ms")
    return out


def history_rows(result: dict) -> list[list]:
    """One line per crowd size: the landing screen's p50 (seconds) with one process (baseline) and
    behind the proxy (ours), their ratio, the app processes' RSS after the crowd, no errors in either."""
    rows = []
    cfgs = result["configs"]
    for n in sorted({int(k.split("-")[1]) for k in cfgs}):
        one, multi = cfgs.get(f"one-{n}"), cfgs.get(f"multi-{n}")
        b = round(one["kinds"]["page_first"]["p50_ms"] / 1000, 3) if one and "page_first" in one["kinds"] else None
        o = round(multi["kinds"]["page_first"]["p50_ms"] / 1000, 3) if multi and "page_first" in multi["kinds"] else None
        rows.append([result["date"], f"load_{n}users", result["commit"], result["buildings"], n,
                     b if b is not None else "", o if o is not None else "", round(b / o, 2) if b and o else "",
                     one["rss_after_mb"] if one else "", multi["rss_after_mb"] if multi else "",
                     all(not c["errors"] for c in (one, multi) if c)])
    return rows


def main(argv: list[str] | None = None) -> dict | None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--setup", action="store_true", help="empty the bench database and load the city, then stop")
    ap.add_argument("--gpkg", type=Path, help="a bench/scale.py GeoPackage for --setup (else one is generated)")
    ap.add_argument("--buildings", type=int, default=100_000)
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--crowds", type=int, nargs="+", default=[10, 50], help="crowd sizes (the last is --users)")
    ap.add_argument("--baseline-users", type=int, default=3, help="users run one at a time for the baseline")
    ap.add_argument("--apps", type=int, default=2, help="app processes behind the proxy")
    ap.add_argument("--timeout", type=float, default=180, help="per request, seconds")
    ap.add_argument("--budget", type=float, default=900, help="seconds for the crowd: later steps are skipped")
    ap.add_argument("--only", choices=("one", "multi"), help="one configuration only")
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--allow-any-db", action="store_true")
    a = ap.parse_args(argv)
    db = check_database(a.allow_any_db, "wangge_load_bench")
    if a.setup:
        setup(a.gpkg, a.buildings)
        return None
    from sqlalchemy import text

    with owner_engine().connect() as c:
        n_buildings = c.execute(text("SELECT count(*) FROM buildings")).scalar_one()
    password = secrets.token_urlsafe(12)
    accounts = make_users(a.users, password)
    # interleave the roles, so that every stretch of the crowd holds each kind of user
    by_role = defaultdict(list)
    for acc in accounts:
        by_role[acc["role"]].append(acc)
    mixed = []
    while any(by_role.values()):
        for r in list(by_role):
            if by_role[r]:
                mixed.append(by_role[r].pop(0))
    result = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "commit": commit(["bench", "webapp", "ui", "gis", "deploy"]),
              "database": db, "buildings": int(n_buildings), "users": a.users, "apps": a.apps, "screens": SCREENS,
              "tile_layers": TILE_LAYERS, "views": VIEWS, "cpu_count": os.cpu_count(),
              "load_before": os.getloadavg()[0], "configs": {}}
    log_dir = ROOT / "bench" / "results" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    baseline = mixed[: a.baseline_users]
    crowds = sorted({min(n, a.users) for n in a.crowds} | {a.users})
    if a.only in (None, "one"):
        print("one Streamlit process, straight to PostgreSQL")
        srv = OneProcess(log_dir)
        try:
            result["configs"]["one-1"] = sequential(srv.base, baseline, password, srv.pids(), a.timeout)
            for n in crowds:
                result["configs"][f"one-{n}"] = crowd(srv.base, mixed[:n], password, srv.pids(), a.timeout, a.budget)
        finally:
            srv.stop()
    if a.only in (None, "multi"):
        print(f"{a.apps} Streamlit processes behind HAProxy (sticky), PgBouncer in transaction mode")
        with tempfile.TemporaryDirectory(prefix="wangge-multi-") as run_dir:
            os.chmod(run_dir, 0o755)
            srv = Multi(a.apps, Path(run_dir))
            try:
                result["configs"]["multi-1"] = sequential(srv.base, baseline, password, srv.pids(), a.timeout)
                for n in crowds:
                    result["configs"][f"multi-{n}"] = crowd(srv.base, mixed[:n], password, srv.pids(), a.timeout, a.budget)
            finally:
                srv.stop()
    result["load_after"] = os.getloadavg()[0]
    if not a.no_record:
        path = common.save("load", result, history_rows(result))
        print(f"written: {path}")
    return result


if __name__ == "__main__":
    main()
