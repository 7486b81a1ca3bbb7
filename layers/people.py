"""The person registers (一标三实 actual population, and the groups of standards §3) and the
protections PIPL asks of them (issue 17).

What the database does (migration 0019): the app role has no privilege on ``persons``,
``person_groups``, ``visits`` or ``person_access_log``; it calls owner functions that return
masked rows of the caller's area (row-level security, forced on the owner too) and write one
access-log row per person returned in the same statement. This module is the Python side:

- ID numbers (GB 11643) are validated (check digit mod 11), then stored three ways: AES-256-GCM
  ciphertext under ``WANGGE_PEOPLE_KEY`` (in ``.env``, never in the database), an HMAC-SHA256
  under a key derived from it (finds duplicates without decrypting), and the masked form
  ``420106********1234``. A dump without the key shows only the mask; a stolen key without the
  dump shows nothing. Why not a plain hash: an ID number has ~10^11 plausible values (region,
  birth date, serial), so an unkeyed hash is reversed by enumeration in minutes. Phones the same.
- Reveal: one record, by a worker or secretary of that area, with a reason; the database
  returns the ciphertext and logs the reveal; this module decrypts.
- Exports: a role that may export (secretary), a reason, each sheet watermarked with the user
  and the time, every person exported logged.
- Anonymisation: moved away or dead, ``WANGGE_PEOPLE_RETENTION_DAYS`` after the status date.

Imports (Excel/CSV with Chinese headers) run as the owner under the system scope, all or
nothing, and name every problem by file, row and (masked) ID.
"""
from __future__ import annotations

import hashlib
import hmac
import io
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, text

from gis.errors import BadInput
from gis.inert import inert, inert_frame
from gis.problems import ImportFailed, Problem
from gis.settings import get_settings

BEIJING = timezone(timedelta(hours=8))

# Groups a person can belong to in the register (standards §3; GB/T 31000-2015 special groups).
# Chinese, English; elderly 65+ and floating population are derived from the birth date and the
# floating flag, rental dwellings are not people.
PERSON_GROUPS: dict[str, tuple[str, str]] = {
    "elderly_alone": ("独居老人", "Elderly living alone"),
    "disabled": ("残疾人", "Disabled"),
    "dibao": ("低保户", "Minimum-income (低保)"),
    "released": ("刑满释放人员", "Released prisoner"),
    "corrections": ("社区矫正对象", "Community-corrections case"),
    "mental": ("严重精神障碍患者", "Severe mental disorder"),
    "at_risk_youth": ("重点青少年", "At-risk youth"),
    "party_members": ("党员", "Party member"),
    "volunteers": ("志愿者", "Volunteer"),
}
TIERS = {"严管": "strict", "普管": "normal", "宽管": "lenient", "strict": "strict", "normal": "normal", "lenient": "lenient"}
STATUSES = {"在住": "resident", "常住": "resident", "迁出": "moved", "外迁": "moved", "死亡": "dead",
            "resident": "resident", "moved": "moved", "dead": "dead"}
OUTCOMES = ("met", "absent", "refused")

# Register columns: Chinese header (and English alternative) -> field.
HEADERS: dict[str, str] = {
    "姓名": "name", "name": "name",
    "身份证号": "id_number", "公民身份号码": "id_number", "身份证号码": "id_number", "id_number": "id_number",
    "性别": "sex", "sex": "sex",
    "出生日期": "birth_date", "birth_date": "birth_date",
    "联系电话": "phone", "电话": "phone", "手机号": "phone", "phone": "phone",
    "楼栋编号": "building", "楼栋": "building", "building": "building",
    "房号": "household_no", "户号": "household_no", "household_no": "household_no",
    "户籍地址": "hukou_address", "hukou_address": "hukou_address",
    "人户分离": "separated", "separated": "separated",
    "流动人口": "floating", "floating": "floating",
    "来本地日期": "arrival_date", "arrival_date": "arrival_date",
    "人员状态": "status", "状态": "status", "status": "status",
    "状态日期": "status_date", "status_date": "status_date",
    "人员类别": "groups", "类别": "groups", "groups": "groups",
    "纳入日期": "since", "since": "since",
    "风险等级": "risk_grade", "risk_grade": "risk_grade",
    "监护人": "guardian", "guardian": "guardian",
    "释放日期": "release_date", "release_date": "release_date",
    "帮教情况": "bangjiao_status", "帮教状态": "bangjiao_status", "bangjiao_status": "bangjiao_status",
    "管理等级": "tier", "矫正管理等级": "tier", "tier": "tier",
    "矫正类别": "corrections_category", "原罪名": "offence", "原判刑期": "sentence",
    "衔接情况": "handover_status", "安置情况": "placement_status", "诊断": "diagnosis",
}
DETAIL_FIELDS = ("corrections_category", "offence", "sentence", "handover_status", "placement_status")
REQUIRED = ("name", "id_number", "building")


class PeopleError(BadInput):
    """A refusal the user can act on (no key, no reason given, a role that may not export).
    Of the project's one family, so the screens' seam passes it through as a refusal."""


# --- ID numbers (GB 11643-1999) -----------------------------------------------------------------

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def check_digit(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits (ISO 7064 MOD 11-2)."""
    return _CHECK[sum(int(c) * w for c, w in zip(first17, _WEIGHTS)) % 11]


def validate_id(value: object) -> str:
    """The ID number normalised (18 characters, upper-case X), or ValueError saying what is wrong."""
    s = re.sub(r"\s+", "", str(value or "")).upper()
    if not s:
        raise ValueError("身份证号为空 / ID number missing")
    if not re.fullmatch(r"[0-9]{17}[0-9X]", s):
        raise ValueError("身份证号应为18位（最后一位可为X） / ID number must be 18 characters")
    try:
        born = date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        raise ValueError("身份证号中的出生日期无效 / the birth date inside the ID number is not a date") from None
    if born > date.today() or born.year < 1890:
        raise ValueError("身份证号中的出生日期不合理 / the birth date inside the ID number is out of range")
    if check_digit(s[:17]) != s[17]:
        raise ValueError("身份证号校验位错误（GB 11643） / wrong check digit (GB 11643)")
    return s


def id_birth_sex(idn: str) -> tuple[date, str]:
    """Birth date and sex (odd 17th digit: male) encoded in a valid ID number."""
    return date(int(idn[6:10]), int(idn[10:12]), int(idn[12:14])), ("M" if int(idn[16]) % 2 else "F")


def mask_id(idn: str) -> str:
    """First 6 + 8 stars + last 4 (standards §3)."""
    return idn[:6] + "*" * 8 + idn[-4:]


def validate_phone(value: object) -> str:
    s = re.sub(r"[\s-]+", "", str(value or ""))
    if re.fullmatch(r"1[3-9][0-9]{9}", s) or re.fullmatch(r"0[0-9]{9,11}", s) or re.fullmatch(r"[2-9][0-9]{6,7}", s):
        return s
    raise ValueError("电话号码格式不对（手机11位或带区号的固话） / phone is not a mobile or landline number")


def mask_phone(phone: str) -> str:
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:] if len(phone) >= 8 else "*" * (len(phone) - 2) + phone[-2:]


# --- the key kept outside the database -----------------------------------------------------------

def _master() -> bytes:
    key = get_settings().people_key
    if not key or len(key) < 32:
        raise PeopleError("WANGGE_PEOPLE_KEY 未设置（scripts/bootstrap.sh 会生成） / WANGGE_PEOPLE_KEY is not set "
                          "(scripts/bootstrap.sh generates one into .env)")
    return key.encode()


def _subkey(label: str) -> bytes:
    return hmac.new(_master(), label.encode(), hashlib.sha256).digest()


def keyed_hash(idn: str) -> str:
    """HMAC-SHA256 of the normalised ID number: finds a person (or a duplicate) without decrypting."""
    return hmac.new(_subkey("wangge-people-hash"), idn.encode(), hashlib.sha256).hexdigest()


def encrypt(value: str) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    return nonce + AESGCM(_subkey("wangge-people-enc")).encrypt(nonce, value.encode(), b"wangge-person")


def decrypt(blob: bytes | memoryview | None) -> str | None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if blob is None:
        return None
    blob = bytes(blob)
    return AESGCM(_subkey("wangge-people-enc")).decrypt(blob[:12], blob[12:], b"wangge-person").decode()


# --- transactions under a scope (the people tables force row-level security on the owner too) ------

@contextmanager
def owner_transaction() -> Iterator[Connection]:
    """An owner transaction that carries the current scope (the CLI's: system), because the
    people tables' policies bind the owner too (FORCE ROW LEVEL SECURITY)."""
    from gis import scope
    from gis.db import owner_engine

    with owner_engine().begin() as conn:
        scope.apply(conn.connection.dbapi_connection, scope.current())
        yield conn


# --- import ---------------------------------------------------------------------------------------

@dataclass
class RegisterReport:
    file: str
    persons: int = 0
    memberships: int = 0
    buildings: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"file": self.file, "persons": self.persons, "memberships": self.memberships,
                "buildings_recounted": self.buildings, "notes": self.notes}


def read_table(path: Path) -> pd.DataFrame:
    """A register file as text cells (Excel .xlsx/.xls, or CSV in UTF-8 or GBK)."""
    if path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
        return pd.read_excel(path, dtype=str).fillna("")
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return pd.read_csv(path, dtype=str, encoding=enc, keep_default_na=False)
        except UnicodeDecodeError:
            continue
    raise ImportFailed([Problem(path.name, "无法识别文件编码（请存为UTF-8或GBK） / cannot decode the file (save as UTF-8 or GBK)")])


def _yes(v: str) -> bool:
    return str(v).strip().lower() in ("是", "y", "yes", "true", "1", "√")


def _date(v: str) -> date | None:
    v = str(v).strip()
    if not v:
        return None
    d = pd.to_datetime(v, errors="coerce")
    if pd.isna(d):
        raise ValueError(f"日期无法识别：{v} / not a date")
    return d.date()


def _split_groups(v: str) -> list[str]:
    out = []
    for part in re.split(r"[,，、;；/\s]+", str(v).strip()):
        if not part:
            continue
        code = next((c for c, (zh, en) in PERSON_GROUPS.items() if part in (c, zh, en) or zh.startswith(part) and len(part) >= 2), None)
        if code is None:
            raise ValueError(f"未知的人员类别：{part}（可用：{'、'.join(zh for zh, _ in PERSON_GROUPS.values())}）")
        out.append(code)
    return out


def import_register(path: str | Path, *, conn: Connection | None = None) -> RegisterReport:
    """Import a person register, all or nothing. Rows name their building by ``楼栋编号`` (the
    building's source id) or its address; one row per person, groups in ``人员类别``."""
    path = Path(path)
    frame = read_table(path)
    name = path.name
    unknown = [c for c in frame.columns if str(c).strip() not in HEADERS]
    frame = frame.rename(columns={c: HEADERS[str(c).strip()] for c in frame.columns if str(c).strip() in HEADERS})
    problems: list[Problem] = []
    for col in REQUIRED:
        if col not in frame.columns:
            problems.append(Problem(name, f"缺少必填列 / missing required column（{ {'name': '姓名', 'id_number': '身份证号', 'building': '楼栋编号'}[col] }）"))
    if problems:
        raise ImportFailed(problems)
    if frame.columns.duplicated().any():
        raise ImportFailed([Problem(name, "同一字段出现了两列 / two columns map to the same field")])
    report = RegisterReport(file=name, notes=[f"未使用的列 / ignored column: {c}" for c in unknown])
    with (owner_transaction() if conn is None else _nullctx(conn)) as c:
        blds = {}
        for bid, src, addr, grid, com, dist in c.execute(text(
                "SELECT id, source_id, address, grid_id, community_code, district_code FROM buildings")):
            blds[str(src)] = (bid, grid, com, dist)
            if addr:
                blds.setdefault(str(addr), (bid, grid, com, dist))
        rows, seen = [], {}
        for i, r in enumerate(frame.to_dict("records"), start=2):  # row 1 is the header
            def bad(msg: str, col: str | None = None, sid: str | None = None) -> None:
                problems.append(Problem(name, msg, row=i, source_id=sid, column=col))
            try:
                idn = validate_id(r.get("id_number"))
            except ValueError as exc:
                raw = re.sub(r"\s+", "", str(r.get("id_number") or ""))
                bad(f"{exc}；请核对身份证号 / check the ID number", "身份证号", mask_id(raw) if len(raw) >= 10 else None)
                continue
            masked = mask_id(idn)
            h = keyed_hash(idn)
            if h in seen:
                bad(f"身份证号在文件中重复（与第{seen[h]}行） / duplicate ID number in the file (row {seen[h]})", "身份证号", masked)
                continue
            seen[h] = i
            person = {"name": str(r.get("name") or "").strip(), "id_hash": h, "id_masked": masked, "row": i}
            if not person["name"]:
                bad("姓名为空 / name missing", "姓名", masked)
            b = blds.get(str(r.get("building") or "").strip())
            if b is None:
                bad(f"找不到楼栋：{r.get('building')}（请填楼栋编号或地址） / no such building", "楼栋编号", masked)
                continue
            person.update(building_id=b[0], grid_id=b[1], community_code=b[2], district_code=b[3])
            born, sex = id_birth_sex(idn)
            person.update(birth_date=born, sex=sex, id_cipher=encrypt(idn))
            try:
                if str(r.get("birth_date") or "").strip() and _date(r["birth_date"]) != born:
                    bad("出生日期与身份证号不符 / birth date differs from the ID number", "出生日期", masked)
                sx = str(r.get("sex") or "").strip()
                if sx and {"男": "M", "女": "F", "M": "M", "F": "F"}.get(sx) != sex:
                    bad("性别与身份证号不符 / sex differs from the ID number", "性别", masked)
                phone = str(r.get("phone") or "").strip()
                if phone:
                    phone = validate_phone(phone)
                    person.update(phone_cipher=encrypt(phone), phone_masked=mask_phone(phone))
                else:
                    person.update(phone_cipher=None, phone_masked=None)
                st = str(r.get("status") or "在住").strip() or "在住"
                if st not in STATUSES:
                    raise ValueError(f"人员状态应为 在住/迁出/死亡，而不是 {st}")
                person.update(status=STATUSES[st], status_date=_date(r.get("status_date", "")),
                              separated=_yes(r.get("separated", "")), floating=_yes(r.get("floating", "")),
                              arrival_date=_date(r.get("arrival_date", "")),
                              household_no=str(r.get("household_no") or "").strip() or None,
                              hukou_address=str(r.get("hukou_address") or "").strip() or None)
                groups = _split_groups(r.get("groups", ""))
                risk = str(r.get("risk_grade") or "").strip()
                risk_grade = int(risk) if risk else None
                if risk_grade is not None and not 0 <= risk_grade <= 5:
                    raise ValueError("风险等级应为0–5 / risk grade must be 0–5")
                if risk_grade is not None and "mental" not in groups:
                    raise ValueError("风险等级只用于严重精神障碍患者 / a risk grade needs the group 严重精神障碍患者")
                tier_raw = str(r.get("tier") or "").strip()
                if tier_raw and tier_raw not in TIERS:
                    raise ValueError("管理等级应为 严管/普管/宽管 / tier must be 严管, 普管 or 宽管")
                memberships = []
                for g in groups:
                    memberships.append({
                        "group_code": g, "since": _date(r.get("since", "")),
                        "risk_grade": risk_grade if g == "mental" else None,
                        "tier": TIERS.get(tier_raw) if g == "corrections" and tier_raw else None,
                        "release_date": _date(r.get("release_date", "")) if g == "released" else None,
                        "bangjiao_status": (str(r.get("bangjiao_status") or "").strip() or None) if g == "released" else None,
                        "guardian": (str(r.get("guardian") or "").strip() or None) if g == "mental" else None,
                        "details": {k: str(r[k]).strip() for k in DETAIL_FIELDS if str(r.get(k) or "").strip()}
                        if g in ("released", "corrections") else {},
                    })
                if "mental" in groups and risk_grade is None:
                    raise ValueError("严重精神障碍患者须填风险等级（0–5） / a severe mental disorder needs a risk grade 0–5")
                if "corrections" in groups and not tier_raw:
                    raise ValueError("社区矫正对象须填管理等级（严管/普管/宽管） / a corrections case needs a tier")
                person["groups"] = memberships
            except ValueError as exc:
                bad(f"{exc}", None, masked)
                continue
            rows.append(person)
        if rows:
            existing = {h: (pid, grid) for h, pid, grid in c.execute(text(
                "SELECT p.id_hash, p.id, g.code FROM persons p LEFT JOIN grids g ON g.id = p.grid_id WHERE p.id_hash = ANY(:h)"),
                {"h": [p["id_hash"] for p in rows]})}
            for p in rows:
                if p["id_hash"] in existing:
                    pid, grid = existing[p["id_hash"]]
                    problems.append(Problem(name, f"此人已登记（人员编号{pid}，网格{grid or '—'}） / already registered "
                                                  f"(person {pid}, grid {grid or '—'})", row=p["row"], source_id=p["id_masked"],
                                            column="身份证号"))
        if problems:
            raise ImportFailed(problems)
        for p in rows:
            pid = c.execute(text("""
                INSERT INTO persons (district_code, community_code, grid_id, building_id, household_no, name, sex, birth_date,
                                     id_hash, id_cipher, id_masked, phone_cipher, phone_masked, hukou_address, separated,
                                     floating, arrival_date, status, status_date)
                VALUES (:district_code, :community_code, :grid_id, :building_id, :household_no, :name, :sex, :birth_date,
                        :id_hash, :id_cipher, :id_masked, :phone_cipher, :phone_masked, :hukou_address, :separated,
                        :floating, :arrival_date, :status, :status_date) RETURNING id"""),
                {k: v for k, v in p.items() if k not in ("groups", "row")}).scalar_one()
            for m in p["groups"]:
                c.execute(text("""
                    INSERT INTO person_groups (person_id, group_code, since, risk_grade, tier, release_date, bangjiao_status,
                                               guardian, details)
                    VALUES (:pid, :group_code, :since, :risk_grade, :tier, :release_date, :bangjiao_status, :guardian,
                            CAST(:details AS jsonb))"""), {**m, "pid": pid, "details": _json(m["details"])})
            report.memberships += len(p["groups"])
        report.persons = len(rows)
        report.buildings = derive_building_groups(c, sorted({p["building_id"] for p in rows}))
        from layers import audit

        audit.record(c, "import_persons", "persons", row_key=name, after={"persons": report.persons,
                                                                        "memberships": report.memberships})
    return report


@contextmanager
def _nullctx(conn: Connection) -> Iterator[Connection]:
    yield conn


def _json(d: dict) -> str:
    import json

    return json.dumps(d, ensure_ascii=False)


def derive_building_groups(conn: Connection, building_ids: list[int] | None = None) -> int:
    """Per-building group counts (``building_groups``) from the register, for every building
    that has a register (at least one person on it): persons per group among residents,
    elderly 65+ from the birth dates, floating from the flag, 低保 as households. Rental
    dwellings are not in a person register and keep their count. Returns buildings updated."""
    where = "" if building_ids is None else "AND p.building_id = ANY(:ids)"
    n = conn.execute(text(f"""
        WITH p AS (SELECT p.* FROM persons p WHERE p.building_id IS NOT NULL AND p.status = 'resident'
                     AND p.anonymised_at IS NULL {where}),
        c AS (
          SELECT p.building_id, min(p.district_code) AS district_code,
                 count(*) FILTER (WHERE p.birth_date <= (now() AT TIME ZONE 'Asia/Shanghai')::date - interval '65 years') AS elderly_65,
                 count(*) FILTER (WHERE p.floating) AS floating,
                 count(DISTINCT coalesce(p.household_no, p.id::text)) FILTER (WHERE g.group_code = 'dibao') AS dibao,
                 {', '.join(f"count(DISTINCT p.id) FILTER (WHERE g.group_code = '{k}') AS {k}" for k in PERSON_GROUPS if k != 'dibao' and k != 'mental')}
            FROM p LEFT JOIN person_groups g ON g.person_id = p.id GROUP BY p.building_id)
        INSERT INTO building_groups (building_id, district_code, elderly_65, floating, dibao,
                                     {', '.join(k for k in PERSON_GROUPS if k not in ('dibao', 'mental'))})
        SELECT building_id, district_code, elderly_65, floating, dibao, {', '.join(k for k in PERSON_GROUPS if k not in ('dibao', 'mental'))}
          FROM c
        ON CONFLICT (building_id, district_code) DO UPDATE SET elderly_65 = EXCLUDED.elderly_65, floating = EXCLUDED.floating,
           dibao = EXCLUDED.dibao, {', '.join(f'{k} = EXCLUDED.{k}' for k in PERSON_GROUPS if k not in ('dibao', 'mental'))}"""),
        {"ids": building_ids} if building_ids is not None else {}).rowcount
    return int(n)


# --- reads (every one logged by the database) ----------------------------------------------------

def list_people(conn: Connection, *, grid_id: int | None = None, community: str | None = None, due_by: date | None = None,
                channel: str = "app", reason: str | None = None) -> pd.DataFrame:
    """Masked register rows of the caller's area (one access-log row per person returned)."""
    frame = pd.read_sql(text("""SELECT * FROM people_list(CAST(:g AS bigint), CAST(:c AS text), CAST(:d AS date),
                                                          :ch, CAST(:r AS text))"""),
                        conn, params={"g": grid_id, "c": community, "d": due_by, "ch": channel, "r": reason})
    return frame


def person(conn: Connection, person_id: int, *, channel: str = "app", reason: str | None = None) -> dict | None:
    """One person's masked record, groups (with their GB/T 31000 fields) and visits: logged as a view."""
    rows = pd.read_sql(text("""SELECT * FROM people_list(NULL, NULL, NULL, :ch, CAST(:r AS text), :p)"""), conn,
                       params={"p": int(person_id), "ch": channel, "r": reason})
    if rows.empty:
        return None
    out = rows.iloc[0].to_dict()
    detail = pd.read_sql(text("SELECT * FROM people_detail(:p, :ch, CAST(:r AS text))"), conn,
                         params={"p": int(person_id), "ch": channel, "r": reason})
    out["memberships"] = detail[detail["kind"] == "group"].drop(columns=["kind"]).to_dict("records")
    out["visits"] = detail[detail["kind"] == "visit"].drop(columns=["kind"]).to_dict("records")
    return out


def reveal(conn: Connection, person_id: int, reason: str, *, channel: str = "app") -> dict:
    """The full ID number and phone of one person, for a worker or secretary of their area, with a
    reason (logged as a reveal by the database before anything is returned)."""
    if not reason or len(reason.strip()) < 2:
        raise PeopleError("查看完整信息须填写理由 / a reason is required to reveal a record")
    row = conn.execute(text("SELECT id, id_cipher, phone_cipher FROM people_reveal(:p, :r, :ch)"),
                       {"p": int(person_id), "r": reason, "ch": channel}).first()
    if row is None:
        raise PeopleError("无权查看或无此人 / no such person in your area, or your role may not reveal records")
    return {"id": int(row.id), "id_number": decrypt(row.id_cipher), "phone": decrypt(row.phone_cipher)}


def find_by_id_number(conn: Connection, id_number: str, *, channel: str = "app", reason: str | None = None) -> dict | None:
    """A person by ID number (through the keyed hash; the number itself never reaches the database)."""
    idn = validate_id(id_number)
    # the keyed hash finds the row; the owner looks it up under the caller's scope (forced policies)
    with owner_transaction() as oc:
        pid = oc.execute(text("SELECT id FROM persons WHERE id_hash = :h"), {"h": keyed_hash(idn)}).scalar()
    return person(conn, pid, channel=channel, reason=reason) if pid is not None else None


def access_log(conn: Connection, person_id: int | None = None, limit: int = 1000) -> pd.DataFrame:
    """Who read which person's record, when and why (administrator and system only)."""
    return pd.read_sql(text("SELECT * FROM people_access(CAST(:p AS bigint), :n)"), conn,
                       params={"p": person_id, "n": int(limit)})


def counts(conn: Connection, level: str = "grid", today: date | None = None) -> pd.DataFrame:
    """Counts only (persons, per group, scheduled, due today, overdue) per grid/community/sub-district."""
    return pd.read_sql(text("SELECT * FROM people_counts(:l, CAST(:t AS date))"), conn, params={"l": level, "t": today})


def export_people(conn: Connection, *, user: str, role: str, reason: str, community: str | None = None,
                  now: datetime | None = None) -> bytes:
    """The masked register as Excel, for a role that may export, with a reason; every sheet carries
    a watermark (the user and the time, in the sheet's first row, its header and footer, and
    across the page behind the table); every person exported is logged by the database."""
    if role not in get_settings().people_export_roles and role != "system":
        raise PeopleError("您的角色不能导出人员信息 / your role may not export person data")
    if not reason or len(reason.strip()) < 2:
        raise PeopleError("导出须填写理由 / a reason is required to export person data")
    frame = pd.read_sql(text("SELECT * FROM people_export(CAST(:c AS text), :r, 'export')"), conn,
                        params={"c": community, "r": reason})
    return watermarked_excel({"人员登记 register": _export_frame(frame)}, user, now)


def _export_frame(frame: pd.DataFrame) -> pd.DataFrame:
    cols = {"id": "人员编号", "community_code": "社区代码", "grid_code": "网格", "address": "楼栋地址", "household_no": "房号",
            "name": "姓名", "sex": "性别", "birth_date": "出生日期", "id_masked": "身份证号（脱敏）", "phone_masked": "电话（脱敏）",
            "groups": "人员类别", "risk_grade": "风险等级", "next_visit": "下次走访"}
    out = frame[list(cols)].rename(columns=cols).copy()
    out["性别"] = out["性别"].map({"M": "男", "F": "女"}).fillna("")
    out["人员类别"] = out["人员类别"].map(lambda gs: "、".join(PERSON_GROUPS.get(g, (g,))[0] for g in (gs or [])))
    return out.astype(object).where(out.notna(), "")


def watermark_text(user: str, now: datetime | None = None) -> str:
    t = (now or datetime.now(BEIJING)).astimezone(BEIJING)
    return f"{user} 导出于 {t:%Y-%m-%d %H:%M} 北京时间 · 个人信息，严禁外传"


def watermarked_excel(sheets: dict[str, pd.DataFrame], user: str, now: datetime | None = None) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    mark = inert(watermark_text(user, now))  # (a user name could begin with "=")
    wb = Workbook()
    wb.remove(wb.active)
    for title, frame in sheets.items():
        frame = inert_frame(frame)  # a name or address that begins with = + - @ stays text (issue 19)
        ws = wb.create_sheet(title[:31])
        ws.append([mark])
        ws["A1"].font = Font(color="C00000", bold=True)
        ws.append(list(frame.columns))
        for row in frame.itertuples(index=False):
            ws.append([str(v) if not isinstance(v, (int, float)) else v for v in row])
        ws.oddHeader.center.text = mark
        ws.oddFooter.center.text = mark
        ws.evenHeader.center.text = mark
        ws.evenFooter.center.text = mark
        ws.freeze_panes = "A3"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# --- anonymisation after the retention period ------------------------------------------------------

def anonymise(conn: Connection, retention_days: int | None = None, today: date | None = None) -> int:
    """Strip the identity of persons who moved away or died more than the retention period ago:
    name, ID (cipher, hash, mask), phone, household number, address, guardian, visit notes and
    places; the birth date is kept as its year (counts by age still work). Returns persons anonymised."""
    days = get_settings().people_retention_days if retention_days is None else retention_days
    cutoff = (today or datetime.now(BEIJING).date()) - timedelta(days=days)
    ids = [r[0] for r in conn.execute(text("""
        SELECT id FROM persons WHERE status IN ('moved', 'dead') AND anonymised_at IS NULL
           AND coalesce(status_date, (registered_at AT TIME ZONE 'Asia/Shanghai')::date) <= :cut"""), {"cut": cutoff})]
    if not ids:
        return 0
    conn.execute(text("""
        UPDATE persons SET name = '（已匿名）', id_hash = NULL, id_cipher = NULL, id_masked = NULL, phone_cipher = NULL,
               phone_masked = NULL, household_no = NULL, hukou_address = NULL,
               birth_date = make_date(extract(year FROM birth_date)::int, 1, 1), anonymised_at = now()
         WHERE id = ANY(:ids)"""), {"ids": ids})
    conn.execute(text("UPDATE person_groups SET guardian = NULL, details = '{}', bangjiao_status = NULL WHERE person_id = ANY(:ids)"),
                 {"ids": ids})
    conn.execute(text("UPDATE visits SET note = NULL, geom = NULL WHERE person_id = ANY(:ids)"), {"ids": ids})
    from layers import audit

    audit.record(conn, "anonymise_persons", "persons", after={"persons": len(ids), "cutoff": str(cutoff), "days": days})
    return len(ids)
