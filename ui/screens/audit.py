"""Administrator: the audit log — who changed what, when, with before and after.

Read-only here as in the database (the app role may only add rows). Filters narrow the
list; the export holds exactly the rows shown, with before/after as JSON text.
"""
from __future__ import annotations

import datetime as dt
import io
import json

import pandas as pd
import streamlit as st

from gis.inert import inert_frame
from gis.db import transaction
from ui.i18n import t
from ui.inputs import text_box
from ui.state import language

LIMIT = 5000


def _as_text(value: object) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def excel_bytes(table: pd.DataFrame) -> bytes:
    """The rows shown, as a workbook; times as text in the server's zone (Excel holds no zones)."""
    out = io.BytesIO()
    frame = table.copy()
    for col in frame.columns:
        if frame[col].map(lambda v: isinstance(v, (dt.datetime, pd.Timestamp))).any():
            frame[col] = frame[col].map(lambda v: v.isoformat(sep=" ", timespec="seconds") if hasattr(v, "isoformat") else v)
    inert_frame(frame).to_excel(out, index=False, sheet_name="audit_log")
    return out.getvalue()


def render() -> None:
    from layers.audit import actions, list_audit

    lang = language()
    st.title(t("page.audit", lang))
    c1, c2, c3 = st.columns(3)
    since = c1.date_input(t("audit.since", lang), value=dt.date.today() - dt.timedelta(days=30), key="audit_since")
    who = text_box(t("audit.actor", lang), key="audit_actor", max_chars=64, container=c2)
    with transaction() as conn:
        known = actions(conn)
    action = c3.selectbox(t("audit.action", lang), [None, *known], format_func=lambda a: t("audit.all", lang) if a is None else a,
                          key="audit_action")
    with transaction() as conn:
        table = list_audit(conn, since=since, actor=who, action=action, limit=LIMIT)
    for col in ("before", "after"):
        if col in table:
            table[col] = table[col].map(_as_text)
    st.caption(t("audit.count", lang, n=len(table), limit=LIMIT))
    st.dataframe(table, hide_index=True, width="stretch")
    stamp = dt.datetime.now().strftime("%Y%m%d_%H%M")
    d1, d2 = st.columns(2)
    d1.download_button(t("audit.csv", lang), inert_frame(table).to_csv(index=False).encode("utf-8-sig"), f"audit_log_{stamp}.csv",
                       "text/csv", key="audit_csv")
    d2.download_button(t("audit.xlsx", lang), excel_bytes(table), f"audit_log_{stamp}.xlsx",
                       "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", key="audit_xlsx")
