"""Search keys for items, written with the item and read by the items search: the pinyin of a
Chinese name ("螺丝钉" -> "luosiding", "lsd") and one folded text of SKU, name and barcode
with its three-character pieces."""

from __future__ import annotations

import re
import unicodedata

from pypinyin import Style, lazy_pinyin

from app.models.item import SEARCH_TEXT_LENGTH

_NOT_ALNUM = re.compile(r"[^0-9a-z]+")
# Between the fields of the search text, so that a search never matches across two of them.
_SEPARATOR = "\x1f"
GRAM = 3


def pinyin_keys(name: str) -> tuple[str, str]:
    """Full pinyin and initials, lower case, without tones, spaces or punctuation."""
    syllables = lazy_pinyin(name, style=Style.NORMAL, errors="default")
    full = _NOT_ALNUM.sub("", "".join(syllables).lower())
    initials = _NOT_ALNUM.sub("", "".join(s[:1] for s in syllables).lower())
    return full[:255], initials[:100]


def fold(text: str) -> str:
    """What a search compares: full-width letters and digits as ASCII ("ＡＢ１" -> "ab1"), no
    accents, no case. Compared byte for byte, it finds what a case- and accent-insensitive
    collation would, at a fraction of the cost."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFKC", bare).casefold()


def search_text(sku: str, name: str, barcode: str | None) -> str:
    """SKU, name and barcode folded into the one column a contains search scans."""
    return _SEPARATOR.join(fold(field) for field in (sku, name, barcode or ""))[:SEARCH_TEXT_LENGTH]


def grams(text: str) -> set[str]:
    """Every run of three characters in `text` (none in a shorter text)."""
    return {text[i : i + GRAM] for i in range(len(text) - GRAM + 1)}
