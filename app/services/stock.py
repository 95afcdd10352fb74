"""Stock movements: the only code that changes on-hand quantities.

Each public function is one transaction (see transaction.unit_of_work): it locks the stock-level
rows it changes with SELECT ... FOR UPDATE, in (item id, location id) order, and then, when it
touches several items, their items rows in id order (stock_core.lock_items: the triggers that keep
an item's totals update its row at each level write), so that two multi-line operations can never
wait on each other in a cycle, checks the facts on the locked rows,
updates them and appends the ledger lines. The hot path (issue_stock) uses Core statements: one
read to resolve SKU and location, one locking read, one UPDATE, one INSERT.

An idempotency key belongs to its caller (`caller`, an API token, or else `user`): a repeated
request of the same caller returns what the first one wrote; another caller's is its own request.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar, Unpack, cast

from blinker import Namespace
from flask import current_app
from sqlalchemy import Table, and_, bindparam, exists, insert, or_, select, true, update

from app.extensions import db
from app.models.count import Count, CountLine
from app.models.item import Item
from app.models.location import Location
from app.models.stock import Lot, Movement, MovementSerial, Serial, StockLevel
from app.models.types import utcnow
from app.observability import tracing
from app.services import combining, holds, transaction
from app.services.codes import compared
from app.services.errors import (
    AlreadyReversed,
    ArchivedItem,
    ExpiredLot,
    ExpiryMismatch,
    ExpiryRequired,
    InvalidInput,
    IrreversibleMovement,
    LotRequired,
    NotTracked,
    SameLocation,
    SerialCountMismatch,
    SerialExists,
    SerialNotHere,
    UnknownItem,
    UnknownLocation,
    UnknownMovement,
    UnknownSerial,
)
from app.services.quantities import parse_quantity
from app.services.stock_core import (
    LOT_COLUMNS,
    MAX_LOT_CODE,
    ZERO,
    Acting,
    ItemFacts,
    Level,
    LocationFacts,
    LotFacts,
    Request,
    check_movable,
    check_tracking,
    chunks,
    clean_code,
    execute,
    find_lot,
    item_query,
    items_by_sku,
    locations_by_code,
    lock_items,
    lock_level,
    make_request,
    note_low_stock,
    record_at,
    record_movement,
    replay,
    serial_list,
    store_held,
    store_level,
    take,
    take_out,
    today,
)
from app.services.transaction import after_commit, unit_of_work

signals = Namespace()
#: Sent after commit with `movements` (list of Movement) for metrics and notifications.
stock_moved = signals.signal("stock-moved")

_movements = cast(Table, Movement.__table__)
_levels = cast(Table, StockLevel.__table__)
_items = cast(Table, Item.__table__)
_count_lines = cast(Table, CountLine.__table__)
_lots = cast(Table, Lot.__table__)
_serials = cast(Table, Serial.__table__)
_movement_serials = cast(Table, MovementSerial.__table__)
_counts = cast(Table, Count.__table__)
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


def _lot_fact(column: Any) -> Any:
    """A fact of a level's lot, as a scalar subquery of the level's locking read: MariaDB reads it
    without locking the lot's row (a join would lock it, and two places issuing from the same lot
    would wait on each other)."""
    return select(column).where(_lots.c.id == _levels.c.lot_id).scalar_subquery()


# Every lot's level of an item at a place, locked in the unique index's (lot_key) order, with its
# lot's code, expiry and received date in the same round trip (the FEFO issue path, issue 17).
_LOCK_LOT_LEVELS = (
    select(
        _levels.c.id,
        _levels.c.quantity,
        _levels.c.lot_id,
        _levels.c.reserved,
        *(_lot_fact(column) for column in (_lots.c.code, _lots.c.expiry, _lots.c.received_at)),
    )
    .where(
        _levels.c.item_id == bindparam("item_id"),
        _levels.c.location_id == bindparam("location_id"),
        _levels.c.lot_key > 0,
    )
    .order_by(_levels.c.lot_key)
    .with_for_update()
)
# How items are tracked, read again under their row locks once the levels are locked (the order
# the on-hand trigger locks them in): a receipt decides on the tracking it read before its locks.
_LOCK_TRACKING = (
    select(Item.id, Item.tracking)
    .where(Item.id.in_(bindparam("item_ids", expanding=True)))
    .order_by(Item.id)
    .with_for_update()
)
_LOCKED_TRACKING = select(Item.id, Item.tracking).order_by(Item.id).with_for_update()
# Up to this many item ids go to the database as bound parameters, through a statement compiled
# once (a request's few, and a pick's); more are written into the statement (transaction.ids_in),
# which costs a compilation per statement but no parameter per id: for 20,000 items the tracking
# recheck took 260 ms (183 ms CPU) bound and 173 ms (122 ms) written, the level locks 319 ms
# (233 ms) and 189 ms (129 ms) (issue 13, MariaDB, best of 3 on a busy machine).
_BOUND_IDS = 1000


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


def _resolve_item(sku: str) -> ItemFacts:
    row = db.session.execute(item_query().where(Item.sku == sku)).first()
    if row is None:
        raise UnknownItem(sku)
    return ItemFacts(*row)


def _resolve_location(code: str) -> LocationFacts:
    row = db.session.execute(select(Location.id, Location.code, Location.active).where(Location.code == code)).first()
    if row is None:
        raise UnknownLocation(code)
    return LocationFacts(*row)


def _resolve_pair(sku: str, code: str) -> tuple[ItemFacts, LocationFacts]:
    """Item and location in one round trip; on a miss, find out which one is unknown."""
    row = execute(_RESOLVE_PAIR, {"sku": sku, "code": code}).first()
    if row is None:
        _resolve_item(sku)
        raise UnknownLocation(code)
    item_id, archived, reorder_point, tracking, location_id, active, counted = row
    item = ItemFacts(item_id, sku, archived, reorder_point, tracking)
    return item, LocationFacts(location_id, code, active, bool(counted))


def _mark_counted(movements: list[Movement]) -> list[Movement]:
    """Set `counted_sides` on `movements` (one query, in the caller's transaction)."""
    if movements:
        places = set(execute(_COUNTED_PLACES, {"item_ids": sorted({m.item_id for m in movements})}).tuples())
        for m in movements:
            m.counted_sides = frozenset(
                side
                for side, location_id in (("from", m.from_location_id), ("to", m.to_location_id))
                if (m.item_id, location_id) in places
            )
    return movements


# ---------------------------------------------------------------- locks, balances, ledger lines


def _lock_place(sku: str, code: str) -> tuple[ItemFacts, LocationFacts, Level]:
    """The item and place of a one-place movement (receive, issue, adjust), checked movable, with
    the place's level locked (a missing level reads as zero until `store_level` inserts it)."""
    item, location = _resolve_pair(sku, code)
    check_movable(item, location)
    return item, location, lock_level(item.id, location.id) or Level(None, ZERO)


def _lock_in_order(keys: Iterable[tuple[int, int, int | None]]) -> dict[tuple[int, int, int | None], Level]:
    """Lock each (item id, location id, lot id) stock level in the unique index's order (a lot
    id of None sorts as 0, stock without a lot); missing ones read as zero."""
    levels: dict[tuple[int, int, int | None], Level] = {}
    for key in sorted(set(keys), key=lambda k: (k[0], k[1], k[2] or 0)):
        levels[key] = lock_level(*key) or Level(None, ZERO, key[2])
    return levels


def _recheck_tracking(items: Iterable[ItemFacts]) -> None:
    """Lock the items' rows, after their stock levels, and make sure each is still tracked as it
    was read before the locks. Tracking changes only while an item holds no stock, and
    items.update_item decides that under this same row lock: a change committed in between would
    otherwise leave stock without lots under a lot-tracked item (or the reverse). Raises
    StaleRead, which runs the unit of work again with the tracking as it is now."""
    expected = {item.id: item.tracking for item in items}
    if len(expected) <= _BOUND_IDS:
        rows = (row for chunk in chunks(sorted(expected)) for row in execute(_LOCK_TRACKING, {"item_ids": list(chunk)}))
    else:
        rows = (
            row for ids in transaction.ids_in(_items.c.id, expected) for row in execute(_LOCKED_TRACKING.where(ids))
        )
    for item_id, tracking in rows:
        if tracking != expected[item_id]:
            raise transaction.StaleRead(f"item {item_id} is now tracked by {tracking}")


def _announce(movements: list[Movement]) -> None:
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def send() -> None:
        stock_moved.send(app, movements=movements)

    after_commit(send)


# ---------------------------------------------------------------- idempotency


def _replayed(req: Request, keys: Sequence[str] | None = None) -> list[Movement] | None:
    """The movements an identical earlier request of this caller wrote, if its key was seen."""
    if not req.key:
        return None
    found = replay(req.scope, keys or [req.key], req.digest or "")
    return None if found is None else _with_lines(_mark_counted(found))


def _line_keys(key: str, count: int) -> list[str]:
    return [f"{key}#{n}" for n in range(1, count + 1)]


def _part_key(key: str | None, part: int) -> str | None:
    """The key of the `part`-th ledger line of one request line (a FEFO issue over several lots)."""
    return key if key is None or part == 1 else f"{key}#{part}"


class Receipt(Acting, total=False):
    """What receive_stock takes besides the place and quantity: for a lot-tracked item its lot (and
    that lot's expiry on its first receipt), for a serial-tracked one the new serial numbers."""

    lot: str | None
    expiry: date | str | None
    serials: Sequence[str] | None


class Taking(Acting, total=False):
    """What issue_stock and transfer_stock take besides the place and quantity: the lot or the
    serial numbers taken, and a manager's leave to take an expired lot."""

    lot: str | None
    serials: Sequence[str] | None
    allow_expired: bool


class Stocktake(Acting, total=False):
    """What adjust_stock takes besides the place and count: the lot counted (and its expiry when
    the count finds a lot never received)."""

    lot: str | None
    expiry: date | str | None


# ---------------------------------------------------------------- lots and serials (issue 17)

#: Why a line took an expired lot: a manager's override (the reason is the line's note).
EXPIRED_OVERRIDE = "expired_override"


def _with_lines(movements: list[Movement]) -> list[Movement]:
    """`movements` with the first one carrying them all as `lines` when there are several."""
    if len(movements) > 1:
        movements[0].lines = tuple(movements)
    return movements


def lines_of(movement: Movement) -> list[Movement]:
    """Every ledger line the request that returned `movement` wrote (usually just it)."""
    return list(movement.lines) or [movement]


def _tracked_facts(**facts: Any) -> dict[str, Any]:
    """The lot and serial facts a request gave, for its fingerprint: none for untracked stock,
    so an untracked request is fingerprinted exactly as before."""
    return {k: v for k, v in facts.items() if v not in (None, False, (), [])}


def parse_serials(serials: Sequence[str] | str | None) -> tuple[str, ...]:
    """Serial numbers as a form or a scanner gives them (a list, or text with one a line or
    separated by commas), trimmed. Raises InvalidInput for a blank, a repeat, one too long."""
    return serial_list(serials)


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


def _serial_count(item: ItemFacts, quantity: Decimal, serials: Sequence[str]) -> None:
    if item.tracking == "serial" and Decimal(len(serials)) != quantity:
        raise SerialCountMismatch(sku=item.sku, quantity=quantity, given=len(serials))


def _lot_for_receipt(item: ItemFacts, code: str | None, expiry: date | None) -> LotFacts:
    """The lot a receipt (or a stocktake) puts stock into, created on its first receipt. Raises
    LotRequired, ExpiryRequired (the item requires one and the lot has none), ExpiryMismatch."""
    if code is None:
        raise LotRequired(item.sku)
    requires = bool(db.session.scalar(select(Item.requires_expiry).where(Item.id == item.id)))
    row = db.session.execute(select(*LOT_COLUMNS).where(_lots.c.item_id == item.id, _lots.c.code == code)).first()
    if row is None:
        if requires and expiry is None:
            raise ExpiryRequired(item.sku, code)
        now = utcnow()
        # Two first receipts of one lot at once: the duplicate key runs the unit of work again.
        result = execute(insert(_lots).values(item_id=item.id, code=code, expiry=expiry, received_at=now))
        return LotFacts(result.inserted_primary_key[0], code, expiry, now)
    lot = LotFacts(*row)
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

    item: ItemFacts
    location: LocationFacts
    levels: dict[int, Level]
    lots: dict[int, LotFacts] = field(default_factory=dict)

    def total(self) -> Decimal:
        return sum((level.quantity for level in self.levels.values()), ZERO)

    def level(self, lot: LotFacts | None) -> Level:
        key = lot.id if lot else 0
        if key not in self.levels:
            self.levels[key] = Level(None, ZERO, lot.id if lot else None)
            if lot is not None:
                self.lots[lot.id] = lot
        return self.levels[key]


def _lock_groups(places: Iterable[tuple[ItemFacts, LocationFacts]]) -> dict[tuple[int, int], _Group]:
    """Lock the stock of each (item, place) in (item id, location id) order: the one level, or
    every lot's level of a lot-tracked item (in lot order). Each group's rows are contiguous in
    the unique index (item, location, lot), so every writer takes its locks in that index order
    and two of them never wait on each other in a cycle."""
    unique = {(item.id, loc.id): (item, loc) for item, loc in places}
    groups: dict[tuple[int, int], _Group] = {}
    for key in sorted(unique):
        item, loc = unique[key]
        if item.tracking != "lot":
            groups[key] = _Group(item, loc, {0: lock_level(item.id, loc.id) or Level(None, ZERO)})
            continue
        with tracing.span("stock.lock", **{"inventory.item_id": item.id, "inventory.location_id": loc.id}):
            rows = execute(_LOCK_LOT_LEVELS, {"item_id": item.id, "location_id": loc.id}).all()
        levels = {
            lot_id: Level(level_id, quantity, lot_id, reserved) for level_id, quantity, lot_id, reserved, *_ in rows
        }
        lots = {lot_id: LotFacts(lot_id, *facts) for _, _, lot_id, _, *facts in rows}
        groups[key] = _Group(item, loc, levels, lots)
    return groups


@dataclass(slots=True)
class _Part:
    """One ledger line of a request line: a quantity out of one level (one lot), its serials."""

    level: Level
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
    check_tracking(item, out.lot, out.serials)
    _serial_count(item, out.quantity, out.serials)
    if item.tracking != "lot":
        level = group.levels[0]
        ids = _lock_serials_at(item, loc, out.serials) if item.tracking == "serial" else []
        take(item, loc, level, out.quantity, out.kind)
        return [_Part(level, out.quantity, ids)]
    day = today()
    if out.lot is not None:
        lot = find_lot(item, out.lot)
        level = group.level(lot)
        take(item, loc, level, out.quantity, out.kind)
        candidates = [(lot, level)]
    else:
        candidates = sorted(
            ((group.lots[key], level) for key, level in group.levels.items() if key and level.available > 0),
            key=lambda pair: pair[0].fefo(),
        )
        if not out.allow_expired:
            candidates = [(lot, level) for lot, level in candidates if not lot.expired(day)]
        available = sum((level.available for _, level in candidates), ZERO)
        if available < out.quantity:
            take(item, loc, Level(None, available), out.quantity, out.kind)  # raises
    parts: list[_Part] = []
    left = out.quantity
    for lot, level in candidates:
        if left <= 0:
            break
        expired = lot.expired(day)
        if expired and not out.allow_expired:
            raise ExpiredLot(sku=item.sku, lot=lot.code, expiry=str(lot.expiry))
        if expired and not out.reason:
            raise InvalidInput("note", "give the reason for issuing an expired lot")
        taken = min(left, level.available)
        parts.append(_Part(level, taken, expired=expired))
        left -= taken
    return parts


def _lock_serials_at(item: ItemFacts, loc: LocationFacts, serials: Sequence[str]) -> list[int]:
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


def _new_serials(item: ItemFacts, loc: LocationFacts, serials: Sequence[str]) -> list[int]:
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
        result = execute(
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


def _issue_from(group: _Group, out: _Out, req: Request, key: str | None) -> list[Movement]:
    """Issue `out` from the locked `group`: one ledger line per part (per lot), then the
    low-stock note on the place's total."""
    before = group.total()
    movements = []
    for n, part in enumerate(_choose(group, out), start=1):
        level = part.level
        store_level(group.item.id, group.location.id, level, level.quantity - part.quantity)
        movement = record_at(
            "from",
            group.location,
            level,
            kind="issue",
            item_id=group.item.id,
            quantity=part.quantity,
            lot_id=level.lot_id,
            **req.ledger(key=_part_key(key, n)) | _override(part),
        )
        if level.lot_id is not None:
            movement.lot_code = group.lots[level.lot_id].code
        _move_serials(part.serial_ids, movement, None)
        movements.append(movement)
    note_low_stock(group.item, group.location.id, before, group.total(), movements[-1])
    return movements


def _override(part: _Part) -> dict[str, Any]:
    """An expired lot taken on a manager's word: the line says why (over any other reason code)."""
    return {"reason_code": EXPIRED_OVERRIDE} if part.expired else {}


# ---------------------------------------------------------------- the operations


@unit_of_work
def receive_stock(*, sku: str, location: str, quantity: Decimal | str | int, **acting: Unpack[Receipt]) -> Movement:
    """Put stock into a location: a lot-tracked item into its `lot` (created with its `expiry` on
    its first receipt), a serial-tracked one as exactly `quantity` new `serials`. Raises
    UnknownItem, UnknownLocation, ArchivedItem, InactiveLocation, InvalidQuantity, InvalidInput,
    IdempotencyConflict, and for tracked items NotTracked, LotRequired, ExpiryRequired,
    ExpiryMismatch, SerialCountMismatch or SerialExists."""
    lot, expiry, serials = acting.get("lot"), acting.get("expiry"), acting.get("serials")
    qty = parse_quantity(quantity)
    code, when, named = clean_code(lot, "lot", MAX_LOT_CODE), parse_expiry(expiry), serial_list(serials)
    facts = _tracked_facts(lot=code, expiry=when and when.isoformat(), serials=named)
    req = make_request("receive", acting, sku=sku, location=location, quantity=qty, **facts)
    if replayed := _replayed(req):
        return replayed[0]
    item, loc = _resolve_pair(sku, location)
    check_movable(item, loc)
    movement = _receive_one(item, loc, PickLine(sku, location, qty, code, when, named), req)
    _announce([movement])
    return movement


def _receive_one(item: ItemFacts, loc: LocationFacts, line: PickLine, req: Request) -> Movement:
    """Receive one checked line: into its lot (lot-tracked), as its new serials (serial-tracked)."""
    qty, when = Decimal(line.quantity), parse_expiry(line.expiry)
    check_tracking(item, line.lot, line.serials, when)
    _serial_count(item, qty, line.serials)
    lot_id = _lot_for_receipt(item, line.lot, when).id if item.tracking == "lot" else None
    level = lock_level(item.id, loc.id, lot_id) or Level(None, ZERO, lot_id)
    _recheck_tracking([item])
    store_level(item.id, loc.id, level, level.quantity + qty)
    serial_ids = _new_serials(item, loc, line.serials) if item.tracking == "serial" else []
    movement = record_at("to", loc, level, kind="receive", item_id=item.id, quantity=qty, lot_id=lot_id, **req.ledger())
    _move_serials(serial_ids, movement, loc.id)
    return movement


@unit_of_work
def issue_stock(*, sku: str, location: str, quantity: Decimal | str | int, **acting: Unpack[Taking]) -> Movement:
    """Take stock out of a location (a stock-out). Raises InsufficientStock with the available
    quantity, and the errors receive_stock raises.

    A lot-tracked item is taken from the named `lot`, or else first-expired-first-out across its
    lots there, one ledger line per lot (the first is returned; `lines_of` gives them all).
    Expired lots are refused (ExpiredLot, or InsufficientStock when FEFO finds too little) unless
    `allow_expired`, which a caller grants a manager only, with the reason as `note`. A
    serial-tracked item is issued by naming its `serials` (UnknownSerial, SerialNotHere)."""
    lot, serials, allow_expired = acting.get("lot"), acting.get("serials"), acting.get("allow_expired", False)
    qty = parse_quantity(quantity)
    code, named = clean_code(lot, "lot", MAX_LOT_CODE), serial_list(serials)
    facts = _tracked_facts(lot=code, serials=named, allow_expired=allow_expired)
    req = make_request("issue", acting, sku=sku, location=location, quantity=qty, **facts)
    if replayed := _replayed(req):
        return replayed[0]
    item, loc = _resolve_pair(sku, location)
    check_movable(item, loc)
    if item.tracking != "none" or facts:
        out = _Out(qty, "issue", code, named, allow_expired, req.note)
        movements = _issue_from(_lock_groups([(item, loc)])[(item.id, loc.id)], out, req, req.key)
        _announce(movements)
        return _with_lines(movements)[0]
    # Untracked stock, the hot path: one locking read, one UPDATE, one INSERT.
    # ---- issue 19: or applied together with the other stock-outs waiting for this level's lock
    if combining.applies():
        movement = combining.issue(item, loc, qty, req)
    # ----
    else:
        movement = take_out(item, loc, lock_level(item.id, loc.id) or Level(None, ZERO), qty, req)
    _announce([movement])
    return movement


@unit_of_work
def transfer_stock(
    *, sku: str, from_location: str, to_location: str, quantity: Decimal | str | int, **acting: Unpack[Taking]
) -> Movement:
    """Move stock between two locations, one ledger line per lot moved (the lots chosen as
    issue_stock chooses them, each arriving as the same lot; serials keep their numbers). Raises
    SameLocation, InsufficientStock and the errors issue_stock raises."""
    lot, serials, allow_expired = acting.get("lot"), acting.get("serials"), acting.get("allow_expired", False)
    qty = parse_quantity(quantity)
    code, named = clean_code(lot, "lot", MAX_LOT_CODE), serial_list(serials)
    facts = _tracked_facts(lot=code, serials=named, allow_expired=allow_expired)
    req = make_request("transfer", acting, sku=sku, source=from_location, target=to_location, quantity=qty, **facts)
    if from_location == to_location:
        raise SameLocation(from_location)
    if replayed := _replayed(req):
        return replayed[0]
    item, source = _resolve_pair(sku, from_location)
    target = _resolve_location(to_location)
    check_movable(item, source, target)
    groups = _lock_groups([(item, source), (item, target)])
    out, into = groups[(item.id, source.id)], groups[(item.id, target.id)]
    before = out.total()
    movements = []
    parts = _choose(out, _Out(qty, "transfer", code, named, allow_expired, req.note))
    for n, part in enumerate(parts, start=1):
        lot_id = part.level.lot_id
        arriving = into.level(None if lot_id is None else out.lots[lot_id])
        store_level(item.id, source.id, part.level, part.level.quantity - part.quantity)
        store_level(item.id, target.id, arriving, arriving.quantity + part.quantity)
        movement = record_movement(
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
    note_low_stock(item, source.id, before, out.total(), movements[-1])
    _mark_counted(movements)
    _announce(movements)
    return _with_lines(movements)[0]


@unit_of_work
def adjust_stock(*, sku: str, location: str, counted: Decimal | str | int, **acting: Unpack[Stocktake]) -> Movement:
    """Stocktake: set the level to the counted quantity and record the difference (a zero
    difference is recorded too: it says the count confirmed the balance). A lot-tracked item is
    counted per lot (LotRequired; a lot found that was never received is created, with its
    `expiry`). A serial-tracked item's count can only confirm its balance: serials are corrected
    by receiving or issuing them (InvalidInput)."""
    lot, expiry = acting.get("lot"), acting.get("expiry")
    qty = parse_quantity(counted, field="counted", allow_zero=True)
    code, when = clean_code(lot, "lot", MAX_LOT_CODE), parse_expiry(expiry)
    facts = _tracked_facts(lot=code, expiry=when and when.isoformat())
    req = make_request("adjust", acting, sku=sku, location=location, counted=qty, **facts)
    if replayed := _replayed(req):
        return replayed[0]
    item, loc = _resolve_pair(sku, location)
    check_movable(item, loc)
    check_tracking(item, code, (), when)
    lot_id = _lot_for_receipt(item, code, when).id if item.tracking == "lot" else None
    level = lock_level(item.id, loc.id, lot_id) or Level(None, ZERO, lot_id)
    _recheck_tracking([item])
    before = level.quantity
    if item.tracking == "serial" and qty != before:
        raise InvalidInput("counted", "serial-tracked stock is corrected by receiving or issuing its serials")
    _store_counted(item.id, loc.id, level, qty, req)
    side = "from" if qty < before else "to"
    movement = record_at(
        side, loc, level, kind="adjust", item_id=item.id, quantity=abs(qty - before), lot_id=lot_id, **req.ledger()
    )
    note_low_stock(item, loc.id, before, qty, movement)
    _announce([movement])
    return movement


# ---------------------------------------------------------------- stock reservations hold (issue 18)


@dataclass(frozen=True, slots=True)
class HeldPick:
    """What a reservation line's pick takes: `quantity` of the stock it holds at `level` (locked
    by the caller, like every other level of that place: `place`), with the `serials` named for a
    serial-tracked item."""

    item_id: int
    location_id: int
    level: Level
    place: Sequence[Level]
    quantity: Decimal
    serials: Sequence[str] = ()


def issue_held(picks: Sequence[HeldPick], req: Request) -> list[Movement]:
    """Issue stock that reservations hold, in the caller's unit of work (the reservation
    service's): each pick's level loses the quantity from its quantity and its reserved part in
    one UPDATE, and an issue ledger line records it (keyed <key>#1, #2 … in order, for a replay).
    Raises NotTracked, SerialCountMismatch, UnknownSerial, SerialNotHere."""
    items, places = _items_and_places({p.item_id for p in picks}, {p.location_id for p in picks})
    movements: list[Movement] = []
    for pick in picks:
        item, loc, level = items[pick.item_id], places[pick.location_id], pick.level
        check_tracking(item, None, pick.serials)
        _serial_count(item, pick.quantity, pick.serials)
        serial_ids = _lock_serials_at(item, loc, pick.serials) if item.tracking == "serial" else []
        before = sum((other.quantity for other in pick.place), ZERO)
        store_held(level, reserved=level.reserved - pick.quantity, quantity=level.quantity - pick.quantity)
        key = f"{req.key}#{len(movements) + 1}" if req.key else None
        movement = record_at(
            "from",
            loc,
            level,
            kind="issue",
            item_id=item.id,
            quantity=pick.quantity,
            lot_id=level.lot_id,
            **req.ledger(key),
        )
        _move_serials(serial_ids, movement, None)
        note_low_stock(item, loc.id, before, before - pick.quantity, movement)
        movements.append(movement)
    _mark_counted(movements)
    _announce(movements)
    return movements


def _store_counted(item_id: int, location_id: int, level: Level, counted: Decimal, req: Request) -> None:
    """Store what a count found at a level. The physical count wins: when it is less than the
    reservations hold there, they are cut back to what is there (newest first) before the level
    is written (its CHECK keeps reserved <= quantity)."""
    if counted < level.reserved:
        holds.cut_back(item_id=item_id, location_id=location_id, level=level, counted=counted, user=req.user)
    store_level(item_id, location_id, level, counted)


@unit_of_work
def count_serials(
    *,
    sku: str,
    location: str,
    found: Sequence[str],
    counted_at: datetime,
    **acting: Unpack[Acting],
) -> list[Movement]:
    """Stocktake of a serial-tracked item at a place, serial by serial: `found` are the serials a
    counter found there at `counted_at`. Serials the system has there and that were not found are
    written off (an "adjust" line out of the place, naming them; they leave the stock as issued,
    so a reversal brings them back). Serials found that the system had at another place are moved
    here (a "transfer" line from each such place), and found ones it had issued, or never had, are
    taken into stock here (an "adjust" line into the place, naming them). A serial moved after
    `counted_at` is left where its later movement put it. With nothing to correct, one zero
    line confirms the count. Returns the lines written. Raises NotTracked, InvalidInput and the
    errors adjust_stock raises."""
    named = serial_list(found)
    req = make_request("count_serials", acting, sku=sku, location=location, serials=named)
    item, loc = _resolve_pair(sku, location)
    check_movable(item, loc)
    if item.tracking != "serial":
        raise NotTracked(sku=item.sku, tracking=item.tracking, field="serials")
    levels, rows = _lock_count(item, loc, named)
    count = _SerialCount.of(rows, named, loc, counted_at)
    here = levels[(item.id, loc.id, None)]
    before = here.quantity
    movements = _write_count(item, loc, levels, count, req)
    note_low_stock(item, loc.id, before, here.quantity, movements[-1])
    _mark_counted(movements)
    _announce(movements)
    return movements


def _lock_count(
    item: ItemFacts, loc: LocationFacts, named: Sequence[str]
) -> tuple[dict[tuple[int, int, int | None], Level], list[Any]]:
    """The levels a serial count may change (the place's and those of the places the found serials
    are at, locked in index order) and the serials it concerns, locked after them. Raises StaleRead
    when a serial moved to another place between the read and the lock."""
    # Where the found serials are, read first so that every level is locked in index order.
    sources = {r.location_id for r in _serials_at(item, loc, named, lock=False)} - {None, loc.id}
    levels = _lock_in_order((item.id, lid, None) for lid in sorted({loc.id, *sources}, key=lambda i: i or 0))
    _recheck_tracking([item])
    rows = _serials_at(item, loc, named, lock=True)
    if {r.location_id for r in rows} - {None, loc.id} - sources:
        raise transaction.StaleRead(f"a serial of {item.sku} moved before it was locked")
    return levels, rows


@dataclass(frozen=True, slots=True)
class _SerialCount:
    """A serial count against the stock: the serial ids to write off at the place (`lost`), to move
    there from other places (`moved`, by place id), to take back in (`back`, issued ones), and the
    serials found that the system never had (`new`). Serials moved since the count are left out."""

    lost: list[int]
    moved: dict[int, list[int]]
    back: list[int]
    new: list[str]

    @classmethod
    def of(cls, rows: Sequence[Any], named: Sequence[str], loc: LocationFacts, counted_at: datetime) -> _SerialCount:
        """Sort the locked serial `rows` by what the count of `named` at `loc` says of them."""
        wanted = {compared(serial): serial for serial in named}
        known = {compared(r.serial): r for r in rows}
        settled = {r.id for r in rows if r.updated_at > counted_at}  # moved since it was counted
        lost = [r.id for r in rows if _in_stock_at(r, loc) and compared(r.serial) not in wanted if r.id not in settled]
        found = [row for row in (known.get(key) for key in wanted) if row is not None and row.id not in settled]
        moved, back = _found_elsewhere(found, loc)
        new = [serial for key, serial in wanted.items() if key not in known]
        return cls(lost=lost, moved=moved, back=back, new=new)


def _in_stock_at(row: Any, loc: LocationFacts) -> bool:
    """Whether the serial row is in stock at `loc`."""
    return bool((row.status, row.location_id) == ("in_stock", loc.id))


def _found_elsewhere(found: Iterable[Any], loc: LocationFacts) -> tuple[dict[int, list[int]], list[int]]:
    """Of the serial rows a count found at `loc`, the ids of those the system has in stock at
    another place (by place id) and of those it had issued; ones already in stock there are left."""
    moved: dict[int, list[int]] = {}
    back: list[int] = []
    for row in found:
        if _in_stock_at(row, loc):
            continue
        if row.status == "in_stock":
            moved.setdefault(row.location_id, []).append(row.id)
        else:
            back.append(row.id)
    return moved, back


def _write_count(
    item: ItemFacts,
    loc: LocationFacts,
    levels: dict[tuple[int, int, int | None], Level],
    count: _SerialCount,
    req: Request,
) -> list[Movement]:
    """Write a serial count's lines, in this order: the lost serials out of the place, a transfer
    from each other place (in place id order), the arriving ones into the place; with none of
    these, one zero line into the place confirming the count."""
    here = levels[(item.id, loc.id, None)]
    movements = []
    if count.lost:
        _store_counted(item.id, loc.id, here, here.quantity - len(count.lost), req)
        movements.append(
            _serial_line(count.lost, None, record_at("from", loc, here, **_counted(item, count.lost, req)))
        )
    for source_id, ids in sorted(count.moved.items()):
        movements.append(_count_transfer(item, loc, levels, source_id, ids, req))
    arriving = count.back + _new_serials(item, loc, count.new)
    if arriving or not movements:
        store_level(item.id, loc.id, here, here.quantity + len(arriving))
        movements.append(_serial_line(arriving, loc.id, record_at("to", loc, here, **_counted(item, arriving, req))))
    return movements


def _count_transfer(
    item: ItemFacts,
    loc: LocationFacts,
    levels: dict[tuple[int, int, int | None], Level],
    source_id: int,
    ids: list[int],
    req: Request,
) -> Movement:
    """Move the serials `ids` a count found at `loc` there from the place the system had them."""
    here, source = levels[(item.id, loc.id, None)], levels[(item.id, source_id, None)]
    _store_counted(item.id, source_id, source, source.quantity - len(ids), req)
    store_level(item.id, loc.id, here, here.quantity + len(ids))
    line = record_movement(
        **_counted(item, ids, req, kind="transfer"),
        from_location_id=source_id,
        to_location_id=loc.id,
        from_balance=source.quantity,
        to_balance=here.quantity,
    )
    return _serial_line(ids, loc.id, line)


def _items_and_places(
    item_ids: set[int], location_ids: set[int]
) -> tuple[dict[int, ItemFacts], dict[int, LocationFacts]]:
    items = db.session.execute(item_query().where(Item.id.in_(item_ids)))
    places = db.session.execute(
        select(Location.id, Location.code, Location.active).where(Location.id.in_(location_ids))
    )
    return {r[0]: ItemFacts(*r) for r in items}, {r[0]: LocationFacts(*r) for r in places}


def _serials_at(item: ItemFacts, loc: LocationFacts, named: Sequence[str], *, lock: bool) -> list[Any]:
    """The item's serials in stock at `loc` and those `named`, wherever they are (in id order;
    with `lock`, locked, after the levels)."""
    stmt = (
        select(_serials.c.id, _serials.c.serial, _serials.c.status, _serials.c.location_id, _serials.c.updated_at)
        .where(
            _serials.c.item_id == item.id,
            or_(
                _serials.c.serial.in_(named),
                and_(_serials.c.status == "in_stock", _serials.c.location_id == loc.id),
            ),
        )
        .order_by(_serials.c.id)
    )
    return list(db.session.execute(stmt.with_for_update() if lock else stmt).all())


def _counted(item: ItemFacts, serial_ids: Sequence[int], req: Request, kind: str = "adjust") -> dict[str, Any]:
    """The facts of a serial count's ledger line moving `serial_ids`."""
    return {"kind": kind, "item_id": item.id, "quantity": Decimal(len(serial_ids)), **req.ledger()}


def _serial_line(serial_ids: Sequence[int], to_location_id: int | None, movement: Movement) -> Movement:
    _move_serials(serial_ids, movement, to_location_id)
    return movement


def _location_code(location_id: int) -> str:
    return db.session.scalar(select(Location.code).where(Location.id == location_id)) or str(location_id)


# A pick is typed or scanned by a person; bulk receipts (imports, seeding) have no such bound.
MAX_PICK_LINES = 500


def _pick_lines(lines: Sequence[PickLine | dict[str, Any]], *, limit: int | None = None) -> list[PickLine]:
    """The lines with their quantities parsed; refuses none, or more than `limit`."""
    if not lines:
        raise InvalidInput("lines", "at least one line is required")
    if limit is not None and len(lines) > limit:
        raise InvalidInput("lines", f"at most {limit} lines")
    return [
        _pick_line(n, line if isinstance(line, PickLine) else PickLine(**line)) for n, line in enumerate(lines, start=1)
    ]


def _pick_line(n: int, raw: PickLine) -> PickLine:
    quantity = parse_quantity(raw.quantity, field=f"lines[{n}].quantity")
    if raw.lot is None and raw.expiry is None and not raw.serials:
        # Untracked, as nearly all of an import's lines are: nothing else to clean, and building
        # the line directly is cheaper than replace() and the cleaners of empty fields (100,000
        # lines took 0.36-0.45 s of CPU that way, 0.17-0.22 s this way; issue 13).
        return PickLine(raw.sku, raw.location, quantity)
    return replace(
        raw,
        quantity=quantity,
        lot=clean_code(raw.lot, f"lines[{n}].lot", MAX_LOT_CODE),
        expiry=parse_expiry(raw.expiry),
        serials=serial_list(raw.serials),
    )


def _resolve_lines(lines: Sequence[PickLine]) -> tuple[dict[str, ItemFacts], dict[str, LocationFacts]]:
    skus = {line.sku for line in lines}
    codes = {line.location for line in lines}
    items, locations = items_by_sku(skus), locations_by_code(codes)
    for line in lines:
        if line.sku not in items:
            raise UnknownItem(line.sku)
        if line.location not in locations:
            raise UnknownLocation(line.location)
        check_movable(items[line.sku], locations[line.location])
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
    req = make_request("issue_lines", acting, lines=facts)
    keys: list[str | None] = list(_line_keys(req.key, len(picks))) if req.key else [None] * len(picks)
    if req.key and (replayed := _replayed(req, _line_keys(req.key, len(picks)))):
        return replayed
    items, locations = _resolve_lines(picks)
    groups = _lock_groups((items[p.sku], locations[p.location]) for p in picks)
    # The lines are written in the order given; their items' rows are locked in id order first.
    lock_items(item_id for item_id, _ in groups)
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
    created: Collection[str] = (),
    counted: Collection[str] = (),
) -> int:
    """Bulk receipt (opening stock, seeding, imports): all lines or none, with the ledger lines
    of untracked stock written in batches (lines with lots or serials one by one, after them).
    `created` names SKUs this same unit of work has just inserted (an import's new items): no
    other transaction can see them yet, and their INSERT holds their rows, so they have no
    stock levels to lock and no tracking that could have changed; at 100,000 new items those two
    reads were 0.5-1.0 s of an import's commit (issue 13). `counted` names those of them inserted
    with their on-hand total already holding these lines (opening_on_hand): theirs is left alone.
    Returns how many movements were written."""
    picks = _pick_lines(lines)
    req = make_request("receive_lines", Acting(user=user, reference=reference, note=note))
    items, locations = _resolve_lines(picks)
    split: dict[bool, list[PickLine]] = {True: [], False: []} | _group_by(
        picks, lambda p: not _in_batches(items[p.sku].tracking, p)
    )
    tracked, picks = split[True], split[False]
    pairs = [(items[p.sku].id, locations[p.location].id) for p in picks]
    fresh = {items[sku].id for sku in set(created) if sku in items}
    preset = {items[sku].id for sku in set(counted) & set(created) if sku in items}
    levels = _lock_many(sorted(set(pairs)), fresh)
    # Also the items rows locked in id order before the first write (as stock_core.lock_items).
    _recheck_tracking(items[p.sku] for p in picks if items[p.sku].id not in fresh)
    now = utcnow()
    rows = []
    added: dict[int, Decimal] = {}
    for pick, pair in zip(picks, pairs, strict=True):
        level = levels[pair]
        level.quantity += Decimal(pick.quantity)
        if pair[0] not in preset:
            added[pair[0]] = added.get(pair[0], ZERO) + Decimal(pick.quantity)
        rows.append(dict(item_id=pair[0], to_location_id=pair[1], quantity=pick.quantity, to_balance=level.quantity))
    _store_many(levels, now, added)
    transaction.insert_rows(_movements, rows, kind="receive", created_at=now, **req.ledger())
    for pick in tracked:
        _receive_one(items[pick.sku], locations[pick.location], pick, req)
    count = len(rows) + len(tracked)
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def send() -> None:
        stock_moved.send(app, movements=None, kind="receive", count=count)

    after_commit(send)
    return count


def opening_on_hand(lines: Sequence[PickLine], tracking: Mapping[str, str]) -> dict[str, Decimal]:
    """The on-hand totals that receive_lines would add, set-wise, for the items of `tracking` (the
    SKUs and tracking of items about to be created): their untracked lines' quantities (`lines`
    are checked ones, with Decimal quantities: an import's). Inserted with these totals and named
    in receive_lines' `counted`, new items need no UPDATE of their total after their receipt; for
    a 100,000-row import that UPDATE (each row's total and the two indexes on is_low) was 1.2 s
    of the commit's 12.5 s (issue 13). Empty where every level's trigger counts it instead
    (SQLite)."""
    totals: dict[str, Decimal] = {}
    if not transaction.on_hand_set_wise():
        return totals
    for pick in lines:
        if _in_batches(tracking.get(pick.sku), pick):
            totals[pick.sku] = totals.get(pick.sku, ZERO) + Decimal(pick.quantity)
    return totals


def _in_batches(tracking: str | None, pick: PickLine) -> bool:
    """Whether receive_lines writes this line in its batches (an untracked item, a line with no
    lot, expiry or serials), which opening_on_hand must count alike."""
    return tracking == "none" and _line_facts(pick) == ()


def _lock_many(pairs: list[tuple[int, int]], fresh: Collection[int] = ()) -> dict[tuple[int, int], Level]:
    """Lock many stock levels with few statements, in index (item, location) order; items of
    `fresh` (inserted by this unit of work) have none yet, and are not read."""
    levels = {pair: Level(None, ZERO) for pair in pairs}
    item_ids = sorted({item_id for item_id, _ in pairs} - set(fresh))
    with tracing.span("stock.lock", **{"inventory.levels": len(pairs)}):
        _lock_chunks(item_ids, levels)
    return levels


_LOCK_UNTRACKED = (
    select(_levels.c.id, _levels.c.item_id, _levels.c.location_id, _levels.c.quantity)
    .where(_levels.c.lot_key == 0)
    .order_by(_levels.c.item_id, _levels.c.location_id)
    .with_for_update()
)


def _lock_chunks(item_ids: list[int], levels: dict[tuple[int, int], Level]) -> None:
    wheres: list[Any]
    if len(item_ids) <= _BOUND_IDS:
        wheres = [_levels.c.item_id.in_(chunk) for chunk in chunks(item_ids)]
    else:
        wheres = list(transaction.ids_in(_levels.c.item_id, item_ids))
    for where in wheres:
        rows = execute(_LOCK_UNTRACKED.where(where))
        for level_id, item_id, location_id, quantity in rows:
            if (item_id, location_id) in levels:
                levels[(item_id, location_id)] = Level(level_id, quantity)


def _store_many(levels: dict[tuple[int, int], Level], now: Any, added: dict[int, Decimal]) -> None:
    """Write the levels (`added` is what they add up to per item) with one statement per batch,
    and the items' on-hand totals with one more where the triggers allow (a trigger's UPDATE per
    level was about 0.9 s per 50,000 levels)."""
    with transaction.on_hand_triggers_off() as set_wise:
        _write_levels(levels, now)
    if set_wise:
        totals = [{"id": item_id, "on_hand": quantity} for item_id, quantity in sorted(added.items())]
        transaction.update_rows(_items, totals, add=("on_hand",))


def _write_levels(levels: dict[tuple[int, int], Level], now: Any) -> None:
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


def _lock_moved_serials(item: ItemFacts, original: Movement, source_id: int | None) -> list[int]:
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


def _check_reversal_target(item: ItemFacts, target_id: int | None) -> None:
    """A reversal, like any movement, never moves an archived item nor fills an inactive location."""
    if item.archived:
        raise ArchivedItem(item.sku)
    if target_id is not None:
        row = db.session.execute(
            select(Location.id, Location.code, Location.active).where(Location.id == target_id)
        ).one()
        check_movable(item, LocationFacts(*row))


def _check_restorable(item: ItemFacts, original: Movement, serial_ids: Sequence[int]) -> None:
    """A reversal that puts stock back puts it back as it left: in its lot, as its serials, or
    untracked. Read under the item's row lock: once the tracking changed (only while the item
    held nothing), that stock no longer fits it (IrreversibleMovement)."""
    tracking = execute(_LOCK_TRACKING, {"item_ids": [item.id]}).one()[1]
    moved = "lot" if original.lot_id is not None else "serial" if serial_ids else "none"
    if tracking != moved:
        raise IrreversibleMovement(original.id, f"the item is now tracked by {tracking}")


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
    req = make_request("reverse", keyed, movement_id=movement_id)
    if replayed := _replayed(req):
        return replayed[0]
    original = _lock_reversible(movement_id, scanned_by=req.user if own_scan_only else None)
    item = ItemFacts(*db.session.execute(item_query().where(Item.id == original.item_id)).one())
    # The reversal moves the same quantity the other way: out of where it went, into where it came from.
    source_id, target_id = original.to_location_id, original.from_location_id
    _check_reversal_target(item, target_id)
    involved = [lid for lid in (source_id, target_id) if lid is not None]
    levels = _lock_in_order((item.id, lid, original.lot_id) for lid in involved)
    serial_ids = _lock_moved_serials(item, original, source_id)
    if target_id is not None:
        _check_restorable(item, original, serial_ids)
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
        store_level(
            item.id,
            source_id,
            level,
            take(item, LocationFacts(source_id, code, True), level, original.quantity, "reversal"),
        )
        values.update(from_location_id=source_id, from_balance=level.quantity)
    if target_id is not None:
        level = levels[(item.id, target_id, original.lot_id)]
        store_level(item.id, target_id, level, level.quantity + original.quantity)
        values.update(to_location_id=target_id, to_balance=level.quantity)
    movement = record_movement(**values)
    _move_serials(serial_ids, movement, target_id)
    if source_id is not None and before is not None:
        note_low_stock(item, source_id, before, values["from_balance"], movement)
    _announce([movement])
    return movement
