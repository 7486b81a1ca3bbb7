"""Users and signing in: argon2 password hashes, slow-down and lock-out, user management.

Why the database does the bookkeeping: the app role may not read password hashes
(``users.password_hash`` is left out of its column grant, and no function returns one) nor
the table of failed attempts nor the sessions. Signing in happens before there is a scope,
so it goes through the owner's SECURITY DEFINER functions (migrations 0011, 0016):
``auth_challenge`` (parameters and salt only), ``auth_login`` (compares, counts, locks,
opens the session). Failures are counted per name typed, whether or not the user exists,
and an unknown name costs the same hash computation: the answers and their timing do not
tell whether a user exists.

Creating and changing users is allowed to an administrator (or the system) only, and the
``users`` policies enforce that in the database too; every change is audited with the
acting scope's user and the before/after (never the hash).
"""
from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
from dataclasses import dataclass, field

import pandas as pd
from argon2 import PasswordHasher, Type
from argon2.low_level import hash_secret
from sqlalchemy import Connection, text

from gis.errors import BadInput, NotAllowed
from gis.scope import Scope, current
from gis.settings import get_settings
from layers.audit import record

USER_ROLES = ("admin", "leader", "secretary", "worker", "planner", "dispatcher", "unit", "hotline")
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{2,64}$")
CHANGEABLE = ("role", "communities", "grids", "resident_detail", "display_name", "active", "oidc_subject")

_HASHER = PasswordHasher()  # argon2id with the library's current defaults (RFC 9106 low-memory profile)


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


class AuthError(NotAllowed):
    """Signing in failed. ``code``: bad_credentials | locked | inactive | slow_down; the UI
    translates the code. ``retry_after``: seconds until another attempt may succeed (0 if
    not limited)."""

    def __init__(self, code: str, retry_after: float = 0.0) -> None:
        super().__init__(code, key=f"auth.{code}", params={"retry_after": max(0.0, float(retry_after))})
        self.code = code
        self.retry_after = max(0.0, float(retry_after))


@dataclass
class UserInvalid(BadInput):
    """A user field that cannot be accepted; ``field`` names it, ``message`` says why (code form)."""

    field: str
    message: str
    extra: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"

    def human(self) -> str:
        return f"{self.field}: {self.message} {self.extra or ''}"

    def to_dict(self) -> dict:
        return {"ok": False, "field": self.field, "message": self.message, **self.extra}


# --- signing in -------------------------------------------------------------------------------

def challenge(conn: Connection, username: str) -> dict:
    """The Argon2id parameters and salt to hash what was typed with (``auth_challenge``), or
    ``AuthError`` when the account is locked or must wait. No secret in it."""
    name = (username or "").strip()[:200]
    ch = dict(conn.execute(text("SELECT * FROM auth_challenge(:u)"), {"u": name}).mappings().one())
    if ch["status"] != "ok":
        raise AuthError(ch["status"], ch["retry_after"] or 0)
    return ch


def answer(ch: dict, password: str) -> str | None:
    """Argon2id of ``password`` under a :func:`challenge`: no database, about 0.3 s of CPU. The
    web sign-in computes it between two short transactions, so that no pooled connection (and,
    behind PgBouncer, no server connection) is held open while it runs (bench/bench_load.py:
    fifty sign-ins at once held every connection of the pool for the hashing and the later ones
    timed out)."""
    return _compute(ch["params"], ch["salt"], int(ch["hash_len"]), password or "")


def authenticate(conn: Connection, username: str, password: str, *, user_agent: str | None = None,
                 computed: str | None = None) -> User:
    """The user whose name and password these are, or ``AuthError``.

    The password hash never reaches the app: ``auth_challenge(name)`` gives the Argon2id
    parameters and salt only (a salt derived from the name for an unknown one, so the answer
    does not tell), the app computes the hash of what was typed with them, and
    ``auth_login(name, computed, token digest)`` compares inside the database, counts the
    failure or clears the count, enforces slow-down and lock, and on success opens the
    session (expiry from the database's own settings). :func:`webapp.sessions.open_session`
    hands out that session's token.

    Order of checks: locked → wait (slow-down) → password → active. A locked or slowed-down
    attempt is refused without hashing (and does not count). A failure is counted in a
    transaction of its own, committed at once, so it holds whatever the caller does with its
    own transaction after the exception. ``computed``: the :func:`answer` to a :func:`challenge`
    the caller made before this transaction (the database still enforces lock and slow-down).
    """
    name = (username or "").strip()[:200]
    if computed is None:  # else the caller hashed under a challenge() of its own (webapp/signin.py)
        computed = answer(challenge(conn, name), password)
    token = secrets.token_urlsafe(32)
    sql = text("SELECT * FROM auth_login(:u, :h, :d, :ua)")
    args = {"u": name, "h": computed, "d": token_digest(token), "ua": user_agent}
    sp = conn.begin_nested()
    row = conn.execute(sql, args).mappings().one()
    if row["status"] in ("ok", "inactive"):
        sp.commit()
    else:  # count it where it stays: a transaction of its own
        sp.rollback()
        with conn.engine.begin() as own:
            row = own.execute(sql, args | {"d": None}).mappings().one()
        if row["status"] in ("ok", "inactive"):  # (only if the caller's transaction hid a change)
            row = {**row, "status": "bad_credentials", "retry_after": 0}
    if row["status"] not in ("ok", "inactive"):
        raise AuthError(row["status"], row["retry_after"] or 0)
    user = _user(row)
    if not user.active or row["status"] == "inactive":
        raise AuthError("inactive")
    _hold(user.id, token)
    return user


def token_digest(token: str) -> str:
    """What the database keeps of a session token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


# Sessions opened by a verified sign-in (authenticate) whose token the caller has not picked
# up yet, per user id; this thread's only (webapp.sessions.open_session hands them out).
_HELD = threading.local()


def _hold(user_id: int, token: str) -> None:
    if not hasattr(_HELD, "tokens"):
        _HELD.tokens = {}
    _HELD.tokens[int(user_id)] = token


def take_held_token(user_id: int) -> str | None:
    """The token of the session ``authenticate`` opened for ``user_id`` in this thread (once)."""
    return getattr(_HELD, "tokens", {}).pop(int(user_id), None)


def _compute(params: str, salt_b64: str, hash_len: int, password: str) -> str | None:
    """Argon2id of ``password`` with the stored hash's parameters and salt, encoded the way
    argon2-cffi stores it, so the database can compare the two strings."""
    m = re.match(r"^\$argon2id\$v=(\d+)\$m=(\d+),t=(\d+),p=(\d+)$", params or "")
    if not m:
        return None
    version, memory, time_cost, parallelism = (int(x) for x in m.groups())
    salt = base64.b64decode(salt_b64 + "=" * (-len(salt_b64) % 4))
    return hash_secret(password.encode("utf-8"), salt, time_cost=time_cost, memory_cost=memory,
                       parallelism=parallelism, hash_len=hash_len, type=Type.ID, version=version).decode("ascii")


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
    record(conn, action, "users", row_key=username, before=before, after=after)


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
    conn.execute(text("SELECT auth_unlock(:u)"), {"u": username})  # a reset also lifts a lock
    close_user_sessions(conn, int(conn.execute(text("SELECT id FROM users WHERE username = :u"), {"u": username}).scalar_one()))
    _audit(conn, "user_password", username, None, {"password": "changed"})


def close_user_sessions(conn: Connection, user_id: int) -> int:
    """End every session of a user (deactivated, password reset). Here, not in
    ``webapp/sessions.py``: the command line deactivates users too, and must not need the web."""
    return int(conn.execute(text("SELECT session_revoke_user(:u)"), {"u": user_id}).scalar_one())


def unlock(conn: Connection, username: str) -> None:
    """Clear a user's failed sign-ins and any lock (administrator or system); audited."""
    _require_admin()
    conn.execute(text("SELECT auth_unlock(:u)"), {"u": username})
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
