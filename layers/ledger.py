"""The office's building ledger (楼栋台账) replaces estimated households with surveyed ones.

A street office keeps, per building, its households and residents (and often the counts of
the groups it looks after) in Excel. ``import_ledger`` matches each ledger row to exactly
one existing building by the key the user names (address, source ID or building code),
and sets the figures as ``surveyed``. All or nothing: a row that matches no building, more
than one building, or repeats another row's key, and a figure that is not a whole
number, are each named (row, key, reason) and nothing is written. Matching is exact after
normalising width and spaces (全角/半角, blanks); nothing fuzzy.
"""
from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from gis.problems import ImportFailed, Problem
from layers.audit import record as audit
from layers.buildings import GROUP_ALIASES
from layers.vocab import GROUPS

KEYS = ("address", "source_id", "building_code")
# Usual headers of a 楼栋台账 (and the English ones a system export uses).
KEY_HEADERS: dict[str, tuple[str, ...]] = {
    "address": ("地址", "楼栋地址", "标准地址", "门牌地址", "详细地址", "门牌号", "address"),
    "source_id": ("楼栋编号", "编号", "建筑编号", "建筑物编号", "source_id", "osm_id", "id"),
    "building_code": ("楼栋编码", "建筑物编码", "楼栋代码", "房屋编码", "building_code", "code"),
}
HOUSEHOLD_HEADERS = ("户数", "住户数", "总户数", "实有户数", "居住户数", "households")
RESIDENT_HEADERS = ("人口", "人数", "居住人口", "实有人口", "常住人口", "总人口", "居住人数", "residents")


@dataclass
class LedgerReport:
    file: str
    key: str
    rows: int
    updated: int
    replaced_estimates: int
    seconds: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"file": self.file, "key": self.key, "rows": self.rows, "updated": self.updated,
                "replaced_estimates": self.replaced_estimates, "seconds": round(self.seconds, 3), "notes": self.notes}


def normalise_key(value: object) -> str | None:
    """Full-width to half-width (NFKC), blanks removed, case folded: 'ＸＸ路１２号 ' == 'XX路12号'."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    s = unicodedata.normalize("NFKC", str(value)).strip()
    s = "".join(s.split()).casefold()
    if s.endswith(".0") and s[:-2].isdigit():  # a code Excel turned into a number
        s = s[:-2]
    return s or None


def _column(columns: list[str], names: tuple[str, ...]) -> str | None:
    lowered = {unicodedata.normalize("NFKC", str(c)).strip().casefold(): c for c in columns}
    for n in names:
        if n.casefold() in lowered:
            return lowered[n.casefold()]
    return None


def read_ledger(path: Path) -> pd.DataFrame:
    from gis.readers import _guess_encoding

    if not path.exists():
        raise ImportFailed([Problem(path.name, "文件不存在 / file not found")])
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xls"):
            return pd.read_excel(path, dtype=str)
        if suffix in (".csv", ".txt"):
            raw = path.read_bytes()
            enc = _guess_encoding(raw, path)
            from io import StringIO

            return pd.read_csv(StringIO(raw.decode("utf-8-sig" if enc == "utf-8" else enc)), dtype=str, keep_default_na=False, na_values=[""])
    except ImportFailed:
        raise
    except Exception as exc:  # a damaged workbook: name the file, not a traceback
        raise ImportFailed([Problem(path.name, f"无法读取台账 / cannot read the ledger: {exc}")]) from exc
    raise ImportFailed([Problem(path.name, "台账须为 .xlsx、.xls 或 .csv / the ledger must be .xlsx, .xls or .csv")])


def import_ledger(path: str | Path, *, key: str = "address", conn: Connection | None = None, actor: str | None = None) -> LedgerReport:
    from layers.importer import _atomic

    started = time.perf_counter()
    path = Path(path)
    if key not in KEYS:
        raise ImportFailed([Problem(path.name, f"--key 须为 {' / '.join(KEYS)} / --key must be one of {', '.join(KEYS)}: {key!r}")])
    df = read_ledger(path)
    df.columns = [str(c).strip() for c in df.columns]
    problems: list[Problem] = []
    key_col = _column(list(df.columns), KEY_HEADERS[key])
    hh_col = _column(list(df.columns), HOUSEHOLD_HEADERS)
    res_col = _column(list(df.columns), RESIDENT_HEADERS)
    group_cols = {g.code: _column(list(df.columns), (g.code, g.zh, *GROUP_ALIASES[g.code])) for g in GROUPS}
    group_cols = {k: v for k, v in group_cols.items() if v}
    if key_col is None:
        problems.append(Problem(path.name, f"缺少匹配字段 / no {key} column (accepted headers: {', '.join(KEY_HEADERS[key])})"))
    if hh_col is None and res_col is None:
        problems.append(Problem(path.name, f"缺少户数或人口列 / no households or residents column (accepted: {', '.join(HOUSEHOLD_HEADERS + RESIDENT_HEADERS)})"))
    if problems:
        raise ImportFailed(problems)

    keys = df[key_col].map(normalise_key)
    values: dict[str, pd.Series] = {}
    for name, col in [("households", hh_col), ("residents", res_col), *group_cols.items()]:
        if col is None:
            continue
        raw = df[col]
        num = pd.to_numeric(raw.map(lambda v: unicodedata.normalize("NFKC", v).strip() if isinstance(v, str) else v), errors="coerce")
        bad = raw.notna() & (num.isna() | (num < 0) | (num % 1 != 0))
        for i in np.flatnonzero(bad.to_numpy()):
            problems.append(Problem(path.name, f"不是非负整数 / {col!r} is not a whole number ≥ 0: {raw.iloc[i]!r}", row=int(i) + 1,
                                    source_id=df[key_col].iloc[i], column=col))
        values[name] = num.where(~bad).astype("Int64")
    for i in np.flatnonzero(keys.isna().to_numpy()):
        problems.append(Problem(path.name, f"匹配字段为空 / empty {key}", row=int(i) + 1, column=key_col))
    dup = keys.notna() & keys.duplicated(keep=False)
    for i in np.flatnonzero(dup.to_numpy()):
        others = [int(j) + 1 for j in np.flatnonzero((keys == keys.iloc[i]).to_numpy()) if j != i]
        problems.append(Problem(path.name, f"台账中重复 / the same {key} is on rows {', '.join(map(str, others))} too: which figure holds is ambiguous",
                                row=int(i) + 1, source_id=df[key_col].iloc[i], column=key_col))

    with _atomic(conn) as c:
        column = "address" if key == "address" else "source_id"
        found = c.execute(text(f"SELECT id, {column}, households_source FROM buildings WHERE {column} IS NOT NULL")).all()
        by_key: dict[str, list[tuple[int, str]]] = {}
        for bid, value, source in found:
            by_key.setdefault(normalise_key(value) or "", []).append((int(bid), source))
        match = np.full(len(df), -1, dtype=np.int64)
        replaced = 0
        for i, k in enumerate(keys):
            if k is None or dup.iloc[i]:
                continue
            hits = by_key.get(k, [])
            if not hits:
                problems.append(Problem(path.name, f"找不到楼栋 / no building has this {key}", row=i + 1, source_id=df[key_col].iloc[i], column=key_col))
            elif len(hits) > 1:
                problems.append(Problem(path.name, f"匹配到 {len(hits)} 栋楼，无法确定 / {len(hits)} buildings have this {key} "
                                        f"(ids {', '.join(str(h[0]) for h in hits[:10])}): use --key source_id", row=i + 1,
                                        source_id=df[key_col].iloc[i], column=key_col))
            else:
                match[i] = hits[0][0]
                replaced += hits[0][1] == "estimated"
        if problems:
            raise ImportFailed(sorted(problems, key=lambda p: p.row or 0))
        stage = pd.DataFrame({"building_id": match, **{k: v.to_numpy() for k, v in values.items()}})
        c.execute(text("DROP TABLE IF EXISTS _stage_ledger"))
        cols = list(values)
        c.execute(text("CREATE TEMP TABLE _stage_ledger (building_id bigint, " + ", ".join(f"{k} integer" for k in cols) + ") ON COMMIT DROP"))
        from layers.base import copy_rows

        copy_rows(c, "_stage_ledger", stage, ["building_id", *cols])
        sets = [f"{k} = coalesce(s.{k}, b.{k})" for k in ("households", "residents") if k in values]
        c.execute(text(f"UPDATE buildings b SET {', '.join(sets)}, households_source = 'surveyed' FROM _stage_ledger s WHERE b.id = s.building_id"))
        groups = [k for k in cols if k not in ("households", "residents")]
        if groups:
            c.execute(text(f"""
                INSERT INTO building_groups (building_id, district_code, {', '.join(groups)})
                SELECT b.id, b.district_code, {', '.join(f'coalesce(s.{g}, 0)' for g in groups)}
                FROM _stage_ledger s JOIN buildings b ON b.id = s.building_id
                ON CONFLICT (building_id, district_code) DO UPDATE SET {', '.join(f'{g} = coalesce(EXCLUDED.{g}, building_groups.{g})' for g in groups)}"""))
        report = LedgerReport(path.name, key, len(df), int((match >= 0).sum()), int(replaced), time.perf_counter() - started)
        if groups:
            report.notes.append(f"group counts set: {', '.join(groups)}")
        audit(c, "import_ledger", "buildings", actor=actor, after={k: v for k, v in report.to_dict().items() if k != "seconds"})
    return report
