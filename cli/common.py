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
Community = Annotated[str | None, typer.Option("--community", help="12-digit community code (default: all)")]
out = Console() if sys.stdout.isatty() else Console(width=160)  # files and pipes get whole lines
console = Console(stderr=True)  # progress, status and errors


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def print_table(title: str, columns: list[str], rows: list[list]) -> None:
    table = Table(*columns, title=title)
    for r in rows:
        table.add_row(*("" if v is None else str(v) for v in r))
    out.print(table)


def emit(data: Any, as_json: bool, human: str | None = None) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
    elif human is not None:
        typer.echo(human)


def progress(total: int, label: str) -> tuple[Progress, Any]:
    bar = Progress(TextColumn("[bold blue]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TimeElapsedColumn(), console=console, transient=True)
    task = bar.add_task(label, total=total)
    return bar, lambda name: bar.update(task, advance=1, description=f"{label}: {name}")
