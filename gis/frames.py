"""Tables to plain rows: one converter for JSON output and stored results."""
from __future__ import annotations

import json

import pandas as pd


def records(frame: pd.DataFrame) -> list[dict]:
    """Rows as dicts of plain values: NaN/NaT as None, timestamps as ISO text (strict JSON)."""
    return json.loads(frame.to_json(orient="records", force_ascii=False, date_format="iso"))
