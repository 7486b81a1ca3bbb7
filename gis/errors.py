"""One family of errors, so that every floor raises and every edge catches the same way.

Why: the command line maps an error to an exit code and the dashboard shows it in the
user's language; neither should need to know the ten modules that raise. Callers tell
errors apart by the base class (bad input, conflict, not allowed, not found, solver,
unavailable), not by the module that raised them. Each error carries a message ``key``
and ``params`` so that the words are chosen where they are shown (``gis.messages``,
``ui.i18n``); ``default`` is the Chinese and English text used when the table has no
entry for the key. ``str(exc)`` stays what each error always printed (logs, CLI output).

The older names (``ImportFailed``, ``CRSProblem``, ``AuthError``, ``UserInvalid``,
``SitingError``, ``AssignError``, ``Conflict``, ``DraftError``, ``EventInvalid``) live
where they always did and are subclasses of these. ``BadInput`` is also a ``ValueError``
and ``NotAllowed`` a ``PermissionError`` so that code written against the built-ins keeps
catching them.
"""
from __future__ import annotations

from typing import Any, ClassVar

from gis.messages import Message, render_key


class WanggeError(Exception):
    """Base of every error the project raises on purpose (never a bug)."""

    key: ClassVar[str] = "error.generic"
    default: ClassVar[tuple[str, str]] = ("操作未完成。", "The operation could not be completed.")

    def __init__(self, *args: Any, key: str | None = None, params: dict | None = None) -> None:
        super().__init__(*args)
        if key is None and args and isinstance(args[0], Message):  # raised with a message: its key and numbers
            key, params = args[0].key, {**args[0].params, **(params or {})}
        if key is not None:
            self.key = key
        self.params = dict(params or {})

    def text(self, lang: str = "zh") -> str:
        """The message in ``lang`` from the one translation table (``gis.messages``),
        else the detail the error was raised with, else the class's default text."""
        if self.key not in FAMILY_KEYS:  # a specific key says more than the detail
            found = render_key(self.key, getattr(self, "params", {}) or {}, lang)
            if found is not None:
                return found
        detail = str(self)
        if detail:
            return detail
        return self.default[0 if lang == "zh" else 1]

    def human(self) -> str:
        """What the command line prints (red) for this error."""
        return str(self)

    def to_dict(self) -> dict:
        """What ``--json`` prints for this error (strict JSON: no NaN, text values)."""
        return {"ok": False, "error": self.key, "message": str(self)}


class BadInput(WanggeError, ValueError):
    """The input cannot be accepted as given (nothing was written)."""

    key = "error.bad_input"
    default = ("输入有误，未写入任何数据。", "The input was rejected; nothing was written.")


class ConflictError(WanggeError):
    """Someone else changed the thing since the caller looked at it."""

    key = "error.conflict"
    default = ("数据已被他人修改，请刷新后重试。", "Someone else changed this; reload and try again.")


class NotAllowed(WanggeError, PermissionError):
    """The signed-in user (or the caller's scope) may not do this."""

    key = "error.not_allowed"
    default = ("没有权限执行此操作。", "You may not do this.")


class NotFound(WanggeError, LookupError):
    """The thing named does not exist (or is outside the caller's area)."""

    key = "error.not_found"
    default = ("找不到所指的对象。", "Nothing by that name was found.")


class SolverError(WanggeError):
    """A model could not be built or solved as asked."""

    key = "error.solver"
    default = ("模型无法求解。", "The model could not be solved.")


class Unavailable(WanggeError):
    """A service the operation needs (the database, a solver) cannot be reached or is busy."""

    key = "error.unavailable"
    default = ("服务暂不可用，请稍后再试。", "A service is unavailable or busy; try again later.")


FAMILY_KEYS = frozenset(c.key for c in (WanggeError, BadInput, ConflictError, NotAllowed, NotFound, SolverError, Unavailable))
