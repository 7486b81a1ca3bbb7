"""Signed-in users for the dashboard tests: one account per role, made through ``layers.users``
exactly as an administrator would, and the two ways a test signs in (a session token for
Streamlit's AppTest, which has no cookies; the real form for the browser)."""
from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import text

from gis.db import owner_engine, transaction
from gis.scope import SYSTEM, use_scope
from gis.settings import ROOT

SCRIPT = str(ROOT / "ui" / "main.py")
PREFIX = "t_"


@dataclass(frozen=True)
class Account:
    role: str
    username: str
    password: str
    communities: tuple[str, ...] = ()
    grids: tuple[int, ...] = ()


def make_accounts() -> dict[str, Account]:
    """A leader, a secretary of the first community, a worker of that community's first two
    grids (the most one worker may hold), a planner, an administrator, a dispatcher, a
    member of the sanitation unit and a hotline operator; passwords are
    random for each test session (nothing to commit, nothing to guess)."""
    from layers import users as auth

    with owner_engine().begin() as c:
        # (escaped: "_" alone is LIKE's one-character wildcard and would take other users with it)
        c.execute(text("DELETE FROM users WHERE username LIKE :p ESCAPE '\\'"),
                  {"p": PREFIX.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "%"})
        community = c.execute(text("SELECT code FROM communities ORDER BY code LIMIT 1")).scalar_one()
        grids = tuple(int(g) for g in c.execute(text("""
            SELECT g.id FROM grids g WHERE g.valid_to IS NULL AND g.community_code = :c
             ORDER BY g.code LIMIT 2"""), {"c": community}).scalars())
    wanted = {
        "leader": Account("leader", PREFIX + "leader", secrets.token_urlsafe(12)),
        "secretary": Account("secretary", PREFIX + "secretary", secrets.token_urlsafe(12), communities=(community,)),
        "worker": Account("worker", PREFIX + "worker", secrets.token_urlsafe(12), communities=(community,), grids=grids),
        "planner": Account("planner", PREFIX + "planner", secrets.token_urlsafe(12)),
        "admin": Account("admin", PREFIX + "admin", secrets.token_urlsafe(12)),
        # the event roles (issue 16): the command centre, a handling unit (sanitation), the hotline
        "dispatcher": Account("dispatcher", PREFIX + "dispatcher", secrets.token_urlsafe(12)),
        "unit": Account("unit", PREFIX + "unit", secrets.token_urlsafe(12)),
        "hotline": Account("hotline", PREFIX + "hotline", secrets.token_urlsafe(12)),
    }
    with use_scope(SYSTEM), transaction() as conn:
        for a in wanted.values():
            auth.create_user(conn, a.username, a.password, a.role, communities=a.communities, grids=a.grids,
                             display_name=f"测试{a.role}")
        from layers import events

        events.set_unit_member(conn, wanted["unit"].username, "huanwei")  # a unit user acts for one unit
    return wanted


def session_token(account: Account) -> str:
    """A session as the sign-in form would open it (same table, same checks on every run)."""
    from layers import users as auth
    from webapp import sessions

    with use_scope(SYSTEM), transaction() as conn:
        user = auth.authenticate(conn, account.username, account.password)
        return sessions.open_session(conn, user.id, "pytest")


def apptest(account: Account | None, **query: str):
    """The page script under AppTest, signed in as ``account`` (None: signed out)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(SCRIPT, default_timeout=120)
    for k, v in query.items():
        at.query_params[k] = v
    if account is not None:
        at.session_state["wangge_session"] = session_token(account)
    return at.run()


def browser_sign_in(page, server: str, account: Account, lang: str = "zh", landing: bool = False) -> None:
    """Through the real form: the cookie it sets stays in the browser context. A leader lands on
    the first view (``/glance``); unless ``landing``, the test goes on to the dashboard."""
    page.goto(f"{server}/signin?lang={lang}")
    page.fill("#username", account.username)
    page.fill("#password", account.password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/signin" not in url, timeout=30000)
    if not landing and "/glance" in page.url:
        page.goto(f"{server}/?lang={lang}")


def open_screen(account: Account, path: str):
    """The page script opened at one screen (its ``url_path``), signed in as ``account``."""
    from streamlit.testing.v1 import AppTest

    from ui.screens import ROLE_SCREENS

    at = AppTest.from_file(SCRIPT, default_timeout=120)
    at.session_state["wangge_session"] = session_token(account)
    at.run()
    if ROLE_SCREENS[account.role][0][0] == path:  # the landing screen is open already
        return at
    # Callable pages have no file for AppTest.switch_page: pick the registered page by its URL path.
    found = [h for h, info in at._registered_pages.items() if info.get("url_pathname") == path]
    assert found, f"no screen at /{path} for {account.role}"
    at._page_hash = found[0]
    return at.run()
