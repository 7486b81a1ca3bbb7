"""The ``wangge`` command. Every command honours DATABASE_URL and prints JSON with --json.

Exit codes: 0 done, 1 input rejected (the report says why, nothing was written),
2 usage error.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.coverage_cmd import compliance_app, coverage_app
from cli.grid_cmd import app as grid_app
from cli.site_cmd import scenario_app, site_cmd
from cli.staff_cmd import assign_app, cadres_app, gaps_app
from cli.user_cmd import audit_app, user_app
from gis.problems import ImportFailed

app = typer.Typer(help="网格 Wangge: GIS grid management for sub-districts", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="数据库 / database schema", no_args_is_help=True)
demo_app = typer.Typer(help="演示街道 / the demo sub-district", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(grid_app, name="grid")
app.add_typer(cadres_app, name="cadres")
app.add_typer(assign_app, name="assign")
app.add_typer(gaps_app, name="gaps")
app.add_typer(coverage_app, name="coverage")
app.add_typer(compliance_app, name="compliance")
app.command("site")(site_cmd)
app.add_typer(scenario_app, name="scenario")
app.add_typer(user_app, name="user")
app.add_typer(audit_app, name="audit")
console = Console(stderr=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


@app.callback()
def _act_as_system() -> None:
    """The command line acts as the system (gis/scope.py): an operator at the server with the
    owner's credentials; audit rows name ``system`` unless a command says otherwise."""
    from gis.scope import SYSTEM, set_scope

    set_scope(SYSTEM)


def emit(data: Any, as_json: bool, human: str | None = None) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
    elif human is not None:
        typer.echo(human)


def fail(exc: ImportFailed, as_json: bool) -> None:
    if as_json:
        emit({"ok": False, "problems": [p.to_dict() for p in exc.problems]}, True)
    else:
        console.print(f"[red]{exc}[/red]")
    raise typer.Exit(1)


def _progress(total: int, label: str) -> tuple[Progress, Any]:
    bar = Progress(TextColumn("[bold blue]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TimeElapsedColumn(), console=console, transient=True)
    task = bar.add_task(label, total=total)
    return bar, lambda name: bar.update(task, advance=1, description=f"{label}: {name}")


@db_app.command("up")
def db_up() -> None:
    """Create or migrate the schema to the newest revision (as the owner role)."""
    from gis.migrate import upgrade

    upgrade()
    typer.echo("schema up to date")


@db_app.command("distribute")
def db_distribute(
    shards: Annotated[int, typer.Option(help="shards per distributed table")] = 32,
    as_json: JsonOpt = False,
) -> None:
    """On a Citus coordinator: distribute the large tables by district and replicate the small ones."""
    from gis.citus import distribute, is_citus
    from gis.db import owner_engine, transaction

    with transaction(owner=True) as conn:
        if not is_citus(conn):
            typer.echo("这个数据库没有 Citus 扩展 / this database has no citus extension: run scripts/citus.sh "
                       "(a single-node database needs no distribution)", err=True)
            raise typer.Exit(1)
    plan = distribute(owner_engine(), shard_count=shards)
    if as_json:
        emit(plan.as_dict(), True)
        return
    d = plan.as_dict()
    for kind in ("distributed", "reference", "local"):
        typer.echo(f"{kind}: {', '.join(d[kind]) or '—'}  ({d['why'][kind]})")
    if plan.skipped:
        typer.echo(f"not in this database (skipped): {', '.join(plan.skipped)}")
    if plan.foreign_keys_dropped:
        typer.echo(f"foreign keys Citus cannot keep (reference -> distributed): {', '.join(plan.foreign_keys_dropped)}")


@app.command("import")
def import_cmd(
    layer: Annotated[str, typer.Argument(help="buildings, grids, communities, cameras, facilities, roads, cadres, assignments, subdistricts (or 楼栋, 网格 …)")],
    file: Annotated[Path, typer.Argument(help="GeoJSON, GeoPackage, Shapefile, CSV or Excel")],
    crs: Annotated[str | None, typer.Option(help="source CRS: EPSG:4490, 4547, gcj02, bd09 …")] = None,
    map_: Annotated[list[str] | None, typer.Option("--map", help="SRC=DEST column mapping, repeatable")] = None,
    encoding: Annotated[str | None, typer.Option(help="text encoding if not detected (gbk, utf-8)")] = None,
    source_layer: Annotated[str | None, typer.Option("--layer", help="layer inside a GeoPackage")] = None,
    district: Annotated[str | None, typer.Option(help="6-digit district code for rows that carry none")] = None,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="import the valid rows, list the rest")] = False,
    repair: Annotated[bool, typer.Option("--repair", help="repair self-intersecting polygons (each repair is reported)")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="the file replaces the layer in its districts")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import a file into a layer, all or nothing."""
    from layers.importer import import_file

    mapping: dict[str, str] = {}
    for item in map_ or []:
        if "=" not in item:
            raise typer.BadParameter(f"--map takes SRC=DEST, got {item!r}")
        src, dest = item.split("=", 1)
        mapping[src.strip()] = dest.strip()
    try:
        with console.status(f"importing {file.name} into {layer}"):
            report = import_file(layer, file, crs=crs, mapping=mapping, encoding=encoding, source_layer=source_layer,
                                 district_code=district, skip_invalid=skip_invalid, repair=repair, replace=replace)
    except ImportFailed as exc:
        fail(exc, as_json)
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0])) from exc
    emit({"ok": True, **report.to_dict()}, as_json, _human_report(report))


def _human_report(report) -> str:
    lines = [f"{report.file} → {report.layer}: {report.rows} rows ({report.crs}, {report.seconds:.2f} s)"]
    lines += [f"  skipped: {p}" for p in report.skipped]
    lines += [f"  repaired: {p}" for p in report.repaired]
    lines += [f"  note: {n}" for n in report.notes]
    return "\n".join(lines)


@app.command("import-osm")
def import_osm_cmd(
    file: Annotated[Path, typer.Argument(help=".osm.pbf extract")],
    subdistrict: Annotated[str | None, typer.Option(help="9-digit sub-district code the wards become communities of")] = None,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid")] = False,
    repair: Annotated[bool, typer.Option("--repair")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import buildings, roads, facilities, cameras and ward boundaries from OpenStreetMap."""
    from layers.importer import import_osm

    bar, tick = _progress(5, "OSM")
    try:
        with bar:
            reports = import_osm(file, subdistrict_code=subdistrict, skip_invalid=skip_invalid, repair=repair, progress=tick)
    except ImportFailed as exc:
        fail(exc, as_json)
    emit({"ok": True, "layers": [r.to_dict() for r in reports]}, as_json, "\n".join(_human_report(r) for r in reports))


@app.command("export")
def export_cmd(
    layer: Annotated[str, typer.Argument()],
    file: Annotated[Path, typer.Argument(help=".geojson, .gpkg or .csv")],
    as_json: JsonOpt = False,
) -> None:
    """Export a layer (current rows) to a file."""
    from gis.db import transaction
    from layers.export import export_layer

    with transaction(owner=True) as conn:
        n = export_layer(conn, layer, file)
    emit({"ok": True, "layer": layer, "file": str(file), "rows": n}, as_json, f"{n} rows → {file}")


@app.command("status")
def status_cmd(as_json: JsonOpt = False) -> None:
    """Rows per layer and the last import of each."""
    from gis.db import transaction
    from layers.export import status

    with transaction(owner=True) as conn:
        rows = status(conn)
    if as_json:
        emit(rows, True)
        return
    table = Table("图层 layer", "行数 rows", "最近导入 last import")
    for r in rows:
        table.add_row(f"{r['zh']} {r['layer']}", str(r["rows"]), r["last_import"] or "—")
    Console().print(table)


@demo_app.command("load")
def demo_load(
    force: Annotated[bool, typer.Option("--force", help="replace whatever the database holds")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Load the demo sub-district (skipped when data is already there)."""
    from layers import demo

    bar, tick = _progress(len(demo.STEPS), "demo")
    try:
        with bar:
            reports = demo.load(force=force, progress=tick)
    except ImportFailed as exc:
        fail(exc, as_json)
    if reports is None:
        emit({"ok": True, "loaded": False, "reason": "data already present"}, as_json, "demo already loaded (use --force to reload)")
        return
    emit({"ok": True, "loaded": True, "layers": [r.to_dict() for r in reports]}, as_json,
         "\n".join(f"{r.layer}: {r.rows}" for r in reports))


@demo_app.command("accounts")
def demo_accounts(as_json: JsonOpt = False) -> None:
    """Create one dashboard account per role for the demo (password: WANGGE_DEMO_PASSWORD)."""
    from gis.db import transaction
    from gis.settings import get_settings
    from layers import demo

    password = get_settings().demo_password
    if not password:
        fail_text = "WANGGE_DEMO_PASSWORD is not set (scripts/bootstrap.sh writes one into .env)"
        emit({"ok": False, "error": fail_text}, as_json, f"[red]{fail_text}[/red]")
        raise typer.Exit(1)
    with transaction(owner=True) as conn:
        rows = demo.ensure_accounts(conn, password)
    emit({"ok": True, "accounts": rows}, as_json,
         "演示账号 / demo accounts — 密码 / password: WANGGE_DEMO_PASSWORD in .env\n"
         + "\n".join(f"  {r['username']:<16} {r['role']}{'' if r['created'] else ' (exists)'}" for r in rows))


def main() -> None:
    from sqlalchemy.exc import OperationalError

    try:
        app()
    except OperationalError as exc:
        console.print(f"[red]数据库无法连接 / cannot reach the database: {str(exc.orig).strip().splitlines()[0]}[/red]\n"
                      "Check DATABASE_URL (or run `make demo` to start the local PostgreSQL).")
        raise SystemExit(3) from None


if __name__ == "__main__":
    main()
