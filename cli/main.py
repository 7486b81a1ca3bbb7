"""The ``wangge`` command. Every command honours DATABASE_URL and prints JSON with --json.

Exit codes: 0 done, 1 input rejected (the report says why, nothing was written),
2 usage error, 3 the database (or another service) cannot be reached, 4 a conflict (someone
else changed the grid's staff since the version named). Errors of the project's one family
(``gis.errors``) are turned into these codes in one place, ``main()``.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import DBAPIError

from cli.common import JsonOpt, console, emit, fail, progress
from cli.coverage_cmd import compliance_app, coverage_app
from cli.events_cmd import apikey_app, events_app
from cli.grid_cmd import app as grid_app
from cli.import_cmd import human_report, import_cmd
from cli.people_cmd import patrol_app, people_app, visits_app
from cli.site_cmd import scenario_app, site_cmd
from cli.staff_cmd import assign_app, cadres_app, gaps_app
from cli.user_cmd import audit_app, user_app
from gis.db import classify_error, transaction
from gis.errors import ConflictError, Unavailable, WanggeError
from gis.migrate import upgrade
from gis.scope import SYSTEM, set_scope
from gis.settings import get_settings
from layers import demo
from layers.export import export_layer, status
from layers.importer import LAYERS, import_osm, layer_spec

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
app.command("import")(import_cmd)
app.command("site")(site_cmd)
app.add_typer(scenario_app, name="scenario")
app.add_typer(user_app, name="user")
app.add_typer(audit_app, name="audit")
app.add_typer(events_app, name="events")
app.add_typer(apikey_app, name="apikey")
app.add_typer(people_app, name="people")
app.add_typer(visits_app, name="visits")
app.add_typer(patrol_app, name="patrol")


@app.callback()
def _act_as_system() -> None:
    """The command line acts as the system (gis/scope.py): an operator at the server with the
    owner's credentials; audit rows name ``system`` unless a command says otherwise."""
    set_scope(SYSTEM)


@db_app.command("up")
def db_up() -> None:
    """Create or migrate the schema to the newest revision (as the owner role)."""
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
    if plan.triggers_dropped or plan.building_stats_view:
        typer.echo(f"summary triggers dropped (they cannot run on shards): {', '.join(plan.triggers_dropped) or '—'}; "
                   "building_stats is a view over buildings; tiles of buildings, grids, communities and roads are not cached")


@app.command("import-osm")
def import_osm_cmd(
    file: Annotated[Path, typer.Argument(help=".osm.pbf extract")],
    subdistrict: Annotated[str | None, typer.Option(help="9-digit sub-district code the wards become communities of")] = None,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid")] = False,
    repair: Annotated[bool, typer.Option("--repair")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import buildings, roads, facilities, cameras and ward boundaries from OpenStreetMap."""
    bar, tick = progress(5, "OSM")
    with bar:
        reports = import_osm(file, subdistrict_code=subdistrict, skip_invalid=skip_invalid, repair=repair, progress=tick)
    emit({"ok": True, "layers": [r.to_dict() for r in reports]}, as_json, "\n".join(human_report(r) for r in reports))


@app.command("export")
def export_cmd(
    layer: Annotated[str, typer.Argument()],
    file: Annotated[Path, typer.Argument(help=".geojson, .gpkg or .csv")],
    as_json: JsonOpt = False,
) -> None:
    """Export a layer (current rows) to a file."""
    try:
        layer_spec(layer)
    except (KeyError, ValueError):
        fail(f"未知图层 / unknown layer {layer!r}; layers: {', '.join(LAYERS)}")
    with transaction(owner=True) as conn:
        n = export_layer(conn, layer, file)
    emit({"ok": True, "layer": layer, "file": str(file), "rows": n}, as_json, f"{n} rows → {file}")


@app.command("status")
def status_cmd(as_json: JsonOpt = False) -> None:
    """Rows per layer and the last import of each."""
    with transaction(owner=True) as conn:
        rows = status(conn)
    if as_json:
        emit(rows, True)
        return
    table = Table("图层 layer", "行数 rows", "最近导入 last import")
    for r in rows:
        table.add_row(f"{r['zh']} {r['layer']}", str(r["rows"]), r["last_import"] or "—")
    Console().print(table)
    from layers.buildings import plausibility_text

    for r in rows:
        if r.get("households") and r["rows"]:
            typer.echo(f"户数 households {r['households']['households']:,} · {plausibility_text(r['households'])}")


@demo_app.command("load")
def demo_load(
    force: Annotated[bool, typer.Option("--force", help="replace whatever the database holds")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Load the demo sub-district (skipped when data is already there)."""
    bar, tick = progress(len(demo.STEPS), "demo")
    with bar:
        reports = demo.load(force=force, progress=tick)
    if reports is None:
        emit({"ok": True, "loaded": False, "reason": "data already present"}, as_json, "demo already loaded (use --force to reload)")
        return
    emit({"ok": True, "loaded": True, "layers": [r.to_dict() for r in reports]}, as_json,
         "\n".join(f"{r.layer}: {r.rows}" for r in reports))


@demo_app.command("accounts")
def demo_accounts(as_json: JsonOpt = False) -> None:
    """Create one dashboard account per role for the demo (password: WANGGE_DEMO_PASSWORD)."""
    password = get_settings().demo_password
    if not password:
        fail_text = "WANGGE_DEMO_PASSWORD is not set (scripts/bootstrap.sh writes one into .env)"
        emit({"ok": False, "error": fail_text}, as_json, f"[red]{fail_text}[/red]")
        raise typer.Exit(1)
    with transaction(owner=True) as conn:
        if not demo.is_loaded(conn):
            msg = "演示数据未加载：先运行 wangge demo load / the demo is not loaded: run `wangge demo load` first"
            emit({"ok": False, "error": msg}, as_json, msg)
            raise typer.Exit(1)
        rows = demo.ensure_accounts(conn, password)
    emit({"ok": True, "accounts": rows}, as_json,
         "演示账号 / demo accounts — 密码 / password: WANGGE_DEMO_PASSWORD in .env\n"
         + "\n".join(f"  {r['username']:<16} {r['role']}{'' if r['created'] else ' (exists)'}" for r in rows))


# The one map from the error family to exit codes (most specific class first).
EXIT_CODES: tuple[tuple[type[WanggeError], int], ...] = ((ConflictError, 4), (Unavailable, 3), (WanggeError, 1))
EXIT_BUSY = 5  # another change held what this one needed (deadlock, serialization): nothing written, try again
BUSY_RETRIES = 3


def exit_code(exc: WanggeError) -> int:
    return next(code for cls, code in EXIT_CODES if isinstance(exc, cls))


def main() -> None:
    """Run the command. Errors of the project's family become their exit code here. A deadlock
    or serialization failure (another import or edit at the same moment) rolls the whole
    transaction back, so the command is run again, at most ``BUSY_RETRIES`` times with a short
    pause, and then reported as busy (exit 5), not as an unreachable database. A server
    upgraded under its running cluster is named as such."""
    for attempt in range(BUSY_RETRIES + 1):
        try:
            app()
            return
        except WanggeError as exc:
            if "--json" in sys.argv[1:]:
                emit(exc.to_dict(), True)
            else:
                console.print(f"[red]{escape(exc.human())}[/red]", markup=True, highlight=False)  # "x.osm.pbf [buildings]" is no markup
            raise SystemExit(exit_code(exc)) from None
        except DBAPIError as exc:
            kind = classify_error(exc)
            if kind == "busy" and attempt < BUSY_RETRIES:
                time.sleep(0.2 * 2 ** attempt)
                continue
            first = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
            if kind == "busy":
                console.print("[red]数据库正忙（与其他修改冲突），未写入任何内容，请重试 / the database is busy (a concurrent change "
                              f"conflicted); nothing was written, try again: {first}[/red]")
                raise SystemExit(EXIT_BUSY) from None
            if kind == "server_stale":
                console.print("[red]数据库服务器程序已升级但集群未重启 / the PostgreSQL server binaries were upgraded under the "
                              f"running cluster: {first}[/red]\nRestart the cluster (`scripts/bootstrap.sh db` does it).")
                raise SystemExit(3) from None
            if kind == "unreachable":
                console.print(f"[red]数据库无法连接 / cannot reach the database: {first}[/red]\n"
                              "Check DATABASE_URL (or run `make demo` to start the local PostgreSQL).")
                raise SystemExit(3) from None
            raise


if __name__ == "__main__":
    main()
