"""One term per concept: the Chinese catalogue never uses the variants a warehouse would read as
something else, and an English message that shows a count goes through ngettext."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.pofile import read_po

TRANSLATIONS = Path(__file__).resolve().parents[2] / "translations"
# The variant: the one term used instead.
BANNED = {
    "物料": "物品",
    "再订货点": "补货点",
    "订货点": "补货点",
    "循环盘点": "盘点任务 (a count) or 盘点调整 (a stocktake line)",
    "盘点流水": "盘点调整",
}
# Concepts and their one Chinese term.
TERMS = {"Item": "物品", "Items": "物品", "Reorder point": "补货点", "Counts": "盘点任务", "Stocktake": "盘点调整"}
# A number followed by an English plural noun ("%(n)s rows") needs a singular form too, unless
# the number is a limit that is never 1.
COUNTED = re.compile(r"%\((?:n|num|count)\)s (?:[a-z]+ ){0,2}?[a-z]+s\b")
LIMITS = {
    "At least %(n)s characters.",
    "The file has more than %(n)s rows: split it.",
    "The sheet is wider than %(n)s columns.",
    "Type at most %(n)s characters, without control characters.",
    "The first %(n)s errors are shown.",
    "The first %(n)s items of each kind are shown.",
}


def _catalogue(name: str) -> list[tuple[str | tuple[str, ...], str | tuple[str, ...]]]:
    path = TRANSLATIONS / name
    with path.open("rb") as handle:
        return [(m.id, m.string) for m in read_po(handle) if m.id]


def _texts(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def test_the_chinese_catalogue_uses_no_banned_variant() -> None:
    found = [
        f"{variant!r} in {msgid!r}: use {BANNED[variant]}"
        for msgid, msgstr in _catalogue("zh_Hans_CN/LC_MESSAGES/messages.po")
        for text in _texts(msgstr)
        for variant in BANNED
        if variant in text
    ]
    assert found == []


def test_each_concept_has_its_one_chinese_term() -> None:
    strings = dict(_catalogue("zh_Hans_CN/LC_MESSAGES/messages.po"))
    assert {english: strings.get(english) for english in TERMS} == TERMS


def test_english_messages_with_a_count_have_a_plural_form() -> None:
    singular_only = [
        msgid
        for msgid, _ in _catalogue("messages.pot")
        if isinstance(msgid, str) and COUNTED.search(msgid) and msgid not in LIMITS
    ]
    assert singular_only == []
