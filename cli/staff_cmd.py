"""``wangge cadres|assign|gaps``: the cadre registry, assignments and staffing gaps."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from analysis.staffing import gaps, summary
from cli.common import Community, JsonOpt, out, print_json
from cli.import_cmd import import_cmd
from gis.db import transaction
from grid.assign import assign, staff, target, unassign
from grid.staffing_plan import accept as apply_plan, propose

cadres_app = typer.Typer(help="干部 / cadre registry", no_args_is_help=True)
assign_app = typer.Typer(help="分配 / assign cadres to grids", no_args_is_help=True)
gaps_app = typer.Typer(help="缺口 / gaps", no_args_is_help=True)


@cadres_app.command("import")
def cadres_import(
    file: Annotated[Path, typer.Argument(help="CSV or Excel: 编号/姓名/角色/社区编码/电话/经度/纬度")],
    crs: Annotated[str, typer.Option(help="CRS of the coordinates (EPSG:4326, gcj02, bd09 …)")] = "EPSG:4326",
    replace: Annotated[bool, typer.Option("--replace")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import cadres, all or nothing (same validation as `wangge import cadres`)."""
    import_cmd("cadres", file, crs=crs, map_=None, encoding=None, source_layer=None, district=None,
               skip_invalid=False, repair=False, replace=replace, as_json=as_json)


def _change(op, grid: str, cadre: str, role: str | None, expect: int | None, as_json: bool) -> None:
    with transaction(owner=True) as conn:
        kwargs = {"role": role} if role else {}
        version = op(conn, cadre, grid_code=grid, expected_version=expect, actor="cli", **kwargs)
        now = staff(conn, target(conn, grid))
    if as_json:
        print_json({"ok": True, "grid": grid, "version": version, "staff": now})
    else:
        typer.echo(f"{grid} (version {version}): " + ("、".join(f"{s['name']}[{s['role']}]" for s in now) or "nobody"))


@assign_app.command("set")
def assign_set(
    grid: Annotated[str, typer.Argument(help="grid code")],
    cadre: Annotated[str, typer.Argument(help="cadre number")],
    role: Annotated[str | None, typer.Option(help="role on this grid (default: the cadre's role)")] = None,
    expect_version: Annotated[int | None, typer.Option("--expect-version", help="fail with a conflict if the grid's staff changed since this version")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Assign a cadre to a grid (history and audit kept)."""
    _change(assign, grid, cadre, role, expect_version, as_json)


@assign_app.command("remove")
def assign_remove(
    grid: Annotated[str, typer.Argument(help="grid code")],
    cadre: Annotated[str, typer.Argument(help="cadre number")],
    expect_version: Annotated[int | None, typer.Option("--expect-version")] = None,
    as_json: JsonOpt = False,
) -> None:
    """End a cadre's assignment to a grid (it stays in history)."""
    _change(unassign, grid, cadre, None, expect_version, as_json)


@assign_app.command("propose")
def assign_propose(
    community: Community = None,
    time_limit: Annotated[float, typer.Option("--time-limit", help="seconds for the solver")] = 30.0,
    accept: Annotated[bool, typer.Option("--accept", help="apply the whole proposal")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Propose assignments that satisfy the staffing rules (exact MIP with HiGHS), with reasons."""
    with transaction(owner=True) as conn:
        plan = propose(conn, community, time_limit)
        if accept:
            apply_plan(conn, plan, actor="cli")
    if as_json:
        print_json({**plan.to_dict(), "accepted": accept})
        return
    table = Table("操作", "干部", "姓名", "网格", "距离 m", "之后户数", "理由 reason", title=f"分配方案 proposal — {plan.status}")
    for c in plan.changes:
        table.add_row("增加 add" if c.action == "add" else "撤销 remove", c.cadre_no, c.name, c.grid_code,
                      "" if c.distance_m is None else f"{c.distance_m:.0f}", str(c.households_after), c.fixes)
    out.print(table)
    for u in plan.unmet:
        typer.echo(f"  ! {u}")
    typer.echo("accepted" if accept else "not applied: run with --accept, or accept in the dashboard")


@gaps_app.command("staffing")
def gaps_staffing(community: Community = None, as_json: JsonOpt = False) -> None:
    """Grids without a full-time worker, overloaded or distant workers, idle workers, ratio shortfalls."""
    with transaction(owner=True) as conn:
        gap, per = gaps(conn, community), summary(conn, community)
    if as_json:
        print_json({"gaps": gap.to_dict("records"), "summary": per.to_dict("records")})
        return
    table = Table("规则 rule", "网格 grid", "干部", "说明", title="人员缺口 staffing gaps")
    for r in gap.astype(object).where(gap.notna(), "").itertuples():
        table.add_row(r.rule, str(r.grid_code), str(r.cadre_no), r.detail)
    out.print(table)
    typer.echo(per.to_string(index=False))
