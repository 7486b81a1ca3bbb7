"""What every ``wangge`` sub-command shares: option types, JSON output, tables."""
from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
def known_community(value: str | None) -> str | None:
    """``--community``: an existing community's code, else exit 1 with what exists (issue 19: an
    unknown code ran every command as if it named the whole sub-district, or ran on and on)."""
    if value is None:
        return None
    from sqlalchemy import text

    from gis.db import transaction

    code = value.strip()
    with transaction(owner=True) as conn:
        if conn.execute(text("SELECT 1 FROM communities WHERE code = :c"), {"c": code}).first() is not None:
            return code
        known = [r[0] for r in conn.execute(text("SELECT code || ' ' || name FROM communities ORDER BY code LIMIT 20"))]
    fail(f"未知社区 / unknown community {value!r}; communities: {', '.join(known) or '(none loaded)'}")
    return None  # not reached


def fail(message: str, code: int = 1) -> None:
    """Stop a command with ``message`` (strict JSON when ``--json`` was asked for) and ``code``."""
    if "--json" in sys.argv:
        print_json({"ok": False, "error": message})
    else:
        typer.echo(message, err=True)
    raise typer.Exit(code)


Community = Annotated[str | None, typer.Option("--community", help="12-digit community code (default: all)",
                                              callback=known_community)]
out = Console() if sys.stdout.isatty() else Console(width=160)  # files and pipes get whole lines
console = Console(stderr=True)  # progress, status and errors


def strict(value: Any) -> Any:
    """The value as RFC 8259 allows it: NaN, infinities, pandas' NA/NaT become null (a strict
    parser such as JavaScript's JSON.parse rejects NaN); numpy scalars become Python ones."""
    import math

    import numpy as np
    import pandas as pd

    if isinstance(value, dict):
        return {str(k): strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [strict(v) for v in value]
    if isinstance(value, np.ndarray):
        return [strict(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, bool, int)):
        return value
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def dumps(data: Any) -> str:
    """Strict JSON text for every ``--json`` (``allow_nan=False`` proves nothing slipped through)."""
    return json.dumps(strict(data), ensure_ascii=False, indent=2, default=str, allow_nan=False)


def print_json(data: Any) -> None:
    typer.echo(dumps(data))


def print_table(title: str, columns: list[str], rows: list[list]) -> None:
    table = Table(*columns, title=title)
    for r in rows:
        table.add_row(*("" if v is None else str(v) for v in r))
    out.print(table)


def emit(data: Any, as_json: bool, human: str | None = None) -> None:
    if as_json:
        sys.stdout.write(dumps(data) + "\n")
    elif human is not None:
        typer.echo(human)


def progress(total: int, label: str) -> tuple[Progress, Any]:
    bar = Progress(TextColumn("[bold blue]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TimeElapsedColumn(), console=console, transient=True)
    task = bar.add_task(label, total=total)
    return bar, lambda name: bar.update(task, advance=1, description=f"{label}: {name}")
