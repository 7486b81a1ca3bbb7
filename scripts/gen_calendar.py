"""Regenerate data/calendar/cn-YYYY.json from the chinese-calendar package (State Council notices).

Run at build time when a new year's notice is out:
    pip download chinese-calendar --no-deps -d /tmp/cc && unzip /tmp/cc/*.whl -d /tmp/cc/x
    PYTHONPATH=/tmp/cc/x python scripts/gen_calendar.py 2025 2026 2027
A year the package does not have yet is written with ``published: false`` (weekends only).
"""
import json
import sys

from chinese_calendar import constants as c

NAMES = {"new_years_day": ("元旦", "New Year's Day"), "spring_festival": ("春节", "Spring Festival"),
         "tomb_sweeping_day": ("清明节", "Qingming Festival"), "labour_day": ("劳动节", "Labour Day"),
         "dragon_boat_festival": ("端午节", "Dragon Boat Festival"), "national_day": ("国庆节", "National Day"),
         "mid_autumn_festival": ("中秋节", "Mid-Autumn Festival")}


def key(v):
    return next(h.name for h in c.Holiday if h.value == v)


for y in map(int, sys.argv[1:]):
    hol = [{"date": d.isoformat(), "name": NAMES[key(v)][0], "name_en": NAMES[key(v)][1]} for d, v in sorted(c.holidays.items()) if d.year == y]
    wk = [{"date": d.isoformat(), "name": NAMES[key(v)][0] + "调休", "name_en": NAMES[key(v)][1] + " make-up working day"}
          for d, v in sorted(c.workdays.items()) if d.year == y]
    doc = {"year": y, "published": bool(hol), "holidays": hol, "makeup_workdays": wk,
           "source": "国务院办公厅 部分节假日安排的通知 (State Council General Office), via the chinese-calendar package"}
    with open(f"data/calendar/cn-{y}.json", "w", encoding="utf-8") as f:
        f.write(json.dumps(doc, ensure_ascii=False, indent=1) + "\n")
