"""Stock levels (item x location) and the append-only movement ledger, plus the notification outbox."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import cast

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.item import Item
from app.models.location import Location
from app.models.types import BigId, Quantity, UtcDateTime, one_of, utcnow

MOVEMENT_KINDS = ("receive", "issue", "transfer", "adjust", "reversal")
# Why the system itself wrote a line, as a code: the ledger never changes, so a sentence in the
# writer's language would stay in that language forever. Pages translate the code when shown.
REASON_CODES = ("scan", "scan_undo")


class Lot(Model):
    """A batch of one item, by the supplier's (or our) lot code, with its expiry date if it has one.

    Issues without a named lot take first-expired-first-out: earliest `expiry`, then oldest
    `received_at`; lots without an expiry last."""

    __tablename__ = "lots"
    __table_args__ = (
        UniqueConstraint("item_id", "code", name="uq_lots_item_code"),
        Index("ix_lots_expiry", "expiry"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    code: Mapped[str] = mapped_column(String(64))
    expiry: Mapped[date | None] = mapped_column()
    # When the lot was first received here.
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    item: Mapped[Item] = relationship(lazy="raise_on_sql")


class StockLevel(Model):
    """The quantity of an item at a location, and for a lot-tracked item of one lot there.

    `lot_key` is `lot_id`, or 0 for stock without a lot (untracked and serial-tracked items): a
    unique index never sees two NULLs as equal, so the level's uniqueness is kept on `lot_key`.
    The stock service writes both; the database checks that they agree."""

    __tablename__ = "stock_levels"
    __table_args__ = (
        # The database itself refuses negative stock, whatever code or hand-written SQL tries.
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        CheckConstraint("lot_key = COALESCE(lot_id, 0)", name="lot_key_is_lot"),
        # What open reservations hold here (issue 18): never negative, never more than is here.
        CheckConstraint("reserved >= 0 AND reserved <= quantity", name="reserved_within_quantity"),
        UniqueConstraint("item_id", "location_id", "lot_key", name="uq_stock_levels_item_location_lot"),
        Index("ix_stock_levels_location_id_item_id", "location_id", "item_id"),
        Index("ix_stock_levels_lot_id", "lot_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("lots.id"))
    lot_key: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    quantity: Mapped[Decimal] = mapped_column(Quantity, default=Decimal(0))
    # The sum of the outstanding quantities of the open reservation lines at this level (kept by
    # app.services.reservations). Available = quantity - reserved: all a plain issue may take.
    reserved: Mapped[Decimal] = mapped_column(Quantity, default=Decimal(0), server_default=text("0"))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    item: Mapped[Item] = relationship(lazy="raise_on_sql")
    location: Mapped[Location] = relationship(lazy="raise_on_sql")


class Movement(Model):
    """One line of the ledger. Never updated or deleted: a correction is a reversal.

    `quantity` is always positive; the direction is given by the locations: stock leaves
    `from_location` and arrives at `to_location`. `from_balance`/`to_balance` are the stock levels
    right after this movement, so every on-hand quantity can be traced to the line that produced it.
    """

    __tablename__ = "movements"
    __table_args__ = (
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        one_of("kind", MOVEMENT_KINDS),
        CheckConstraint("from_location_id IS NOT NULL OR to_location_id IS NOT NULL", name="has_a_location"),
        Index("ix_movements_item_id_id", "item_id", "id"),
        Index("ix_movements_from_location_id_id", "from_location_id", "id"),
        Index("ix_movements_to_location_id_id", "to_location_id", "id"),
        Index("ix_movements_kind_id", "kind", "id"),
        Index("ix_movements_lot_id_id", "lot_id", "id"),
        # A key is the caller's own: the same key from two callers is two requests (issue 14).
        UniqueConstraint("idempotency_scope", "idempotency_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    from_location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"))
    to_location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"))
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    from_balance: Mapped[Decimal | None] = mapped_column(Quantity)
    to_balance: Mapped[Decimal | None] = mapped_column(Quantity)
    reference: Mapped[str | None] = mapped_column(String(100), index=True)
    note: Mapped[str | None] = mapped_column(String(500))
    reason_code: Mapped[str | None] = mapped_column(String(32))
    username: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    # Who the key belongs to: "user:<username>" for pages, "token:<id>" for the API.
    idempotency_scope: Mapped[str | None] = mapped_column(String(80))
    idempotency_key: Mapped[str | None] = mapped_column(String(160))
    # SHA-256 of the canonical request, so a reused key with a different request is a conflict.
    request_hash: Mapped[str | None] = mapped_column(String(64))
    # A reversal points at what it reverses; unique, so the database refuses a second reversal.
    reverses_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("movements.id"), unique=True)
    # The lot this line moved (lot-tracked items); one line moves one lot, so a FEFO issue over
    # several lots writes several lines. The serials a line moved are in movement_serials.
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("lots.id"))

    item: Mapped[Item] = relationship(lazy="raise_on_sql")
    from_location: Mapped[Location | None] = relationship(foreign_keys=[from_location_id], lazy="raise_on_sql")
    to_location: Mapped[Location | None] = relationship(foreign_keys=[to_location_id], lazy="raise_on_sql")

    #: Not stored: the sides ("from", "to") that were at a place an open count covers when the
    #: stock service wrote (or replayed) this movement, read inside its transaction. A counter is
    #: not shown those balances (the count would not be blind).
    counted_sides = frozenset[str]()
    #: Not stored: every ledger line of the request that returned this movement (its first), when
    #: it wrote several: an issue over several lots writes one line per lot. Empty for one line.
    lines = cast("tuple[Movement, ...]", ())
    #: Not stored: the code of `lot_id`, when the stock service that wrote the line knew it (a
    #: FEFO issue reads it with the locked levels), so its answer need not read it again.
    lot_code = cast("str | None", None)


class StockOutIntent(Model):
    """A plain stock-out waiting for whichever request holds its stock level's lock to apply it
    (app/services/combining.py, issue 19). Committed on its own before the lock is asked for;
    `status` says what became of it: 'pending', 'done' (its ledger line is `movement_id`), 'short'
    (refused, `available` was left) or 'conflict' (its idempotency key was used for another
    request). No foreign keys: checking one would wait on the item row a running batch holds."""

    __tablename__ = "stock_out_intents"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'done', 'short', 'conflict')", name="status_known"),
        Index("ix_stock_out_intents_place_status_id", "item_id", "location_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    item_id: Mapped[int]
    location_id: Mapped[int]
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    reference: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(String(500))
    reason_code: Mapped[str | None] = mapped_column(String(32))
    username: Mapped[str] = mapped_column(String(64))
    idempotency_scope: Mapped[str | None] = mapped_column(String(80))
    idempotency_key: Mapped[str | None] = mapped_column(String(160))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    movement_id: Mapped[int | None] = mapped_column(BigId)
    available: Mapped[Decimal | None] = mapped_column(Quantity)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


SERIAL_STATES = ("in_stock", "issued")


class Serial(Model):
    """One unit of a serial-tracked item: where it is (`location_id`, while "in_stock") or that
    it has left ("issued", no location). The serial's history is its movement_serials."""

    __tablename__ = "serials"
    __table_args__ = (
        UniqueConstraint("item_id", "serial", name="uq_serials_item_serial"),
        Index("ix_serials_item_id_location_id", "item_id", "location_id"),
        CheckConstraint("status IN ('in_stock', 'issued')", name="status_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    serial: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="in_stock")
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"), index=True)
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("lots.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class MovementSerial(Model):
    """Which serials a ledger line moved (a receipt, issue, transfer or its reversal)."""

    __tablename__ = "movement_serials"
    __table_args__ = (Index("ix_movement_serials_serial_id_movement_id", "serial_id", "movement_id"),)

    movement_id: Mapped[int] = mapped_column(BigId, ForeignKey("movements.id"), primary_key=True)
    serial_id: Mapped[int] = mapped_column(ForeignKey("serials.id"), primary_key=True)


# What an outbox event tells: an item at or below its reorder point at a place, a lot there that
# expires within the item's warning days, or one already expired with stock left.
# A reservation event (issue 18) says a reservation was created, picked, cancelled, expired or cut
# back by a stocktake; it names the reservation and, for routing, the place of its first line.
RESERVATION_EVENT_KINDS = (
    "reservation_created",
    "reservation_picked",
    "reservation_cancelled",
    "reservation_expired",
    "reservation_reduced",
)
OUTBOX_KINDS = ("low_stock", "lot_expiring", "lot_expired", *RESERVATION_EVENT_KINDS)


class OutboxEvent(Model):
    """Outbox row written in the same transaction as the movement that crossed the reorder point,
    or by the daily expiry check for a lot expiring or expired at a place (`kind`).

    Delivery (WeCom, webhooks) reads these later; a rolled-back issue leaves no event behind.
    """

    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_events_status_next_attempt_at", "status", "next_attempt_at"),
        # The daily expiry check writes at most one event per lot and place a day.
        UniqueConstraint("lot_id", "location_id", "event_day", name="uq_outbox_events_lot_location_day"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # One of OUTBOX_KINDS: the stock service writes "low_stock", the expiry check the lot kinds.
    kind: Mapped[str] = mapped_column(String(32), default="low_stock", server_default=text("'low_stock'"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    # The movement that crossed the reorder point; none for an expiry event.
    movement_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("movements.id"))
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("lots.id"))
    # The day the expiry check wrote the event (its de-duplication key with the lot and place).
    event_day: Mapped[date | None] = mapped_column()
    # A reservation event's reservation.
    reservation_id: Mapped[int | None] = mapped_column(ForeignKey("reservations.id"))
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    reorder_point: Mapped[Decimal] = mapped_column(Quantity)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    # W3C traceparent of the transaction that wrote the event (00-<trace>-<span>-<flags>).
    traceparent: Mapped[str | None] = mapped_column(String(55))
