"""Dashboard sessions kept in the database, behind an HttpOnly cookie.

Why server-side: a session must end when it should — after ``session_idle_minutes``
without a request, after ``session_max_hours`` in any case, at sign-out, and at once when
an administrator deactivates the user or changes their role. A signed cookie alone cannot
be revoked. Only the SHA-256 of the token is stored, so a copy of the table opens nothing.

The user (and so the scope the row-level policies see) is read afresh from ``users`` on
every request: a role change applies to the next click, not the next sign-in.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, text

from layers import users
from layers.users import close_user_sessions  # noqa: F401  (ends a user's sessions; lives with the users)
from layers.users import take_held_token, token_digest

Status = Literal["ok", "expired", "unknown"]


@dataclass(frozen=True)
class Resolved:
    """What a cookie came to: the user when ``status == "ok"``, otherwise why not."""

    status: Status
    user_id: int | None = None
    username: str | None = None


digest = token_digest
_digest = digest


def open_session(conn: Connection, user_id: int, user_agent: str | None = None) -> str:
    """The cookie value of the session a verified sign-in opened for ``user_id`` in this thread.

    The app cannot open a session by itself (it has no privilege on ``user_sessions``): the
    database opens one only in ``auth_login``, after checking the password. So this hands
    out the token :func:`layers.users.authenticate` got, and refuses when there is none.
    """
    token = take_held_token(user_id)
    if token is None:
        raise PermissionError("no verified sign-in for this user: sign in with a password first")
    return token


def open_oidc_session(conn: Connection, subject: str, user_agent: str | None = "oidc") -> str | None:
    """A session for someone the identity provider signed in (``st.login``), if an administrator
    linked a user to that subject or e-mail; the database checks the link (``session_open_oidc``)."""
    token = secrets.token_urlsafe(32)
    uid = conn.execute(text("SELECT session_open_oidc(:s, :d, :ua)"),
                       {"s": subject, "d": digest(token), "ua": user_agent}).scalar_one()
    return token if uid is not None else None


def resolve(conn: Connection, token: str | None) -> Resolved:
    """Check a cookie and note the activity (which keeps an active session alive); the idle
    and day limits are the database's (``session_resolve``, settings kept owner-side)."""
    if not isinstance(token, str) or not token or len(token) > 200:
        return Resolved("unknown")
    row = conn.execute(text("SELECT * FROM session_resolve(:d)"), {"d": digest(token)}).first()
    if row is None or row.status != "ok":
        return Resolved(row.status if row is not None else "unknown")
    return Resolved("ok", row.user_id, row.username)


def close_session(conn: Connection, token: str | None) -> None:
    if token:
        conn.execute(text("SELECT session_revoke(:d)"), {"d": digest(token)})


def signed_in_user(conn: Connection, token: str | None):
    """``(status, user)`` for a cookie: the active ``layers.users.User`` when ``status == "ok"``;
    otherwise None and why (``expired``, ``unknown``, or ``inactive`` for a deactivated user).
    The one check pages and tiles both make."""
    found = resolve(conn, token)
    if found.status != "ok" or not found.username:
        return found.status, None
    user = users.get_user(conn, found.username)
    if user is None or not user.active:
        return "inactive", None
    return "ok", user
