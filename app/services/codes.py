"""What a scanned code names: a location code, an item barcode or an item SKU, in that order.

Every scanner-facing page resolves codes here, so the same label means the same thing everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select

from app.extensions import db
from app.models import Item, Location, StockLevel
from app.services.catalog import canonical_sku
from app.services.errors import NotFound


class UnknownCode(NotFound):
    code = "unknown_code"
    title = "Unknown code"

    def __init__(self, scanned: str) -> None:
        super().__init__(f"no item or location has the code {scanned!r}", scanned=scanned)


@dataclass(frozen=True)
class Resolved:
    """`kind` is "item" or "location"; `code` is the SKU or the location code."""

    kind: str
    code: str
    name: str
    unit: str = ""
    active: bool = True


def resolve_code(scanned: str) -> Resolved:
    """The location or item a scanned code names. Raises UnknownCode."""
    text = (scanned or "").strip()
    if not text or len(text) > 128:
        raise UnknownCode(text[:128])
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
    raise UnknownCode(text)


def balance(sku: str, location: str) -> Decimal:
    """The on-hand quantity of `sku` at `location` (zero when there is no stock-level row)."""
    found = db.session.scalar(
        select(StockLevel.quantity)
        .join(Item, Item.id == StockLevel.item_id)
        .join(Location, Location.id == StockLevel.location_id)
        .where(Item.sku == sku, Location.code == location)
    )
    return found if found is not None else Decimal(0)
