"""Blind cycle counts (a count, its lines) and the record of committed imports."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.types import BigId, Quantity, UtcDateTime, utcnow

COUNT_STATUSES = ("open", "approved", "cancelled")


class Count(Model):
    """A cycle count of one location (or of chosen items wherever they are held: no location),
    opened by a manager, counted blind, approved once."""

    __tablename__ = "counts"

    id: Mapped[int] = mapped_column(primary_key=True)
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    # Lines whose |variance| exceeds this may be sent for a second count.
    threshold: Mapped[Decimal] = mapped_column(Quantity, default=Decimal(0))
    note: Mapped[str | None] = mapped_column(String(500))
    opened_by: Mapped[str] = mapped_column(String(64))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    closed_by: Mapped[str | None] = mapped_column(String(64))
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class CountLine(Model):
    """What a counter found for one item. `system_quantity` is the balance at the moment the
    (latest) count was entered, so movements made before that are already in it and movements
    made after it are kept when the variance is posted."""

    __tablename__ = "count_lines"
    __table_args__ = (
        # One line per lot of a lot-tracked item (lot_key: the lot's id, 0 without a lot).
        UniqueConstraint(
            "count_id", "item_id", "location_id", "lot_key", name="uq_count_lines_count_item_location_lot"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    count_id: Mapped[int] = mapped_column(ForeignKey("counts.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), index=True)
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("lots.id"), index=True)
    lot_key: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    first_count: Mapped[Decimal | None] = mapped_column(Quantity)
    first_by: Mapped[str | None] = mapped_column(String(64))
    second_count: Mapped[Decimal | None] = mapped_column(Quantity)
    second_by: Mapped[str | None] = mapped_column(String(64))
    recount_requested: Mapped[bool] = mapped_column(default=False)
    system_quantity: Mapped[Decimal | None] = mapped_column(Quantity)
    counted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    movement_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("movements.id"))

    @property
    def final_count(self) -> Decimal | None:
        return self.second_count if self.second_count is not None else self.first_count

    @property
    def variance(self) -> Decimal | None:
        if self.final_count is None or self.system_quantity is None:
            return None
        return self.final_count - self.system_quantity


class CountSerial(Model):
    """A serial number a counter found on a line of a serial-tracked item (issue 17): the line's
    count is how many were found, and approval reconciles them with the serials the system has."""

    __tablename__ = "count_serials"
    __table_args__ = (UniqueConstraint("count_line_id", "serial", name="uq_count_serials_line_serial"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    count_line_id: Mapped[int] = mapped_column(ForeignKey("count_lines.id"))
    serial: Mapped[str] = mapped_column(String(100))


class ImportBatch(Model):
    """A committed import file, by content hash: committing the same file again changes nothing."""

    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    filename: Mapped[str] = mapped_column(String(200))
    items_created: Mapped[int] = mapped_column(default=0)
    items_updated: Mapped[int] = mapped_column(default=0)
    stock_lines: Mapped[int] = mapped_column(default=0)
    username: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
