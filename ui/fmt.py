"""Numbers, shares and times as a reader wants them: rounded, 「—」 for nothing, times in the
deployment's zone in Chinese date format. Its own module because the printed handout needs
them too and must not import the screens' shared pieces (ui/common imports the data seam)."""
from __future__ import annotations

import pandas as pd

from gis.settings import get_settings


def _empty(v: object) -> bool:
    try:
        return v is None or bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def fmt_int(v: object) -> str:
    return "—" if _empty(v) else f"{int(round(float(v))):,}"


def fmt_num(v: object, digits: int = 1) -> str:
    return "—" if _empty(v) else f"{float(v):,.{digits}f}"


def fmt_pct(v: object) -> str:
    """A share in 0..1 as a percentage to 0.1 %."""
    return "—" if _empty(v) else f"{100 * float(v):.1f}%"


def fmt_time(v: object, lang: str = "zh", with_time: bool = True) -> str:
    """A stored time (UTC) in the deployment's zone: 2026年12月7日 03:38 (or 2026-12-07 03:38)."""
    if _empty(v) or v == "":
        return "—"
    from zoneinfo import ZoneInfo

    ts = pd.Timestamp(v)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    ts = ts.tz_convert(ZoneInfo(get_settings().timezone))
    if lang == "zh":
        day = f"{ts.year}年{ts.month}月{ts.day}日"
    else:
        day = ts.strftime("%Y-%m-%d")
    return f"{day} {ts:%H:%M}" if with_time else day
