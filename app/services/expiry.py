"""The daily expiry check (issue 17): a lot held somewhere that expires within its item's warning
days, or has expired with stock left, becomes an outbox event (low_stock_events, `kind`
"lot_expiring" or "lot_expired"), delivered to WeCom and webhooks like low stock by the
notification worker. One event per lot and place a day, however often the check runs."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import Item, Lot, LowStockEvent, StockLevel
from app.models.types import utcnow
from app.observability import tracing
from app.services.traceability import today
from app.services.transaction import run_in_transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExpiryCheck:
    day: date
    expiring: int  # new "lot_expiring" events written
    expired: int  # new "lot_expired" events written


def _horizon(on: date) -> date:
    """The latest expiry any item warns about today."""
    longest = db.session.scalar(select(func.max(Item.expiry_warning_days))) or 0
    return on + timedelta(days=longest)


def _due_levels(on: date) -> list[tuple[int, int, int, str, Decimal, Decimal]]:
    """(lot, item, location, kind, quantity, reorder point) of each held level of a lot that is
    expired, or expires within its item's warning days, with no event for that lot and place today."""
    already = (
        select(LowStockEvent.id)
        .where(
            LowStockEvent.lot_id == StockLevel.lot_id,
            LowStockEvent.location_id == StockLevel.location_id,
            LowStockEvent.event_day == on,
        )
        .exists()
    )
    rows = db.session.execute(
        select(
            Lot.id,
            Lot.item_id,
            StockLevel.location_id,
            Lot.expiry,
            Item.expiry_warning_days,
            StockLevel.quantity,
            Item.reorder_point,
        )
        .join(StockLevel, StockLevel.lot_id == Lot.id)
        .join(Item, Item.id == Lot.item_id)
        .where(
            StockLevel.quantity > 0,
            # No candidate is further away than the longest warning (ix_lots_expiry); the test per
            # item is below.
            Lot.expiry <= _horizon(on),
            ~already,
        )
        .order_by(Lot.expiry, Lot.id, StockLevel.location_id)
    )
    due = []
    for lot_id, item_id, location_id, expiry, warn, quantity, reorder_point in rows:
        if expiry < on:
            due.append((lot_id, item_id, location_id, "lot_expired", quantity, reorder_point))
        elif warn is not None and expiry <= on + timedelta(days=warn):
            due.append((lot_id, item_id, location_id, "lot_expiring", quantity, reorder_point))
    return due


def _write_events(on: date) -> ExpiryCheck:
    due = _due_levels(on)
    now = utcnow()
    if due:
        db.session.execute(
            insert(LowStockEvent),
            [
                dict(
                    kind=kind,
                    item_id=item_id,
                    location_id=location_id,
                    lot_id=lot_id,
                    event_day=on,
                    quantity=quantity,
                    reorder_point=reorder_point,
                    created_at=now,
                    next_attempt_at=now,
                    status="pending",
                    attempts=0,
                    traceparent=tracing.current_traceparent(),
                )
                for lot_id, item_id, location_id, kind, quantity, reorder_point in due
            ],
        )
    kinds = [row[3] for row in due]
    return ExpiryCheck(on, kinds.count("lot_expiring"), kinds.count("lot_expired"))


def check_expiry(*, on: date | None = None) -> ExpiryCheck:
    """Write today's expiry events (see the module docstring). Two checks running at once: the
    one that loses the unique key runs again and finds the other's events."""
    day = on or today()
    try:
        result = run_in_transaction(lambda: _write_events(day), name="check_expiry")
    except IntegrityError:
        result = run_in_transaction(lambda: _write_events(day), name="check_expiry")
    log.info("expiry check", extra={"day": day.isoformat(), "expiring": result.expiring, "expired": result.expired})
    return result


def count_lots_by_state(*, on: date | None = None) -> dict[str, int]:
    """How many lots with stock are expired, and expiring within their item's warning days (the
    gauge inventory_lots_expiring{state})."""
    day = on or today()
    held = select(StockLevel.lot_id).where(StockLevel.quantity > 0, StockLevel.lot_id == Lot.id).exists()
    expired = db.session.scalar(select(func.count(Lot.id)).where(Lot.expiry < day, held)) or 0
    candidates = db.session.execute(
        select(Lot.expiry, Item.expiry_warning_days)
        .join(Item, Item.id == Lot.item_id)
        .where(Lot.expiry >= day, Lot.expiry <= _horizon(day), Item.expiry_warning_days.is_not(None), held)
    )
    expiring = sum(1 for expiry, warn in candidates if expiry <= day + timedelta(days=warn))
    return {"expired": expired, "expiring": expiring}


class DailyCheck:
    """The notification worker's expiry check: on its first round, then on the first round of
    each new day (a restarted worker checks again; the events stay one per lot, place and day)."""

    def __init__(self) -> None:
        self.checked_on: date | None = None

    def run_if_due(self) -> ExpiryCheck | None:
        if self.checked_on == today():
            return None
        result = check_expiry()
        self.checked_on = result.day
        return result
