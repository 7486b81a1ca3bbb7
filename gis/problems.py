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
