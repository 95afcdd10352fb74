"""Blind cycle counts: a manager opens a count of a location (or of chosen items wherever they
are held), counters enter what they find
without seeing the system quantity, lines far off can be counted a second time, and only the
manager's approval changes stock, through stock.adjust_stock, linked to the count.

The variance of a line is the count against the balance at the moment the count was entered, so
stock moved during the count (before or after that moment) is neither lost nor counted twice: on
approval the variance is applied to the balance as it is then.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import delete, select, update

from app.extensions import db
from app.models import Count, CountLine, CountSerial, Item, Location, Lot, Serial, StockLevel
from app.models.types import utcnow
from app.services import stock, stock_core
from app.services.codes import compared, resolve_code
from app.services.errors import (
    Conflict,
    Declared,
    DomainError,
    InsufficientStock,
    InvalidInput,
    LotRequired,
    NotFound,
    StockShortDuringCount,
    UnknownItem,
    UnknownLocation,
    UnknownLot,
    _l,
)
from app.services.quantities import parse_quantity
from app.services.text import multi_line
from app.services.transaction import unit_of_work


class UnknownCount(Declared, NotFound, title="Unknown count", template=_l("no count #{count_id}")):
    count_id: int


class CountClosed(Conflict):
    code = "count_closed"
    title = "Count closed"

    def __init__(self, count_id: int, status: str) -> None:
        super().__init__(f"count #{count_id} is {status}", count_id=count_id, status=status)


class CountIncomplete(Conflict):
    code = "count_incomplete"
    title = "Count incomplete"

    def __init__(self, count_id: int, skus: list[str]) -> None:
        super().__init__(f"count #{count_id} still has lines to count: {', '.join(skus)}", skus=skus)


class NothingToCount(InvalidInput):
    code = "nothing_to_count"

    def __init__(self, *, location_missing: bool) -> None:
        reason = "choose a location or items" if location_missing else "there is nothing to count there"
        super().__init__("location", reason)
        self.location_missing = location_missing


class WhereFound(InvalidInput):
    """An item scanned during a count of chosen items needs the location it was found at."""

    code = "where_found"

    def __init__(self) -> None:
        super().__init__("location", "say where the scanned item was found")


@dataclass(frozen=True)
class LineView:
    id: int
    item_id: int
    location_id: int
    sku: str
    name: str
    unit: str
    location: str
    first_count: Decimal | None
    second_count: Decimal | None
    recount_requested: bool
    system_quantity: Decimal | None
    movement_id: int | None
    final_count: Decimal | None
    variance: Decimal | None
    lot: str | None = None  # a lot-tracked item is counted lot by lot (issue 17)
    lot_id: int | None = None
    tracking: str = "none"
    serials: tuple[str, ...] = ()  # a serial-tracked item is counted serial by serial: those found

    @property
    def awaiting(self) -> bool:
        """Whether a counter still has to enter this line."""
        return self.first_count is None or (self.recount_requested and self.second_count is None)


@dataclass(frozen=True)
class CountView:
    count: Count
    location: str | None  # None: a count of chosen items wherever they are held
    lines: list[LineView]


# ---------------------------------------------------------------- reads


def counts_blind(role: str) -> bool:
    """Whether a user of `role` only counts (clerks): while a count is open, the system quantity of
    its lines is hidden from them, or the count would not be blind. Managers open and approve
    counts and see everything; viewers cannot count."""
    return role == "clerk"


def blind_places(*, skus: Collection[str] | None = None) -> set[tuple[str, str]]:
    """(SKU, location code) of every line of an open count, for `skus` or for every item."""
    stmt = (
        select(Item.sku, Location.code)
        .join(CountLine, CountLine.item_id == Item.id)
        .join(Location, Location.id == CountLine.location_id)
        .join(Count, Count.id == CountLine.count_id)
        .where(Count.status == "open")
    )
    if skus is not None:
        stmt = stmt.where(Item.sku.in_(list(skus)))
    return {(sku, code) for sku, code in db.session.execute(stmt)}


def hidden_places(role: str, *, skus: Collection[str] | None = None) -> set[tuple[str, str]]:
    """The (SKU, location code) places whose quantity a user of `role` may not see now: the lines of
    open counts for a counter, for `skus` or for every item; none (and no query) for anyone else."""
    return blind_places(skus=skus) if counts_blind(role) else set()


def blinded(error: DomainError, role: str | None) -> DomainError:
    """`error` as a user of `role` may see it: an InsufficientStock at a place being counted loses
    its available quantity for a counter (one query, only on that refusal)."""
    if not (isinstance(error, InsufficientStock) and role and counts_blind(role)):
        return error
    if (error.sku, error.location) not in blind_places(skus=[error.sku]):
        return error
    return StockShortDuringCount(sku=error.sku, location=error.location, requested=error.requested)


def _location_code(location_id: int | None) -> str | None:
    return None if location_id is None else db.session.scalar(select(Location.code).where(Location.id == location_id))


def get_count(count_id: int) -> CountView:
    """A count with its location code and lines (by location, then SKU). Raises UnknownCount."""
    count = db.session.get(Count, count_id)
    if count is None:
        raise UnknownCount(count_id)
    found: dict[int, tuple[str, ...]] = {}
    for line_id, serial in db.session.execute(
        select(CountSerial.count_line_id, CountSerial.serial)
        .join(CountLine, CountLine.id == CountSerial.count_line_id)
        .where(CountLine.count_id == count_id)
        .order_by(CountSerial.id)
    ):
        found[line_id] = (*found.get(line_id, ()), serial)
    rows = db.session.execute(
        select(CountLine, Item.sku, Item.name, Item.unit, Location.code, Lot.code, Item.tracking)
        .join(Item, Item.id == CountLine.item_id)
        .join(Location, Location.id == CountLine.location_id)
        .outerjoin(Lot, Lot.id == CountLine.lot_id)
        .where(CountLine.count_id == count_id)
        .order_by(Location.code, Item.sku, CountLine.lot_key)
    )
    lines = [
        LineView(
            line.id,
            line.item_id,
            line.location_id,
            sku,
            name,
            unit,
            code,
            line.first_count,
            line.second_count,
            line.recount_requested,
            line.system_quantity,
            line.movement_id,
            line.final_count,
            line.variance,
            lot,
            line.lot_id,
            tracking,
            found.get(line.id, ()),
        )
        for line, sku, name, unit, code, lot, tracking in rows
    ]
    return CountView(count, _location_code(count.location_id), lines)


@dataclass(frozen=True)
class SerialDifference:
    """How a serial-tracked line's serials found differ from the system's now: what approval
    would write off (`missing`), move here (`elsewhere`: serial, where the system has it) and take
    into stock (`unknown`: issued, or never received)."""

    missing: tuple[str, ...]
    elsewhere: tuple[tuple[str, str], ...]
    unknown: tuple[str, ...]


def serial_differences(view: CountView) -> dict[int, SerialDifference]:
    """For a manager's review: each counted serial-tracked line's difference (see SerialDifference)."""
    differences = {}
    for line in view.lines:
        if line.tracking != "serial" or line.final_count is None:
            continue
        found = {compared(serial) for serial in line.serials}
        here = db.session.scalars(
            select(Serial.serial).where(
                Serial.item_id == line.item_id, Serial.status == "in_stock", Serial.location_id == line.location_id
            )
        )
        known = dict(
            db.session.execute(
                select(Serial.serial, Location.code)
                .outerjoin(Location, Location.id == Serial.location_id)
                .where(Serial.item_id == line.item_id, Serial.serial.in_(line.serials), Serial.status == "in_stock")
            )
            .tuples()
            .all()
        )
        where = {compared(serial): code for serial, code in known.items()}
        differences[line.id] = SerialDifference(
            missing=tuple(sorted(s for s in here if compared(s) not in found)),
            elsewhere=tuple(
                (s, where[compared(s)]) for s in line.serials if where.get(compared(s)) not in (None, line.location)
            ),
            unknown=tuple(s for s in line.serials if compared(s) not in where),
        )
    return differences


def list_counts(*, limit: int = 200) -> list[tuple[Count, str | None]]:
    """Counts, newest first, with their location codes (None for an item count): open ones and
    the history."""
    rows = db.session.execute(
        select(Count, Location.code)
        .outerjoin(Location, Location.id == Count.location_id)
        .order_by(Count.id.desc())
        .limit(limit)
    )
    return [(count, code) for count, code in rows]


# ---------------------------------------------------------------- writes


def _location_id(code: str) -> int:
    found = db.session.scalar(select(Location.id).where(Location.code == code.strip()))
    if found is None:
        raise UnknownLocation(code)
    return found


def _item_ids(skus: list[str]) -> list[int]:
    found = dict(db.session.execute(select(Item.sku, Item.id).where(Item.sku.in_(skus))).tuples().all())
    for sku in skus:
        if sku not in found:
            raise UnknownItem(sku)
    return [found[sku] for sku in skus]


_Place = tuple[int, int, int | None]  # item id, location id, lot id (None: stock without a lot)


def _places(location_id: int | None, item_ids: list[int] | None) -> list[_Place]:
    """(item id, location id, lot id) places to count: what the location holds (optionally only
    these items, each counted there even where the system has none), or where these items are
    held; a lot-tracked item's stock lot by lot."""
    stmt = select(StockLevel.item_id, StockLevel.location_id, StockLevel.lot_id).where(StockLevel.quantity > 0)
    if location_id is not None:
        stmt = stmt.where(StockLevel.location_id == location_id)
    if item_ids:
        stmt = stmt.where(StockLevel.item_id.in_(item_ids))
    held: list[_Place] = [(item_id, loc_id, lot_id) for item_id, loc_id, lot_id in db.session.execute(stmt)]
    if location_id is not None and item_ids:
        # A lot-tracked item with no lot there has nothing to count lot by lot: it is left out.
        found = {item_id for item_id, _, _ in held}
        found |= set(db.session.scalars(select(Item.id).where(Item.id.in_(item_ids), Item.tracking == "lot")))
        held += [(item_id, location_id, None) for item_id in item_ids if item_id not in found]
    return held


@unit_of_work
def open_count(
    *,
    user: str,
    location: str | None = None,
    skus: list[str] | None = None,
    threshold: Decimal | str | int = 0,
    note: str | None = None,
) -> Count:
    """Open a count of every item held at `location` (or only of `skus` there), or, with no
    location, of `skus` wherever they are held. Raises UnknownLocation, UnknownItem,
    NothingToCount."""
    location_id = _location_id(location) if location else None
    limit = parse_quantity(threshold, field="threshold", allow_zero=True)
    wanted = sorted({s.strip() for s in skus or [] if s.strip()})
    if location_id is None and not wanted:
        raise NothingToCount(location_missing=True)
    places = _places(location_id, _item_ids(wanted) if wanted else None)
    if not places:
        raise NothingToCount(location_missing=False)
    count = Count(
        location_id=location_id,
        threshold=limit,
        note=multi_line((note or "").strip(), "note")[:500] or None,
        opened_by=user,
    )
    db.session.add(count)
    db.session.flush()
    db.session.add_all(
        CountLine(count_id=count.id, item_id=item_id, location_id=loc_id, lot_id=lot_id, lot_key=lot_id or 0)
        for item_id, loc_id, lot_id in sorted(set(places), key=lambda p: (p[0], p[1], p[2] or 0))
    )
    db.session.flush()
    return count


def _open(count_id: int) -> Count:
    count = db.session.scalar(select(Count).where(Count.id == count_id).with_for_update())
    if count is None:
        raise UnknownCount(count_id)
    if count.status != "open":
        raise CountClosed(count_id, count.status)
    return count


def _balance(item_id: int, location_id: int, lot_key: int) -> Decimal:
    found = db.session.scalar(
        select(StockLevel.quantity).where(
            StockLevel.item_id == item_id, StockLevel.location_id == location_id, StockLevel.lot_key == lot_key
        )
    )
    return found if found is not None else Decimal(0)


def _enter(line: CountLine, quantity: Decimal, user: str) -> None:
    if line.recount_requested:
        line.second_count, line.second_by = quantity, user
    else:
        line.first_count, line.first_by = quantity, user
    line.system_quantity = _balance(line.item_id, line.location_id, line.lot_key or 0)
    line.counted_at = utcnow()


@unit_of_work
def record_counts(
    *,
    count_id: int,
    user: str,
    lines: Mapping[int, Decimal | str | int] | None = None,
    found: Mapping[str, Decimal | str | int] | None = None,
    location: str | None = None,
    serials: Mapping[int, Sequence[str] | str] | None = None,
) -> int:
    """Enter what was found: `lines` by count line id, and `found` by scanned code (SKU or
    barcode) at `location` (the count's own location when it has one); a scanned item not on the
    count gets a line (stock found where the system had none). A line of a serial-tracked item is
    counted by the serials found: `serials` by line id (the whole list, replacing the line's), or
    a scanned GS1 label with a serial (AI 21), added to its line. A line sent for a second count
    takes the second count. Returns how many entries were made. Raises UnknownCount,
    CountClosed, UnknownCode, InvalidQuantity, InvalidInput (also for a serial repeated in the
    count, or one of another item)."""
    count = _open(count_id)
    entered = 0
    for line_id, raw in (lines or {}).items():
        quantity = parse_quantity(raw, field="counted", allow_zero=True)
        line = _line(count, line_id)
        if _tracking(line.item_id) == "serial":
            raise InvalidInput("counted", "a serial-tracked item is counted by its serial numbers")
        _enter(line, quantity, user)
        entered += 1
    for line_id, listed in (serials or {}).items():
        _enter_serials(count, _line(count, line_id), stock.parse_serials(listed), user)
        entered += 1
    for code, raw in (found or {}).items():
        line, scanned = _line_for(count, code, location)
        quantity = parse_quantity(raw, field="counted", allow_zero=True)
        if _tracking(line.item_id) != "serial":
            _enter(line, quantity, user)
        elif scanned is None or quantity != 1:
            raise InvalidInput("code", "scan the serial number of each unit of a serial-tracked item")
        else:
            db.session.flush()
            earlier = db.session.scalars(select(CountSerial.serial).where(CountSerial.count_line_id == line.id))
            _enter_serials(count, line, stock.parse_serials([*earlier, scanned]), user)
        entered += 1
    db.session.flush()
    return entered


#: Serials one entry may list (a pallet of phones is a few hundred).
MAX_COUNT_SERIALS = 5000


def _line(count: Count, line_id: int) -> CountLine:
    line = db.session.scalar(
        select(CountLine).where(CountLine.id == line_id, CountLine.count_id == count.id).with_for_update()
    )
    if line is None:
        raise InvalidInput("line", f"no line {line_id} on count #{count.id}")
    return line


def _tracking(item_id: int) -> str | None:
    return db.session.scalar(select(Item.tracking).where(Item.id == item_id))


def _enter_serials(count: Count, line: CountLine, found: Sequence[str], user: str) -> None:
    """Enter the serials found on a serial-tracked item's line (its count is how many), replacing
    what the line had. Refuses (InvalidInput) a line of another kind of item, a serial already
    found elsewhere in this count, and a serial another item has and this one does not."""
    sku, tracking = db.session.execute(select(Item.sku, Item.tracking).where(Item.id == line.item_id)).one()
    if tracking != "serial":
        raise InvalidInput("serials", f"{sku} is not tracked by serial number")
    if len(found) > MAX_COUNT_SERIALS:
        raise InvalidInput("serials", f"at most {MAX_COUNT_SERIALS} serial numbers at once")
    db.session.flush()
    elsewhere = db.session.execute(
        select(CountSerial.serial, Location.code)
        .join(CountLine, CountLine.id == CountSerial.count_line_id)
        .join(Location, Location.id == CountLine.location_id)
        .where(CountLine.count_id == count.id, CountLine.item_id == line.item_id, CountLine.id != line.id)
    )
    taken = {compared(serial): code for serial, code in elsewhere}
    for serial in found:
        if compared(serial) in taken:
            raise InvalidInput("serials", f"{serial} was already found at {taken[compared(serial)]} in this count")
    _check_own_serials(line.item_id, sku, found)
    db.session.execute(delete(CountSerial).where(CountSerial.count_line_id == line.id))
    db.session.add_all(CountSerial(count_line_id=line.id, serial=serial) for serial in found)
    _enter(line, Decimal(len(found)), user)


def _check_own_serials(item_id: int, sku: str, found: Sequence[str]) -> None:
    """Refuse a serial this item has never had that another item has: a label of the other
    item scanned by mistake, not a unit of this one."""
    own = {
        compared(s)
        for s in db.session.scalars(select(Serial.serial).where(Serial.item_id == item_id, Serial.serial.in_(found)))
    }
    strange = [serial for serial in found if compared(serial) not in own]
    if not strange:
        return
    other = db.session.execute(
        select(Serial.serial, Item.sku)
        .join(Item, Item.id == Serial.item_id)
        .where(Serial.item_id != item_id, Serial.serial.in_(strange))
        .limit(1)
    ).first()
    if other is not None:
        raise InvalidInput("serials", f"{other.serial} is a serial number of {other.sku}, not of {sku}")


def _line_for(count: Count, code: str, location: str | None) -> tuple[CountLine, str | None]:
    """The line a scanned code counts (added when the count has none), and the serial its GS1
    label carries (AI 21), if any."""
    resolved = resolve_code(code)
    if resolved.kind != "item":
        raise InvalidInput("code", f"{code} is a location, not an item")
    location_id = count.location_id or (_location_id(location) if location else None)
    if location_id is None:
        raise WhereFound()
    item_id = _item_ids([resolved.code])[0]
    lot_id = _scanned_lot(item_id, resolved.code, resolved.gs1.lot if resolved.gs1 else None)
    line = db.session.scalar(
        select(CountLine)
        .where(
            CountLine.count_id == count.id,
            CountLine.item_id == item_id,
            CountLine.location_id == location_id,
            CountLine.lot_key == (lot_id or 0),
        )
        .with_for_update()
    )
    if line is None:
        line = CountLine(
            count_id=count.id,
            item_id=item_id,
            location_id=location_id,
            lot_id=lot_id,
            lot_key=lot_id or 0,
            recount_requested=False,
        )
        db.session.add(line)
    return line, resolved.gs1.serial if resolved.gs1 else None


def _scanned_lot(item_id: int, sku: str, lot: str | None) -> int | None:
    """The lot a scanned label names, for a lot-tracked item (counted lot by lot): its GS1 lot
    (AI 10) must be a lot the item has. Raises LotRequired, UnknownLot."""
    if db.session.scalar(select(Item.tracking).where(Item.id == item_id)) != "lot":
        return None
    if not lot:
        raise LotRequired(sku)
    found = db.session.scalar(select(Lot.id).where(Lot.item_id == item_id, Lot.code == lot))
    if found is None:
        raise UnknownLot(sku, lot)
    return found


@unit_of_work
def request_recount(*, count_id: int, user: str) -> int:
    """Send the lines whose variance exceeds the count's threshold for a second count; returns
    how many. Raises UnknownCount, CountClosed."""
    count = _open(count_id)
    lines = db.session.scalars(select(CountLine).where(CountLine.count_id == count.id).with_for_update()).all()
    flagged = 0
    for line in lines:
        variance = line.variance
        if variance is not None and abs(variance) > count.threshold and not line.recount_requested:
            line.recount_requested, line.second_count, line.second_by = True, None, None
            flagged += 1
    return flagged


@unit_of_work
def approve_count(*, count_id: int, user: str) -> list[int]:
    """Post every line as a stocktake through stock.adjust_stock, all in this one transaction, and
    close the count. Returns the movement ids. Raises UnknownCount, CountClosed, CountIncomplete."""
    count = _open(count_id)
    view = get_count(count_id)
    waiting = [line.sku for line in view.lines if line.awaiting]
    if waiting:
        raise CountIncomplete(count_id, waiting)
    places = [(line.item_id, line.location_id, line.lot_id or 0) for line in view.lines]
    on_hand = _lock_levels(places + _serial_sources(view.lines))
    # Then the items rows, in id order: each line's stocktake locks and writes its item's row.
    stock_core.lock_items(item_id for item_id, _, _ in places)
    movement_ids = []
    for line in view.lines:
        if line.tracking == "serial":
            movement_ids.append(_post_serials(count, line, user))
            continue
        # The balance now, moved by whatever happened since the count was entered, plus the
        # variance found; never below zero (stock taken since then may exceed what was left).
        now = on_hand.get((line.item_id, line.location_id, line.lot_id or 0), Decimal(0))
        counted = max(now + (line.variance or 0), Decimal(0))
        # adjust_stock joins this unit of work: every line and the count's status commit
        # together, or nothing does.
        movement = stock.adjust_stock(
            sku=line.sku,
            location=line.location,
            counted=counted,
            lot=line.lot,
            user=user,
            reference=f"COUNT-{count.id}",
            note=f"cycle count #{count.id}: variance {line.variance}",
        )
        db.session.execute(update(CountLine).where(CountLine.id == line.id).values(movement_id=movement.id))
        movement_ids.append(movement.id)
    count.status, count.closed_by, count.closed_at = "approved", user, utcnow()
    return movement_ids


def _post_serials(count: Count, line: LineView, user: str) -> int:
    """Post a serial-tracked line serial by serial (stock.count_serials, in this transaction):
    the lines it writes are named on the count line by the first of them."""
    # Approval refuses a line not counted yet: every line here has its moment.
    counted_at = db.session.scalar(select(CountLine.counted_at).where(CountLine.id == line.id)) or utcnow()
    movements = stock.count_serials(
        sku=line.sku,
        location=line.location,
        found=line.serials,
        counted_at=counted_at,
        user=user,
        reference=f"COUNT-{count.id}",
        note=f"cycle count #{count.id}: {len(line.serials)} serial numbers found",
    )
    db.session.execute(update(CountLine).where(CountLine.id == line.id).values(movement_id=movements[0].id))
    return movements[0].id


def _serial_sources(lines: list[LineView]) -> list[tuple[int, int, int]]:
    """The other places where serials found by the count are now: approval moves them, so their
    levels are locked with the count's, in the same order."""
    keys: list[tuple[int, int, int]] = []
    for line in lines:
        if line.tracking == "serial" and line.serials:
            held = db.session.scalars(
                select(Serial.location_id).where(
                    Serial.item_id == line.item_id, Serial.serial.in_(line.serials), Serial.status == "in_stock"
                )
            )
            keys += [(line.item_id, location_id, 0) for location_id in set(held) if location_id is not None]
    return keys


def _lock_levels(keys: list[tuple[int, int, int]]) -> dict[tuple[int, int, int], Decimal]:
    """Lock the count's stock levels up front, in (item id, location id, lot key) order as the
    stock service does, so that approval and stock movements never wait on each other in a cycle."""
    levels: dict[tuple[int, int, int], Decimal] = {}
    for item_id, location_id, lot_key in sorted(set(keys)):
        quantity = db.session.scalar(
            select(StockLevel.quantity)
            .where(StockLevel.item_id == item_id, StockLevel.location_id == location_id, StockLevel.lot_key == lot_key)
            .with_for_update()
        )
        if quantity is not None:
            levels[(item_id, location_id, lot_key)] = quantity
    return levels


@unit_of_work
def cancel_count(*, count_id: int, user: str) -> Count:
    """Close a count without touching stock. Raises UnknownCount, CountClosed."""
    count = _open(count_id)
    count.status, count.closed_by, count.closed_at = "cancelled", user, utcnow()
    return count
