"""``wangge events …`` (cases: import history, indicators, one step of the lifecycle for scripts)
and ``wangge apikey add|revoke`` (Open311 clients).

The CLI acts as the system (cli/main.py) over the owner connection: every step still goes
through ``event_act`` (the lifecycle's checks) and is logged and audited with actor
``system`` unless ``--as USER:ROLE`` names who the script acts for.
"""
from __future__ import annotations

import json
import math
import secrets
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import JsonOpt, out, print_table
from gis.db import transaction
from gis.problems import ImportFailed
from layers.events import ensure_scope

events_app = typer.Typer(help="事件/案件 / event cases", no_args_is_help=True)
apikey_app = typer.Typer(help="Open311 接口密钥 / Open311 API keys", no_args_is_help=True)
Note = Annotated[str | None, typer.Option("--note", help="说明 / note (required to return, handle, send back)")]


def _clean(v: Any) -> Any:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, datetime):
        return v.isoformat()
    if hasattr(v, "item"):  # numpy scalars
        return _clean(v.item())
    return v


def emit(data: Any, as_json: bool, human: str | None = None) -> None:
    """Strict JSON (no NaN, no Infinity) or the human line."""
    if as_json:
        typer.echo(json.dumps(_clean(data), ensure_ascii=False, indent=2, allow_nan=False, default=str))
    elif human is not None:
        typer.echo(human)


def refuse(message: str, code: str, as_json: bool) -> None:
    if as_json:
        emit({"ok": False, "reason": code, "message": message}, True)
    else:
        out.print(f"[red]{message}[/red]")
    raise typer.Exit(1)


def _step(event_id: int, action: str, note: str | None, as_json: bool, **data: Any) -> None:
    from layers import events as ev

    try:
        with transaction(owner=True) as c:
            status = ev.act(c, event_id, action, note, **data)
    except ev.EventInvalid as exc:
        refuse(str(exc), exc.code, as_json)
    emit({"ok": True, "id": event_id, "action": action, "status": status}, as_json, f"案件 {event_id}: {action} → {status}")


@events_app.command("import")
def import_cmd(file: Annotated[Path, typer.Argument(help="CSV or Excel: id, class_code, lon, lat, reported_at … closed_at, rework_count, deferred")],
               as_json: JsonOpt = False) -> None:
    """Load past cases with the time of each stage, all or nothing."""
    from layers.event_import import import_cases

    try:
        with transaction(owner=True) as c:
            report = import_cases(c, file)
    except ImportFailed as exc:
        if as_json:
            emit({"ok": False, "problems": [p.to_dict() for p in exc.problems]}, True)
        else:
            out.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    emit({"ok": True, **report}, as_json, f"{file.name}: {report['cases']} cases, {report['transitions']} transitions")


@events_app.command("kpi")
def kpi_cmd(period: Annotated[str | None, typer.Option("--period", help="YYYY-MM")] = None,
            from_: Annotated[str | None, typer.Option("--from", help="YYYY-MM-DD")] = None,
            to: Annotated[str | None, typer.Option("--to", help="YYYY-MM-DD (exclusive)")] = None,
            by: Annotated[str, typer.Option("--by", help="grid, community or subdistrict")] = "subdistrict",
            as_json: JsonOpt = False) -> None:
    """Indicators for a period: 结案率, 按期结案率, 返工率, 准确派遣率, 延期率, handling hours, overdue."""
    from analysis import event_kpi as kpi
    from gis.workclock import BEIJING

    if by not in kpi.LEVELS:
        raise typer.BadParameter(f"--by must be one of {', '.join(kpi.LEVELS)}")
    try:
        if period:
            start, end = kpi.month_range(period)
        elif from_ and to:
            start = datetime.fromisoformat(from_).replace(tzinfo=BEIJING)
            end = datetime.fromisoformat(to).replace(tzinfo=BEIJING)
        else:
            start, end = kpi.month_range(datetime.now(BEIJING).strftime("%Y-%m"))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    from layers.events import ensure_scope

    with transaction(owner=True) as c:
        ensure_scope(c)
        frame = kpi.indicators(c, start, end, by)
    rows = kpi.to_records(frame)
    if as_json:
        emit({"ok": True, "from": start, "to": end, "by": by, "rows": rows}, True)
        return
    pct = lambda v: "—" if v is None else f"{v * 100:.1f}%"  # noqa: E731
    print_table(f"{start:%Y-%m-%d} – {end:%Y-%m-%d}",
                ["单元 unit", "应结案 due", "结案率", "按期结案率", "返工率", "准确派遣率", "延期率", "平均用时(工作小时)", "P90", "超期"],
                [[r["unit"], r["due"], pct(r["closure_rate"]), pct(r["on_time_rate"]), pct(r["rework_rate"]),
                  pct(r["correct_dispatch_rate"]), pct(r["extension_rate"]),
                  "—" if r["handling_hours_avg"] is None else f"{r['handling_hours_avg']:.1f}",
                  "—" if r["handling_hours_p90"] is None else f"{r['handling_hours_p90']:.1f}", r["overdue_now"]] for r in rows])


@events_app.command("report")
def report_cmd(class_code: Annotated[str, typer.Argument(help="小类 code, e.g. E0101")],
               lon: Annotated[float, typer.Option(help="WGS-84 longitude")],
               lat: Annotated[float, typer.Option(help="WGS-84 latitude")],
               description: Annotated[str | None, typer.Option()] = None,
               source: Annotated[str, typer.Option(help="worker, public, video, hotline, higher")] = "worker",
               urgent: Annotated[bool, typer.Option("--urgent")] = False,
               as_json: JsonOpt = False) -> None:
    """Report a case at a point."""
    from layers import events as ev

    try:
        with transaction(owner=True) as c:
            i = ev.report_event(c, class_code, lon=lon, lat=lat, description=description, source=source, urgent=urgent)
    except ev.EventInvalid as exc:
        refuse(str(exc), exc.code, as_json)
    emit({"ok": True, "id": i, "status": "reported"}, as_json, f"案件 {i}: reported")


@events_app.command("file")
def file_cmd(event_id: int, class_code: Annotated[str | None, typer.Option("--class")] = None, note: Note = None,
             as_json: JsonOpt = False) -> None:
    """立案: file a reported case (optionally under another class)."""
    _step(event_id, "file", note, as_json, class_code=class_code)


@events_app.command("reject")
def reject_cmd(event_id: int, reason: Annotated[str, typer.Option(help="not_case, duplicate, out_of_area")],
               duplicate_of: Annotated[int | None, typer.Option("--duplicate-of")] = None, note: Note = None,
               as_json: JsonOpt = False) -> None:
    """不予立案: reject a report (a duplicate names the case it repeats)."""
    _step(event_id, "reject", note, as_json, reason=reason, duplicate_of=duplicate_of)


@events_app.command("dispatch")
def dispatch_cmd(event_id: int, unit: Annotated[str | None, typer.Option(help="unit code (default: proposed)")] = None,
                 note: Note = None, as_json: JsonOpt = False) -> None:
    """派遣: dispatch a filed case to a unit; the handling clock starts."""
    _step(event_id, "dispatch", note, as_json, unit=unit)


@events_app.command("handle")
def handle_cmd(event_id: int, note: Note = None, as_json: JsonOpt = False) -> None:
    """处置: report the case handled (with a note)."""
    _step(event_id, "handle", note, as_json)


@events_app.command("verify")
def verify_cmd(event_id: int, fail_: Annotated[bool, typer.Option("--fail", help="send back for rework")] = False,
               note: Note = None, as_json: JsonOpt = False) -> None:
    """核查: verified on site (passed, or --fail: sent back, counted as rework)."""
    _step(event_id, "verify_fail" if fail_ else "verify_pass", note, as_json)


@events_app.command("close")
def close_cmd(event_id: int, note: Note = None, as_json: JsonOpt = False) -> None:
    """结案: close a verified case."""
    _step(event_id, "close", note, as_json)


@events_app.command("show")
def show_cmd(event_id: int, as_json: JsonOpt = False) -> None:
    """One case with its transitions."""
    from layers import events as ev

    try:
        with transaction(owner=True) as c:
            case = ev.get_case(c, event_id)
    except ev.EventInvalid as exc:
        refuse(str(exc), exc.code, as_json)
    emit({"ok": True, "case": case}, as_json,
         "\n".join([f"案件 {event_id} [{case['status']}] {case['kind']}"] +
                   [f"  {t['at']:%Y-%m-%d %H:%M} {t['action']} {t['actor']} {t['note'] or ''}" for t in case["transitions"]]))


@events_app.command("unit-member")
def unit_member_cmd(username: str, unit: str, as_json: JsonOpt = False) -> None:
    """Name the unit a user of role ``unit`` acts for."""
    from layers import events as ev

    with transaction(owner=True) as c:
        ev.set_unit_member(c, username, unit)
    emit({"ok": True, "username": username, "unit": unit}, as_json, f"{username} → {unit}")


@apikey_app.command("add")
def apikey_add(name: str, as_json: JsonOpt = False) -> None:
    """Issue a key for a client (printed once; stored only as its SHA-256 hash). Re-adding replaces it."""
    from sqlalchemy import text

    from layers.audit import record

    key = secrets.token_urlsafe(32)
    try:
        with transaction(owner=True) as c:
            ensure_scope(c)
            c.execute(text("SELECT apikey_add(:n, :k)"), {"n": name, "k": key})
            record(c, "apikey_add", "api_keys", row_key=name)
    except Exception as exc:  # the name check in the table
        if "api_keys_name_check" in str(exc):
            refuse("名称只能用字母、数字、_.- (2–64) / name: letters, digits, _.- (2–64)", "invalid_name", as_json)
        raise
    emit({"ok": True, "name": name, "key": key}, as_json, f"{name}: {key}\n(只显示这一次 / shown only this once)")


@apikey_app.command("revoke")
def apikey_revoke(name: str, as_json: JsonOpt = False) -> None:
    """Revoke a client's key."""
    from sqlalchemy import text

    from layers.audit import record

    with transaction(owner=True) as c:
        ensure_scope(c)
        done = bool(c.execute(text("SELECT apikey_revoke(:n)"), {"n": name}).scalar())
        if done:
            record(c, "apikey_revoke", "api_keys", row_key=name)
    if not done:
        refuse(f"没有有效的密钥 {name} / no active key named {name}", "not_found", as_json)
    emit({"ok": True, "name": name, "revoked": True}, as_json, f"{name}: revoked")
