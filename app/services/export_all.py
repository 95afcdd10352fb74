"""Export everything a user owns, in an open format another system can read: items, categories,
warehouses and locations, stock levels and the whole ledger as UTF-8 CSV files (with a BOM for
Excel), plus manifest.json naming each file and its row count. References between files use
codes (SKU, location code, category name) as well as ids, so the files stand on their own.

Rows are streamed from the database (`yield_per`) and written a chunk at a time, to a directory
(`flask export-all DIR`) or into a zip built on the fly (the admin page), so a ledger of a million
lines never sits in memory. Text cells that a spreadsheet would run as a formula are prefixed with
an apostrophe, as every export in this app does (see exports.py).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Select, select

from app.extensions import db
from app.models import Category, Item, Location, Lot, Movement, StockLevel, Warehouse
from app.services.catalog import ledger_query
from app.services.errors import InvalidInput
from app.services.exports import csv_chunks

FORMAT = 1
YIELD = 5_000


@dataclass(frozen=True)
class Table:
    """One CSV file: its header is the names of the statement's columns."""

    file: str
    query: Callable[[], Select[Any]]

    @property
    def header(self) -> list[str]:
        return [column.name for column in self.query().selected_columns]


def _items() -> Select[Any]:
    return (
        select(
            Item.id,
            Item.sku,
            Item.name,
            Item.barcode,
            Item.unit,
            Category.name.label("category"),
            Item.reorder_point,
            Item.reorder_quantity,
            Item.on_hand,
            Item.archived,
            Item.description,
            Item.created_at,
            Item.updated_at,
        )
        .outerjoin(Category, Category.id == Item.category_id)
        .order_by(Item.id)
    )


def _locations() -> Select[Any]:
    warehouse = (Warehouse.code.label("warehouse_code"), Warehouse.name.label("warehouse_name"))
    return (
        select(Location.id, Location.code, Location.name, *warehouse, Location.active)
        .join(Warehouse, Warehouse.id == Location.warehouse_id)
        .order_by(Location.id)
    )


def _stock_levels() -> Select[Any]:
    return (
        select(
            Item.sku,
            Location.code.label("location"),
            StockLevel.quantity,
            StockLevel.updated_at,
            Lot.code.label("lot"),
            Lot.expiry,
        )
        .join(Item, Item.id == StockLevel.item_id)
        .join(Location, Location.id == StockLevel.location_id)
        .outerjoin(Lot, Lot.id == StockLevel.lot_id)
        .order_by(StockLevel.item_id, StockLevel.location_id, StockLevel.lot_key)
    )


TABLES = (
    Table("categories.csv", lambda: select(Category.id, Category.name, Category.description).order_by(Category.id)),
    Table("items.csv", _items),
    Table("locations.csv", _locations),
    Table("stock_levels.csv", _stock_levels),
    # The ledger as the movements page reads it, oldest first.
    Table("movements.csv", lambda: ledger_query().order_by(Movement.id)),
)


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value


def _table_chunks(table: Table, counts: dict[str, int]) -> Iterator[bytes]:
    """The table's CSV as encoded chunks; its row count lands in `counts` when the last one is out."""
    counts[table.file] = 0

    def rows() -> Iterator[list[Any]]:
        for row in db.session.execute(table.query().execution_options(yield_per=YIELD)):
            counts[table.file] += 1
            yield [_cell(v) for v in row]

    for chunk in csv_chunks(table.header, rows()):
        yield chunk.encode("utf-8")


def _manifest(counts: dict[str, int]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "exported_at": datetime.now(UTC).isoformat(),
        "encoding": "UTF-8 with BOM, RFC 4180 CSV",
        "formula_cells": "text starting with = + - @ tab or CR is prefixed with an apostrophe",
        "files": counts,
    }


def export_to_directory(directory: Path) -> dict[str, Any]:
    """Write every CSV and manifest.json into `directory` (created; it must be empty)."""
    if directory.exists() and any(directory.iterdir()):
        raise InvalidInput("directory", f"{directory} is not empty")
    directory.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for table in TABLES:
        with (directory / table.file).open("wb") as out:
            for chunk in _table_chunks(table, counts):
                out.write(chunk)
    manifest = _manifest(counts)
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    db.session.rollback()
    return manifest


class _Drain:
    """A write-only, unseekable file that hands its bytes to the response as they come: zipfile then
    writes data descriptors instead of seeking back, so the zip streams."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.offset = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def zip_chunks() -> Iterator[bytes]:
    """The same export as one zip, produced chunk by chunk for a streamed download."""
    drain = _Drain()
    counts: dict[str, int] = {}
    with zipfile.ZipFile(drain, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for table in TABLES:
            with archive.open(table.file, "w", force_zip64=True) as member:
                for chunk in _table_chunks(table, counts):
                    member.write(chunk)
                    if drain.parts:
                        yield drain.take()
        archive.writestr("manifest.json", json.dumps(_manifest(counts), indent=2, ensure_ascii=False))
    db.session.rollback()
    yield drain.take()
