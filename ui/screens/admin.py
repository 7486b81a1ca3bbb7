"""Administrator (管理员): import a file through the browser; see each layer's state.

The upload goes through exactly the CLI's path (``layers.importer.import_file``): the
same validation, all or nothing, the same error report (file, row, ID, problem).
Uploaded names are never trusted as paths: each is reduced to a safe base name inside
a fresh temporary directory, which is removed afterwards.
"""
from __future__ import annotations

import re
import tempfile
import unicodedata
from pathlib import Path

import pandas as pd
import streamlit as st

from gis.problems import ImportFailed
from gis.settings import get_settings
from layers.importer import LAYERS
from ui import data
from ui.common import fmt_time
from ui.i18n import T, t
from ui.seam import one_language
from ui.inputs import text_box
from ui.state import language

DATA_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".csv", ".xlsx", ".xls", ".zip", ".kml", ".fgb")
SIDE_SUFFIXES = (".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".xml")


def safe_name(name: str, index: int = 0) -> str:
    """A file name that cannot leave the temp dir or hide: base name only, letters (Chinese
    included), digits, ``-_.``; no leading dot; at most 120 characters; suffix kept."""
    base = unicodedata.normalize("NFC", name).replace("\\", "/").split("/")[-1]
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = re.sub(r"[^\w\-]+", "_", stem, flags=re.UNICODE).strip("._") or f"upload{index}"
    suffix = re.sub(r"[^A-Za-z0-9]+", "", suffix).lower()[:10]
    return (stem[:100] + ("." + suffix if suffix else ""))


def oversized(files: list) -> list[str]:
    """Names of uploads above ``max_upload_mb``: refused before a byte is written or read."""
    limit = get_settings().max_upload_mb * 2**20
    return [f.name for f in files if getattr(f, "size", len(f.getvalue())) > limit]


def main_file(paths: list[Path]) -> Path | None:
    """The file to import: the first data file (a Shapefile's .shp, not its side files)."""
    for suffix in DATA_SUFFIXES:
        for p in paths:
            if p.suffix.lower() == suffix:
                return p
    return None


SHAPELY_REASONS = {"Ring Self-intersection": "环自相交", "Self-intersection": "自相交", "Too few points": "点数过少",
                   "Hole lies outside shell": "内环在外环之外", "Nested shells": "外环嵌套", "Interior is disconnected": "内部不连通",
                   "Invalid Coordinate": "坐标无效", "Nested holes": "内环嵌套", "Duplicate Rings": "重复的环"}
FLAGS = {"--repair": "admin.repair", "--skip-invalid": "admin.skip_invalid", "--replace": "admin.replace"}


def screen_words(message: object, lang: str) -> str:
    """A problem as the browser's user reads it: one language, and the screen's checkboxes
    where the text names the command line's flags (「修复自相交多边形」 for ``--repair``)."""
    words = one_language(str(message), lang) if message is not None else "—"
    if lang == "zh":
        for en, zh in SHAPELY_REASONS.items():
            words = words.replace(en, zh)
        words += "".join(f"；可勾选「{t(key, lang)}」后重新导入" for flag, key in FLAGS.items() if flag in str(message) and flag not in words)
    for flag, key in FLAGS.items():
        words = words.replace(flag, f"「{t(key, lang)}」" if lang == "zh" else f"“{t(key, lang)}”")
    return words.replace("use 「", "tick 「").replace("use “", "tick “")


def layer_label(name: str, lang: str) -> str:
    """A layer in the user's language (never its table name)."""
    if lang == "zh":
        return LAYERS[name].zh if name in LAYERS else name
    return t(f"layer.{name}", lang) if f"layer.{name}" in T else name.replace("_", " ").capitalize()


def problems_table(exc: ImportFailed, lang: str) -> pd.DataFrame:
    return pd.DataFrame([{
        t("col.file", lang): p.file, t("col.row", lang): "—" if p.row is None else p.row, t("col.id", lang): p.source_id or "—",
        t("col.column", lang): p.column or "—", t("col.problem", lang): screen_words(p.problem, lang),
    } for p in exc.problems])


def show_problems(table: pd.DataFrame) -> None:
    """A plain table (readable, printable, copyable) for a usual report; a scrolling grid for a long one."""
    if len(table) <= 200:
        st.table(table.fillna("").astype(str).set_index(table.columns[1]))
    else:
        st.dataframe(table, hide_index=True, width="stretch")


def render_import() -> None:
    lang = language()
    st.title(t("page.import", lang))
    specs = list(LAYERS.values())
    layer = st.selectbox(t("admin.layer", lang), [s.name for s in specs], format_func=lambda n: layer_label(n, lang), key="admin_layer")
    files = st.file_uploader(t("admin.files", lang), accept_multiple_files=True, help=t("admin.files_help", lang), key="admin_files")
    st.caption(t("admin.size_limit", lang, mb=get_settings().max_upload_mb))
    c1, c2 = st.columns(2)
    crs = text_box(t("admin.crs", lang), key="admin_crs", max_chars=64, container=c1)
    source_layer = text_box(t("admin.source_layer", lang), key="admin_source_layer", max_chars=120, container=c2)
    o1, o2, o3 = st.columns(3)
    skip_invalid = o1.checkbox(t("admin.skip_invalid", lang), key="admin_skip")
    repair = o2.checkbox(t("admin.repair", lang), key="admin_repair")
    replace = o3.checkbox(t("admin.replace", lang), key="admin_replace")
    if not st.button(t("admin.import", lang), type="primary", key="admin_import"):
        return
    if not files:
        st.warning(t("admin.no_file", lang))
        return
    too_big = oversized(files)
    if too_big:
        st.error(t("admin.too_large", lang, files="、".join(too_big), mb=get_settings().max_upload_mb))
        return
    with tempfile.TemporaryDirectory(prefix="wangge_upload_") as tmp:
        paths: list[Path] = []
        for i, f in enumerate(files):
            path = Path(tmp) / safe_name(f.name, i)
            path.write_bytes(f.getvalue())
            paths.append(path)
        target = main_file(paths)
        if target is None:
            st.error(t("admin.no_main", lang))
            return
        try:
            report = data.import_file(layer, target, crs=crs, source_layer=source_layer, skip_invalid=skip_invalid,
                                      repair=repair, replace=replace)  # audited as the signed-in user (gis.scope)
        except ImportFailed as exc:
            st.error(t("admin.failed", lang, n=len(exc.problems)))
            show_problems(problems_table(exc, lang))
            return
        except data.Refused as exc:  # unreadable file, unknown CRS …: say so, write nothing
            st.error(t("admin.error", lang, err=screen_words(exc.message, lang)))
            return
    st.toast(t("admin.ok_toast", lang, layer=layer_label(layer, lang)), icon="✅")
    from webapp.tiles import CACHE

    CACHE.clear()  # (the audit row the import wrote invalidates cached tiles anyway)
    st.success(t("admin.ok", lang, rows=report.rows, layer=layer_label(layer, lang)))
    if report.notes:
        st.markdown(f"**{t('admin.notes', lang)}**\n" + "\n".join(f"- {screen_words(n, lang)}" for n in report.notes))
    if report.skipped:
        st.markdown(f"**{t('admin.skipped', lang)}**")
        show_problems(problems_table(ImportFailed(report.skipped), lang))
    if report.repaired:
        st.markdown(f"**{t('admin.repaired', lang)}**")
        show_problems(problems_table(ImportFailed(report.repaired), lang))
    render_status_table(lang)


def render_status_table(lang: str) -> None:
    st.subheader(t("admin.status", lang))
    status = data.layer_status()
    st.dataframe(pd.DataFrame({
        t("col.layer", lang): [layer_label(name, lang) for name in status["layer"]],
        t("col.rows", lang): status["rows"],
        t("col.last_import", lang): [fmt_time(v, lang) for v in status["last_import"]],
    }), hide_index=True, width="stretch")


def render_status() -> None:
    lang = language()
    st.title(t("page.status", lang))
    render_status_table(lang)
