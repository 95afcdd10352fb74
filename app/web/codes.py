"""A URL segment for any code a person typed or scanned (a serial number, a lot code): `<code:…>`.

Serials and lot codes come from suppliers' labels and may hold "/", "%", spaces, dots or Chinese.
The WSGI server decodes the path before routing, so an encoded "/" (%2F) would still split the
segment, and a browser resolves a segment "." or ".." (even as %2E) before sending it. This
converter writes "~", "/" and "." as "~7E", "~2F" and "~2E" in the segment (everything else is
percent-encoded as usual) and reads them back, so every code round-trips through its URL.

Also `<int:…>` for row ids (RowIdConverter): werkzeug's, bounded by what a row id can be.
"""

from __future__ import annotations

import re
from typing import Any

from werkzeug.routing import BaseConverter, IntegerConverter

from app.models.types import MAX_ROW_ID

_ESCAPES = {"~": "~7E", "/": "~2F", ".": "~2E"}
_ESCAPED = re.compile("|".join(re.escape(v) for v in _ESCAPES.values()))
_PLAIN = {v: k for k, v in _ESCAPES.items()}
_SPECIAL = re.compile("[~/.]")


class CodeConverter(BaseConverter):
    def to_python(self, value: str) -> str:
        return _ESCAPED.sub(lambda m: _PLAIN[m.group()], value)

    def to_url(self, value: Any) -> str:
        return super().to_url(_SPECIAL.sub(lambda m: _ESCAPES[m.group()], str(value)))


class RowIdConverter(IntegerConverter):
    """`<int:…>` for the ids in our URLs (lots, reservations, counts, import jobs, movements):
    werkzeug's accepts any number of digits, and SQLite cannot even compare a column with a
    number past 64 bits (OverflowError, a 500 for /lots/99999999999999999999). One past the
    largest id matches no route, so it answers 404 like any id that names no row."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ROW_ID)
        super().__init__(map, *args, **kwargs)
