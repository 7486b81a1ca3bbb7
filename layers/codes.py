"""Grid codes (standards §2): 14-digit national layout (6 district + 3 street +
3 community + 2 serial) [verify] and the 15-character layout of DB11/T 2157-2023 and the
2026 national platform standard (… + 3 serial) [std]. Kept as text, always validated.
"""
from __future__ import annotations

import re

LAYOUTS = {"14": 2, "15": 3}  # layout -> serial digits
_RX = re.compile(r"[0-9]{14,15}")


def problem(code: str, community_code: str | None = None, layout: str | None = None) -> str | None:
    """Why ``code`` is not a valid grid code, or None when it is."""
    if not _RX.fullmatch(code or ""):
        return f"网格编码须为14位或15位数字 / grid code must be 14 or 15 digits, got {code!r}"
    if layout and len(code) != 12 + LAYOUTS[layout]:
        return f"网格编码应为{12 + LAYOUTS[layout]}位 / this deployment uses the {layout}-character layout, got {len(code)}"
    if community_code and not code.startswith(community_code):
        return f"网格编码前12位须为社区编码 / code {code} does not start with its community code {community_code}"
    if int(code[12:]) == 0:
        return f"网格序号不能为0 / grid serial must not be zero: {code}"
    return None


def make(community_code: str, serial: int, layout: str) -> str:
    digits = LAYOUTS[layout]
    if not 1 <= serial < 10**digits:
        raise ValueError(f"serial {serial} does not fit the {layout}-character layout")
    return f"{community_code}{serial:0{digits}d}"
