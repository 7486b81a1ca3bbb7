"""What every ``wangge`` sub-command shares: option types, JSON output, tables."""
from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
Community = Annotated[str | None, typer.Option("--community", help="12-digit community code (default: all)")]
out = Console() if sys.stdout.isatty() else Console(width=160)  # files and pipes get whole lines


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
