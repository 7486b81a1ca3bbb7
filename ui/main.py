"""The page script ``app.py`` serves: language, role choice, then that role's screens.

Sign-in comes later; until then the role is chosen here (or given as ``?role=`` in the
URL) and kept for the session. Only the chosen role's screens are in the navigation.
"""
from __future__ import annotations

import streamlit as st

from ui import state
from ui.i18n import t
from ui.screens import ROLE_SCREENS, ROLES

st.set_page_config(page_title="网格 Wangge", page_icon="🗺️", layout="wide")
lang = state.language()
role = state.role()

with st.sidebar:
    st.markdown(f"### {t('app.title', lang)}")
    state.language_picker()
    if role:
        st.caption(f"{t('app.current_role', lang)}：**{t('role.' + role, lang)}**")
        if st.button(t("app.switch_role", lang), key="switch_role"):
            state.set_role(None)
            st.rerun()


def choose_role() -> None:
    st.title(t("app.title", lang))
    st.subheader(t("app.choose_role", lang))
    st.caption(t("app.role_note", lang))
    cols = st.columns(len(ROLES))
    for col, key in zip(cols, ROLES):
        with col.container(border=True):
            st.markdown(f"**{t('role.' + key, lang)}**")
            st.caption(t(f"role.{key}.desc", lang))
            if st.button(t("app.enter", lang), key=f"role_{key}", width="stretch"):
                state.set_role(key)
                st.rerun()


if role is None:
    nav = st.navigation([st.Page(choose_role, title=t("app.choose_role", lang), url_path="role", default=True)], position="hidden")
else:
    nav = st.navigation([
        st.Page(render, title=t(title, lang), url_path=path, default=i == 0)
        for i, (path, title, render) in enumerate(ROLE_SCREENS[role])
    ])
nav.run()
