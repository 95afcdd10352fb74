"""Exports: one streaming writer for CSV and XLSX, and the row sources for items and stock levels.

Cells are neutralised against formula injection: a text cell that a spreadsheet would run as a
formula (starting with =, +, -, @, a tab or a carriage return) is prefixed with an apostrophe, so
that a name such as `=HYPERLINK(...)` typed into the catalogue arrives in Excel as text. Numbers
stay numbers. Control characters that XLSX cannot hold (C0 but tab, newline and carriage return)
become U+FFFD in both formats, so a row stored before inputs refused them still exports. Both
writers hold one chunk at a time, never the whole export.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any

from app.services import catalog

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# openpyxl's ILLEGAL_CHARACTERS_RE: what an XML 1.0 document cannot carry.
UNWRITABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
CHUNK = 64 * 1024


def neutralise(value: Any) -> Any:
    """The cell as it is safe to hand to a spreadsheet."""
    if not isinstance(value, str):
        return value
    value = UNWRITABLE.sub("\ufffd", value)
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def csv_chunks(header: list[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """CSV text in chunks, with a BOM so that Excel opens Chinese text correctly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    yield "\ufeff"
    writer.writerow([neutralise(v) for v in header])
    for row in rows:
        writer.writerow([neutralise(v) for v in row])
        if buffer.tell() > CHUNK:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def xlsx_chunks(header: list[str], rows: Iterable[Iterable[Any]], *, title: str = "Export") -> Iterator[bytes]:
    """An XLSX workbook in chunks. openpyxl's write-only mode spools rows to a temporary file, so
    memory stays flat however many rows there are; the finished file is then read out in chunks."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=title[:31])
    sheet.append([neutralise(v) for v in header])
    for row in rows:
        sheet.append([_xlsx_value(v) for v in row])
    with tempfile.TemporaryFile() as spool:
        book.save(spool)
        spool.seek(0)
        while chunk := spool.read(CHUNK):
            yield chunk


def _xlsx_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value) if abs(value) < 10**12 else str(value)
    return neutralise(value)


def _pages(read: Callable[..., catalog.Page[Any]], **filters: Any) -> Iterator[Any]:
    """Every row of a keyset-paged catalogue read, a page at a time."""
    after = None
    while True:
        page = read(**filters, after=after, limit=catalog.MAX_LIMIT)
        yield from page.rows
        if not page.next_cursor:
            return
        after = page.next_cursor


def iter_items(**filters: Any) -> Iterator[catalog.ItemRow]:
    """Items as catalog.list_items filters them, all pages."""
    return _pages(catalog.list_items, **filters)


def iter_stock_levels(**filters: Any) -> Iterator[catalog.StockLevelRow]:
    """Stock levels as catalog.list_stock_levels filters them, all pages."""
    return _pages(catalog.list_stock_levels, **filters)
