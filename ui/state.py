"""Session state the screens share: language and role (sign-in will replace the role)."""
from __future__ import annotations

import streamlit as st

from gis.settings import get_settings
from ui.i18n import LANG_NAMES, LANGS

ROLE_KEYS = ("leader", "secretary", "worker", "planner", "admin")


def language() -> str:
    """Chinese unless the user (or ``?lang=en``, or WANGGE_LANGUAGE) chose English."""
    if "lang" not in st.session_state:
        asked = st.query_params.get("lang") or get_settings().language
        st.session_state["lang"] = asked if asked in LANGS else "zh"
    return st.session_state["lang"]


def language_picker() -> None:
    st.radio("语言 / Language", LANGS, format_func=LANG_NAMES.get, key="lang", horizontal=True)


def role() -> str | None:
    if "role" not in st.session_state:
        asked = st.query_params.get("role")
        st.session_state["role"] = asked if asked in ROLE_KEYS else None
    return st.session_state["role"]


def set_role(value: str | None) -> None:
    st.session_state["role"] = value
    if value is None and "role" in st.query_params:
        del st.query_params["role"]
