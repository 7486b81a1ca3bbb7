"""Event indicators at city scale: N cases over G grids (default 1,000,000 over 20,000),
monthly for the whole sub-district and per grid, in PostgreSQL (analysis/event_kpi.py)
against a straightforward pandas computation from the same rows in the same run; the
answers must be equal (every count, rate and hour figure, every month, both levels).

Stage times are realistic: reports spread over twelve months; filing and dispatch within
minutes (exponential); handling in working time drawn around the class's limit (some late),
measured on the working-time clock with the 2026 holidays; rework, re-dispatch, extensions
and deferrals at the rates a city sees; some cases still open. The rows are written with
COPY (the owner; the lifecycle's checks are the tests' business, not this benchmark's).

    WANGGE_DB_NAME=wangge_events_bench python -m bench.bench_events --cases 1000000 --grids 20000

Empties the layers of the database it runs on: refuses a database without ``bench`` in its name.
"""
from __future__ import annotations

import argparse
import io
import time
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import text

from bench.common import check_database, commit, owner_engine, peak_mb, save

AS_OF = datetime.fromisoformat("2026-12-06T12:00:00+08:00")
MONTHS = [f"2026-{m:02d}" for m in range(1, 13)]


def build_area(conn, grids: int) -> None:
    """One sub-district, communities of 100 grids, each grid a 100 m square (EPSG:4326)."""
    conn.execute(text("TRUNCATE event_transitions, event_photos, event_reporters, events, assignments, cadres, building_groups, "
                      "buildings, cameras, facilities, roads, grids, communities, subdistricts, districts RESTART IDENTITY CASCADE"))
    conn.execute(text("INSERT INTO districts (code, name) VALUES ('420106', '武昌区')"))
    conn.execute(text("INSERT INTO subdistricts (code, district_code, name) VALUES ('420106020', '420106', '基准城街道')"))
    coms = (grids + 99) // 100
    d = 0.001  # ~100 m
    conn.execute(text("""
        INSERT INTO communities (code, subdistrict_code, district_code, name, geom)
        SELECT '420106020' || lpad(c::text, 3, '0'), '420106020', '420106', '社区' || c,
               ST_Multi(ST_MakeEnvelope(114 + (c % 40) * 10 * :d, 30 + (c / 40) * 10 * :d,
                                        114 + ((c % 40) + 1) * 10 * :d, 30 + ((c / 40) + 1) * 10 * :d, 4326))
        FROM generate_series(0, :n - 1) c"""), {"n": coms, "d": d})
    conn.execute(text("""
        INSERT INTO grids (code, name, community_code, district_code, geom)
        SELECT '420106020' || lpad((g / 100)::text, 3, '0') || lpad((g % 100)::text, 3, '0'), '网格' || g,
               '420106020' || lpad((g / 100)::text, 3, '0'), '420106',
               ST_Multi(ST_MakeEnvelope(114 + ((g / 100) % 40) * 10 * :d + (g % 10) * :d,
                                        30 + ((g / 100) / 40) * 10 * :d + ((g % 100) / 10) * :d,
                                        114 + ((g / 100) % 40) * 10 * :d + (g % 10 + 1) * :d,
                                        30 + ((g / 100) / 40) * 10 * :d + ((g % 100) / 10 + 1) * :d, 4326))
        FROM generate_series(0, :n - 1) g"""), {"n": grids, "d": d})


def synthesise(n: int, grid_ids: np.ndarray, grid_coms: np.ndarray, seed: int = 16) -> pd.DataFrame:
    from gis.workclock import get_clock
    from layers.event_rules import get_rules

    rng = np.random.default_rng(seed)
    clock, rules = get_clock(), get_rules()
    codes = np.array(list(rules.classes))
    code = rng.choice(codes, n)
    limit = {c: rules.limit(c, "handle") for c in codes}
    urgent = rng.random(n) < 0.03
    ulimit = {c: rules.limit(c, "handle", True) for c in codes}
    lim_min = np.array([(ulimit if u else limit)[c].minutes for c, u in zip(code, urgent)])
    lim_work = np.array([(ulimit if u else limit)[c].working for c, u in zip(code, urgent)])
    pick = rng.integers(0, len(grid_ids), n)
    start = pd.Timestamp("2026-01-01T00:00:00+08:00").value
    span = pd.Timestamp("2026-12-06T00:00:00+08:00").value - start
    NS = 60_000_000_000  # one minute
    reported = start + (rng.random(n) * span).astype(np.int64)
    filed = reported + (rng.exponential(20, n) * NS).astype(np.int64)
    dispatched = filed + (rng.exponential(15, n) * NS).astype(np.int64)
    is_filed = rng.random(n) < 0.97
    is_disp = is_filed & (rng.random(n) < 0.97)
    w_disp = clock.W_array(dispatched)
    extended = is_disp & (rng.random(n) < 0.04)
    due_work = clock.at_array(w_disp + lim_min + np.where(extended, 7 * 60, 0))
    due_cal = dispatched + ((lim_min + np.where(extended, 7 * 60, 0)) * NS).astype(np.int64)
    handle_due = np.where(lim_work, due_work, due_cal)
    # handling takes a share of the limit: most on time, a tail late
    share = rng.gamma(2.0, 0.4, n)
    handled_w = clock.at_array(w_disp + share * lim_min)
    handled = np.where(lim_work, handled_w, dispatched + (share * lim_min * NS).astype(np.int64))
    asof = pd.Timestamp(AS_OF).value
    is_handled = is_disp & (handled <= asof) & (rng.random(n) < 0.97)
    deferred = is_disp & ~is_handled & (rng.random(n) < 0.2)
    verified = handled + (rng.exponential(90, n) * NS).astype(np.int64)
    closed = verified + (rng.exponential(30, n) * NS).astype(np.int64)
    is_verified = is_handled & (verified <= asof)
    is_closed = is_verified & (closed <= asof) & (rng.random(n) < 0.98)
    rework = np.where(is_handled & (rng.random(n) < 0.07), 1, 0)
    redisp = np.where(is_disp & (rng.random(n) < 0.05), 1, 0)
    status = np.select([is_closed, is_verified, is_handled, deferred, is_disp, is_filed],
                       ["closed", "verified", "handled", "deferred", "dispatched", "filed"], "reported")

    def ts(v, mask):
        return pd.to_datetime(np.where(mask, v, np.iinfo(np.int64).min), utc=True)
    wmin = np.where(is_closed, clock.W_array(handled) - w_disp, np.nan)
    return pd.DataFrame({
        "grid_id": grid_ids[pick], "community_code": grid_coms[pick], "class_code": code, "status": status, "urgent": urgent,
        "reported_at": ts(reported, np.ones(n, bool)), "filed_at": ts(filed, is_filed), "first_dispatched_at": ts(dispatched, is_disp),
        "handle_due_at": ts(handle_due, is_disp), "handled_at": ts(handled, is_handled), "verified_at": ts(verified, is_verified),
        "closed_at": ts(closed, is_closed), "dispatch_count": np.where(is_disp, 1 + redisp, 0), "redispatch_count": redisp,
        "rework_count": rework, "extension_count": extended.astype(int), "deferred": deferred,
        "handle_wmin": np.round(wmin, 6), "on_time": np.where(is_closed, handled <= handle_due, None),
        "unit_code": np.where(is_disp, [rules.cls(c).unit for c in code], None),
    })


def copy_in(conn, frame: pd.DataFrame) -> None:
    cols = ["district_code", "community_code", "grid_id", "kind", "class_code", "status", "reported_at", "reported_by", "source",
            "urgent", "unit_code", "filed_at", "first_dispatched_at", "dispatched_at", "handle_due_at", "stage_due_at", "handled_at",
            "verified_at", "closed_at", "dispatch_count", "redispatch_count", "rework_count", "extension_count", "deferred",
            "deferred_ever", "handle_wmin", "on_time"]
    out = pd.DataFrame({
        "district_code": "420106", "community_code": frame["community_code"], "grid_id": frame["grid_id"], "kind": frame["class_code"],
        "class_code": frame["class_code"], "status": frame["status"], "reported_at": frame["reported_at"], "reported_by": "bench",
        "source": "import", "urgent": frame["urgent"], "unit_code": frame["unit_code"], "filed_at": frame["filed_at"],
        "first_dispatched_at": frame["first_dispatched_at"], "dispatched_at": frame["first_dispatched_at"],
        "handle_due_at": frame["handle_due_at"],
        "stage_due_at": frame["handle_due_at"].where(frame["status"] == "dispatched"), "handled_at": frame["handled_at"],
        "verified_at": frame["verified_at"], "closed_at": frame["closed_at"], "dispatch_count": frame["dispatch_count"],
        "redispatch_count": frame["redispatch_count"], "rework_count": frame["rework_count"],
        "extension_count": frame["extension_count"], "deferred": frame["deferred"], "deferred_ever": frame["deferred"],
        "handle_wmin": frame["handle_wmin"], "on_time": frame["on_time"]})
    raw = conn.connection.dbapi_connection
    with raw.cursor() as cur:
        cur.execute("ALTER TABLE events DISABLE TRIGGER events_log_report")  # (the history needs no report rows here)
        step = 200_000
        for i in range(0, len(out), step):
            buf = io.StringIO()
            out.iloc[i:i + step].to_csv(buf, index=False, header=False, na_rep="\\N", date_format="%Y-%m-%d %H:%M:%S.%f%z")
            with cur.copy(f"COPY events ({', '.join(cols)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')") as cp:
                cp.write(buf.getvalue())
        cur.execute("ALTER TABLE events ENABLE TRIGGER events_log_report")
    conn.execute(text("ANALYZE events"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=1_000_000)
    ap.add_argument("--grids", type=int, default=20_000)
    ap.add_argument("--allow-any-db", action="store_true")
    args = ap.parse_args()
    from analysis import event_kpi as kpi
    from gis import scope as scopes
    from gis.scope import SYSTEM

    db = check_database(args.allow_any_db, "wangge_events_bench")
    t0 = time.perf_counter()
    with owner_engine().begin() as conn:
        scopes.apply(conn.connection.dbapi_connection, SYSTEM)
        build_area(conn, args.grids)
        g = conn.execute(text("SELECT id, community_code, code FROM grids ORDER BY id")).all()
    gids = np.array([r[0] for r in g])
    gcoms = np.array([r[1] for r in g])
    frame = synthesise(args.cases, gids, gcoms)
    t_synth = time.perf_counter() - t0
    with owner_engine().begin() as conn:
        scopes.apply(conn.connection.dbapi_connection, SYSTEM)
        copy_in(conn, frame)
    t_load = time.perf_counter() - t0 - t_synth
    print(f"{args.cases:,} cases over {args.grids:,} grids: synthesised in {t_synth:.1f} s, written in {t_load:.1f} s", flush=True)

    results, equal = {}, True
    with owner_engine().connect() as conn:
        scopes.apply(conn.connection.dbapi_connection, SYSTEM)
        for level in ("subdistrict", "grid"):
            t = time.perf_counter()
            sql = {m: kpi.indicators(conn, *kpi.month_range(m), level, AS_OF) for m in MONTHS}
            sql_s = time.perf_counter() - t
            t = time.perf_counter()
            key = "g.code" if level == "grid" else "left(e.community_code, 9)"
            rows = pd.read_sql(text(f"""
                SELECT {key} AS unit, e.status, e.filed_at, e.first_dispatched_at, e.handle_due_at, e.handled_at, e.closed_at,
                       e.rework_count, e.redispatch_count, e.extension_count, e.deferred, e.handle_wmin
                FROM events e LEFT JOIN grids g ON g.id = e.grid_id"""), conn)
            for c in ("filed_at", "first_dispatched_at", "handle_due_at", "handled_at", "closed_at"):
                rows[c] = pd.to_datetime(rows[c], utc=True)
            load_s = time.perf_counter() - t
            t = time.perf_counter()
            pdf = {m: kpi.compute(rows, *kpi.month_range(m), AS_OF) for m in MONTHS}
            pandas_s = time.perf_counter() - t
            same = all(sql[m].equals(pdf[m]) for m in MONTHS)
            equal &= same
            results[level] = {"sql_s": round(sql_s, 3), "pandas_load_s": round(load_s, 3), "pandas_compute_s": round(pandas_s, 3),
                              "ratio_pandas_total_over_sql": round((load_s + pandas_s) / sql_s, 2),
                              "ratio_pandas_compute_over_sql": round(pandas_s / sql_s, 2), "equal": same,
                              "units": int(sum(len(f) for f in sql.values()) / len(MONTHS))}
            print(level, results[level], flush=True)
        sub = {m: kpi.indicators(conn, *kpi.month_range(m), "subdistrict", AS_OF).iloc[0].to_dict() for m in ("2026-06", "2026-11")}
    result = {"benchmark": "events", "database": db, "commit": commit(["analysis/event_kpi.py", "bench/bench_events.py"]),
              "cases": args.cases, "grids": args.grids, "months": len(MONTHS), "as_of": AS_OF.isoformat(),
              "synthesise_s": round(t_synth, 1), "write_s": round(t_load, 1), "levels": results, "answers_equal": equal,
              "sample_subdistrict": {m: {k: v for k, v in r.items() if k in ("due", "closure_rate", "on_time_rate", "rework_rate",
                                                                              "correct_dispatch_rate", "handling_hours_avg",
                                                                              "handling_hours_p90")} for m, r in sub.items()},
              "peak_mb": peak_mb(), "tiles": "not measured: no event tile layer yet (events are drawn as GeoJSON, up to 5,000)"}
    rows_hist = [[datetime.now().date().isoformat(), f"events_{lv}", result["commit"], args.cases, len(MONTHS),
                  r["pandas_load_s"] + r["pandas_compute_s"], r["sql_s"], r["ratio_pandas_total_over_sql"], "", result["peak_mb"],
                  r["equal"]] for lv, r in results.items()]
    save("events", result, rows_hist)
    print("answers equal:", equal)
    if not equal:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
