"""``wangge user`` and ``wangge audit``: accounts for the dashboard, and the audit log.

Passwords never go on the command line (they would land in the shell history and in
``ps``): they come from ``WANGGE_ADMIN_PASSWORD`` when set, else from a hidden prompt.
The CLI acts as the system (cli/main.py sets the SYSTEM scope) over the owner connection,
like the other commands; every change is audited with actor ``system``.
"""
from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from cli.common import JsonOpt, print_json, print_table
from gis.db import transaction
from layers import users as auth
from layers.audit import export_audit, list_audit
from layers.users import UserInvalid, grid_ids

user_app = typer.Typer(help="用户 / dashboard users", no_args_is_help=True)
audit_app = typer.Typer(help="审计日志 / audit log", no_args_is_help=True)

Role = Annotated[str | None, typer.Option("--role", help="admin, leader, secretary, worker, planner, dispatcher, unit or hotline")]
Communities = Annotated[list[str] | None, typer.Option("--community", help="12-digit community code, repeatable")]
Grids = Annotated[list[str] | None, typer.Option("--grid", help="grid code (or id), repeatable")]
Name = Annotated[str | None, typer.Option("--name", help="display name")]


def _password(confirm: bool = True) -> str:
    pw = os.environ.get("WANGGE_ADMIN_PASSWORD")
    if pw:
        return pw
    return typer.prompt("密码 / password", hide_input=True, confirmation_prompt=confirm)


def _grids(conn, values: list[str] | None) -> tuple[int, ...] | None:
    if values is None:
        return None
    ids, unknown = grid_ids(conn, values)
    if unknown:
        raise UserInvalid("grids", "unknown_grid", {"codes": unknown})
    return ids


def _show(user, as_json: bool) -> None:
    if as_json:
        print_json({"ok": True, "user": user.to_dict()})
    else:
        typer.echo(f"{user.username} [{user.role}] communities={','.join(user.communities) or '-'} "
                   f"grids={','.join(map(str, user.grids)) or '-'} resident_detail={user.resident_detail} active={user.active}")


@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Argument()],
    role: Role = None,
    community: Communities = None,
    grid: Grids = None,
    resident_detail: Annotated[bool, typer.Option("--resident-detail", help="a leader may see per-building group counts")] = False,
    name: Name = None,
    oidc: Annotated[str | None, typer.Option("--oidc", help="OIDC subject (or e-mail) for single sign-on")] = None,
    no_password: Annotated[bool, typer.Option("--no-password", help="OIDC sign-in only")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a user (password from WANGGE_ADMIN_PASSWORD or a prompt)."""
    if not role:
        raise typer.BadParameter("--role is required")
    password = None if no_password else _password()
    with transaction(owner=True) as conn:
        user = auth.create_user(conn, username, password, role, communities=tuple(community or ()),
                                grids=_grids(conn, grid) or (), resident_detail=resident_detail,
                                display_name=name, oidc_subject=oidc)
    _show(user, as_json)


@user_app.command("set")
def user_set(
    username: Annotated[str, typer.Argument()],
    role: Role = None,
    community: Communities = None,
    grid: Grids = None,
    resident_detail: Annotated[bool | None, typer.Option("--resident-detail/--no-resident-detail")] = None,
    name: Name = None,
    active: Annotated[bool | None, typer.Option("--active/--inactive", help="an inactive user cannot sign in")] = None,
    oidc: Annotated[str | None, typer.Option("--oidc")] = None,
    unlock: Annotated[bool, typer.Option("--unlock", help="clear failed sign-ins and any lock")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Change a user's role, area, detail grant, name or whether they may sign in."""
    with transaction(owner=True) as conn:
        changes = {k: v for k, v in {"role": role, "resident_detail": resident_detail, "display_name": name,
                                     "active": active, "oidc_subject": oidc}.items() if v is not None}
        if community is not None:
            changes["communities"] = tuple(community)
        grids = _grids(conn, grid)
        if grids is not None:
            changes["grids"] = grids
        user = auth.update_user(conn, username, **changes) if changes else auth.get_user(conn, username)
        if user is None:
            raise auth.UserInvalid("username", "unknown_user")
        if unlock:
            auth.unlock(conn, username)
    _show(user, as_json)


@user_app.command("passwd")
def user_passwd(username: Annotated[str, typer.Argument()], as_json: JsonOpt = False) -> None:
    """Set a user's password (from WANGGE_ADMIN_PASSWORD or a prompt); also lifts a lock."""
    password = _password()
    with transaction(owner=True) as conn:
        auth.set_password(conn, username, password)
    if as_json:
        print_json({"ok": True, "username": username})
    else:
        typer.echo(f"{username}: password changed")


@user_app.command("list")
def user_list(as_json: JsonOpt = False) -> None:
    """Every user with role and area (no hashes)."""
    with transaction(owner=True) as conn:
        frame = auth.list_users(conn)
    rows = frame.to_dict("records")
    if as_json:
        print_json(rows)
        return
    print_table("用户 users", ["username", "name", "role", "communities", "grids", "detail", "active"],
                [[r["username"], r["display_name"], r["role"], ",".join(r["communities"] or []),
                  ",".join(map(str, r["grids"] or [])), r["resident_detail"], r["active"]] for r in rows])


@audit_app.command("list")
def audit_list(
    since: Annotated[datetime | None, typer.Option(help="from this time (ISO)")] = None,
    actor: Annotated[str | None, typer.Option(help="who (the app's actor or the verified user)")] = None,
    action: Annotated[str | None, typer.Option(help="import, assign, user_create …")] = None,
    limit: Annotated[int, typer.Option()] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The newest audit rows."""
    with transaction(owner=True) as conn:
        frame = list_audit(conn, since=since, actor=actor, action=action, limit=limit)
    rows = frame.to_dict("records")
    if as_json:
        print_json(rows)
        return
    print_table("审计 audit", ["at", "actor", "verified", "action", "table", "key"],
                [[str(r["at"])[:19], r["actor"], r["scope_user"], r["action"], r["table_name"], r["row_key"]] for r in rows])


@audit_app.command("export")
def audit_export(
    file: Annotated[Path, typer.Argument(help=".csv or .xlsx")],
    since: Annotated[datetime | None, typer.Option()] = None,
    actor: Annotated[str | None, typer.Option()] = None,
    action: Annotated[str | None, typer.Option()] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the (filtered) audit log to a file."""
    with transaction(owner=True) as conn:
        data = export_audit(conn, file, since=since, actor=actor, action=action)
    if as_json:
        print_json({"ok": True, "file": str(file), "bytes": len(data)})
    else:
        typer.echo(f"{file}: {len(data)} bytes")
