"""数字城管 indicators of event cases, per grid, community or sub-district, for a period.

Why "due" is the heart of it: a reporting period's 结案率 must not count cases that are
still inside their time limit, or the latest period always looks perfect ("closed on time ÷
closed" is 100% for a month whose open cases are not yet late). So a case counts in the
period in which it *became due*: the earlier of its handling deadline and its closing.
A case closed early counts when it closed; a case still open counts when its deadline
passed; a case still open and inside its limit counts nowhere yet; an approved deferral
(缓办) counts nowhere while deferred. Formulas (every rate is None when its denominator is 0):

- 应结案数 due: cases with a first dispatch, not deferred now, whose
  ``least(handle_due_at, closed_at)`` lies in [start, min(end, as_of))
- 结案率 closure rate = closed ÷ due (closed: due cases closed by ``as_of``)
- 按期结案率 on-time closure rate = closed on time ÷ due, on time: the last handling
  (``handled_at``) no later than the handling deadline (after approved extensions)
- 返工率 rework rate = cases filed in the period sent back at least once ÷ cases filed in the period
- 准确派遣率 correct-dispatch rate = cases first dispatched in the period never re-dispatched ÷
  cases first dispatched in the period
- 延期率 extension rate = cases first dispatched in the period with an approved extension ÷
  cases first dispatched in the period
- 平均/P90 处置用时 handling time in working hours, first dispatch → last handling, over cases
  closed in the period (P90 by linear interpolation, as ``percentile_cont``)
- 超期未办 overdue now: dispatched, not deferred, past the handling deadline at ``as_of``

``indicators`` computes them in SQL from the cases; ``indicators_from_log`` replays the
transition log (``event_transitions``) and computes them again in pandas: the two agree
exactly (tests/test_events_kpi.py), which is what makes the figures auditable.
"""
from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

LEVELS = ("grid", "community", "subdistrict")
COUNTS = ("due", "closed", "closed_on_time", "filed", "reworked", "dispatched", "dispatched_right", "extended",
          "deferred_now", "overdue_now", "closed_in_period")
RATES = {  # name -> (numerator, denominator)
    "closure_rate": ("closed", "due"),
    "on_time_rate": ("closed_on_time", "due"),
    "rework_rate": ("reworked", "filed"),
    "correct_dispatch_rate": ("dispatched_right", "dispatched"),
    "extension_rate": ("extended", "dispatched"),
}
DIGITS = 6  # figures are rounded to this many decimals so SQL and pandas compare exactly


def _key(level: str, alias: str = "e") -> str:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}")
    return {"grid": "coalesce(g.code, '')", "community": f"coalesce({alias}.community_code::text, '')",
            "subdistrict": f"coalesce(left({alias}.community_code, 9), '')"}[level]


def indicators(conn: Connection, start: datetime, end: datetime, level: str = "grid",
               as_of: datetime | None = None) -> pd.DataFrame:
    """The indicators of every unit of ``level`` the scope can see, one row each, from the cases."""
    key = _key(level)
    frame = pd.read_sql(text(f"""
        WITH c AS (
          SELECT {key} AS unit, e.*,
                 CASE WHEN e.closed_at <= :asof THEN e.closed_at END AS closed_k
          FROM events e LEFT JOIN grids g ON g.id = e.grid_id
        ), k AS (
          SELECT c.*, (c.first_dispatched_at IS NOT NULL AND NOT c.deferred
                       AND least(c.handle_due_at, c.closed_k) >= :s
                       AND least(c.handle_due_at, c.closed_k) < least(CAST(:e AS timestamptz), :asof)) AS is_due
          FROM c
        )
        SELECT unit,
          count(*) FILTER (WHERE is_due) AS due,
          count(*) FILTER (WHERE is_due AND closed_k IS NOT NULL) AS closed,
          count(*) FILTER (WHERE is_due AND closed_k IS NOT NULL AND handled_at <= handle_due_at) AS closed_on_time,
          count(*) FILTER (WHERE filed_at >= :s AND filed_at < :e) AS filed,
          count(*) FILTER (WHERE filed_at >= :s AND filed_at < :e AND rework_count > 0) AS reworked,
          count(*) FILTER (WHERE first_dispatched_at >= :s AND first_dispatched_at < :e) AS dispatched,
          count(*) FILTER (WHERE first_dispatched_at >= :s AND first_dispatched_at < :e AND redispatch_count = 0) AS dispatched_right,
          count(*) FILTER (WHERE first_dispatched_at >= :s AND first_dispatched_at < :e AND extension_count > 0) AS extended,
          count(*) FILTER (WHERE deferred) AS deferred_now,
          count(*) FILTER (WHERE status = 'dispatched' AND NOT deferred AND handle_due_at < :asof) AS overdue_now,
          count(*) FILTER (WHERE closed_k >= :s AND closed_k < :e AND handle_wmin IS NOT NULL) AS closed_in_period,
          sum(round(handle_wmin * 1000000)::bigint) FILTER (WHERE closed_k >= :s AND closed_k < :e) AS wmin_micro,
          percentile_cont(0.9) WITHIN GROUP (ORDER BY handle_wmin / 60.0) FILTER (WHERE closed_k >= :s AND closed_k < :e)
            AS handling_hours_p90
        FROM k GROUP BY unit ORDER BY unit"""), conn,
        params={"s": start, "e": end, "asof": as_of or datetime.now().astimezone()})
    return finish(frame)


def finish(frame: pd.DataFrame) -> pd.DataFrame:
    """Rates from the counts, rounded; None (not NaN) where a denominator is 0 or nothing was closed."""
    out = frame.copy()
    for c in COUNTS:
        out[c] = out[c].astype("int64")
    # (object Series: a list of floats and None assigned as is would become float NaN)
    for name, (num, den) in RATES.items():
        out[name] = pd.Series([round(n / d, DIGITS) if d else None for n, d in zip(out[num], out[den])],
                              index=out.index, dtype=object)
    # the mean from an exact integer sum (micro-minutes) and the count: the same float on both sides,
    # whatever order a database or pandas adds in
    out["handling_hours_avg"] = [None if not n or m is None or pd.isna(m) else int(m) / int(n) / 60e6
                                 for m, n in zip(out["wmin_micro"], out["closed_in_period"])]
    for c in ("handling_hours_avg", "handling_hours_p90"):
        out[c] = pd.Series([None if v is None or pd.isna(v) else round(float(v), DIGITS) for v in out[c]],
                           index=out.index, dtype=object)
    return out[["unit", *COUNTS, *RATES, "handling_hours_avg", "handling_hours_p90"]].astype(object).reset_index(drop=True)


# --- the same from the transition log ----------------------------------------------------------------

def replay(log: pd.DataFrame) -> pd.DataFrame:
    """One row per case rebuilt from its transitions alone (``event_id, action, at, data``, in order)."""
    rows = {}
    for eid, t in log.groupby("event_id", sort=False):
        r = {"id": eid, "status": None, "filed_at": None, "first_dispatched_at": None, "handle_due_at": None,
             "handled_at": None, "closed_at": None, "rework_count": 0, "dispatch_count": 0, "extension_count": 0,
             "deferred": False, "handle_wmin": None}
        for a, at, to, data in zip(t["action"], t["at"], t["to_status"], t["data"]):
            data = data or {}
            r["status"] = to
            if a == "file" and r["filed_at"] is None:
                r["filed_at"] = at
            elif a == "dispatch":
                if r["first_dispatched_at"] is None:
                    r["first_dispatched_at"], r["handle_due_at"] = at, pd.Timestamp(data["handle_due_at"])
                r["dispatch_count"] += 1
            elif a == "handle":
                r["handled_at"] = at
            elif a == "verify_fail":
                r["rework_count"] += 1
            elif a == "close":
                r["closed_at"], r["handle_wmin"] = at, data.get("handle_wmin")
            elif a == "approve" and data.get("granted") == "extend":
                r["handle_due_at"], r["extension_count"] = pd.Timestamp(data["handle_due_at"]), r["extension_count"] + 1
            elif a == "approve" and data.get("granted") == "defer":
                r["deferred"] = True
            elif a == "resume":
                r["deferred"], r["handle_due_at"] = False, pd.Timestamp(data["handle_due_at"])
        rows[eid] = r
    out = pd.DataFrame(list(rows.values()))
    if out.empty:
        return out
    out["redispatch_count"] = (out["dispatch_count"] - 1).clip(lower=0)
    for c in ("filed_at", "first_dispatched_at", "handle_due_at", "handled_at", "closed_at"):
        out[c] = pd.to_datetime(out[c], utc=True)
    return out


def compute(cases: pd.DataFrame, start: datetime, end: datetime, as_of: datetime) -> pd.DataFrame:
    """The indicators in pandas from one row per case (columns as ``replay`` gives, plus ``unit``)."""
    s, e, now = (pd.Timestamp(x).tz_convert("UTC") if pd.Timestamp(x).tzinfo else pd.Timestamp(x, tz="UTC")
                 for x in (start, end, as_of))
    c = cases.copy()
    closed_k = c["closed_at"].where(c["closed_at"] <= now)
    key = pd.concat([c["handle_due_at"], closed_k], axis=1).min(axis=1)
    due = c["first_dispatched_at"].notna() & ~c["deferred"].astype(bool) & (key >= s) & (key < min(e, now))
    closed = due & closed_k.notna()
    filed = (c["filed_at"] >= s) & (c["filed_at"] < e)
    disp = (c["first_dispatched_at"] >= s) & (c["first_dispatched_at"] < e)
    in_p = (closed_k >= s) & (closed_k < e)
    hours = c["handle_wmin"].astype(float) / 60.0
    f = pd.DataFrame({
        "unit": c["unit"], "due": due, "closed": closed,
        "closed_on_time": closed & (c["handled_at"] <= c["handle_due_at"]),
        "filed": filed, "reworked": filed & (c["rework_count"] > 0), "dispatched": disp,
        "dispatched_right": disp & (c["redispatch_count"] == 0), "extended": disp & (c["extension_count"] > 0),
        "deferred_now": c["deferred"].astype(bool),
        "overdue_now": (c["status"] == "dispatched") & ~c["deferred"].astype(bool) & (c["handle_due_at"] < now),
        "closed_in_period": in_p & hours.notna(), "h": hours.where(in_p)})
    f["wmin_micro"] = np.rint(c["handle_wmin"].astype(float) * 1e6).where(in_p & hours.notna(), 0).astype("int64")
    g = f.groupby("unit", sort=True)
    out = g[[*COUNTS, "wmin_micro"]].sum().reset_index()
    p90 = f[f["h"].notna()].groupby("unit", sort=True)["h"].agg(percentile_cont_90)
    out["handling_hours_p90"] = out["unit"].map(p90)
    return finish(out)


def percentile_cont_90(values: pd.Series) -> float:
    """PostgreSQL's ``percentile_cont(0.9)``, step for step (the same float operations, so the
    same float): rows sorted, position 0.9·(n−1), linear between its two neighbours."""
    v = np.sort(values.to_numpy(dtype=float))
    pos = 0.9 * (len(v) - 1)
    lo, hi = int(np.floor(pos)), int(np.ceil(pos))
    return float(v[lo]) if lo == hi else float(v[lo] + (v[hi] - v[lo]) * (pos - lo))


def indicators_from_log(conn: Connection, start: datetime, end: datetime, level: str = "grid",
                        as_of: datetime | None = None) -> pd.DataFrame:
    """The indicators again, from the transition log the scope can see (and each case's place)."""
    log = pd.read_sql(text("""SELECT t.event_id, t.action, t.to_status, t.at, t.data FROM event_transitions t
                              ORDER BY t.event_id, t.at, t.id"""), conn)
    places = pd.read_sql(text(f"SELECT e.id, {_key(level)} AS unit FROM events e LEFT JOIN grids g ON g.id = e.grid_id"), conn)
    cases = replay(log)
    if cases.empty:
        return finish(pd.DataFrame({"unit": [], **{c: [] for c in COUNTS}, "wmin_micro": [], "handling_hours_p90": []}))
    cases = cases.merge(places, on="id")
    return compute(cases, start, end, as_of or datetime.now().astimezone())


def month_range(period: str) -> tuple[datetime, datetime]:
    """``"2026-03"`` → (2026-03-01 00:00, 2026-04-01 00:00) Beijing time."""
    from gis.workclock import BEIJING

    try:
        y, m = (int(x) for x in period.split("-"))
        start = datetime(y, m, 1, tzinfo=BEIJING)
    except ValueError as exc:
        raise ValueError(f"period {period!r}: expected YYYY-MM") from exc
    return start, datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=BEIJING)


def monthly(conn: Connection, months: list[str], level: str = "subdistrict", as_of: datetime | None = None) -> pd.DataFrame:
    """One row per month and unit (for trends)."""
    parts = []
    for p in months:
        s, e = month_range(p)
        f = indicators(conn, s, e, level, as_of)
        f.insert(0, "month", p)
        parts.append(f)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def to_records(frame: pd.DataFrame) -> list[dict]:
    """Rows as plain dicts with None for missing values (strict JSON)."""
    return [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()} for r in frame.to_dict("records")]
