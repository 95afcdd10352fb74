"""Reconciliation: every stock level (per lot, for lot-tracked items) must equal what the ledger
says went in minus what went out, and the balance recorded on its latest ledger line; every
item's kept on-hand total must equal the sum of its stock levels. Reservations (issue 18): every
level's reserved part must equal what its open reservation lines hold, and lie within its
quantity; every item's reserved total must equal the sum of its levels' reserved parts.

The audit is exact and harmless. It reads one consistent snapshot on its own connection (InnoDB:
a consistent-snapshot, read-only REPEATABLE READ transaction; SQLite in WAL mode: a deferred read
transaction), so a movement committing while it runs is either wholly seen or wholly unseen, and
it takes no lock a writer could wait for. The database computes the sums and last balances and
returns only the pairs that disagree; each of those is checked again in a fresh snapshot before
it is reported.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Select, and_, case, func, literal, null, or_, select, union_all
from sqlalchemy.engine import Connection
from sqlalchemy.orm import aliased

from app.extensions import db
from app.models import Item, Location, Lot, Movement, Reservation, ReservationLine, StockLevel
from app.models.reservation import OPEN_STATUSES

# Quantities have three decimals; SQLite sums NUMERIC columns as floats, so compare rounded.
_PLACES = 3
_EXACT = Decimal("0.001")


@dataclass(frozen=True)
class Mismatch:
    sku: str
    location: str
    on_hand: Decimal
    from_ledger: Decimal
    last_balance: Decimal | None
    lot: str | None = None  # the lot's code, for a lot-tracked item's level


@dataclass(frozen=True)
class TotalMismatch:
    sku: str
    on_hand: Decimal
    from_levels: Decimal


@dataclass(frozen=True)
class ReservedMismatch:
    """A level whose `reserved` is not what its open lines hold (`expected`), or is more than its
    `quantity`; or, with no location, an item whose reserved total is not its levels' sum."""

    sku: str
    location: str | None
    reserved: Decimal
    expected: Decimal
    quantity: Decimal | None = None
    lot: str | None = None


class LedgerReport(NamedTuple):
    """Every finding of one audit, to unpack: `mismatches, totals, reserved = audit_ledger()`."""

    mismatches: list[Mismatch]
    totals: list[TotalMismatch]
    reservations: list[ReservedMismatch]


@dataclass(frozen=True)
class _Suspect:
    item_id: int
    location_id: int
    lot_key: int
    on_hand: Decimal
    from_ledger: Decimal
    last_balance: Decimal | None


@contextmanager
def snapshot() -> Iterator[Connection]:
    """A read-only connection that sees one consistent state of the database and blocks no writer."""
    with db.engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            # The engine runs READ COMMITTED, where every statement gets its own read view; the
            # snapshot needs REPEATABLE READ for this one transaction.
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        # SQLite: the engine's "begin" hook opens a deferred BEGIN (no write option is set), and
        # under WAL the first SELECT fixes the snapshot while writers go on committing.
        try:
            yield conn
        finally:
            conn.rollback()


def _number(value: object) -> Decimal:
    return Decimal(str(value)).quantize(_EXACT)


_Place = tuple[int, int, int]  # item id, location id, lot key (the lot's id, 0 without a lot)


def _suspects_query(place: _Place | None = None) -> Select[tuple[int, int, int, object, object, object]]:
    """One row per (item, location, lot) whose level, ledger sum and last recorded balance
    disagree. A ledger line moves one lot (or none: lot key 0), as a level holds one."""
    moved_lot = func.coalesce(Movement.lot_id, 0)

    def only(item: Any, location: Any, lot: Any) -> list[ColumnElement[bool]]:
        return [] if place is None else [item == place[0], location == place[1], lot == place[2]]

    zero = literal(0, Movement.quantity.type)
    branches: list[Select[Any]] = [
        select(
            Movement.item_id.label("item_id"),
            Movement.to_location_id.label("location_id"),
            moved_lot.label("lot_key"),
            Movement.quantity.label("delta"),
            zero.label("level"),
            Movement.id.label("movement_id"),
        ).where(Movement.to_location_id.is_not(None), *only(Movement.item_id, Movement.to_location_id, moved_lot)),
        select(Movement.item_id, Movement.from_location_id, moved_lot, -Movement.quantity, zero, Movement.id).where(
            Movement.from_location_id.is_not(None), *only(Movement.item_id, Movement.from_location_id, moved_lot)
        ),
        select(StockLevel.item_id, StockLevel.location_id, StockLevel.lot_key, zero, StockLevel.quantity, null()).where(
            *only(StockLevel.item_id, StockLevel.location_id, StockLevel.lot_key)
        ),
    ]
    flows = union_all(*branches).subquery()
    pairs = (
        select(
            flows.c.item_id,
            flows.c.location_id,
            flows.c.lot_key,
            func.sum(flows.c.level).label("on_hand"),
            func.sum(flows.c.delta).label("from_ledger"),
            func.max(flows.c.movement_id).label("last_id"),
        )
        .group_by(flows.c.item_id, flows.c.location_id, flows.c.lot_key)
        .subquery()
    )
    last = aliased(Movement)
    balance = case((last.to_location_id == pairs.c.location_id, last.to_balance), else_=last.from_balance)
    return (
        select(pairs.c.item_id, pairs.c.location_id, pairs.c.lot_key, pairs.c.on_hand, pairs.c.from_ledger, balance)
        .outerjoin(last, last.id == pairs.c.last_id)
        .where(
            or_(
                func.round(pairs.c.on_hand - pairs.c.from_ledger, _PLACES) != 0,
                and_(last.id.is_not(None), func.round(balance - pairs.c.on_hand, _PLACES) != 0),
            )
        )
        .order_by(pairs.c.item_id, pairs.c.location_id, pairs.c.lot_key)
    )


def _suspects(conn: Connection, place: _Place | None = None) -> list[_Suspect]:
    return [
        _Suspect(item_id, location_id, lot, _number(on_hand), _number(ledger), None if last is None else _number(last))
        for item_id, location_id, lot, on_hand, ledger, last in conn.execute(_suspects_query(place))
    ]


def _unequal_totals(conn: Connection, kept: Any, summed: Any) -> list[tuple[str, Decimal, Decimal]]:
    """(SKU, kept total, sum over its levels) of each item whose `kept` column (items.on_hand,
    items.reserved) is not the sum of its levels' `summed` column."""
    levels = select(StockLevel.item_id, func.sum(summed).label("units")).group_by(StockLevel.item_id).subquery()
    units = func.coalesce(levels.c.units, 0)
    rows = conn.execute(
        select(Item.sku, kept, units)
        .outerjoin(levels, levels.c.item_id == Item.id)
        .where(func.round(kept - units, _PLACES) != 0)
        .order_by(Item.sku)
    )
    return [(sku, _number(total), _number(from_levels)) for sku, total, from_levels in rows]


def _totals(conn: Connection) -> list[TotalMismatch]:
    return [TotalMismatch(*row) for row in _unequal_totals(conn, Item.on_hand, StockLevel.quantity)]


def _reserved(conn: Connection) -> list[ReservedMismatch]:
    held = (
        select(
            ReservationLine.item_id,
            ReservationLine.location_id,
            func.coalesce(ReservationLine.lot_id, 0).label("lot_key"),
            func.sum(ReservationLine.quantity - ReservationLine.picked - ReservationLine.released).label("units"),
        )
        .join(Reservation, Reservation.id == ReservationLine.reservation_id)
        .where(Reservation.status.in_(OPEN_STATUSES))
        .group_by(ReservationLine.item_id, ReservationLine.location_id, func.coalesce(ReservationLine.lot_id, 0))
        .subquery()
    )
    units = func.coalesce(held.c.units, 0)
    levels = conn.execute(
        select(Item.sku, Location.code, StockLevel.reserved, units, StockLevel.quantity, Lot.code)
        .select_from(StockLevel)
        .join(Item, Item.id == StockLevel.item_id)
        .join(Location, Location.id == StockLevel.location_id)
        .outerjoin(Lot, Lot.id == StockLevel.lot_id)
        .outerjoin(
            held,
            and_(
                held.c.item_id == StockLevel.item_id,
                held.c.location_id == StockLevel.location_id,
                held.c.lot_key == StockLevel.lot_key,
            ),
        )
        .where(
            or_(
                func.round(StockLevel.reserved - units, _PLACES) != 0,
                StockLevel.reserved > StockLevel.quantity,
                StockLevel.reserved < 0,
            )
        )
        .order_by(Item.sku, Location.code, StockLevel.lot_key)
    )
    found = [
        ReservedMismatch(sku, code, _number(reserved), _number(expected), _number(quantity), lot)
        for sku, code, reserved, expected, quantity, lot in levels
    ]
    # Lines held at a place that has no stock level at all.
    orphans = conn.execute(
        select(Item.sku, Location.code, held.c.units)
        .select_from(held)
        .join(Item, Item.id == held.c.item_id)
        .join(Location, Location.id == held.c.location_id)
        .outerjoin(
            StockLevel,
            and_(
                StockLevel.item_id == held.c.item_id,
                StockLevel.location_id == held.c.location_id,
                StockLevel.lot_key == held.c.lot_key,
            ),
        )
        .where(StockLevel.id.is_(None), held.c.units != 0)
    )
    found += [ReservedMismatch(sku, code, Decimal(0), _number(expected)) for sku, code, expected in orphans]
    items = _unequal_totals(conn, Item.reserved, StockLevel.reserved)
    return found + [ReservedMismatch(sku, None, kept, summed) for sku, kept, summed in items]


def _named(conn: Connection, suspects: list[_Suspect]) -> list[Mismatch]:
    if not suspects:
        return []
    item_ids, location_ids = {s.item_id for s in suspects}, {s.location_id for s in suspects}
    skus = dict(conn.execute(select(Item.id, Item.sku).where(Item.id.in_(item_ids))).tuples().all())
    codes = dict(conn.execute(select(Location.id, Location.code).where(Location.id.in_(location_ids))).tuples().all())
    lot_ids = {s.lot_key for s in suspects if s.lot_key}
    lots = dict(conn.execute(select(Lot.id, Lot.code).where(Lot.id.in_(lot_ids))).tuples().all()) if lot_ids else {}
    return sorted(
        (
            Mismatch(
                skus[s.item_id], codes[s.location_id], s.on_hand, s.from_ledger, s.last_balance, lots.get(s.lot_key)
            )
            for s in suspects
        ),
        key=lambda m: (m.sku, m.location, m.lot or ""),
    )


def _confirmed(suspects: list[_Suspect]) -> list[Mismatch]:
    """The suspects that still disagree, read again pair by pair in a fresh snapshot: what one
    audit reports, a second look has seen too."""
    if not suspects:
        return []
    with snapshot() as conn:
        return _named(
            conn, [again for s in suspects for again in _suspects(conn, (s.item_id, s.location_id, s.lot_key))]
        )


def find_ledger_mismatches() -> list[Mismatch]:
    """Every stock level that the ledger does not explain (an empty list when all reconcile)."""
    with snapshot() as conn:
        suspects = _suspects(conn)
    return _confirmed(suspects)


def find_total_mismatches() -> list[TotalMismatch]:
    """Items whose on-hand total (items.on_hand, kept by triggers) is not the sum of their stock
    levels, by SKU (an empty list when all agree)."""
    with snapshot() as conn:
        return _totals(conn)


def audit_ledger() -> LedgerReport:
    """Every check from one snapshot, ledger suspects confirmed in a second one."""
    with snapshot() as conn:
        suspects = _suspects(conn)
        totals = _totals(conn)
        reserved = _reserved(conn)
    return LedgerReport(mismatches=_confirmed(suspects), totals=totals, reservations=reserved)
