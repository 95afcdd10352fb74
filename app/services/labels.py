"""Printable labels: what goes on an item or location label (LabelContent), drawn here with its QR
code (segno) and Code 128 barcode (python-barcode) as inline SVG, or as ZPL (app/services/zpl.py).
The label carries the code the scan page resolves (codes.resolve_code): an item's barcode if it
has one, else its SKU; a location's code; a lot's or serial's GS1 element string, or our own lot or
serial code where GS1 cannot carry it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import barcode
import segno
from barcode.writer import SVGWriter
from markupsafe import Markup
from sqlalchemy import Row, select

from app.extensions import db
from app.models import Item, Location, Lot, Serial, StockLevel, Warehouse
from app.services import codes, gs1
from app.services.errors import InvalidInput, UnknownItem, UnknownLocation, UnknownLot, UnknownSerial
from app.services.gs1 import GS1Data, gtin14
from app.services.lots import serial_query

MAX_LABELS = 500
# Drawing one label's QR code and barcode costs about 15 ms of CPU (32 ms measured on a busy
# 2-core machine): a request may draw at most this many different labels (two A4 sheets), so
# one viewer cannot hold a worker for seconds. Copies reuse the drawing.
MAX_DISTINCT_LABELS = 48
BAR_SPACE_MM = 40.0  # the barcode's room on the narrowest label, quiet zones aside
_PROLOGUE = re.compile(rb"^.*?(?=<svg)", re.S)


@dataclass(frozen=True)
class LabelContent:
    """What one label says, whatever it is printed with (an SVG sheet, ZPL): `code` is what its
    symbols encode; `gs1` what a GS1 symbol carries (AI 01 when the item's barcode is a valid
    GTIN; lots and serials add their AIs), which printers that can print it do (GS1-128, GS1
    DataMatrix)."""

    kind: str  # "item" or "location"
    code: str
    title: str
    subtitle: str
    gs1: GS1Data | None = None


@dataclass(frozen=True)
class Label:
    kind: str  # "item" or "location"
    code: str  # what the symbols encode
    title: str
    subtitle: str
    qr: Markup
    code128: Markup | None  # None when the code is not Code 128 text (e.g. Chinese)


def qr_svg(text: str) -> Markup:
    """A regular (never micro) QR code as inline SVG: phone cameras do not read micro QR."""
    svg = segno.make_qr(text, error="m").svg_inline(scale=1, border=2, omitsize=True)
    return Markup(svg.replace("<svg ", '<svg class="qr" preserveAspectRatio="xMidYMid meet" ', 1))  # noqa: S704 - segno's own SVG


def code128_svg(text: str) -> Markup | None:
    if not text.isascii() or not text.isprintable():
        return None
    symbol = barcode.get("code128", text, writer=SVGWriter())
    # Bars as wide as a handheld reads well (0.3 mm), narrower only when a long code must fit.
    modules = len(symbol.build()[0])
    rendered = symbol.render(
        {"write_text": False, "module_height": 9.0, "quiet_zone": 2.0, "module_width": min(0.3, BAR_SPACE_MM / modules)}
    )
    svg = _PROLOGUE.sub(b"", rendered).decode()
    return Markup(svg.replace("<svg ", '<svg class="code128" preserveAspectRatio="none" ', 1))  # noqa: S704 - python-barcode's own SVG


def _item_content(sku: str, name: str, code: str | None, unit: str) -> LabelContent:
    gtin = gtin14(code or "")
    return LabelContent("item", code or sku, name, f"{sku} · {unit}", GS1Data(gtin) if gtin else None)


def _location_content(code: str, name: str, warehouse: str) -> LabelContent:
    return LabelContent("location", code, code, f"{warehouse} {name}".strip())


def sheet(contents: list[LabelContent], copies: int = 1) -> list[Label]:
    """The labels drawn as SVG, each drawn once and repeated `copies` times."""
    drawn = [Label(c.kind, c.code, c.title, c.subtitle, qr_svg(c.code), code128_svg(c.code)) for c in contents]
    return [label for label in drawn for _ in range(copies)]


def item_contents(skus: list[str], copies: int = 1) -> list[LabelContent]:
    """One label for each of these items, in the order given, to print `copies` times. Raises
    UnknownItem, InvalidInput (too many)."""
    wanted = [s for s in dict.fromkeys(s.strip() for s in skus) if s]
    if not wanted:
        raise InvalidInput("skus", "name at least one item")
    _check_size(len(wanted) * copies, distinct=len(wanted))
    rows = {
        r.sku: r
        for r in db.session.execute(select(Item.sku, Item.name, Item.barcode, Item.unit).where(Item.sku.in_(wanted)))
    }
    for sku in wanted:
        if sku not in rows:
            raise UnknownItem(sku)
    return [_item_content(*rows[sku]) for sku in wanted]


def item_labels(skus: list[str], copies: int = 1) -> list[Label]:
    """Labels for these items, in the order given. Raises UnknownItem, InvalidInput (too many)."""
    return sheet(item_contents(skus, copies), copies)


def location_contents(location: str, *, with_items: bool = True) -> list[LabelContent]:
    """The location's own label, then one for each item it holds. Raises UnknownLocation."""
    found = db.session.execute(
        select(Location.id, Location.code, Location.name, Warehouse.name)
        .join(Warehouse, Warehouse.id == Location.warehouse_id)
        .where(Location.code == location.strip())
    ).first()
    if found is None:
        raise UnknownLocation(location)
    held: Sequence[Row[tuple[str, str, str | None, str]]] = []
    if with_items:
        held = db.session.execute(
            select(Item.sku, Item.name, Item.barcode, Item.unit)
            .join(StockLevel, StockLevel.item_id == Item.id)
            .where(StockLevel.location_id == found[0], StockLevel.quantity > Decimal(0))
            .order_by(Item.sku)
            .limit(MAX_DISTINCT_LABELS + 1)
        ).all()
    _check_size(1 + len(held), distinct=1 + len(held))
    return [_location_content(found[1], found[2], found[3]), *(_item_content(*row) for row in held)]


def location_labels(location: str, *, with_items: bool = True) -> list[Label]:
    """The location's own label, then one for each item it holds. Raises UnknownLocation."""
    return sheet(location_contents(location, with_items=with_items))


def _traced_content(kind: str, item: tuple[str, str, str | None], data: GS1Data, text: str, code: str) -> LabelContent:
    """A lot's or serial's label, so that it scans back into the same item and fields: its GS1
    element string (GTIN and the lot's or serial's AIs) in the symbols when the item has a GTIN and
    GS1 can carry the values; else `code`, our own code of the lot or serial (codes.lot_code,
    codes.serial_code), which /scan and the stock forms resolve. The text beside it says the same."""
    sku, name, barcode = item
    gtin = gtin14(barcode or "")
    full = GS1Data(gtin, lot=data.lot, expiry=data.expiry, serial=data.serial)
    if gtin and gs1.encodable(full):
        return LabelContent(kind, full.hri(), name, f"{sku} · {text}", full)
    return LabelContent(kind, code, name, f"{sku} · {text}")


def lot_content(lot_id: int) -> LabelContent:
    """The label of a lot: (01) GTIN, (17) expiry, (10) lot, or our own lot code. Raises UnknownLot."""
    row = db.session.execute(
        select(Item.sku, Item.name, Item.barcode, Lot.code, Lot.expiry)
        .join(Item, Item.id == Lot.item_id)
        .where(Lot.id == lot_id)
    ).first()
    if row is None:
        raise UnknownLot("", str(lot_id))
    lot, expiry = row[3], row[4]
    text = f"LOT {lot}" + (f" · EXP {expiry.isoformat()}" if expiry else "")
    data = GS1Data(None, lot=lot, expiry=expiry)
    return _traced_content("lot", (row[0], row[1], row[2]), data, text, codes.lot_code(lot_id))


def serial_content(sku: str, serial: str) -> LabelContent:
    """The label of one serial: (01) GTIN, (21) serial (and its lot's AIs when it has one), or our
    own serial code. Raises UnknownSerial."""
    row = db.session.execute(
        serial_query(Item.sku, Item.name, Item.barcode, Serial.serial, Lot.code, Lot.expiry, Serial.id).where(
            Item.sku == sku, Serial.serial == serial
        )
    ).first()
    if row is None:
        raise UnknownSerial(sku, serial)
    data = GS1Data(None, lot=row[4], expiry=row[5], serial=row[3])
    return _traced_content("serial", (row[0], row[1], row[2]), data, f"SN {row[3]}", codes.serial_code(row[6]))


def _check_size(count: int, *, distinct: int) -> None:
    if distinct > MAX_DISTINCT_LABELS:
        raise InvalidInput("skus", f"at most {MAX_DISTINCT_LABELS} different labels at a time")
    if count > MAX_LABELS:
        raise InvalidInput("copies", f"at most {MAX_LABELS} labels at a time")
