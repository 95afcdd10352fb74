"""Dashboard and chart figures: totals, movements per day, the most-moved items, and an item's
on-hand balance over time. Each figure is one grouped query, whatever the size of the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, literal_column, select

from app.extensions import db
from app.models import Item, Location, Movement, Reservation, ReservationLine, StockLevel, Warehouse
from app.models.reservation import OPEN_STATUSES
from app.models.types import utcnow


@dataclass(frozen=True)
class WarehouseStock:
    """What a warehouse holds, in counts that add up whatever the units (pieces, metres and
    kilograms summed together mean nothing)."""

    code: str
    name: str
    skus: int
    locations: int


@dataclass(frozen=True)
class Totals:
    items: int
    stock_by_warehouse: list[WarehouseStock]
    low_stock_items: int
    movements_today: int


@dataclass(frozen=True)
class MovedItem:
    sku: str
    name: str
    movements: int


def count_low_stock_items() -> int:
    """Active items with a reorder point whose total on hand is at or below it."""
    low = db.session.scalar(
        select(func.count()).select_from(Item).where(Item.is_low == True, Item.archived == False)  # noqa: E712
    )
    return int(low or 0)


def totals(*, today_start: datetime) -> Totals:
    """Active items, per warehouse the items held and the locations not empty, items at or below
    their reorder point (of those with a reorder point), and movements since `today_start`."""
    items = db.session.scalar(select(func.count()).select_from(Item).where(Item.archived.is_(False))) or 0
    held = (
        select(StockLevel.item_id, StockLevel.location_id, Location.warehouse_id)
        .join(Location, Location.id == StockLevel.location_id)
        .where(StockLevel.quantity > 0)
        .subquery()
    )
    stock = db.session.execute(
        select(
            Warehouse.code,
            Warehouse.name,
            func.count(func.distinct(held.c.item_id)),
            func.count(func.distinct(held.c.location_id)),
        )
        .select_from(Warehouse)
        .outerjoin(held, held.c.warehouse_id == Warehouse.id)
        .group_by(Warehouse.id, Warehouse.code, Warehouse.name)
        .order_by(Warehouse.code)
    )
    low = count_low_stock_items()
    today = db.session.scalar(select(func.count()).select_from(Movement).where(Movement.created_at >= today_start))
    return Totals(
        items=int(items),
        stock_by_warehouse=[WarehouseStock(code, name, int(skus), int(where)) for code, name, skus, where in stock],
        low_stock_items=low,
        movements_today=int(today or 0),
    )


def _local_day(offset_minutes: int) -> Any:
    """The calendar day of created_at in a fixed UTC offset, as 'YYYY-MM-DD' text or a date."""
    minutes = int(offset_minutes)
    if db.session.get_bind().dialect.name == "sqlite":
        return func.date(Movement.created_at, f"{minutes:+d} minutes")
    return func.date(func.date_add(Movement.created_at, literal_column(f"INTERVAL {minutes} MINUTE")))


def movements_per_day(*, since: datetime, offset_minutes: int) -> dict[str, dict[str, int]]:
    """{'2026-11-25': {'receive': 3, ...}, ...} for movements since `since`, by local day."""
    day = _local_day(offset_minutes).label("day")
    rows = db.session.execute(
        select(day, Movement.kind, func.count()).where(Movement.created_at >= since).group_by(day, Movement.kind)
    )
    found: dict[str, dict[str, int]] = {}
    for when, kind, count in rows:
        found.setdefault(str(when), {})[kind] = int(count)
    return found


def most_moved(*, since: datetime, limit: int = 10) -> list[MovedItem]:
    counts = (
        select(Movement.item_id, func.count().label("n"))
        .where(Movement.created_at >= since)
        .group_by(Movement.item_id)
        .order_by(func.count().desc(), Movement.item_id)
        .limit(limit)
        .subquery()
    )
    rows = db.session.execute(
        select(Item.sku, Item.name, counts.c.n).join(counts, counts.c.item_id == Item.id).order_by(counts.c.n.desc())
    )
    return [MovedItem(sku, name, int(n)) for sku, name, n in rows]


def item_balance_history(*, item_id: int, limit: int = 200) -> list[tuple[datetime, Decimal]]:
    """The item's total on hand (all locations) after each of its last `limit` movements, oldest
    first, starting with the balance before the earliest of them and ending now. Worked backwards
    from today's total, so it costs two statements."""
    total = Decimal(
        db.session.scalar(select(func.coalesce(func.sum(StockLevel.quantity), 0)).where(StockLevel.item_id == item_id))
        or 0
    )
    rows = db.session.execute(
        select(Movement.created_at, Movement.quantity, Movement.from_location_id, Movement.to_location_id)
        .where(Movement.item_id == item_id)
        .order_by(Movement.id.desc())
        .limit(limit)
    ).all()
    points = [(utcnow(), total)]
    running = total
    for created_at, quantity, source, target in rows:
        points.append((created_at, running))
        running -= (quantity if target is not None else 0) - (quantity if source is not None else 0)
    if rows:
        points.append((rows[-1][0], running))
    points.reverse()
    return points


def ledger_size() -> int:
    """Roughly how many ledger lines there are (the highest id): one index lookup."""
    return int(db.session.scalar(select(func.max(Movement.id))) or 0)


@dataclass(frozen=True)
class WaitingReservations:
    """Open reservations (issue 18), their lines still to pick and when the oldest was made."""

    reservations: int
    lines: int
    oldest: datetime | None


def reservations_waiting() -> WaitingReservations:
    """Reservations holding stock (open or partly picked), their lines with something still to
    pick, and the creation time of the oldest of them: two grouped statements."""
    count, oldest = db.session.execute(
        select(func.count(), func.min(Reservation.created_at)).where(Reservation.status.in_(OPEN_STATUSES))
    ).one()
    outstanding = ReservationLine.quantity - ReservationLine.picked - ReservationLine.released
    lines = db.session.scalar(
        select(func.count())
        .select_from(ReservationLine)
        .join(Reservation, Reservation.id == ReservationLine.reservation_id)
        .where(Reservation.status.in_(OPEN_STATUSES), outstanding > 0)
    )
    return WaitingReservations(int(count or 0), int(lines or 0), oldest)
