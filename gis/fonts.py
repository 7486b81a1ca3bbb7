"""The one CJK font for figures (maps for reports, handouts): Noto Sans CJK from Debian's
``fonts-noto-cjk`` (scripts/bootstrap.sh installs it), so Chinese labels never show as boxes."""
from __future__ import annotations

from pathlib import Path

CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")


def cjk_font():
    """matplotlib ``FontProperties`` for Chinese text (the default font when Noto is missing)."""
    from matplotlib import font_manager  # matplotlib is imported only when a figure is drawn (~0.3 s)

    if CJK_FONT.exists():
        font_manager.fontManager.addfont(str(CJK_FONT))
        return font_manager.FontProperties(fname=str(CJK_FONT))
    return font_manager.FontProperties()
