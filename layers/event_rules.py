"""Event classes, responsible units and stage time limits (standards §6, CJ/T 214).

Why a file and not constants: every city has its own table of limits and its own units;
the defaults (``data/events/rules.json``, each limit marked [practice] or [verify]) are a
starting point a city replaces with ``WANGGE_EVENT_RULES=path.json`` without touching code.
Class codes: ``C`` + 大类 + 小类 for components (部件, e.g. ``C0101`` 上水井盖), ``E`` + 大类 +
小类 for events (事件, e.g. ``E0303`` 违法建设); the same code is the Open311 service_code.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from gis.workclock import ClockError, Limit, WorkClock, get_clock, parse_limit

RULES_FILE = Path(__file__).resolve().parent.parent / "data" / "events" / "rules.json"
STAGES = ("file", "dispatch", "handle", "verify")


class RulesInvalid(ValueError):
    """A rules file that cannot be used (names the file and the entry)."""


@dataclass(frozen=True)
class Unit:
    code: str
    zh: str
    en: str


@dataclass(frozen=True)
class EventClass:
    code: str
    kind: str  # "component" (部件) | "event" (事件)
    major: str
    zh: str
    en: str
    unit: str
    limits: dict  # stage -> {"limit": Limit, "urgent": Limit, "mark": str}


@dataclass(frozen=True)
class Rules:
    units: dict[str, Unit]
    majors: dict[tuple[str, str], tuple[str, str]]  # (kind, code) -> (zh, en)
    classes: dict[str, EventClass]
    source: str

    def cls(self, code: str) -> EventClass:
        try:
            return self.classes[code]
        except KeyError:
            raise RulesInvalid(f"unknown event class {code!r}") from None

    def limit(self, code: str, stage: str, urgent: bool = False) -> Limit:
        """The time limit of one stage of a class (its urgent variant when ``urgent``)."""
        if stage not in STAGES:
            raise RulesInvalid(f"unknown stage {stage!r}")
        entry = self.cls(code).limits[stage]
        return entry["urgent"] if urgent else entry["limit"]

    def deadline(self, code: str, stage: str, start: datetime, urgent: bool = False,
                 clock: WorkClock | None = None) -> datetime:
        return (clock or get_clock()).add(start, self.limit(code, stage, urgent))

    def name(self, code: str, lang: str = "zh") -> str:
        c = self.classes.get(code)
        if c is None:
            return code
        return c.zh if lang == "zh" else c.en

    def unit_name(self, code: str | None, lang: str = "zh") -> str:
        u = self.units.get(code or "")
        if u is None:
            return code or ""
        return u.zh if lang == "zh" else u.en


def load_rules(path: Path | str = RULES_FILE, day_minutes: int = 420) -> Rules:
    """Read and check a rules file: every class names a known unit and valid limits."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RulesInvalid(f"{p}: cannot read the event rules ({exc})") from exc
    units = {u["code"]: Unit(u["code"], u["zh"], u["en"]) for u in doc.get("units", [])}
    majors = {(m["kind"], m["code"]): (m["zh"], m["en"]) for m in doc.get("major", [])}
    stage_defaults = doc.get("stage_limits", {})
    classes: dict[str, EventClass] = {}
    for i, c in enumerate(doc.get("classes", []), start=1):
        where = f"{p}: class {i} ({c.get('code', '?')})"
        try:
            if c["unit"] not in units:
                raise RulesInvalid(f"{where}: unknown unit {c['unit']!r}; add it to units")
            if (c["kind"], c["major"]) not in majors:
                raise RulesInvalid(f"{where}: unknown 大类 {c['major']!r} of {c['kind']}")
            limits = {}
            for stage in STAGES:
                e = c.get(stage) or stage_defaults.get(stage)
                if e is None:
                    raise RulesInvalid(f"{where}: no time limit for stage {stage!r}")
                limits[stage] = {"limit": parse_limit(e["limit"], day_minutes),
                                 "urgent": parse_limit(e.get("urgent", e["limit"]), day_minutes),
                                 "mark": e.get("mark", "verify")}
            classes[c["code"]] = EventClass(c["code"], c["kind"], c["major"], c["zh"], c["en"], c["unit"], limits)
        except KeyError as exc:
            raise RulesInvalid(f"{where}: missing field {exc}") from None
        except ClockError as exc:
            raise RulesInvalid(f"{where}: {exc}") from None
    if not classes:
        raise RulesInvalid(f"{p}: no event classes")
    return Rules(units, majors, classes, str(p))


@lru_cache(maxsize=4)
def _rules(path: str, day_minutes: int) -> Rules:
    return load_rules(path, day_minutes)


def get_rules() -> Rules:
    """The rules of the settings (``event_rules``), read once."""
    from gis.settings import get_settings

    return _rules(get_settings().event_rules or str(RULES_FILE), get_clock().day_minutes)
