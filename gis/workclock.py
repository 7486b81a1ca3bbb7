"""The working-time clock (工作时间): deadlines and elapsed times of event cases.

Why a clock of its own: city time limits are in working hours and working days
(standards §6), and working time in China is not "Monday to Friday": public holidays
move with the lunar calendar and are paid back by make-up working days (调休) on
weekends, announced each year by the State Council. Naive code (``timedelta``,
``numpy.busday_offset`` with a holiday list) gets the make-up Saturday wrong, the
lunch break wrong, and the case reported at 17:29 before a holiday week wrong.

The model: each day has working periods (default 08:30–12:00 and 14:00–17:30) if it is a
working day: a Monday–Friday that is not a holiday, or a make-up day. ``W(t)`` is the
number of working minutes from a fixed origin to ``t``; elapsed working time is
``W(b) − W(a)`` and a deadline ``limit`` after ``t`` is the first instant where ``W``
reaches ``W(t) + limit``. A limit in working days is that many days' worth of working
time (7 working hours each by default), so "1 working day" from 10:00 on a Friday ends at
10:00 on the next working day. Calendar limits (minutes, hours, days: used for urgent
cases, which the command centre handles around the clock) are plain time.

Holidays come from one file per year (``data/calendar/cn-YYYY.json``, generated from the
State Council notices); a year without a published file counts weekends only and is listed
in ``WorkClock.unpublished_years`` so screens can say so. Times are Beijing time
(UTC+8, no daylight saving since 1991).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from pathlib import Path

import numpy as np

BEIJING = timezone(timedelta(hours=8))
ORIGIN = date(2015, 1, 1)
LAST = date(2040, 12, 31)
CALENDAR_DIR = Path(__file__).resolve().parent.parent / "data" / "calendar"
_LIMIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(wmin|wh|wd|min|h|cd)\s*$")


class ClockError(ValueError):
    """A limit or a working-hours setting that cannot be read."""


@dataclass(frozen=True)
class Limit:
    """A time limit: ``minutes`` of working time (``working``) or of calendar time."""

    minutes: float
    working: bool
    text: str

    @property
    def label_zh(self) -> str:
        n, unit = _LIMIT.match(self.text).groups()
        n = n.rstrip("0").rstrip(".") if "." in n else n
        return n + {"wmin": "个工作分钟", "wh": "个工作小时", "wd": "个工作日", "min": "分钟", "h": "小时", "cd": "个自然日"}[unit]

    @property
    def label_en(self) -> str:
        n, unit = _LIMIT.match(self.text).groups()
        return f"{n} " + {"wmin": "working minutes", "wh": "working hours", "wd": "working days", "min": "minutes",
                          "h": "hours", "cd": "calendar days"}[unit]


def parse_periods(spec: str) -> tuple[tuple[int, int], ...]:
    """``"08:30-12:00,14:00-17:30"`` → ((510, 720), (840, 1050)) minutes of the day."""
    out = []
    for part in spec.split(","):
        m = re.match(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$", part)
        if not m:
            raise ClockError(f"working hours {spec!r}: expected e.g. 08:30-12:00,14:00-17:30")
        a, b = int(m[1]) * 60 + int(m[2]), int(m[3]) * 60 + int(m[4])
        if not 0 <= a < b <= 1440 or (out and a < out[-1][1]):
            raise ClockError(f"working hours {spec!r}: periods must be in order and inside one day")
        out.append((a, b))
    return tuple(out)


@dataclass
class WorkClock:
    """Working days and hours; ``W`` and its inverse over 2015–2040."""

    periods: tuple[tuple[int, int], ...] = ((510, 720), (840, 1050))
    holidays: dict[date, str] = field(default_factory=dict)
    makeup_days: dict[date, str] = field(default_factory=dict)
    unpublished_years: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        n = (LAST - ORIGIN).days + 1
        self._work = np.array([self._is_workday(ORIGIN + timedelta(days=i)) for i in range(n)], dtype=bool)
        self.day_minutes = sum(b - a for a, b in self.periods)
        self._cum = np.concatenate([[0], np.cumsum(self._work.astype(np.int64) * self.day_minutes)])

    # --- days --------------------------------------------------------------------------------
    def _is_workday(self, d: date) -> bool:
        if d in self.makeup_days:
            return True
        return d.weekday() < 5 and d not in self.holidays

    def is_workday(self, d: date) -> bool:
        """Whether ``d`` is a working day (make-up days are; holidays and plain weekends are not)."""
        return bool(self._work[self._index(d)])

    def _index(self, d: date) -> int:
        i = (d - ORIGIN).days
        if not 0 <= i < len(self._work):
            raise ClockError(f"{d} is outside the clock's range {ORIGIN}–{LAST}")
        return i

    # --- working minutes -----------------------------------------------------------------------
    @staticmethod
    def local(t: datetime) -> datetime:
        """``t`` in Beijing time (naive times are taken as Beijing time)."""
        return t.replace(tzinfo=BEIJING) if t.tzinfo is None else t.astimezone(BEIJING)

    def _within(self, minute_of_day: float) -> float:
        return sum(min(max(minute_of_day - a, 0.0), b - a) for a, b in self.periods)

    def W(self, t: datetime) -> float:
        """Working minutes from the origin (2015-01-01 00:00 Beijing) to ``t``."""
        lt = self.local(t)
        i = self._index(lt.date())
        m = lt.hour * 60 + lt.minute + (lt.second + lt.microsecond / 1e6) / 60
        return float(self._cum[i] + (self._within(m) if self._work[i] else 0.0))

    def at(self, w: float) -> datetime:
        """The first instant at which ``W`` reaches ``w`` (Beijing time, aware)."""
        if w <= 0:
            return datetime.combine(ORIGIN, time(0), BEIJING)
        i = int(np.searchsorted(self._cum, w, side="left")) - 1  # cum[i] < w <= cum[i+1]
        if i >= len(self._work):
            raise ClockError("deadline beyond the clock's range")
        r = w - float(self._cum[i])
        for a, b in self.periods:
            if r <= b - a:
                return datetime.combine(ORIGIN + timedelta(days=i), time(0), BEIJING) + timedelta(minutes=a + r)
            r -= b - a
        raise AssertionError("unreachable: r exceeds a working day")

    def elapsed(self, a: datetime, b: datetime) -> float:
        """Working minutes between ``a`` and ``b`` (negative if ``b`` is earlier)."""
        return self.W(b) - self.W(a)

    def add(self, t: datetime, limit: Limit | str) -> datetime:
        """The deadline ``limit`` after ``t``: working time on the clock, calendar time as is."""
        lim = parse_limit(limit, self.day_minutes) if isinstance(limit, str) else limit
        if not lim.working:
            return self.local(t) + timedelta(minutes=lim.minutes)
        if lim.minutes <= 0:
            return self.local(t)
        return self.at(self.W(t) + lim.minutes)

    # --- vectorised (benchmarks, indicators over many cases) ----------------------------------------
    def W_array(self, utc_ns: np.ndarray) -> np.ndarray:
        """``W`` for an array of UTC instants as int64 nanoseconds since 1970 (NaT → nan)."""
        v = np.asarray(utc_ns, dtype="int64")
        nat = v == np.iinfo(np.int64).min
        local_min = (v.astype(np.float64) / 6e10) + 8 * 60  # minutes since 1970 in Beijing time
        day = np.floor(local_min / 1440.0)
        m = local_min - day * 1440.0
        i = (day - (ORIGIN - date(1970, 1, 1)).days).astype(np.int64)
        i = np.clip(i, 0, len(self._work) - 1)
        within = np.zeros_like(m)
        for a, b in self.periods:
            within += np.clip(m - a, 0, b - a)
        out = self._cum[i] + np.where(self._work[i], within, 0.0)
        return np.where(nat, np.nan, out)


    def at_array(self, w: np.ndarray) -> np.ndarray:
        """``at`` for an array of working-minute values: UTC int64 nanoseconds since 1970."""
        w = np.asarray(w, dtype=np.float64)
        i = np.searchsorted(self._cum, w, side="left") - 1
        i = np.clip(i, 0, len(self._work) - 1)
        r = w - self._cum[i]
        minute = np.zeros_like(r)
        done = np.zeros(r.shape, dtype=bool)
        for a, b in self.periods:
            here = ~done & (r <= b - a)
            minute[here] = a + r[here]
            done |= here
            r = np.where(done, r, r - (b - a))
        days = (i + (ORIGIN - date(1970, 1, 1)).days).astype(np.float64)
        return np.round((days * 1440.0 + minute - 8 * 60) * 6e10).astype(np.int64)


def parse_limit(text: str, day_minutes: int = 420) -> Limit:
    """``"30wmin"``, ``"5wh"``, ``"15wd"`` (working) or ``"10min"``, ``"2h"``, ``"3cd"`` (calendar)."""
    m = _LIMIT.match(str(text))
    if not m:
        raise ClockError(f"time limit {text!r}: expected a number and one of wmin, wh, wd, min, h, cd")
    n, unit = float(m[1]), m[2]
    minutes = {"wmin": n, "wh": n * 60, "wd": n * day_minutes, "min": n, "h": n * 60, "cd": n * 1440}[unit]
    return Limit(minutes, unit.startswith("w"), str(text).strip())


def load_calendar(directory: Path = CALENDAR_DIR) -> tuple[dict[date, str], dict[date, str], tuple[int, ...]]:
    """Holidays and make-up days from ``cn-YYYY.json`` files; years whose file says
    ``published: false`` are returned as unpublished (weekends only)."""
    holidays: dict[date, str] = {}
    makeup: dict[date, str] = {}
    unpublished = []
    for path in sorted(Path(directory).glob("cn-*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            for h in doc.get("holidays", []):
                holidays[date.fromisoformat(h["date"])] = h.get("name", "")
            for h in doc.get("makeup_workdays", []):
                makeup[date.fromisoformat(h["date"])] = h.get("name", "")
        except (ValueError, KeyError, TypeError) as exc:
            raise ClockError(f"{path}: not a holiday calendar ({exc})") from exc
        if not doc.get("published", True):
            unpublished.append(int(doc["year"]))
    return holidays, makeup, tuple(unpublished)


@lru_cache(maxsize=4)
def _clock(periods: str, directory: str) -> WorkClock:
    holidays, makeup, unpublished = load_calendar(Path(directory))
    return WorkClock(parse_periods(periods), holidays, makeup, unpublished)


def get_clock() -> WorkClock:
    """The clock of the settings (``event_work_hours``, ``event_calendar_dir``), built once."""
    from gis.settings import get_settings

    s = get_settings()
    return _clock(s.event_work_hours, s.event_calendar_dir or str(CALENDAR_DIR))
