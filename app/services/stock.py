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
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Required, TypedDict, TypeVar, Unpack, cast

from blinker import Namespace
from flask import current_app
from sqlalchemy import Table, and_, bindparam, exists, insert, select, true, update

from app.extensions import db
from app.models import Count, CountLine, Item, Location, LowStockEvent, Movement, StockLevel
from app.models.stock import REASON_CODES
from app.models.types import utcnow
from app.observability import tracing
from app.services import idempotency, transaction
from app.services.codes import compared
from app.services.errors import (
    AlreadyReversed,
    ArchivedItem,
    IdempotencyConflict,
    InactiveLocation,
    InsufficientStock,
    InvalidInput,
    IrreversibleMovement,
    QuantityOutOfRange,
    SameLocation,
    UnknownItem,
    UnknownLocation,
    UnknownMovement,
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
    .where(_levels.c.item_id == bindparam("item_id"), _levels.c.location_id == bindparam("location_id"))
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


@dataclass(frozen=True, slots=True)
class PickLine:
    """One line of a multi-line pick (issue_lines) or a bulk receipt (receive_lines)."""

    sku: str
    location: str
    quantity: Decimal | str | int


# ---------------------------------------------------------------- reading what a request names


def _item_query() -> Any:
    return select(Item.id, Item.sku, Item.archived, Item.reorder_point)


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
    item_id, archived, reorder_point, location_id, active, counted = row
    return _Item(item_id, sku, archived, reorder_point), _Location(location_id, code, active, bool(counted))


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


def _lock(item_id: int, location_id: int) -> _Level | None:
    # Under contention a stock-out waits here: in a trace, this span's length is the lock wait.
    with tracing.span("stock.lock", **{"inventory.item_id": item_id, "inventory.location_id": location_id}):
        row = _execute(_LOCK_LEVEL, {"item_id": item_id, "location_id": location_id}).first()
    return None if row is None else _Level(row[0], row[1])


def _lock_place(sku: str, code: str) -> tuple[_Item, _Location, _Level]:
    """The item and place of a one-place movement (receive, issue, adjust), checked movable, with
    the place's level locked (a missing level reads as zero until `_store` inserts it)."""
    item, location = _resolve_pair(sku, code)
    _check_movable(item, location)
    return item, location, _lock(item.id, location.id) or _Level(None, ZERO)


def _lock_in_order(pairs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], _Level]:
    """Lock each (item id, location id) stock level in sorted order; missing ones read as zero."""
    levels: dict[tuple[int, int], _Level] = {}
    for pair in sorted(set(pairs)):
        levels[pair] = _lock(*pair) or _Level(None, ZERO)
    return levels


def _store(item_id: int, location_id: int, level: _Level, quantity: Decimal) -> None:
    if quantity > level.quantity:
        _check_range(item_id, location_id, quantity, quantity - level.quantity)
    now = utcnow()
    if level.id is None:
        # A concurrent first receipt may insert the same row: its duplicate-key error makes
        # the unit of work run again, and then this row is found and locked.
        result = _execute(
            _INSERT_LEVEL, {"item_id": item_id, "location_id": location_id, "quantity": quantity, "updated_at": now}
        )
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
    """The movements an earlier identical request of this caller wrote under `keys`, if any."""
    found = db.session.scalars(
        select(Movement)
        .where(Movement.idempotency_scope == scope, Movement.idempotency_key.in_(keys))
        .order_by(Movement.id)
    ).all()
    if not found:
        return None
    if any(m.request_hash != request_hash for m in found) or len(found) != len(keys):
        raise IdempotencyConflict(keys[0].split("#")[0])
    return list(found)


def _line_keys(key: str, count: int) -> list[str]:
    return [f"{key}#{n}" for n in range(1, count + 1)]


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
        return None if found is None else _mark_counted(found)


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


# ---------------------------------------------------------------- the operations


@unit_of_work
def receive_stock(
    *,
    sku: str,
    location: str,
    quantity: Decimal | str | int,
    **acting: Unpack[Acting],
) -> Movement:
    """Put stock into a location. Raises UnknownItem, UnknownLocation, ArchivedItem,
    InactiveLocation, InvalidQuantity, InvalidInput or IdempotencyConflict."""
    qty = parse_quantity(quantity)
    req = _request("receive", acting, sku=sku, location=location, quantity=qty)
    if replayed := req.replayed():
        return replayed[0]
    item, loc, level = _lock_place(sku, location)
    _store(item.id, loc.id, level, level.quantity + qty)
    movement = _record_at("to", loc, level, kind="receive", item_id=item.id, quantity=qty, **req.ledger())
    _announce([movement])
    return movement


@unit_of_work
def issue_stock(
    *,
    sku: str,
    location: str,
    quantity: Decimal | str | int,
    **acting: Unpack[Acting],
) -> Movement:
    """Take stock out of a location (a stock-out). Raises InsufficientStock with the available
    quantity, and the errors receive_stock raises."""
    qty = parse_quantity(quantity)
    req = _request("issue", acting, sku=sku, location=location, quantity=qty)
    if replayed := req.replayed():
        return replayed[0]
    item, loc, level = _lock_place(sku, location)
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
    **acting: Unpack[Acting],
) -> Movement:
    """Move stock between two locations in one ledger line. Raises SameLocation,
    InsufficientStock and the errors receive_stock raises."""
    qty = parse_quantity(quantity)
    req = _request("transfer", acting, sku=sku, source=from_location, target=to_location, quantity=qty)
    if from_location == to_location:
        raise SameLocation(from_location)
    if replayed := req.replayed():
        return replayed[0]
    item, source = _resolve_pair(sku, from_location)
    target = _resolve_location(to_location)
    _check_movable(item, source, target)
    levels = _lock_in_order([(item.id, source.id), (item.id, target.id)])
    out, into = levels[(item.id, source.id)], levels[(item.id, target.id)]
    before = out.quantity
    _store(item.id, source.id, out, _take(item, source, out, qty, "transfer"))
    _store(item.id, target.id, into, into.quantity + qty)
    movement = _record(
        kind="transfer",
        item_id=item.id,
        from_location_id=source.id,
        to_location_id=target.id,
        quantity=qty,
        from_balance=out.quantity,
        to_balance=into.quantity,
        **req.ledger(),
    )
    _note_low_stock(item, source.id, before, out.quantity, movement)
    _mark_counted([movement])
    _announce([movement])
    return movement


@unit_of_work
def adjust_stock(
    *,
    sku: str,
    location: str,
    counted: Decimal | str | int,
    **acting: Unpack[Acting],
) -> Movement:
    """Stocktake: set the level to the counted quantity and record the difference (a zero
    difference is recorded too: it says the count confirmed the balance)."""
    qty = parse_quantity(counted, field="counted", allow_zero=True)
    req = _request("adjust", acting, sku=sku, location=location, counted=qty)
    if replayed := req.replayed():
        return replayed[0]
    item, loc, level = _lock_place(sku, location)
    before = level.quantity
    _store(item.id, loc.id, level, qty)
    side = "from" if qty < before else "to"
    movement = _record_at(side, loc, level, kind="adjust", item_id=item.id, quantity=abs(qty - before), **req.ledger())
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
        PickLine(raw.sku, raw.location, parse_quantity(raw.quantity, field=f"lines[{n}].quantity"))
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
    req = _request("issue_lines", acting, lines=[(p.sku, p.location, p.quantity) for p in picks])
    keys: list[str | None] = list(_line_keys(req.key, len(picks))) if req.key else [None] * len(picks)
    if req.key and (replayed := req.replayed(_line_keys(req.key, len(picks)))):
        return replayed
    items, locations = _resolve_lines(picks)
    levels = _lock_in_order((items[p.sku].id, locations[p.location].id) for p in picks)
    movements = []
    for pick, line_key in zip(picks, keys, strict=True):
        item, loc = items[pick.sku], locations[pick.location]
        level = levels[(item.id, loc.id)]
        before = level.quantity
        _store(item.id, loc.id, level, _take(item, loc, level, Decimal(pick.quantity), "issue"))
        movement = _record(
            kind="issue",
            item_id=item.id,
            from_location_id=loc.id,
            quantity=pick.quantity,
            from_balance=level.quantity,
            **req.ledger(key=line_key),
        )
        _note_low_stock(item, loc.id, before, level.quantity, movement)
        movements.append(movement)
    _mark_counted(movements)
    _announce(movements)
    return movements


@unit_of_work
def receive_lines(
    *,
    lines: Sequence[PickLine | dict[str, Any]],
    user: str,
    reference: str | None = None,
    note: str | None = None,
) -> int:
    """Bulk receipt (opening stock, seeding, imports): all lines or none, with the ledger lines
    written in batches. Returns how many movements were written."""
    picks = _pick_lines(lines)
    req = _request("receive_lines", Acting(user=user, reference=reference, note=note))
    items, locations = _resolve_lines(picks)
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
    count = len(rows)
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
            .where(_levels.c.item_id.in_(chunk))
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
    levels = _lock_in_order((item.id, lid) for lid in involved)
    values: dict[str, Any] = dict(
        kind="reversal",
        item_id=item.id,
        quantity=original.quantity,
        **{**req.ledger(), "reference": original.reference},
        reverses_id=original.id,
    )
    before = None
    if source_id is not None:
        level = levels[(item.id, source_id)]
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
        level = levels[(item.id, target_id)]
        _store(item.id, target_id, level, level.quantity + original.quantity)
        values.update(to_location_id=target_id, to_balance=level.quantity)
    movement = _record(**values)
    if source_id is not None and before is not None:
        _note_low_stock(item, source_id, before, values["from_balance"], movement)
    _announce([movement])
    return movement
