"""Bulk history of event cases from CSV or Excel (``wangge events import FILE``).

Why a separate path from ``report_event``: past cases arrive with the time of every stage
already known; they are written as the owner, all or nothing, with the same transition log
a live case gets (synthesised from the stage times), so the indicators recompute from the
log for imported history too. Every problem names the file, the row, the case ID and what
to fix; nothing is written if any row is wrong.

Columns (Chinese or English names): id, class_code, lon, lat, reported_at, filed_at,
dispatched_at, handled_at, verified_at, closed_at, rework_count, deferred; optional: urgent,
unit, description. Times are Beijing time unless they carry an offset.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, text

from gis.problems import ImportFailed, Problem
from gis.workclock import BEIJING, get_clock
from layers.audit import record as audit
from layers.event_rules import get_rules

STAGES = ("reported_at", "filed_at", "dispatched_at", "handled_at", "verified_at", "closed_at")
ALIASES = {
    "id": ("id", "编号", "案件编号", "案卷号"), "class_code": ("class_code", "class", "小类代码", "小类", "类别代码"),
    "lon": ("lon", "lng", "longitude", "经度"), "lat": ("lat", "latitude", "纬度"),
    "reported_at": ("reported_at", "上报时间"), "filed_at": ("filed_at", "立案时间"), "dispatched_at": ("dispatched_at", "派遣时间"),
    "handled_at": ("handled_at", "处置时间", "处理时间"), "verified_at": ("verified_at", "核查时间"),
    "closed_at": ("closed_at", "结案时间"), "rework_count": ("rework_count", "返工次数"), "deferred": ("deferred", "缓办"),
    "urgent": ("urgent", "紧急"), "unit": ("unit", "处置单位"), "description": ("description", "描述", "问题描述"),
}
REQUIRED = ("id", "class_code", "lon", "lat", "reported_at")
TRUE = {"1", "true", "yes", "y", "是", "t"}
FALSE = {"0", "false", "no", "n", "否", "f", ""}


def read_frame(path: Path) -> pd.DataFrame:
    """A CSV (UTF-8 or GB18030) or Excel sheet as text columns, renamed to the English names."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xls"):
            raw = pd.read_excel(path, dtype=str)
        elif suffix == ".csv":
            try:
                raw = pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False)
            except UnicodeDecodeError:
                raw = pd.read_csv(path, dtype=str, encoding="gb18030", keep_default_na=False)
        else:
            raise ImportFailed([Problem(str(path), "不支持的文件类型，请用 CSV 或 Excel / use a CSV or Excel file")])
    except ImportFailed:
        raise
    except Exception as exc:  # a file pandas cannot read: say so, do not trace back
        raise ImportFailed([Problem(str(path), f"无法读取 / cannot read the file ({type(exc).__name__}: {exc})")]) from exc
    rename = {}
    for col in raw.columns:
        name = str(col).strip()
        for key, names in ALIASES.items():
            if name.lower() in (n.lower() for n in names):
                rename[col] = key
    frame = raw.rename(columns=rename).fillna("")
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ImportFailed([Problem(str(path), f"缺少字段 missing column(s): {', '.join(missing)}", column=c) for c in missing])
    for c in ALIASES:
        if c not in frame.columns:
            frame[c] = ""
    return frame


def _time(v: str):
    v = str(v).strip()
    if not v:
        return None
    t = pd.Timestamp(v)
    return (t.tz_localize(BEIJING) if t.tzinfo is None else t).to_pydatetime()


def check(path: Path, frame: pd.DataFrame) -> tuple[list[dict], list[Problem]]:
    """Validate every row; return the rows ready to write and the problems found."""
    rules, clock = get_rules(), get_clock()
    rows, problems = [], []
    seen: set[str] = set()
    for n, r in enumerate(frame.to_dict("records"), start=2):  # row 1 is the header
        sid = str(r["id"]).strip()

        def bad(msg: str, col: str | None = None) -> None:
            problems.append(Problem(str(path), msg, row=n, source_id=sid or None, column=col))
        if not sid:
            bad("缺少编号 / the case needs an id", "id")
        elif sid in seen:
            bad("编号重复 / duplicate id: give each case its own", "id")
        seen.add(sid)
        code = str(r["class_code"]).strip()
        if code not in rules.classes:
            bad(f"未知小类 unknown class {code!r}: use a code of the event rules (e.g. E0101)", "class_code")
        try:
            lon, lat = float(r["lon"]), float(r["lat"])
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                raise ValueError
        except ValueError:
            bad("经纬度无效 / lon and lat must be WGS-84 degrees", "lon")
            lon = lat = None
        times = {}
        for c in STAGES:
            try:
                times[c] = _time(r[c])
            except (ValueError, TypeError):
                bad(f"时间无法识别 / cannot read the time {r[c]!r} (use YYYY-MM-DD HH:MM)", c)
                times[c] = None
        if times["reported_at"] is None and "reported_at" not in [p.column for p in problems if p.row == n]:
            bad("缺少上报时间 / reported_at is required", "reported_at")
        present = [(c, times[c]) for c in STAGES if times[c] is not None]
        for (c1, t1), (c2, t2) in zip(present, present[1:]):
            if t2 < t1:
                bad(f"{c2} 早于 {c1} / {c2} is before {c1}", c2)
        for later, earlier in (("closed_at", "handled_at"), ("handled_at", "dispatched_at"), ("dispatched_at", "filed_at")):
            if times[later] is not None and times[earlier] is None:
                bad(f"有 {later} 而无 {earlier} / {later} needs {earlier}", earlier)
        try:
            rework = int(str(r["rework_count"]).strip() or 0)
            if rework < 0:
                raise ValueError
        except ValueError:
            bad("返工次数应为非负整数 / rework_count must be a whole number ≥ 0", "rework_count")
            rework = 0
        flags = {}
        for c in ("deferred", "urgent"):
            v = str(r[c]).strip().lower()
            if v not in TRUE | FALSE:
                bad(f"{c} 应为 是/否 / {c} must be yes or no", c)
            flags[c] = v in TRUE
        rows.append({"sid": sid, "code": code, "lon": lon, "lat": lat, **times, "rework": rework, **flags,
                     "unit": str(r["unit"]).strip() or None, "description": str(r["description"]).strip() or None, "row": n})
    if problems:
        return rows, problems
    for r in rows:
        cls = rules.cls(r["code"])
        r["unit"] = r["unit"] or cls.unit
        due = clock.add(r["dispatched_at"], rules.limit(r["code"], "handle", r["urgent"])) if r["dispatched_at"] else None
        r["handle_due_at"] = due
        r["handle_wmin"] = (round(clock.elapsed(r["dispatched_at"], r["handled_at"]), 6)
                            if r["closed_at"] and r["dispatched_at"] and r["handled_at"] else None)
        r["status"] = ("closed" if r["closed_at"] else "verified" if r["verified_at"] else "handled" if r["handled_at"]
                       else "deferred" if r["deferred"] and r["dispatched_at"] else "dispatched" if r["dispatched_at"]
                       else "filed" if r["filed_at"] else "reported")
    return rows, problems


def import_cases(conn: Connection, path: str | Path) -> dict:
    """Load past cases (owner connection, one transaction: the caller commits). Raises
    ImportFailed with every problem, having written nothing."""
    from layers.events import ensure_scope

    p = Path(path)
    rows, problems = check(p, read_frame(p))
    if problems:
        raise ImportFailed(problems)
    ensure_scope(conn)
    conn.execute(text("CREATE TEMP TABLE _ev_import (n int, sid text, lon float8, lat float8, grid_id bigint) ON COMMIT DROP"))
    conn.execute(text("INSERT INTO _ev_import (n, sid, lon, lat) VALUES (:row, :sid, :lon, :lat)"), rows)
    conn.execute(text("""UPDATE _ev_import i SET grid_id = (SELECT g.id FROM grids g WHERE g.valid_to IS NULL
                         AND ST_Contains(g.geom, ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326)) ORDER BY g.id LIMIT 1)"""))
    outside = conn.execute(text("SELECT n, sid FROM _ev_import WHERE grid_id IS NULL ORDER BY n")).all()
    dup = conn.execute(text("SELECT i.n, i.sid FROM _ev_import i JOIN events e ON e.external_id = 'import:' || i.sid")).all()
    problems = [Problem(str(p), "位置不在任何网格内 / the point is in no grid of the sub-district", row=n, source_id=s, column="lon")
                for n, s in outside]
    problems += [Problem(str(p), "该编号已导入 / this id was imported before", row=n, source_id=s, column="id") for n, s in dup]
    if problems:
        raise ImportFailed(problems)
    grids = dict(conn.execute(text("SELECT sid, grid_id FROM _ev_import")).all())
    rules = get_rules()
    for r in rows:
        r["grid_id"] = grids[r["sid"]]
        r["kind"] = rules.name(r["code"])
        r["ext"] = "import:" + r["sid"]
        r["redisp"] = 0
        r["dcount"] = 1 if r["dispatched_at"] else 0
        r["ontime"] = (r["handled_at"] <= r["handle_due_at"]) if r["closed_at"] and r["handled_at"] and r["handle_due_at"] else None
        r["ustr"] = r["unit"] if r["dispatched_at"] else None
        r["stage_due"] = r["handle_due_at"] if r["status"] == "dispatched" else None
    ids = conn.execute(text("""
        INSERT INTO events (district_code, community_code, grid_id, kind, class_code, status, reported_at, reported_by,
          description, urgent, source, public, unit_code, units_seen, filed_at, first_dispatched_at, dispatched_at,
          handle_due_at, stage_due_at, handled_at, verified_at, closed_at, dispatch_count, redispatch_count, rework_count, deferred,
          deferred_ever, handle_wmin, on_time, external_id, geom)
        SELECT g.district_code, g.community_code, g.id, :kind, :code, :status, :reported_at, 'import', :description, :urgent,
          'import', false, :ustr, CASE WHEN CAST(:ustr AS text) IS NULL THEN '{}'::text[] ELSE ARRAY[CAST(:ustr AS text)] END,
          :filed_at, :dispatched_at, :dispatched_at, :handle_due_at, :stage_due, :handled_at, :verified_at, :closed_at, :dcount, :redisp,
          :rework, :deferred AND :status = 'deferred', :deferred, :handle_wmin, :ontime, :ext,
          ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)
        FROM grids g WHERE g.id = :grid_id RETURNING id, external_id"""), rows)
    del ids
    id_of = dict(conn.execute(text("SELECT external_id, id FROM events WHERE external_id = ANY(:e)"),
                              {"e": [r["ext"] for r in rows]}).all())
    log = []
    for r in rows:
        eid = id_of[r["ext"]]

        def step(action, frm, to, at, data=None):
            log.append({"e": eid, "a": action, "f": frm, "t": to, "at": at,
                        "d": json.dumps(data or {}, default=lambda v: v.isoformat())})
        step("report", None, "reported", r["reported_at"], {"source": "import", "class_code": r["code"]})
        if r["filed_at"]:
            step("file", "reported", "filed", r["filed_at"])
        if r["dispatched_at"]:
            step("dispatch", "filed", "dispatched", r["dispatched_at"], {"unit": r["unit"], "handle_due_at": r["handle_due_at"]})
            if r["status"] == "deferred":
                step("approve", "dispatched", "deferred", r["dispatched_at"], {"granted": "defer"})
        if r["handled_at"]:
            for _ in range(r["rework"]):
                step("handle", "dispatched", "handled", r["handled_at"])
                step("verify_fail", "handled", "dispatched", r["handled_at"])
            step("handle", "dispatched", "handled", r["handled_at"])
        if r["verified_at"]:
            step("verify_pass", "handled", "verified", r["verified_at"])
        if r["closed_at"]:
            step("close", "verified", "closed", r["closed_at"], {"handle_wmin": r["handle_wmin"]})
    conn.execute(text("""INSERT INTO event_transitions (event_id, action, from_status, to_status, at, actor, actor_role, data)
                         VALUES (:e, :a, :f, :t, :at, 'import', 'system', CAST(:d AS jsonb))"""), log)
    audit(conn, "event_import", "events", after={"file": p.name, "cases": len(rows)})
    return {"file": str(p), "cases": len(rows), "transitions": len(log)}
