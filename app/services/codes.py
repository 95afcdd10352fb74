"""What a scanned code names: a location code, an item barcode or an item SKU, in that order; else
one of our own lot or serial labels that GS1 cannot carry ("LOT/12", "SN/34"); else a supplier's
GS1 label, whose GTIN names the item by its barcode (app/services/gs1.py).

Every scanner-facing page resolves codes here, so the same label means the same thing everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, func, null, or_, select

from app.config import settings
from app.extensions import db
from app.models import Item, Location, Lot, Serial, StockLevel
from app.services import gs1
from app.services.catalog import canonical_sku
from app.services.errors import Conflict, Declared, InvalidGS1Code, NotFound, UnknownGtin, _l, private
from app.services.gs1 import GS1Data
from app.services.lots import serial_query
from app.services.search_keys import fold

# Our label of a lot or serial that GS1 cannot carry (a lot "批次1" or "A 1", an item without a
# GTIN) encodes the lot's or serial's id: ASCII and short, so Code 128 fits on the smallest label
# and a keyboard-wedge scanner types it whatever the lot holds (it cannot type Chinese). No SKU
# holds "/" and no barcode has this form (items.check_item refuses both), so stored codes, looked up
# first, never shadow it. Any case, as a scanner set to lower case sends it.
LOT_CODE_PREFIX = "LOT/"
SERIAL_CODE_PREFIX = "SN/"
_TRACED_CODE = re.compile(r"(LOT|SN)/([1-9][0-9]{0,17})", re.IGNORECASE)


class UnknownCode(
    Declared, NotFound, title="Unknown code", template=_l("no item or location has the code {scanned!r}")
):
    scanned: str


class CodeTaken(Declared, Conflict, title="Code already used", template=_l("{value!r} is already used as {used_by}")):
    """A SKU, barcode or location code equal to another one: a scanner reading it could not tell
    which is meant, so the three share one namespace."""

    value: str = private()
    _: KW_ONLY
    field: str
    used_by: str


def compared(code: str) -> str:
    """`code` as the database compares codes: folded (no case, no accents) on MariaDB, whose
    _ci collations ignore both; as written on SQLite, which compares bytes."""
    return fold(code) if db.session.get_bind().dialect.name == "mysql" else code


def check_code_free(value: str | None, *, field: str, item_id: int | None = None) -> None:
    """Refuse `value` (a new SKU, barcode or location code) if any SKU, barcode or location code
    other than item `item_id`'s own equals it. Raises CodeTaken."""
    if value:
        check_codes_free({value: item_id}, field=field)


def check_codes_free(values: dict[str, int | None], *, field: str) -> None:
    """check_code_free for many codes at once (each with the item it may already belong to), with
    one query per 1,000 codes and kind of holder. Raises CodeTaken for the first taken code."""
    asked = {compared(value): (value, item_id) for value, item_id in values.items()}
    wanted = sorted(values)
    for column, used_by in ((Location.code, "location"), (Item.sku, "sku"), (Item.barcode, "barcode")):
        owner = Location.id if used_by == "location" else Item.id
        for start in range(0, len(wanted), 1000):
            for code, owner_id in db.session.execute(
                select(column, owner).where(_same_any(column, wanted[start : start + 1000]))
            ):
                value, item_id = asked.get(compared(code), (code, None))
                if used_by == "location" or owner_id != item_id:
                    raise CodeTaken(value, field=field, used_by=used_by)


def _same_any(column: Any, values: Sequence[str]) -> ColumnElement[bool]:
    """`column` equals one of `values` as MariaDB compares codes (its _ci collations ignore case);
    SQLite compares bytes, so it is asked to ignore (ASCII) case too."""
    if db.session.get_bind().dialect.name != "mysql":
        lowered: ColumnElement[bool] = func.lower(column).in_([value.lower() for value in values])
        return lowered
    same: ColumnElement[bool] = column.in_(values)
    return same


@dataclass(frozen=True)
class Resolved:
    """`kind` is "item" or "location"; `code` is the SKU or the location code; `gs1` is what a
    GS1 label scanned for the item said (lot, expiry, serial, quantity), or our own lot or serial
    label (its lot and expiry, or its serial; no GTIN)."""

    kind: str
    code: str
    name: str
    unit: str = ""
    active: bool = True
    gs1: GS1Data | None = None


def lot_code(lot_id: int) -> str:
    """What our label of lot `lot_id` encodes when GS1 cannot carry it."""
    return f"{LOT_CODE_PREFIX}{lot_id}"


def serial_code(serial_id: int) -> str:
    """What our label of serial `serial_id` encodes when GS1 cannot carry it."""
    return f"{SERIAL_CODE_PREFIX}{serial_id}"


def is_traced_code(scanned: str) -> bool:
    """Whether `scanned` has the form of our own lot or serial label's code."""
    return _TRACED_CODE.fullmatch((scanned or "").strip()) is not None


def resolve_traced(scanned: str) -> Resolved:
    """The item, lot (and expiry) or serial one of our own lot or serial labels names, in the same
    fields a GS1 label fills (`gs1`, without a GTIN). Raises UnknownCode (no such lot or serial)."""
    text = (scanned or "").strip()
    found = _TRACED_CODE.fullmatch(text)
    if found is None:
        raise UnknownCode(text[:128])
    item, number = (Item.sku, Item.name, Item.unit, Item.archived), int(found[2])
    if found[1].upper() == "LOT":
        query = select(*item, Lot.code, Lot.expiry, null()).join(Item, Item.id == Lot.item_id).where(Lot.id == number)
    else:
        query = serial_query(*item, Lot.code, Lot.expiry, Serial.serial).where(Serial.id == number)
    row = db.session.execute(query).first()
    if row is None:
        raise UnknownCode(text)
    sku, name, unit, archived, lot, expiry, serial = row
    return Resolved(
        "item", sku, name, unit, active=not archived, gs1=GS1Data(None, lot=lot, expiry=expiry, serial=serial)
    )


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
    """The item a GS1 label or our own lot or serial label typed where a SKU is asked for names, or
    None when `scanned` is neither or is a SKU or barcode as stored (which wins). Raises
    InvalidGS1Code, UnknownGtin, UnknownCode."""
    text = (scanned or "").strip()
    traced = is_traced_code(text)
    data = None if traced else read_gs1(scanned)
    if data is None and not traced:
        return None
    stored = select(Item.id).where(or_(Item.sku == text, Item.barcode == text)).limit(1)
    if db.session.scalar(stored) is not None:
        return None
    return resolve_gs1(text, data) if data is not None else resolve_traced(text)


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
    if is_traced_code(text):
        return resolve_traced(text)
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
