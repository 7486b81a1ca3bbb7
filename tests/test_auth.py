"""Signing in and user management (layers/users.py) on the app's own connection.

Time is never waited for: the tests move ``login_attempts.last_failed_at`` and
``locked_until`` back (as the owner) to stand for the minutes passing.
"""
from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from layers import users as auth
from gis.db import app_engine, owner_engine, transaction
from gis.scope import SYSTEM, Scope, use_scope
from gis.settings import get_settings

PREFIX = "tauth_"
PASSWORD = "correct horse battery"


def _cleanup() -> None:
    with owner_engine().begin() as c:
        c.execute(text("DELETE FROM users WHERE username LIKE :p"), {"p": PREFIX + "%"})
        c.execute(text("DELETE FROM login_attempts WHERE username LIKE :p"), {"p": PREFIX + "%"})


@pytest.fixture
def users(demo) -> Iterator[dict]:
    """A worker of the first grid and an administrator, committed, removed afterwards."""
    _cleanup()
    with owner_engine().connect() as c:
        grid = int(c.execute(text("SELECT id FROM grids WHERE valid_to IS NULL ORDER BY code LIMIT 1")).scalar_one())
    tag = secrets.token_hex(3)
    with transaction() as conn:  # the app role, SYSTEM scope (tests' default)
        worker = auth.create_user(conn, f"{PREFIX}w{tag}", PASSWORD, "worker", grids=(grid,), display_name="网格员")
        admin = auth.create_user(conn, f"{PREFIX}a{tag}", PASSWORD, "admin")
    try:
        yield {"worker": worker, "admin": admin, "grid": grid}
    finally:
        _cleanup()


def attempt(username: str, password: str) -> auth.User | auth.AuthError:
    """One sign-in as the dashboard does it: no scope yet, the app role, its own transaction."""
    try:
        with use_scope(None), transaction() as conn:
            return auth.authenticate(conn, username, password)
    except auth.AuthError as exc:
        return exc


def time_passes(username: str, seconds: float) -> None:
    with owner_engine().begin() as c:
        c.execute(text("""UPDATE login_attempts SET last_failed_at = last_failed_at - make_interval(secs => :s),
                                                    locked_until = locked_until - make_interval(secs => :s)
                          WHERE username = :u"""), {"u": username, "s": seconds})


def test_sign_in_gives_the_user_and_their_scope(users):
    w = users["worker"]
    got = attempt(w.username, PASSWORD)
    assert isinstance(got, auth.User) and got.id == w.id
    assert got.scope() == Scope(user=w.username, role="worker", grids=(users["grid"],))
    with use_scope(got.scope()), app_engine().connect() as c:
        assert c.execute(text("SELECT count(DISTINCT grid_id) FROM buildings")).scalar_one() == 1


def test_unknown_user_and_wrong_password_look_the_same(users):
    wrong = attempt(users["worker"].username, "not the password")
    unknown = attempt(PREFIX + "nobody", "not the password")
    assert isinstance(wrong, auth.AuthError) and isinstance(unknown, auth.AuthError)
    assert (wrong.code, wrong.retry_after) == (unknown.code, unknown.retry_after) == ("bad_credentials", 0.0)


def test_failures_slow_down_then_lock_and_success_resets(users):
    s = get_settings()
    name = users["worker"].username
    for _ in range(s.auth_slowdown_after):
        assert attempt(name, "wrong password").code == "bad_credentials"
    # now each attempt must wait; even the right password is refused during the wait
    early = attempt(name, PASSWORD)
    assert early.code == "slow_down" and early.retry_after > 0
    time_passes(name, early.retry_after + 1)
    fourth = attempt(name, "wrong password")
    assert fourth.code == "bad_credentials" and fourth.retry_after > early.retry_after  # the wait grows
    time_passes(name, fourth.retry_after + 1)
    locked = attempt(name, "wrong password")  # the 5th failure locks
    assert s.auth_lock_after == 5 and locked.code == "locked"
    assert locked.retry_after == pytest.approx(s.auth_lock_minutes * 60, abs=5)
    assert attempt(name, PASSWORD).code == "locked"  # the right password does not open a lock
    time_passes(name, s.auth_lock_minutes * 60 + 1)
    assert isinstance(attempt(name, PASSWORD), auth.User)
    with owner_engine().connect() as c:
        assert c.execute(text("SELECT count(*) FROM login_attempts WHERE username = :u"), {"u": name}).scalar_one() == 0


def test_unknown_names_slow_down_like_known_ones(users):
    s = get_settings()
    for name in (users["worker"].username, PREFIX + "ghost"):
        codes = [attempt(name, "wrong password").code for _ in range(s.auth_slowdown_after + 1)]
        assert codes == ["bad_credentials"] * s.auth_slowdown_after + ["slow_down"], name


def test_inactive_user_cannot_sign_in(users):
    with transaction() as conn:
        auth.update_user(conn, users["worker"].username, active=False)
    assert attempt(users["worker"].username, PASSWORD).code == "inactive"


def test_app_role_cannot_read_hashes_or_attempts(users):
    for sql in ("SELECT password_hash FROM users", "SELECT * FROM users", "SELECT * FROM login_attempts"):
        with use_scope(SYSTEM), app_engine().connect() as c, pytest.raises(ProgrammingError, match="permission denied"):
            c.execute(text(sql))
    with transaction() as conn:
        frame = auth.list_users(conn)
    assert "password_hash" not in frame.columns and users["worker"].username in set(frame["username"])


# --- managing users --------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, field, message", [
    ({"username": "x"}, "username", "invalid_format"),
    ({"username": "has space"}, "username", "invalid_format"),
    ({"username": "a" * 65}, "username", "invalid_format"),
    ({"password": "short"}, "password", "too_short"),
    ({"role": "king"}, "role", "unknown_role"),
    ({"role": "system"}, "role", "unknown_role"),
    ({"role": "secretary", "communities": ("999999999999",)}, "communities", "unknown_community"),
    ({"role": "secretary"}, "communities", "required_for_secretary"),
    ({"grids": (999999,)}, "grids", "unknown_grid"),
    ({"grids": ()}, "grids", "required_for_worker"),
])
def test_user_validation(conn, demo, kwargs, field, message):
    grid = int(conn.execute(text("SELECT id FROM grids WHERE valid_to IS NULL LIMIT 1")).scalar_one())
    args = {"username": PREFIX + "v", "password": PASSWORD, "role": "worker", "grids": (grid,)} | kwargs
    with pytest.raises(auth.UserInvalid) as err:
        auth.create_user(conn, args.pop("username"), args.pop("password"), args.pop("role"), **args)
    assert (err.value.field, err.value.message) == (field, message)


def test_worker_needs_current_grids(conn, demo):
    retired = conn.execute(text("""
        INSERT INTO grids (code, community_code, district_code, geom, valid_from, valid_to)
        SELECT code, community_code, district_code, geom, valid_from, current_date FROM grids WHERE valid_to IS NULL LIMIT 1
        RETURNING id""")).scalar_one()
    with pytest.raises(auth.UserInvalid) as err:
        auth.create_user(conn, PREFIX + "r", PASSWORD, "worker", grids=(retired,))
    assert (err.value.field, err.value.message) == ("grids", "grid_not_current")
    auth.create_user(conn, PREFIX + "r", PASSWORD, "planner", grids=(retired,))  # others may keep history


def test_taken_username(users):
    with transaction() as conn, pytest.raises(auth.UserInvalid) as err:
        auth.create_user(conn, users["worker"].username, PASSWORD, "planner")
    assert err.value.message == "taken"


def test_only_admin_or_system_may_manage_users_in_python_and_in_the_database(users):
    worker = users["worker"]
    with use_scope(worker.scope()), transaction() as conn:
        with pytest.raises(PermissionError):
            auth.create_user(conn, PREFIX + "x", PASSWORD, "admin")
        with pytest.raises(PermissionError):
            auth.update_user(conn, worker.username, role="admin")
        # straight SQL on the app role: the policies refuse it
        assert conn.execute(text("UPDATE users SET role = 'admin' WHERE username = :u"), {"u": worker.username}).rowcount == 0
        assert conn.execute(text("SELECT count(*) FROM users")).scalar_one() == 1  # only themselves
    with use_scope(worker.scope()), transaction() as conn, pytest.raises(ProgrammingError, match="row-level security"):
        conn.execute(text("INSERT INTO users (username, role) VALUES (:u, 'admin')"), {"u": PREFIX + "sneak"})
    with use_scope(worker.scope()), transaction() as conn, pytest.raises(ProgrammingError, match="permission denied"):
        conn.execute(text("DELETE FROM users"))
    with use_scope(users["admin"].scope()), transaction() as conn:
        changed = auth.update_user(conn, worker.username, role="planner", grids=())
    assert changed.role == "planner"


def test_user_changes_are_audited_without_hashes(users):
    admin, worker = users["admin"], users["worker"]
    with use_scope(admin.scope()), transaction() as conn:
        auth.update_user(conn, worker.username, display_name="张三", resident_detail=True)
        auth.set_password(conn, worker.username, "another long password")
    with owner_engine().connect() as c:
        rows = c.execute(text("""SELECT action, actor, scope_user, before, after FROM audit_log
                                 WHERE table_name = 'users' AND row_key = :u ORDER BY id"""), {"u": worker.username}).all()
    assert [r.action for r in rows] == ["user_create", "user_update", "user_password"]
    create, update, changed = rows
    assert create.actor == "system"
    assert (update.actor, update.scope_user) == (admin.username, admin.username)
    assert update.before["display_name"] == "网格员" and update.after["display_name"] == "张三"
    assert update.after["resident_detail"] is True and changed.after == {"password": "changed"}
    assert "argon2" not in json.dumps([r.before for r in rows] + [r.after for r in rows])
    assert isinstance(attempt(worker.username, "another long password"), auth.User)


def test_user_by_oidc_and_get_user(users):
    with transaction() as conn:
        auth.update_user(conn, users["admin"].username, oidc_subject="sub-123")
    with use_scope(None), transaction() as conn:  # before sign-in: no scope
        assert auth.user_by_oidc(conn, "sub-123").username == users["admin"].username
        assert auth.user_by_oidc(conn, "nobody") is None
        assert auth.get_user(conn, users["admin"].username) is None  # plain reads need a scope
    with use_scope(users["worker"].scope()), transaction() as conn:
        assert auth.get_user(conn, users["worker"].username).role == "worker"
        assert auth.get_user(conn, users["admin"].username) is None  # other users are hidden
