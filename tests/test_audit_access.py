"""The audit log in the database: everyone's changes are added, only administrators read."""
from __future__ import annotations

from sqlalchemy import text

from gis.db import app_engine, owner_engine
from gis.scope import SYSTEM, Scope, use_scope
from layers.audit import list_audit, record


def test_only_administrators_read_the_log_but_every_role_adds_to_it(demo: dict) -> None:
    worker = Scope(user="t_audit_worker", role="worker", grids=(1,))
    admin = Scope(user="t_audit_admin", role="admin")
    with owner_engine().connect() as c:
        total = c.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
    try:
        for scope in (worker, Scope(user="t_audit_leader", role="leader"), Scope(user="t_audit_planner", role="planner")):
            with use_scope(scope), app_engine().begin() as c:
                record(c, "audit_access_test", "events", row_key=scope.user)  # a change by this role is logged …
                assert c.execute(text("SELECT count(*) FROM audit_log")).scalar_one() == 0  # … yet it reads nothing
                assert list_audit(c).empty
                # The version the map caches need is there for everyone, and it is the log's newest id.
                assert c.execute(text("SELECT audit_version()")).scalar_one() >= total
        with use_scope(admin), app_engine().connect() as c:
            mine = list_audit(c, action="audit_access_test")
        assert sorted(mine["scope_user"]) == ["t_audit_leader", "t_audit_planner", "t_audit_worker"]
        with use_scope(None), app_engine().connect() as c:  # no scope at all: nothing
            assert c.execute(text("SELECT count(*) FROM audit_log")).scalar_one() == 0
    finally:
        with owner_engine().begin() as c:
            c.execute(text("DELETE FROM audit_log WHERE action = 'audit_access_test'"))


def test_system_reads_the_log(demo: dict) -> None:
    with use_scope(SYSTEM), app_engine().connect() as c:
        assert c.execute(text("SELECT count(*) FROM audit_log")).scalar_one() > 0
