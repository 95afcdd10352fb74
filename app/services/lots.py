"""Reading lots and serials (issue 17): which lots an item has and what they hold, where a serial
is and everything that moved it, and the lot codes and serials of ledger lines. The stock service
(app.services.stock) is what writes them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, select

from app.extensions import db
from app.models import Item, Location, Lot, Movement, MovementSerial, Serial, StockLevel
from app.services.errors import UnknownItem, UnknownSerial

#: At most this many lots in one answer (the API lists them without pages).
MAX_LOTS = 1000


@dataclass(frozen=True)
class LotRow:
    sku: str
    code: str
    expiry: date | None
    received_at: datetime
    on_hand: Decimal


def list_lots(*, sku: str | None = None, expiring_before: date | None = None) -> list[LotRow]:
    """Lots with what they hold over every location, earliest expiry first (lots without an
    expiry last), optionally of one item and expiring before a date. Raises UnknownItem."""
    held = (
        select(StockLevel.lot_id, func.sum(StockLevel.quantity).label("units"))
        .where(StockLevel.lot_id.is_not(None))
        .group_by(StockLevel.lot_id)
        .subquery()
    )
    stmt = (
        select(Item.sku, Lot.code, Lot.expiry, Lot.received_at, func.coalesce(held.c.units, 0))
        .join(Item, Item.id == Lot.item_id)
        .outerjoin(held, held.c.lot_id == Lot.id)
    )
    if sku is not None:
        item_id = db.session.scalar(select(Item.id).where(Item.sku == sku))
        if item_id is None:
            raise UnknownItem(sku)
        stmt = stmt.where(Lot.item_id == item_id)
    if expiring_before is not None:
        stmt = stmt.where(Lot.expiry < expiring_before)
    stmt = stmt.order_by(Lot.expiry.is_(None), Lot.expiry, Item.sku, Lot.code).limit(MAX_LOTS)
    return [LotRow(*row) for row in db.session.execute(stmt)]


@dataclass(frozen=True)
class Traced:
    """The lot codes (by lot id) and serials (by movement id) of some ledger lines."""

    lots: dict[int, str] = field(default_factory=dict)
    serials: dict[int, list[str]] = field(default_factory=dict)


def traced(movements: Iterable[Movement]) -> Traced:
    """What `movements` moved by lot and serial: nothing to read (no query) when none of them is
    of a tracked item."""
    lines = list(movements)
    # Lines the stock service just wrote carry their lot's code: only the others are read.
    lots = {m.lot_id: m.lot_code for m in lines if m.lot_id is not None and m.lot_code is not None}
    lot_ids = {m.lot_id for m in lines if m.lot_id is not None} - lots.keys()
    if lot_ids:
        lots |= dict(db.session.execute(select(Lot.id, Lot.code).where(Lot.id.in_(lot_ids))).tuples().all())
    serials: dict[int, list[str]] = {}
    # A line with a lot is of a lot-tracked item, which has no serials.
    ids = [m.id for m in lines if m.lot_id is None]
    tracked = bool(ids) and db.session.scalar(
        select(func.count())
        .select_from(Item)
        .where(Item.id.in_({m.item_id for m in lines if m.lot_id is None}), Item.tracking == "serial")
    )
    if tracked:
        rows = db.session.execute(
            select(MovementSerial.movement_id, Serial.serial)
            .join(Serial, Serial.id == MovementSerial.serial_id)
            .where(MovementSerial.movement_id.in_(ids))
            .order_by(Serial.serial)
        )
        for movement_id, serial in rows:
            serials.setdefault(movement_id, []).append(serial)
    return Traced(lots, serials)


def serial_query(*columns: Any) -> Select[Any]:
    """`columns` of serials, each with its item, and its location and lot when it has them."""
    with_item = select(*columns).join_from(Serial, Item, Item.id == Serial.item_id)
    return with_item.outerjoin(Location, Location.id == Serial.location_id).outerjoin(Lot, Lot.id == Serial.lot_id)


@dataclass(frozen=True)
class SerialInfo:
    sku: str
    serial: str
    status: str
    location: str | None
    lot: str | None
    history: list[Movement]
    places: dict[int, str]


def serial_info(sku: str, serial: str) -> SerialInfo:
    """Where a serial is and every movement of it, oldest first. Raises UnknownItem, UnknownSerial."""
    item_id = db.session.scalar(select(Item.id).where(Item.sku == sku))
    if item_id is None:
        raise UnknownItem(sku)
    found = serial_query(Serial.id, Serial.serial, Serial.status, Location.code, Lot.code)
    row = db.session.execute(found.where(Serial.item_id == item_id, Serial.serial == serial)).first()
    if row is None:
        raise UnknownSerial(sku, serial)
    history = list(
        db.session.scalars(
            select(Movement)
            .join(MovementSerial, MovementSerial.movement_id == Movement.id)
            .where(MovementSerial.serial_id == row[0])
            .order_by(Movement.id)
        )
    )
    location_ids = {i for m in history for i in (m.from_location_id, m.to_location_id) if i is not None}
    places = (
        dict(db.session.execute(select(Location.id, Location.code).where(Location.id.in_(location_ids))).tuples().all())
        if location_ids
        else {}
    )
    return SerialInfo(sku, row[1], row[2], row[3], row[4], history, places)
