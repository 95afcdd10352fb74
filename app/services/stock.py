"""Stock movements: the only code that changes on-hand quantities.

Each public function is one transaction (see transaction.unit_of_work): it locks the stock-level
rows it changes with SELECT ... FOR UPDATE, in (item id, location id) order so that two
multi-line operations can never wait on each other in a cycle, checks the facts on the locked rows,
updates them and appends the ledger lines. The hot path (issue_stock) uses Core statements: one
read to resolve SKU and location, one locking read, one UPDATE, one INSERT.

An idempotency key belongs to its caller (`caller`, an API token, or else `user`): a repeated
request of the same caller returns what the first one wrote; another caller's is its own request.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Required, TypedDict, TypeVar, Unpack, cast

from blinker import Namespace
from flask import current_app
from sqlalchemy import Table, and_, bindparam, exists, insert, or_, select, true, update

from app.extensions import db
from app.models.count import Count, CountLine
from app.models.item import Item
from app.models.location import Location
from app.models.stock import REASON_CODES, Lot, LowStockEvent, Movement, MovementSerial, Serial, StockLevel
from app.models.types import utcnow
from app.observability import tracing
from app.services import idempotency, transaction
from app.services.codes import compared
from app.services.errors import (
    AlreadyReversed,
    ArchivedItem,
    ExpiredLot,
    ExpiryMismatch,
    ExpiryRequired,
    IdempotencyConflict,
    InactiveLocation,
    InsufficientStock,
    InvalidInput,
    IrreversibleMovement,
    LotRequired,
    NotTracked,
    QuantityOutOfRange,
    SameLocation,
    SerialCountMismatch,
    SerialExists,
    SerialNotHere,
    UnknownItem,
    UnknownLocation,
    UnknownLot,
    UnknownMovement,
    UnknownSerial,
)
from app.services.quantities import MAX_QUANTITY, parse_quantity
from app.services.text import multi_line
from app.services.transaction import after_commit, unit_of_work

signals = Namespace()
#: Sent after commit with `movements` (list of Movement) for metrics and notifications.
stock_moved = signals.signal("stock-moved")
#: Sent when a decrement is refused for lack of stock, with `kind`.
stock_rejected = signals.signal("stock-rejected")

_movements = cast(Table, Movement.__table__)
_levels = cast(Table, StockLevel.__table__)
_low_stock_events = cast(Table, LowStockEvent.__table__)
_count_lines = cast(Table, CountLine.__table__)
_lots = cast(Table, Lot.__table__)
_serials = cast(Table, Serial.__table__)
_movement_serials = cast(Table, MovementSerial.__table__)
_counts = cast(Table, Count.__table__)
ZERO = Decimal("0.000")
_T = TypeVar("_T")

# The hot path's statements, built once: constructing a statement costs more Python time than
# executing it. They run on the session's connection (Core), skipping the ORM's execute layer.
# It leaves out the SKU and code the caller already has: PyMySQL parses a descriptor for every
# column of every result, and those were a tenth of a stock-out's CPU.
# A place an open count covers: its balance is the count's answer, so a counter is not shown it.
_OPEN_COUNT = and_(_counts.c.id == _count_lines.c.count_id, _counts.c.status == "open")
# Whether the place is being counted rides along in the same round trip (an EXISTS on the indexed
# count lines of this item): asked after the commit it was one more query per clerk's stock-out,
# and the API hot-SKU benchmark fell from 0.57 to 0.43 of the raw transaction (issue 14).
_RESOLVE_PAIR = (
    select(
        Item.id,
        Item.archived,
        Item.reorder_point,
        Item.tracking,  # how the stock is told apart (issue 17): untracked stays on this path
        Location.id,
        Location.active,
        exists()
        .where(_count_lines.c.item_id == Item.id, _count_lines.c.location_id == Location.id, _OPEN_COUNT)
        .label("counted"),
    )
    .join(Location, true())  # two independent lookups in one round trip
    .where(Item.sku == bindparam("sku"), Location.code == bindparam("code"))
)
_COUNTED_PLACES = select(_count_lines.c.item_id, _count_lines.c.location_id).where(
    _OPEN_COUNT, _count_lines.c.item_id.in_(bindparam("item_ids", expanding=True))
)
_LOCK_LEVEL = (
    select(_levels.c.id, _levels.c.quantity)
    .where(
        _levels.c.item_id == bindparam("item_id"),
        _levels.c.location_id == bindparam("location_id"),
        _levels.c.lot_key == bindparam("lot_key"),
    )
    .with_for_update()
)
# Every lot's level of an item at a place, locked in the unique index's (lot_key) order.
_LOCK_LOT_LEVELS = (
    select(_levels.c.id, _levels.c.quantity, _levels.c.lot_id)
    .where(
        _levels.c.item_id == bindparam("item_id"),
        _levels.c.location_id == bindparam("location_id"),
        _levels.c.lot_key > 0,
    )
    .order_by(_levels.c.lot_key)
    .with_for_update()
)
_UPDATE_LEVEL = (
    update(_levels)
    .where(_levels.c.id == bindparam("level_id"))
    .values(quantity=bindparam("new_quantity"), updated_at=bindparam("now"))
)
_INSERT_LEVEL = insert(_levels)
_INSERT_MOVEMENT = insert(_movements)


def _execute(statement: Any, params: dict[str, Any] | list[dict[str, Any]] | None = None) -> Any:
    return transaction.connection().execute(statement, params)


def _chunks(values: Sequence[_T], size: int = 1000) -> Iterable[Sequence[_T]]:
    """`values` in slices small enough for one IN (...) each."""
    return (values[start : start + size] for start in range(0, len(values), size))


@dataclass(frozen=True, slots=True)
class _Item:
    id: int
    sku: str
    archived: bool
    reorder_point: Decimal
    tracking: str = "none"


@dataclass(frozen=True, slots=True)
class _Location:
    id: int
    code: str
    active: bool
    counted: bool = False  # only _resolve_pair asks; see _mark_counted for the others


@dataclass(slots=True)
class _Level:
    id: int | None
    quantity: Decimal
    lot_id: int | None = None

    @property
    def lot_key(self) -> int:
        return self.lot_id or 0


@dataclass(frozen=True, slots=True)
class PickLine:
    """One line of a multi-line pick (issue_lines) or a bulk receipt (receive_lines). A line of a
    lot-tracked item may name its `lot` (a receipt must, with its `expiry` when the item requires
    one); a line of a serial-tracked item names its `serials`."""

    sku: str
    location: str
    quantity: Decimal | str | int
    lot: str | None = None
    expiry: date | str | None = None
    serials: Sequence[str] = ()


# ---------------------------------------------------------------- reading what a request names


def _item_query() -> Any:
    return select(Item.id, Item.sku, Item.archived, Item.reorder_point, Item.tracking)


# Built once with an expanding parameter: building IN (...) over 1,000 SKUs coerces each of them.
_RESOLVE_ITEMS = _item_query().where(Item.sku.in_(bindparam("skus", expanding=True)))


def _resolve_item(sku: str) -> _Item:
    row = db.session.execute(_item_query().where(Item.sku == sku)).first()
    if row is None:
        raise UnknownItem(sku)
    return _Item(*row)


def _resolve_location(code: str) -> _Location:
    row = db.session.execute(select(Location.id, Location.code, Location.active).where(Location.code == code)).first()
    if row is None:
        raise UnknownLocation(code)
    return _Location(*row)


def _resolve_pair(sku: str, code: str) -> tuple[_Item, _Location]:
    """Item and location in one round trip; on a miss, find out which one is unknown."""
    row = _execute(_RESOLVE_PAIR, {"sku": sku, "code": code}).first()
    if row is None:
        _resolve_item(sku)
        raise UnknownLocation(code)
    item_id, archived, reorder_point, tracking, location_id, active, counted = row
    return _Item(item_id, sku, archived, reorder_point, tracking), _Location(location_id, code, active, bool(counted))


def _mark_counted(movements: list[Movement]) -> list[Movement]:
    """Set `counted_sides` on `movements` (one query, in the caller's transaction)."""
    if movements:
        places = set(_execute(_COUNTED_PLACES, {"item_ids": sorted({m.item_id for m in movements})}).tuples())
        for m in movements:
            m.counted_sides = frozenset(
                side
                for side, location_id in (("from", m.from_location_id), ("to", m.to_location_id))
                if (m.item_id, location_id) in places
            )
    return movements


def _check_movable(item: _Item, *locations: _Location) -> None:
    if item.archived:
        raise ArchivedItem(item.sku)
    for location in locations:
        if not location.active:
            raise InactiveLocation(location.code)


def _text(value: str | None, field: str, limit: int) -> str | None:
    if value is None:
        return None
    value = multi_line(value.strip(), field)
    if len(value) > limit:
        raise InvalidInput(field, f"at most {limit} characters")
    return value or None


def _username(user: str) -> str:
    if not isinstance(user, str) or not user.strip():
        raise InvalidInput("user", "the acting user is required")
    return user.strip()


# ---------------------------------------------------------------- locks, balances, ledger lines


def _lock(item_id: int, location_id: int, lot_id: int | None = None) -> _Level | None:
    # Under contention a stock-out waits here: in a trace, this span's length is the lock wait.
    with tracing.span("stock.lock", **{"inventory.item_id": item_id, "inventory.location_id": location_id}):
        row = _execute(_LOCK_LEVEL, {"item_id": item_id, "location_id": location_id, "lot_key": lot_id or 0}).first()
    return None if row is None else _Level(row[0], row[1], lot_id)


def _lock_place(sku: str, code: str) -> tuple[_Item, _Location, _Level]:
    """The item and place of a one-place movement (receive, issue, adjust), checked movable, with
    the place's level locked (a missing level reads as zero until `_store` inserts it)."""
    item, location = _resolve_pair(sku, code)
    _check_movable(item, location)
    return item, location, _lock(item.id, location.id) or _Level(None, ZERO)


def _lock_in_order(keys: Iterable[tuple[int, int, int | None]]) -> dict[tuple[int, int, int | None], _Level]:
    """Lock each (item id, location id, lot id) stock level in the unique index's order (a lot
    id of None sorts as 0, stock without a lot); missing ones read as zero."""
    levels: dict[tuple[int, int, int | None], _Level] = {}
    for key in sorted(set(keys), key=lambda k: (k[0], k[1], k[2] or 0)):
        levels[key] = _lock(*key) or _Level(None, ZERO, key[2])
    return levels


def _store(item_id: int, location_id: int, level: _Level, quantity: Decimal) -> None:
    if quantity > level.quantity:
        _check_range(item_id, location_id, quantity, quantity - level.quantity)
    now = utcnow()
    if level.id is None:
        # A concurrent first receipt may insert the same row: its duplicate-key error makes
        # the unit of work run again, and then this row is found and locked.
        values = {"item_id": item_id, "location_id": location_id, "quantity": quantity, "updated_at": now}
        if level.lot_id is not None:
            values.update(lot_id=level.lot_id, lot_key=level.lot_id)
        result = _execute(_INSERT_LEVEL, values)
        level.id = result.inserted_primary_key[0]
    else:
        _execute(_UPDATE_LEVEL, {"level_id": level.id, "new_quantity": quantity, "now": now})
    level.quantity = quantity


def _check_range(item_id: int, location_id: int, quantity: Decimal, increase: Decimal) -> None:
    """Refuse a level, or the item's total (kept by triggers), past what NUMERIC(18, 3) holds:
    MariaDB would answer "out of range" and the request a 500. Raises QuantityOutOfRange."""
    total = db.session.scalar(select(Item.on_hand).where(Item.id == item_id)) or ZERO
    if quantity > MAX_QUANTITY or total + increase > MAX_QUANTITY:
        sku = db.session.scalar(select(Item.sku).where(Item.id == item_id)) or str(item_id)
        code = db.session.scalar(select(Location.code).where(Location.id == location_id)) or str(location_id)
        raise QuantityOutOfRange(sku=sku, location=code, limit=MAX_QUANTITY)


def _record(**values: Any) -> Movement:
    values.setdefault("created_at", utcnow())
    result = _execute(_INSERT_MOVEMENT, values)
    # A plain value object: the row is written by Core, and the ORM need not track it.
    return Movement(id=result.inserted_primary_key[0], **values)


def _record_at(side: str, location: _Location, level: _Level, **values: Any) -> Movement:
    """The ledger line of a one-place movement: out of ("from") or into ("to") `location`, which
    now holds `level`. The side is marked counted when an open count covers the place (read by
    `_resolve_pair` in the same transaction)."""
    movement = _record(**{f"{side}_location_id": location.id, f"{side}_balance": level.quantity}, **values)
    if location.counted:
        movement.counted_sides = frozenset({side})
    return movement


def _note_low_stock(item: _Item, location_id: int, before: Decimal, after: Decimal, movement: Movement) -> None:
    """Outbox row when this movement takes the level down to or through the reorder point."""
    if after <= item.reorder_point < before:
        db.session.execute(
            insert(_low_stock_events).values(
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


def _take(item: _Item, location: _Location, level: _Level, quantity: Decimal, kind: str) -> Decimal:
    """The balance after taking `quantity` out; refuses to go below zero."""
    if level.quantity < quantity:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        stock_rejected.send(app, kind=kind)
        raise InsufficientStock(sku=item.sku, location=location.code, requested=quantity, available=level.quantity)
    return level.quantity - quantity


def _announce(movements: list[Movement]) -> None:
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def send() -> None:
        stock_moved.send(app, movements=movements)

    after_commit(send)


# ---------------------------------------------------------------- idempotency


def _replay(scope: str, keys: Sequence[str], request_hash: str) -> list[Movement] | None:
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


def _line_keys(key: str, count: int) -> list[str]:
    return [f"{key}#{n}" for n in range(1, count + 1)]


def _part_key(key: str | None, part: int) -> str | None:
    """The key of the `part`-th ledger line of one request line (a FEFO issue over several lots)."""
    return key if key is None or part == 1 else f"{key}#{part}"


@dataclass(frozen=True, slots=True)
class _Request:
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

    def replayed(self, keys: Sequence[str] | None = None) -> list[Movement] | None:
        """The movements an identical earlier request of this caller wrote, if its key was seen."""
        if not self.key:
            return None
        found = _replay(self.scope, keys or [self.key], self.digest or "")
        return None if found is None else _with_lines(_mark_counted(found))


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


def _request(operation: str, acting: Acting, **facts: Any) -> _Request:
    """Check the common fields; fingerprint the request only when a key makes it replayable."""
    reference = _text(acting.get("reference"), "reference", 100)
    note = _text(acting.get("note"), "note", 500)
    user = _username(acting.get("user", ""))
    key = idempotency.check_key(acting.get("idempotency_key"))
    reason_code = acting.get("reason_code")
    if reason_code is not None and reason_code not in REASON_CODES:
        raise InvalidInput("reason_code", f"one of {', '.join(REASON_CODES)}")
    # Only a set reason code joins the fingerprint, so keys stored before it existed still replay.
    coded = {"reason_code": reason_code} if reason_code else {}
    digest = idempotency.fingerprint(operation, reference=reference, note=note, **coded, **facts) if key else None
    scope = idempotency.scope(user, acting.get("caller"))
    return _Request(reference, note, user, key, digest, scope, reason_code)


# ---------------------------------------------------------------- lots and serials (issue 17)

#: Why a line took an expired lot: a manager's override (the reason is the line's note).
EXPIRED_OVERRIDE = "expired_override"
MAX_LOT_CODE = 64
MAX_SERIAL = 100


def _with_lines(movements: list[Movement]) -> list[Movement]:
    """`movements` with the first one carrying them all as `lines` when there are several."""
    if len(movements) > 1:
        movements[0].lines = tuple(movements)
    return movements


def lines_of(movement: Movement) -> list[Movement]:
    """Every ledger line the request that returned `movement` wrote (usually just it)."""
    return list(movement.lines) or [movement]


def _today() -> date:
    return utcnow().date()


def _tracked_facts(**facts: Any) -> dict[str, Any]:
    """The lot and serial facts a request gave, for its fingerprint: none for untracked stock,
    so an untracked request is fingerprinted exactly as before."""
    return {k: v for k, v in facts.items() if v not in (None, False, (), [])}


def _code(value: str | None, field_name: str, limit: int) -> str | None:
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


def _serial_list(serials: Sequence[str] | None) -> tuple[str, ...]:
    """The serials named, trimmed; refuses blanks and repeats."""
    if serials is None:
        return ()
    if isinstance(serials, str):
        serials = [s for s in serials.replace(",", "\n").splitlines() if s.strip()]
    out = tuple(_code(s, "serials", MAX_SERIAL) or "" for s in serials)
    if "" in out:
        raise InvalidInput("serials", "a serial number is blank")
    if len(set(out)) != len(out):
        raise InvalidInput("serials", "a serial number is named twice")
    return out


def parse_expiry(value: date | str | None) -> date | None:
    """An expiry date from a date or an ISO text (YYYY-MM-DD); raises InvalidInput."""
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise InvalidInput("expiry", "a date, YYYY-MM-DD")


def _check_tracking(item: _Item, lot: str | None, serials: Sequence[str], expiry: date | None = None) -> None:
    """Refuse a lot (or expiry) for an item without lots, serials for one without serials."""
    if (lot is not None or expiry is not None) and item.tracking != "lot":
        raise NotTracked(sku=item.sku, tracking=item.tracking, field="lot")
    if serials and item.tracking != "serial":
        raise NotTracked(sku=item.sku, tracking=item.tracking, field="serials")


def _serial_count(item: _Item, quantity: Decimal, serials: Sequence[str]) -> None:
    if item.tracking == "serial" and Decimal(len(serials)) != quantity:
        raise SerialCountMismatch(sku=item.sku, quantity=quantity, given=len(serials))


@dataclass(frozen=True, slots=True)
class _Lot:
    id: int
    code: str
    expiry: date | None
    received_at: datetime

    def expired(self, today: date) -> bool:
        return self.expiry is not None and self.expiry < today

    def fefo(self) -> tuple[bool, date, datetime, int]:
        """First expired, first out; then oldest received; lots without an expiry last."""
        return (self.expiry is None, self.expiry or date.max, self.received_at, self.id)


_LOT_COLUMNS = (_lots.c.id, _lots.c.code, _lots.c.expiry, _lots.c.received_at)


def _find_lot(item: _Item, code: str) -> _Lot:
    row = db.session.execute(select(*_LOT_COLUMNS).where(_lots.c.item_id == item.id, _lots.c.code == code)).first()
    if row is None:
        raise UnknownLot(item.sku, code)
    return _Lot(*row)


def _lot_for_receipt(item: _Item, code: str | None, expiry: date | None) -> _Lot:
    """The lot a receipt (or a stocktake) puts stock into, created on its first receipt. Raises
    LotRequired, ExpiryRequired (the item requires one and the lot has none), ExpiryMismatch."""
    if code is None:
        raise LotRequired(item.sku)
    requires = bool(db.session.scalar(select(Item.requires_expiry).where(Item.id == item.id)))
    row = db.session.execute(select(*_LOT_COLUMNS).where(_lots.c.item_id == item.id, _lots.c.code == code)).first()
    if row is None:
        if requires and expiry is None:
            raise ExpiryRequired(item.sku, code)
        now = utcnow()
        # Two first receipts of one lot at once: the duplicate key runs the unit of work again.
        result = _execute(insert(_lots).values(item_id=item.id, code=code, expiry=expiry, received_at=now))
        return _Lot(result.inserted_primary_key[0], code, expiry, now)
    lot = _Lot(*row)
    if expiry is not None and lot.expiry is not None and expiry != lot.expiry:
        raise ExpiryMismatch(sku=item.sku, lot=code, expiry=lot.expiry.isoformat(), given=expiry.isoformat())
    if lot.expiry is None and expiry is not None:
        db.session.execute(update(_lots).where(_lots.c.id == lot.id).values(expiry=expiry))
        return replace(lot, expiry=expiry)
    if requires and lot.expiry is None:
        raise ExpiryRequired(item.sku, code)
    return lot


@dataclass(slots=True)
class _Group:
    """The locked stock of an item at a place: its one level, or a lot-tracked item's level per
    lot (keyed by lot id; 0 for stock without a lot), with the lots' facts."""

    item: _Item
    location: _Location
    levels: dict[int, _Level]
    lots: dict[int, _Lot] = field(default_factory=dict)

    def total(self) -> Decimal:
        return sum((level.quantity for level in self.levels.values()), ZERO)

    def level(self, lot: _Lot | None) -> _Level:
        key = lot.id if lot else 0
        if key not in self.levels:
            self.levels[key] = _Level(None, ZERO, lot.id if lot else None)
            if lot is not None:
                self.lots[lot.id] = lot
        return self.levels[key]


def _lock_groups(places: Iterable[tuple[_Item, _Location]]) -> dict[tuple[int, int], _Group]:
    """Lock the stock of each (item, place) in (item id, location id) order: the one level, or
    every lot's level of a lot-tracked item (in lot order). Each group's rows are contiguous in
    the unique index (item, location, lot), so every writer takes its locks in that index order
    and two of them never wait on each other in a cycle."""
    unique = {(item.id, loc.id): (item, loc) for item, loc in places}
    groups: dict[tuple[int, int], _Group] = {}
    for key in sorted(unique):
        item, loc = unique[key]
        if item.tracking != "lot":
            groups[key] = _Group(item, loc, {0: _lock(item.id, loc.id) or _Level(None, ZERO)})
            continue
        with tracing.span("stock.lock", **{"inventory.item_id": item.id, "inventory.location_id": loc.id}):
            rows = _execute(_LOCK_LOT_LEVELS, {"item_id": item.id, "location_id": loc.id}).all()
        levels = {lot_id: _Level(level_id, quantity, lot_id) for level_id, quantity, lot_id in rows}
        lots = (
            {r[0]: _Lot(*r) for r in db.session.execute(select(*_LOT_COLUMNS).where(_lots.c.id.in_(levels)))}
            if levels
            else {}
        )
        groups[key] = _Group(item, loc, levels, lots)
    return groups


@dataclass(slots=True)
class _Part:
    """One ledger line of a request line: a quantity out of one level (one lot), its serials."""

    level: _Level
    quantity: Decimal
    serial_ids: list[int] = field(default_factory=list)
    expired: bool = False


@dataclass(frozen=True, slots=True)
class _Out:
    """What a request takes out of a place: how much, and the lot or serials it names."""

    quantity: Decimal
    kind: str
    lot: str | None = None
    serials: tuple[str, ...] = ()
    allow_expired: bool = False
    reason: str | None = None


def _choose(group: _Group, out: _Out) -> list[_Part]:
    """The parts `out` takes from the locked `group`: the one level; the named lot; the lots in
    FEFO order; or the named serials. Raises InsufficientStock, NotTracked, SerialCountMismatch,
    UnknownLot, ExpiredLot, UnknownSerial, SerialNotHere, InvalidInput (an expired lot without a
    reason)."""
    item, loc = group.item, group.location
    _check_tracking(item, out.lot, out.serials)
    _serial_count(item, out.quantity, out.serials)
    if item.tracking != "lot":
        level = group.levels[0]
        ids = _lock_serials_at(item, loc, out.serials) if item.tracking == "serial" else []
        _take(item, loc, level, out.quantity, out.kind)
        return [_Part(level, out.quantity, ids)]
    today = _today()
    if out.lot is not None:
        lot = _find_lot(item, out.lot)
        level = group.level(lot)
        _take(item, loc, level, out.quantity, out.kind)
        candidates = [(lot, level)]
    else:
        candidates = sorted(
            ((group.lots[key], level) for key, level in group.levels.items() if key and level.quantity > 0),
            key=lambda pair: pair[0].fefo(),
        )
        if not out.allow_expired:
            candidates = [(lot, level) for lot, level in candidates if not lot.expired(today)]
        available = sum((level.quantity for _, level in candidates), ZERO)
        if available < out.quantity:
            _take(item, loc, _Level(None, available), out.quantity, out.kind)  # raises
    parts: list[_Part] = []
    left = out.quantity
    for lot, level in candidates:
        if left <= 0:
            break
        expired = lot.expired(today)
        if expired and not out.allow_expired:
            raise ExpiredLot(sku=item.sku, lot=lot.code, expiry=str(lot.expiry))
        if expired and not out.reason:
            raise InvalidInput("note", "give the reason for issuing an expired lot")
        taken = min(left, level.quantity)
        parts.append(_Part(level, taken, expired=expired))
        left -= taken
    return parts


def _lock_serials_at(item: _Item, loc: _Location, serials: Sequence[str]) -> list[int]:
    """Lock the named serials (in id order, after the levels) once each is in stock at `loc`."""
    rows = db.session.execute(
        select(_serials.c.id, _serials.c.serial, _serials.c.status, _serials.c.location_id)
        .where(_serials.c.item_id == item.id, _serials.c.serial.in_(serials))
        .order_by(_serials.c.id)
        .with_for_update()
    ).all()
    found = {compared(r.serial): r for r in rows}
    for serial in serials:
        row = found.get(compared(serial))
        if row is None:
            raise UnknownSerial(item.sku, serial)
        if row.status != "in_stock" or row.location_id != loc.id:
            raise SerialNotHere(sku=item.sku, serial=serial, location=loc.code)
    return [r.id for r in rows]


def _new_serials(item: _Item, loc: _Location, serials: Sequence[str]) -> list[int]:
    """Create the serials of a receipt at `loc`; refuses any the item already has (SerialExists)."""
    if serials:
        taken = db.session.scalar(
            select(_serials.c.serial).where(_serials.c.item_id == item.id, _serials.c.serial.in_(serials)).limit(1)
        )
        if taken is not None:
            raise SerialExists(item.sku, taken)
    now = utcnow()
    ids = []
    for serial in serials:
        # A concurrent receipt of the same serial: the duplicate key runs the unit of work again.
        result = _execute(
            insert(_serials).values(
                item_id=item.id, serial=serial, status="in_stock", location_id=loc.id, created_at=now, updated_at=now
            )
        )
        ids.append(result.inserted_primary_key[0])
    return ids


def _move_serials(serial_ids: Sequence[int], movement: Movement, to_location_id: int | None) -> None:
    """Put the serials at `to_location_id` (None: they left the stock) and link them to the line."""
    if not serial_ids:
        return
    status = "in_stock" if to_location_id is not None else "issued"
    db.session.execute(
        update(_serials)
        .where(_serials.c.id.in_(serial_ids))
        .values(status=status, location_id=to_location_id, updated_at=utcnow())
    )
    db.session.execute(insert(_movement_serials), [{"movement_id": movement.id, "serial_id": i} for i in serial_ids])


def _issue_from(group: _Group, out: _Out, req: _Request, key: str | None) -> list[Movement]:
    """Issue `out` from the locked `group`: one ledger line per part (per lot), then the
    low-stock note on the place's total."""
    before = group.total()
    movements = []
    for n, part in enumerate(_choose(group, out), start=1):
        level = part.level
        _store(group.item.id, group.location.id, level, level.quantity - part.quantity)
        movement = _record_at(
            "from",
            group.location,
            level,
            kind="issue",
            item_id=group.item.id,
            quantity=part.quantity,
            lot_id=level.lot_id,
            **req.ledger(key=_part_key(key, n)) | _override(part),
        )
        _move_serials(part.serial_ids, movement, None)
        movements.append(movement)
    _note_low_stock(group.item, group.location.id, before, group.total(), movements[-1])
    return movements


def _override(part: _Part) -> dict[str, Any]:
    """An expired lot taken on a manager's word: the line says why (over any other reason code)."""
    return {"reason_code": EXPIRED_OVERRIDE} if part.expired else {}


# ---------------------------------------------------------------- the operations


@unit_of_work
def receive_stock(
    *,
    sku: str,
    location: str,
    quantity: Decimal | str | int,
    lot: str | None = None,
    expiry: date | str | None = None,
    serials: Sequence[str] | None = None,
    **acting: Unpack[Acting],
) -> Movement:
    """Put stock into a location: a lot-tracked item into its `lot` (created with its `expiry` on
    its first receipt), a serial-tracked one as exactly `quantity` new `serials`. Raises
    UnknownItem, UnknownLocation, ArchivedItem, InactiveLocation, InvalidQuantity, InvalidInput,
    IdempotencyConflict, and for tracked items NotTracked, LotRequired, ExpiryRequired,
    ExpiryMismatch, SerialCountMismatch or SerialExists."""
    qty = parse_quantity(quantity)
    code, when, named = _code(lot, "lot", MAX_LOT_CODE), parse_expiry(expiry), _serial_list(serials)
    facts = _tracked_facts(lot=code, expiry=when and when.isoformat(), serials=named)
    req = _request("receive", acting, sku=sku, location=location, quantity=qty, **facts)
    if replayed := req.replayed():
        return replayed[0]
    item, loc = _resolve_pair(sku, location)
    _check_movable(item, loc)
    movement = _receive_one(item, loc, PickLine(sku, location, qty, code, when, named), req)
    _announce([movement])
    return movement


def _receive_one(item: _Item, loc: _Location, line: PickLine, req: _Request) -> Movement:
    """Receive one checked line: into its lot (lot-tracked), as its new serials (serial-tracked)."""
    qty, when = Decimal(line.quantity), parse_expiry(line.expiry)
    _check_tracking(item, line.lot, line.serials, when)
    _serial_count(item, qty, line.serials)
    lot_id = _lot_for_receipt(item, line.lot, when).id if item.tracking == "lot" else None
    level = _lock(item.id, loc.id, lot_id) or _Level(None, ZERO, lot_id)
    _store(item.id, loc.id, level, level.quantity + qty)
    serial_ids = _new_serials(item, loc, line.serials) if item.tracking == "serial" else []
    movement = _record_at(
        "to", loc, level, kind="receive", item_id=item.id, quantity=qty, lot_id=lot_id, **req.ledger()
    )
    _move_serials(serial_ids, movement, loc.id)
    return movement


@unit_of_work
def issue_stock(
    *,
    sku: str,
    location: str,
    quantity: Decimal | str | int,
    lot: str | None = None,
    serials: Sequence[str] | None = None,
    allow_expired: bool = False,
    **acting: Unpack[Acting],
) -> Movement:
    """Take stock out of a location (a stock-out). Raises InsufficientStock with the available
    quantity, and the errors receive_stock raises.

    A lot-tracked item is taken from the named `lot`, or else first-expired-first-out across its
    lots there, one ledger line per lot (the first is returned; `lines_of` gives them all).
    Expired lots are refused (ExpiredLot, or InsufficientStock when FEFO finds too little) unless
    `allow_expired`, which a caller grants a manager only, with the reason as `note`. A
    serial-tracked item is issued by naming its `serials` (UnknownSerial, SerialNotHere)."""
    qty = parse_quantity(quantity)
    code, named = _code(lot, "lot", MAX_LOT_CODE), _serial_list(serials)
    facts = _tracked_facts(lot=code, serials=named, allow_expired=allow_expired)
    req = _request("issue", acting, sku=sku, location=location, quantity=qty, **facts)
    if replayed := req.replayed():
        return replayed[0]
    item, loc = _resolve_pair(sku, location)
    _check_movable(item, loc)
    if item.tracking != "none" or facts:
        out = _Out(qty, "issue", code, named, allow_expired, req.note)
        movements = _issue_from(_lock_groups([(item, loc)])[(item.id, loc.id)], out, req, req.key)
        _announce(movements)
        return _with_lines(movements)[0]
    # Untracked stock, the hot path: one locking read, one UPDATE, one INSERT.
    level = _lock(item.id, loc.id) or _Level(None, ZERO)
    before = level.quantity
    _store(item.id, loc.id, level, _take(item, loc, level, qty, "issue"))
    movement = _record_at("from", loc, level, kind="issue", item_id=item.id, quantity=qty, **req.ledger())
    _note_low_stock(item, loc.id, before, level.quantity, movement)
    _announce([movement])
    return movement


@unit_of_work
def transfer_stock(
    *,
    sku: str,
    from_location: str,
    to_location: str,
    quantity: Decimal | str | int,
    lot: str | None = None,
    serials: Sequence[str] | None = None,
    allow_expired: bool = False,
    **acting: Unpack[Acting],
) -> Movement:
    """Move stock between two locations, one ledger line per lot moved (the lots chosen as
    issue_stock chooses them, each arriving as the same lot; serials keep their numbers). Raises
    SameLocation, InsufficientStock and the errors issue_stock raises."""
    qty = parse_quantity(quantity)
    code, named = _code(lot, "lot", MAX_LOT_CODE), _serial_list(serials)
    facts = _tracked_facts(lot=code, serials=named, allow_expired=allow_expired)
    req = _request("transfer", acting, sku=sku, source=from_location, target=to_location, quantity=qty, **facts)
    if from_location == to_location:
        raise SameLocation(from_location)
    if replayed := req.replayed():
        return replayed[0]
    item, source = _resolve_pair(sku, from_location)
    target = _resolve_location(to_location)
    _check_movable(item, source, target)
    groups = _lock_groups([(item, source), (item, target)])
    out, into = groups[(item.id, source.id)], groups[(item.id, target.id)]
    before = out.total()
    movements = []
    parts = _choose(out, _Out(qty, "transfer", code, named, allow_expired, req.note))
    for n, part in enumerate(parts, start=1):
        lot_id = part.level.lot_id
        arriving = into.level(None if lot_id is None else out.lots[lot_id])
        _store(item.id, source.id, part.level, part.level.quantity - part.quantity)
        _store(item.id, target.id, arriving, arriving.quantity + part.quantity)
        movement = _record(
            kind="transfer",
            item_id=item.id,
            from_location_id=source.id,
            to_location_id=target.id,
            quantity=part.quantity,
            from_balance=part.level.quantity,
            to_balance=arriving.quantity,
            lot_id=lot_id,
            **req.ledger(key=_part_key(req.key, n)) | _override(part),
        )
        _move_serials(part.serial_ids, movement, target.id)
        movements.append(movement)
    _note_low_stock(item, source.id, before, out.total(), movements[-1])
    _mark_counted(movements)
    _announce(movements)
    return _with_lines(movements)[0]


@unit_of_work
def adjust_stock(
    *,
    sku: str,
    location: str,
    counted: Decimal | str | int,
    lot: str | None = None,
    expiry: date | str | None = None,
    **acting: Unpack[Acting],
) -> Movement:
    """Stocktake: set the level to the counted quantity and record the difference (a zero
    difference is recorded too: it says the count confirmed the balance). A lot-tracked item is
    counted per lot (LotRequired; a lot found that was never received is created, with its
    `expiry`). A serial-tracked item's count can only confirm its balance: serials are corrected
    by receiving or issuing them (InvalidInput)."""
    qty = parse_quantity(counted, field="counted", allow_zero=True)
    code, when = _code(lot, "lot", MAX_LOT_CODE), parse_expiry(expiry)
    facts = _tracked_facts(lot=code, expiry=when and when.isoformat())
    req = _request("adjust", acting, sku=sku, location=location, counted=qty, **facts)
    if replayed := req.replayed():
        return replayed[0]
    item, loc = _resolve_pair(sku, location)
    _check_movable(item, loc)
    _check_tracking(item, code, (), when)
    lot_id = _lot_for_receipt(item, code, when).id if item.tracking == "lot" else None
    level = _lock(item.id, loc.id, lot_id) or _Level(None, ZERO, lot_id)
    before = level.quantity
    if item.tracking == "serial" and qty != before:
        raise InvalidInput("counted", "serial-tracked stock is corrected by receiving or issuing its serials")
    _store(item.id, loc.id, level, qty)
    side = "from" if qty < before else "to"
    movement = _record_at(
        side, loc, level, kind="adjust", item_id=item.id, quantity=abs(qty - before), lot_id=lot_id, **req.ledger()
    )
    _note_low_stock(item, loc.id, before, qty, movement)
    _announce([movement])
    return movement


# A pick is typed or scanned by a person; bulk receipts (imports, seeding) have no such bound.
MAX_PICK_LINES = 500


def _pick_lines(lines: Sequence[PickLine | dict[str, Any]], *, limit: int | None = None) -> list[PickLine]:
    """The lines with their quantities parsed; refuses none, or more than `limit`."""
    if not lines:
        raise InvalidInput("lines", "at least one line is required")
    if limit is not None and len(lines) > limit:
        raise InvalidInput("lines", f"at most {limit} lines")
    return [
        replace(
            raw,
            quantity=parse_quantity(raw.quantity, field=f"lines[{n}].quantity"),
            lot=_code(raw.lot, f"lines[{n}].lot", MAX_LOT_CODE),
            expiry=parse_expiry(raw.expiry),
            serials=_serial_list(raw.serials),
        )
        for n, raw in enumerate((line if isinstance(line, PickLine) else PickLine(**line) for line in lines), start=1)
    ]


def _as_asked(found: dict[str, _T], asked: set[str]) -> dict[str, _T]:
    """`found` (keyed as stored) keyed as the request wrote it. IN (...) matched as the database
    compares (on MariaDB without case or accents): the same comparison finds the row here, so
    "sku-1" picks in a multi-line pick exactly as it does in a single issue."""
    exact = {key: found[key] for key in asked if key in found}
    if len(exact) == len(asked):
        return exact  # folding 100,000 keys costs more than the query that found them
    folded = {compared(key): value for key, value in found.items()}
    matched = ((key, exact.get(key) or folded.get(compared(key))) for key in asked)
    return {key: value for key, value in matched if value is not None}


def _resolve_lines(lines: Sequence[PickLine]) -> tuple[dict[str, _Item], dict[str, _Location]]:
    skus = {line.sku for line in lines}
    codes = {line.location for line in lines}
    found_items = {
        r.sku: _Item(*r) for chunk in _chunks(sorted(skus)) for r in _execute(_RESOLVE_ITEMS, {"skus": chunk})
    }
    found_places = {
        r.code: _Location(*r)
        for r in db.session.execute(select(Location.id, Location.code, Location.active).where(Location.code.in_(codes)))
    }
    items, locations = _as_asked(found_items, skus), _as_asked(found_places, codes)
    for line in lines:
        if line.sku not in items:
            raise UnknownItem(line.sku)
        if line.location not in locations:
            raise UnknownLocation(line.location)
        _check_movable(items[line.sku], locations[line.location])
    return items, locations


@unit_of_work
def issue_lines(
    *,
    lines: Sequence[PickLine | dict[str, Any]],
    **acting: Unpack[Acting],
) -> list[Movement]:
    """A multi-line pick: every line is issued, or none is (the first short line raises
    InsufficientStock). Returns one movement per line, in the order given."""
    picks = _pick_lines(lines, limit=MAX_PICK_LINES)
    facts = [(p.sku, p.location, p.quantity, *_line_facts(p)) for p in picks]
    req = _request("issue_lines", acting, lines=facts)
    keys: list[str | None] = list(_line_keys(req.key, len(picks))) if req.key else [None] * len(picks)
    if req.key and (replayed := req.replayed(_line_keys(req.key, len(picks)))):
        return replayed
    items, locations = _resolve_lines(picks)
    groups = _lock_groups((items[p.sku], locations[p.location]) for p in picks)
    movements = []
    for pick, line_key in zip(picks, keys, strict=True):
        group = groups[(items[pick.sku].id, locations[pick.location].id)]
        out = _Out(Decimal(pick.quantity), "issue", pick.lot, tuple(pick.serials), False, req.note)
        movements.extend(_issue_from(group, out, req, line_key))
    _mark_counted(movements)
    _announce(movements)
    return movements


def _line_facts(pick: PickLine) -> tuple[Any, ...]:
    """A pick line's lot, expiry and serials for the fingerprint; nothing for untracked lines."""
    return tuple(x for x in (pick.lot, pick.expiry and str(pick.expiry), tuple(pick.serials)) if x)


def _group_by(values: Iterable[_T], key: Any) -> dict[Any, list[_T]]:
    groups: dict[Any, list[_T]] = {}
    for value in values:
        groups.setdefault(key(value), []).append(value)
    return groups


@unit_of_work
def receive_lines(
    *,
    lines: Sequence[PickLine | dict[str, Any]],
    user: str,
    reference: str | None = None,
    note: str | None = None,
) -> int:
    """Bulk receipt (opening stock, seeding, imports): all lines or none, with the ledger lines
    of untracked stock written in batches (lines with lots or serials one by one, after them).
    Returns how many movements were written."""
    picks = _pick_lines(lines)
    req = _request("receive_lines", Acting(user=user, reference=reference, note=note))
    items, locations = _resolve_lines(picks)
    split: dict[bool, list[PickLine]] = {True: [], False: []} | _group_by(
        picks, lambda p: items[p.sku].tracking != "none" or _line_facts(p) != ()
    )
    tracked, picks = split[True], split[False]
    pairs = [(items[p.sku].id, locations[p.location].id) for p in picks]
    levels = _lock_many(sorted(set(pairs)))
    now = utcnow()
    rows = []
    for pick, pair in zip(picks, pairs, strict=True):
        level = levels[pair]
        level.quantity += Decimal(pick.quantity)
        rows.append(dict(item_id=pair[0], to_location_id=pair[1], quantity=pick.quantity, to_balance=level.quantity))
    _store_many(levels, now)
    transaction.insert_rows(_movements, rows, kind="receive", created_at=now, **req.ledger())
    for pick in tracked:
        _receive_one(items[pick.sku], locations[pick.location], pick, req)
    count = len(rows) + len(tracked)
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def send() -> None:
        stock_moved.send(app, movements=None, kind="receive", count=count)

    after_commit(send)
    return count


def _lock_many(pairs: list[tuple[int, int]]) -> dict[tuple[int, int], _Level]:
    """Lock many stock levels with few statements, in index (item, location) order."""
    levels = {pair: _Level(None, ZERO) for pair in pairs}
    item_ids = sorted({item_id for item_id, _ in pairs})
    with tracing.span("stock.lock", **{"inventory.levels": len(pairs)}):
        _lock_chunks(item_ids, levels)
    return levels


def _lock_chunks(item_ids: list[int], levels: dict[tuple[int, int], _Level]) -> None:
    for chunk in _chunks(item_ids):
        rows = _execute(
            select(_levels.c.id, _levels.c.item_id, _levels.c.location_id, _levels.c.quantity)
            .where(_levels.c.item_id.in_(chunk), _levels.c.lot_key == 0)
            .order_by(_levels.c.item_id, _levels.c.location_id)
            .with_for_update()
        )
        for level_id, item_id, location_id, quantity in rows:
            if (item_id, location_id) in levels:
                levels[(item_id, location_id)] = _Level(level_id, quantity)


def _store_many(levels: dict[tuple[int, int], _Level], now: Any) -> None:
    new = [
        dict(item_id=i, location_id=loc, quantity=lvl.quantity) for (i, loc), lvl in levels.items() if lvl.id is None
    ]
    old = [
        dict(level_id=lvl.id, quantity=lvl.quantity, updated_at=now) for lvl in levels.values() if lvl.id is not None
    ]
    transaction.insert_rows(_levels, new, updated_at=now)
    if old:
        db.session.execute(update(_levels).where(_levels.c.id == bindparam("level_id")), old)


#: The reference a scan writes on its movement when the clerk gave no order number. A scan is
#: known by its reason code "scan": a clerk may undo exactly these, and only their own.
SCAN_REFERENCE = "SCAN"


def _lock_reversible(movement_id: int, *, scanned_by: str | None) -> Movement:
    """The movement, locked, once it is known reversible (and, with `scanned_by`, a scan of that
    user). Locking it serialises two reversals of the same line; the unique reverses_id index
    would refuse the second one anyway."""
    original = db.session.execute(
        select(Movement).where(Movement.id == movement_id).with_for_update()
    ).scalar_one_or_none()
    if original is None:
        raise UnknownMovement(movement_id)
    # Scans recorded before reason codes marked them carry the reference SCAN and no reason code.
    scan = original.reason_code == "scan" or (original.reason_code is None and original.reference == SCAN_REFERENCE)
    if scanned_by is not None and (not scan or original.username != scanned_by):
        raise InvalidInput("movement_id", "only your own scans can be undone here")
    if original.kind == "reversal":
        raise IrreversibleMovement(movement_id, "it is itself a reversal")
    if original.quantity == 0:
        raise IrreversibleMovement(movement_id, "it moved nothing")
    earlier = db.session.scalar(select(Movement.id).where(Movement.reverses_id == movement_id))
    if earlier is not None:
        raise AlreadyReversed(movement_id, earlier)
    return original


def _lock_moved_serials(item: _Item, original: Movement, source_id: int | None) -> list[int]:
    """The serials `original` moved, locked (after the levels, in id order), once each is where
    the original left it: a reversal takes back exactly those units (SerialNotHere otherwise)."""
    rows = db.session.execute(
        select(_serials.c.id, _serials.c.serial, _serials.c.status, _serials.c.location_id)
        .join(_movement_serials, _movement_serials.c.serial_id == _serials.c.id)
        .where(_movement_serials.c.movement_id == original.id)
        .order_by(_serials.c.id)
        .with_for_update()
    ).all()
    for row in rows:
        if (row.status, row.location_id) != (("in_stock", source_id) if source_id is not None else ("issued", None)):
            code = db.session.scalar(select(Location.code).where(Location.id == source_id)) if source_id else None
            raise SerialNotHere(sku=item.sku, serial=row.serial, location=code or "-")
    return [row.id for row in rows]


def _check_reversal_target(item: _Item, target_id: int | None) -> None:
    """A reversal, like any movement, never moves an archived item nor fills an inactive location."""
    if item.archived:
        raise ArchivedItem(item.sku)
    if target_id is not None:
        row = db.session.execute(
            select(Location.id, Location.code, Location.active).where(Location.id == target_id)
        ).one()
        _check_movable(item, _Location(*row))


@unit_of_work
def reverse_movement(
    *,
    movement_id: int,
    user: str,
    reason: str | None = None,
    reason_code: str | None = None,
    idempotency_key: str | None = None,
    caller: str | None = None,
    own_scan_only: bool = False,
) -> Movement:
    """Undo a movement with an opposite ledger line linked to it, giving a person's `reason` or a
    `reason_code` from REASON_CODES. Raises InvalidInput, UnknownMovement, IrreversibleMovement (a
    reversal, or a zero stocktake line), AlreadyReversed, and InsufficientStock when the stock it
    would take back has already left.

    `own_scan_only` (a clerk's undo on the scan page) also refuses, with InvalidInput on
    `movement_id`, anything but a scan `user` made. Like every other movement, a reversal never
    moves an archived item (ArchivedItem) nor puts stock into an inactive location
    (InactiveLocation): restore them first."""
    if reason_code is None and not (reason or "").strip():
        raise InvalidInput("reason", "a reason is required")
    keyed = Acting(user=user, note=reason, idempotency_key=idempotency_key, caller=caller, reason_code=reason_code)
    req = _request("reverse", keyed, movement_id=movement_id)
    if replayed := req.replayed():
        return replayed[0]
    original = _lock_reversible(movement_id, scanned_by=req.user if own_scan_only else None)
    item = _Item(*db.session.execute(_item_query().where(Item.id == original.item_id)).one())
    # The reversal moves the same quantity the other way: out of where it went, into where it came from.
    source_id, target_id = original.to_location_id, original.from_location_id
    _check_reversal_target(item, target_id)
    involved = [lid for lid in (source_id, target_id) if lid is not None]
    levels = _lock_in_order((item.id, lid, original.lot_id) for lid in involved)
    serial_ids = _lock_moved_serials(item, original, source_id)
    values: dict[str, Any] = dict(
        kind="reversal",
        item_id=item.id,
        quantity=original.quantity,
        **{**req.ledger(), "reference": original.reference},
        reverses_id=original.id,
        lot_id=original.lot_id,
    )
    before = None
    if source_id is not None:
        level = levels[(item.id, source_id, original.lot_id)]
        before = level.quantity
        code = db.session.scalar(select(Location.code).where(Location.id == source_id)) or ""
        _store(
            item.id,
            source_id,
            level,
            _take(item, _Location(source_id, code, True), level, original.quantity, "reversal"),
        )
        values.update(from_location_id=source_id, from_balance=level.quantity)
    if target_id is not None:
        level = levels[(item.id, target_id, original.lot_id)]
        _store(item.id, target_id, level, level.quantity + original.quantity)
        values.update(to_location_id=target_id, to_balance=level.quantity)
    movement = _record(**values)
    _move_serials(serial_ids, movement, target_id)
    if source_id is not None and before is not None:
        _note_low_stock(item, source_id, before, values["from_balance"], movement)
    _announce([movement])
    return movement
