"""Stock levels (item x location) and the append-only movement ledger, plus the low-stock outbox."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.item import Item
from app.models.location import Location
from app.models.types import BigId, Quantity, UtcDateTime, utcnow

MOVEMENT_KINDS = ("receive", "issue", "transfer", "adjust", "reversal")
# Why the system itself wrote a line, as a code: the ledger never changes, so a sentence in the
# writer's language would stay in that language forever. Pages translate the code when shown.
REASON_CODES = ("scan", "scan_undo")


class StockLevel(Model):
    __tablename__ = "stock_levels"
    __table_args__ = (
        # The database itself refuses negative stock, whatever code or hand-written SQL tries.
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        UniqueConstraint("item_id", "location_id", name="uq_stock_levels_item_location"),
        Index("ix_stock_levels_location_id_item_id", "location_id", "item_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    quantity: Mapped[Decimal] = mapped_column(Quantity, default=Decimal(0))
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
        CheckConstraint("kind IN ('receive', 'issue', 'transfer', 'adjust', 'reversal')", name="kind_known"),
        CheckConstraint("from_location_id IS NOT NULL OR to_location_id IS NOT NULL", name="has_a_location"),
        Index("ix_movements_item_id_id", "item_id", "id"),
        Index("ix_movements_from_location_id_id", "from_location_id", "id"),
        Index("ix_movements_to_location_id_id", "to_location_id", "id"),
        Index("ix_movements_kind_id", "kind", "id"),
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

    item: Mapped[Item] = relationship(lazy="raise_on_sql")
    from_location: Mapped[Location | None] = relationship(foreign_keys=[from_location_id], lazy="raise_on_sql")
    to_location: Mapped[Location | None] = relationship(foreign_keys=[to_location_id], lazy="raise_on_sql")

    #: Not stored: the sides ("from", "to") that were at a place an open count covers when the
    #: stock service wrote (or replayed) this movement, read inside its transaction. A counter is
    #: not shown those balances (the count would not be blind).
    counted_sides = frozenset[str]()


class LowStockEvent(Model):
    """Outbox row written in the same transaction as the movement that crossed the reorder point.

    Delivery (WeCom, webhooks) reads these later; a rolled-back issue leaves no event behind.
    """

    __tablename__ = "low_stock_events"
    __table_args__ = (Index("ix_low_stock_events_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    movement_id: Mapped[int] = mapped_column(BigId, ForeignKey("movements.id"))
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
