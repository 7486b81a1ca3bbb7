"""Cached reads that never cross from one user to another.

Why not plain ``st.cache_data``: its cache is shared by every session of the process,
and the same call (say, the figures of one community) returns different rows for a grid
worker and a street leader once row-level security applies. ``cached`` adds the signed-in
user's area (``gis.scope.cache_key``) to the key, so a result is reused only by users who
would have got exactly the same rows.

Three lifetimes, each its own ``st.cache_data`` (Streamlit keys a cache by the decorated
function's source, so one function per lifetime): ``short`` (30 s, live figures: an
import shows up at once for its importer after ``clear()`` and soon for everyone),
``long`` (10 min, stored analysis results that carry their own freshness) and ``keep``
(no expiry, bounded: results of a given stored run never change).
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

from gis.scope import cache_key

F = TypeVar("F", bound=Callable[..., Any])


@st.cache_data(ttl=30, show_spinner=False, max_entries=2000)
def _short(scope_key: str, name: str, _fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return _fn(*args, **kwargs)


@st.cache_data(ttl=600, show_spinner=False, max_entries=500)
def _long(scope_key: str, name: str, _fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return _fn(*args, **kwargs)


@st.cache_data(show_spinner=False, max_entries=200)
def _keep(scope_key: str, name: str, _fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return _fn(*args, **kwargs)


_STORES = {"short": _short, "long": _long, "keep": _keep}


def cached(fn: F | None = None, *, life: str = "short") -> Any:
    """Decorator: ``@cached`` or ``@cached(life="long")``; the key holds the user's area,
    the function and its arguments."""
    store = _STORES[life]

    def wrap(f: F) -> F:
        name = f"{f.__module__}.{f.__qualname__}"

        @functools.wraps(f)
        def call(*args: Any, **kwargs: Any) -> Any:
            return store(cache_key(), name, f, *args, **kwargs)

        call.clear = store.clear  # type: ignore[attr-defined]  # coarse: the whole lifetime's store
        return call  # type: ignore[return-value]

    return wrap(fn) if fn is not None else wrap


def clear() -> None:
    """Forget every cached read (after an import or an edit)."""
    for store in _STORES.values():
        store.clear()
