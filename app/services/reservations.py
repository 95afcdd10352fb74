"""Reservations (issue 18): stock promised to an order, held at stock levels until it is picked.

The only code that writes reservations and `stock_levels.reserved`, with app.services.holds (the
stocktake's cut-back, which the stock service calls). A reservation line holds its outstanding
quantity (reserved, less picked, less released) at one level (item, location, lot); the level's
`reserved` is the sum of what its open lines hold, and a plain issue, a transfer or a new
reservation may take only the rest, `quantity - reserved` (stock_core.take). The database refuses
a level whose reserved part is negative or more than its quantity.

Lock order, the same in every function here: the reservation row (cancel, pick, expiry; a merged
pick locks all its rows in id order, then all their levels at once: lock_for_issue), then the
stock levels, item by item in item id order and within an item in (location, lot) order, which is
the order stock movements lock in (stock_core.lock_item_levels), then the items rows of a call
touching several items in id order (stock_core.lock_items), then the lines. A stocktake that
finds less than is reserved (stock.adjust_stock, then holds.cut_back) holds its level and writes
lines, never the reservation row, so no two writers wait on each other in a cycle.

Reserving is all or nothing: when any line is short the whole request is refused
(ReservationShort, with every short line and what is available there) and nothing is reserved.
A line without a location is reserved where the stock is: first-expired-first-out across the lots
of a lot-tracked item (expired lots never), else the location with the most available first,
going on to the next when one is not enough; each stored line says where. Serial-tracked items are
reserved by (whole) quantity; the serials are named when the line is picked.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypedDict, Unpack, cast

from sqlalchemy import Select, Table, and_, insert, or_, select

from app.config import settings
from app.extensions import db
from app.models import Item, Location, Lot, Movement, Reservation, ReservationLine, ReservationMovement
from app.models.reservation import OPEN_STATUSES, RESERVATION_STATUSES
from app.models.types import utcnow
from app.services import holds, idempotency, stock, stock_core
from app.services.errors import (
    ExpiredLot,
    IdempotencyConflict,
    InvalidInput,
    PickExceedsReserved,
    ReservationClosed,
    ReservationShort,
    UnknownItem,
    UnknownLocation,
    UnknownReservation,
    UnknownReservationLine,
)
from app.services.quantities import parse_quantity
from app.services.transaction import run_in_transaction, unit_of_work

ZERO = Decimal("0.000")
_lines = cast(Table, ReservationLine.__table__)
MAX_RESERVATION_LINES = stock.MAX_PICK_LINES
MAX_REFERENCE = 100
MAX_SHORT_REASON = 200


# ---------------------------------------------------------------- what callers pass and get back


@dataclass(frozen=True, slots=True)
class ReserveLine:
    """One requested line: `quantity` of `sku`, at `location` (else where the stock is), of
    `lot` (a lot-tracked item; else first-expired-first-out)."""

    sku: str
    quantity: Decimal | str | int
    location: str | None = None
    lot: str | None = None


@dataclass(frozen=True, slots=True)
class PickedLine:
    """What was picked of one reservation line (`line_id`): possibly less than it holds (with a
    `short_reason`), and for a serial-tracked item the `serials` taken."""

    line_id: int
    quantity: Decimal | str | int
    serials: Sequence[str] = ()
    short_reason: str | None = None


@dataclass(frozen=True, slots=True)
class LineView:
    id: int
    request_line: int
    sku: str
    location: str
    lot: str | None
    quantity: Decimal
    picked: Decimal
    released: Decimal
    short_reason: str | None
    picked_by: str | None
    picked_at: datetime | None

    @property
    def outstanding(self) -> Decimal:
        return self.quantity - self.picked - self.released


@dataclass(frozen=True, slots=True)
class ReservationView:
    id: int
    reference: str
    status: str
    created_by: str
    username: str
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    closed_by: str | None
    lines: tuple[LineView, ...] = ()
    #: The ledger lines the call that returned this view wrote (issue_reservation), else none.
    movements: tuple[Movement, ...] = field(default=(), compare=False)


class Caller(TypedDict, total=False):
    """Who asks: `user` (a username) always; `caller` is whose the idempotency key is (an API
    token, "token:<id>"; by default the user)."""

    user: str
    caller: str | None
    idempotency_key: str | None


# ---------------------------------------------------------------- reading


_LINE_COLUMNS = (
    ReservationLine.id,
    ReservationLine.request_line,
    Item.sku,
    Location.code,
    Lot.code,
    ReservationLine.quantity,
    ReservationLine.picked,
    ReservationLine.released,
    ReservationLine.short_reason,
    ReservationLine.picked_by,
    ReservationLine.picked_at,
)


def _lines_query() -> Select[Any]:
    return (
        select(ReservationLine.reservation_id, *_LINE_COLUMNS)
        .join(Item, Item.id == ReservationLine.item_id)
        .join(Location, Location.id == ReservationLine.location_id)
        .outerjoin(Lot, Lot.id == ReservationLine.lot_id)
        .order_by(ReservationLine.reservation_id, ReservationLine.id)
    )


def _views(rows: Sequence[Reservation], movements: Sequence[Movement] = ()) -> list[ReservationView]:
    """The reservations with their lines (one query for all their lines)."""
    ids = [r.id for r in rows]
    lines: dict[int, list[LineView]] = {i: [] for i in ids}
    if ids:
        for reservation_id, *values in db.session.execute(
            _lines_query().where(ReservationLine.reservation_id.in_(ids))
        ):
            lines[reservation_id].append(LineView(*values))
    return [
        ReservationView(
            r.id,
            r.reference,
            r.status,
            r.created_by,
            r.username,
            r.expires_at,
            r.created_at,
            r.updated_at,
            r.closed_at,
            r.closed_by,
            tuple(lines[r.id]),
            tuple(movements),
        )
        for r in rows
    ]


def get_reservation(reservation_id: int) -> ReservationView:
    """One reservation with its lines. Raises UnknownReservation."""
    found = db.session.get(Reservation, reservation_id, populate_existing=True)
    if found is None:
        raise UnknownReservation(reservation_id)
    return _views([found])[0]


MAX_PAGE = 200


def list_reservations(
    *, reference: str | None = None, status: str | None = None, before: int | None = None, limit: int = 50
) -> tuple[list[ReservationView], int | None]:
    """Reservations, newest first, optionally of one `reference` and `status`; a page of at most
    `limit` below the id `before`, and the id to pass as `before` for the next page (None at the
    end). Raises InvalidInput for an unknown status or a limit outside 1..MAX_PAGE."""
    if status is not None and status not in RESERVATION_STATUSES:
        raise InvalidInput("status", f"one of {', '.join(RESERVATION_STATUSES)}")
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("limit", f"from 1 to {MAX_PAGE}")
    statement = select(Reservation).order_by(Reservation.id.desc()).limit(limit + 1)
    if reference is not None:
        statement = statement.where(Reservation.reference == reference)
    if status is not None:
        statement = statement.where(Reservation.status == status)
    if before is not None:
        # Ids are INT: a larger cursor reads as "from the newest" (SQLite refuses past 2**63).
        statement = statement.where(Reservation.id < min(before, 2**31))
    rows = list(db.session.scalars(statement.execution_options(populate_existing=True)))
    more = len(rows) > limit
    rows = rows[:limit]
    return _views(rows), (rows[-1].id if more else None)


def reservation_of_movement(movement_id: int) -> int | None:
    """The reservation whose pick wrote ledger line `movement_id`, if any."""
    return db.session.scalar(
        select(ReservationLine.reservation_id)
        .join(ReservationMovement, ReservationMovement.line_id == ReservationLine.id)
        .where(ReservationMovement.movement_id == movement_id)
    )


# ---------------------------------------------------------------- checking what a request names


@dataclass(frozen=True, slots=True)
class _Asked:
    """A parsed request line with its item (and its location and lot, when named)."""

    number: int
    line: ReserveLine
    quantity: Decimal
    item: stock_core.ItemFacts
    location: stock_core.LocationFacts | None
    lot: stock_core.LotFacts | None


def _reference(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("reference", "the order reference is required")
    reference = stock_core.clean_text(value, "reference", MAX_REFERENCE) or ""
    if "\n" in reference:
        raise InvalidInput("reference", "one line of text")
    return reference


def parse_expires_at(value: datetime | str | None, now: datetime) -> datetime | None:
    """An expiry time from an aware datetime or ISO 8601 text with its offset; it must lie ahead.
    Raises InvalidInput."""
    if value is None:
        return None
    when = value
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput("expires_at", "a date and time, ISO 8601 with its offset") from None
    if not isinstance(when, datetime) or when.tzinfo is None:
        raise InvalidInput("expires_at", "a date and time with its offset (e.g. 2026-12-31T18:00:00+08:00)")
    if when <= now:
        raise InvalidInput("expires_at", "must lie in the future")
    if when.year > 9998:
        raise InvalidInput("expires_at", "too far in the future")
    return when.astimezone(UTC)


def _reserve_lines(lines: Sequence[ReserveLine | dict[str, Any]]) -> list[tuple[ReserveLine, Decimal]]:
    if isinstance(lines, str | bytes) or not lines:
        raise InvalidInput("lines", "at least one line is required")
    if len(lines) > MAX_RESERVATION_LINES:
        raise InvalidInput("lines", f"at most {MAX_RESERVATION_LINES} lines")
    parsed = []
    for n, raw in enumerate(lines, start=1):
        try:
            line = raw if isinstance(raw, ReserveLine) else ReserveLine(**raw)
        except TypeError:
            raise InvalidInput(f"lines[{n}]", "sku, quantity, and optionally location and lot") from None
        if not isinstance(line.sku, str) or not line.sku.strip():
            raise InvalidInput(f"lines[{n}].sku", "the SKU is required")
        if line.location is not None and not isinstance(line.location, str):
            raise InvalidInput(f"lines[{n}].location", "must be text")
        lot = stock_core.clean_code(line.lot, f"lines[{n}].lot", stock_core.MAX_LOT_CODE)
        location = (line.location or "").strip() or None
        clean = ReserveLine(line.sku.strip(), line.quantity, location, lot)
        parsed.append((clean, parse_quantity(line.quantity, field=f"lines[{n}].quantity")))
    return parsed


def _resolve(parsed: list[tuple[ReserveLine, Decimal]]) -> list[_Asked]:
    """Each line's item, location and lot. Raises UnknownItem, UnknownLocation, UnknownLot,
    ArchivedItem, InactiveLocation, NotTracked, and InvalidInput for a serial-tracked item's
    fractional quantity."""
    items = stock_core.items_by_sku({line.sku for line, _ in parsed})
    places = stock_core.locations_by_code({line.location for line, _ in parsed if line.location})
    asked = []
    for n, (line, quantity) in enumerate(parsed, start=1):
        item = items.get(line.sku)
        if item is None:
            raise UnknownItem(line.sku)
        location = None
        if line.location is not None:
            location = places.get(line.location)
            if location is None:
                raise UnknownLocation(line.location)
            stock_core.check_movable(item, location)
        else:
            stock_core.check_movable(item)
        stock_core.check_tracking(item, line.lot, ())
        if item.tracking == "serial" and quantity != quantity.to_integral_value():
            raise InvalidInput(f"lines[{n}].quantity", "serial-tracked stock is reserved in whole units")
        lot = stock_core.find_lot(item, line.lot) if line.lot is not None else None
        if lot is not None and lot.expired(stock_core.today()):
            raise ExpiredLot(sku=item.sku, lot=lot.code, expiry=str(lot.expiry))
        asked.append(_Asked(n, line, quantity, item, location, lot))
    return asked


# ---------------------------------------------------------------- locking and choosing levels


@dataclass(slots=True)
class _Held:
    """The locked levels of the items a call touches, keyed (item id, location id, lot key)."""

    levels: dict[tuple[int, int, int], stock_core.Level] = field(default_factory=dict)

    def at_place(self, item_id: int, location_id: int) -> list[Any]:
        return [lvl for (i, loc, _), lvl in self.levels.items() if i == item_id and loc == location_id]


def _lock(places: dict[int, set[int] | None]) -> _Held:
    """Lock every level of each item (at the given locations, or everywhere for None), item by
    item in item id order: see the module docstring."""
    held = _Held()
    for item_id in sorted(places):
        for (location_id, lot_key), level in stock_core.lock_item_levels(item_id, places[item_id]).items():
            held.levels[(item_id, location_id, lot_key)] = level
    # Then the items rows, in id order: the level writes' triggers update them in line order.
    stock_core.lock_items(places)
    return held


def _lock_for(asked: list[_Asked]) -> _Held:
    places: dict[int, set[int] | None] = {}
    for a in asked:
        if a.location is None:
            places[a.item.id] = None
        elif places.get(a.item.id, set()) is not None:
            places.setdefault(a.item.id, set()).add(a.location.id)  # type: ignore[union-attr]
    return _lock(places)


def _lots(lot_ids: set[int]) -> dict[int, Any]:
    if not lot_ids:
        return {}
    rows = db.session.execute(select(*stock_core.LOT_COLUMNS).where(Lot.id.in_(sorted(lot_ids))))
    return {r[0]: stock_core.LotFacts(*r) for r in rows}


def _active_places(location_ids: set[int]) -> set[int]:
    if not location_ids:
        return set()
    return set(db.session.scalars(select(Location.id).where(Location.id.in_(sorted(location_ids)), Location.active)))


@dataclass(slots=True)
class _Take:
    """A part of a request line: `quantity` held at one level."""

    asked: _Asked
    location_id: int
    level: stock_core.Level
    quantity: Decimal


def _candidates(a: _Asked, held: _Held, lots: dict[int, Any], active: set[int]) -> list[tuple[int, Any]]:
    """The (location id, level) a line may take from, in the order it takes them."""
    today = stock_core.today()
    found = []
    for (item_id, location_id, lot_key), level in held.levels.items():
        if item_id != a.item.id or level.available <= 0:
            continue
        if a.location is not None and location_id != a.location.id:
            continue
        if a.location is None and location_id not in active:
            continue
        if a.item.tracking == "lot":
            if lot_key == 0 or (a.lot is not None and lot_key != a.lot.id):
                continue
            if a.lot is None and lots[lot_key].expired(today):
                continue
        elif lot_key != 0:
            continue
        found.append((location_id, level))
    if a.item.tracking == "lot":
        # First expired, first out; within a lot, the place with the most available first.
        return sorted(found, key=lambda p: (lots[p[1].lot_key].fefo(), -p[1].available, p[0]))
    return sorted(found, key=lambda p: (-p[1].available, p[0]))


def _allocate(reference: str, asked: list[_Asked], held: _Held) -> list[_Take]:
    """Where each line is reserved. Raises ReservationShort listing every short line."""
    lot_ids = {lot_key for (_, _, lot_key) in held.levels if lot_key}
    anywhere = any(a.location is None for a in asked)
    lots, active = _lots(lot_ids), _active_places({loc for (_, loc, _) in held.levels}) if anywhere else set()
    left = {key: level.available for key, level in held.levels.items()}
    by_level = {id(level): key for key, level in held.levels.items()}
    takes: list[_Take] = []
    short: list[dict[str, str | int | None]] = []
    for a in asked:
        candidates = _candidates(a, held, lots, active)
        available = sum((left[by_level[id(level)]] for _, level in candidates), ZERO)
        if available < a.quantity:
            short.append(_short_line(a, available))
            continue
        wanted = a.quantity
        for location_id, level in candidates:
            key = by_level[id(level)]
            part = min(wanted, left[key])
            if part <= 0:
                continue
            left[key] -= part
            takes.append(_Take(a, location_id, level, part))
            wanted -= part
            if wanted == 0:
                break
    if short:
        raise ReservationShort(reference=reference, short=len(short), lines=short)
    return takes


def _short_line(a: _Asked, available: Decimal) -> dict[str, str | int | None]:
    return {
        "line": a.number,
        "sku": a.line.sku,
        "location": a.line.location,
        "lot": a.line.lot,
        "requested": str(a.quantity),
        "available": str(available),
    }


# ---------------------------------------------------------------- events


def _first_place(reservation_id: int) -> tuple[int, int] | None:
    row = db.session.execute(
        select(ReservationLine.item_id, ReservationLine.location_id)
        .where(ReservationLine.reservation_id == reservation_id)
        .order_by(ReservationLine.id)
        .limit(1)
    ).first()
    return None if row is None else (row[0], row[1])


# ---------------------------------------------------------------- reserving


def _replay(scope: str, key: str, digest: str) -> int | None:
    """The reservation an earlier identical request of this caller made with `key`, if any."""
    found = db.session.execute(
        select(Reservation.id, Reservation.request_hash).where(
            Reservation.idempotency_scope == scope, Reservation.idempotency_key == key
        )
    ).first()
    if found is None:
        return None
    if found.request_hash != digest:
        raise IdempotencyConflict(key)
    return int(found.id)


def reserve(
    *,
    reference: str,
    lines: Sequence[ReserveLine | dict[str, Any]],
    expires_at: datetime | str | None = None,
    **who: Unpack[Caller],
) -> ReservationView:
    """Reserve every line for the order `reference`, or nothing: a short line refuses the whole
    request with ReservationShort (409, each short line with what is available). Returns the
    reservation with its stored lines, each saying where (location, lot) it is held; a line
    reserved over several places or lots is stored once per place and lot. An identical request
    with the same idempotency key returns the first one's reservation (a different one:
    IdempotencyConflict).

    Raises InvalidInput (no lines, more than MAX_RESERVATION_LINES, a bad reference or expiry),
    InvalidQuantity, UnknownItem, UnknownLocation, UnknownLot, ArchivedItem, InactiveLocation,
    NotTracked (a lot for an item without lots), ReservationShort, IdempotencyConflict."""
    # Read back once committed: the levels' locks are held no longer than the writes need.
    return get_reservation(_reserve(reference=reference, lines=lines, expires_at=expires_at, **who))


@unit_of_work
def _reserve(
    *,
    reference: str,
    lines: Sequence[ReserveLine | dict[str, Any]],
    expires_at: datetime | str | None = None,
    **who: Unpack[Caller],
) -> int:
    now = utcnow()
    ref = _reference(reference)
    parsed = _reserve_lines(lines)
    when = parse_expires_at(expires_at, now)
    user = stock_core.acting_user(who.get("user", ""))
    key = idempotency.check_key(who.get("idempotency_key"))
    scope = idempotency.scope(user, who.get("caller"))
    digest = None
    if key:
        facts = [(line.sku, str(qty), line.location, line.lot) for line, qty in parsed]
        digest = idempotency.fingerprint("reserve", reference=ref, lines=facts, expires_at=when and when.isoformat())
        if (replayed := _replay(scope, key, digest)) is not None:
            return replayed
    asked = _resolve(parsed)
    # Written before the levels are locked, and rolled back with everything when a line is short.
    result = stock_core.execute(
        insert(Reservation).values(
            reference=ref,
            status="open",
            created_by=scope,
            username=user,
            expires_at=when,
            idempotency_scope=scope if key else None,
            idempotency_key=key,
            request_hash=digest,
            created_at=now,
            updated_at=now,
        )
    )
    reservation_id: int = result.inserted_primary_key[0]
    held = _lock_for(asked)
    takes = _allocate(ref, asked, held)
    stock_core.execute(
        insert(_lines),
        [
            dict(
                reservation_id=reservation_id,
                request_line=t.asked.number,
                item_id=t.asked.item.id,
                location_id=t.location_id,
                lot_id=t.level.lot_id,
                quantity=t.quantity,
                picked=ZERO,
                released=ZERO,
            )
            for t in takes
        ],
    )
    for level in {id(t.level): t.level for t in takes}.values():
        stock_core.store_held(
            level, reserved=level.reserved + sum((t.quantity for t in takes if t.level is level), ZERO)
        )
    total = sum((t.quantity for t in takes), ZERO)
    holds.reservation_event(
        "reservation_created", reservation_id, (takes[0].asked.item.id, takes[0].location_id), total
    )
    return reservation_id


# ---------------------------------------------------------------- releasing


def _lock_reservation(reservation_id: int) -> Reservation:
    found = db.session.scalars(
        select(Reservation)
        .where(Reservation.id == reservation_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if found is None:
        raise UnknownReservation(reservation_id)
    return found


def _open(reservation: Reservation) -> None:
    if reservation.status not in OPEN_STATUSES:
        raise ReservationClosed(reservation_id=reservation.id, state=reservation.status)


def _lines_of(reservation_id: int) -> list[ReservationLine]:
    """The reservation's lines, read once its levels are locked (a stocktake may have cut them)."""
    return list(
        db.session.scalars(
            select(ReservationLine)
            .where(ReservationLine.reservation_id == reservation_id)
            .order_by(ReservationLine.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )


def _lock_lines_levels(reservation_id: int) -> tuple[list[ReservationLine], _Held]:
    """Lock the levels the reservation's lines hold stock at (in the usual order), then its lines."""
    held = _lock(_places_of([reservation_id]))
    return _lines_of(reservation_id), held


def _places_of(reservation_ids: Sequence[int]) -> dict[int, set[int] | None]:
    """The locations each item is held at by the reservations' lines, as _lock takes them."""
    rows = db.session.execute(
        select(ReservationLine.item_id, ReservationLine.location_id).where(
            ReservationLine.reservation_id.in_(reservation_ids)
        )
    ).all()
    places: dict[int, set[int] | None] = {}
    for item_id, location_id in rows:
        places.setdefault(item_id, set()).add(location_id)  # type: ignore[union-attr]
    return places


def lock_for_issue(reservation_ids: Sequence[int]) -> None:
    """Lock several reservations that one transaction issues (a merged pick, picking.finish_pick):
    their rows in id order, then every level their lines hold stock at in one pass, in the order
    of the module docstring. Locking each one's levels in turn, as issue_reservation does for
    one, would let two merged picks whose reservations hold the same items in opposite orders
    (one locks X then Y, the other Y then X) wait on each other in a cycle. The issues that
    follow lock those levels again at no wait. Raises UnknownReservation."""
    ids = sorted(set(reservation_ids))
    for reservation_id in ids:
        _lock_reservation(reservation_id)
    _lock(_places_of(ids))


def _level_of(held: _Held, line: ReservationLine) -> Any:
    return held.levels[(line.item_id, line.location_id, line.lot_id or 0)]


def _release_all(reservation: Reservation, status: str, user: str, now: datetime) -> Decimal:
    """Give back everything the reservation's lines still hold and close it as `status`."""
    lines, held = _lock_lines_levels(reservation.id)
    released = _release(lines, held)
    reservation.status, reservation.updated_at = status, now
    reservation.closed_at, reservation.closed_by = now, user
    db.session.flush()
    return released


def _release(lines: Sequence[ReservationLine], held: _Held) -> Decimal:
    """Release what `lines` hold from their (locked) levels; how much that was."""
    total = ZERO
    freed: dict[int, tuple[Any, Decimal]] = {}
    for line in lines:
        rest = line.outstanding
        if rest <= 0:
            continue
        level = _level_of(held, line)
        line.released += rest
        total += rest
        before = freed.get(id(level), (level, ZERO))[1]
        freed[id(level)] = (level, before + rest)
    for level, amount in freed.values():
        stock_core.store_held(level, reserved=level.reserved - amount)
    return total


@unit_of_work
def cancel_reservation(*, reservation_id: int, user: str) -> ReservationView:
    """Cancel an open or partly picked reservation: what its lines still hold is released.
    Raises UnknownReservation, ReservationClosed (already picked, cancelled or expired)."""
    acting = stock_core.acting_user(user)
    reservation = _lock_reservation(reservation_id)
    _open(reservation)
    released = _release_all(reservation, "cancelled", acting, utcnow())
    holds.reservation_event("reservation_cancelled", reservation.id, _first_place(reservation.id), released)
    return get_reservation(reservation.id)


def expire_stale(*, now: datetime | None = None) -> int:
    """Expire every open or partly picked reservation past its `expires_at`, or, without one,
    older than INVENTORY_RESERVATION_MAX_AGE_DAYS (0: never), releasing what it holds; one
    transaction each. Returns how many expired. Run daily by the notification worker and by
    `flask reservations expire`."""
    at = now or utcnow()
    age = settings().INVENTORY_RESERVATION_MAX_AGE_DAYS
    stale = [Reservation.expires_at <= at]
    if age:
        stale.append(and_(Reservation.expires_at.is_(None), Reservation.created_at <= at - timedelta(days=age)))
    ids = list(
        db.session.scalars(
            select(Reservation.id).where(Reservation.status.in_(OPEN_STATUSES), or_(*stale)).order_by(Reservation.id)
        )
    )
    db.session.commit()  # end the read: each expiry is its own write transaction
    expired = 0
    for reservation_id in ids:
        expired += run_in_transaction(functools.partial(_expire, reservation_id, at), name="expire_reservation")
    return expired


def _expire(reservation_id: int, at: datetime) -> int:
    reservation = _lock_reservation(reservation_id)
    if reservation.status not in OPEN_STATUSES:
        return 0  # picked or cancelled meanwhile
    released = _release_all(reservation, "expired", "system", at)
    holds.reservation_event("reservation_expired", reservation.id, _first_place(reservation.id), released)
    return 1


# ---------------------------------------------------------------- picking


def _picks(lines: Sequence[PickedLine | dict[str, Any]] | None, stored: list[ReservationLine]) -> dict[int, PickedLine]:
    """The picks by line id, quantities parsed; None picks every line in full."""
    if lines is None:
        return {line.id: PickedLine(line.id, line.outstanding) for line in stored if line.outstanding > 0}
    if isinstance(lines, str | bytes) or not lines:
        raise InvalidInput("lines", "at least one line is required")
    if len(lines) > MAX_RESERVATION_LINES * 4:
        raise InvalidInput("lines", f"at most {MAX_RESERVATION_LINES * 4} lines")
    picks: dict[int, PickedLine] = {}
    for n, raw in enumerate(lines, start=1):
        try:
            pick = raw if isinstance(raw, PickedLine) else PickedLine(**raw)
        except TypeError:
            raise InvalidInput(f"lines[{n}]", "line_id, quantity, and optionally serials and short_reason") from None
        if pick.line_id in picks:
            raise InvalidInput(f"lines[{n}].line_id", "a line is named twice")
        reason = stock_core.clean_text(pick.short_reason, f"lines[{n}].short_reason", MAX_SHORT_REASON)
        qty = parse_quantity(pick.quantity, field=f"lines[{n}].quantity", allow_zero=True)
        picks[pick.line_id] = PickedLine(pick.line_id, qty, stock_core.serial_list(pick.serials), reason)
    return picks


@unit_of_work
def issue_reservation(
    *,
    reservation_id: int,
    lines: Sequence[PickedLine | dict[str, Any]] | None = None,
    release_rest: bool = False,
    note: str | None = None,
    **who: Unpack[Caller],
) -> ReservationView:
    """Issue what was picked against the reservation, in one transaction: a ledger line per
    picked line (reference = the reservation's reference), taking its reserved stock, and the
    reserved amounts lowered by as much. `lines` names what was picked of which line (possibly less
    than it holds, with a short reason; None: every line in full). What a partly picked line still
    holds stays reserved, or with `release_rest` is released (as is every line not picked). The
    reservation becomes "picked" once nothing is outstanding, else "partly_picked". Returns it,
    with the ledger lines written as `movements`. An identical request with the same idempotency
    key returns the reservation as it is, writing nothing.

    Raises UnknownReservation, ReservationClosed, UnknownReservationLine, PickExceedsReserved,
    InvalidInput, InvalidQuantity, SerialCountMismatch, UnknownSerial, SerialNotHere,
    IdempotencyConflict."""
    acting = stock_core.acting_user(who.get("user", ""))
    reservation = _lock_reservation(reservation_id)
    req = stock_core.make_request(
        "issue_reservation",
        stock_core.Acting(
            user=acting,
            reference=reservation.reference,
            note=note,
            idempotency_key=who.get("idempotency_key"),
            caller=who.get("caller"),
        ),
        reservation_id=reservation_id,
        lines=_fingerprints(lines),
        release_rest=release_rest,
    )
    if req.key and stock_core.replay(req.scope, [f"{req.key}#1"], req.digest or "") is not None:
        return get_reservation(reservation_id)
    _open(reservation)
    stored, held = _lock_lines_levels(reservation_id)
    picked_lines = _known_lines(reservation_id, _picks(lines, stored), stored)
    now = utcnow()
    movements = _issue_picks(reservation, picked_lines, held, req, now)
    if release_rest:
        _release([line for line in stored if line.outstanding > 0], held)
    _settle(reservation, stored, acting, now)
    db.session.flush()
    picked = sum((m.quantity for m in movements), ZERO)
    if movements or release_rest:
        holds.reservation_event("reservation_picked", reservation.id, _first_place(reservation.id), picked)
    return replace(get_reservation(reservation_id), movements=tuple(movements))


def _known_lines(
    reservation_id: int, picks: dict[int, PickedLine], stored: list[ReservationLine]
) -> list[tuple[ReservationLine, PickedLine]]:
    """Each pick with the reservation line it names; UnknownReservationLine for a line not its own."""
    by_id = {line.id: line for line in stored}
    for line_id in picks:
        if line_id not in by_id:
            raise UnknownReservationLine(reservation_id=reservation_id, line_id=line_id)
    return [(by_id[i], p) for i, p in picks.items()]


def _settle(reservation: Reservation, stored: list[ReservationLine], acting: str, now: datetime) -> None:
    """The reservation's status after an issue: closed once nothing is outstanding, else partly
    picked once anything was picked."""
    outstanding = sum((line.outstanding for line in stored), ZERO)
    reservation.updated_at = now
    if outstanding == 0:
        # Nothing left to pick: picked, or (all of it released unpicked) cancelled.
        done = "picked" if any(line.picked > 0 for line in stored) else "cancelled"
        reservation.status, reservation.closed_at, reservation.closed_by = done, now, acting
    elif any(line.picked > 0 for line in stored):
        reservation.status = "partly_picked"


def _fingerprints(lines: Sequence[PickedLine | dict[str, Any]] | None) -> list[Any] | None:
    """The picks as the idempotency fingerprint records them (None: every line in full)."""
    return None if lines is None else [_fingerprint(p) for p in lines]


def _fingerprint(pick: PickedLine | dict[str, Any]) -> Any:
    return pick if isinstance(pick, dict) else {f: getattr(pick, f) for f in PickedLine.__slots__}


def _issue_picks(
    reservation: Reservation,
    picks: list[tuple[ReservationLine, PickedLine]],
    held: _Held,
    req: Any,
    now: datetime,
) -> list[Movement]:
    """One ledger line per picked line (stock.issue_held), out of the line's level, taking its
    reserved stock; each line records what was picked, by whom and when."""
    taken: list[tuple[ReservationLine, stock.HeldPick]] = []
    for line, pick in sorted(picks, key=lambda p: p[0].id):
        qty = Decimal(pick.quantity)
        if qty > line.outstanding:
            raise PickExceedsReserved(
                reservation_id=reservation.id, line_id=line.id, outstanding=line.outstanding, picked=qty
            )
        if pick.short_reason is not None:
            line.short_reason = pick.short_reason
        if qty > 0:
            place = held.at_place(line.item_id, line.location_id)
            held_pick = stock.HeldPick(line.item_id, line.location_id, _level_of(held, line), place, qty, pick.serials)
            taken.append((line, held_pick))
    movements = stock.issue_held([p for _, p in taken], req) if taken else []
    for line, held_pick in taken:
        line.picked += held_pick.quantity
        line.picked_by, line.picked_at = req.user, now
    if movements:
        rows = [{"movement_id": m.id, "line_id": line.id} for (line, _), m in zip(taken, movements, strict=True)]
        stock_core.execute(insert(ReservationMovement), rows)
    db.session.flush()
    return movements


# ---------------------------------------------------------------- reversing a pick


@unit_of_work
def reverse_pick(
    *,
    movement_id: int,
    user: str,
    reason: str,
    restore: bool = False,
    idempotency_key: str | None = None,
    caller: str | None = None,
) -> Movement:
    """Reverse a ledger line a reservation's pick wrote: the stock goes back where it was taken
    from (stock.reverse_movement, in this transaction), and with `restore` the reservation line
    holds it again (the reservation reopens as "open" or "partly_picked"). Raises the errors
    stock.reverse_movement raises, and with `restore` InvalidInput (the line was no reservation's pick)
    and ReservationClosed (the reservation was cancelled or expired since)."""
    reservation_id = reservation_of_movement(movement_id)
    reservation = _lock_reservation(reservation_id) if reservation_id is not None else None
    if restore and reservation is None:
        raise InvalidInput("restore_reservation", "this movement was not written by a reservation's issue")
    if restore and reservation is not None and reservation.status in ("cancelled", "expired"):
        raise ReservationClosed(reservation_id=reservation.id, state=reservation.status)
    reversal = stock.reverse_movement(
        movement_id=movement_id, user=user, reason=reason, idempotency_key=idempotency_key, caller=caller
    )
    if restore and reservation is not None and reversal.reverses_id == movement_id:
        _restore(reservation, movement_id, reversal)
    return reversal


def _restore(reservation: Reservation, movement_id: int, reversal: Movement) -> None:
    line = db.session.scalars(
        select(ReservationLine)
        .join(ReservationMovement, ReservationMovement.line_id == ReservationLine.id)
        .where(ReservationMovement.movement_id == movement_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    # Already locked by the reversal, which put the stock back into it.
    level = stock_core.lock_level(line.item_id, line.location_id, line.lot_id) or stock_core.Level(None, ZERO)
    stock_core.store_held(level, reserved=level.reserved + reversal.quantity)
    line.picked -= reversal.quantity
    now = utcnow()
    db.session.flush()
    picked_any = any(other.picked > 0 for other in _lines_of(reservation.id))
    reservation.status = "partly_picked" if picked_any else "open"
    reservation.closed_at, reservation.closed_by, reservation.updated_at = None, None, now
    db.session.flush()
