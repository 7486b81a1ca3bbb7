"""The one seam between screens and data (``ui/seam.py``, ``ui/data.py``).

Screens never open a connection or write SQL; a failure reaches the user as a short
sentence and a reference number, and the details (with the traceback) reach the log only.
"""
from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest

from gis.settings import ROOT

SCREENS = sorted((ROOT / "ui" / "screens").glob("*.py"))
FORBIDDEN = {"app_engine", "owner_engine", "transaction", "text", "create_engine"}


@pytest.mark.parametrize("path", SCREENS, ids=lambda p: p.name)
def test_screens_reach_data_only_through_the_seam(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("gis.db", "sqlalchemy"):
            bad += [a.name for a in node.names if a.name in FORBIDDEN]
        if isinstance(node, ast.Import):
            bad += [a.name for a in node.names if a.name in ("gis.db", "sqlalchemy")]
    assert not bad, f"{path.name} reaches the database itself: {bad}"


# (ui/coverage_data.py is left out: its freshness and refresh run under the system scope on
# purpose, which ``@read`` does not offer yet.)
DATA = [ROOT / "ui" / f for f in ("data.py", "event_data.py", "people_data.py")]


@pytest.mark.parametrize("path", DATA, ids=lambda p: p.name)
def test_the_seam_holds_no_sql_and_opens_no_connection(path: Path) -> None:
    """The named functions call the layer or analysis that owns the SQL; ``ui/seam.py`` alone
    opens connections (scoped, one transaction per command)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("gis.db", "sqlalchemy"):
            bad += [a.name for a in node.names if a.name in FORBIDDEN]
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                any(w in node.value for w in ("SELECT ", "INSERT ", "UPDATE ", "DELETE ")):
            bad.append(node.value[:40])
    assert not bad, f"{path.name} holds SQL or opens a connection: {bad}"


def test_logged_reads_run_committed_and_uncached() -> None:
    """A read of a person writes access-log rows: it must commit and never come from a cache."""
    from ui import people_data

    for name in ("my_people", "person", "reveal", "today_route", "export", "access_log"):
        fn = getattr(people_data, name)
        assert not hasattr(fn, "clear"), f"{name} is cached"
        assert "begin" in fn.__code__.co_names, f"{name} does not run in a committed transaction"


def test_a_failed_read_shows_a_reference_and_logs_the_details(caplog) -> None:
    from ui.seam import Failed, read

    @read(cache_it=False)
    def broken(conn, x: int) -> int:
        raise RuntimeError(f"secret detail {x} in /srv/app/file.py")

    with caplog.at_level(logging.ERROR, logger="wangge.ui"), pytest.raises(Failed) as caught:
        broken(7)
    ref = caught.value.ref
    assert len(ref) == 6 and ref.isalnum()
    assert ref in caplog.text and "secret detail 7" in caplog.text and "Traceback" in caplog.text
    assert "secret" not in str(caught.value)  # the exception the screen sees holds the reference only


def test_a_failure_on_screen_is_a_sentence_and_a_number() -> None:
    from streamlit.testing.v1 import AppTest

    def page() -> None:
        from ui.seam import show_failure

        try:
            raise KeyError("column_name_from_sql")
        except KeyError as exc:
            show_failure(exc, "zh")

    at = AppTest.from_function(page).run()
    shown = " ".join(e.value for e in at.error)
    assert "编号" in shown and "column_name_from_sql" not in shown and "Traceback" not in shown
    assert not at.exception


def test_messages_from_below_show_one_language() -> None:
    from ui.seam import one_language

    m = "几何无效 / invalid geometry: Self-intersection[1 2]; use --repair to fix self-intersections"
    assert one_language(m, "zh") == "几何无效：Self-intersection[1 2]"
    assert one_language(m, "en").startswith("invalid geometry: Self-intersection")
    assert one_language("首义社区第09网格：208户无专职网格员 / 208 households without a full-time worker", "en") == \
        "208 households without a full-time worker"
    assert one_language("刘艳明 负责 501 户 / 刘艳明 carries 501 households", "zh") == "刘艳明 负责 501 户"
    assert one_language("首义社区第09网格：208户无专职网格员 / 首义社区第09网格: 208 households without a full-time worker", "en") == \
        "首义社区第09网格: 208 households without a full-time worker"
