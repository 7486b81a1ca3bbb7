"""The audit log: every change (assignment, import, grid edit, user change) with who, when,
before and after.

Why the log is trustworthy: the app role cannot write ``audit_log`` at all (migration 0016:
no INSERT, UPDATE, DELETE or TRUNCATE, and row-level security FORCEd); rows come from the
owner's ``audit_write``, which takes the actor from the signed scope the database verified
and the time from the database's clock, or from the owner itself (CLI, imports).
"""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, text

from gis.inert import inert_frame
from gis.scope import current

COLUMNS = ["id", "at", "actor", "scope_user", "action", "table_name", "row_key", "district_code", "before", "after"]


def record(conn: Connection, action: str, table: str | None, *, actor: str | None = None, row_key: str | None = None,
           before: dict | None = None, after: dict | None = None, district_code: str | None = None) -> None:
    """One audit row, through the owner's ``audit_write`` (migration 0016): on the app's
    connection the actor is the verified scope's user and ``actor`` is ignored; on the owner's
    (CLI, imports) ``actor`` names who acted (default: the current scope's user, else system).
    The time is the database's clock."""
    scope = current()
    conn.execute(
        text("SELECT audit_write(:action, :table, :row_key, :district, CAST(:before AS jsonb), CAST(:after AS jsonb), :actor)"),
        {"actor": actor or (scope.user if scope else None), "action": action, "table": table, "row_key": row_key,
         "district": district_code,
         "before": json.dumps(before, ensure_ascii=False, default=str) if before is not None else None,
         "after": json.dumps(after, ensure_ascii=False, default=str) if after is not None else None},
    )


def list_audit(conn: Connection, since: datetime | str | None = None, actor: str | None = None,
               action: str | None = None, limit: int = 1000, *, until: datetime | str | None = None,
               table: str | None = None) -> pd.DataFrame:
    """Audit rows, newest first, filtered by time, actor (``actor`` or verified ``scope_user``),
    action and table. ``before``/``after`` come back as dicts."""
    frame = pd.read_sql(text(f"""
        SELECT {', '.join(COLUMNS)} FROM audit_log
        WHERE (CAST(:since AS timestamptz) IS NULL OR at >= CAST(:since AS timestamptz))
          AND (CAST(:until AS timestamptz) IS NULL OR at < CAST(:until AS timestamptz))
          AND (CAST(:actor AS text) IS NULL OR actor = :actor OR scope_user = :actor)
          AND (CAST(:action AS text) IS NULL OR action = :action)
          AND (CAST(:tbl AS text) IS NULL OR table_name = :tbl)
        ORDER BY at DESC, id DESC LIMIT :lim"""), conn,
        params={"since": since, "until": until, "actor": actor, "action": action, "tbl": table, "lim": int(limit)})
    return frame.astype(object).where(frame.notna(), None)  # None, not NaN, for missing values


def actions(conn: Connection) -> list[str]:
    """The actions that occur in the log (for a filter list)."""
    return [r[0] for r in conn.execute(text("SELECT DISTINCT action FROM audit_log ORDER BY 1"))]


def export_audit(conn: Connection, path: str | Path | None = None, **filters) -> bytes:
    """The filtered log as CSV (UTF-8 with BOM so that Excel shows Chinese), written to
    ``path`` when given; ``.xlsx`` paths get an Excel file. Returns the bytes either way."""
    frame = list_audit(conn, **{"limit": 1_000_000, **filters})
    for col in ("before", "after"):
        frame[col] = frame[col].map(lambda v: json.dumps(v, ensure_ascii=False, default=str) if v is not None else "")
    frame["at"] = frame["at"].astype(str)
    if path is not None and str(path).endswith(".xlsx"):
        import io

        buf = io.BytesIO()
        inert_frame(frame).to_excel(buf, index=False)
        data = buf.getvalue()
    else:
        data = inert_frame(frame).to_csv(index=False).encode("utf-8-sig")
    if path is not None:
        Path(path).write_bytes(data)
    return data
