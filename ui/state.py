"""Session state the screens share: language and the signed-in user.

The user comes from the session cookie set by ``/signin`` (``webapp/signin.py``), checked in
the database on every run (``webapp.sessions``: idle and absolute expiry, revocation), or
from an OIDC sign-in through ``st.login`` mapped to a user an administrator created. The
user's scope is then set for this script thread (``gis.scope.set_scope``), so every query
the screens make runs under the row-level policies of that user's area.
"""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from gis.settings import get_settings
from ui.i18n import LANG_NAMES, LANGS

ROLE_KEYS = ("leader", "secretary", "worker", "planner", "admin", "dispatcher", "unit", "hotline")
TOKEN_KEY = "wangge_session"  # session_state: a token given by the OIDC path or by tests (AppTest has no cookies)


def language() -> str:
    """Chinese unless the user (or ``?lang=en``, or WANGGE_LANGUAGE) chose English."""
    if "lang" not in st.session_state:
        asked = st.query_params.get("lang") or get_settings().language
        st.session_state["lang"] = asked if asked in LANGS else "zh"
    return st.session_state["lang"]


def language_picker() -> None:
    st.radio("语言 / Language", LANGS, format_func=LANG_NAMES.get, key="lang", horizontal=True)


@dataclass(frozen=True)
class SignIn:
    """The outcome of checking this run's session: a user, or why there is none."""

    user: object | None  # layers.users.User
    status: str  # ok | expired | unknown | inactive | no_account


def _token() -> str | None:
    token = st.session_state.get(TOKEN_KEY) or st.context.cookies.get(get_settings().session_cookie)
    return token if isinstance(token, str) else None


def _oidc_token() -> str | None:
    """A Wangge session for someone signed in through the identity provider, if they have an account."""
    if not oidc_configured() or not getattr(st.user, "is_logged_in", False):
        return None
    from layers import users as auth
    from webapp import sessions
    from gis.db import transaction
    from gis.scope import SYSTEM, use_scope

    subject = st.user.get("sub") or st.user.get("email")
    with use_scope(SYSTEM), transaction() as conn:
        user = auth.user_by_oidc(conn, str(subject)) if subject else None
        if user is None or not user.active:
            return None
        token = sessions.open_oidc_session(conn, str(subject), "oidc")
        if token is None:
            return None
    st.session_state[TOKEN_KEY] = token
    return token


def check() -> SignIn:
    """Who is signed in for this run; sets the database scope for the script thread."""
    from gis import scope
    from webapp import sessions
    from gis.db import transaction

    scope.set_scope(None)
    st.session_state.pop("user", None)  # this run's user only: nothing survives a failed check
    token = _token() or _oidc_token()
    if not token:
        return SignIn(None, "unknown")
    with scope.use_scope(scope.SYSTEM), transaction() as conn:
        status, user = sessions.signed_in_user(conn, token)
    if status in ("expired", "unknown"):
        st.session_state.pop(TOKEN_KEY, None)
    if user is None or user.role not in ROLE_KEYS:
        return SignIn(None, status if user is None else "inactive")
    scope.set_scope(user.scope())
    st.session_state["user"] = user
    return SignIn(user, "ok")


def user():
    """The signed-in user of this run (``check()`` has run at the top of the page script)."""
    return st.session_state.get("user")


def role() -> str | None:
    u = user()
    return u.role if u is not None else None


def sign_out() -> None:
    from gis import scope
    from webapp import sessions
    from gis.db import transaction

    with scope.use_scope(scope.SYSTEM), transaction() as conn:
        sessions.close_session(conn, _token())
    st.session_state.pop(TOKEN_KEY, None)
    st.session_state.pop("user", None)
    scope.set_scope(None)
    if oidc_configured() and getattr(st.user, "is_logged_in", False):
        st.logout()


def oidc_configured() -> bool:
    """``st.login`` needs an ``[auth]`` section in ``.streamlit/secrets.toml`` (see README)."""
    try:
        return "auth" in st.secrets
    except (FileNotFoundError, st.errors.StreamlitSecretNotFoundError):  # no secrets file at all
        return False


def tile_token() -> str | None:
    """A session token for tile URLs, needed only when there is no cookie (OIDC sign-in)."""
    if st.context.cookies.get(get_settings().session_cookie):
        return None
    return st.session_state.get(TOKEN_KEY)


def actor() -> str:
    """Who the audit log names for a change made on this screen: the signed-in user."""
    u = user()
    return u.username if u is not None else "dashboard"
