"""Search keys for items, written with the item and read by the items search: the pinyin of a
Chinese name ("螺丝钉" -> "luosiding", "lsd") and one folded text of SKU, name and barcode
with its three-character pieces."""

from __future__ import annotations

import re
import sys
import unicodedata
from functools import cache, lru_cache

from pypinyin import Style, lazy_pinyin
from pypinyin.constants import RE_HANS

from app.models.item import SEARCH_TEXT_LENGTH

_NOT_ALNUM = re.compile(r"[^0-9a-z]+")
# Between the fields of the search text, so that a search never matches across two of them.
_SEPARATOR = "\x1f"
GRAM = 3
# A run of the characters pypinyin reads as hanzi: its RE_HANS ("^(?:[...])+$") unanchored. Its
# own splitter tests one character at a time, a fifth of what converting a name costs.
_HANZI_RUN = re.compile(RE_HANS.pattern.removeprefix("^").removesuffix("$"), RE_HANS.flags)


def pinyin_keys(name: str) -> tuple[str, str]:
    """Full pinyin and initials, lower case, without tones, spaces or punctuation."""
    syllables = []
    start = 0
    # pypinyin splits a name into runs of hanzi and of other characters (kept as they are), and
    # converts each run on its own: done here the same way, with each run of hanzi converted once.
    for run in _HANZI_RUN.finditer(name):
        if run.start() > start:
            syllables.append(name[start : run.start()])
        syllables.extend(_hanzi_pinyin(run.group()))
        start = run.end()
    if start < len(name):
        syllables.append(name[start:])
    full = _NOT_ALNUM.sub("", "".join(syllables).lower())
    initials = _NOT_ALNUM.sub("", "".join(s[:1] for s in syllables).lower())
    return full[:255], initials[:100]


@lru_cache(maxsize=4096)
def _hanzi_pinyin(run: str) -> tuple[str, ...]:
    """The syllables of one run of hanzi. Names repeat their runs ("不锈钢螺栓 M8", "不锈钢螺栓
    M10"), and converting them was a third of an import of 100,000 names."""
    return tuple(lazy_pinyin(run, style=Style.NORMAL, errors="default"))


def fold(text: str) -> str:
    """What a search compares: full-width letters and digits as ASCII ("ＡＢ１" -> "ab1"), no
    accents, no case. Compared byte for byte, it finds what a case- and accent-insensitive
    collation would, at a fraction of the cost."""
    if text.isascii():
        return text.lower()  # what the normalizations leave of ASCII, ten times faster
    bare = unicodedata.normalize("NFKD", text).translate(_combining_marks())
    return unicodedata.normalize("NFKC", bare).casefold()


@cache
def _combining_marks() -> dict[int, None]:
    """Every combining mark (a non-zero combining class), to be deleted by str.translate: one C
    call per text instead of a Python test per character. Built on first use (0.1 s, 912 marks)."""
    return {cp: None for cp in range(sys.maxunicode + 1) if unicodedata.combining(chr(cp))}


def search_text(sku: str, name: str, barcode: str | None) -> str:
    """SKU, name and barcode folded into the one column a contains search scans."""
    return _SEPARATOR.join(fold(field) for field in (sku, name, barcode or ""))[:SEARCH_TEXT_LENGTH]


def grams(text: str) -> set[str]:
    """Every run of three characters in `text` (none in a shorter text)."""
    return {text[i : i + GRAM] for i in range(len(text) - GRAM + 1)}
