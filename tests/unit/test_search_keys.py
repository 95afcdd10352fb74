"""Search keys: the pinyin of a name read run by run (each run of hanzi converted once) is what
pypinyin reads from the whole name, and folding takes its ASCII shortcut without changing a result."""

from __future__ import annotations

import re
import unicodedata

import pytest
from pypinyin import Style, lazy_pinyin

from app.services.search_keys import fold, pinyin_keys

NAMES = [
    "",
    "螺丝钉",
    "不锈钢螺栓 M8 型号1",
    "不锈钢螺栓 M10 型号2",
    "M8不锈钢螺栓",
    "音乐乐器 朝阳朝气",
    "〇号 㐀 𠀀 水桶🙂",
    "Ａ４纸 (500张/包)",
    "plain ascii name",
    "café crème",
    "cafe\u0301 ｶﾞ ﬁ Å",
]


def whole_name_keys(name: str) -> tuple[str, str]:
    syllables = lazy_pinyin(name, style=Style.NORMAL, errors="default")
    full = re.sub(r"[^0-9a-z]+", "", "".join(syllables).lower())
    return full[:255], re.sub(r"[^0-9a-z]+", "", "".join(s[:1] for s in syllables).lower())[:100]


@pytest.mark.parametrize("name", NAMES)
def test_pinyin_keys_read_run_by_run_equal_pypinyin_on_the_whole_name(name):
    assert pinyin_keys(name) == whole_name_keys(name)


def test_pinyin_keys_of_a_mixed_name():
    assert pinyin_keys("不锈钢螺栓 M8 型号1") == ("buxiugangluoshuanm8xinghao1", "bxglsxh1")


@pytest.mark.parametrize("text", [*NAMES, "SKU-001", "ABC\x1fdef", "".join(map(chr, range(128)))])
def test_fold_equals_the_full_normalization(text):
    bare = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    assert fold(text) == unicodedata.normalize("NFKC", bare).casefold()
