"""Language at the edge (gis/messages.py) and the one family of errors (gis/errors.py)."""
from __future__ import annotations

import json
import pickle
import string

import pytest

from gis.errors import BadInput, ConflictError, NotAllowed, NotFound, SolverError, Unavailable, WanggeError
from gis.messages import TEXTS, Message, msg, render


def _fields(s: str) -> list[str]:
    return sorted(f for _, f, _, _ in string.Formatter().parse(s) if f is not None)


def test_every_message_says_the_same_in_both_languages() -> None:
    for key, (zh, en) in TEXTS.items():
        assert zh.strip() and en.strip(), key
        assert _fields(zh) == _fields(en), f"{key}: placeholders differ"


def test_a_message_is_a_key_and_numbers_and_the_edge_picks_the_language() -> None:
    m = msg("plan.fix_load", name="张三", before=612.4, after=480.0)
    assert (m.key, m.params["before"]) == ("plan.fix_load", 612.4)
    assert m.text("zh") == "worker_load: 张三 负担 612 → 480 户" and m.text("en") == "张三: load 612 → 480 households"
    assert str(m) == f"{m.text('zh')} / {m.text('en')}"  # what the command line has always printed
    assert render(m, "en") == m.text("en") and render("plain", "en") == "plain"
    back = pickle.loads(pickle.dumps(m))  # Streamlit's cache pickles results
    assert isinstance(back, Message) and back.key == m.key and back == m
    assert json.loads(json.dumps({"m": m}, ensure_ascii=False))["m"] == str(m)


def test_the_dashboard_table_holds_the_floor_messages() -> None:
    from ui.i18n import T, t

    assert "plan.fix_load" in T
    assert t("code.zero_serial", "en", code="420106010001000") == "grid serial must not be zero: 420106010001000"


@pytest.mark.parametrize("cls, builtin", [(BadInput, ValueError), (NotAllowed, PermissionError), (NotFound, LookupError)])
def test_the_family_keeps_the_builtin_bases(cls, builtin) -> None:
    assert issubclass(cls, WanggeError) and issubclass(cls, builtin)


def test_old_error_names_are_members_of_the_family() -> None:
    from analysis.siting import SitingError
    from gis.crs import CRSProblem
    from gis.problems import ImportFailed
    from grid.assign import AssignError, Conflict
    from grid.drafts import DraftError
    from layers.events import EventInvalid
    from layers.users import AuthError, UserInvalid

    for cls in (SitingError, CRSProblem, ImportFailed, AssignError, DraftError, EventInvalid, UserInvalid):
        assert issubclass(cls, BadInput), cls
    assert issubclass(Conflict, ConflictError) and issubclass(AuthError, NotAllowed)


def test_an_error_raised_with_a_message_speaks_either_language() -> None:
    from grid.assign import AssignError

    exc = AssignError(msg("assign.no_cadre", cadre="'C999'"))
    assert exc.key == "assign.no_cadre" and exc.text("en") == "no cadre 'C999'" and "干部编号不存在" in exc.text("zh")
    assert "C999" in str(exc) and exc.to_dict()["error"] == "assign.no_cadre"
    assert WanggeError().text("en") == WanggeError.default[1]


def test_the_command_line_maps_the_family_to_exit_codes() -> None:
    from cli.main import exit_code
    from grid.assign import Conflict

    assert exit_code(Conflict("G", 1, 2)) == 4 and exit_code(Unavailable()) == 3
    assert exit_code(BadInput("x")) == 1 and exit_code(SolverError()) == 1 and exit_code(NotAllowed()) == 1
