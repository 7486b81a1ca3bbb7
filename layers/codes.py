"""Grid codes (standards §2): 14-digit national layout (6 district + 3 street +
3 community + 2 serial) [verify] and the 15-character layout of DB11/T 2157-2023 and the
2026 national platform standard (… + 3 serial) [std]. Kept as text, always validated.
"""
from __future__ import annotations

import re

from gis.messages import msg

LAYOUTS = {"14": 2, "15": 3}  # layout -> serial digits
_RX = re.compile(r"[0-9]{14,15}")


def problem(code: str, community_code: str | None = None, layout: str | None = None) -> str | None:
    """Why ``code`` is not a valid grid code, or None when it is."""
    if not _RX.fullmatch(code or ""):
        return msg("code.digits", code=repr(code))
    if layout and len(code) != 12 + LAYOUTS[layout]:
        return msg("code.layout", length=12 + LAYOUTS[layout], layout=layout, got=len(code))
    if community_code and not code.startswith(community_code):
        return msg("code.community", code=code, community=community_code)
    if int(code[12:]) == 0:
        return msg("code.zero_serial", code=code)
    return None


def make(community_code: str, serial: int, layout: str) -> str:
    digits = LAYOUTS[layout]
    if not 1 <= serial < 10**digits:
        raise ValueError(f"serial {serial} does not fit the {layout}-character layout")
    return f"{community_code}{serial:0{digits}d}"
