"""One value per fact: a figure shown on more than one screen is the same everywhere.

Every screen of every role is run (AppTest, the roles' navigation from ``ROLE_SCREENS``) and
its metrics collected by label; a label that appears on two screens for the same area must
carry the same value (workers, households per worker, grids by status, coverage shares).
The community secretary's figures must equal their community's row in the leader's table.
"""
from __future__ import annotations

import pytest

from tests.accounts import apptest


def _screens(account, role: str) -> dict[str, dict[str, str]]:
    """Metrics per screen of ``role`` (label -> shown value)."""
    from ui.screens import ROLE_SCREENS

    out = {}
    for path, _title, _render in ROLE_SCREENS[role]:
        at = apptest(account) if path == ROLE_SCREENS[role][0][0] else _at_path(account, path)
        assert not at.exception, (role, path, at.exception)
        assert not at.error or all("编号" not in e.value for e in at.error), (role, path, [e.value for e in at.error])
        out[path] = {m.label: m.value for m in at.metric}
    return out


def _at_path(account, path: str):
    """The page script on a screen other than the landing one: run the screen's render function
    inside the signed-in page (the navigation is what ``st.navigation`` would run)."""
    from streamlit.testing.v1 import AppTest

    from tests.accounts import session_token

    def page(token: str, path: str) -> None:
        import streamlit as st

        from ui import state
        from ui.screens import ROLE_SCREENS

        st.session_state["wangge_session"] = token
        signed = state.check()
        render = dict((p, r) for p, _t, r in ROLE_SCREENS[signed.user.role])[path]
        render()

    return AppTest.from_function(page, args=(session_token(account), path), default_timeout=180).run()


SHARED = ("专职网格员", "每名专职网格员服务户数", "无专职网格员的网格")


def test_leader_figures_agree_across_screens(accounts: dict) -> None:
    screens = _screens(accounts["leader"], "leader")
    seen: dict[str, set[str]] = {}
    for path, metrics in screens.items():
        for label, value in metrics.items():
            seen.setdefault(label, set()).add(value)
    assert "专职网格员" in screens["overview"] and "专职网格员" in screens["staffing"]
    assert "每名专职网格员服务户数" in screens["staffing"]
    for label in SHARED:
        assert len(seen.get(label, set())) == 1, f"{label}: {seen.get(label)} on different screens"
    same = {k for k in screens["overview"] if k in screens["staffing"]}
    assert {"专职网格员", "每名专职网格员服务户数"} <= same


def test_secretary_figures_equal_the_leader_row(accounts: dict) -> None:
    from gis.db import app_engine
    from gis.scope import SYSTEM, use_scope

    from analysis.overview import community_table

    code = accounts["secretary"].communities[0]
    sec = _screens(accounts["secretary"], "secretary")["community"]
    with use_scope(SYSTEM), app_engine().connect() as c:
        row = community_table(c, code[:9]).set_index("code").loc[code]
    assert sec["专职网格员"] == f"{int(row['full_time_workers']):,}"
    assert sec["每名专职网格员服务户数"] == f"{row['households_per_full_time']:,.0f}"
    assert sec["无专职网格员的网格"] == f"{int(row['grids_without_full_time']):,}"


@pytest.mark.parametrize("role", ["secretary", "worker"])
def test_a_scope_never_paints_what_it_may_not_read_as_unstaffed(accounts: dict, role: str) -> None:
    """Grids whose staff the scope may not read are 'unknown', never 'no worker'."""
    from gis.db import app_engine
    from gis.scope import use_scope
    from gis.scope import Scope

    from analysis.overview import NO_WORKER, UNKNOWN, grid_table

    a = accounts[role]
    with use_scope(Scope(user=a.username, role=role, communities=a.communities, grids=a.grids)), app_engine().connect() as c:
        table = grid_table(c, "420106010")
    outside = table[~table["community_code"].astype(str).str.strip().isin(a.communities)]
    assert len(outside) and (outside["status"] == UNKNOWN).all()
    assert not (outside["status"] == NO_WORKER).any()
    if role == "worker":
        mine = table[table["id"].astype(int).isin(a.grids)]
        assert (mine["status"] != UNKNOWN).all()
