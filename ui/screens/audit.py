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
from layers.vocab import CADRE_ROLES, label
from ui import data
from ui.common import fmt_time
from ui.i18n import T, t
from ui.seam import one_language
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


ACTIONS = ("import", "assign", "unassign", "cadre_edit", "user_create", "user_update", "user_password", "user_unlock",
           "grid_draft", "grid_draft_edit", "grid_draft_accept", "grid_draft_discard", "grid_code", "event_report", "event_status")
TABLES = ("users", "assignments", "cadres", "grids", "grid_drafts", "buildings", "cameras", "facilities", "roads", "communities",
          "events")


CADRE_ROLE_CODES = frozenset(r.code for r in CADRE_ROLES)


def action_name(code: object, lang: str) -> str:
    """An action in words; one the table does not know yet is shown by its words, not its code.
    A case's step (``event_file``, ``event_dispatch``…) is named by the event screens' words."""
    code = str(code or "")
    if f"audit.act.{code}" in T:
        return t(f"audit.act.{code}", lang)
    if code.startswith("event_") and f"act.{code[6:]}" in T:
        return t("audit.act.event", lang, act=t(f"act.{code[6:]}", lang))
    return code.replace("_", " ")


def table_name(code: object, lang: str) -> str:
    code = str(code or "")
    return t(f"audit.tab.{code}", lang) if f"audit.tab.{code}" in T else (code.replace("_", " ") or "—")


def _value(k: str, v: object, lang: str) -> object:
    """A case's codes in words (stage, unit, class, source, reason) and its times in Beijing time."""
    if not isinstance(v, str) or not v:
        return v
    from layers import events as ev
    from layers.event_rules import get_rules

    if k == "status" and f"stage.{v}" in T:
        return t(f"stage.{v}", lang)
    if k in ("unit", "proposed_unit"):
        return ev.unit_label(v, lang)
    if k == "class_code":
        return get_rules().name(v, lang)
    if k in ("source", "reason") and f"{k}.{v}" in T:
        return t(f"{k}.{v}", lang)
    if k.endswith("_at"):
        return fmt_time(v, lang)
    return v


def _parts(v: object, lang: str) -> object:
    """A list of records in words: their names (staff), else how many (a proposal's parts);
    the export keeps them whole."""
    if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
        if all("name" in x for x in v):
            return "、".join(str(x["name"]) for x in v)
        return t("audit.items", lang, n=len(v))
    return v


def change_text(before: object, after: object, lang: str) -> str:
    """What changed, in words: 「角色：网格员 → 街道领导；姓名：…」 (no raw JSON)."""
    b = before if isinstance(before, dict) else {}
    a = after if isinstance(after, dict) else {}
    parts = []
    for k in list(dict.fromkeys([*b, *a])):
        if k in ("id", "seconds") or (k == "kind" and (a.get("class_code") or b.get("class_code"))):
            continue  # (a case's kind is its class's name: the class is shown, in the user's language)
        old, new = b.get(k), a.get(k)
        if old == new and b:
            continue
        if k == "layer":
            new = table_name(new, lang)
        if k == "role":  # a user's role, or a cadre's role in an assignment
            old, new = (t(f"role.{v}", lang) if isinstance(v, str) and f"role.{v}" in T
                        else label(CADRE_ROLES, v, lang) if isinstance(v, str) and v in CADRE_ROLE_CODES else v
                        for v in (old, new))
        if k == "password":
            old, new = None, t("audit.changed", lang)
        old, new = _value(k, old, lang), _value(k, new, lang)
        old, new = _parts(old, lang), _parts(new, lang)
        if isinstance(new, list) and new and all(isinstance(x, str) for x in new):
            new = [one_language(x, lang) for x in new]
        name = t(f"audit.field.{k}", lang) if f"audit.field.{k}" in T else k.replace("_", " ")
        show = lambda v: "—" if v in (None, "", [], {}) else ("、".join(map(str, v)) if isinstance(v, list) else  # noqa: E731
                                                            (("是" if v else "否") if lang == "zh" else ("yes" if v else "no")) if isinstance(v, bool) else
                                                            json.dumps(v, ensure_ascii=False, default=str) if isinstance(v, dict) else str(v))
        colon = "：" if lang == "zh" else ": "
        parts.append(f"{name}{colon}{show(old)} → {show(new)}" if b else f"{name}{colon}{show(new)}")
    return ("；" if lang == "zh" else "; ").join(parts) or "—"


def row_words(key: object, lang: str) -> str:
    """The row a change touched: an assignment's ``grid:CODE`` as 「网格 CODE」; names as they are."""
    if key is None or (isinstance(key, float) and pd.isna(key)) or key == "":
        return "—"
    key = str(key)
    if key.startswith("grid:"):
        return t("audit.row.grid", lang, code=key[5:])
    return key


def shown_table(table: pd.DataFrame, lang: str) -> pd.DataFrame:
    """The rows as a reader sees them: words for actions and tables, Beijing time, changes in words."""
    return pd.DataFrame({
        t("audit.col.at", lang): [fmt_time(v, lang) for v in table["at"]],
        t("audit.col.actor", lang): [t("audit.system", lang) if a == "system" else (a or "—") for a in table["actor"]],
        t("audit.col.action", lang): [action_name(v, lang) for v in table["action"]],
        t("audit.col.table", lang): [table_name(v, lang) for v in table["table_name"]],
        t("audit.col.row", lang): [row_words(v, lang) for v in table["row_key"]],
        t("audit.col.change", lang): [change_text(b, a, lang) for b, a in zip(table["before"], table["after"])],
    })


def render() -> None:
    lang = language()
    st.title(t("page.audit", lang))
    c1, c2, c3 = st.columns(3)
    since = c1.date_input(t("audit.since", lang), value=dt.date.today() - dt.timedelta(days=30), key="audit_since",
                          format="YYYY/MM/DD")
    who = text_box(t("audit.actor", lang), key="audit_actor", max_chars=64, container=c2)
    known = data.audit_actions()
    action = c3.selectbox(t("audit.action", lang), [None, *known], format_func=lambda a: t("audit.all", lang) if a is None else action_name(a, lang),
                          key="audit_action")
    table = data.audit_log(since=since, actor=who, action=action, limit=LIMIT)
    st.caption(t("audit.count", lang, n=len(table), limit=LIMIT))
    shown = shown_table(table, lang) if len(table) else pd.DataFrame()
    st.dataframe(shown, hide_index=True, width="stretch")
    export = table.copy()
    for col in ("before", "after"):
        if col in export:
            export[col] = export[col].map(_as_text)
    stamp = dt.datetime.now().strftime("%Y%m%d_%H%M")
    d1, d2 = st.columns(2)
    d1.download_button(t("audit.csv", lang), inert_frame(export).to_csv(index=False).encode("utf-8-sig"), f"audit_log_{stamp}.csv",
                       "text/csv", key="audit_csv")
    d2.download_button(t("audit.xlsx", lang), excel_bytes(export), f"audit_log_{stamp}.xlsx",
                       "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", key="audit_xlsx")
