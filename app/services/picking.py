"""Pick lists (issue 18): what to take from where for one reservation or several at once, merged
by place and sorted in the order a picker walks the warehouse; the code printed on a list, which
the scan page reads back to start picking it; what each scan on that page confirms; and finishing
a pick, which issues every reservation's picks in one transaction (app.services.reservations
writes them).

Walking order: a location code reads warehouse-zone-aisle-level ("WH1-A-01-02"; the warehouse
part is left out when it is the warehouse's own code) and a list goes warehouse by warehouse, then
by zone, aisle and level, numbers as numbers. A warehouse whose racks are walked another way says
so in INVENTORY_PICK_WALK ("WH2=aisle,zone,level").

Nothing here writes but finish_pick; picking on the scan page keeps what was confirmed in the page
(PickState) until the picker finishes, so a wrong scan never writes anything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from app.config import settings
from app.extensions import db
from app.models import Item, Location, Warehouse
from app.models.reservation import OPEN_STATUSES
from app.services import reservations
from app.services.codes import Resolved
from app.services.errors import InvalidInput, InvalidQuantity
from app.services.quantities import parse_quantity
from app.services.reservations import PickedLine, ReservationView
from app.services.transaction import unit_of_work

#: What a pick list's code starts with: "PICK:12" for reservation 12, "PICK:12.15" for 12 and 15.
PICK_PREFIX = "PICK:"
MAX_PICK_RESERVATIONS = 20
WALK_PARTS = ("zone", "aisle", "level")
_ID_LIST = re.compile(rf"[0-9]{{1,18}}(?:\.[0-9]{{1,18}}){{0,{MAX_PICK_RESERVATIONS - 1}}}")


# ---------------------------------------------------------------- codes


def pick_code(reservation_ids: Sequence[int]) -> str:
    """The code printed on the pick list of these reservations (in id order)."""
    return PICK_PREFIX + ".".join(str(i) for i in sorted(set(reservation_ids)))


def is_pick_code(scanned: str) -> bool:
    return (scanned or "").strip().upper().startswith(PICK_PREFIX)


def parse_pick_code(scanned: str) -> list[int]:
    """The reservation ids a pick list's code names. Raises InvalidInput for anything else."""
    text = (scanned or "").strip().upper()
    if not text.startswith(PICK_PREFIX) or not _ID_LIST.fullmatch(text[len(PICK_PREFIX) :]):
        raise InvalidInput("code", f"a pick list code is {PICK_PREFIX} and reservation numbers joined by dots")
    return sorted({int(part) for part in text[len(PICK_PREFIX) :].split(".")})


def parse_ids(text: str) -> list[int]:
    """Reservation ids typed or passed as "12, 15" or "12.15". Raises InvalidInput."""
    parts = [p for p in re.split(r"[\s,.;]+", text or "") if p]
    if not parts or len(parts) > MAX_PICK_RESERVATIONS or not all(p.isascii() and p.isdigit() for p in parts):
        raise InvalidInput("ids", f"from 1 to {MAX_PICK_RESERVATIONS} reservation numbers")
    return parse_pick_code(PICK_PREFIX + ".".join(str(int(p)) for p in parts))


# ---------------------------------------------------------------- walking order


def walk_orders(setting: str) -> dict[str, tuple[str, ...]]:
    """INVENTORY_PICK_WALK ("WH2=aisle,zone,level;WH3=level,aisle,zone") as {warehouse: order}.
    Raises ValueError for a part that is not zone, aisle or level, or one named twice."""
    orders: dict[str, tuple[str, ...]] = {}
    for entry in filter(None, (e.strip() for e in (setting or "").split(";"))):
        warehouse, _, parts = entry.partition("=")
        order = tuple(p.strip().lower() for p in parts.split(",") if p.strip())
        if not warehouse.strip() or set(order) - set(WALK_PARTS) or len(set(order)) != len(order) or not order:
            raise ValueError(f"{entry!r}: a warehouse code = zone, aisle and level in walking order")
        orders[warehouse.strip().upper()] = order + tuple(p for p in WALK_PARTS if p not in order)
    return orders


def _natural(part: str) -> tuple[int, int, str]:
    return (0, int(part), "") if part.isascii() and part.isdigit() else (1, 0, part.upper())


def walk_key(location: str, warehouse: str, order: Sequence[str] = WALK_PARTS) -> tuple[Any, ...]:
    """Where `location` comes in a walk through `warehouse` whose parts are visited in `order`."""
    parts = [p for p in re.split(r"[-_./ ]+", location) if p]
    if parts and parts[0].upper() == warehouse.upper():
        parts = parts[1:]
    named = dict(zip(WALK_PARTS, parts, strict=False))
    rest = parts[len(WALK_PARTS) :]
    return (warehouse.upper(), *(_natural(named.get(name, "")) for name in order), *map(_natural, rest), location)


# ---------------------------------------------------------------- pick lists


@dataclass(frozen=True)
class PickLine:
    """A reservation line a pick-list row covers, with what it still holds."""

    reservation_id: int
    reference: str
    line_id: int
    outstanding: Decimal


@dataclass(frozen=True)
class PickRow:
    """One stop on a pick list: `quantity` of an item (of one lot) at one location, over the
    reservation lines it covers (several when orders are merged)."""

    key: str
    location: str
    warehouse: str
    sku: str
    name: str
    unit: str
    tracking: str
    lot: str | None
    quantity: Decimal
    lines: tuple[PickLine, ...]

    @property
    def references(self) -> list[str]:
        return sorted({line.reference for line in self.lines})


@dataclass(frozen=True)
class PickList:
    code: str
    reservations: tuple[ReservationView, ...]
    rows: tuple[PickRow, ...]

    @property
    def open(self) -> bool:
        return any(r.status in OPEN_STATUSES for r in self.reservations)

    def row(self, key: str) -> PickRow | None:
        return next((r for r in self.rows if r.key == key), None)


def pick_list(reservation_ids: Sequence[int]) -> PickList:
    """What is left to pick of these reservations, merged by (location, item, lot) and in walking
    order. Raises UnknownReservation, InvalidInput (no ids, too many)."""
    ids = sorted(set(reservation_ids))
    if not 1 <= len(ids) <= MAX_PICK_RESERVATIONS:
        raise InvalidInput("ids", f"from 1 to {MAX_PICK_RESERVATIONS} reservation numbers")
    views = tuple(reservations.get_reservation(i) for i in ids)
    merged: dict[tuple[str, str, str | None], list[PickLine]] = {}
    for view in views:
        if view.status not in OPEN_STATUSES:
            continue
        for line in view.lines:
            if line.outstanding > 0:
                where = (line.location, line.sku, line.lot)
                merged.setdefault(where, []).append(PickLine(view.id, view.reference, line.id, line.outstanding))
    items, places = _facts({sku for _, sku, _ in merged}, {loc for loc, _, _ in merged})
    orders = walk_orders(settings().INVENTORY_PICK_WALK)
    rows = [
        PickRow(
            key=f"{lines[0].line_id}",
            location=location,
            warehouse=places[location],
            sku=sku,
            name=items[sku][0],
            unit=items[sku][1],
            tracking=items[sku][2],
            lot=lot,
            quantity=sum((p.outstanding for p in lines), Decimal(0)),
            lines=tuple(lines),
        )
        for (location, sku, lot), lines in merged.items()
    ]
    rows.sort(
        key=lambda r: (walk_key(r.location, r.warehouse, orders.get(r.warehouse, WALK_PARTS)), r.sku, r.lot or "")
    )
    return PickList(pick_code(ids), views, tuple(rows))


def _facts(skus: set[str], codes: set[str]) -> tuple[dict[str, tuple[str, str, str]], dict[str, str]]:
    """Items' (name, unit, tracking) by SKU and locations' warehouse codes by location code."""
    items = {
        sku: (name, unit, tracking)
        for sku, name, unit, tracking in db.session.execute(
            select(Item.sku, Item.name, Item.unit, Item.tracking).where(Item.sku.in_(skus))
        )
    }
    places: dict[str, str] = {}
    for code, warehouse in db.session.execute(
        select(Location.code, Warehouse.code)
        .join(Warehouse, Warehouse.id == Location.warehouse_id)
        .where(Location.code.in_(codes))
    ):
        places[code] = warehouse
    return items, places


# ---------------------------------------------------------------- picking, scan by scan


@dataclass(frozen=True)
class Done:
    """What was confirmed of a row: `quantity` taken (less than the row's when short, with a
    `reason`), and for a serial-tracked item the serials scanned."""

    quantity: Decimal
    reason: str | None = None
    serials: tuple[str, ...] = ()


@dataclass(frozen=True)
class PickState:
    """Where a picker is (the location scanned last) and what each row has had confirmed."""

    at: str = ""
    done: Mapping[str, Done] = field(default_factory=dict)

    def confirmed(self, row: PickRow) -> bool:
        found = self.done.get(row.key)
        return found is not None and (found.reason is not None or found.quantity >= row.quantity)


@dataclass(frozen=True)
class Outcome:
    """What a scan did: `kind` (location, not_here, scan_location, confirmed, serial, already,
    elsewhere, not_on_list, wrong_lot, serial_needed, serial_twice) and the facts a message names."""

    kind: str
    ok: bool
    facts: Mapping[str, Any] = field(default_factory=dict)


def scan(pick: PickList, state: PickState, resolved: Resolved) -> tuple[PickState, Outcome]:
    """The state after one scan of a location or an item on `pick`, and what to tell the picker. A
    location must be one on the list; an item is confirmed at the location scanned last, where the
    list must have it (of the lot a GS1 label names, if one does); a serial-tracked item is
    confirmed one serial label at a time."""
    if resolved.kind == "location":
        return _location_scan(pick, state, resolved.code)
    here = _rows_here(pick, state, resolved.code)
    if isinstance(here, Outcome):
        return state, here
    of_lot = _of_label_lot(here, resolved)
    if isinstance(of_lot, Outcome):
        return state, of_lot
    return _confirm(state, of_lot, resolved)


def _location_scan(pick: PickList, state: PickState, code: str) -> tuple[PickState, Outcome]:
    """A location scanned: where the picker is now, if the list has anything there."""
    if not any(r.location == code for r in pick.rows):
        return state, Outcome("not_here", False, {"code": code})
    return replace(state, at=code), Outcome("location", True, {"code": code})


def _rows_here(pick: PickList, state: PickState, sku: str) -> list[PickRow] | Outcome:
    """The list's rows of an item scanned at the location scanned last, or why there are none."""
    mine = [r for r in pick.rows if r.sku == sku]
    if not mine:
        return Outcome("not_on_list", False, {"sku": sku})
    if not state.at:
        return Outcome("scan_location", False, {"sku": sku})
    here = [r for r in mine if r.location == state.at]
    if not here:
        return Outcome("elsewhere", False, {"sku": sku, "locations": sorted({r.location for r in mine})})
    return here


def _of_label_lot(here: list[PickRow], resolved: Resolved) -> list[PickRow] | Outcome:
    """The rows of the lot a GS1 label names (and rows of no lot); wrong_lot when the rows here are
    all of other lots. Without a lot on the label, all of them."""
    label_lot = resolved.gs1.lot if resolved.gs1 else None
    if label_lot is None:
        return here
    lots = [r for r in here if r.lot is not None]
    if lots and not any(r.lot == label_lot for r in lots):
        return Outcome("wrong_lot", False, {"sku": resolved.code, "lot": label_lot, "wanted": lots[0].lot})
    return [r for r in here if r.lot in (None, label_lot)]


def _confirm(state: PickState, here: list[PickRow], resolved: Resolved) -> tuple[PickState, Outcome]:
    """Confirm the first row here not yet confirmed: in full, or one serial of a serial-tracked item."""
    waiting = [r for r in here if not state.confirmed(r)]
    if not waiting:
        return state, Outcome("already", False, {"sku": resolved.code, "location": state.at})
    row = waiting[0]
    if row.tracking == "serial":
        return _serial_scan(state, row, resolved)
    done = {**state.done, row.key: Done(row.quantity)}
    return replace(state, done=done), Outcome("confirmed", True, _row_facts(row))


def _serial_scan(state: PickState, row: PickRow, resolved: Resolved) -> tuple[PickState, Outcome]:
    serial = resolved.gs1.serial if resolved.gs1 else None
    if not serial:
        return state, Outcome("serial_needed", False, {"sku": row.sku})
    before = state.done.get(row.key, Done(Decimal(0)))
    if serial in before.serials:
        return state, Outcome("serial_twice", False, {"sku": row.sku, "serial": serial})
    serials = (*before.serials, serial)
    done = {**state.done, row.key: Done(Decimal(len(serials)), None, serials)}
    facts = {**_row_facts(row), "serial": serial, "count": len(serials), "of": row.quantity}
    return replace(state, done=done), Outcome("serial", True, facts)


def _row_facts(row: PickRow) -> dict[str, Any]:
    return {"sku": row.sku, "name": row.name, "quantity": row.quantity, "unit": row.unit, "location": row.location}


def short(pick: PickList, state: PickState, *, key: str, quantity: Any, reason: str) -> PickState:
    """Record that only `quantity` of a row was found, for `reason`. Raises InvalidInput (no such
    row, no reason), InvalidQuantity (not 0 up to less than the row's quantity)."""
    row = pick.row(key)
    if row is None:
        raise InvalidInput("row", "not a row of this pick list")
    reason = (reason or "").strip()
    if not reason or len(reason) > reservations.MAX_SHORT_REASON:
        raise InvalidInput("reason", f"say why, in at most {reservations.MAX_SHORT_REASON} characters")
    found = parse_quantity(quantity, field="quantity", allow_zero=True)
    if found >= row.quantity:
        raise InvalidQuantity("quantity", "a short pick is less than the row's quantity")
    serials = state.done[row.key].serials[: int(found)] if row.key in state.done else ()
    if row.tracking == "serial" and len(serials) < found:
        raise InvalidInput("quantity", "scan the serial of each unit taken first")
    return replace(state, done={**state.done, row.key: Done(found, reason, serials)})


def picked_lines(pick: PickList, state: PickState) -> dict[int, list[PickedLine]]:
    """The confirmed rows as picks per reservation: a row's quantity goes to its lines in order,
    and a short row's reason to every line it leaves short."""
    picks: dict[int, list[PickedLine]] = {}
    for row in pick.rows:
        done = state.done.get(row.key)
        if done is None:
            continue
        left, serials = done.quantity, list(done.serials)
        for line in row.lines:
            take = min(left, line.outstanding)
            left -= take
            taken, serials = serials[: int(take)], serials[int(take) :]
            reason = done.reason if take < line.outstanding else None
            if take > 0 or reason is not None:
                picks.setdefault(line.reservation_id, []).append(PickedLine(line.line_id, take, tuple(taken), reason))
    return picks


@unit_of_work
def finish_pick(
    *,
    picks: Mapping[int, Sequence[PickedLine]],
    release_rest: bool,
    user: str,
    idempotency_key: str | None = None,
) -> list[ReservationView]:
    """Issue what was picked of several reservations in one transaction (each through
    reservations.issue_reservation, in reservation id order): all of them or none. What a picked
    reservation still holds stays reserved, or with `release_rest` is released. Raises what
    issue_reservation raises, and InvalidInput when nothing was picked."""
    if not picks:
        raise InvalidInput("lines", "nothing was picked yet")
    # Every reservation row first, in id order, then all their levels in one ordered pass: two
    # merged picks never hold a row or a level while waiting for one the other holds.
    reservations.lock_for_issue(list(picks))
    return [
        reservations.issue_reservation(
            reservation_id=reservation_id,
            lines=list(picks[reservation_id]),
            release_rest=release_rest,
            user=user,
            idempotency_key=f"{idempotency_key}.{reservation_id}" if idempotency_key else None,
        )
        for reservation_id in sorted(picks)
    ]
