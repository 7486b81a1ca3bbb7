"""Sign-in as a user meets it: the form over real HTTP (the dashboard started as
``streamlit run`` does), the session cookie, expiry and revocation, tiles per user, and
hostile input to the form. Row-level policies themselves: tests/test_security_db.py."""
from __future__ import annotations

import http.client
from urllib.parse import urlencode, urlsplit

import pytest
from sqlalchemy import text

from gis.db import owner_engine
from gis.settings import get_settings
from tests.accounts import Account, apptest, session_token
from tests.test_ui_browser import server  # noqa: F401 - the dashboard fixture

pytestmark = pytest.mark.browser


def _request(base: str, method: str, path: str, body: dict | None = None, cookie: str | None = None,
             raw: bytes | None = None, extra: dict | None = None) -> http.client.HTTPResponse:
    """One request, redirects not followed (the test looks at them)."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    headers = {}
    data = raw if raw is not None else (urlencode(body).encode() if body is not None else None)
    if data is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if cookie:
        headers["Cookie"] = f"{get_settings().session_cookie}={cookie}"
    headers.update(extra or {})
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]
    conn.close()
    return response


def _post_signin(base: str, username: str, password: str, next_path: str = "/") -> http.client.HTTPResponse:
    return _request(base, "POST", "/signin", {"username": username, "password": password, "lang": "zh", "next": next_path})


def _cookie(response: http.client.HTTPResponse) -> str | None:
    for header in response.headers.get_all("set-cookie") or []:
        name, _, rest = header.partition("=")
        if name == get_settings().session_cookie:
            return rest.split(";", 1)[0]
    return None


def _state(username: str) -> tuple:
    """Everything sign-in may change about a user (and the row count, which it must not)."""
    with owner_engine().connect() as c:
        users = c.execute(text("SELECT count(*) FROM users")).scalar_one()
        row = c.execute(text("SELECT password_hash, role, active FROM users WHERE username = :u"), {"u": username}).first()
    return users, tuple(row) if row else None


@pytest.fixture(autouse=True)
def no_earlier_failures() -> None:
    """Failed sign-ins are counted per name typed and kept in the database; the suite runs
    again and again on the same test database (CI on this machine), so the names these tests
    type (unknown, hostile, empty) must start each test with no failures behind them."""
    with owner_engine().begin() as c:
        c.execute(text("DELETE FROM login_attempts"))


@pytest.fixture
def fresh(accounts: dict) -> Account:
    """A throw-away worker account (lock-out tests must not lock the shared ones)."""
    import secrets

    from layers import users as auth
    from gis.db import transaction
    from gis.scope import SYSTEM, use_scope

    name = "t_tmp_" + secrets.token_hex(4)
    password = secrets.token_urlsafe(12)
    w = accounts["worker"]
    with use_scope(SYSTEM), transaction() as conn:
        auth.create_user(conn, name, password, "worker", communities=w.communities, grids=w.grids)
    yield Account("worker", name, password, w.communities, w.grids)
    with owner_engine().begin() as c:
        c.execute(text("DELETE FROM users WHERE username = :u"), {"u": name})


def test_pages_without_a_session_go_to_the_form(server: str) -> None:  # noqa: F811
    r = _request(server, "GET", "/staffing?lang=en")
    assert r.status == 303
    assert r.headers["location"].startswith("/signin?lang=en&next=") and "staffing" in r.headers["location"]
    form = _request(server, "GET", "/signin")
    assert form.status == 200 and 'name="password"' in form.body.decode()


def test_good_password_sets_an_httponly_cookie_and_returns(server: str, accounts: dict) -> None:  # noqa: F811
    a = accounts["planner"]
    r = _post_signin(server, a.username, a.password, next_path="/planning")
    assert r.status == 303 and r.headers["location"].startswith("/planning")
    header = next(h for h in r.headers.get_all("set-cookie") if h.startswith(get_settings().session_cookie))
    assert "HttpOnly" in header and "SameSite=lax" in header.replace("Lax", "lax")
    token = _cookie(r)
    with owner_engine().connect() as c:  # only the hash of the token is stored
        stored = c.execute(text("SELECT token_sha256 FROM user_sessions s JOIN users u ON u.id = s.user_id "
                                "WHERE u.username = :u ORDER BY s.created_at DESC LIMIT 1"), {"u": a.username}).scalar_one()
    assert token not in stored and len(stored) == 64


def test_next_cannot_send_the_user_to_another_site(server: str, accounts: dict) -> None:  # noqa: F811
    a = accounts["planner"]
    for evil in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        r = _post_signin(server, a.username, a.password, next_path=evil)
        assert r.status == 303 and r.headers["location"].startswith("/?"), r.headers["location"]


def test_wrong_password_and_unknown_user_look_the_same(server: str, fresh: Account) -> None:  # noqa: F811
    wrong = _post_signin(server, fresh.username, "not-the-password")
    unknown = _post_signin(server, "t_nobody_here", "not-the-password")
    assert wrong.status == unknown.status == 401
    assert "用户名或密码错误" in wrong.body.decode() and "用户名或密码错误" in unknown.body.decode()
    assert _cookie(wrong) is None and _cookie(unknown) is None


def test_repeated_failures_slow_down_then_lock(server: str, fresh: Account) -> None:  # noqa: F811
    s = get_settings()
    codes = [_post_signin(server, fresh.username, "wrong-password-x").status for _ in range(s.auth_lock_after + 1)]
    assert 429 in codes, codes  # slowed down (or locked) before the lock-out count …
    r = _post_signin(server, fresh.username, fresh.password)  # … and now even the right password is refused
    assert r.status == 429 and _cookie(r) is None
    assert "锁定" in r.body.decode() or "秒后再试" in r.body.decode()


def test_session_ends_after_idle_time_and_on_deactivation(accounts: dict, fresh: Account) -> None:
    token = session_token(fresh)
    from streamlit.testing.v1 import AppTest

    from tests.accounts import SCRIPT

    def run() -> AppTest:
        at = AppTest.from_file(SCRIPT, default_timeout=120)
        at.session_state["wangge_session"] = token
        return at.run()

    assert any("我的网格" in t.value for t in run().title)
    with owner_engine().begin() as c:  # idle longer than allowed
        c.execute(text("UPDATE user_sessions SET last_seen = now() - make_interval(mins => :m) WHERE user_id = "
                       "(SELECT id FROM users WHERE username = :u)"),
                  {"m": get_settings().session_idle_minutes + 1, "u": fresh.username})
    at = run()
    assert not at.title or not any("我的网格" in t.value for t in at.title)
    assert any("登录已过期" in w.value for w in at.warning)
    # A new session works until the administrator deactivates the account.
    token = session_token(fresh)
    assert any("我的网格" in t.value for t in run().title)
    with owner_engine().begin() as c:
        c.execute(text("UPDATE users SET active = false WHERE username = :u"), {"u": fresh.username})
    at = run()
    assert not any("我的网格" in t.value for t in at.title) and not at.dataframe


def test_each_role_sees_only_its_screens(accounts: dict) -> None:
    from ui.screens import ROLE_SCREENS

    for role, account in accounts.items():
        at = apptest(account)
        assert not at.exception, role
        first_title = ROLE_SCREENS[role][0][1]
        from ui.i18n import t

        assert any(t(first_title, "zh") in x.value for x in at.title), (role, [x.value for x in at.title])


def test_tiles_need_a_session_and_show_only_the_users_area(server: str, accounts: dict) -> None:  # noqa: F811
    """A worker's building tiles hold their grids' buildings and nobody else's."""
    w = accounts["worker"]
    with owner_engine().connect() as c:
        mine = c.execute(text("""
            SELECT ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)) FROM buildings WHERE grid_id = ANY(:g) LIMIT 1"""),
            {"g": list(w.grids)}).first()
        other = c.execute(text("""
            SELECT ST_X(ST_Centroid(b.geom)), ST_Y(ST_Centroid(b.geom)) FROM buildings b
             WHERE b.community_code <> :c
             ORDER BY ST_Distance(b.geom, (SELECT ST_Collect(geom) FROM grids WHERE id = ANY(:g))) DESC LIMIT 1"""),
            {"g": list(w.grids), "c": w.communities[0]}).first()
    import math

    def path(lon: float, lat: float, z: int = 17) -> str:
        n = 1 << z  # the slippy-map tile holding (lon, lat)
        x = int((lon + 180) / 360 * n)
        y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
        return f"/tiles/buildings/{z}/{x}/{y}.pbf?cache=0"

    assert _request(server, "GET", path(*mine)).status == 401  # no session: nothing at all
    worker = session_token(w)
    leader = session_token(accounts["leader"])
    assert _request(server, "GET", path(*mine), cookie=worker).status == 200
    assert _request(server, "GET", path(*other), cookie=worker).status == 204  # another community's block: empty
    assert _request(server, "GET", path(*other), cookie=leader).status == 200  # … which the leader sees
    assert _request(server, "GET", path(*mine), cookie="forged" + worker[6:]).status == 401


@pytest.mark.parametrize("username", [
    "' OR '1'='1", "admin'--", "t_admin'; DROP TABLE users; --", "\" OR 1=1 --", "t_admin\x00", "<script>alert(1)</script>",
    "x" * 5000,
])
def test_hostile_usernames_are_refused_and_change_nothing(server: str, accounts: dict, username: str) -> None:  # noqa: F811
    before = _state(accounts["admin"].username)
    r = _post_signin(server, username, "' OR '1'='1")
    assert r.status in (401, 413) and _cookie(r) is None
    body = r.body.decode()
    assert "<script>alert(1)</script>" not in body  # shown, if at all, as text
    assert _state(accounts["admin"].username) == before


def test_oversized_form_is_refused(server: str) -> None:  # noqa: F811
    r = _request(server, "POST", "/signin", raw=b"username=a&password=" + b"x" * 100_000)
    assert r.status == 413 and _cookie(r) is None


def test_demo_accounts_sign_in_and_are_made_once(accounts: dict, conn) -> None:
    """``wangge demo accounts``: one user per role, the worker holding a real worker's grids."""
    from layers import users as auth
    from layers.demo import DEMO_ACCOUNTS, ensure_accounts

    conn.execute(text("DELETE FROM users WHERE username LIKE 'demo\\_%'"))
    first = ensure_accounts(conn, "demo-password-0")
    assert [r["created"] for r in first] == [True] * len(DEMO_ACCOUNTS)
    assert all(not r["created"] for r in ensure_accounts(conn, "another-password"))
    worker = auth.authenticate(conn, "demo_worker", "demo-password-0")
    held = conn.execute(text("""SELECT array_agg(grid_id ORDER BY grid_id) FROM assignments a JOIN cadres c ON c.id = a.cadre_id
                                 WHERE a.valid_to IS NULL AND a.role = 'full_time_worker' AND c.cadre_no = (
                                   SELECT min(c2.cadre_no) FROM cadres c2 JOIN assignments a2 ON a2.cadre_id = c2.id
                                    WHERE a2.valid_to IS NULL AND a2.role = 'full_time_worker' AND a2.grid_id IS NOT NULL)""")).scalar_one()
    assert worker.role == "worker" and list(worker.grids) == list(held) and worker.grids


def test_single_sign_on_is_offered_only_when_configured(demo: dict) -> None:
    """Without an ``[auth]`` secrets section there is no SSO button; with one there is (the
    identity provider itself cannot be reached here, so the round trip is not exercised)."""
    from streamlit.testing.v1 import AppTest

    from tests.accounts import SCRIPT

    plain = AppTest.from_file(SCRIPT, default_timeout=120).run()
    assert not [b for b in plain.button if b.key == "oidc_login"]
    at = AppTest.from_file(SCRIPT, default_timeout=120)
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
                          "client_id": "wangge", "client_secret": "s", "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}
    at.run()
    assert not at.exception
    assert [b for b in at.button if b.key == "oidc_login"]
    assert not at.metric and not at.dataframe


def test_password_reset_and_deactivation_end_open_sessions(fresh: Account) -> None:
    """Through layers.users (so the CLI's `wangge user passwd|set --inactive` does it too)."""
    from layers import users as auth
    from webapp import sessions
    from gis.db import transaction
    from gis.scope import SYSTEM, use_scope

    token = session_token(fresh)
    with use_scope(SYSTEM), transaction() as conn:
        assert sessions.resolve(conn, token).status == "ok"
        auth.set_password(conn, fresh.username, "a-brand-new-password")
        assert sessions.resolve(conn, token).status == "unknown"  # revoked
    token = session_token(Account("worker", fresh.username, "a-brand-new-password"))
    with use_scope(SYSTEM), transaction() as conn:
        auth.update_user(conn, fresh.username, active=False)
        assert sessions.resolve(conn, token).status == "unknown"


def test_cross_site_sign_in_is_refused(server: str, fresh: Account) -> None:  # noqa: F811
    """Login CSRF (issue 19): another site's form posting our /signin is refused with 403 and
    opens no session; the same post from our own page signs in."""
    from urllib.parse import urlsplit

    own = f"http://{urlsplit(server).netloc}"
    body = {"username": fresh.username, "password": fresh.password, "next": "/"}
    for bad in ({"Origin": "http://evil.example"}, {"Origin": "null"}, {"Referer": "http://evil.example/form.html"}):
        r = _request(server, "POST", "/signin", body, extra=bad)
        assert r.status == 403 and "set-cookie" not in {k.lower() for k, _ in r.getheaders()}, bad
    ok = _request(server, "POST", "/signin", body, extra={"Origin": own})
    assert ok.status == 303 and get_settings().session_cookie in (ok.getheader("set-cookie") or "")
