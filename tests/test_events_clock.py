"""The working-time clock and the event rules (issue 16 points 1 and 2): the edge cases that
break naive code, on the State Council calendars shipped in data/calendar."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import numpy as np
import pytest

from gis.workclock import BEIJING, ClockError, WorkClock, load_calendar, parse_limit, parse_periods
from layers.event_rules import RulesInvalid, load_rules


@pytest.fixture(scope="module")
def clock() -> WorkClock:
    h, m, u = load_calendar()
    return WorkClock(parse_periods("08:30-12:00,14:00-17:30"), h, m, u)


def bj(*a) -> datetime:
    return datetime(*a, tzinfo=BEIJING)


def test_calendar_files(clock):
    # 2025 National Day + Mid-Autumn: 1–8 October off; Sunday 28 Sep and Saturday 11 Oct worked
    assert not clock.is_workday(date(2025, 10, 1)) and not clock.is_workday(date(2025, 10, 8))
    assert clock.is_workday(date(2025, 9, 28)) and clock.is_workday(date(2025, 10, 11))
    assert not clock.is_workday(date(2025, 9, 27))  # a plain Saturday
    assert clock.is_workday(date(2026, 2, 14)) and not clock.is_workday(date(2026, 2, 16))  # 2026 Spring Festival
    assert 2027 in clock.unpublished_years and clock.is_workday(date(2027, 3, 3))


def test_friday_1729_before_a_holiday_week(clock):
    # Friday 26 Sep 2025, 17:29: one working minute left that day; Sunday 28 Sep is a make-up day
    t = bj(2025, 9, 26, 17, 29)
    assert clock.add(t, "30wmin") == bj(2025, 9, 28, 8, 59)
    # working days after it: Sun 28 (make-up), Mon 29, Tue 30 Sep, then Thursday 9 Oct
    assert clock.add(t, "3wd") == bj(2025, 9, 30, 17, 29)
    assert clock.add(t, "4wd") == bj(2025, 10, 9, 17, 29)
    # naive calendar arithmetic would have said 17:59 the same Friday
    assert clock.add(t, "30min") == bj(2025, 9, 26, 17, 59)


def test_makeup_sunday_counts(clock):
    a, b = bj(2025, 9, 28, 8, 30), bj(2025, 9, 28, 17, 30)
    assert clock.elapsed(a, b) == 420  # 7 working hours on the make-up Sunday
    assert clock.elapsed(bj(2025, 9, 21, 8, 30), bj(2025, 9, 21, 17, 30)) == 0  # a plain Sunday


def test_working_days_spanning_a_holiday(clock):
    # illegal building (15 working days) filed Thursday 25 Sep 2025 at 10:00
    t = bj(2025, 9, 25, 10, 0)
    due = clock.add(t, "15wd")
    # working days after: 26, 28(make-up), 29, 30 Sep, 9, 10, 11(make-up), 13, 14, 15, 16, 17, 20, 21, 22 Oct
    assert due == bj(2025, 10, 22, 10, 0)
    assert clock.elapsed(t, due) == 15 * 420


def test_lunch_break_and_day_end(clock):
    assert clock.add(bj(2026, 3, 3, 11, 50), "30wmin") == bj(2026, 3, 3, 14, 20)
    assert clock.add(bj(2026, 3, 3, 17, 0), "30wmin") == bj(2026, 3, 3, 17, 30)  # exactly at the end, not next morning
    assert clock.elapsed(bj(2026, 3, 3, 12, 0), bj(2026, 3, 3, 14, 0)) == 0


def test_urgent_case_at_night(clock):
    night = bj(2026, 3, 3, 23, 10)
    assert clock.add(night, "10min") == bj(2026, 3, 3, 23, 20)  # urgent: around the clock
    assert clock.add(night, "10wmin") == bj(2026, 3, 4, 8, 40)  # ordinary: next working morning
    assert clock.elapsed(night, bj(2026, 3, 4, 8, 30)) == 0


def test_vectorised_matches_scalar(clock):
    rng = np.random.default_rng(1)
    base = datetime(2025, 1, 1, tzinfo=BEIJING)
    ts = [base + timedelta(minutes=int(x)) for x in rng.integers(0, 3 * 365 * 1440, 500)]
    ns = np.array([int(t.timestamp() * 1e9) for t in ts], dtype="int64")
    assert np.allclose(clock.W_array(ns), [clock.W(t) for t in ts])
    back = clock.at_array(clock.W_array(ns))
    assert np.allclose(clock.W_array(back), clock.W_array(ns))
    for t in ts[:100]:  # W and its inverse agree
        w = clock.W(t)
        assert clock.W(clock.at(w)) == pytest.approx(w)


def test_bad_limits_and_hours():
    with pytest.raises(ClockError):
        parse_limit("3 weeks")
    with pytest.raises(ClockError):
        parse_periods("14:00-12:00")
    assert parse_limit("2wd").minutes == 840 and parse_limit("2wd").working
    assert not parse_limit("3cd").working and parse_limit("3cd").minutes == 3 * 1440


def test_default_rules():
    r = load_rules()
    assert r.cls("E0303").zh == "违法建设" and r.limit("E0303", "handle").text == "15wd"
    assert r.limit("E0101", "handle").text == "1wd"  # exposed rubbish: 1 working day [practice]
    assert r.limit("E0101", "file").text == "30wmin" and r.limit("E0101", "file", urgent=True).text == "10min"
    assert r.cls("C0101").unit == "gongyong" and r.unit_name("huanwei") == "环卫"
    kinds = {(c.kind, c.major) for c in r.classes.values()}
    assert {("component", f"0{i}") for i in range(1, 6)} <= kinds and {("event", f"0{i}") for i in range(1, 7)} <= kinds


def test_city_rules_file(tmp_path):
    doc = json.loads(load_rules().source and open(load_rules().source, encoding="utf-8").read())
    doc["classes"][0]["handle"]["limit"] = "3wd"
    p = tmp_path / "city.json"
    p.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    assert load_rules(p).limit(doc["classes"][0]["code"], "handle").text == "3wd"
    doc["classes"][0]["unit"] = "nobody"
    p.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(RulesInvalid, match="unknown unit 'nobody'"):
        load_rules(p)
