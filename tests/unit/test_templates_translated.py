"""Every word a template shows goes through gettext ({{ _("…") }} or {% trans %}): a text node or
a visible attribute (title, placeholder, alt, aria-label, a button's value) written as a bare
literal would stay English (or Chinese) whatever the user's language."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
# Jinja is taken out first: a trans block (translated as a whole), a comment, an expression or a
# statement becomes a space, keeping line numbers.
_JINJA = re.compile(r"{%-?\s*trans\b.*?{%-?\s*endtrans\s*-?%}|{#.*?#}|{{.*?}}|{%.*?%}", re.S)
_LETTER = re.compile(r"[^\W\d_]")
# A macro that writes attributes into its caller's tag (name="…" pairs) shows no text.
_ATTRIBUTES = re.compile(r"""^(\s*[\w-]+=("[^"]*"|'[^']*'))+\s*$""")
_VISIBLE_ATTRIBUTES = {"title", "placeholder", "alt", "aria-label", "label"}
#: Words that are the same in every language: codes, file formats, and each language's own name
#: on the language switch.
ALLOWED = {"SKU", "CSV", "Excel (.xlsx)", "IMPORT-", "English", "中文"}


class _Words(HTMLParser):
    """The bare words of one template: (line, text)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.in_code = 0
        self.found: list[tuple[int, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.in_code += tag in ("script", "style")
        named = dict(attrs)
        for name, value in attrs:
            shown = name in _VISIBLE_ATTRIBUTES or (name == "value" and named.get("type") in ("submit", "button"))
            if shown and value:
                self._check(value.strip())

    def handle_endtag(self, tag: str) -> None:
        self.in_code -= tag in ("script", "style")

    def handle_data(self, data: str) -> None:
        if not self.in_code and not _ATTRIBUTES.match(data):
            self._check(data.strip())

    def _check(self, text: str) -> None:
        if _LETTER.search(text) and text not in ALLOWED:
            self.found.append((self.getpos()[0], text))


def bare_words(source: str) -> list[tuple[int, str]]:
    parser = _Words()
    parser.feed(_JINJA.sub(lambda m: " " + "\n" * m.group(0).count("\n"), source))
    parser.close()
    return parser.found


def test_the_scan_finds_bare_words_and_passes_translated_ones() -> None:
    source = """<h1>{{ _("Items") }}</h1><p title="Hint">Stock</p>{% trans %}Moved{% endtrans %}
    <button type="submit" value="Go">{{ _("Go") }}</button><td>{{ n }} · 3</td><th>SKU</th>"""
    assert bare_words(source) == [(1, "Hint"), (1, "Stock"), (2, "Go")]


@pytest.mark.parametrize("template", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_templates_show_no_untranslated_words(template: Path) -> None:
    assert bare_words(template.read_text(encoding="utf-8")) == []
