"""Items and categories: creating, editing, archiving and reading the catalogue."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.orm import selectinload

from app.extensions import db
from app.models import TRACKING_MODES, Category, Item, ItemRequest, SearchGram
from app.models.types import utcnow
from app.services import codes, idempotency, transaction
from app.services.errors import Conflict, IdempotencyConflict, InvalidInput, TrackingLocked, UnknownItem
from app.services.quantities import parse_quantity
from app.services.search_keys import grams, pinyin_keys, search_text
from app.services.text import URL_UNSAFE, multi_line, single_line
from app.services.transaction import unit_of_work

# What str.isspace() calls a space (re's \s on str patterns is the same test), in one C call.
_SPACE = re.compile(r"\s")
_SKUS_TAKEN = select(Item.sku).where(Item.sku.in_(bindparam("skus", expanding=True)))
ITEM_FIELDS = (
    "name",
    "barcode",
    "unit",
    "category",
    "reorder_point",
    "reorder_quantity",
    "description",
    "tracking",
    "requires_expiry",
    "expiry_warning_days",
)
# Tracking fields at their defaults: left out of a creation's fingerprint, so an untracked item's
# key fingerprints as it did before lots existed (issue 17).
_UNTRACKED = {"tracking": "none", "requires_expiry": False, "expiry_warning_days": None}


@dataclass(frozen=True)
class ItemInput:
    """A checked item description, as bulk creation takes it."""

    sku: str
    name: str
    barcode: str | None = None
    unit: str = "pcs"
    category: str | None = None
    reorder_point: Decimal = Decimal(0)
    reorder_quantity: Decimal = Decimal(0)
    description: str = ""
    tracking: str = "none"
    requires_expiry: bool = False
    expiry_warning_days: int | None = None


def _required(value: str | None, field: str, limit: int) -> str:
    text = single_line((value or "").strip(), field)
    if not text:
        raise InvalidInput(field, "is required")
    if len(text) > limit:
        raise InvalidInput(field, f"at most {limit} characters")
    return text


def _optional(value: str | None, field: str, limit: int) -> str | None:
    text = single_line((value or "").strip(), field)
    if len(text) > limit:
        raise InvalidInput(field, f"at most {limit} characters")
    return text or None


def check_item(**fields: Any) -> ItemInput:
    """Validate item fields into an ItemInput. Raises InvalidInput / InvalidQuantity."""
    sku = _required(fields.get("sku"), "sku", 64)
    if _SPACE.search(sku):
        raise InvalidInput("sku", "must not contain spaces")
    if not URL_UNSAFE.isdisjoint(sku):
        raise InvalidInput("sku", "must not contain / or \\")
    return ItemInput(
        sku=sku,
        name=_required(fields.get("name"), "name", 200),
        barcode=_optional(fields.get("barcode"), "barcode", 64),
        unit=_required(fields.get("unit") or "pcs", "unit", 16),
        category=_optional(fields.get("category"), "category", 100),
        reorder_point=parse_quantity(fields.get("reorder_point") or 0, field="reorder_point", allow_zero=True),
        reorder_quantity=parse_quantity(fields.get("reorder_quantity") or 0, field="reorder_quantity", allow_zero=True),
        description=multi_line((fields.get("description") or "").strip(), "description")[:5000],
        **_tracking(fields),
    )


def _tracking(fields: dict[str, Any]) -> dict[str, Any]:
    """The tracking fields checked: a mode of TRACKING_MODES; an expiry (required, warned of)
    only for lot-tracked items; the warning 0 to 3650 days."""
    tracking = fields.get("tracking") or "none"
    if tracking not in TRACKING_MODES:
        raise InvalidInput("tracking", f"one of {', '.join(TRACKING_MODES)}")
    requires = fields.get("requires_expiry") or False
    if isinstance(requires, str):
        requires = requires.strip().lower() in {"1", "true", "yes", "y", "on"}
    days = fields.get("expiry_warning_days")
    if days in ("", None):
        days = None
    else:
        try:
            days = int(str(days).strip())
        except ValueError:
            raise InvalidInput("expiry_warning_days", "a whole number of days") from None
        if not 0 <= days <= 3650:
            raise InvalidInput("expiry_warning_days", "0 to 3650 days")
    if tracking != "lot" and (requires or days is not None):
        raise InvalidInput("requires_expiry" if requires else "expiry_warning_days", "only lot-tracked items expire")
    return {"tracking": tracking, "requires_expiry": bool(requires), "expiry_warning_days": days}


def _category_id(name: str | None) -> int | None:
    if name is None:
        return None
    found = db.session.scalar(select(Category.id).where(Category.name == name))
    if found is not None:
        return found
    category = Category(name=name, description="")
    db.session.add(category)
    db.session.flush()
    return category.id


def _check_unique(sku: str | None, barcode: str | None, exclude_id: int | None = None) -> None:
    """SKUs, barcodes and location codes share one namespace (codes.check_code_free)."""
    codes.check_code_free(sku, field="sku", item_id=exclude_id)
    codes.check_code_free(barcode, field="barcode", item_id=exclude_id)


def _remember_grams(texts: Iterable[str]) -> None:
    """Add the pieces of these search texts to search_grams; pieces already there stay. Sorted,
    so that two writers adding the same new pieces take their locks in one order."""
    found: set[str] = set()
    for text in texts:
        found.update(grams(text))  # set().union(*map(grams, texts)) took twice as long on 100,000
    pieces = sorted(found)
    if pieces:
        add = insert(SearchGram).prefix_with("IGNORE", dialect="mysql").prefix_with("OR IGNORE", dialect="sqlite")
        db.session.execute(add, [{"gram": piece} for piece in pieces])


@unit_of_work
def create_item(*, idempotency_key: str | None = None, caller: str | None = None, **fields: Any) -> Item:
    """Create an item (categories are created by name on first use). Raises InvalidInput and
    Conflict for a duplicate SKU or barcode. With an idempotency key (and its `caller`), repeating
    the same creation returns the item it made, and the key with another item is
    IdempotencyConflict."""
    data = check_item(**fields)
    key = idempotency.check_key(idempotency_key)
    facts = {k: v for k, v in asdict(data).items() if k not in _UNTRACKED or v != _UNTRACKED[k]}
    digest = idempotency.fingerprint("create_item", **facts) if key else ""
    if key:
        if not caller:
            raise InvalidInput("caller", "a keyed creation needs its caller")
        earlier = db.session.execute(
            select(ItemRequest.request_hash, ItemRequest.item_id).where(
                ItemRequest.idempotency_scope == caller, ItemRequest.idempotency_key == key
            )
        ).first()
        if earlier is not None:
            if earlier.request_hash != digest:
                raise IdempotencyConflict(key)
            return db.session.get_one(Item, earlier.item_id)
    _check_unique(data.sku, data.barcode)
    item = Item(**_columns(data, _category_id(data.category)))
    db.session.add(item)
    _remember_grams([item.search_text])
    db.session.flush()
    if key and caller:
        db.session.add(ItemRequest(idempotency_scope=caller, idempotency_key=key, request_hash=digest, item_id=item.id))
        db.session.flush()
    return item


def _columns(data: ItemInput, category_id: int | None) -> dict[str, Any]:
    """A new item's column values: the checked input and the search keys derived from it."""
    pinyin, initials = pinyin_keys(data.name)
    return {
        "sku": data.sku,
        "name": data.name,
        "name_pinyin": pinyin,
        "name_initials": initials,
        "search_text": search_text(data.sku, data.name, data.barcode),
        "barcode": data.barcode,
        "unit": data.unit,
        "category_id": category_id,
        "reorder_point": data.reorder_point,
        "reorder_quantity": data.reorder_quantity,
        "description": data.description,
        "tracking": data.tracking,
        "requires_expiry": data.requires_expiry,
        "expiry_warning_days": data.expiry_warning_days,
    }


@unit_of_work
def update_item(*, sku: str, **changes: Any) -> Item:
    """Change an item's fields (not its SKU). Raises UnknownItem, InvalidInput, Conflict."""
    unknown = set(changes) - set(ITEM_FIELDS) - {"archived"}
    if unknown:
        raise InvalidInput(sorted(unknown)[0], "cannot be changed")
    item = db.session.scalar(select(Item).where(Item.sku == sku).with_for_update())
    if item is None:
        raise UnknownItem(sku)
    current = {f: getattr(item, f) for f in ITEM_FIELDS if f != "category"}
    data = check_item(sku=sku, **{**current, **changes})
    if data.barcode != item.barcode:
        _check_unique(None, data.barcode, exclude_id=item.id)
    item.name, item.barcode, item.unit = data.name, data.barcode, data.unit
    item.name_pinyin, item.name_initials = pinyin_keys(data.name)
    item.search_text = search_text(sku, data.name, data.barcode)
    _remember_grams([item.search_text])
    item.reorder_point, item.reorder_quantity = data.reorder_point, data.reorder_quantity
    item.description = data.description
    if data.tracking != item.tracking and item.on_hand != 0:
        raise TrackingLocked(sku)
    item.tracking, item.requires_expiry = data.tracking, data.requires_expiry
    item.expiry_warning_days = data.expiry_warning_days
    if "category" in changes:
        item.category_id = _category_id(data.category)
    if "archived" in changes:
        item.archived = bool(changes["archived"])
    # Only columns whose value differs are written; `updated_at` moves with them (onupdate), so
    # an edit page saved unchanged writes nothing at all.
    db.session.flush()
    return item


def archive_item(*, sku: str, archived: bool = True) -> Item:
    """Archive (or restore) an item: archived items keep their history but cannot be moved."""
    return update_item(sku=sku, archived=archived)


@unit_of_work
def create_items(rows: Sequence[ItemInput]) -> list[str]:
    """Bulk-create items whose SKU does not exist yet; returns the SKUs created (re-runs are safe)."""
    skus = [row.sku for row in rows]
    existing: set[str] = set()
    for start in range(0, len(skus), 1000):
        existing.update(db.session.scalars(_SKUS_TAKEN, {"skus": skus[start : start + 1000]}))
    categories = {name: _category_id(name) for name in {r.category for r in rows if r.category}}
    now = utcnow()
    new = []
    for row in rows:
        if row.sku in existing:
            continue
        existing.add(row.sku)
        new.append(_columns(row, categories.get(row.category or "")))
    if new:
        transaction.insert_rows(cast(Table, Item.__table__), new, archived=False, created_at=now, updated_at=now)
        _remember_grams(str(row["search_text"]) for row in new)
    return [str(row["sku"]) for row in new]


def get_item(sku: str) -> Item:
    """The item with its category loaded. Raises UnknownItem."""
    item = db.session.scalar(select(Item).options(selectinload(Item.category)).where(Item.sku == sku))
    if item is None:
        raise UnknownItem(sku)
    return item


def list_categories() -> list[Category]:
    return list(db.session.scalars(select(Category).order_by(Category.name)))


@unit_of_work
def create_category(*, name: str, description: str = "") -> Category:
    name = _required(name, "name", 100)
    if db.session.scalar(select(Category.id).where(Category.name == name)) is not None:
        raise Conflict(f"category {name!r} already exists", field="name")
    category = Category(name=name, description=multi_line(description.strip(), "description")[:500])
    db.session.add(category)
    db.session.flush()
    return category
