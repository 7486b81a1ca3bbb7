"""``wangge coverage cameras|services|status`` and ``wangge compliance``: coverage figures per
community and sub-district (stored, recomputed where stale), standards compliance."""
from __future__ import annotations

from collections import Counter
from typing import Annotated

import typer

from analysis import cameras, compliance, services
from analysis.freshness import status
from cli.common import Community, JsonOpt, fail, print_json, print_table
from gis.db import transaction
from gis.frames import records

coverage_app = typer.Typer(help="覆盖 / coverage: cameras, services, freshness", no_args_is_help=True)
compliance_app = typer.Typer(help="达标 / standards compliance per community", invoke_without_command=True)
Full = Annotated[bool, typer.Option("--full", help="recompute everything, not only what changed")]


def _pct(v) -> str:
    try:
        return "" if v is None or v != v else f"{100 * float(v):.1f}%"
    except (TypeError, ValueError):
        return ""


@coverage_app.command("cameras")
def cameras_cmd(
    detail: Annotated[str | None, typer.Option("--detail", help="DORI level: detection, observation, recognition, identification (default: setting)")] = None,
    community: Community = None,
    full: Full = False,
    as_json: JsonOpt = False,
) -> None:
    """Camera coverage of roads, inner streets, open space, street-facing walls and key places; 雪亮工程 check."""
    try:
        level = cameras.detail_level(detail)
    except KeyError as exc:
        fail(str(exc.args[0]))
    with transaction(owner=True) as conn:
        ran = cameras.refresh(conn, level, full=full)
        cov = cameras.coverage(conn, level, community=community)
        report = cameras.camera_report(conn, level, community)
        check = cameras.xueliang(conn, level)
        places = cameras.key_places(conn, level, community)
    if community is not None:
        check = check[(check["code"] == community) | (check["scope"] == "subdistrict")]
    notes = Counter(n.split(":", 1)[0] for a in report["assumptions"] for n in a)
    if as_json:
        print_json({"detail_level": level, "refresh": ran, "grids": records(cov[cov.scope == "grid"]),
               "communities": records(cov[cov.scope == "community"]), "subdistrict": records(cov[cov.scope == "subdistrict"]),
               "xueliang": records(check), "key_places": records(places), "assumption_counts": dict(notes),
               "cameras": records(report)})
        return
    rows = cov[cov.scope != "grid"]
    print_table(f"摄像头覆盖 camera coverage — {level} ({ran['mode']}, {ran['seconds']} s)",
           ["范围", "名称", "道路 km", "道路覆盖", "内部道路", "公共空间", "临街立面", "重点部位", "摄像头(计入)"],
           [[r.code, r.name, f"{r.road_m / 1000:.2f}", _pct(r.road_share), _pct(r.inner_road_share), _pct(r.open_share),
             _pct(r.facade_share), f"{r.key_places_covered}/{r.key_places}", f"{r.cameras} ({r.cameras_counted})"] for r in rows.itertuples()])
    print_table("雪亮工程 / Xueliang targets", ["范围", "名称", "重点部位覆盖", "达标", "完好率", "达标", "未覆盖 uncovered"],
           [[r.code, r.name, _pct(r.key_places_share), r.coverage_pass, _pct(r.serviceable_share), r.serviceability_pass, r.uncovered]
            for r in check.itertuples()])
    if len(check):
        typer.echo(check.iloc[0]["coverage_rule"])
        typer.echo(check.iloc[0]["serviceability_rule"])
    typer.echo("假设 assumptions: " + ", ".join(f"{k} ×{v}" for k, v in sorted(notes.items())) + f" (of {len(report)} cameras; --json lists each)")
    typer.echo("离线/状态未知的摄像头不计入覆盖 / offline and unknown-status cameras are not counted")


@coverage_app.command("services")
def services_cmd(
    category: Annotated[list[str] | None, typer.Option("--category", help="facility category code (repeatable; default: all with a radius)")] = None,
    community: Community = None,
    full: Full = False,
    as_json: JsonOpt = False,
) -> None:
    """Households beyond each facility's walking radius (network vs straight line) and life-circle completeness."""
    wanted = services.categories()
    for c in category or []:
        if c not in wanted:
            fail(f"unknown category {c!r}: one of {', '.join(wanted)}")
    with transaction(owner=True) as conn:
        ran = services.refresh(conn, full=full)
        cats = services.category_coverage(conn, community)
        circles = services.life_circle_coverage(conn, community)
        snaps = services.snaps(conn)
    if category:
        cats = cats[cats["category"].isin(category)]
    if as_json:
        print_json({"refresh": ran, "categories": records(cats), "life_circles": records(circles), "snaps": snaps,
               "radii": services.radii(), "life_circle_rules": {k: {"distance_m": d, "required": c} for k, (d, c) in services.life_circles().items()}})
        return
    top = cats[cats.scope != "grid"] if len(cats) else cats  # nothing measured yet: an empty table, not a crash
    print_table(f"步行可达 walking access ({ran['mode']}, {ran['seconds']} s) — households beyond the radius: network / straight line",
           ["范围", "设施", "半径 m", "户数", "超出(步行)", "超出(直线)", "步行覆盖", "直线覆盖"],
           [[r.code, r.category_zh, f"{r.radius_m:g}", r.households, r.households_beyond_network, r.households_beyond_straight,
             _pct(r.share_within_network), _pct(r.share_within_straight)] for r in top.itertuples()])
    lc = circles[circles.scope != "grid"] if len(circles) else circles
    print_table("生活圈 life circles — share of households with every required facility",
           ["范围", "生活圈", "距离 m", "户数", "步行", "直线"],
           [[r.code, r.circle, f"{r.distance_m:g}", r.households, _pct(r.share_network), _pct(r.share_straight)] for r in lc.itertuples()])
    typer.echo(f"入网距离 snap to the walking network: median {snaps['home_snap_median_m']} m, 95% {snaps['home_snap_p95_m']} m, "
               f"max {snaps['home_snap_max_m']} m ({snaps['homes']} homes); only open facilities count")


@coverage_app.command("status")
def status_cmd(
    detail: Annotated[str | None, typer.Option("--detail", help="camera detail level (default: setting)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Which stored figures are stale (inputs changed since they were computed)."""
    with transaction(owner=True) as conn:
        frame = status(conn, detail)
    if as_json:
        print_json(records(frame))
        return
    per = frame.groupby("analysis").agg(figures=("code", "size"), stale=("stale", "sum"), oldest=("computed_at", "min"))
    typer.echo(per.to_string())
    stale = frame[frame["stale"]]
    for r in stale.head(30).itertuples():
        typer.echo(f"  stale {r.analysis} {r.scope} {r.code}: {r.why}")


@compliance_app.callback()
def compliance_cmd(ctx: typer.Context, community: Community = None, as_json: JsonOpt = False) -> None:
    """Service floor area per 100 households (20 and 30 m² rules), office rooms, one-stop centre, health station, culture room."""
    if ctx.invoked_subcommand is not None:
        return

    with transaction(owner=True) as conn:
        frame = compliance.refresh(conn)
    if community is not None:
        frame = frame[frame["community_code"] == community]
    summary = compliance.summary(frame)
    if as_json:
        print_json({"rules": compliance.rules().to_dict("records"), "communities": records(frame.assign(rules_failed=frame["rules_failed"].map(list))),
               "subdistrict": records(summary)})
        return
    mark = {True: "✓", False: "✗"}
    print_table("达标 compliance", ["社区", "名称", "户数", "服务用房 m²", "每百户 m²", *[r for r in compliance.rules()["rule"]]],
           [[r.community_code, r.community_name, r.households, f"{r.service_m2:g}", r.service_m2_per_100_households,
             *[mark.get(getattr(r, f"pass_{k}"), "—") for k in compliance.rules()["rule"]]] for r in frame.itertuples()])
    print_table("全街道 sub-district", ["规则 rule", "通过", "未通过", "未通过社区", "依据"],
           [[r.rule_name, r.passing, r.failing, r.failing_communities, r.reference] for r in summary.itertuples()])
