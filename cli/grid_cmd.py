"""``wangge grid …``: checks, statistics, codes, delineation and rebalancing."""
from __future__ import annotations

from typing import Annotated

import typer

from cli.common import Community, JsonOpt, known_community, print_json, print_table
from gis.db import transaction
from grid import drafts
from grid.checks import KINDS, check, summary
from grid.delineate import propose
from grid.numbering import apply, plan
from grid.rebalance import suggest
from grid.stats import band_rule, grid_stats, rollup

app = typer.Typer(help="网格 / grids: check, stats, code, delineate, rebalance", no_args_is_help=True)


@app.command("check")
def check_cmd(community: Community = None, as_json: JsonOpt = False) -> None:
    """Overlaps, gaps, slivers, boundary crossings, multi-part and empty grids, stray buildings."""
    with transaction(owner=True) as conn:
        problems = check(conn, community)
    if as_json:
        print_json({"summary": summary(problems), "problems": problems.drop(columns="geom").to_dict("records")})
    elif problems.empty:
        typer.echo("网格无拓扑问题 / no problems found")
    else:
        print_table("网格检查 grid check", ["问题 problem", "网格 grid", "社区 community", "其他 other", "面积 m²"],
               [[KINDS[r.kind][0] + " " + KINDS[r.kind][1], r.grid_code, r.community_code, r.other, r.area_m2] for r in problems.itertuples()])
    raise typer.Exit(1 if len(problems) else 0)


@app.command("stats")
def stats_cmd(community: Community = None, as_json: JsonOpt = False) -> None:
    """Households, residents, buildings, area, density and groups per grid, community and sub-district."""
    with transaction(owner=True) as conn:
        grids = grid_stats(conn, community)
    if as_json:
        print_json({"rule": band_rule(), "grids": grids.to_dict("records"), "communities": rollup(grids).to_dict("records"),
               "subdistrict": rollup(grids, None).to_dict("records")[0] if len(grids) else {}})
        return
    print_table(f"网格统计 grid statistics — {band_rule()}", ["网格 grid", "户数", "人口", "楼栋", "面积 km²", "人/km²", "状态 standing"],
           [[r.code, r.households, r.residents, r.buildings, r.area_km2, r.residents_per_km2, r.standing] for r in grids.itertuples()])
    com = rollup(grids)
    print_table("社区 communities", ["社区", "名称", "网格", "户数", "人口", "低于", "超出"],
           [[r.community_code, r.community_name, r.grids, r.households, r.residents, r.grids_under, r.grids_over] for r in com.itertuples()])


@app.command("code")
def code_cmd(
    community: Community = None,
    layout: Annotated[str | None, typer.Option(help="14 or 15 (default: setting)")] = None,
    renumber_all: Annotated[bool, typer.Option("--renumber-all", help="re-sequence every grid, not only those without a valid code")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Give grids codes, west→east then north→south inside each community; valid codes are kept."""
    with transaction(owner=True) as conn:
        changes = plan(conn, community, layout, renumber_all)
        if not dry_run:
            apply(conn, changes, actor="cli")
    if as_json:
        print_json({"applied": not dry_run, "changes": [c.__dict__ for c in changes]})
    else:
        typer.echo(f"{len(changes)} code changes{' (dry run)' if dry_run else ''}")
        for c in changes:
            typer.echo(f"  {c.old} → {c.new}")


@app.command("delineate")
def delineate_cmd(
    community: Annotated[str, typer.Option("--community", help="12-digit community code", callback=known_community)],
    min_: Annotated[int | None, typer.Option("--min", help="households per grid, lower bound")] = None,
    max_: Annotated[int | None, typer.Option("--max", help="households per grid, upper bound")] = None,
    accept: Annotated[bool, typer.Option("--accept", help="replace the community's grids by the proposal")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Propose grids for a community from its streets, buildings and households (saved as a draft)."""
    with transaction(owner=True) as conn:
        try:
            proposal = propose(conn, community, min_, max_)
        except KeyError as exc:
            raise typer.BadParameter(str(exc.args[0])) from exc
        draft_id = drafts.save(conn, proposal, actor="cli")
        accepted = drafts.accept(conn, draft_id, actor="cli").to_dict() if accept else None
    if as_json:
        print_json({"draft_id": draft_id, **proposal.to_dict(), "accepted": accepted})
        return
    print_table(f"网格方案 proposal for {community} (draft {draft_id}) — band {proposal.min_households}–{proposal.max_households}",
           ["序号", "户数", "人口", "楼栋", "紧凑度", "状态"],
           [[g.serial, g.households, g.residents, g.buildings, round(g.compactness, 2), g.standing] for g in proposal.grids])
    for p in proposal.problems:
        typer.echo(f"  ! {p}")
    if accepted:
        typer.echo(f"accepted: {len(accepted['retired'])} grids retired, {len(accepted['created'])} created, "
                   f"{len(accepted['carried'])} assignments carried over, {len(accepted['flagged'])} to review")
        for f in accepted["flagged"]:
            typer.echo(f"  review: {f['cadre_no']} {f['name']} ({f['role']}) was on {f['old_grid']}")
    else:
        typer.echo(f"draft {draft_id} saved; accept with --accept or in the dashboard")


@app.command("rebalance")
def rebalance_cmd(community: Community = None, as_json: JsonOpt = False) -> None:
    """Suggest splitting grids over the band and merging grids under it."""
    with transaction(owner=True) as conn:
        suggestions = suggest(conn, community)
    if as_json:
        print_json([s.to_dict() for s in suggestions])
        return
    print_table("调整建议 rebalancing", ["建议", "网格", "户数", "对象", "之后户数", "说明"],
           [[s.action, s.grid, s.households, s.other, "+".join(map(str, s.result)), s.note] for s in suggestions])
