"""What the event and register issues add to a generated city already in a database: open
cases at random points of its grids (``bench_events.open_cases_in``) and persons spread over
its buildings (``bench_people.load_people``), so that the 1,000,000-building city can carry
issue 18's 1,000,000 cases and 1,000,000 persons for the dashboard and Citus benchmarks.

    WANGGE_DB_NAME=wangge_x_bench python -m bench.city_extras --cases 1000000 --persons 1000000

The city comes first (``bench.bench_import --sizes 1000000`` leaves none behind; load it with
``wangge import`` of each layer of /work/wt/data/city_1m.gpkg, or ``bench.bench_coverage``'s
``load_city``). Refuses a database without ``bench`` in its name (it replaces the cases and
persons there).
"""
from __future__ import annotations

import argparse
import time
from datetime import date

from bench.common import check_database, owner_engine


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.city_extras", description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=0, help="open cases to add")
    ap.add_argument("--persons", type=int, default=0, help="persons to register (replaces the register)")
    ap.add_argument("--visits-per-person", type=int, default=0)
    ap.add_argument("--allow-any-db", action="store_true")
    args = ap.parse_args(argv)
    check_database(args.allow_any_db, "wangge_city_bench")
    out: dict = {}
    if args.cases:
        from bench.bench_events import open_cases_in

        t = time.perf_counter()
        with owner_engine().begin() as conn:
            open_cases_in(conn, args.cases)
        out["cases_s"] = round(time.perf_counter() - t, 1)
    if args.persons:
        from bench.bench_people import load_people

        out["persons"] = load_people(args.persons, args.visits_per_person, 0, date.today())
    print(out)
    return out


if __name__ == "__main__":
    main()
