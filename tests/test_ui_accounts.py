"""The administrator's user screen and audit screen, through the signed-in page script."""
from __future__ import annotations

import secrets

import pytest
from sqlalchemy import text

from layers.users import AuthError, authenticate
from gis.db import app_engine, owner_engine, transaction
from gis.scope import SYSTEM, use_scope
from tests.accounts import Account, open_screen


def _user(name: str):
    with owner_engine().connect() as c:
        return c.execute(text("SELECT role, communities::text[] AS communities, grids, active, password_hash "
                              "FROM users WHERE username = :u"), {"u": name}).first()


def _submit(at, label: str):
    return at.button[[b.label for b in at.button].index(label)].click().run()


def test_admin_creates_edits_resets_and_deactivates_a_user(accounts: dict) -> None:
    admin = accounts["admin"]
    name = "t_ui_" + secrets.token_hex(3)
    password = secrets.token_urlsafe(12)
    try:
        at = open_screen(admin, "users")
        at.text_input(key="new_username").input(name)
        at.selectbox(key="new_role").set_value("secretary")
        at.multiselect(key="new_communities").select(accounts["secretary"].communities[0])
        at.text_input(key="new_pw1").input(password)
        at.text_input(key="new_pw2").input(password)
        at = _submit(at, "新建用户")
        assert not at.exception and any(name in s.value for s in at.success), [e.value for e in at.error]
        row = _user(name)
        assert row.role == "secretary" and [c.strip() for c in row.communities] == list(accounts["secretary"].communities)
        assert row.password_hash.startswith("$argon2id$") and password not in row.password_hash
        # The new user signs in and lands on the community screen.
        from tests.accounts import apptest

        signed = apptest(Account("secretary", name, password, accounts["secretary"].communities))
        assert any("社区概况" in x.value for x in signed.title)

        at = open_screen(admin, "users")
        at.selectbox(key="edit_user").set_value(name).run()
        at.checkbox(key=f"edit_{name}_active").uncheck()
        at = _submit(at, "保存")
        assert not at.exception and _user(name).active is False
        with pytest.raises(AuthError) as refused, use_scope(SYSTEM), transaction() as c:
            authenticate(c, name, password)
        assert refused.value.code == "inactive"

        before = _user(name).password_hash
        at = open_screen(admin, "users")
        at.selectbox(key="edit_user").set_value(name).run()
        new = secrets.token_urlsafe(12)
        at.text_input(key=f"pw1_{name}").input(new)
        at.text_input(key=f"pw2_{name}").input(new)
        at = _submit(at, "重设密码")
        assert not at.exception and _user(name).password_hash != before
        with owner_engine().connect() as c:
            actions = [r[0] for r in c.execute(text("SELECT action FROM audit_log WHERE table_name = 'users' AND row_key = :u ORDER BY id"),
                                              {"u": name})]
            actors = {r[0] for r in c.execute(text("SELECT scope_user FROM audit_log WHERE table_name = 'users' AND row_key = :u"), {"u": name})}
        assert len(actions) == 3 and actors == {admin.username}
    finally:
        with owner_engine().begin() as c:
            c.execute(text("DELETE FROM users WHERE username = :u"), {"u": name})


def test_mismatched_passwords_save_nothing(accounts: dict) -> None:
    name = "t_ui_" + secrets.token_hex(3)
    at = open_screen(accounts["admin"], "users")
    at.text_input(key="new_username").input(name)
    at.selectbox(key="new_role").set_value("planner")
    at.text_input(key="new_pw1").input("a-long-password-1")
    at.text_input(key="new_pw2").input("a-long-password-2")
    at = _submit(at, "新建用户")
    assert "两次输入的密码不一致" in " ".join(e.value for e in at.error)
    assert _user(name) is None


def test_audit_screen_lists_and_exports(accounts: dict) -> None:
    from layers.audit import list_audit

    at = open_screen(accounts["admin"], "audit")
    assert not at.exception
    shown = at.dataframe[0].value
    with use_scope(SYSTEM), app_engine().connect() as c:
        import datetime as dt

        expected = list_audit(c, since=dt.date.today() - dt.timedelta(days=30), limit=5000)
    from ui.screens.audit import row_words

    assert len(shown) == len(expected) and list(shown["对象"]) == [row_words(k, "zh") for k in expected["row_key"]]
    assert not shown["变更内容"].str.contains(r"[{}]").any()  # changes in words, not raw JSON
    assert not shown["时间"].str.contains("T|\\+00").any()  # Beijing time in Chinese date format
    labels = [d.label for d in at.get("download_button")]
    assert "导出 CSV" in labels and "导出 Excel" in labels
