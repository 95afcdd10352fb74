"""Items and categories: creating, editing, archiving and reading the catalogue."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, inspect, select, update
from sqlalchemy.orm import selectinload

from app.extensions import db
from app.models import TRACKING_MODES, Category, Item, ItemRequest, SearchGram
from app.models.types import utcnow
from app.services import codes, idempotency, transaction
from app.services.errors import (
    Conflict,
    DomainError,
    EditedMeanwhile,
    IdempotencyConflict,
    InvalidInput,
    TrackingLocked,
    UnknownItem,
)
from app.services.quantities import parse_quantity
from app.services.search_keys import GRAM, grams, pinyin_keys, search_text
from app.services.text import URL_UNSAFE, multi_line, single_line
from app.services.transaction import unit_of_work

# What str.isspace() calls a space (re's \s on str patterns is the same test), in one C call.
_SPACE = re.compile(r"\s")
_NO_STOCK = Decimal(0)
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
    barcode = _optional(fields.get("barcode"), "barcode", 64)
    # A stored barcode wins over our own lot and serial labels' codes when scanned: one of their
    # form would make those labels name this item instead.
    if barcode and codes.is_traced_code(barcode):
        raise InvalidInput("barcode", "LOT/… and SN/… followed by a number name our own lot and serial labels")
    return ItemInput(
        sku=sku,
        name=_required(fields.get("name"), "name", 200),
        barcode=barcode,
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
    """Add the pieces of these search texts to search_grams (see _Pieces)."""
    found = _Pieces()
    for text in texts:
        found.add(text)
    found.store()


class _Pieces:
    """The pieces of search texts, gathered, then added to search_grams; pieces already there
    stay. A piece seen anywhere but at a text's start is marked `inside` (for good); one seen only
    at the start (where the folded SKU begins) is not, until some text holds it elsewhere. Sorted,
    so that two writers adding the same new pieces take their locks in one order."""

    def __init__(self) -> None:
        self.inside: set[str] = set()
        self.leading: set[str] = set()

    def add(self, text: str) -> None:
        self.inside.update(grams(text[1:]))  # set().union(*map(grams, texts)) took twice as long on 100,000
        self.leading.add(text[:GRAM])

    def store(self) -> None:
        inside = self.inside
        pieces = sorted(inside.union(piece for piece in self.leading if len(piece) == GRAM))
        if not pieces:
            return
        add = insert(SearchGram).prefix_with("IGNORE", dialect="mysql").prefix_with("OR IGNORE", dialect="sqlite")
        db.session.execute(add, [{"gram": piece, "inside": piece in inside} for piece in pieces])
        # Pieces first seen at a start and now inside too: asked by piece for one item's few, else
        # all pieces never seen inside read from the `inside` index (SKU starts: hundreds, not
        # 100,000s).
        never_inside = _LEADING_ONLY.where(SearchGram.gram.in_(inside)) if len(inside) <= 1000 else _LEADING_ONLY
        now_inside = sorted(inside.intersection(db.session.scalars(never_inside)))
        if now_inside:
            db.session.execute(update(SearchGram).where(SearchGram.gram.in_(now_inside)).values(inside=True))


_LEADING_ONLY = select(SearchGram.gram).where(SearchGram.inside == False)  # noqa: E712 (`= 0` seeks the index)


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


def edited_values(item: Item) -> dict[str, Any]:
    """The item's fields as an edit gives them (update_item's keywords; the category by name)."""
    return {
        "name": item.name,
        "barcode": item.barcode or None,
        "unit": item.unit,
        "category": _category_name(item),
        "reorder_point": item.reorder_point,
        "reorder_quantity": item.reorder_quantity,
        "description": item.description or "",
        "tracking": item.tracking,
        "requires_expiry": bool(item.requires_expiry),
        "expiry_warning_days": item.expiry_warning_days,
    }


def _category_name(item: Item) -> str | None:
    if item.category_id is None:
        return None
    loaded = inspect(item).dict.get("category")  # with the item (get_item)
    if loaded is not None:
        return str(loaded.name)
    return db.session.scalar(select(Category.name).where(Category.id == item.category_id))


def _same_value(a: Any, b: Any) -> bool:
    """Whether two values of an item field are the same: quantities by number (5 is 5.000), text
    with no text as empty."""
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        try:
            return a is not None and b is not None and Decimal(str(a)) == Decimal(str(b))
        except ArithmeticError:
            return False
    if isinstance(a, str | None) and isinstance(b, str | None):
        return (a or "") == (b or "")
    return bool(a == b)


def changed_fields(sku: str, submitted: Mapping[str, Any], original: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of `submitted` (an edit page's values) that differ from `original` (the values
    it was drawn with), both compared as they would be stored: a textarea's line breaks or spaces
    around a name are no change."""
    try:
        new, old = asdict(check_item(sku=sku, **submitted)), asdict(check_item(sku=sku, **original))
    except DomainError:  # refused as a whole by update_item, with the field it is about
        new, old = dict(submitted), dict(original)
    return {name: value for name, value in submitted.items() if not _same_value(new.get(name), old.get(name))}


@unit_of_work
def update_item(*, sku: str, expected: Mapping[str, Any] | None = None, **changes: Any) -> Item:
    """Change an item's fields (not its SKU). `expected`: the values an edit page started from,
    for the fields it changes; one that another edit has changed since raises EditedMeanwhile
    and nothing is written (the other edit's fields that this one leaves alone stay as they are).
    Raises UnknownItem, InvalidInput, Conflict, TrackingLocked, EditedMeanwhile."""
    _check_changeable(changes)
    # The row lock is the one every stock write ends on (the on-hand trigger; receipts re-read
    # the tracking under it): the "no stock held" check below reads the latest committed total,
    # never a copy already in the session.
    item = db.session.scalar(
        select(Item).where(Item.sku == sku).with_for_update().execution_options(populate_existing=True)
    )
    if item is None:
        raise UnknownItem(sku)
    current = {name: getattr(item, name) for name in _EDITED}
    if expected:
        now = edited_values(item)
        moved = sorted(
            name
            for name, value in expected.items()
            if not _same_value(now.get(name), value) and not _same_value(now.get(name), changes.get(name))
        )  # changed meanwhile, and not to what this edit sets
        if moved:
            raise EditedMeanwhile(sku=sku, fields=", ".join(moved), names=tuple(moved))
    data = check_item(sku=sku, **{**current, **changes})
    if data.barcode != item.barcode:
        _check_unique(None, data.barcode, exclude_id=item.id)
    category_id = _category_id(data.category) if "category" in changes else item.category_id
    for column, value in _revision(sku, current, item.on_hand, data, category_id, changes).items():
        setattr(item, column, value)
    _remember_grams([item.search_text])
    # Only columns whose value differs are written; `updated_at` moves with them (onupdate), so
    # an edit page saved unchanged writes nothing at all.
    db.session.flush()
    return item


# What an edit reads of an item: its fields but the category (a name in, an id stored).
_EDITED = tuple(name for name in ITEM_FIELDS if name != "category")


def _check_changeable(changes: dict[str, Any]) -> None:
    unknown = set(changes) - set(ITEM_FIELDS) - {"archived"}
    if unknown:
        raise InvalidInput(sorted(unknown)[0], "cannot be changed")


def _revision(
    sku: str,
    current: dict[str, Any],
    on_hand: Decimal,
    data: ItemInput,
    category_id: int | None,
    changes: dict[str, Any],
) -> dict[str, Any]:
    """An item's columns after an edit (`data`: its fields with the changes, checked): the search
    keys derived again, the tracking changed only with nothing on hand. Raises TrackingLocked."""
    if data.tracking != current["tracking"] and on_hand != 0:
        raise TrackingLocked(sku)
    values = _columns(data, category_id)
    del values["sku"]  # an item's SKU never changes
    if "archived" in changes:
        values["archived"] = bool(changes["archived"])
    return values


@unit_of_work
def update_items(changes: Sequence[tuple[str, dict[str, Any]]]) -> int:
    """Change many items (an import's changed rows) by update_item's rules, all or none: the items
    locked and read with a statement per 1,000, their new barcodes checked together, and the
    changed rows written with one statement per batch. Returns how many items changed. Raises
    UnknownItem, InvalidInput, Conflict, TrackingLocked."""
    for _, fields in changes:
        _check_changeable(fields)
    found = _lock_items(sorted({sku for sku, _ in changes}))
    categories = {name: _category_id(name) for name in {f["category"] for _, f in changes if f.get("category")}}
    edited, barcodes = _edit_rows(changes, found, categories)
    codes.check_codes_free(barcodes, field="barcode")
    rows = _changed_rows(edited, found)
    if rows:
        _remember_grams(str(row["search_text"]) for row in rows)
        now = utcnow()
        transaction.update_rows(_ITEMS, [{**row, "updated_at": now} for row in rows])
        _expire_items({row["id"] for row in rows})
    return len(rows)


def _edit_rows(
    changes: Sequence[tuple[str, dict[str, Any]]],
    found: dict[str, Any],
    categories: dict[str, int | None],
) -> tuple[dict[int, dict[str, Any]], dict[str, int | None]]:
    """The changes applied in order to copies of the locked rows `found` (by update_item's rules):
    each changed item's columns after them, by item id, and the new barcodes with the item taking
    each (two items of the changes taking one barcode is refused here; the other items, by the
    caller). Raises UnknownItem, InvalidInput, CodeTaken, TrackingLocked."""
    edited: dict[int, dict[str, Any]] = {}  # item id -> its columns after the changes so far
    barcodes: dict[str, int | None] = {}
    claimed: dict[str, int] = {}
    for sku, fields in changes:
        row = found.get(codes.compared(sku))
        if row is None:
            raise UnknownItem(sku)
        columns = edited.setdefault(row["id"], dict(row))
        current = {name: columns[name] for name in _EDITED}
        data = check_item(sku=sku, **{**current, **fields})
        if data.barcode and data.barcode != columns["barcode"]:
            if claimed.setdefault(codes.compared(data.barcode), row["id"]) != row["id"]:
                raise codes.CodeTaken(data.barcode, field="barcode", used_by="barcode")
            barcodes[data.barcode] = row["id"]
        category_id = categories.get(data.category or "") if "category" in fields else columns["category_id"]
        columns.update(_revision(sku, current, row["on_hand"], data, category_id, fields))
    return edited, barcodes


def _changed_rows(edited: dict[int, dict[str, Any]], found: dict[str, Any]) -> list[dict[str, Any]]:
    """The written columns (and id) of the edited items whose written columns differ from the
    locked rows `found`: the rows to update."""
    before = {row["id"]: row for row in found.values()}
    return [
        {name: columns[name] for name in ("id", *_WRITTEN)}
        for item_id, columns in edited.items()
        if any(columns[name] != before[item_id][name] for name in _WRITTEN)
    ]


def _expire_items(ids: set[int]) -> None:
    """Items of the session written behind its back: their next read loads them again."""
    for entity in list(db.session.identity_map.values()):
        if isinstance(entity, Item) and entity.id in ids:
            db.session.expire(entity)


_ITEMS = cast(Table, Item.__table__)
# The columns an edit writes (_revision): the fields, the search keys, the category and archived.
_WRITTEN = (*_EDITED, "name_pinyin", "name_initials", "search_text", "category_id", "archived")
_LOCK_ITEMS = (
    select(*(_ITEMS.c[name] for name in ("id", "sku", "on_hand", *_WRITTEN)))
    .where(_ITEMS.c.sku.in_(bindparam("skus", expanding=True)))
    .order_by(_ITEMS.c.id)
    .with_for_update()
)


def _lock_items(skus: list[str]) -> dict[str, Any]:
    """The items with these SKUs, locked, as row mappings keyed by their SKU as compared."""
    found = {}
    for start in range(0, len(skus), 1000):
        for row in db.session.execute(_LOCK_ITEMS, {"skus": skus[start : start + 1000]}).mappings():
            found[codes.compared(row["sku"])] = row
    return found


def archive_item(*, sku: str, archived: bool = True) -> Item:
    """Archive (or restore) an item: archived items keep their history but cannot be moved."""
    return update_item(sku=sku, archived=archived)


@unit_of_work
def create_items(rows: Sequence[ItemInput], *, on_hand: Mapping[str, Decimal] | None = None) -> list[str]:
    """Bulk-create items whose SKU does not exist yet; returns the SKUs created (re-runs are safe).
    `on_hand` gives some of them their on-hand total at once (see stock.opening_on_hand): the
    stock they are about to receive, which the caller's receipt then leaves uncounted."""
    totals = on_hand or {}
    existing: set[str] = set()
    for listed in transaction.listed([row.sku for row in rows], like=_ITEMS.c.sku):
        existing.update(db.session.scalars(select(_ITEMS.c.sku).join(listed, _ITEMS.c.sku == listed.c.value)))
    categories = {name: _category_id(name) for name in {r.category for r in rows if r.category}}
    now = utcnow()
    created: list[str] = []
    pieces = _Pieces()

    def new_rows() -> Iterator[dict[str, Any]]:
        # Run by insert_rows' helper thread while the INSERT before runs: the search keys of
        # 100,000 items are about 1 s of CPU. Touches only this call's own sets and lists.
        for row in rows:
            if row.sku in existing:
                continue
            existing.add(row.sku)
            columns = _columns(row, categories.get(row.category or ""))
            created.append(row.sku)
            pieces.add(columns["search_text"])
            yield {**columns, "on_hand": totals.get(row.sku, _NO_STOCK)}

    transaction.insert_rows(cast(Table, Item.__table__), new_rows(), archived=False, created_at=now, updated_at=now)
    pieces.store()  # stores nothing when no item was new
    return created


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
