"""Dashboard sessions kept in the database, behind an HttpOnly cookie.

Why server-side: a session must end when it should — after ``session_idle_minutes``
without a request, after ``session_max_hours`` in any case, at sign-out, and at once when
an administrator deactivates the user or changes their role. A signed cookie alone cannot
be revoked. Only the SHA-256 of the token is stored, so a copy of the table opens nothing.

The user (and so the scope the row-level policies see) is read afresh from ``users`` on
every request: a role change applies to the next click, not the next sign-in.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, text

from gis.settings import get_settings
from layers import users
from layers.users import close_user_sessions  # noqa: F401  (ends a user's sessions; lives with the users)

Status = Literal["ok", "expired", "unknown"]


@dataclass(frozen=True)
class Resolved:
    """What a cookie came to: the user when ``status == "ok"``, otherwise why not."""

    status: Status
    user_id: int | None = None
    username: str | None = None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def open_session(conn: Connection, user_id: int, user_agent: str | None = None) -> str:
    """A new session for a user who has just proved who they are; returns the cookie value."""
    token = secrets.token_urlsafe(32)
    s = get_settings()
    conn.execute(text("""
        INSERT INTO user_sessions (token_sha256, user_id, expires_at, user_agent)
        VALUES (:d, :u, now() + make_interval(hours => :h), left(:ua, 300))"""),
        {"d": _digest(token), "u": user_id, "h": s.session_max_hours, "ua": user_agent or ""})
    return token


def resolve(conn: Connection, token: str | None) -> Resolved:
    """Check a cookie and note the activity (which keeps an active session alive)."""
    if not isinstance(token, str) or not token or len(token) > 200:
        return Resolved("unknown")
    s = get_settings()
    row = conn.execute(text("""
        WITH old AS (
            SELECT user_id, expires_at > now() AND last_seen > now() - make_interval(mins => :idle) AS alive
              FROM user_sessions WHERE token_sha256 = :d AND revoked_at IS NULL FOR UPDATE),
        touched AS (
            UPDATE user_sessions s SET last_seen = now(), revoked_at = CASE WHEN old.alive THEN NULL ELSE now() END
              FROM old WHERE s.token_sha256 = :d RETURNING s.user_id)
        SELECT old.user_id, old.alive, u.username FROM old JOIN users u ON u.id = old.user_id"""),
        {"d": _digest(token), "idle": s.session_idle_minutes}).first()
    if row is None:
        return Resolved("unknown")
    return Resolved("ok", row.user_id, row.username) if row.alive else Resolved("expired")


def close_session(conn: Connection, token: str | None) -> None:
    if token:
        conn.execute(text("UPDATE user_sessions SET revoked_at = now() WHERE token_sha256 = :d AND revoked_at IS NULL"),
                     {"d": _digest(token)})


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
