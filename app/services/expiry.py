"""The daily expiry check (issue 17): a lot held somewhere that expires within its item's warning
days, or has expired with stock left, becomes an outbox event (outbox_events, `kind`
"lot_expiring" or "lot_expired"), delivered to WeCom and webhooks like low stock by the
notification worker. One event per lot and place a day, however often the check runs."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import Item, Lot, OutboxEvent, StockLevel
from app.observability import tracing
from app.services.traceability import expiry_state, held_lots, today
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


_KINDS = {"expired": "lot_expired", "expiring": "lot_expiring"}  # an event's kind by the lot's state
# What an expiry event records of the held level it is about, by the event's column.
_EVENT_FACTS = {
    "lot_id": Lot.id,
    "item_id": Lot.item_id,
    "location_id": StockLevel.location_id,
    "quantity": StockLevel.quantity,
    "reorder_point": Item.reorder_point,
}


def _due_events(on: date) -> list[dict[str, Any]]:
    """Today's expiry events, as rows of outbox_events: one for each held level of a lot that is
    expired or expiring (traceability.expiry_state) with no event for that lot and place today."""
    already = (
        select(OutboxEvent.id)
        .where(
            OutboxEvent.lot_id == StockLevel.lot_id,
            OutboxEvent.location_id == StockLevel.location_id,
            OutboxEvent.event_day == on,
        )
        .exists()
    )
    rows = db.session.execute(
        held_lots(*_EVENT_FACTS.values(), Lot.expiry, Item.expiry_warning_days)
        # No candidate is further away than the longest warning (ix_lots_expiry); the test per
        # item is expiry_state's.
        .where(Lot.expiry <= _horizon(on), ~already)
        .order_by(Lot.expiry, Lot.id, StockLevel.location_id)
    )
    due = []
    for *facts, expiry, warn in rows:
        kind = _KINDS.get(expiry_state(expiry, warn, on=on))
        if kind is not None:
            due.append(dict(zip(_EVENT_FACTS, facts, strict=True), kind=kind))
    return due


def _write_events(on: date) -> ExpiryCheck:
    due = _due_events(on)
    if due:
        # Status, attempts and times are the outbox's defaults (app.models.stock.OutboxEvent).
        db.session.execute(insert(OutboxEvent).values(event_day=on, traceparent=tracing.current_traceparent()), due)
    kinds = [event["kind"] for event in due]
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
    expiring = sum(1 for expiry, warn in candidates if expiry_state(expiry, warn, on=day) == "expiring")
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
