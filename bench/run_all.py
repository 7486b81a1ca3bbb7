"""Run every benchmark in turn (``make bench``), each writing its figures to bench/results.

    WANGGE_DB_NAME=wangge_bench python -m bench.run_all [--only import map coverage] [--quick]

``--quick`` runs fewer repetitions (and the map benchmark at one size) for a smoke check;
its figures are not recorded. A benchmark that fails does not stop the others; the exit
status says whether all of them ran.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback

# name -> (module, arguments for a full run, arguments for a quick one)
BENCHMARKS: dict[str, tuple[str, list[str], list[str]]] = {
    "import": ("bench.bench_import", [], ["--repeat", "1", "--no-record"]),
    "map": ("bench.bench_map", [], ["--sizes", "10000", "--repeat", "1", "--no-dashboard", "--no-record"]),
    "coverage": ("bench.bench_coverage", [], ["--scale", "0.1", "--no-record"]),
    "siting": ("bench.bench_siting", [], ["--skip-baseline", "--no-record"]),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run just these")
    ap.add_argument("--quick", action="store_true", help="one repetition, nothing recorded")
    args = ap.parse_args(argv)
    failed: list[str] = []
    for name in args.only or list(BENCHMARKS):
        module, full, quick = BENCHMARKS[name]
        print(f"=== {name} ({module}) ===", flush=True)
        started = time.perf_counter()
        try:
            importlib.import_module(module).main(quick if args.quick else full)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - report and go on with the next benchmark
            failed.append(name)
            traceback.print_exception(exc)
        print(f"=== {name}: {'FAILED' if name in failed else 'done'} in {time.perf_counter() - started:.0f} s ===", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
