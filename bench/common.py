"""What every benchmark shares: where results go, the history file's columns, the guard
that keeps a benchmark (which empties every layer) off a database not meant for it, the
commit a figure belongs to, and peak memory.

Why one place: each benchmark writes a row to the same ``results/history.csv``; its
columns, and the rule that a figure names the commit (``+dirty`` when the code it
measures was edited), must not drift apart between benchmarks.
"""
from __future__ import annotations

import csv
import json
import resource
import subprocess
from collections.abc import Iterable
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = RESULTS.parents[1]
HISTORY_FIELDS = ("date", "benchmark", "commit", "rows", "repeat", "baseline_s", "ours_s", "ratio",
                  "baseline_peak_mb", "ours_peak_mb", "rows_equal")
LAYER_TABLES = ("assignments, cadres, building_groups, buildings, cameras, facilities, roads, grids, communities, "
                "subdistricts, districts, audit_log")


def owner_engine():
    from gis.db import owner_engine as engine

    return engine()


def check_database(allow_any: bool, suggestion: str) -> str:
    """The database's name, unless it is not a benchmark database (``bench`` in its name)."""
    name = owner_engine().url.database or ""
    if "bench" not in name and not allow_any:
        raise SystemExit(f"the benchmark empties every layer: refusing database {name!r} "
                         f"(use WANGGE_DB_NAME={suggestion}, or --allow-any-db)")
    return name


def commit(paths: Iterable[str]) -> str:
    """Short HEAD, ``+dirty`` when ``paths`` (the code measured) have uncommitted edits."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             check=False).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=ROOT,
                               capture_output=True, text=True, check=False).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except OSError:
        return "unknown"


def peak_mb() -> float:
    """This process's peak resident memory so far, in MB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def save(name: str, result: dict, history_rows: Iterable[list]) -> Path:
    """``results/<name>.json`` (the latest run, whole) and rows appended to ``history.csv``."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n")
    history = RESULTS / "history.csv"
    new = not history.exists()
    with history.open("a", newline="") as fh:
        w = csv.writer(fh)
        if new:
            w.writerow(HISTORY_FIELDS)
        w.writerows(history_rows)
    return path


def signed_in(username: str, role: str, label: str) -> str:
    """A session id for ``username`` (created with ``role`` if missing): tiles and pages answer only
    signed-in users. A fresh random password each run, so there is nothing to keep."""
    import secrets

    from gis.db import transaction
    from gis.scope import SYSTEM, use_scope
    from layers import users as auth
    from webapp import sessions

    password = secrets.token_urlsafe(16)
    with use_scope(SYSTEM), transaction() as conn:
        if auth.get_user(conn, username) is None:
            auth.create_user(conn, username, password, role, display_name="benchmark")
        else:
            auth.set_password(conn, username, password)
        user = auth.authenticate(conn, username, password)
        return sessions.open_session(conn, user.id, label)
