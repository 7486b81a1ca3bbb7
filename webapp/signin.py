"""The sign-in page: a plain HTML form served by the dashboard's own process.

Why outside Streamlit: only an HTTP response can set an HttpOnly cookie, and only a
cookie survives a page reload and reaches the tile requests (``webapp/tiles.py``), which
must see the same user as the page. So ``GET /signin`` shows the form, ``POST /signin``
checks the password (``layers.users``: argon2 hashes, slow-down, lock-out) and answers with
the session cookie and a redirect; every page and tile then resolves that cookie
(``webapp.sessions``). Pages opened without a session are sent here by ``SignInRedirect``.
"""
from __future__ import annotations

import html
from urllib.parse import parse_qs, quote, urlsplit

from gis.db import transaction
from gis.scope import SYSTEM, use_scope
from gis.settings import get_settings
from layers.users import AuthError, answer, authenticate, challenge
from ui.i18n import t
from webapp.sessions import open_session

SIGNIN_PATH = "/signin"
# The street leader's first view (webapp/glance.py): where a leader lands after signing in
# without asking for a page, drawn in well under the Streamlit dashboard's time; every other
# role lands on the dashboard ("/"), as before.
GLANCE_PATH = "/glance"
LANDING = {"leader": GLANCE_PATH}
MAX_FORM_BYTES = 4096  # a username and a password; anything larger is not a sign-in
# Paths a browser may load without a session: the form itself, Streamlit's own plumbing
# (the page script checks the session again), static files, and tiles (which answer an
# unsigned request with empty tiles: row-level security sees no user).
OPEN_PREFIXES = (SIGNIN_PATH, "/_stcore", "/static", "/app/static", "/tiles", "/favicon", "/auth", "/oauth2callback")


def safe_next(value: str | None) -> str:
    """Only a path on this site: never an absolute URL (no open redirect to another host)."""
    if not value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value[:500]


def _lang(value: str | None) -> str:
    return "en" if value == "en" else "zh"


def page(lang: str = "zh", message: str | None = None, username: str = "", next_path: str = "/") -> str:
    """The form; every value shown is escaped (a hostile username is text, not markup)."""
    other = "en" if lang == "zh" else "zh"
    msg = f'<p class="err" role="alert">{html.escape(message)}</p>' if message else ""
    return f"""<!doctype html>
<html lang="{'zh-CN' if lang == 'zh' else 'en'}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(t('signin.title', lang))} · 网格 Wangge</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "Noto Sans SC", "Microsoft YaHei", sans-serif; background: #f5f5f4; margin: 0; }}
main {{ max-width: 360px; margin: 12vh auto; background: #fff; padding: 2rem; border-radius: 10px;
        box-shadow: 0 1px 4px rgba(0,0,0,.15); }}
h1 {{ font-size: 1.4rem; margin: 0 0 .3rem; }} p.sub {{ color: #57534e; margin: 0 0 1.2rem; }}
label {{ display: block; margin: .8rem 0 .3rem; }}
input[type=text], input[type=password] {{ width: 100%; box-sizing: border-box; padding: .55rem; font-size: 1rem;
        border: 1px solid #a8a29e; border-radius: 6px; }}
button {{ margin-top: 1.2rem; width: 100%; padding: .6rem; font-size: 1rem; background: #b91c1c; color: #fff;
        border: 0; border-radius: 6px; cursor: pointer; }}
.err {{ color: #b91c1c; background: #fef2f2; padding: .5rem; border-radius: 6px; }}
.lang {{ float: right; font-size: .9rem; }}
</style></head><body><main>
<a class="lang" href="{SIGNIN_PATH}?lang={other}&amp;next={quote(next_path)}">{'English' if other == 'en' else '中文'}</a>
<h1>{html.escape(t('app.title', lang))}</h1><p class="sub">{html.escape(t('signin.title', lang))}</p>
{msg}
<form method="post" action="{SIGNIN_PATH}" autocomplete="on">
<input type="hidden" name="lang" value="{lang}"><input type="hidden" name="next" value="{html.escape(next_path)}">
<label for="username">{html.escape(t('signin.username', lang))}</label>
<input type="text" id="username" name="username" value="{html.escape(username)}" maxlength="64" required autofocus>
<label for="password">{html.escape(t('signin.password', lang))}</label>
<input type="password" id="password" name="password" maxlength="256" required>
<button type="submit">{html.escape(t('signin.submit', lang))}</button>
</form></main></body></html>"""


def error_text(code: str, retry_after: float, lang: str) -> str:
    if code == "slow_down":
        return t("signin.slow_down", lang).format(seconds=max(1, round(retry_after)))
    if code == "locked":
        return t("signin.locked", lang).format(minutes=max(1, round(retry_after / 60)))
    if code == "inactive":
        return t("signin.inactive", lang)
    return t("signin.bad_credentials", lang)


def sign_in(username: str, password: str, user_agent: str | None) -> tuple[str | None, str | None, float]:
    """(cookie value, None, 0) on success, else (None, error code, seconds to wait).

    The failure counters are written in the same transaction that checks the password,
    and the transaction commits either way: a failed attempt must count.
    """
    # The Argon2id hashing (CPU-bound, long under load) runs between two short transactions, never
    # inside one: a transaction held open for it holds a pooled connection, and behind PgBouncer a
    # server connection, so fifty sign-ins at once used to exhaust the pool (bench/bench_load.py).
    with use_scope(SYSTEM), transaction() as conn:
        try:
            ch = challenge(conn, username)
        except AuthError as exc:
            return None, exc.code, float(getattr(exc, "retry_after", 0) or 0)
    computed = answer(ch, password)
    with use_scope(SYSTEM), transaction() as conn:
        try:
            user = authenticate(conn, username, password, user_agent=user_agent, computed=computed)
        except AuthError as exc:
            return None, exc.code, float(getattr(exc, "retry_after", 0) or 0)
        return open_session(conn, user.id, user_agent), None, 0.0


def same_origin(headers) -> bool:
    """Whether a POST comes from our own page (login CSRF: another site's form must not sign a
    browser in under the attacker's account). Browsers send ``Origin`` on every cross-site POST;
    it (or, without it, ``Referer``) must name this host. A request with neither (not a browser's
    cross-site form) passes; ``Origin: null`` (sandboxed frames, file: pages) does not."""
    from urllib.parse import urlsplit

    host = (headers.get("x-forwarded-host") or headers.get("host") or "").split(",")[0].strip().lower()
    origin = headers.get("origin")
    if origin is None:
        referer = headers.get("referer")
        if not referer:
            return True
        origin = referer
    if origin.strip().lower() == "null":
        return False
    return bool(host) and urlsplit(origin.strip()).netloc.lower() == host


def cookie_header_args() -> dict:
    s = get_settings()
    return {"key": s.session_cookie, "httponly": True, "samesite": "lax", "secure": s.session_cookie_secure,
            "path": "/", "max_age": s.session_max_hours * 3600}


async def signin_endpoint(request):  # starlette Request -> Response
    from anyio import to_thread
    from starlette.responses import HTMLResponse, RedirectResponse

    if request.method == "GET":
        q = request.query_params
        return HTMLResponse(page(_lang(q.get("lang")), next_path=safe_next(q.get("next"))))
    if not same_origin(request.headers):
        lang = _lang(request.query_params.get("lang"))
        return HTMLResponse(page(lang, t("signin.cross_site", lang)), status_code=403)
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return HTMLResponse(page("zh", t("signin.too_large", "zh")), status_code=413)
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
    lang, next_path = _lang(form.get("lang")), safe_next(form.get("next"))
    username, password = (form.get("username") or "").strip(), form.get("password") or ""
    if "\x00" in username or "\x00" in password:  # no name or password holds a NUL; PostgreSQL text cannot
        username, password = "", ""
    token, code, wait = await to_thread.run_sync(sign_in, username, password, request.headers.get("user-agent"))
    if token is None:
        status = 429 if code in ("slow_down", "locked") else 401
        shown = username if len(username) <= 64 else ""
        return HTMLResponse(page(lang, error_text(code or "bad_credentials", wait, lang), shown, next_path), status_code=status)
    if next_path == "/":  # no page asked for: the role's landing page
        next_path = await to_thread.run_sync(landing, token)
    response = RedirectResponse(next_path + ("&" if "?" in next_path else "?") + f"lang={lang}", status_code=303)
    response.set_cookie(value=token, **cookie_header_args())
    return response


def landing(token: str) -> str:
    """Where a user lands after signing in with no page asked for: their role's ``LANDING``
    page, else the dashboard. The session's scope is read through the tiles' session cache,
    which the first map's tiles then find filled."""
    from webapp.tiles import SESSIONS

    scope = SESSIONS.scope_for(token)
    return LANDING.get(getattr(scope, "role", None), "/")


class SignInRedirect:
    """ASGI middleware: a page asked for without a session cookie goes to the sign-in form.

    Only a first, cheap filter for people: the page script and the tile route check the
    session themselves (an old or revoked cookie passes here and is refused there).
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("method") == "GET":
            path = scope.get("path", "/")
            if not path.startswith(OPEN_PREFIXES) and "." not in path.rsplit("/", 1)[-1]:
                cookies = _cookies(scope)
                if get_settings().session_cookie not in cookies:
                    from starlette.responses import RedirectResponse

                    query = scope.get("query_string", b"").decode("latin-1")
                    target = path + ("?" + query if query else "")
                    lang = "en" if "lang=en" in query else "zh"
                    response = RedirectResponse(f"{SIGNIN_PATH}?lang={lang}&next={quote(target)}", status_code=303)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def _cookies(scope) -> dict[str, str]:
    from http.cookies import CookieError, SimpleCookie

    raw = b"; ".join(v for k, v in scope.get("headers", []) if k == b"cookie").decode("latin-1")
    jar = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:  # a malformed Cookie header: as if there were none
        return {}
    return {k: m.value for k, m in jar.items()}


def routes() -> list:
    from starlette.routing import Route

    return [Route(SIGNIN_PATH, signin_endpoint, methods=["GET", "POST"])]
