"""The stock core: what every writer of stock levels shares (stock, reservations, combining).

Three things live here, so that the stock service, the reservation service and combined
stock-outs use one implementation through named functions rather than each other's private
helpers: what a request names and says (items, places, lots, checked text, lot codes and
serials), the request itself (who, why, its idempotency key, and the replay of an earlier
identical one), and the stock levels (locking them, taking from them, writing them and their
ledger lines). Lock order is the unique index's (item id, location id, lot key), as the stock
module's docstring says.

Nothing here is a transaction of its own: every function runs in its caller's unit of work.
Of the services it imports only idempotency and transaction (and small helpers: codes, errors,
quantities, text), so the imports run one way (stock -> combining, holds -> stock_core;
reservations -> stock, holds, stock_core) and no service reaches into another's private names.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Required, TypedDict, TypeVar, cast

from blinker import Namespace
from flask import current_app
from sqlalchemy import Table, bindparam, func, insert, or_, select, update

from app.extensions import db
from app.models.item import Item
from app.models.location import Location
from app.models.stock import REASON_CODES, Lot, Movement, OutboxEvent, StockLevel
from app.models.types import QUANTITY_STEP as STEP
from app.models.types import utcnow
from app.observability import tracing
from app.services import idempotency, transaction
from app.services.codes import compared
from app.services.errors import (
    ArchivedItem,
    IdempotencyConflict,
    InactiveLocation,
    InsufficientStock,
    InvalidInput,
    NotTracked,
    QuantityOutOfRange,
    UnknownLot,
)
from app.services.quantities import MAX_QUANTITY
from app.services.text import multi_line

signals = Namespace()
#: Sent when a decrement is refused for lack of stock, with `kind`.
stock_rejected = signals.signal("stock-rejected")

_movements = cast(Table, Movement.__table__)
_levels = cast(Table, StockLevel.__table__)
_lots = cast(Table, Lot.__table__)
_items = cast(Table, Item.__table__)
_outbox_events = cast(Table, OutboxEvent.__table__)
ZERO = Decimal("0.000")
_T = TypeVar("_T")

# Built once: constructing a statement costs more Python time than executing it (stock's hot path).
# The reserved part rides along in the same locking read: a plain issue takes only what is not
# reserved (issue 18), at no extra statement.
_LOCK_LEVEL = (
    select(_levels.c.id, _levels.c.quantity, _levels.c.reserved)
    .where(
        _levels.c.item_id == bindparam("item_id"),
        _levels.c.location_id == bindparam("location_id"),
        _levels.c.lot_key == bindparam("lot_key"),
    )
    .with_for_update()
)
# Issue 19: a combined stock-out first tries the lock without waiting (see combining.issue).
_LOCK_LEVEL_FREE = _LOCK_LEVEL.with_for_update(skip_locked=True)
# Every level of an item (at some places, or anywhere), locked in the unique index's (location,
# lot) order: what a reservation may hold, locked as stock movements lock (issue 18).
_LOCK_ITEM_LEVELS = (
    select(_levels.c.id, _levels.c.location_id, _levels.c.lot_id, _levels.c.quantity, _levels.c.reserved)
    .where(_levels.c.item_id == bindparam("item_id"))
    .order_by(_levels.c.location_id, _levels.c.lot_key)
    .with_for_update()
)
# The items rows a multi-item writer will touch, in id order (lock_items).
_LOCK_ITEMS = (
    select(_items.c.id)
    .where(_items.c.id.in_(bindparam("item_ids", expanding=True)))
    .order_by(_items.c.id)
    .with_for_update()
)
_UPDATE_HELD = (
    update(_levels)
    .where(_levels.c.id == bindparam("level_id"))
    .values(quantity=bindparam("new_quantity"), reserved=bindparam("new_reserved"), updated_at=bindparam("now"))
)
_UPDATE_LEVEL = (
    update(_levels)
    .where(_levels.c.id == bindparam("level_id"))
    .values(quantity=bindparam("new_quantity"), updated_at=bindparam("now"))
)
_INSERT_LEVEL = insert(_levels)
_INSERT_MOVEMENT = insert(_movements)


# ---------------------------------------------------------------- what a request names


@dataclass(frozen=True, slots=True)
class ItemFacts:
    """An item as a movement reads it, once per request."""

    id: int
    sku: str
    archived: bool
    reorder_point: Decimal
    tracking: str = "none"


@dataclass(frozen=True, slots=True)
class LocationFacts:
    """A location as a movement reads it, once per request."""

    id: int
    code: str
    active: bool
    counted: bool = False  # only stock._resolve_pair asks; see stock._mark_counted for the others


@dataclass(frozen=True, slots=True)
class LotFacts:
    """A lot as a movement reads it: what first-expired-first-out orders by."""

    id: int
    code: str
    expiry: date | None
    received_at: datetime

    def expired(self, today: date) -> bool:
        return self.expiry is not None and self.expiry < today

    def fefo(self) -> tuple[bool, date, datetime, int]:
        """First expired, first out; then oldest received; lots without an expiry last."""
        return (self.expiry is None, self.expiry or date.max, self.received_at, self.id)


LOT_COLUMNS = (_lots.c.id, _lots.c.code, _lots.c.expiry, _lots.c.received_at)


def item_query() -> Any:
    """The columns ItemFacts is built from."""
    return select(Item.id, Item.sku, Item.archived, Item.reorder_point, Item.tracking)


# Built once with an expanding parameter: building IN (...) over 1,000 SKUs coerces each of them.
_RESOLVE_ITEMS = item_query().where(Item.sku.in_(bindparam("skus", expanding=True)))


_items = cast(Table, Item.__table__)
# Up to this many SKUs are looked up as IN (...) of bound parameters (a pick's at most 500);
# more as JSON lists joined to the items (transaction.listed), read back packed. Measured on
# MariaDB (issue 13, busy machine, best of 3): 1,000 SKUs 12 ms as IN, 8 ms listed; 2,000 26 and
# 15 ms; 20,000 283 and 142 ms. Below the bound a statement compiled once, and no lookup of the
# column's collation, keep a pick's statement count as it was.
BOUND_SKUS = 1000


def items_by_sku(skus: set[str]) -> dict[str, ItemFacts]:
    """The items of `skus` that exist, keyed as asked (as_asked)."""
    if len(skus) <= BOUND_SKUS:
        rows = (r for chunk in chunks(sorted(skus)) for r in execute(_RESOLVE_ITEMS, {"skus": chunk}))
        return as_asked({r.sku: ItemFacts(*r) for r in rows}, skus)
    found = (f for values in transaction.listed(skus, like=_items.c.sku) for f in _packed_items(values))
    return as_asked({f.sku: f for f in found}, skus)


def _packed_items(values: Any) -> list[ItemFacts]:
    """The items whose SKU is in `values` (a transaction.listed table), read as one JSON array:
    PyMySQL parses each column of each row in Python, and the 5 columns of 100,000 items took
    about 1.0 s of CPU as rows (issue 13). Decimals travel as JSON numbers, read back exactly; a
    document cut short (MariaDB bounds it by group_concat_max_len) is read again as rows."""
    matched = item_query().join(values, Item.sku == values.c.value).subquery()
    agg = func.json_arrayagg if transaction.connection().dialect.name == "mysql" else func.json_group_array
    packed = select(func.count(), agg(func.json_array(*matched.c)))
    count, document = execute(packed).one()
    try:
        rows = json.loads(document or "[]", parse_float=Decimal)
    except ValueError:
        rows = None
    if rows is None or len(rows) != count:
        return [ItemFacts(*r) for r in execute(select(matched))]
    return [
        ItemFacts(i, sku, bool(archived), Decimal(point).quantize(STEP), kind) for i, sku, archived, point, kind in rows
    ]


def locations_by_code(codes: set[str]) -> dict[str, LocationFacts]:
    """The locations of `codes` that exist, keyed as asked (as_asked)."""
    if not codes:
        return {}
    rows = db.session.execute(select(Location.id, Location.code, Location.active).where(Location.code.in_(codes)))
    return as_asked({r.code: LocationFacts(*r) for r in rows}, codes)


def as_asked(found: dict[str, _T], asked: set[str]) -> dict[str, _T]:
    """`found` (keyed as stored) keyed as the request wrote it. IN (...) matched as the database
    compares (on MariaDB without case or accents): the same comparison finds the row here, so
    "sku-1" picks in a multi-line pick exactly as it does in a single issue."""
    exact = {key: found[key] for key in asked if key in found}
    if len(exact) == len(asked):
        return exact  # folding 100,000 keys costs more than the query that found them
    folded = {compared(key): value for key, value in found.items()}
    matched = ((key, exact.get(key) or folded.get(compared(key))) for key in asked)
    return {key: value for key, value in matched if value is not None}


def find_lot(item: ItemFacts, code: str) -> LotFacts:
    row = db.session.execute(select(*LOT_COLUMNS).where(_lots.c.item_id == item.id, _lots.c.code == code)).first()
    if row is None:
        raise UnknownLot(item.sku, code)
    return LotFacts(*row)


def chunks(values: Sequence[_T], size: int = 1000) -> Iterable[Sequence[_T]]:
    """`values` in slices small enough for one IN (...) each."""
    return (values[start : start + size] for start in range(0, len(values), size))


# ---------------------------------------------------------------- checking what a request says


MAX_LOT_CODE = 64


MAX_SERIAL = 100


def clean_text(value: str | None, field: str, limit: int) -> str | None:
    """A reference or note: trimmed, at most `limit` characters (InvalidInput), None when blank."""
    if value is None:
        return None
    value = multi_line(value.strip(), field)
    if len(value) > limit:
        raise InvalidInput(field, f"at most {limit} characters")
    return value or None


def acting_user(user: str) -> str:
    """The acting username, trimmed; InvalidInput when there is none."""
    if not isinstance(user, str) or not user.strip():
        raise InvalidInput("user", "the acting user is required")
    return user.strip()


def clean_code(value: str | None, field_name: str, limit: int) -> str | None:
    """A lot code or serial as typed or scanned: trimmed, one line, at most `limit` characters."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(field_name, "must be text")
    value = value.strip()
    if "\n" in value or "\r" in value or "\t" in value:
        raise InvalidInput(field_name, "one line of text")
    if len(value) > limit:
        raise InvalidInput(field_name, f"at most {limit} characters")
    return value or None


def serial_list(serials: Sequence[str] | None) -> tuple[str, ...]:
    """The serials named, trimmed; refuses blanks and repeats (also two the database compares as
    one, such as "sn-1" and "SN-1" on MariaDB)."""
    if serials is None:
        return ()
    if isinstance(serials, str):
        serials = [s for s in serials.replace(",", "\n").splitlines() if s.strip()]
    out = tuple(clean_code(s, "serials", MAX_SERIAL) or "" for s in serials)
    if "" in out:
        raise InvalidInput("serials", "a serial number is blank")
    if len({compared(s) for s in out}) != len(out):
        raise InvalidInput("serials", "a serial number is named twice")
    return out


def today() -> date:
    """The date lots expire against (UTC)."""
    return utcnow().date()


def check_movable(item: ItemFacts, *locations: LocationFacts) -> None:
    """Refuse an archived item (ArchivedItem) or an inactive location (InactiveLocation)."""
    if item.archived:
        raise ArchivedItem(item.sku)
    for location in locations:
        if not location.active:
            raise InactiveLocation(location.code)


def check_tracking(item: ItemFacts, lot: str | None, serials: Sequence[str], expiry: date | None = None) -> None:
    """Refuse a lot (or expiry) for an item without lots, serials for one without serials."""
    if (lot is not None or expiry is not None) and item.tracking != "lot":
        raise NotTracked(sku=item.sku, tracking=item.tracking, field="lot")
    if serials and item.tracking != "serial":
        raise NotTracked(sku=item.sku, tracking=item.tracking, field="serials")


# ---------------------------------------------------------------- the request and its idempotency key


class Acting(TypedDict, total=False):
    """Who asks, why, and the idempotency key: the keyword arguments every operation takes
    besides its quantities. `user` (a username) is required; `caller` is whose the key is (an API
    token, "token:<id>"; by default the user); `reason_code` (REASON_CODES) says the system wrote
    the line, e.g. "scan" for the scan page."""

    user: Required[str]
    reference: str | None
    note: str | None
    reason_code: str | None
    idempotency_key: str | None
    caller: str | None


@dataclass(frozen=True, slots=True)
class Request:
    """What every movement records besides its quantities: who, why, and the idempotency key."""

    reference: str | None
    note: str | None
    user: str
    key: str | None
    digest: str | None
    scope: str
    reason_code: str | None = None

    def ledger(self, key: str | None = None) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "note": self.note,
            "username": self.user,
            "idempotency_scope": self.scope if self.key else None,
            "idempotency_key": key or self.key,
            "request_hash": self.digest,
            "reason_code": self.reason_code,
        }


def make_request(operation: str, acting: Acting, **facts: Any) -> Request:
    """Check the common fields; fingerprint the request only when a key makes it replayable."""
    reference = clean_text(acting.get("reference"), "reference", 100)
    note = clean_text(acting.get("note"), "note", 500)
    user = acting_user(acting.get("user", ""))
    key = idempotency.check_key(acting.get("idempotency_key"))
    reason_code = acting.get("reason_code")
    if reason_code is not None and reason_code not in REASON_CODES:
        raise InvalidInput("reason_code", f"one of {', '.join(REASON_CODES)}")
    # Only a set reason code joins the fingerprint, so keys stored before it existed still replay.
    coded = {"reason_code": reason_code} if reason_code else {}
    digest = idempotency.fingerprint(operation, reference=reference, note=note, **coded, **facts) if key else None
    scope = idempotency.scope(user, acting.get("caller"))
    return Request(reference, note, user, key, digest, scope, reason_code)


def replay(scope: str, keys: Sequence[str], request_hash: str) -> list[Movement] | None:
    """The movements an earlier identical request of this caller wrote under `keys`, if any;
    with the further lines of any that took several lots (keyed `<key>#2`, `<key>#3`, …)."""
    found = db.session.scalars(
        select(Movement)
        .where(Movement.idempotency_scope == scope, Movement.idempotency_key.in_(keys))
        .order_by(Movement.id)
    ).all()
    if not found:
        return None
    if any(m.request_hash != request_hash for m in found) or len(found) != len(keys):
        raise IdempotencyConflict(keys[0].split("#")[0])
    if any(m.lot_id is not None for m in found):
        split = db.session.scalars(
            select(Movement)
            .where(
                Movement.idempotency_scope == scope,
                or_(*(Movement.idempotency_key.like(_like_prefix(f"{key}#"), escape="\\") for key in keys)),
                Movement.request_hash == request_hash,
            )
            .order_by(Movement.id)
        ).all()
        return sorted({m.id: m for m in [*found, *split]}.values(), key=lambda m: m.id)
    return list(found)


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# ---------------------------------------------------------------- locking, taking and writing levels


def execute(statement: Any, params: dict[str, Any] | list[dict[str, Any]] | None = None) -> Any:
    """Run a Core statement on the unit of work's connection, skipping the ORM's execute layer."""
    return transaction.connection().execute(statement, params)


@dataclass(slots=True)
class Level:
    """A stock level as its locking read found it (`id` None: none yet, reads as zero), kept up to
    date by the writes below."""

    id: int | None
    quantity: Decimal
    lot_id: int | None = None
    # What open reservations hold of `quantity` (issue 18).
    reserved: Decimal = ZERO

    @property
    def lot_key(self) -> int:
        return self.lot_id or 0

    @property
    def available(self) -> Decimal:
        """What a plain issue, a transfer or a reservation may take: on hand less reserved."""
        return self.quantity - self.reserved


def lock_level(item_id: int, location_id: int, lot_id: int | None = None, *, if_free: bool = False) -> Level | None:
    """The level, locked (None when there is none). With `if_free`, None too when another
    transaction holds its lock, at once instead of waiting for it."""
    # Under contention a stock-out waits here: in a trace, this span's length is the lock wait.
    with tracing.span("stock.lock", **{"inventory.item_id": item_id, "inventory.location_id": location_id}):
        statement = _LOCK_LEVEL_FREE if if_free else _LOCK_LEVEL
        row = execute(statement, {"item_id": item_id, "location_id": location_id, "lot_key": lot_id or 0}).first()
    return None if row is None else Level(row[0], row[1], lot_id, row[2])


def lock_item_levels(item_id: int, location_ids: Collection[int] | None = None) -> dict[tuple[int, int], Level]:
    """The existing stock levels of an item, or of it at `location_ids`, locked, keyed by
    (location id, lot key). The reservation service calls it item by item in item id order, so
    its locks follow the (item, location, lot) order of every other writer."""
    statement = _LOCK_ITEM_LEVELS
    if location_ids is not None:
        statement = statement.where(_levels.c.location_id.in_(sorted(location_ids)))
    with tracing.span("stock.lock", **{"inventory.item_id": item_id}):
        rows = execute(statement, {"item_id": item_id}).all()
    return {
        (location_id, lot_id or 0): Level(level_id, quantity, lot_id, reserved)
        for level_id, location_id, lot_id, quantity, reserved in rows
    }


def lock_items(item_ids: Iterable[int]) -> None:
    """Lock the items rows of a writer that touches several items, in item id order, after its
    stock levels and before its first level write. On MariaDB/MySQL the triggers on stock_levels
    update the item's row (on_hand, reserved) at every level write, so a writer would otherwise
    lock items rows in the order it writes levels (its caller's line order): two writers holding
    different levels of items X and Y (X and Y each at two places) took X's row and Y's in
    opposite orders and deadlocked, each costing a rollback and a retry. One writer of one item
    runs no extra statement; SQLite has one writer at a time and none either.

    Why no cycle: every stock writer takes its row locks in one order, stock levels in the unique
    index's (item, location, lot) order, then items rows in id order. A one-item writer locks its
    levels, then its item row (its first write's trigger, or stock._recheck_tracking, the
    receipts' and stocktakes' SELECT ... FOR UPDATE of the item after its level); a multi-item
    writer locks all its levels, then here all its items rows (receive_lines' _recheck_tracking is
    this same ordered lock), and its triggers then find those rows already held. Item edits
    (items.update_item, update_items) lock items rows only, in id order. So no writer holds an item
    row while it waits for a level, nor a row of a later item while it waits for an earlier one's."""
    ids = sorted(set(item_ids))
    if len(ids) < 2:
        return
    conn = transaction.connection()
    if conn.dialect.name == "sqlite":
        return
    for chunk in chunks(ids):
        conn.execute(_LOCK_ITEMS, {"item_ids": list(chunk)})


def take(item: ItemFacts, location: LocationFacts, level: Level, quantity: Decimal, kind: str) -> Decimal:
    """The balance after taking `quantity` out; refuses to take reserved stock or go below zero
    (InsufficientStock with the available, unreserved, quantity)."""
    if level.available < quantity:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        stock_rejected.send(app, kind=kind)
        raise InsufficientStock(sku=item.sku, location=location.code, requested=quantity, available=level.available)
    return level.quantity - quantity


def store_level(item_id: int, location_id: int, level: Level, quantity: Decimal) -> None:
    """Write the locked `level`'s new quantity, inserting it when it did not exist. Raises
    QuantityOutOfRange past what the columns hold."""
    if quantity > level.quantity:
        _check_range(item_id, location_id, quantity, quantity - level.quantity)
    now = utcnow()
    if level.id is None:
        # A concurrent first receipt may insert the same row: its duplicate-key error makes
        # the unit of work run again, and then this row is found and locked.
        values = {"item_id": item_id, "location_id": location_id, "quantity": quantity, "updated_at": now}
        if level.lot_id is not None:
            values.update(lot_id=level.lot_id, lot_key=level.lot_id)
        result = execute(_INSERT_LEVEL, values)
        level.id = result.inserted_primary_key[0]
    else:
        execute(_UPDATE_LEVEL, {"level_id": level.id, "new_quantity": quantity, "now": now})
    level.quantity = quantity


def _check_range(item_id: int, location_id: int, quantity: Decimal, increase: Decimal) -> None:
    """Refuse a level, or the item's total (kept by triggers), past what NUMERIC(18, 3) holds:
    MariaDB would answer "out of range" and the request a 500. Raises QuantityOutOfRange."""
    total = db.session.scalar(select(Item.on_hand).where(Item.id == item_id)) or ZERO
    if quantity > MAX_QUANTITY or total + increase > MAX_QUANTITY:
        sku = db.session.scalar(select(Item.sku).where(Item.id == item_id)) or str(item_id)
        code = db.session.scalar(select(Location.code).where(Location.id == location_id)) or str(location_id)
        raise QuantityOutOfRange(sku=sku, location=code, limit=MAX_QUANTITY)


def store_held(level: Level, *, reserved: Decimal, quantity: Decimal | None = None) -> None:
    """Write a locked, existing level's reserved part, and its quantity when a pick or a
    stocktake changes it, in one UPDATE (the database checks 0 <= reserved <= quantity after it)."""
    new_quantity = level.quantity if quantity is None else quantity
    values = {"level_id": level.id, "new_quantity": new_quantity, "new_reserved": reserved, "now": utcnow()}
    execute(_UPDATE_HELD, values)
    level.quantity, level.reserved = new_quantity, reserved


def record_movement(**values: Any) -> Movement:
    """Append a ledger line with these column values."""
    values.setdefault("created_at", utcnow())
    result = execute(_INSERT_MOVEMENT, values)
    # A plain value object: the row is written by Core, and the ORM need not track it.
    return Movement(id=result.inserted_primary_key[0], **values)


def record_at(side: str, location: LocationFacts, level: Level, **values: Any) -> Movement:
    """The ledger line of a one-place movement: out of ("from") or into ("to") `location`, which
    now holds `level`. The side is marked counted when an open count covers the place (read by
    stock._resolve_pair in the same transaction)."""
    movement = record_movement(**{f"{side}_location_id": location.id, f"{side}_balance": level.quantity}, **values)
    if location.counted:
        movement.counted_sides = frozenset({side})
    return movement


def note_low_stock(item: ItemFacts, location_id: int, before: Decimal, after: Decimal, movement: Movement) -> None:
    """Outbox row when this movement takes the level down to or through the reorder point."""
    if after <= item.reorder_point < before:
        db.session.execute(
            insert(_outbox_events).values(
                item_id=item.id,
                location_id=location_id,
                movement_id=movement.id,
                quantity=after,
                reorder_point=item.reorder_point,
                created_at=utcnow(),
                next_attempt_at=utcnow(),
                status="pending",
                attempts=0,
                # The delivery, later and in another process, links its trace to this one.
                traceparent=tracing.current_traceparent(),
            )
        )


def take_out(item: ItemFacts, loc: LocationFacts, level: Level, qty: Decimal, req: Request) -> Movement:
    """One plain stock-out of `qty` from the locked `level`: its new balance, its ledger line and
    the low-stock note. Raises InsufficientStock (having changed nothing)."""
    before = level.quantity
    store_level(item.id, loc.id, level, take(item, loc, level, qty, "issue"))
    movement = record_at("from", loc, level, kind="issue", item_id=item.id, quantity=qty, **req.ledger())
    note_low_stock(item, loc.id, before, level.quantity, movement)
    return movement
