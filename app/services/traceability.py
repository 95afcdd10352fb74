"""Where lots and serials are, and where they have been (issue 17): an item's stock per lot, a
lot's recall trace, a serial's history and the lots expiring soon. Reads only; the stock service
(app.services.stock) writes them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Select, and_, func, or_, select

from app.extensions import db
from app.models import Item, Location, Lot, Movement, MovementSerial, Serial, StockLevel, Warehouse
from app.models.types import utcnow
from app.services.catalog import MovementRow, Page, Reservable, StockRow, decode_cursor, encode_cursor, ledger_query
from app.services.errors import InvalidInput, UnknownItem, UnknownLot, UnknownSerial
from app.services.lots import serial_query

# How a lot's expiry reads today: past it, within the item's warning days, or neither.
EXPIRY_STATES = ("expired", "expiring", "ok")
MAX_DAYS = 3650
SERIALS_PER_PAGE = 100


def today() -> date:
    return utcnow().date()


def expiry_state(expiry: date | None, warning_days: int | None, *, on: date | None = None) -> str:
    """ "expired" once the expiry date has passed (a lot is good through its expiry day), "expiring"
    within `warning_days` of it, else "ok" (also for a lot without an expiry)."""
    on = on or today()
    if expiry is None:
        return "ok"
    if expiry < on:
        return "expired"
    if warning_days is not None and expiry <= on + timedelta(days=warning_days):
        return "expiring"
    return "ok"


@dataclass(frozen=True)
class LotStockRow(Reservable):
    lot_id: int
    code: str
    expiry: date | None
    received_at: datetime
    location: str
    location_name: str
    warehouse: str
    quantity: Decimal
    state: str
    reserved: Decimal = Decimal(0)

    @property
    def days_left(self) -> int | None:
        return None if self.expiry is None else (self.expiry - today()).days


def held_lots(*columns: Any) -> Select[Any]:
    """`columns` of every level held (above zero) of a lot, with its lot, item, location and
    warehouse joined: an item's lot stock, the expiring list, the daily expiry check."""
    return (
        select(*columns)
        # Read from the lots first (by item, id or expiry), in this join order: to MariaDB the
        # untracked levels' NULL lot ids make the lot index look unselective, so it read every
        # level through the warehouses instead (the expiring page: p50 1.9 s with 100,000 items
        # and 6,000 lots, against about 30 ms so).
        .prefix_with("STRAIGHT_JOIN", dialect="mysql")
        .join_from(Lot, StockLevel, StockLevel.lot_id == Lot.id)
        .join(Location, Location.id == StockLevel.location_id)
        .join(Warehouse, Warehouse.id == Location.warehouse_id)
        .join(Item, Item.id == Lot.item_id)
        .where(StockLevel.quantity > 0)
    )


def _lot_stock(where: Any) -> list[LotStockRow]:
    rows = db.session.execute(
        held_lots(
            Lot.id,
            Lot.code,
            Lot.expiry,
            Lot.received_at,
            Location.code,
            Location.name,
            Warehouse.code,
            StockLevel.quantity,
            Item.expiry_warning_days,
            StockLevel.reserved,
        )
        .where(where)
        # FEFO: the lot an issue takes first comes first; lots without an expiry last.
        .order_by(Lot.expiry.is_(None), Lot.expiry, Lot.received_at, Lot.id, Location.code)
    )
    on = today()
    return [
        LotStockRow(
            lot_id,
            code,
            expiry,
            received,
            place,
            place_name,
            warehouse,
            quantity,
            expiry_state(expiry, warn, on=on),
            reserved,
        )
        for lot_id, code, expiry, received, place, place_name, warehouse, quantity, warn, reserved in rows
    ]


def item_lot_stock(item_id: int) -> list[LotStockRow]:
    """A lot-tracked item's stock per lot per location (held only), first to expire first."""
    return _lot_stock(Lot.item_id == item_id)


def per_location(rows: Iterable[StockRow]) -> list[StockRow]:
    """Stock levels summed per location (a lot-tracked item has a level per lot there), in the
    order the locations first appear."""
    merged: dict[str, StockRow] = {}
    for row in rows:
        if row.location in merged:
            before = merged[row.location]
            row = replace(row, quantity=before.quantity + row.quantity, reserved=before.reserved + row.reserved)
        merged[row.location] = row
    return list(merged.values())


@dataclass(frozen=True)
class SerialPlace:
    location: str
    warehouse: str
    count: int


class SerialRow(NamedTuple):
    """A serial in stock and where (a NamedTuple: a query row, read as it comes)."""

    serial: str
    location: str | None


def item_serial_places(item_id: int) -> list[SerialPlace]:
    """How many serials of an item are in stock at each location."""
    rows = db.session.execute(
        select(Location.code, Warehouse.code, func.count(Serial.id))
        .join(Location, Location.id == Serial.location_id)
        .join(Warehouse, Warehouse.id == Location.warehouse_id)
        .where(Serial.item_id == item_id, Serial.status == "in_stock")
        .group_by(Location.code, Warehouse.code)
        .order_by(Location.code)
    )
    return [SerialPlace(*row) for row in rows]


def item_serials(item_id: int, *, after: str | None = None, limit: int = SERIALS_PER_PAGE) -> Page[SerialRow]:
    """The serials of an item in stock, by location then serial, a page at a time. Raises
    InvalidInput for a bad cursor."""
    stmt = (
        select(Location.code, Serial.serial)
        .join(Location, Location.id == Serial.location_id)
        .where(Serial.item_id == item_id, Serial.status == "in_stock")
    )
    if after:
        last = decode_cursor(after)
        if len(last) != 2 or not all(isinstance(part, str) for part in last):
            raise InvalidInput("cursor", "is not a valid page cursor")
        stmt = stmt.where(or_(Location.code > last[0], and_(Location.code == last[0], Serial.serial > last[1])))
    found = [
        SerialRow(serial, code)
        for code, serial in db.session.execute(stmt.order_by(Location.code, Serial.serial).limit(limit + 1))
    ]
    more = len(found) > limit
    found = found[:limit]
    cursor = encode_cursor(found[-1].location, found[-1].serial) if more and found else None
    return Page(found, cursor)


@dataclass(frozen=True)
class LotFacts:
    id: int
    sku: str
    item_name: str
    unit: str
    gtin: str | None
    code: str
    expiry: date | None
    received_at: datetime
    warning_days: int | None
    state: str


def _lot_facts(where: Any) -> LotFacts | None:
    row = db.session.execute(
        select(
            Lot.id,
            Item.sku,
            Item.name,
            Item.unit,
            Item.barcode,
            Lot.code,
            Lot.expiry,
            Lot.received_at,
            Item.expiry_warning_days,
        )
        .join(Item, Item.id == Lot.item_id)
        .where(where)
    ).first()
    if row is None:
        return None
    lot_id, sku, name, unit, gtin, code, expiry, received, warn = row
    return LotFacts(lot_id, sku, name, unit, gtin, code, expiry, received, warn, expiry_state(expiry, warn))


def get_lot(lot_id: int) -> LotFacts:
    """Raises UnknownLot."""
    facts = _lot_facts(Lot.id == lot_id)
    if facts is None:
        raise UnknownLot(sku="", lot=str(lot_id))
    return facts


def find_lot(sku: str, code: str) -> LotFacts:
    """The lot `code` of item `sku`. Raises UnknownLot."""
    facts = _lot_facts(and_(Item.sku == sku, Lot.code == code))
    if facts is None:
        raise UnknownLot(sku=sku, lot=code)
    return facts


def lot_stock(lot_id: int) -> list[LotStockRow]:
    return _lot_stock(Lot.id == lot_id)


def lot_movements(lot_id: int) -> list[MovementRow]:
    """Every ledger line that moved the lot, oldest first: where it came from and where it went."""
    stmt = ledger_query().where(Movement.lot_id == lot_id).order_by(Movement.id)
    return [MovementRow(*row) for row in db.session.execute(stmt)]


@dataclass(frozen=True)
class SerialFacts:
    id: int
    sku: str
    item_name: str
    unit: str
    gtin: str | None
    serial: str
    status: str
    location: str | None
    lot_id: int | None
    lot_code: str | None
    created_at: datetime


def get_serial(sku: str, serial: str) -> SerialFacts:
    """Raises UnknownItem or UnknownSerial."""
    item = db.session.execute(select(Item.id).where(Item.sku == sku)).scalar()
    if item is None:
        raise UnknownItem(sku=sku)
    row = db.session.execute(
        serial_query(
            Serial.id,
            Item.sku,
            Item.name,
            Item.unit,
            Item.barcode,
            Serial.serial,
            Serial.status,
            Location.code,
            Lot.id,
            Lot.code,
            Serial.created_at,
        ).where(Serial.item_id == item, Serial.serial == serial)
    ).first()
    if row is None:
        raise UnknownSerial(sku=sku, serial=serial)
    return SerialFacts(*row)


def serial_movements(serial_id: int) -> list[MovementRow]:
    """Every ledger line that moved the serial, oldest first."""
    moved = select(MovementSerial.movement_id).where(MovementSerial.serial_id == serial_id)
    stmt = ledger_query().where(Movement.id.in_(moved)).order_by(Movement.id)
    return [MovementRow(*row) for row in db.session.execute(stmt)]


@dataclass(frozen=True)
class LineTrace:
    """What a ledger line carried besides its item: its lot, and how many serials."""

    lot_id: int | None
    lot_code: str | None
    serials: list[str]


def line_traces(movement_ids: Iterable[int]) -> dict[int, LineTrace]:
    """For ledger lines shown on a page: the lot and serials of those that carried any (one query,
    a row per serial)."""
    ids = list(movement_ids)
    if not ids:
        return {}
    rows = db.session.execute(
        select(Movement.id, Lot.id, Lot.code, Serial.serial)
        .outerjoin(Lot, Lot.id == Movement.lot_id)
        .outerjoin(MovementSerial, MovementSerial.movement_id == Movement.id)
        .outerjoin(Serial, Serial.id == MovementSerial.serial_id)
        .where(Movement.id.in_(ids), or_(Movement.lot_id.is_not(None), MovementSerial.serial_id.is_not(None)))
        .order_by(Movement.id, Serial.serial)
    )
    traces: dict[int, LineTrace] = {}
    for movement_id, lot_id, code, serial in rows:
        trace = traces.setdefault(movement_id, LineTrace(lot_id, code, []))
        if serial is not None:
            trace.serials.append(serial)
    return traces


@dataclass(frozen=True)
class ExpiringRow:
    lot_id: int
    sku: str
    item_name: str
    unit: str
    code: str
    expiry: date
    location: str
    warehouse: str
    quantity: Decimal
    state: str
    days_left: int


EXPIRING_ORDER = (Lot.expiry, Item.sku, Lot.code, Location.code)


def _expiring_filters(
    *, until: date, since: date | None, warehouse: str | None, category_id: int | None, sku: str | None
) -> list[ColumnElement[bool]]:
    where = [Lot.expiry.is_not(None), Lot.expiry <= until]
    if since is not None:
        where.append(Lot.expiry >= since)
    if warehouse:
        where.append(Warehouse.code == warehouse)
    # The item filters ask about the lot's item, so that MariaDB checks them on each lot before
    # sorting the lots by expiry rather than after joining each one's levels (loaded machine,
    # 180 days, 6,000 lots: a category none of them is in 20 ms -> 6 ms; one SKU, read by
    # (item_id, code), 27-73 ms -> 2-3 ms).
    if category_id is not None:
        where.append(Lot.item_id.in_(select(Item.id).where(Item.category_id == category_id)))
    if sku:
        where.append(Lot.item_id == select(Item.id).where(Item.sku == sku).scalar_subquery())
    return where


def _after_expiring(cursor: str) -> ColumnElement[bool]:
    """Rows after the cursor's (expiry, SKU, lot code, location code) in EXPIRING_ORDER; the
    leading `expiry >= …` lets MariaDB seek the expiry index there. Raises InvalidInput."""
    values = decode_cursor(cursor)
    if len(values) != len(EXPIRING_ORDER) or not all(isinstance(v, str) for v in values):
        raise InvalidInput("cursor", "is not a valid page cursor")
    try:
        expiry = date.fromisoformat(values[0])
    except ValueError:
        raise InvalidInput("cursor", "is not a valid page cursor") from None
    last: list[Any] = [expiry, *values[1:]]
    # (expiry, sku, code, location) > last, spelled out from the last column inwards.
    after: ColumnElement[bool] = EXPIRING_ORDER[-1] > last[-1]
    for column, value in zip(EXPIRING_ORDER[-2::-1], last[-2::-1], strict=True):
        after = or_(column > value, and_(column == value, after))
    return and_(Lot.expiry >= expiry, after)


def _expiring_rows(where: list[ColumnElement[bool]], on: date, limit: int | None = None) -> list[ExpiringRow]:
    stmt = held_lots(
        Lot.id, Item.sku, Item.name, Item.unit, Lot.code, Lot.expiry, Location.code, Warehouse.code, StockLevel.quantity
    )
    return [
        ExpiringRow(
            lot_id,
            sku,
            name,
            unit,
            code,
            expiry,
            place,
            warehouse,
            quantity,
            "expired" if expiry < on else "expiring",
            (expiry - on).days,
        )
        for lot_id, sku, name, unit, code, expiry, place, warehouse, quantity in db.session.execute(
            stmt.where(*where).order_by(*EXPIRING_ORDER).limit(limit)
        )
    ]


def _narrowed(where: list[ColumnElement[bool]], limit: int) -> list[ColumnElement[bool]] | None:
    """`where` narrowed to about the first `limit` + 1 rows, found in expiry order alone (MariaDB
    joins lots in expiry order and stops there), so that the read sorted by the whole
    EXPIRING_ORDER sorts only those: sorting every lot in range (6,000 within 180 days) took
    50-60 ms on a loaded machine, this read and the sorted one 2 ms each. None when no row matches."""
    first = db.session.execute(
        held_lots(Lot.id, StockLevel.id, Lot.expiry).where(*where).order_by(Lot.expiry).limit(limit + 1)
    ).all()
    if not first:
        return None
    lot_ids, level_ids, expiries = zip(*first, strict=True)
    if len(first) <= limit:  # all of them: read those levels, not the lots in range a second time
        return [*where, Lot.id.in_(set(lot_ids)), StockLevel.id.in_(level_ids)]
    # More rows may expire on the last day read, and sort before its row: that whole day too.
    return [*where, Lot.expiry.between(expiries[0], expiries[-1])]


def list_expiring(
    *,
    days: int,
    include_expired: bool = True,
    warehouse: str | None = None,
    category_id: int | None = None,
    sku: str | None = None,
    on: date | None = None,
    after: str | None = None,
    limit: int | None = None,
) -> Page[ExpiringRow]:
    """Lots held somewhere that expire within `days` days (and, with `include_expired`, those
    already expired), per location, soonest first (then by SKU, lot and location); `limit` rows
    from the cursor `after` when given, else all of them. Raises InvalidInput for `days` out of
    range or a bad cursor."""
    if not 0 <= days <= MAX_DAYS:
        raise InvalidInput("days", f"must be a whole number from 0 to {MAX_DAYS}")
    on = on or today()
    where = _expiring_filters(
        until=on + timedelta(days=days),
        since=None if include_expired else on,
        warehouse=warehouse,
        category_id=category_id,
        sku=sku,
    )
    if after:
        where.append(_after_expiring(after))
    if limit is None:
        return Page(_expiring_rows(where, on), None)
    if (narrowed := _narrowed(where, limit)) is None:
        return Page([], None)
    rows = _expiring_rows(narrowed, on, limit + 1)
    if len(rows) <= limit:
        return Page(rows, None)
    last = rows[limit - 1]
    return Page(rows[:limit], encode_cursor(last.expiry.isoformat(), last.sku, last.code, last.location))
