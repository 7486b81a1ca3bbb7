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


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def print_table(title: str, columns: list[str], rows: list[list]) -> None:
    table = Table(*columns, title=title)
    for r in rows:
        table.add_row(*("" if v is None else str(v) for v in r))
    out.print(table)
