"""Pinyin search keys for Chinese item names: "螺丝钉" -> ("luosiding", "lsd")."""

from __future__ import annotations

import re

from pypinyin import Style, lazy_pinyin

_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def pinyin_keys(name: str) -> tuple[str, str]:
    """Full pinyin and initials, lower case, without tones, spaces or punctuation."""
    syllables = lazy_pinyin(name, style=Style.NORMAL, errors="default")
    full = _NOT_ALNUM.sub("", "".join(syllables).lower())
    initials = _NOT_ALNUM.sub("", "".join(s[:1] for s in syllables).lower())
    return full[:255], initials[:100]
