"""Users and signing in: argon2 password hashes, slow-down and lock-out, user management.

Why the database does the bookkeeping: the app role may not read password hashes
(``users.password_hash`` is left out of its column grant) nor the table of failed attempts.
Signing in happens before there is a scope, so it goes through the owner's SECURITY
DEFINER functions (migration 0011): ``auth_lookup(username)`` gives one user's hash and
failure counters, ``auth_failed``/``auth_succeeded`` keep the count. Failures are counted
per name typed, whether or not the user exists, and an unknown name costs a dummy hash
check: the answers and their timing do not tell whether a user exists.

Creating and changing users is allowed to an administrator (or the system) only, and the
``users`` policies enforce that in the database too; every change is audited with the
acting scope's user and the before/after (never the hash).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection, text

from gis.scope import Scope, current
from gis.settings import get_settings

USER_ROLES = ("admin", "leader", "secretary", "worker", "planner", "dispatcher", "unit", "hotline")
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{2,64}$")
CHANGEABLE = ("role", "communities", "grids", "resident_detail", "display_name", "active", "oidc_subject")

_HASHER = PasswordHasher()  # argon2id with the library's current defaults (RFC 9106 low-memory profile)
_DUMMY_HASH = _HASHER.hash("wangge-dummy-password-for-timing")


@dataclass
class User:
    """A user as the app sees it (never the password hash)."""

    id: int
    username: str
    display_name: str | None
    role: str
    communities: tuple[str, ...] = ()
    grids: tuple[int, ...] = ()
    resident_detail: bool = False
    active: bool = True

    def scope(self) -> Scope:
        """What this user may see: the scope the app signs into each transaction."""
        return Scope(user=self.username, role=self.role, communities=tuple(self.communities),
                     grids=tuple(int(g) for g in self.grids), resident_detail=bool(self.resident_detail))

    def to_dict(self) -> dict:
        return {"id": self.id, "username": self.username, "display_name": self.display_name, "role": self.role,
                "communities": list(self.communities), "grids": list(self.grids),
                "resident_detail": self.resident_detail, "active": self.active}


class AuthError(Exception):
    """Signing in failed. ``code``: bad_credentials | locked | inactive | slow_down; the UI
    translates the code. ``retry_after``: seconds until another attempt may succeed (0 if
    not limited)."""

    def __init__(self, code: str, retry_after: float = 0.0) -> None:
        super().__init__(code)
        self.code = code
        self.retry_after = max(0.0, float(retry_after))


@dataclass
class UserInvalid(ValueError):
    """A user field that cannot be accepted; ``field`` names it, ``message`` says why (code form)."""

    field: str
    message: str
    extra: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


# --- signing in -------------------------------------------------------------------------------

def _slow_down_wait(failed: int) -> float:
    """Seconds the next attempt must wait after ``failed`` consecutive failures (0 before the
    slow-down starts; then the base, doubling with every further failure)."""
    s = get_settings()
    if failed < s.auth_slowdown_after:
        return 0.0
    return float(s.auth_slowdown_base_s) * 2 ** (failed - s.auth_slowdown_after)


def authenticate(conn: Connection, username: str, password: str) -> User:
    """The user whose name and password these are, or ``AuthError``.

    Order of checks: locked → wait (slow-down) → password → active. A locked or slowed-down
    attempt is refused without looking at the password (so guessing during the wait gains
    nothing) and does not count. A wrong password for an existing or an unknown user gives
    the same ``bad_credentials``; after ``auth_lock_after`` failures the account locks for
    ``auth_lock_minutes``. Success clears the count (in ``conn``'s transaction); a failure
    is counted in a transaction of its own, committed at once, so it holds whatever the caller
    does with its own transaction after the exception.
    """
    s = get_settings()
    name = (username or "").strip()[:200]
    row = conn.execute(text("SELECT * FROM auth_lookup(:u)"), {"u": name}).mappings().one()
    now: datetime = row["db_now"]
    if row["locked_until"] is not None and row["locked_until"] > now:
        raise AuthError("locked", (row["locked_until"] - now).total_seconds())
    failed = 0 if (row["locked_until"] is not None and row["locked_until"] <= now) else int(row["failed_count"])
    wait = _slow_down_wait(failed)
    if wait and row["last_failed_at"] is not None:
        ready = row["last_failed_at"] + timedelta(seconds=wait)
        if ready > now:
            raise AuthError("slow_down", (ready - now).total_seconds())
    ok = _verify(row["password_hash"] if row["user_id"] is not None else None, password or "")
    if not ok:
        # Its own transaction: the caller's rolls back when AuthError leaves it, the count must stay.
        with conn.engine.begin() as own:
            count, locked_until = own.execute(text("SELECT * FROM auth_failed(:u, :n, :m)"),
                                              {"u": name, "n": s.auth_lock_after, "m": s.auth_lock_minutes}).one()
        if locked_until is not None:
            raise AuthError("locked", (locked_until - now).total_seconds())
        raise AuthError("bad_credentials", _slow_down_wait(int(count)))
    conn.execute(text("SELECT auth_succeeded(:u)"), {"u": name})
    user = _user_from_definer(conn, "auth_user", name)
    assert user is not None
    if not user.active:
        raise AuthError("inactive")
    return user


def _verify(stored: str | None, password: str) -> bool:
    """argon2 check; an unknown user or a user without a password costs a dummy check."""
    try:
        return _HASHER.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


# --- reading users ------------------------------------------------------------------------------

def _user(row) -> User:
    return User(id=int(row["id"]), username=row["username"], display_name=row["display_name"], role=row["role"],
                communities=tuple(str(c).strip() for c in (row["communities"] or ())),
                grids=tuple(int(g) for g in (row["grids"] or ())),
                resident_detail=bool(row["resident_detail"]), active=bool(row["active"]))


def _user_from_definer(conn: Connection, fn: str, arg: str) -> User | None:
    row = conn.execute(text(f"SELECT * FROM {fn}(:a)"), {"a": arg}).mappings().one_or_none()
    return _user(row) if row else None


USER_COLS = "id, username, display_name, role, communities::text[] AS communities, grids, resident_detail, active"


def get_user(conn: Connection, username: str) -> User | None:
    """A user by name, as far as the scope may see users (an administrator: all; others: themselves)."""
    row = conn.execute(text(f"SELECT {USER_COLS} FROM users WHERE username = :u"), {"u": username}).mappings().one_or_none()
    return _user(row) if row else None


def user_by_oidc(conn: Connection, subject_or_email: str) -> User | None:
    """The user an OIDC sign-in (``st.login``) names: by ``oidc_subject``, else by a username
    equal to the e-mail address. Works before there is a scope (definer function)."""
    if not subject_or_email:
        return None
    return _user_from_definer(conn, "auth_user_by_oidc", subject_or_email)


def list_users(conn: Connection) -> pd.DataFrame:
    """Every user the scope may see, without hashes, with their sign-in state."""
    frame = pd.read_sql(text(f"""
        SELECT {USER_COLS}, oidc_subject, created_at, updated_at, password_changed_at
        FROM users ORDER BY username"""), conn)
    return frame.astype(object).where(frame.notna(), None)  # None, not NaN, for missing values


# --- changing users -----------------------------------------------------------------------------

def _require_admin() -> Scope:
    sc = current()
    if sc is None or sc.role not in ("system", "admin"):
        raise PermissionError("only an administrator may manage users")
    return sc


def _validate(conn: Connection, username: str, role: str, communities: tuple[str, ...], grids: tuple[int, ...]) -> None:
    if not USERNAME_RE.match(username or ""):
        raise UserInvalid("username", "invalid_format")
    if role not in USER_ROLES:
        raise UserInvalid("role", "unknown_role", {"allowed": list(USER_ROLES)})
    if communities:
        found = {r[0] for r in conn.execute(text("SELECT code FROM communities WHERE code = ANY(CAST(:c AS text[]))"),
                                            {"c": list(communities)})}
        missing = [c for c in communities if c not in found]
        if missing:
            raise UserInvalid("communities", "unknown_community", {"codes": missing})
    if role == "secretary" and not communities:
        raise UserInvalid("communities", "required_for_secretary")
    if grids:
        rows = conn.execute(text("SELECT id, valid_to IS NULL AS current FROM grids WHERE id = ANY(CAST(:g AS bigint[]))"),
                            {"g": [int(g) for g in grids]}).all()
        found = {int(r[0]): bool(r[1]) for r in rows}
        missing = [g for g in grids if int(g) not in found]
        if missing:
            raise UserInvalid("grids", "unknown_grid", {"ids": missing})
        retired = [g for g in grids if not found[int(g)]]
        if role == "worker" and retired:
            raise UserInvalid("grids", "grid_not_current", {"ids": retired})
    if role == "worker" and not grids:
        raise UserInvalid("grids", "required_for_worker")


def _check_password(password: str) -> None:
    if password is None or len(password) < get_settings().auth_password_min_length:
        raise UserInvalid("password", "too_short", {"min": get_settings().auth_password_min_length})


def _audit(conn: Connection, action: str, username: str, before: dict | None, after: dict | None) -> None:
    from layers.importer import audit

    audit(conn, action, "users", row_key=username, before=before, after=after)


def create_user(conn: Connection, username: str, password: str | None, role: str, *, communities=(), grids=(),
                resident_detail: bool = False, display_name: str | None = None,
                oidc_subject: str | None = None) -> User:
    """A new user (administrator or system scope only; the database checks that too).

    ``password`` None makes a user who can only sign in through OIDC.
    """
    _require_admin()
    communities = tuple(str(c) for c in communities)
    grids = tuple(int(g) for g in grids)
    _validate(conn, username, role, communities, grids)
    if password is not None:
        _check_password(password)
    if conn.execute(text("SELECT 1 FROM users WHERE username = :u"), {"u": username}).first() is not None:
        raise UserInvalid("username", "taken")
    row = conn.execute(text(f"""
        INSERT INTO users (username, display_name, role, communities, grids, resident_detail, password_hash,
                           oidc_subject, password_changed_at)
        VALUES (:u, :d, :r, CAST(:c AS char(12)[]), CAST(:g AS bigint[]), :rd, :h, :o,
                CASE WHEN CAST(:h AS text) IS NULL THEN NULL ELSE now() END)
        RETURNING {USER_COLS}"""),
        {"u": username, "d": display_name, "r": role, "c": list(communities), "g": list(grids), "rd": bool(resident_detail),
         "h": hash_password(password) if password is not None else None, "o": oidc_subject}).mappings().one()
    user = _user(row)
    _audit(conn, "user_create", username, None, user.to_dict())
    return user


def update_user(conn: Connection, username: str, **changes) -> User:
    """Change role, communities, grids, resident_detail, display_name, active or oidc_subject."""
    _require_admin()
    unknown = set(changes) - set(CHANGEABLE)
    if unknown:
        raise UserInvalid(min(unknown), "not_changeable")
    before = get_user(conn, username)
    if before is None:
        raise UserInvalid("username", "unknown_user")
    merged = before.to_dict() | {k: v for k, v in changes.items() if k in ("role", "communities", "grids")}
    communities = tuple(str(c) for c in merged["communities"])
    grids = tuple(int(g) for g in merged["grids"])
    _validate(conn, username, merged["role"], communities, grids)
    params = {"u": username, "r": merged["role"], "c": list(communities), "g": list(grids),
              "rd": bool(changes.get("resident_detail", before.resident_detail)),
              "d": changes.get("display_name", before.display_name),
              "a": bool(changes.get("active", before.active))}
    oidc = ", oidc_subject = :o" if "oidc_subject" in changes else ""
    if oidc:
        params["o"] = changes["oidc_subject"]
    row = conn.execute(text(f"""
        UPDATE users SET role = :r, communities = CAST(:c AS char(12)[]), grids = CAST(:g AS bigint[]),
               resident_detail = :rd, display_name = :d, active = :a{oidc}, updated_at = now()
        WHERE username = :u RETURNING {USER_COLS}"""), params).mappings().one_or_none()
    if row is None:  # the policy hid the row: not an administrator in the database's eyes
        raise PermissionError("only an administrator may manage users")
    user = _user(row)
    if before.active and not user.active:  # deactivated: signed out everywhere, now
        from gis.sessions import close_user_sessions

        close_user_sessions(conn, user.id)
    after = user.to_dict()
    if "oidc_subject" in changes:
        after["oidc_subject"] = changes["oidc_subject"]
    _audit(conn, "user_update", username, before.to_dict(), after)
    return user


def set_password(conn: Connection, username: str, password: str) -> None:
    """A new password (administrator or system); the user's open sessions end. The audit row
    says that it changed, never what to."""
    _require_admin()
    _check_password(password)
    n = conn.execute(text("UPDATE users SET password_hash = :h, password_changed_at = now(), updated_at = now() "
                          "WHERE username = :u"), {"u": username, "h": hash_password(password)}).rowcount
    if n == 0:
        raise UserInvalid("username", "unknown_user")
    conn.execute(text("SELECT auth_succeeded(:u)"), {"u": username})  # a reset also lifts a lock
    from gis.sessions import close_user_sessions

    close_user_sessions(conn, int(conn.execute(text("SELECT id FROM users WHERE username = :u"), {"u": username}).scalar_one()))
    _audit(conn, "user_password", username, None, {"password": "changed"})


def unlock(conn: Connection, username: str) -> None:
    """Clear a user's failed sign-ins and any lock (administrator or system); audited."""
    _require_admin()
    conn.execute(text("SELECT auth_succeeded(:u)"), {"u": username})
    _audit(conn, "user_unlock", username, None, None)


def grid_ids(conn: Connection, values) -> tuple[tuple[int, ...], list[str]]:
    """Grid ids for grid codes (current grids) or ids as typed by an operator; and what matched nothing."""
    ids: list[int] = []
    unknown: list[str] = []
    for v in values:
        v = str(v).strip()
        row = conn.execute(text("""SELECT id FROM grids WHERE code = :v AND valid_to IS NULL
                                   UNION ALL SELECT id FROM grids WHERE length(:v) < 14 AND :v ~ '^[0-9]+$' AND id = CAST(:v AS bigint)
                                   LIMIT 1"""), {"v": v}).first()
        if row is None:
            unknown.append(v)
        else:
            ids.append(int(row[0]))
    return tuple(ids), unknown
