"""``wangge site`` (run a siting model, store it as a scenario) and ``wangge scenario
list|compare|export|map|delete`` (the stored runs)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from analysis.siting import MODELS
from analysis.siting_scenarios import compare, delete, export, list_scenarios, map_figure, run
from cli.common import JsonOpt, print_json, print_table
from gis.db import transaction
from gis.frames import records

scenario_app = typer.Typer(help="选址方案 / siting scenarios: list, compare, export, map", no_args_is_help=True)
Ids = Annotated[list[int], typer.Argument(help="scenario ids")]


def _pct(v) -> str:
    return "—" if v is None else f"{100 * float(v):.1f}%"


def _m(v) -> str:
    return "—" if v is None else f"{float(v):.0f} m"


def site_cmd(
    category: Annotated[str, typer.Option("--category", help="facility category code, e.g. community_service_station")],
    model: Annotated[str, typer.Option("--model", help="lscp (fewest sites covering all), mclp (best p sites), pmedian (least walking)")],
    radius: Annotated[float | None, typer.Option("--radius", help="service radius in metres (default: the category's, standards §4)")] = None,
    p: Annotated[int | None, typer.Option("-p", help="number of new sites (mclp, pmedian)")] = None,
    candidates: Annotated[str | None, typer.Option("--candidates", help="FILE of points/parcels, or roads[:SPACING], buildings:use=public, buildings:ID,ID (default roads:50)")] = None,
    time_limit: Annotated[float, typer.Option("--time-limit", help="seconds for the solver")] = 60.0,
    cutoff: Annotated[float | None, typer.Option("--cutoff", help="p-median: farthest walk a home may be assigned (default: the radius)")] = None,
    weight: Annotated[str, typer.Option("--weight", help="households, or a group column such as elderly_65")] = "households",
    crs: Annotated[str | None, typer.Option("--crs", help="CRS of a CSV/Excel candidate file (EPSG:4326, gcj02 …)")] = None,
    capacitated: Annotated[bool, typer.Option("--capacitated", help="sites have capacities (file column capacity, facilities.capacity, --capacity)")] = False,
    capacity: Annotated[float | None, typer.Option("--capacity", help="capacity of candidates that have none")] = None,
    split: Annotated[bool, typer.Option("--split", help="capacitated: a building's households may go to several sites")] = False,
    penalty: Annotated[float | None, typer.Option("--penalty", help="p-median: metres charged per household left unserved (default: serve the most first)")] = None,
    name: Annotated[str | None, typer.Option("--name", help="scenario name")] = None,
    save: Annotated[bool, typer.Option("--save/--no-save", help="store the run as a scenario")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Choose sites for a facility category: the sites, coverage, objective, solver status and gap."""
    if model not in MODELS:
        raise typer.BadParameter(f"--model must be one of {', '.join(MODELS)}")
    with transaction(owner=True) as conn:
        result, sid = run(conn, category, model, radius=radius, cutoff=cutoff, p=p, candidates=candidates, crs=crs,
                          weight=weight, capacitated=capacitated, candidate_capacity=capacity, time_limit=time_limit,
                          unserved_penalty=penalty, split_demand=split, name=name, save_run=save)
    if as_json:
        print_json({"ok": result.has_solution, "scenario_id": sid, **result.to_dict()})
        if not result.has_solution:
            raise typer.Exit(1)
        return
    s = result.summary()
    head = (f"{model} · {category} · 半径 radius {result.radius:.0f} m" + (f" · p={result.p}" if result.p is not None else "")
            + (f" · cut-off {result.cutoff:.0f} m" if result.cutoff != result.radius else "") + (" · capacitated" if capacitated else ""))
    typer.echo(head)
    gap = "0" if result.gap == 0 else ("—" if result.gap is None else f"{result.gap:.4%}")
    typer.echo(f"状态 status: {result.status}   差距 gap: {gap}   目标 objective: {s['objective']}   "
               f"({s['solve_s']:.2f} s solve, time limit {time_limit:g} s)")
    typer.echo(f"覆盖 coverage: {result.covered_weight:.0f} / {result.total_weight:.0f} = {_pct(result.coverage_share)} "
               f"(现状 before: {_pct(s['covered_before_share'])})   平均 mean walk {_m(result.mean_distance_m)}, "
               f"P95 {_m(result.p95_distance_m)}")
    if len(result.unreachable):
        typer.echo(f"不可达 unreachable: {len(result.unreachable)} buildings, {result.unreachable['weight'].sum():.0f} "
                   f"(no site within {result.cutoff:.0f} m)")
    if len(result.unserved):
        typer.echo(f"未服务 unserved: {len(result.unserved)} buildings, {result.unserved['weight'].sum():.0f}")
    new = result.new_sites
    print_table(f"新增选址 new sites ({len(new)})", ["#", "候选点 site", "名称 name", "经度 lon", "纬度 lat", "服务户数 assigned", "住宅 homes"],
                [[i + 1, r.site_id, r.name, f"{r.lon:.6f}", f"{r.lat:.6f}", f"{r.assigned_weight:.0f}", r.demand_points]
                 for i, r in enumerate(new.itertuples())] if "lon" in new else
                [[i + 1, r.site_id, r.name, "", "", f"{r.assigned_weight:.0f}", r.demand_points] for i, r in enumerate(new.itertuples())])
    w = result.worst_grids.head(5)
    if len(w):
        print_table("服务最差的网格 worst-served grids", ["网格 grid", "户数", "覆盖", "覆盖率", "平均步行"],
                    [[r.group, f"{r.weight:.0f}", f"{r.covered:.0f}", _pct(r.covered_share), _m(None if r.mean_distance_m != r.mean_distance_m else r.mean_distance_m)]
                     for r in w.itertuples()])
    for note in result.notes:
        typer.echo(f"  ! {note}")
    if sid is not None:
        typer.echo(f"方案 scenario #{sid} saved (wangge scenario compare {sid} …)")
    if not result.has_solution:
        raise typer.Exit(1)


@scenario_app.command("list")
def scenario_list(
    category: Annotated[str | None, typer.Option("--category")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Stored siting runs, newest first."""
    with transaction(owner=True) as conn:
        frame = list_scenarios(conn, category)
    if as_json:
        print_json(records(frame))
        return
    print_table("选址方案 siting scenarios", ["#", "名称", "类别", "模型", "半径", "p", "状态", "新增", "覆盖率", "平均", "P95"],
                [[r.id, r.name, r.category, r.model, f"{r.radius_m:.0f}", "" if r.p != r.p or r.p is None else int(r.p), r.status,
                  r.new_sites, _pct(r.coverage_share), _m(r.mean_distance_m), _m(r.p95_distance_m)] for r in frame.itertuples()])


@scenario_app.command("compare")
def scenario_compare(ids: Ids, as_json: JsonOpt = False) -> None:
    """Two or more scenarios side by side."""
    try:
        with transaction(owner=True) as conn:
            frame = compare(conn, ids)
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0])) from None
    if as_json:
        print_json({col: dict(zip(frame.index, frame[col].tolist())) for col in frame.columns})
        return
    print_table("方案对比 scenario comparison", [""] + list(frame.columns),
                [[idx] + [_fmt(v) for v in row] for idx, row in zip(frame.index, frame.itertuples(index=False))])


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1 else f"{v:,.1f}"
    return str(v)


@scenario_app.command("export")
def scenario_export(
    ids: Ids,
    file: Annotated[Path, typer.Option("--out", "-o", help=".csv (comparison), .xlsx (comparison, sites, worst grids) or .geojson (sites)")],
    as_json: JsonOpt = False,
) -> None:
    """Export scenarios for a report or a GIS."""
    try:
        with transaction(owner=True) as conn:
            path = export(conn, ids, file)
    except (KeyError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None
    print_json({"ok": True, "file": str(path)}) if as_json else typer.echo(f"→ {path}")


@scenario_app.command("map")
def scenario_map(
    ids: Ids,
    file: Annotated[Path, typer.Option("--out", "-o", help=".png or .pdf")],
    title: Annotated[str | None, typer.Option("--title")] = None,
    before: Annotated[bool, typer.Option("--before", help="first a panel with the existing sites alone")] = False,
    as_json: JsonOpt = False,
) -> None:
    """A map of one or more scenarios side by side (PNG or PDF), for a planner's report."""
    if file.suffix.lower() not in (".png", ".pdf"):
        raise typer.BadParameter("--out must end in .png or .pdf")
    try:
        with transaction(owner=True) as conn:
            path = map_figure(conn, ids, file, title, before=before)
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0])) from None
    print_json({"ok": True, "file": str(path)}) if as_json else typer.echo(f"→ {path}")


@scenario_app.command("delete")
def scenario_delete(ids: Ids) -> None:
    """Delete stored scenarios."""
    with transaction(owner=True) as conn:
        for sid in ids:
            delete(conn, sid)
    typer.echo(f"deleted {len(ids)}")


