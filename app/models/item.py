"""Items (what is stocked) and their categories."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Computed, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.types import Quantity, UtcDateTime, binary_string, utcnow

# How an item's stock is told apart: not at all, by lot (batch, maybe with an expiry date), or
# unit by unit by serial number. Set at creation; changed only while no stock is held.
TRACKING_MODES = ("none", "lot", "serial")

# Room for SKU (64), name (200) and barcode (64) folded and joined: the covering ix_items_search
# index stays within InnoDB's 3,072-byte key.
SEARCH_TEXT_LENGTH = 330


class Category(Model):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(String(500), default="")


class Item(Model):
    __tablename__ = "items"
    __table_args__ = (
        CheckConstraint("reorder_point >= 0", name="reorder_point_not_negative"),
        CheckConstraint("reorder_quantity >= 0", name="reorder_quantity_not_negative"),
        Index("ix_items_category_id_sku", "category_id", "sku"),
        # Every column the items search reads, in (archived, sku, id) page order: a contains
        # search scans this index alone instead of fetching each row it tests (issue 4). It is
        # also the item list's (archived, sku) index.
        Index("ix_items_search", "archived", "sku", "id", "search_text", "name_pinyin", "name_initials"),
        # The low-stock lists and counts, in SKU order, without summing anyone's stock levels.
        Index("ix_items_is_low_archived_sku", "is_low", "archived", "sku"),
        Index("ix_items_category_id_is_low_archived_sku", "category_id", "is_low", "archived", "sku"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    # Lower-case pinyin of the name ("luosiding") and its initials ("lsd"), kept up to date by
    # app.services.items on every write so that clerks can search Chinese names from a keyboard.
    name_pinyin: Mapped[str] = mapped_column(String(255), default="", index=True)
    name_initials: Mapped[str] = mapped_column(String(100), default="", index=True)
    barcode: Mapped[str | None] = mapped_column(String(64), unique=True)
    # SKU, name and barcode folded (app.services.search_keys.search_text), kept up to date with
    # the pinyin keys: a contains search compares it byte for byte, far cheaper than a collation.
    search_text: Mapped[str] = mapped_column(binary_string(SEARCH_TEXT_LENGTH), default="", server_default=text("''"))
    unit: Mapped[str] = mapped_column(String(16), default="pcs")
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"))
    reorder_point: Mapped[Decimal] = mapped_column(Quantity, default=Decimal(0))
    reorder_quantity: Mapped[Decimal] = mapped_column(Quantity, default=Decimal(0))
    description: Mapped[str] = mapped_column(Text, default="")
    archived: Mapped[bool] = mapped_column(default=False)
    # One of TRACKING_MODES (issue 17). Untracked stock is held with no lot, exactly as before.
    tracking: Mapped[str] = mapped_column(String(8), default="none", server_default=text("'none'"))
    # Lot-tracked only: a receipt must give the lot's expiry date.
    requires_expiry: Mapped[bool] = mapped_column(default=False, server_default=text("0"))
    # Warn this many days before a lot expires (no warning when NULL).
    expiry_warning_days: Mapped[int | None] = mapped_column()
    # The sum of the item's stock levels. Database triggers on stock_levels keep it, in the same
    # statement as every change to a level (migration 5d2f6e1a9b47), so the stock service pays no
    # extra round trip and no writer can forget it. SQLite refuses to rebuild `items` or
    # `stock_levels` (a batch migration) while those triggers exist: drop them first, then
    # create them again.
    on_hand: Mapped[Decimal] = mapped_column(Quantity, default=Decimal(0), server_default=text("0"))
    # The sum of the levels' `reserved`, kept by the same triggers (migration b8d4f2a6c051):
    # available = on_hand - reserved, read without summing anything.
    reserved: Mapped[Decimal] = mapped_column(Quantity, default=Decimal(0), server_default=text("0"))
    # At or below a non-zero reorder point; computed by the database (MariaDB refuses NOT NULL here).
    is_low: Mapped[bool | None] = mapped_column(
        Computed("reorder_point > 0 AND on_hand <= reorder_point", persisted=False)
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow, index=True)

    category: Mapped[Category | None] = relationship(lazy="raise_on_sql")

    def __repr__(self) -> str:
        return f"<Item {self.sku}>"


class SearchGram(Model):
    """A three-character piece of some item's search text, ever written (app.services.items adds
    them with the item). A search term with a piece missing here is contained in no item, so the
    search skips its scan. Never deleted: a piece left by a renamed item only costs that shortcut.

    `inside` is false while the piece has only been seen at the start of a search text (where the
    folded SKU begins): a term with such a piece is contained only in SKUs that begin with it, and
    the search reads that SKU range instead of scanning. It only ever turns true."""

    __tablename__ = "search_grams"

    gram: Mapped[str] = mapped_column(binary_string(3), primary_key=True)
    inside: Mapped[bool] = mapped_column(default=True, server_default=text("1"), index=True)


class ItemRequest(Model):
    """An item creation made with an Idempotency-Key, so that repeating it returns the same item
    and reusing the key for another item is refused."""

    __tablename__ = "item_requests"
    __table_args__ = (UniqueConstraint("idempotency_scope", "idempotency_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_scope: Mapped[str] = mapped_column(String(80))
    idempotency_key: Mapped[str] = mapped_column(String(160))
    request_hash: Mapped[str] = mapped_column(String(64))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
