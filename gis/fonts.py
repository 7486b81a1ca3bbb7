"""The one CJK font for figures (maps for reports, handouts): the simplified-Chinese face of
Noto Sans CJK from Debian's ``fonts-noto-cjk`` (scripts/bootstrap.sh installs it), so Chinese
labels never show as boxes, nor in Japanese glyph shapes."""
from __future__ import annotations

import tempfile
from pathlib import Path

CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")


def sc_font_file() -> Path | None:
    """The simplified-Chinese face of Noto Sans CJK as its own font file.

    Debian ships Noto Sans CJK as one collection (``.ttc``) whose first face is the Japanese
    one: loaded by path, Chinese prints in Japanese glyph shapes (e.g. 门, 区). The SC face
    is written out once per machine to the temp directory (a few seconds, then reused)."""
    if not CJK_FONT.exists():
        return None
    out = Path(tempfile.gettempdir()) / "wangge_fonts" / "NotoSansCJKsc-Regular.otf"
    if not out.exists():
        from fontTools.ttLib import TTCollection  # (matplotlib's dependency) only when a figure is drawn

        out.parent.mkdir(parents=True, exist_ok=True)
        for face in TTCollection(str(CJK_FONT)).fonts:
            if face["name"].getDebugName(1) == "Noto Sans CJK SC":
                tmp = out.with_suffix(f".{id(face)}.part")
                face.save(str(tmp))
                tmp.replace(out)
                break
    return out if out.exists() else None


def cjk_font():
    """matplotlib ``FontProperties`` for Chinese text (the default font when Noto is missing)."""
    from matplotlib import font_manager  # matplotlib is imported only when a figure is drawn (~0.3 s)

    path = sc_font_file()
    if path is not None:
        font_manager.fontManager.addfont(str(path))
        return font_manager.FontProperties(fname=str(path))
    return font_manager.FontProperties()
