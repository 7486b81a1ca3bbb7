"""The one seam between screens and data: two decorators and the error messages.

Screens never open a connection. They call named functions in ``ui/data.py`` (and
``ui/coverage_data.py`` for stored analysis results); each is written as a plain function
of a connection and decorated here:

- ``@read`` (optionally ``@read(life="long")``, ``@read(cache=False)``): opens the signed-in
  user's scoped connection (the scope is set for the script thread by ``ui.state.check``),
  caches the answer keyed by the user's area (``ui.cache``) and turns a failure into a
  ``Failed`` carrying a reference number (the details go to the log, never to the screen).
- ``@command(clears=False)`` is also the way to a read that writes (a read of a person logs
  itself in the same transaction): committed, never cached.
- ``@command``: runs in one transaction, forgets cached reads after a commit (every user's:
  an edit must show at once), and lets the errors a user can act on (a conflict, bad input)
  through as ``Refused`` with their message in the user's language.

A new screen (events, visits) adds named functions to ``ui/data.py`` and nothing below.
The page script (``ui/main.py``) shows any ``Failed`` or unexpected exception with
``show_failure``: a short sentence and the reference number.
"""
from __future__ import annotations

import functools
import logging
import re
import secrets
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from gis.db import app_engine
from gis.errors import WanggeError
from ui import cache

log = logging.getLogger("wangge.ui")

# Exceptions whose message is written for the user (bad input, a conflict, a rule refused):
# shown as they are (in the user's language), never as a failure with a reference. Every
# error the project raises on purpose is of one family (gis.errors).
USER_ERRORS: tuple[type[BaseException], ...] = (WanggeError, PermissionError)


def _user_errors() -> tuple[type[BaseException], ...]:
    return USER_ERRORS


class Failed(Exception):
    """Something went wrong that the user cannot fix: the screen shows ``ref`` only."""

    def __init__(self, ref: str):
        super().__init__(ref)
        self.ref = ref


class Refused(Exception):
    """A command the data refused for a reason the user can act on (shown as it is)."""

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code  # the reason's code when the layer names one (``EventInvalid.code``): screens word it


def reference() -> str:
    """A short reference number the user can quote (and that the log holds beside the details)."""
    return secrets.token_hex(3).upper()


def log_failure(exc: BaseException, where: str) -> str:
    """Write the exception with a new reference number to the log; return the number."""
    ref = reference()
    log.error("[%s] %s failed: %s", ref, where, exc, exc_info=exc)
    return ref


_BILINGUAL = re.compile(r"^(?P<zh>[^/]*[\u4e00-\u9fff][^/]*?)\s+/\s+(?P<en>[^\u4e00-\u9fff]+?)(?P<rest>:\s.*)?$")
# The English half may hold Chinese names ("刘艳明 负责 501 户 / 刘艳明 carries 501 households"):
# then the halves are split at the one " / " with Chinese words before and Latin words after.
_BILINGUAL_NAMED = re.compile(r"^(?P<zh>[^/]*[\u4e00-\u9fff][^/]*?)\s+/\s+(?P<en>[^/]*[A-Za-z]{2}[^/]*)$")


def one_language(message: str, lang: str) -> str:
    """Messages from below the screens are still written "中文 / English" (or "中文 / English:
    detail"): show one half, with the detail."""
    parts = []
    for line in str(message).splitlines():
        m = _BILINGUAL.match(line.strip())
        if not m:
            named = _BILINGUAL_NAMED.match(line.strip())
            parts.append(line if not named else named.group("zh" if lang == "zh" else "en").strip())
            continue
        rest = (m.group("rest") or "")[1:].strip()
        if lang == "zh":
            rest = re.sub(r";\s*use --\S+ to .*$", "", rest)  # an English hint after the detail
            parts.append(m.group("zh").strip() + (f"：{rest}" if rest else ""))
        else:
            parts.append(m.group("en").strip() + (f": {rest}" if rest else ""))
    return "\n".join(parts)


# The current page run's timings (``WANGGE_PROFILE_RUNS``): (what, milliseconds); None when off.
_RUN: ContextVar[list | None] = ContextVar("wangge_run_timings", default=None)


def start_run() -> None:
    """Record this page run's reads and marks (``ui/main.py`` prints them at the end)."""
    _RUN.set([])


def mark(what: str, started: float) -> None:
    """Record ``what`` as having taken since ``started`` (a ``time.perf_counter()``)."""
    run = _RUN.get()
    if run is not None:
        run.append((what, round((time.perf_counter() - started) * 1000, 1)))


def run_timings() -> list | None:
    return _RUN.get()


def _timed(name: str, f: Callable) -> Callable:
    @functools.wraps(f)
    def call(*args: Any, **kwargs: Any) -> Any:
        if _RUN.get() is None:
            return f(*args, **kwargs)
        started = time.perf_counter()
        try:
            return f(*args, **kwargs)
        finally:
            mark(name, started)

    call.__wrapped__ = f
    for attr in ("clear",):
        if hasattr(f, attr):
            setattr(call, attr, getattr(f, attr))
    return call


def read(fn: Callable | None = None, *, life: str = "short", cache_it: bool = True) -> Any:
    """Decorator for a read ``f(conn, *args)``: callers pass ``*args`` only."""

    def wrap(f: Callable) -> Callable:
        @functools.wraps(f)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                with app_engine().connect() as conn:
                    return f(conn, *args, **kwargs)
            except (Failed, Refused):
                raise
            except Exception as exc:  # noqa: BLE001 - every failure becomes a reference number
                raise Failed(log_failure(exc, f"{f.__module__}.{f.__qualname__}")) from exc

        return _timed(f.__name__, cache.cached(run, life=life) if cache_it else run)

    return wrap(fn) if fn is not None else wrap


def command(fn: Callable | None = None, *, clears: bool = True) -> Any:
    """Decorator for a command ``f(conn, *args)`` run in one transaction (all or nothing)."""

    def wrap(f: Callable) -> Callable:
        @functools.wraps(f)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                with app_engine().begin() as conn:
                    out = f(conn, *args, **kwargs)
            except (Failed, Refused):
                raise
            except _user_errors() as exc:
                raise Refused(str(exc), getattr(exc, "code", None)) from exc
            except ValueError as exc:  # a database CHECK or a parser: the message names the value
                raise Refused(str(getattr(exc, "orig", None) or exc).splitlines()[0]) from exc
            except Exception as exc:  # noqa: BLE001
                from sqlalchemy.exc import IntegrityError

                if isinstance(exc, IntegrityError):  # a CHECK or a unique key: the user's input
                    raise Refused(str(exc.orig).splitlines()[0]) from exc
                raise Failed(log_failure(exc, f"{f.__module__}.{f.__qualname__}")) from exc
            if clears:
                cache.clear()
            return out

        return run

    return wrap(fn) if fn is not None else wrap


def show_failure(exc: BaseException, lang: str) -> None:
    """On screen: a short sentence in the user's language and the reference number."""
    import streamlit as st

    from ui.i18n import t

    if isinstance(exc, Refused):
        st.error(one_language(exc.message, lang))
        return
    ref = exc.ref if isinstance(exc, Failed) else log_failure(exc, "page")
    st.error(t("error.failed", lang, ref))
