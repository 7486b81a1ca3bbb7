"""Who the app is acting for, carried into the database as a signed, per-transaction setting.

Why signed: the app connects as one role (``wangge_app``) for every user, so the database
can only tell users apart by what the app tells it. Row-level security policies read the
transaction-local setting ``wangge.scope``; if that setting were plain JSON, any SQL run on
the app role (a bug, an injection) could claim another grid or the administrator's role.
So the setting is ``<base64 payload>.<hex HMAC-SHA256>`` under a secret that the app reads
from its settings (``WANGGE_SCOPE_SECRET``) and the database keeps in an owner-only table;
the owner's SECURITY DEFINER function ``wangge_scope()`` (migration 0011) checks signature
and expiry and yields nothing otherwise, and then every policy yields no rows.

Where the scope comes from: ``current()`` (a ContextVar). The CLI and tests use ``SYSTEM``;
the Streamlit page sets the signed-in user's scope at the top of each run (``set_scope``).
``gis.db.app_engine()`` applies it at the start of every transaction.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass

from gis.settings import get_settings

ROLES = ("system", "admin", "leader", "secretary", "worker", "planner", "dispatcher", "unit", "hotline")
SETTING = "wangge.scope"  # the transaction-local GUC the policies read


@dataclass(frozen=True)
class Scope:
    """What one user may see: role, and the communities (12-digit codes) or grid ids it covers.

    ``communities`` empty means the whole sub-district for a leader or planner, and nothing
    for a secretary; ``grids`` is what a worker covers. ``resident_detail`` grants a leader
    the per-building group counts (otherwise aggregates only).
    """

    user: str
    role: str  # 'system'|'admin'|'leader'|'secretary'|'worker'|'planner'
    communities: tuple[str, ...] = ()
    grids: tuple[int, ...] = ()
    resident_detail: bool = False

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}")

    @property
    def sees_group_rows(self) -> bool:
        """Whether the policies show this scope per-building group counts (``building_groups``);
        if not, a screen shows totals (``analysis.groups``) and hides per-building group columns,
        which would otherwise read as zeros."""
        return self.role in ("system", "admin", "secretary", "worker") or (self.role == "leader" and self.resident_detail)


SYSTEM = Scope(user="system", role="system")

_CURRENT: ContextVar[Scope | None] = ContextVar("wangge_scope", default=None)


def current() -> Scope | None:
    """The scope the app acts for now (None: nobody, and the policies return no rows)."""
    return _CURRENT.get()


def set_scope(scope: Scope | None) -> None:
    """Set the scope for the rest of this context (the Streamlit script thread, per run)."""
    _CURRENT.set(scope)


@contextmanager
def use_scope(scope: Scope | None) -> Iterator[Scope | None]:
    """Act for ``scope`` inside the block, then restore what was there before."""
    tok = _CURRENT.set(scope)
    try:
        yield scope
    finally:
        _CURRENT.reset(tok)


def secret() -> str:
    """The signing secret: ``WANGGE_SCOPE_SECRET``, else one derived from the app role's
    password (so a deployment whose ``.env`` predates this setting still works: both the app
    and ``wangge db up`` derive the same value, and neither is readable by the app role's SQL)."""
    s = get_settings()
    if s.scope_secret:
        return s.scope_secret
    if not s.db_app_password and not s.database_url_override:
        raise RuntimeError("no WANGGE_SCOPE_SECRET and no app password to derive one from")
    basis = s.db_app_password or s.database_url
    return hashlib.sha256(("wangge-scope:" + basis).encode()).hexdigest()


def _payload(scope: Scope, expires: int) -> dict:
    d = asdict(scope)
    return {"u": d["user"], "r": d["role"], "c": list(d["communities"]), "g": [int(g) for g in d["grids"]],
            "d": bool(d["resident_detail"]), "exp": expires}


def token(scope: Scope, ttl_s: int | None = None, *, key: str | None = None, now: float | None = None) -> str:
    """The signed value for ``wangge.scope``: ``base64(json).hex(hmac_sha256(base64(json)))``.

    Short-lived (``settings.scope_ttl_s``) because a token is made for each transaction; a
    token copied out of a session stops working soon after.
    """
    ttl = get_settings().scope_ttl_s if ttl_s is None else ttl_s
    expires = int((time.time() if now is None else now) + ttl)
    body = base64.b64encode(json.dumps(_payload(scope, expires), separators=(",", ":"), ensure_ascii=True).encode()).decode()
    sig = hmac.new((key or secret()).encode(), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{sig}"


def apply(dbapi_connection, scope: Scope | None) -> None:
    """Set ``wangge.scope`` for the transaction that has just begun on a DBAPI connection.

    No scope: the setting is set to the empty string (not left alone), so that nothing
    a previous statement may have set on this pooled connection survives.
    """
    value = token(scope) if scope is not None else ""
    cur = dbapi_connection.cursor()
    try:
        # JIT off for the app's transactions: the policies' subplans inflate the planner's cost
        # estimates past jit_above_cost, and compiling then costs ~0.5 s on queries that run in
        # 50 ms without it (bench/bench_rls.py, the overview on 100,000 buildings).
        # SET LOCAL rather than set_config(..., true): the same transaction-local setting, but a
        # statement Citus propagates to the workers (citus.propagate_set_commands = 'local'), where
        # the row-level policies of the distributed tables read it (gis/citus.py); a function call
        # is not propagated. The token is base64 and hex, quoted as a literal all the same.
        from psycopg import sql

        cur.execute(sql.SQL("SET LOCAL {} = {}").format(sql.Identifier(*SETTING.split(".")), sql.Literal(value)))
        cur.execute("SET LOCAL jit = off")
    finally:
        cur.close()


def cache_key(scope: Scope | None = None) -> str:
    """A stable string naming a scope (not a secret): pass it to cached reads so that one
    user's cached figures are never served to another user with a different area."""
    s = scope if scope is not None else current()
    if s is None:
        return "none"
    return f"{s.role}|{s.user}|{','.join(s.communities)}|{','.join(map(str, s.grids))}|{int(s.resident_detail)}"
