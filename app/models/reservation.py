"""Reservations: stock promised to an order (its ERP reference), line by line, until picked.

A line holds stock at one stock level (item, location, lot): its outstanding quantity
(`quantity - picked - released`) is part of that level's `reserved` while the reservation is open
or partly picked. app.services.reservations is the only writer; `flask check-ledger` verifies that
every level's `reserved` is the sum of its lines' outstanding quantities.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.types import BigId, Quantity, UtcDateTime, one_of, utcnow

RESERVATION_STATUSES = ("open", "partly_picked", "picked", "cancelled", "expired")
#: The statuses whose lines still hold stock.
OPEN_STATUSES = ("open", "partly_picked")


class Reservation(Model):
    __tablename__ = "reservations"
    __table_args__ = (
        one_of("status", RESERVATION_STATUSES),
        # A key is its caller's own, as for movements: the same key from two callers is two requests.
        UniqueConstraint("idempotency_scope", "idempotency_key"),
        Index("ix_reservations_reference_id", "reference", "id"),
        Index("ix_reservations_status_id", "status", "id"),
        # The daily expiry finds open reservations past their time without reading the others.
        Index("ix_reservations_status_expires_at", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The order it is for: the ERP's order number.
    reference: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="open")
    # Who made it: "user:<username>" (a page) or "token:<id>" (the API), and the acting username.
    created_by: Mapped[str] = mapped_column(String(80))
    username: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    idempotency_scope: Mapped[str | None] = mapped_column(String(80))
    idempotency_key: Mapped[str | None] = mapped_column(String(160))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # When and by whom it stopped holding stock (picked, cancelled or expired).
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(64))


class ReservationLine(Model):
    """What one line holds at one stock level. A request line without a location (or, for a
    lot-tracked item, without a lot) may become several lines, one per level it was reserved at;
    `request_line` numbers the request's line it came from (1-based)."""

    __tablename__ = "reservation_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("picked >= 0 AND released >= 0", name="picked_released_not_negative"),
        CheckConstraint("picked + released <= quantity", name="within_quantity"),
        Index("ix_reservation_lines_reservation_id_id", "reservation_id", "id"),
        # Finding the open lines at a level: check-ledger and a stocktake that cuts reservations.
        Index("ix_reservation_lines_item_id_location_id", "item_id", "location_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reservation_id: Mapped[int] = mapped_column(ForeignKey("reservations.id"))
    request_line: Mapped[int] = mapped_column()
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("lots.id"))
    # Reserved at first; of it, `picked` was issued and `released` given back (cancel, expiry, a
    # short pick released, a stocktake that found less). The rest is outstanding.
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    picked: Mapped[Decimal] = mapped_column(Quantity, default=Decimal(0))
    released: Mapped[Decimal] = mapped_column(Quantity, default=Decimal(0))
    # Why less was picked than reserved ("not_found", "damaged", a person's words), or that a
    # stocktake cut it back ("count").
    short_reason: Mapped[str | None] = mapped_column(String(200))
    picked_by: Mapped[str | None] = mapped_column(String(64))
    picked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    @property
    def outstanding(self) -> Decimal:
        return self.quantity - self.picked - self.released


class ReservationMovement(Model):
    """Which reservation line a ledger line issued, so that reversing it can restore the line."""

    __tablename__ = "reservation_movements"

    movement_id: Mapped[int] = mapped_column(BigId, ForeignKey("movements.id"), primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("reservation_lines.id"), index=True)
