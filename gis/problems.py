"""How a bad input is reported: which file, which row, which feature, what is wrong.

Importers collect every problem they can find before giving up, so one run shows the
user the whole list instead of one error per attempt.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from gis.errors import BadInput


@dataclass(frozen=True)
class Problem:
    file: str
    problem: str
    row: int | None = None  # 1-based feature/data row in the source file
    source_id: str | None = None
    column: str | None = None

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"第{self.row}行 row {self.row}")
        if self.source_id:
            where.append(f"ID {self.source_id}")
        if self.column:
            where.append(f"字段 {self.column}")
        return " · ".join(where) + f": {self.problem}"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ImportFailed(BadInput):
    """Nothing was written: the import stopped on these problems."""

    problems: list[Problem] = field(default_factory=list)
    key = "error.import_failed"

    def __str__(self) -> str:
        head = f"导入失败，未写入任何数据 / import failed, nothing was written ({len(self.problems)} problems)"
        shown = "\n".join(f"  - {p}" for p in self.problems[:50])
        more = f"\n  ... and {len(self.problems) - 50} more" if len(self.problems) > 50 else ""
        return f"{head}\n{shown}{more}"

    def to_dict(self) -> dict:
        return {"ok": False, "problems": [p.to_dict() for p in self.problems]}

def remedy(reason: str) -> str:
    """The right remedy for a reason GEOS or GDAL gives (not every bad ring is a self-intersection)."""
    r = reason.lower()
    if "not closed" in r or "unclosed" in r or "closed linestring" in r:
        return ("环未闭合：在源数据中闭合该环，或用 --skip-invalid 跳过 / a ring is not closed (first and last points differ): "
                "close it in the source, or pass --skip-invalid to import the rest")
    if "linearring" in r or "too few points" in r or "invalid number of points" in r:
        return ("环少于3个不同点（多边形未闭合或关系成员缺失），不是自相交：在源数据中修正；多部分的面用 --repair 去掉退化部分；"
                "或用 --skip-invalid 跳过 / a ring has fewer than 3 distinct points (an unclosed polygon or a multipolygon "
                "relation with missing members), not a self-intersection: fix it in the source (OSM: the relation), "
                "--repair drops a degenerate part of a multi-part footprint, or --skip-invalid imports the rest")
    if "self-intersection" in r or "self intersection" in r:
        return "自相交：用 --repair 修复 / self-intersection: --repair fixes it"
    if "nested" in r or "hole" in r:
        return "内环位置错误：用 --repair 修复 / a hole lies outside its shell or holes nest: --repair fixes it"
    return "在源数据中修正，或用 --skip-invalid 跳过 / fix it in the source, or pass --skip-invalid to import the rest"
