"""Catalogue reads for pages and the API: items, stock, locations and the ledger, searched and
paginated by keyset (a cursor naming the last row seen), so page 2,000 costs what page 1 costs.

Every list function issues a fixed number of statements whatever the page size: the page itself,
plus at most one more (a grouped query for the figures shown next to each row, or the probe of a
search term).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Generic, TypedDict, TypeVar, Unpack

from sqlalchemy import ColumnElement, Select, and_, case, false, func, or_, select, union
from sqlalchemy.orm import aliased

from app.extensions import db
from app.models import Category, Item, Location, Lot, Movement, SearchGram, StockLevel, Warehouse
from app.services.errors import InvalidInput, UnknownLocation, UnknownMovement
from app.services.search_keys import fold, grams

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# Our cursors hold a sort value (at most a 200-character name) and an id.
MAX_CURSOR = 1024
ITEM_SORTS = ("sku", "name", "updated_at")
_PINYIN_KEY = re.compile(r"[^0-9a-z]+")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of rows and the cursor of the next page (None on the last page)."""

    rows: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class ItemRow:
    id: int
    sku: str
    name: str
    barcode: str | None
    unit: str
    category: str | None
    reorder_point: Decimal
    reorder_quantity: Decimal
    archived: bool
    updated_at: datetime
    on_hand: Decimal
    tracking: str
    requires_expiry: bool
    expiry_warning_days: int | None
    #: Promised to open reservations (issue 18); kept on the item row by triggers, so no sum.
    reserved: Decimal

    @property
    def available(self) -> Decimal:
        return self.on_hand - self.reserved


#: ItemRow's fields that are the Item's own columns, by the same name (all but the category's name).
_ITEM_COLUMNS = tuple(f.name for f in fields(ItemRow) if f.name != "category")


class Reservable:
    """A row of stock of which open reservations hold `reserved` (issue 18): what is free to
    promise. A dataclass row gives both fields; `reserved` defaults to 0, so it stands last."""

    quantity: Decimal
    reserved: Decimal

    @property
    def available(self) -> Decimal:
        return self.quantity - self.reserved


@dataclass(frozen=True)
class StockRow(Reservable):
    location: str
    location_name: str
    warehouse: str
    quantity: Decimal
    lot: str | None = None  # a lot-tracked item's level is one lot's (issue 17)
    expiry: date | None = None
    reserved: Decimal = Decimal(0)  # what open reservations hold of `quantity` (issue 18)


@dataclass(frozen=True)
class LocationRow:
    id: int
    code: str
    name: str
    warehouse: str
    warehouse_name: str
    active: bool
    on_hand: Decimal
    #: Items with stock here: what pages show, since on_hand adds pieces to metres to kilograms.
    skus: int = 0


@dataclass(frozen=True)
class LocationStockRow(Reservable):
    sku: str
    name: str
    unit: str
    quantity: Decimal
    archived: bool
    reserved: Decimal = Decimal(0)


@dataclass(frozen=True)
class MovementRow:
    id: int
    kind: str
    sku: str
    item_name: str
    unit: str
    from_location: str | None
    to_location: str | None
    quantity: Decimal
    from_balance: Decimal | None
    to_balance: Decimal | None
    reference: str | None
    note: str | None
    reason_code: str | None
    username: str
    created_at: datetime
    reverses_id: int | None


@dataclass(frozen=True)
class LowStockRow:
    id: int
    sku: str
    name: str
    unit: str
    on_hand: Decimal
    reorder_point: Decimal
    reorder_quantity: Decimal

    @property
    def suggested(self) -> Decimal:
        """Order the reorder quantity, or enough to get back above the reorder point if that is more."""
        return max(self.reorder_quantity, self.reorder_point - self.on_hand)


# ---------------------------------------------------------------- cursors


def encode_cursor(*values: Any) -> str:
    raw = json.dumps([v.isoformat() if isinstance(v, datetime) else v for v in values], ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    """The values a cursor carries. Raises InvalidInput for anything that is not one of ours."""
    if len(cursor) > MAX_CURSOR:
        raise InvalidInput("cursor", "is not a valid page cursor")
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, RecursionError):
        raise InvalidInput("cursor", "is not a valid page cursor") from None
    if not isinstance(values, list) or not values:
        raise InvalidInput("cursor", "is not a valid page cursor")
    return values


def _limit(limit: int) -> int:
    return max(1, min(int(limit), MAX_LIMIT))


def _after(column: Any, value: Any, id_column: Any, last_id: int, descending: bool) -> ColumnElement[bool]:
    """Rows after (value, last_id) in (column, id) order. The leading `column >= value` gives
    MariaDB a range to seek to on the column's index; without it a deep page scans from the start."""
    if descending:
        return and_(column <= value, or_(column < value, id_column < last_id))
    return and_(column >= value, or_(column > value, id_column > last_id))


# ---------------------------------------------------------------- items


def pinyin_query(q: str) -> str:
    """What a typed search looks like as a pinyin key: "Luo Si" -> "luosi"."""
    return _PINYIN_KEY.sub("", q.lower())


def _search_conditions(q: str) -> list[ColumnElement[bool]]:
    """The ways an item can match a typed term: its search text (SKU, name, barcode folded)
    contains the folded term, or its pinyin or initials start with the term's pinyin key.
    For a term of three characters or more, one probe first drops the ways no item can match:
    a piece of the term missing from search_grams, or no pinyin with that start. A term found
    nowhere then costs a few index lookups instead of a scan of the catalogue."""
    term, key = fold(q), pinyin_query(q)
    # INSTR rather than LIKE '%term%': the same test on a byte-compared text, with no pattern to
    # interpret, about 15 % cheaper for every row a search scans.
    contains = func.instr(Item.search_text, term) > 0
    prefixes = [Item.name_pinyin.startswith(key), Item.name_initials.startswith(key)] if key else []
    pieces = grams(term)
    if not pieces:
        return [contains, *prefixes]
    probe = select(func.count(), func.sum(case((SearchGram.inside, 1), else_=0))).where(SearchGram.gram.in_(pieces))
    known = probe.subquery()
    found, inside, *started = db.session.execute(
        select(known, *(select(Item.id).where(p).exists() for p in prefixes))
    ).one()
    kept = [] if found < len(pieces) else [_sku_start(term, contains) if inside < len(pieces) else contains]
    return kept + [prefix for prefix, hit in zip(prefixes, started, strict=True) if hit]


def _sku_start(term: str, contains: ColumnElement[bool]) -> ColumnElement[bool]:
    """`contains` for a term with a piece no search text holds but at its start (where the folded
    SKU begins, search_grams.inside): only SKUs that begin with the term can contain it, so on
    MariaDB the search reads that range of the SKU index (its _ci LIKE compares as the folding
    does) instead of every SKU before it. SQLite's LIKE folds ASCII only: it keeps the scan."""
    if db.session.get_bind().dialect.name != "mysql" or not (term.isascii() and term.isprintable()):
        return contains
    escaped = term.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return and_(Item.sku.like(escaped + "%", escape="/"), contains)


class ItemFilters(TypedDict, total=False):
    """What narrows the item list. `q` is searched in SKU, name and barcode (contained) and pinyin
    or initials (started); `category` is a category name (an alternative to `category_id`);
    `archived` is False (the default: active items), True, or None for both; `updated_since`
    keeps items changed at or after that aware datetime."""

    q: str | None
    category_id: int | None
    category: str | None
    warehouse: str | None
    low_stock: bool
    archived: bool | None
    updated_since: datetime | None


def _item_filters(stmt: Select[Any], filters: ItemFilters) -> Select[Any]:
    if category := filters.get("category"):
        stmt = stmt.where(Item.category_id.in_(select(Category.id).where(Category.name == category)))
    if (updated_since := filters.get("updated_since")) is not None:
        stmt = stmt.where(Item.updated_at >= updated_since)
    if (archived := filters.get("archived", False)) is not None:
        # `= 0`, not `IS false`: MariaDB uses the (archived, sku) index only for an equality.
        stmt = stmt.where(Item.archived == archived)
    if (category_id := filters.get("category_id")) is not None:
        stmt = stmt.where(Item.category_id == category_id)
    if warehouse := filters.get("warehouse"):
        # A counted scalar subquery rather than EXISTS: MariaDB turns EXISTS into a semi-join
        # that reads every stock level of the warehouse and sorts; this one is checked per item
        # while the items are read in page order, and stops once the page is full.
        held = (
            select(func.count())
            .select_from(StockLevel)
            .join(Location, Location.id == StockLevel.location_id)
            .join(Warehouse, Warehouse.id == Location.warehouse_id)
            .where(StockLevel.item_id == Item.id, Warehouse.code == warehouse, StockLevel.quantity > 0)
            .correlate(Item)
            .scalar_subquery()
        )
        stmt = stmt.where(held > 0)
    if filters.get("low_stock"):
        stmt = stmt.where(Item.is_low == True)  # noqa: E712 (`= 1` seeks the is_low indexes)
    if text := (filters.get("q") or "").strip():
        conditions = _search_conditions(text)
        stmt = stmt.where(or_(*conditions) if conditions else false())
    return stmt


def list_items(
    *,
    sort: str = "sku",
    descending: bool = False,
    after: str | None = None,
    limit: int = DEFAULT_LIMIT,
    **filters: Unpack[ItemFilters],
) -> Page[ItemRow]:
    """Items matching `filters` (see ItemFilters), ordered by `sort` then id. Raises InvalidInput
    for an unknown sort or a bad cursor."""
    if sort not in ITEM_SORTS:
        raise InvalidInput("sort", f"one of {', '.join(ITEM_SORTS)}")
    column = getattr(Item, sort)
    limit = _limit(limit)
    # The page's ids first (an index range on the sort column when the filters allow it), then
    # the rows: asked for whole rows at once, MariaDB prefers scanning the index from its start.
    stmt = _item_filters(select(Item.id), filters)
    if after:
        values = decode_cursor(after)
        if len(values) != 2 or not isinstance(values[1], int) or not isinstance(values[0], str):
            raise InvalidInput("cursor", "is not a valid page cursor")
        value, last_id = values
        if sort == "updated_at":
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                raise InvalidInput("cursor", "is not a valid page cursor") from None
        stmt = stmt.where(_after(column, value, Item.id, last_id, descending))
    order = (column.desc(), Item.id.desc()) if descending else (column.asc(), Item.id.asc())
    page = stmt.order_by(*order).limit(limit + 1).subquery()
    # The row's columns, not whole Item entities: loading entities (search keys, description and
    # all) cost the 100,000-item search page 8 ms of its 40 ms budget.
    found = db.session.execute(
        select(*(getattr(Item, name) for name in _ITEM_COLUMNS), Category.name)
        .join(page, page.c.id == Item.id)
        .outerjoin(Category, Category.id == Item.category_id)
        .order_by(*order)
    ).all()
    more = len(found) > limit
    found = found[:limit]
    rows = [ItemRow(category=values[-1], **dict(zip(_ITEM_COLUMNS, values[:-1], strict=True))) for values in found]
    last = rows[-1] if rows else None
    cursor = encode_cursor(getattr(last, sort), last.id) if more and last is not None else None
    return Page(rows, cursor)


#: The item list counts its results up to this many, and says "more than" beyond: an exact count
#: of 100,000 items took 11 ms, and with a warehouse filter (a subquery per item) 675 ms.
COUNT_CAP = 1000


def count_items(**filters: Unpack[ItemFilters]) -> int:
    """How many items list_items would list with these filters, over all its pages, counted up to
    COUNT_CAP + 1 (more than COUNT_CAP reads as COUNT_CAP + 1)."""
    ids = _item_filters(select(Item.id), filters).limit(COUNT_CAP + 1)
    return int(db.session.scalar(select(func.count()).select_from(ids.subquery())) or 0)


def item_tracking(sku: str) -> str | None:
    """How an item's stock is told apart ("none", "lot", "serial"); None for no such item."""
    return db.session.scalar(select(Item.tracking).where(Item.sku == sku))


def list_stock(*, sku: str) -> list[StockRow]:
    """Where an item is held (every stock-level row, including zero balances), by location code."""
    rows = db.session.execute(
        select(
            Location.code, Location.name, Warehouse.code, StockLevel.quantity, Lot.code, Lot.expiry, StockLevel.reserved
        )
        .join(StockLevel, StockLevel.location_id == Location.id)
        .join(Item, Item.id == StockLevel.item_id)
        .join(Warehouse, Warehouse.id == Location.warehouse_id)
        .outerjoin(Lot, Lot.id == StockLevel.lot_id)
        .where(Item.sku == sku)
        .order_by(Location.code, StockLevel.lot_key)
    )
    return [StockRow(*row) for row in rows]


@dataclass(frozen=True)
class HeldPlaces:
    """Where an item is held, as a list shows it: how many locations hold some, and which one
    when there is only one."""

    count: int
    only: str | None


def held_places(item_ids: Collection[int]) -> dict[int, HeldPlaces]:
    """HeldPlaces of each item holding stock anywhere, for a page of items in one grouped
    statement (items with none are left out)."""
    if not item_ids:
        return {}
    rows = db.session.execute(
        select(StockLevel.item_id, func.count(), func.min(Location.code))
        # The page's levels first (by item), then their locations, in this join order: with its
        # statistics stale after a bulk load, MariaDB read every location and probed the levels
        # of each (45 ms of a 69 ms item list at 100,000 items, against 2 ms so).
        .prefix_with("STRAIGHT_JOIN", dialect="mysql")
        .join_from(StockLevel, Location, Location.id == StockLevel.location_id)
        .where(StockLevel.item_id.in_(list(item_ids)), StockLevel.quantity > 0)
        .group_by(StockLevel.item_id)
    )
    return {item_id: HeldPlaces(count, code if count == 1 else None) for item_id, count, code in rows}


@dataclass(frozen=True)
class ItemLookup:
    """One match of the stock forms' item picker: the item and where it is held, fullest first."""

    sku: str
    name: str
    unit: str
    barcode: str | None
    stock: list[StockRow]


LOOKUP_LIMIT = 10


def lookup_items(q: str, *, limit: int = LOOKUP_LIMIT, sku: str | None = None) -> list[ItemLookup]:
    """Active items matching `q` the way the item list's search does (SKU, name, barcode,
    pinyin), or only the one with this `sku` (a scanned label named it), each with its non-empty
    stock levels, in two statements whatever the count."""
    found: Sequence[Any] = list_items(q=q, limit=limit).rows if q.strip() else []
    if sku is not None:
        found = db.session.execute(
            select(Item.id, Item.sku, Item.name, Item.unit, Item.barcode).where(
                Item.sku == sku, Item.archived.is_(False)
            )
        ).all()
    if not found:
        return []
    held: dict[int, list[StockRow]] = {row.id: [] for row in found}
    levels = db.session.execute(
        select(StockLevel.item_id, Location.code, Location.name, Warehouse.code, StockLevel.quantity)
        .join(Location, Location.id == StockLevel.location_id)
        .join(Warehouse, Warehouse.id == Location.warehouse_id)
        .where(StockLevel.item_id.in_(list(held)), StockLevel.quantity != 0)
        .order_by(StockLevel.quantity.desc(), Location.code)
    )
    for item_id, *row in levels:
        held[item_id].append(StockRow(*row))
    return [ItemLookup(row.sku, row.name, row.unit, row.barcode, held[row.id]) for row in found]


@dataclass(frozen=True)
class StockLevelRow:
    sku: str
    location: str
    warehouse: str
    quantity: Decimal
    lot: str | None = None
    expiry: date | None = None
    lot_key: int = 0
    reserved: Decimal = Decimal(0)


def list_stock_levels(
    *,
    sku: str | None = None,
    location: str | None = None,
    warehouse: str | None = None,
    include_empty: bool = False,
    after: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Page[StockLevelRow]:
    """Stock levels (SKU, location code, warehouse code, quantity, and the lot's code and expiry
    for a lot-tracked item) in (SKU, location, lot) order, one statement per page; `location` and
    `warehouse` are codes. Zero levels are left out unless `include_empty`. Raises InvalidInput
    for a bad cursor."""
    stmt = (
        select(
            Item.sku,
            Location.code,
            Warehouse.code,
            StockLevel.quantity,
            Lot.code,
            Lot.expiry,
            StockLevel.lot_key,
            StockLevel.reserved,
        )
        .select_from(StockLevel)
        .join(Item, Item.id == StockLevel.item_id)
        .join(Location, Location.id == StockLevel.location_id)
        .join(Warehouse, Warehouse.id == Location.warehouse_id)
        .outerjoin(Lot, Lot.id == StockLevel.lot_id)
    )
    if sku:
        stmt = stmt.where(Item.sku == sku)
    if location:
        stmt = stmt.where(Location.code == location)
    if warehouse:
        stmt = stmt.where(Warehouse.code == warehouse)
    if not include_empty:
        stmt = stmt.where(StockLevel.quantity > 0)
    if after:
        values = decode_cursor(after)
        if len(values) != 3 or not all(isinstance(v, str) for v in values[:2]) or not isinstance(values[2], int):
            raise InvalidInput("cursor", "is not a valid page cursor")
        sku_, code, lot_key = values
        stmt = stmt.where(
            or_(
                Item.sku > sku_,
                and_(Item.sku == sku_, Location.code > code),
                and_(Item.sku == sku_, Location.code == code, StockLevel.lot_key > lot_key),
            )
        )
    limit = _limit(limit)
    rows = db.session.execute(stmt.order_by(Item.sku, Location.code, StockLevel.lot_key).limit(limit + 1))
    found = [StockLevelRow(*row) for row in rows]
    if len(found) <= limit:
        return Page(found, None)
    found = found[:limit]
    return Page(found, encode_cursor(found[-1].sku, found[-1].location, found[-1].lot_key))


# ---------------------------------------------------------------- locations


def list_warehouses() -> list[Warehouse]:
    return list(db.session.scalars(select(Warehouse).order_by(Warehouse.code)))


def list_locations(
    *, warehouse: str | None = None, active: bool | None = None, code: str | None = None
) -> list[LocationRow]:
    """Locations with their warehouse, the units they hold and how many items, by code."""
    on_hand = (
        select(
            StockLevel.location_id,
            func.sum(StockLevel.quantity).label("units"),
            # CASE rather than COUNT(...) FILTER (WHERE ...), which MariaDB does not know.
            func.count(case((StockLevel.quantity > 0, StockLevel.item_id))).label("skus"),
        )
        .group_by(StockLevel.location_id)
        .subquery()
    )
    stmt = (
        select(
            Location.id,
            Location.code,
            Location.name,
            Warehouse.code,
            Warehouse.name,
            Location.active,
            func.coalesce(on_hand.c.units, 0),
            func.coalesce(on_hand.c.skus, 0),
        )
        .join(Warehouse, Warehouse.id == Location.warehouse_id)
        .outerjoin(on_hand, on_hand.c.location_id == Location.id)
        .order_by(Location.code)
    )
    if warehouse:
        stmt = stmt.where(Warehouse.code == warehouse)
    if active is not None:
        stmt = stmt.where(Location.active.is_(active))
    if code is not None:
        stmt = stmt.where(Location.code == code)
    return [
        LocationRow(
            id=i,
            code=code,
            name=name,
            warehouse=wh,
            warehouse_name=wh_name,
            active=active,
            on_hand=Decimal(units),
            skus=int(skus),
        )
        for i, code, name, wh, wh_name, active, units, skus in db.session.execute(stmt)
    ]


def get_location(code: str) -> LocationRow:
    """One location as the list shows it. Raises UnknownLocation."""
    found = list_locations(code=code)
    if not found:
        raise UnknownLocation(code)
    return found[0]


def list_location_stock(*, code: str) -> list[LocationStockRow]:
    """What a location holds: every item with stock there, with its unit, by SKU."""
    rows = db.session.execute(
        select(Item.sku, Item.name, Item.unit, StockLevel.quantity, Item.archived, StockLevel.reserved)
        .join(StockLevel, StockLevel.item_id == Item.id)
        .join(Location, Location.id == StockLevel.location_id)
        .where(Location.code == code, StockLevel.quantity > 0)
        .order_by(Item.sku)
    )
    return [LocationStockRow(*row) for row in rows]


# ---------------------------------------------------------------- the ledger


_MOVEMENT_FIELDS = tuple(f.name for f in fields(MovementRow))


def ledger_query() -> Select[Any]:
    """Movements with their item and both location codes, as MovementRow's fields (by name)."""
    source, target = aliased(Location), aliased(Location)
    joined = {
        "sku": Item.sku,
        "item_name": Item.name,
        "unit": Item.unit,
        "from_location": source.code,
        "to_location": target.code,
    }
    # The rest are the movement's own columns, by the same name; in MovementRow's order, so a row
    # unpacks into it.
    return (
        select(
            *((joined[name] if name in joined else getattr(Movement, name)).label(name) for name in _MOVEMENT_FIELDS)
        )
        .join(Item, Item.id == Movement.item_id)
        .outerjoin(source, source.id == Movement.from_location_id)
        .outerjoin(target, target.id == Movement.to_location_id)
    )


def list_movements(
    *,
    sku: str | None = None,
    location: str | None = None,
    kind: str | None = None,
    user: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    reference: str | None = None,
    after: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Page[MovementRow]:
    """Ledger lines, newest first, filtered; `since` is inclusive and `until` exclusive (aware
    datetimes). `location` matches either side of a movement. Raises InvalidInput for a bad cursor."""
    # The page's ids come first, from the ledger alone (newest first, by primary key or a filter's
    # index); only those rows are then joined to items and locations. Joining first lets MariaDB
    # pick a plan that sorts the whole ledger.
    ids = select(Movement.id)
    if sku:
        ids = ids.where(Movement.item_id == select(Item.id).where(Item.sku == sku).scalar_subquery())
    if kind:
        ids = ids.where(Movement.kind == kind)
    if user:
        ids = ids.where(Movement.username == user)
    if since is not None:
        ids = ids.where(Movement.created_at >= since)
    if until is not None:
        ids = ids.where(Movement.created_at < until)
    if reference:
        ids = ids.where(Movement.reference == reference)
    if after:
        last_id = decode_cursor(after)[0]
        if not isinstance(last_id, int):
            raise InvalidInput("cursor", "is not a valid page cursor")
        ids = ids.where(Movement.id < last_id)
    limit = _limit(limit)
    if location:
        page = _either_side(ids, location, limit + 1)
    else:
        page = ids.order_by(Movement.id.desc()).limit(limit + 1).subquery()
    stmt = ledger_query().join(page, page.c.id == Movement.id).order_by(Movement.id.desc())
    found = [MovementRow(*row) for row in db.session.execute(stmt)]
    more = len(found) > limit
    found = found[:limit]
    return Page(found, encode_cursor(found[-1].id) if more and found else None)


def _either_side(ids: Select[Any], location: str, limit: int) -> Any:
    """The newest `limit` ids that leave or enter `location`: each side read backwards on its own
    (location, id) index, then merged. An OR of the two makes MariaDB merge and sort them all."""
    place = select(Location.id).where(Location.code == location).scalar_subquery()
    sides = [
        select(ids.where(column == place).order_by(Movement.id.desc()).limit(limit).subquery().c.id)
        for column in (Movement.from_location_id, Movement.to_location_id)
    ]
    merged = union(*sides).subquery()
    return select(merged.c.id).order_by(merged.c.id.desc()).limit(limit).subquery()


def iter_movements(**filters: Any) -> Iterator[MovementRow]:
    """Every ledger line matching the filters of list_movements, newest first, read in pages."""
    after = None
    while True:
        page = list_movements(**filters, after=after, limit=MAX_LIMIT)
        yield from page.rows
        if page.next_cursor is None:
            return
        after = page.next_cursor


def hide_balances(rows: Iterable[MovementRow], places: Collection[tuple[str, str]]) -> Iterator[MovementRow]:
    """`rows` without their balance after at `places` ((SKU, location code): a blind count's lines):
    the latest balance after at a place is its quantity now."""
    for row in rows:
        hide_from = (row.sku, row.from_location) in places
        hide_to = (row.sku, row.to_location) in places
        if hide_from or hide_to:
            row = replace(
                row,
                from_balance=None if hide_from else row.from_balance,
                to_balance=None if hide_to else row.to_balance,
            )
        yield row


def get_movement(movement_id: int) -> tuple[MovementRow, int | None]:
    """One ledger line and the id of the reversal that undid it (None if it stands). Raises UnknownMovement."""
    row = db.session.execute(ledger_query().where(Movement.id == movement_id)).first()
    if row is None:
        raise UnknownMovement(movement_id)
    reversed_by = db.session.scalar(select(Movement.id).where(Movement.reverses_id == movement_id))
    return MovementRow(*row), reversed_by


# ---------------------------------------------------------------- low stock


def _low_in_warehouse(warehouse: str) -> Select[Any]:
    """Items at or below their reorder point counting only one warehouse's stock: summed here,
    since items.on_hand is the total over every warehouse."""
    totals = (
        select(StockLevel.item_id, func.sum(StockLevel.quantity).label("units"))
        .join(Location, Location.id == StockLevel.location_id)
        .join(Warehouse, Warehouse.id == Location.warehouse_id)
        .where(Warehouse.code == warehouse)
        .group_by(StockLevel.item_id)
        .subquery()
    )
    units = func.coalesce(totals.c.units, 0)
    return (
        select(Item.id, Item.sku, Item.name, Item.unit, units, Item.reorder_point, Item.reorder_quantity)
        .outerjoin(totals, totals.c.item_id == Item.id)
        .where(Item.reorder_point > 0, units <= Item.reorder_point)
    )


def list_low_stock(
    *, warehouse: str | None = None, after: str | None = None, limit: int | None = DEFAULT_LIMIT
) -> Page[LowStockRow]:
    """Active items whose on-hand total (in `warehouse`, or everywhere) is at or below their
    reorder point (items with a reorder point of zero are not tracked), by SKU."""
    if warehouse:
        stmt = _low_in_warehouse(warehouse)
    else:
        stmt = select(
            Item.id, Item.sku, Item.name, Item.unit, Item.on_hand, Item.reorder_point, Item.reorder_quantity
        ).where(Item.is_low == True)  # noqa: E712 (`= 1` seeks the is_low index)
    stmt = stmt.where(Item.archived == False).order_by(Item.sku)  # noqa: E712
    if after:
        stmt = stmt.where(Item.sku > str(decode_cursor(after)[0]))
    if limit is not None:
        stmt = stmt.limit(_limit(limit) + 1)
    found = [
        LowStockRow(id=i, sku=sku, name=name, unit=unit, on_hand=Decimal(units), reorder_point=rp, reorder_quantity=rq)
        for i, sku, name, unit, units, rp, rq in db.session.execute(stmt)
    ]
    if limit is None or len(found) <= _limit(limit):
        return Page(found, None)
    found = found[: _limit(limit)]
    return Page(found, encode_cursor(found[-1].sku))


def location_codes(*, active: bool = True) -> list[str]:
    """Location codes alone (for pickers), by code."""
    return list(db.session.scalars(select(Location.code).where(Location.active.is_(active)).order_by(Location.code)))


# ---------------------------------------------------------------- pick lists


@dataclass(frozen=True)
class PickLineCheck:
    """What one pick line runs into, read without locking: `problem` is None for a line that would
    go through now, else "unknown_item", "archived_item", "unknown_location", "inactive_location"
    or "insufficient" (`available` then says how much there is, for all the lines that take the
    same item from the same place)."""

    problem: str | None
    unit: str = ""
    available: Decimal | None = None


@dataclass(frozen=True)
class MovementNames:
    skus: dict[int, str]
    places: dict[int | None, str | None]


def movement_names(movements: Sequence[Movement], *, given: Sequence[tuple[str, str]]) -> MovementNames:
    """The SKU and source location code of each movement of a pick: as the request `given` them,
    line for line, or read (two queries) when a line over several lots wrote several movements."""
    places: dict[int | None, str | None] = {None: None}
    if len(movements) == len(given):
        skus = {m.item_id: sku for m, (sku, _) in zip(movements, given, strict=True)}
        places |= {m.from_location_id: code for m, (_, code) in zip(movements, given, strict=True)}
        return MovementNames(skus, places)
    item_ids = {m.item_id for m in movements}
    location_ids = {m.from_location_id for m in movements if m.from_location_id is not None}
    skus = dict(db.session.execute(select(Item.id, Item.sku).where(Item.id.in_(item_ids))).tuples().all())
    found = db.session.execute(select(Location.id, Location.code).where(Location.id.in_(location_ids))).tuples()
    places |= dict(found.all())
    return MovementNames(skus, places)


def check_pick_lines(lines: list[tuple[str, str, Decimal]]) -> list[PickLineCheck]:
    """Every line's problem at once (the stock service stops at the first), in three statements.
    For messages only: the issue itself still decides, under its row locks."""
    skus = sorted({sku for sku, _, _ in lines})
    codes = sorted({code for _, code, _ in lines})
    items = {
        row.sku: row
        for row in db.session.execute(select(Item.id, Item.sku, Item.unit, Item.archived).where(Item.sku.in_(skus)))
    }
    places = {
        row.code: row
        for row in db.session.execute(
            select(Location.id, Location.code, Location.active).where(Location.code.in_(codes))
        )
    }
    held: dict[tuple[int, int], Decimal] = {}
    if items and places:
        # What a pick may take: the unreserved part (issue 18), as the stock service decides.
        available = StockLevel.quantity - StockLevel.reserved
        levels = select(StockLevel.item_id, StockLevel.location_id, available).where(
            StockLevel.item_id.in_([row.id for row in items.values()]),
            StockLevel.location_id.in_([row.id for row in places.values()]),
        )
        for item_id, location_id, quantity in db.session.execute(levels):  # a lot-tracked item: every lot
            held[(item_id, location_id)] = held.get((item_id, location_id), Decimal(0)) + quantity
    wanted: dict[tuple[str, str], Decimal] = {}
    for sku, code, quantity in lines:
        wanted[(sku, code)] = wanted.get((sku, code), Decimal(0)) + quantity
    return [_check_line(items.get(sku), places.get(code), held, wanted[(sku, code)]) for sku, code, _ in lines]


def _check_line(item: Any, place: Any, held: dict[tuple[int, int], Decimal], wanted: Decimal) -> PickLineCheck:
    if item is None:
        return PickLineCheck("unknown_item")
    if item.archived:
        return PickLineCheck("archived_item", item.unit)
    if place is None:
        return PickLineCheck("unknown_location", item.unit)
    if not place.active:
        return PickLineCheck("inactive_location", item.unit)
    available = Decimal(held.get((item.id, place.id), 0))
    return PickLineCheck("insufficient" if available < wanted else None, item.unit, available)


def canonical_sku(sku: str) -> str:
    """The SKU as stored, for one typed in another case (demo-000001 for DEMO-000001): the
    stored one when exactly one item matches that way, else the text unchanged (the stock
    service then names it unknown). MariaDB's collation already ignores case; SQLite's does not,
    so a miss there costs one scan of the SKUs."""
    text = (sku or "").strip()
    if not text:
        return text
    exact = db.session.scalars(select(Item.sku).where(Item.sku == text).limit(2)).all()
    if len(exact) == 1:
        return exact[0]
    if exact:
        return text
    folded = db.session.scalars(select(Item.sku).where(func.lower(Item.sku) == text.lower()).limit(2)).all()
    return folded[0] if len(folded) == 1 else text
