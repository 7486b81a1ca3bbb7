"""The page script ``app.py`` serves: who is signed in, language, then that role's screens.

Every run starts by checking the session (``ui.state.check``), which also sets the
database scope for this thread; a visitor without a valid session sees only the way to
the sign-in form. The navigation holds only the signed-in role's screens.
"""
from __future__ import annotations

import json
import sys
import time
from urllib.parse import quote

import streamlit as st

from gis.settings import get_settings
from ui import seam, state
from ui.i18n import t
from ui.screens import ROLE_SCREENS
from ui.seam import show_failure
from webapp.signin import SIGNIN_PATH

st.set_page_config(page_title="网格 Wangge", page_icon="🗺️", layout="wide")
_profile = get_settings().profile_runs
if _profile:
    _started = time.perf_counter()
    seam.start_run()
lang = state.language()
# Streamlit's own English: the uploader's instructions and button are replaced by the
# app's words (the screens label every uploader and give its size limit themselves).
st.markdown(f"""<style>
[data-testid="stFileUploaderDropzoneInstructions"] {{ display: none; }}
[data-testid="stFileUploaderDropzone"] button {{ visibility: hidden; position: relative; }}
[data-testid="stFileUploaderDropzone"] button::after {{ content: "{t('app.choose_file', lang)}"; visibility: visible;
  position: absolute; inset: 0; display: flex; align-items: center; justify-content: center;
  border: 1px solid rgba(49, 51, 63, 0.2); border-radius: 0.5rem; background: white; }}
[data-testid="stMetricLabel"], [data-testid="stMetricLabel"] * {{ white-space: normal !important; overflow: visible !important;
  text-overflow: clip !important; }}
</style>""", unsafe_allow_html=True)
_t = time.perf_counter()
signed = state.check()
seam.mark("check", _t)
user = signed.user

with st.sidebar:
    st.markdown(f"### {t('app.title', lang)}")
    state.language_picker()
    if user is not None:
        st.caption(f"{user.display_name or user.username}（{user.username}）· **{t('role.' + user.role, lang)}**")
        if st.button(t("app.sign_out", lang), key="sign_out"):
            state.sign_out()
            st.rerun()


def signed_out() -> None:
    """No valid session: say why (expired, deactivated, no account) and where to sign in."""
    st.title(t("app.title", lang))
    if signed.status in ("expired", "inactive"):
        st.warning(t(f"signin.{signed.status}_session", lang))
    next_path = quote("/" + st.context.url.split("/", 3)[-1] if st.context.url else "/")
    st.markdown(f'<a href="{SIGNIN_PATH}?lang={lang}&next={next_path}" target="_self">{t("signin.go", lang)}</a>',
                unsafe_allow_html=True)
    if state.oidc_configured():
        if st.button(t("signin.oidc", lang), key="oidc_login"):
            st.login()
        if getattr(st.user, "is_logged_in", False):
            st.error(t("signin.no_account", lang))


if user is None:
    nav = st.navigation([st.Page(signed_out, title=t("signin.title", lang), url_path="welcome", default=True)],
                        position="hidden")
else:
    nav = st.navigation([
        st.Page(render, title=t(title, lang), url_path=path, default=i == 0)
        for i, (path, title, render) in enumerate(ROLE_SCREENS[user.role])
    ])
try:
    nav.run()
except Exception as exc:  # noqa: BLE001 - never a traceback on screen: a sentence and a reference number
    show_failure(exc, lang)
finally:
    if _profile:  # bench/bench_map.py reads these lines (the run's breakdown)
        print("wangge-run " + json.dumps({"page": nav.url_path, "ms": round((time.perf_counter() - _started) * 1000, 1),
                                          "parts": seam.run_timings()}), file=sys.stderr, flush=True)
