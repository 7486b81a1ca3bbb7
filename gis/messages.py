"""Language at the edge: analyses say *what* (a key and numbers), the edge says it in words.

Why: messages built as "中文 / English" f-strings deep in an analysis reach every user in
both languages and ignore the dashboard's language choice. Below the edge a message is a
``Message(key, params)``; the command line (``render(msg, "zh")``, both languages where
it always printed both) and the dashboard (``ui.i18n.t`` reads this table too) choose the
words from this one table of ``key: (Chinese, English)`` templates.

The dashboard's own labels stay in ``ui/i18n.py``; this table holds what the floors below
the screens say (errors, analysis notes and reasons), so that every floor may import it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LANGS = ("zh", "en")

# key: (Chinese, English). Templates use str.format names; numbers are formatted here.
TEXTS: dict[str, tuple[str, str]] = {
    # --- the error family (gis/errors.py) -------------------------------------------------
    "error.generic": ("操作未完成。", "The operation could not be completed."),
    "error.bad_input": ("输入有误，未写入任何数据。", "The input was rejected; nothing was written."),
    "error.conflict": ("数据已被他人修改，请刷新后重试。", "Someone else changed this; reload and try again."),
    "error.not_allowed": ("没有权限执行此操作。", "You may not do this."),
    "error.not_found": ("找不到所指的对象。", "Nothing by that name was found."),
    "error.solver": ("模型无法求解。", "The model could not be solved."),
    "error.unavailable": ("服务暂不可用，请稍后再试。", "A service is unavailable or busy; try again later."),
}


@dataclass(frozen=True)
class Message:
    """A message without its words: a key of ``TEXTS`` and the numbers or names it needs."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)

    def text(self, lang: str = "zh") -> str:
        return render(self, lang)

    def both(self) -> str:
        """Chinese and English together ("中文 / English"): what the command line has always printed."""
        return render(self, "both")

    def __str__(self) -> str:
        return self.both()

    def to_dict(self) -> dict:
        return {"key": self.key, "params": dict(self.params), "text": self.both()}


def render_key(key: str, params: dict, lang: str = "zh") -> str | None:
    """The text of ``key`` in ``lang`` ("zh", "en" or "both"), or None if the table lacks it."""
    pair = TEXTS.get(key)
    if pair is None:
        return None
    if lang == "both":
        zh, en = (p.format(**params) for p in pair)
        return zh if zh == en else f"{zh} / {en}"
    return pair[0 if lang == "zh" else 1].format(**params)


def render(msg: Message | str, lang: str = "zh") -> str:
    """Words for a message in ``lang``; plain strings (older callers) pass through."""
    if isinstance(msg, str):
        return msg
    found = render_key(msg.key, msg.params, lang)
    return found if found is not None else msg.key
