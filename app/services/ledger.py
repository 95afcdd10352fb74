"""Reconciliation: every stock level must equal what the ledger says went in minus what went out,
and the balance recorded on its latest ledger line; every item's kept on-hand total must equal
the sum of its stock levels."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select, union_all

from app.extensions import db
from app.models import Item, Location, Movement, StockLevel


@dataclass(frozen=True)
class Mismatch:
    sku: str
    location: str
    on_hand: Decimal
    from_ledger: Decimal
    last_balance: Decimal | None


@dataclass(frozen=True)
class TotalMismatch:
    sku: str
    on_hand: Decimal
    from_levels: Decimal


def _ledger_sums() -> dict[tuple[int, int], Decimal]:
    inflow = select(
        Movement.item_id.label("item_id"),
        Movement.to_location_id.label("location_id"),
        Movement.quantity.label("delta"),
    ).where(Movement.to_location_id.is_not(None))
    outflow = select(Movement.item_id, Movement.from_location_id, (-Movement.quantity).label("delta")).where(
        Movement.from_location_id.is_not(None)
    )
    flows = union_all(inflow, outflow).subquery()
    rows = db.session.execute(
        select(flows.c.item_id, flows.c.location_id, func.sum(flows.c.delta)).group_by(
            flows.c.item_id, flows.c.location_id
        )
    )
    return {(item_id, location_id): Decimal(total) for item_id, location_id, total in rows}


def _last_balances() -> dict[tuple[int, int], Decimal]:
    """The balance written on the newest ledger line of each (item, location)."""
    balances: dict[tuple[int, int], Decimal] = {}
    rows = db.session.execute(
        select(
            Movement.item_id,
            Movement.from_location_id,
            Movement.from_balance,
            Movement.to_location_id,
            Movement.to_balance,
        )
        .order_by(Movement.id)
        .execution_options(yield_per=10_000)
    )
    for item_id, from_id, from_balance, to_id, to_balance in rows:
        if from_id is not None:
            balances[(item_id, from_id)] = from_balance
        if to_id is not None:
            balances[(item_id, to_id)] = to_balance
    return balances


def find_ledger_mismatches() -> list[Mismatch]:
    """Every stock level that the ledger does not explain (an empty list when all reconcile)."""
    ledger = _ledger_sums()
    balances = _last_balances()
    levels = {
        (item_id, location_id): quantity
        for item_id, location_id, quantity in db.session.execute(
            select(StockLevel.item_id, StockLevel.location_id, StockLevel.quantity)
        )
    }
    wrong = []
    for pair in levels.keys() | ledger.keys():
        on_hand = levels.get(pair, Decimal(0))
        expected = ledger.get(pair, Decimal(0))
        last = balances.get(pair)
        if on_hand != expected or (last is not None and last != on_hand):
            wrong.append((pair, on_hand, expected, last))
    if not wrong:
        return []
    item_ids, location_ids = {pair[0] for pair, *_ in wrong}, {pair[1] for pair, *_ in wrong}
    skus: dict[int, str] = dict(
        db.session.execute(select(Item.id, Item.sku).where(Item.id.in_(item_ids))).tuples().all()
    )
    codes: dict[int, str] = dict(
        db.session.execute(select(Location.id, Location.code).where(Location.id.in_(location_ids))).tuples().all()
    )
    return sorted(
        (Mismatch(skus[i], codes[loc], on_hand, expected, last) for (i, loc), on_hand, expected, last in wrong),
        key=lambda m: (m.sku, m.location),
    )


def find_total_mismatches() -> list[TotalMismatch]:
    """Items whose on-hand total (items.on_hand, kept by triggers) is not the sum of their stock
    levels, by SKU (an empty list when all agree)."""
    levels = (
        select(StockLevel.item_id, func.sum(StockLevel.quantity).label("units")).group_by(StockLevel.item_id).subquery()
    )
    units = func.coalesce(levels.c.units, 0)
    rows = db.session.execute(
        select(Item.sku, Item.on_hand, units)
        .outerjoin(levels, levels.c.item_id == Item.id)
        # Rounded: SQLite sums fractional quantities as floats.
        .where(func.round(Item.on_hand - units, 3) != 0)
        .order_by(Item.sku)
    )
    return [TotalMismatch(sku, on_hand, Decimal(total)) for sku, on_hand, total in rows]
