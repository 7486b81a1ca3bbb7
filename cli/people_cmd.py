"""``wangge people|visits|patrol``: the registers, the visit schedule and patrols (issue 17).

The command line acts as the system (an operator at the server); every person it reads is
logged by the database like any other read (channel ``cli``).
"""
from __future__ import annotations

import json
import math
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import JsonOpt, print_table
from gis.problems import ImportFailed

people_app = typer.Typer(help="人员登记 / person registers (PIPL-protected)", no_args_is_help=True)
visits_app = typer.Typer(help="走访 / visit schedule", no_args_is_help=True)
patrol_app = typer.Typer(help="巡查 / patrol tracks and coverage", no_args_is_help=True)


def _clean(v: Any) -> Any:
    """Strict JSON: no NaN/inf, dates as ISO text, arrays as lists."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if hasattr(v, "tolist") and not isinstance(v, (str, bytes)):
        return _clean(v.tolist())
    if hasattr(v, "isoformat"):
        return v.isoformat()
    try:
        import pandas as pd

        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return v


def emit(data: Any) -> None:
    typer.echo(json.dumps(_clean(data), ensure_ascii=False, indent=2, allow_nan=False))


def _records(frame) -> list[dict]:
    return [_clean(r) for r in frame.to_dict("records")]


def _failed(exc: ImportFailed, as_json: bool) -> None:
    if as_json:
        emit({"ok": False, "problems": [p.to_dict() for p in exc.problems]})
    else:
        typer.echo(str(exc), err=True)
    raise typer.Exit(1)


@people_app.command("import")
def people_import(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Excel/CSV register with Chinese headers (姓名, 身份证号, 楼栋编号 …)")],
                  as_json: JsonOpt = False) -> None:
    """Import a person register, all or nothing (ID numbers checked, duplicates named)."""
    from layers.people import PeopleError, import_register

    try:
        report = import_register(file)
    except ImportFailed as exc:
        _failed(exc, as_json)
    except PeopleError as exc:
        if as_json:
            emit({"ok": False, "error": str(exc)})
        else:
            typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    if as_json:
        emit({"ok": True, **report.to_dict()})
    else:
        typer.echo(f"{report.file}: {report.persons} 人 persons, {report.memberships} 类别 memberships, "
                   f"{report.buildings} 栋楼重算分类人数 buildings recounted")
        for n in report.notes:
            typer.echo(f"  {n}")


@people_app.command("anonymise")
def people_anonymise(days: Annotated[int | None, typer.Option(help="retention in days (default WANGGE_PEOPLE_RETENTION_DAYS)")] = None,
                     as_json: JsonOpt = False) -> None:
    """Anonymise persons who moved away or died longer ago than the retention period."""
    from gis.settings import get_settings
    from layers.people import anonymise, owner_transaction

    with owner_transaction() as c:
        n = anonymise(c, days)
    d = get_settings().people_retention_days if days is None else days
    if as_json:
        emit({"ok": True, "anonymised": n, "retention_days": d})
    else:
        typer.echo(f"已匿名 {n} 人（保留期 {d} 天） / anonymised {n} persons (retention {d} days)")


@people_app.command("access-log")
def people_access_log(person: Annotated[int | None, typer.Option("--person", help="person id: who looked at this person")] = None,
                      limit: Annotated[int, typer.Option(help="newest rows")] = 200, as_json: JsonOpt = False) -> None:
    """Who read which person's record, when and why (the access log)."""
    from layers.people import access_log, owner_transaction

    with owner_transaction() as c:
        frame = access_log(c, person, limit)
    if as_json:
        emit(_records(frame))
        return
    print_table("人员信息访问记录 / person access log", ["时间 at", "用户 user", "角色 role", "人员 person", "操作 action", "理由 reason", "渠道 channel"],
                [[r.at, r.username, r.role, r.person_id, r.action, r.reason or "", r.channel] for r in frame.itertuples()])


@visits_app.command("due")
def visits_due(grid: Annotated[str | None, typer.Option("--grid", help="grid code")] = None,
               on: Annotated[str | None, typer.Option(help="date (YYYY-MM-DD), default today (Beijing)")] = None,
               as_json: JsonOpt = False) -> None:
    """Visits due on or before a day, in walking order per grid, ID numbers masked."""
    from analysis import visits
    from layers.people import PERSON_GROUPS, owner_transaction

    day = date.fromisoformat(on) if on else visits.today()
    with owner_transaction() as c:
        from sqlalchemy import text

        gid = None
        if grid:
            gid = c.execute(text("SELECT id FROM grids WHERE code = :c AND valid_to IS NULL"), {"c": grid}).scalar()
            if gid is None:
                msg = f"没有网格 {grid} / no current grid {grid}"
                emit({"ok": False, "error": msg}) if as_json else typer.echo(msg, err=True)
                raise typer.Exit(1)
        frame, route = visits.today_list(c, gid, day, channel="cli")
        counts = visits.overdue_by_grid(c, day)
    cols = ["stop", "id", "grid_code", "name", "address", "household_no", "id_masked", "phone_masked", "groups",
            "risk_grade", "next_visit", "days_overdue", "walk_m"]
    if as_json:
        emit({"ok": True, "date": day, "grid": grid, "due": _records(frame[cols]) if len(frame) else [],
              "walk_m": round(route.total_m), "overdue_by_grid": _records(counts[["code", "scheduled", "due_today", "overdue", "overdue_rate"]])})
        return
    print_table(f"{day} 应走访 / visits due ({len(frame)}, 步行 {route.total_m:,.0f} m)",
                ["序 stop", "网格 grid", "姓名 name", "地址 address", "身份证 ID", "类别 groups", "应访 due", "逾期天 overdue", "步行 m"],
                [[r.stop, r.grid_code, r.name, r.address, r.id_masked, "、".join(PERSON_GROUPS.get(g, (g,))[0] for g in r.groups),
                  r.next_visit, r.days_overdue, r.walk_m]
                 for r in frame.itertuples()] if len(frame) else [])


@visits_app.command("import")
def visits_import(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV/Excel: 人员编号 or 身份证号, 走访时间, 结果, 备注, 走访人, 经度, 纬度")],
                  crs: Annotated[str | None, typer.Option(help="gcj02 or bd09 for AMap/Baidu coordinates")] = None,
                  as_json: JsonOpt = False) -> None:
    """Import past visits, all or nothing (visits far from the building are flagged)."""
    from analysis.visits import import_visits

    try:
        out = import_visits(file, crs)
    except ImportFailed as exc:
        _failed(exc, as_json)
    emit({"ok": True, **out}) if as_json else typer.echo(f"{out['file']}: {out['visits']} 次走访 visits, {out['far']} 处偏离楼栋 far from the building")


@patrol_app.command("import")
def patrol_import(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="GPX, or CSV of 时间/经度/纬度 (time/lon/lat)")],
                  cadre: Annotated[str, typer.Option("--cadre", help="the worker's cadre number")],
                  crs: Annotated[str | None, typer.Option(help="gcj02 or bd09 for AMap/Baidu tracks")] = None,
                  as_json: JsonOpt = False) -> None:
    """Import a worker's patrol track (one track per day)."""
    from analysis.patrols import import_track

    try:
        report = import_track(file, cadre, crs)
    except ImportFailed as exc:
        _failed(exc, as_json)
    if as_json:
        emit({"ok": True, **report.to_dict()})
    else:
        for t in report.tracks:
            typer.echo(f"{report.file} {t['day']}: {t['fixes']} 点 fixes, {t['hours']} h, {t['length_m']:,.0f} m, {t['grids']} 个网格 grids")


def _period(text_: str | None) -> tuple[date, date]:
    """'2026-12-01..2026-12-06', '2026-12', '2026-12-06', 'week' (last 7 days) or 'month' (last 30)."""
    from analysis.visits import today

    t = today()
    if not text_ or text_ == "week":
        return t - timedelta(days=6), t
    if text_ == "month":
        return t - timedelta(days=29), t
    if ".." in text_:
        a, b = text_.split("..", 1)
        return date.fromisoformat(a), date.fromisoformat(b)
    if len(text_) == 7:
        y, m = map(int, text_.split("-"))
        nxt = date(y + (m == 12), m % 12 + 1, 1)
        return date(y, m, 1), nxt - timedelta(days=1)
    d = date.fromisoformat(text_)
    return d, d


@patrol_app.command("coverage")
def patrol_coverage(period: Annotated[str | None, typer.Option(help="week (default), month, YYYY-MM, YYYY-MM-DD or A..B")] = None,
                    distance: Annotated[float | None, typer.Option(help="metres from the track (default WANGGE_PATROL_DISTANCE_M)")] = None,
                    as_json: JsonOpt = False) -> None:
    """Patrol coverage per grid (households within reach of a track ÷ households), bands, street length, hours."""
    from analysis import patrols
    from layers.people import owner_transaction

    try:
        a, b = _period(period)
    except ValueError:
        raise typer.BadParameter(f"period {period!r}: week, month, YYYY-MM, YYYY-MM-DD or A..B") from None
    with owner_transaction() as c:
        cov = patrols.coverage(c, a, b, distance)
        hrs = patrols.hours(c, a, b)
    if as_json:
        emit({"ok": True, "from": a, "to": b, "grids": _records(cov), "hours": _records(hrs)})
        return
    print_table(f"巡查覆盖率 / patrol coverage {a}–{b}", ["网格 grid", "户数", "覆盖户数", "覆盖率", "档次 band", "道路 m", "覆盖道路 m", "轨迹"],
                [[r.grid_code, r.households, r.households_covered, "—" if r.share is None else f"{r.share:.1%}", r.band,
                  r.street_m, r.street_covered_m, r.tracks] for r in cov.itertuples()])
    print_table("巡查时长 / patrol hours", ["干部 cadre", "日期 day", "小时 hours", "达标 ≥ min"],
                [[r.cadre_no, r.day, r.hours, "✓" if r.meets_minimum else "✗"] for r in hrs.itertuples()])
