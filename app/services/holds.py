"""Reservation holds as stock movements meet them (issue 18): a stocktake that finds less than
reservations hold at a level cuts them back (the physical count wins), and the outbox rows that
tell webhooks about a reservation.

It sits below both the stock service (stock.adjust_stock and the serial count call cut_back
inside their own transaction) and the reservation service (which writes every other event), so
neither has to import the other.
"""

from __future__ import annotations

from decimal import Decimal
from typing import cast

from sqlalchemy import Table, insert, select, update

from app.extensions import db
from app.models import Reservation, ReservationLine
from app.models.reservation import OPEN_STATUSES
from app.models.stock import OutboxEvent
from app.models.types import utcnow
from app.observability import tracing
from app.services.stock_core import ZERO, Level, execute, store_held

_outbox = cast(Table, OutboxEvent.__table__)
#: A stocktake that cut a line back writes this as the line's short reason.
COUNT_REASON = "count"


def reservation_event(kind: str, reservation_id: int, place: tuple[int, int] | None, quantity: Decimal) -> None:
    """An outbox row for webhooks. It names the reservation, and the item and place of its first
    line, which route it to that warehouse's subscribers like every other event."""
    if place is None:
        return
    about = dict(kind=kind, reservation_id=reservation_id, item_id=place[0], location_id=place[1])
    # Status, attempts and times are the outbox's defaults (app.models.stock.OutboxEvent).
    trace = tracing.current_traceparent()
    execute(insert(_outbox).values(**about, quantity=quantity, reorder_point=ZERO, traceparent=trace))


def cut_back(*, item_id: int, location_id: int, level: Level, counted: Decimal, user: str) -> None:
    """A stocktake found `counted`, less than the `level` (locked by the caller) holds reserved:
    the physical count wins. The open lines held there give back the difference, newest first,
    each recorded with the short reason COUNT_REASON, and each reservation cut gets an outbox
    event. Runs inside the stocktake's transaction (stock.adjust_stock)."""
    excess = level.reserved - counted
    lines = db.session.scalars(
        select(ReservationLine)
        .join(Reservation, Reservation.id == ReservationLine.reservation_id)
        .where(
            ReservationLine.item_id == item_id,
            ReservationLine.location_id == location_id,
            (ReservationLine.lot_id == level.lot_id) if level.lot_id else ReservationLine.lot_id.is_(None),
            Reservation.status.in_(OPEN_STATUSES),
        )
        .order_by(ReservationLine.reservation_id.desc(), ReservationLine.id.desc())
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    cut: dict[int, Decimal] = {}
    for line in lines:
        part = min(excess, line.outstanding)
        if part <= 0:
            continue
        line.released += part
        line.short_reason = COUNT_REASON
        cut[line.reservation_id] = cut.get(line.reservation_id, ZERO) + part
        excess -= part
    db.session.flush()
    store_held(level, reserved=counted)
    for reservation_id, amount in cut.items():
        db.session.execute(update(Reservation).where(Reservation.id == reservation_id).values(updated_at=utcnow()))
        reservation_event("reservation_reduced", reservation_id, (item_id, location_id), amount)
