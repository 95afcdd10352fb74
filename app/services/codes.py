"""What a scanned code names: a location code, an item barcode or an item SKU, in that order; else
a supplier's GS1 label, whose GTIN names the item by its barcode (app/services/gs1.py).

Every scanner-facing page resolves codes here, so the same label means the same thing everywhere.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select

from app.config import settings
from app.extensions import db
from app.models import Item, Location, StockLevel
from app.services import gs1
from app.services.catalog import canonical_sku
from app.services.errors import Conflict, Declared, InvalidGS1Code, NotFound, UnknownGtin, private
from app.services.gs1 import GS1Data
from app.services.search_keys import fold


class UnknownCode(
    Declared,
    NotFound,
    code="unknown_code",
    title="Unknown code",
    template="no item or location has the code {scanned!r}",
):
    scanned: str


class CodeTaken(
    Declared, Conflict, code="code_taken", title="Code already used", template="{value!r} is already used as {used_by}"
):
    """A SKU, barcode or location code equal to another one: a scanner reading it could not tell
    which is meant, so the three share one namespace."""

    value: str = private()
    _: KW_ONLY
    field: str
    used_by: str


def _same(column: Any, value: str) -> ColumnElement[bool]:
    """`column` equals `value` as MariaDB compares codes (its _ci collations ignore case); SQLite
    compares bytes, so it is asked to ignore (ASCII) case too."""
    same: ColumnElement[bool] = column == value
    if db.session.get_bind().dialect.name != "mysql":
        same = func.lower(column) == value.lower()
    return same


def compared(code: str) -> str:
    """`code` as the database compares codes: folded (no case, no accents) on MariaDB, whose
    _ci collations ignore both; as written on SQLite, which compares bytes."""
    return fold(code) if db.session.get_bind().dialect.name == "mysql" else code


def check_code_free(value: str | None, *, field: str, item_id: int | None = None) -> None:
    """Refuse `value` (a new SKU, barcode or location code) if any SKU, barcode or location code
    other than item `item_id`'s own equals it. Raises CodeTaken."""
    if not value:
        return
    if db.session.scalar(select(Location.id).where(_same(Location.code, value)).limit(1)) is not None:
        raise CodeTaken(value, field=field, used_by="location")
    for column, used_by in ((Item.sku, "sku"), (Item.barcode, "barcode")):
        owner = db.session.scalar(select(Item.id).where(_same(column, value)).limit(1))
        if owner is not None and owner != item_id:
            raise CodeTaken(value, field=field, used_by=used_by)


@dataclass(frozen=True)
class Resolved:
    """`kind` is "item" or "location"; `code` is the SKU or the location code; `gs1` is what a
    GS1 label scanned for the item said (lot, expiry, serial, quantity)."""

    kind: str
    code: str
    name: str
    unit: str = ""
    active: bool = True
    gs1: GS1Data | None = None


def read_gs1(scanned: str) -> GS1Data | None:
    """`scanned` read as a GS1 label with the scanners' FNC1 stand-in set up here, or None when it
    is not one. Raises InvalidGS1Code."""
    return gs1.read(scanned or "", stand_in=settings().INVENTORY_GS1_SEPARATOR)


def resolve_gs1(scanned: str, data: GS1Data) -> Resolved:
    """The item whose barcode is the GTIN of a scanned GS1 label, stored as GTIN-14 or as the
    EAN-13, UPC-A or EAN-8 it stands for. Raises InvalidGS1Code (no GTIN), UnknownGtin."""
    if data.gtin is None:
        raise InvalidGS1Code(scanned, "no_gtin", "it names no GTIN (AI 01 or 02)")
    item = db.session.execute(
        select(Item.sku, Item.name, Item.unit, Item.archived)
        .where(Item.barcode.in_(data.gtin_forms()))
        .order_by(Item.id)
        .limit(1)
    ).first()
    if item is None:
        raise UnknownGtin(data.gtin)
    return Resolved("item", item.sku, item.name, item.unit, active=not item.archived, gs1=data)


def resolve_item_label(scanned: str) -> Resolved | None:
    """The item a GS1 label typed where a SKU is asked for names, or None when `scanned` is no GS1
    label or is a SKU or barcode as stored (which wins). Raises InvalidGS1Code, UnknownGtin."""
    data = read_gs1(scanned)
    text = (scanned or "").strip()
    if data is None:
        return None
    stored = select(Item.id).where(or_(Item.sku == text, Item.barcode == text)).limit(1)
    if db.session.scalar(stored) is not None:
        return None
    return resolve_gs1(text, data)


def resolve_code(scanned: str) -> Resolved:
    """The location or item a scanned code names. Raises UnknownCode, InvalidGS1Code, UnknownGtin."""
    text = (scanned or "").strip()
    if not text or len(text) > 128:
        return _resolve_gs1_or_refuse(scanned or "")
    # Location codes are stored upper-case and SKUs match in any case (a scanner set to lower
    # case, a code typed by hand); barcodes are taken exactly as printed.
    location = db.session.execute(
        select(Location.code, Location.name, Location.active).where(Location.code.in_({text, text.upper()}))
    ).first()
    if location is not None:
        return Resolved("location", location.code, location.name, active=location.active)
    for column, value in ((Item.barcode, text), (Item.sku, canonical_sku(text))):
        item = db.session.execute(select(Item.sku, Item.name, Item.unit, Item.archived).where(column == value)).first()
        if item is not None:
            return Resolved("item", item.sku, item.name, item.unit, active=not item.archived)
    return _resolve_gs1_or_refuse(scanned)


def _resolve_gs1_or_refuse(scanned: str) -> Resolved:
    # Asked only after the codes we store missed: a SKU that happens to look like GS1 still wins.
    data = read_gs1(scanned)
    if data is None:
        raise UnknownCode(scanned.strip()[:128])
    return resolve_gs1(scanned.strip(), data)


def balance(sku: str, location: str) -> Decimal:
    """The on-hand quantity of `sku` at `location`, over every lot (zero when there is no
    stock-level row)."""
    found = db.session.scalar(
        select(func.sum(StockLevel.quantity))
        .join(Item, Item.id == StockLevel.item_id)
        .join(Location, Location.id == StockLevel.location_id)
        .where(Item.sku == sku, Location.code == location)
    )
    return found if found is not None else Decimal(0)
