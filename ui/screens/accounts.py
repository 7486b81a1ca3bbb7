"""Administrator: user accounts — create, change role and area, reset a password, deactivate.

The checks live in ``layers.users`` (and the database refuses a non-administrator's change
on its own, by policy); this screen only collects the values and shows each refusal by
field. A deactivation or password reset also ends the user's open sessions at once.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from layers import users as auth
from ui import data
from ui.common import fmt_time
from ui.i18n import t
from ui.inputs import text_box
from ui.state import ROLE_KEYS, language


def _areas(lang: str) -> tuple[dict[str, str], dict[int, str]]:
    """Community codes and grid ids with readable names for the pickers."""
    comms = data.communities(None)
    communities = dict(zip(comms["code"], comms["name"] + " (" + comms["code"] + ")"))
    grids = data.grid_choices(None)
    grid_names = dict(zip(grids["id"].astype(int), grids["code"] + " " + grids["name"].fillna("")))
    return communities, grid_names


PROBLEMS = ("invalid_format", "too_short", "unknown_role", "unknown_community", "required_for_secretary", "unknown_grid",
            "grid_not_current", "required_for_worker", "taken", "unknown_user")


def _refusal(exc: Exception, lang: str) -> None:
    """Which field, and why, in the user's language (``layers.users`` gives codes)."""
    field = getattr(exc, "field", None) or ("permission" if isinstance(exc, PermissionError) else None)
    code = getattr(exc, "message", None)
    problem = t(f"users.problem.{code}", lang) if code in PROBLEMS else (code or str(exc))
    st.error(t("users.refused", lang, field=t(f"users.field.{field}", lang) if field else "-", problem=problem))


def _user_form(prefix: str, lang: str, current: auth.User | None = None) -> dict:
    communities, grids = _areas(lang)
    c1, c2 = st.columns(2)
    role = c1.selectbox(t("users.role", lang), ROLE_KEYS, format_func=lambda r: t(f"role.{r}", lang), key=f"{prefix}_role",
                        index=ROLE_KEYS.index(current.role) if current and current.role in ROLE_KEYS else 0)
    display = text_box(t("users.display_name", lang), value=(current.display_name or "") if current else "",
                       max_chars=64, key=f"{prefix}_display", container=c2) or ""
    chosen_c = st.multiselect(t("users.communities", lang), list(communities), format_func=communities.get, placeholder=t("app.choose", lang),
                              default=[c for c in (current.communities if current else ()) if c in communities],
                              help=t("users.communities_help", lang), key=f"{prefix}_communities")
    chosen_g = st.multiselect(t("users.grids", lang), list(grids), format_func=grids.get, placeholder=t("app.choose", lang),
                              default=[g for g in (current.grids if current else ()) if g in grids],
                              help=t("users.grids_help", lang), key=f"{prefix}_grids")
    detail = st.checkbox(t("users.resident_detail", lang), value=bool(current.resident_detail) if current else False,
                         help=t("users.resident_detail_help", lang), key=f"{prefix}_detail")
    return {"role": role, "display_name": display.strip() or None, "communities": tuple(chosen_c),
            "grids": tuple(int(g) for g in chosen_g), "resident_detail": detail}


def _create(lang: str) -> None:
    with st.form("user_create", clear_on_submit=False):
        st.markdown(f"**{t('users.create', lang)}**")
        username = text_box(t("signin.username", lang), max_chars=64, key="new_username",
                            help=t("users.username_help", lang)) or ""
        values = _user_form("new", lang)
        p1, p2 = st.columns(2)
        pw1 = p1.text_input(t("users.password", lang), type="password", max_chars=256, key="new_pw1",
                            help=t("users.password_help", lang))
        pw2 = p2.text_input(t("users.password_again", lang), type="password", max_chars=256, key="new_pw2")
        if not st.form_submit_button(t("users.create", lang), type="primary"):
            return
    if pw1 != pw2:
        st.error(t("users.password_mismatch", lang))
        return
    try:
        user = data.create_user(username.strip(), pw1, values.pop("role"), **values)
    except data.Refused as exc:
        _refusal(exc.__cause__ or exc, lang)
        return
    st.toast(t("users.created", lang, user=user.username), icon="✅")
    st.success(t("users.created", lang, user=user.username))


def _edit(lang: str, table: pd.DataFrame) -> None:
    if table.empty:
        return
    name = st.selectbox(t("users.pick", lang), table["username"].tolist(), key="edit_user")
    current = data.user(name)
    if current is None:
        return
    with st.form(f"user_edit_{name}"):
        st.markdown(f"**{t('users.edit', lang)}：{name}**")
        values = _user_form(f"edit_{name}", lang, current)
        active = st.checkbox(t("users.active", lang), value=current.active, key=f"edit_{name}_active")
        saved = st.form_submit_button(t("users.save", lang), type="primary")
    if saved:
        try:
            data.update_user(name, active=active, **values)  # deactivating ends their sessions
        except data.Refused as exc:
            _refusal(exc.__cause__ or exc, lang)
        else:
            st.toast(t("users.saved", lang, user=name), icon="✅")
            st.success(t("users.saved", lang, user=name))
    with st.form(f"user_password_{name}", clear_on_submit=True):
        st.markdown(f"**{t('users.reset_password', lang)}**")
        p1, p2 = st.columns(2)
        pw1 = p1.text_input(t("users.password", lang), type="password", max_chars=256, key=f"pw1_{name}")
        pw2 = p2.text_input(t("users.password_again", lang), type="password", max_chars=256, key=f"pw2_{name}")
        if st.form_submit_button(t("users.reset_password", lang)):
            if pw1 != pw2:
                st.error(t("users.password_mismatch", lang))
                return
            try:
                data.set_password(name, pw1)  # and ends their sessions
            except data.Refused as exc:
                _refusal(exc.__cause__ or exc, lang)
            else:
                st.toast(t("users.password_set", lang, user=name), icon="✅")
                st.success(t("users.password_set", lang, user=name))


def users_table(table: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Accounts as an administrator reads them: words, names of areas, Beijing time, 「—」."""
    communities, grids = _areas(lang)
    yes_no = (lambda v: "是" if v else "否") if lang == "zh" else (lambda v: "yes" if v else "no")
    names = lambda vals, look: "、".join(str(look.get(v, v)) for v in (vals or [])) or "—"  # noqa: E731
    return pd.DataFrame({
        t("users.col.username", lang): table["username"],
        t("users.col.display_name", lang): table["display_name"].fillna("—"),
        t("users.col.role", lang): [t(f"role.{r}", lang) if r in ROLE_KEYS else r for r in table["role"]],
        t("users.col.communities", lang): [names(v, communities) for v in table["communities"]],
        t("users.col.grids", lang): [names([int(g) for g in (v or [])], grids) for v in table["grids"]],
        t("users.col.resident_detail", lang): [yes_no(bool(v)) for v in table["resident_detail"]],
        t("users.col.active", lang): [yes_no(bool(v)) for v in table["active"]],
        t("users.col.oidc", lang): [yes_no(bool(v)) for v in table["oidc_subject"]],
        t("users.col.updated_at", lang): [fmt_time(v, lang) for v in table["updated_at"]],
    })


def render() -> None:
    lang = language()
    st.title(t("page.users", lang))
    table = data.users()
    st.dataframe(users_table(table, lang), hide_index=True, width="stretch")
    left, right = st.columns(2)
    with left:
        _create(lang)
    with right:
        _edit(lang, table)
