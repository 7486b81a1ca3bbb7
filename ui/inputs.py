"""Text boxes whose value is safe to hand on: control characters removed, length bounded.

Why: PostgreSQL text cannot hold a NUL byte, so a pasted ``\\x00`` would otherwise end in
a database error instead of a message; other control characters (a pasted tab or line
break in a code, a bidi override in a name) only ever hide what a value really is. SQL
injection is not this module's job: every query binds its parameters.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Any

import streamlit as st

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def clean_text(value: str | None, max_chars: int = 200) -> str:
    """NFC, no control or direction-override characters, trimmed, at most ``max_chars``."""
    if not value:
        return ""
    return _CONTROL.sub("", unicodedata.normalize("NFC", value)).strip()[:max_chars]


def text_box(label: str, *, key: str, max_chars: int = 200, container: Any = st, **kwargs: Any) -> str | None:
    """``st.text_input`` that returns a cleaned value, or None when nothing was typed."""
    raw = container.text_input(label, key=key, max_chars=max_chars, **kwargs)
    return clean_text(raw, max_chars) or None
