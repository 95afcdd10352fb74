"""Lots with expiry (FEFO) and serial numbers through the stock service, on SQLite and MariaDB
(issue 17): what a receipt requires, the order an issue takes lots in, expired lots, serials,
reversals, stocktakes per lot, idempotent replays and the ledger check per lot."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event, func, select

from app.config import settings
from app.models import Item, Lot, Movement, MovementSerial, Serial, StockLevel
from app.models.types import utcnow
from app.services import counts, items, lots, stock
from app.services.errors import (
    ExpiredLot,
    ExpiryMismatch,
    ExpiryRequired,
    InsufficientStock,
    InvalidInput,
    LotRequired,
    NotTracked,
    SerialCountMismatch,
    SerialExists,
    SerialNotHere,
    TrackingLocked,
    UnknownLot,
    UnknownSerial,
)
from app.services.ledger import find_ledger_mismatches, find_total_mismatches

TODAY = utcnow().date()


def days(n: int) -> date:
    return TODAY + timedelta(days=n)


@pytest.fixture
def shelf(factory):
    return factory.location()


@pytest.fixture
def milk(factory):
    return factory.item(sku="MILK-1", tracking="lot", requires_expiry=True, expiry_warning_days=7, reorder_point=3)


@pytest.fixture
def phone(factory):
    return factory.item(sku="PHONE-1", tracking="serial")


def per_lot(db, item, location) -> dict[str, Decimal]:
    rows = db.session.execute(
        select(Lot.code, StockLevel.quantity)
        .join(Lot, Lot.id == StockLevel.lot_id)
        .where(StockLevel.item_id == item.id, StockLevel.location_id == location.id)
    )
    return dict(rows.tuples().all())


def receive(location, lot, quantity, expiry=None, sku="MILK-1", **kw):
    return stock.receive_stock(
        sku=sku, location=location.code, quantity=quantity, lot=lot, expiry=expiry, user="u", **kw
    )


def total(db, item) -> Decimal:
    return db.session.scalar(select(Item.on_hand).where(Item.id == item.id))


def assert_clean() -> None:
    assert find_ledger_mismatches() == []
    assert find_total_mismatches() == []


def test_a_lot_receipt_needs_the_lot_and_its_expiry(db, milk, shelf):
    with pytest.raises(LotRequired):
        receive(shelf, None, 5, days(10))
    with pytest.raises(ExpiryRequired):
        receive(shelf, "L1", 5)
    first = receive(shelf, "L1", 5, days(10))
    # The lot is known now: its expiry need not be given again, and another date is refused.
    again = receive(shelf, "L1", 2)
    with pytest.raises(ExpiryMismatch):
        receive(shelf, "L1", 1, days(11))
    assert first.lot_id == again.lot_id is not None
    assert per_lot(db, milk, shelf) == {"L1": Decimal(7)}
    assert total(db, milk) == Decimal(7)
    assert db.session.scalar(select(func.count()).select_from(Movement)) == 2
    assert_clean()


def test_untracked_items_take_no_lot_and_tracked_ones_no_wrong_kind(db, factory, milk, phone, shelf):
    factory.item(sku="PLAIN-1")
    with pytest.raises(NotTracked):
        receive(shelf, "L1", 1, sku="PLAIN-1")
    with pytest.raises(NotTracked):
        stock.receive_stock(sku="MILK-1", location=shelf.code, quantity=1, serials=["S1"], user="u")
    with pytest.raises(NotTracked):
        receive(shelf, "L1", 1, sku="PHONE-1")
    plain = stock.receive_stock(sku="PLAIN-1", location=shelf.code, quantity=4, user="u")
    assert plain.lot_id is None
    assert db.session.scalar(select(StockLevel.lot_key).where(StockLevel.item_id == plain.item_id)) == 0


def test_fefo_takes_the_earliest_expiry_first_then_the_oldest_receipt_and_lots_without_expiry_last(db, factory, shelf):
    factory.item(sku="RICE-1", tracking="lot")
    receive(shelf, "NOEXP", 10, sku="RICE-1")
    receive(shelf, "LATE", 10, days(30), sku="RICE-1")
    receive(shelf, "SOON-B", 3, days(5), sku="RICE-1")
    receive(shelf, "SOON-A", 3, days(5), sku="RICE-1")  # same expiry, received later
    receive(shelf, "EARLY", 2, days(2), sku="RICE-1")
    first = stock.issue_stock(sku="RICE-1", location=shelf.code, quantity=12, user="u", idempotency_key="k-1")
    lines = stock.lines_of(first)
    lots = dict(db.session.execute(select(Lot.id, Lot.code)).tuples().all())
    assert [(lots[m.lot_id], m.quantity) for m in lines] == [
        ("EARLY", 2),
        ("SOON-B", 3),
        ("SOON-A", 3),
        ("LATE", 4),
    ]
    assert [m.from_balance for m in lines] == [0, 0, 0, 6]
    assert {m.idempotency_key for m in lines} == {"k-1", "k-1#2", "k-1#3", "k-1#4"}
    # The same request again returns every line it wrote, and writes nothing.
    replay = stock.issue_stock(sku="RICE-1", location=shelf.code, quantity=12, user="u", idempotency_key="k-1")
    assert [m.id for m in stock.lines_of(replay)] == [m.id for m in lines]
    rice = db.session.scalar(select(Item).where(Item.sku == "RICE-1"))
    assert total(db, rice) == Decimal(16)
    stock.issue_stock(sku="RICE-1", location=shelf.code, quantity=10, user="u")
    assert per_lot(db, rice, shelf) == {"NOEXP": 6, "LATE": 0, "SOON-A": 0, "SOON-B": 0, "EARLY": 0}
    assert_clean()


def test_naming_a_lot_takes_only_that_lot(db, milk, shelf):
    receive(shelf, "OLD", 5, days(3))
    receive(shelf, "NEW", 5, days(30))
    movement = stock.issue_stock(sku="MILK-1", location=shelf.code, quantity=4, lot="NEW", user="u")
    assert stock.lines_of(movement) == [movement]
    assert per_lot(db, milk, shelf) == {"OLD": 5, "NEW": 1}
    with pytest.raises(InsufficientStock) as short:
        stock.issue_stock(sku="MILK-1", location=shelf.code, quantity=2, lot="NEW", user="u")
    assert short.value.available == 1
    with pytest.raises(UnknownLot):
        stock.issue_stock(sku="MILK-1", location=shelf.code, quantity=1, lot="NOPE", user="u")


def test_expired_lots_are_never_issued_without_a_managers_reason(db, milk, shelf):
    receive(shelf, "GONE", 5, days(-1))
    receive(shelf, "GOOD", 2, days(9))
    with pytest.raises(InsufficientStock) as short:
        stock.issue_stock(sku="MILK-1", location=shelf.code, quantity=3, user="u")
    assert short.value.available == 2  # the expired lot is not counted as available
    with pytest.raises(ExpiredLot):
        stock.issue_stock(sku="MILK-1", location=shelf.code, quantity=1, lot="GONE", user="u")
    with pytest.raises(InvalidInput) as no_reason:
        stock.issue_stock(sku="MILK-1", location=shelf.code, quantity=1, lot="GONE", user="m", allow_expired=True)
    assert no_reason.value.field == "note"
    assert per_lot(db, milk, shelf) == {"GONE": 5, "GOOD": 2}
    override = stock.issue_stock(
        sku="MILK-1", location=shelf.code, quantity=1, lot="GONE", user="m", allow_expired=True, note="to the lab"
    )
    assert (override.reason_code, override.note) == (stock.EXPIRED_OVERRIDE, "to the lab")
    # FEFO without the override skips the expired lot.
    plain = stock.issue_stock(sku="MILK-1", location=shelf.code, quantity=2, user="u")
    assert plain.reason_code is None
    assert per_lot(db, milk, shelf) == {"GONE": 4, "GOOD": 0}
    assert_clean()


def test_serial_receipts_need_exactly_one_new_serial_per_unit(db, phone, shelf):
    with pytest.raises(SerialCountMismatch):
        stock.receive_stock(sku="PHONE-1", location=shelf.code, quantity=3, serials=["A", "B"], user="u")
    with pytest.raises(InvalidInput):
        stock.receive_stock(sku="PHONE-1", location=shelf.code, quantity=2, serials=["A", "A"], user="u")
    received = stock.receive_stock(sku="PHONE-1", location=shelf.code, quantity=2, serials=["A", "B"], user="u")
    with pytest.raises(SerialExists):
        stock.receive_stock(sku="PHONE-1", location=shelf.code, quantity=2, serials=["C", "B"], user="u")
    assert db.session.scalar(select(func.count()).select_from(Serial)) == 2  # C was not kept
    moved = db.session.scalars(select(MovementSerial.serial_id).where(MovementSerial.movement_id == received.id))
    assert len(list(moved)) == 2
    assert total(db, phone) == Decimal(2)


def test_serials_are_issued_by_name_and_only_from_where_they_are(db, factory, phone, shelf):
    other = factory.location()
    stock.receive_stock(sku="PHONE-1", location=shelf.code, quantity=2, serials=["A", "B"], user="u")
    with pytest.raises(SerialCountMismatch):
        stock.issue_stock(sku="PHONE-1", location=shelf.code, quantity=1, user="u")
    with pytest.raises(UnknownSerial):
        stock.issue_stock(sku="PHONE-1", location=shelf.code, quantity=1, serials=["Z"], user="u")
    with pytest.raises(SerialNotHere):
        stock.issue_stock(sku="PHONE-1", location=other.code, quantity=1, serials=["A"], user="u")
    moved = stock.transfer_stock(
        sku="PHONE-1", from_location=shelf.code, to_location=other.code, quantity=1, serials=["A"], user="u"
    )
    assert moved.to_balance == 1
    issued = stock.issue_stock(sku="PHONE-1", location=other.code, quantity=1, serials=["A"], user="u")
    with pytest.raises(SerialNotHere):
        stock.issue_stock(sku="PHONE-1", location=other.code, quantity=1, serials=["A"], user="u")
    a = db.session.scalar(select(Serial).where(Serial.serial == "A"))
    assert (a.status, a.location_id) == ("issued", None)
    # The reversal brings exactly that unit back to where it left.
    stock.reverse_movement(movement_id=issued.id, user="m", reason="wrong unit")
    db.session.expire_all()
    a = db.session.scalar(select(Serial).where(Serial.serial == "A"))
    assert (a.status, a.location_id) == ("in_stock", other.id)
    assert_clean()


def test_a_transfer_moves_each_lot_as_itself_and_a_reversal_restores_exactly_those_lots(db, factory, milk, shelf):
    bin_ = factory.location()
    receive(shelf, "A", 3, days(4))
    receive(shelf, "B", 5, days(8))
    moved = stock.transfer_stock(sku="MILK-1", from_location=shelf.code, to_location=bin_.code, quantity=6, user="u")
    assert len(stock.lines_of(moved)) == 2
    assert per_lot(db, milk, shelf) == {"A": 0, "B": 2}
    assert per_lot(db, milk, bin_) == {"A": 3, "B": 3}
    for line in stock.lines_of(moved):
        stock.reverse_movement(movement_id=line.id, user="m", reason="wrong bin")
    assert per_lot(db, milk, shelf) == {"A": 3, "B": 5}
    assert per_lot(db, milk, bin_) == {"A": 0, "B": 0}
    assert total(db, milk) == Decimal(8)
    assert_clean()


def test_a_pick_takes_lots_and_serials_all_or_nothing(db, milk, phone, shelf):
    receive(shelf, "A", 3, days(4))
    stock.receive_stock(sku="PHONE-1", location=shelf.code, quantity=1, serials=["S1"], user="u")
    before = db.session.scalar(select(func.count()).select_from(Movement))
    with pytest.raises(UnknownSerial):
        stock.issue_lines(
            lines=[
                stock.PickLine("MILK-1", shelf.code, 2),
                stock.PickLine("PHONE-1", shelf.code, 1, serials=("NOPE",)),
            ],
            user="u",
        )
    assert db.session.scalar(select(func.count()).select_from(Movement)) == before
    picked = stock.issue_lines(
        lines=[stock.PickLine("MILK-1", shelf.code, 2), stock.PickLine("PHONE-1", shelf.code, 1, serials=("S1",))],
        user="u",
        idempotency_key="pick-9",
    )
    assert [m.item_id for m in picked] == [milk.id, phone.id]
    again = stock.issue_lines(
        lines=[stock.PickLine("MILK-1", shelf.code, 2), stock.PickLine("PHONE-1", shelf.code, 1, serials=("S1",))],
        user="u",
        idempotency_key="pick-9",
    )
    assert [m.id for m in again] == [m.id for m in picked]
    assert per_lot(db, milk, shelf) == {"A": 1}
    assert_clean()


def test_a_stocktake_counts_one_lot(db, milk, shelf):
    receive(shelf, "A", 3, days(4))
    receive(shelf, "B", 5, days(8))
    with pytest.raises(LotRequired):
        stock.adjust_stock(sku="MILK-1", location=shelf.code, counted=2, user="u")
    counted = stock.adjust_stock(sku="MILK-1", location=shelf.code, counted=2, lot="B", user="u")
    found = stock.adjust_stock(sku="MILK-1", location=shelf.code, counted=1, lot="C", expiry=days(20), user="u")
    assert (counted.quantity, counted.from_balance) == (3, 2)
    assert (found.quantity, found.to_balance) == (1, 1)
    assert per_lot(db, milk, shelf) == {"A": 3, "B": 2, "C": 1}
    assert total(db, milk) == Decimal(6)
    assert_clean()


def test_check_ledger_reports_the_lot_whose_level_the_ledger_does_not_explain(db, milk, shelf):
    receive(shelf, "A", 3, days(4))
    receive(shelf, "B", 5, days(8))
    lot_b = db.session.scalar(select(Lot.id).where(Lot.code == "B"))
    # Hand-written SQL moves one unit between the lots: the item's total still adds up.
    db.session.execute(
        StockLevel.__table__.update().where(StockLevel.lot_id == lot_b).values(quantity=StockLevel.quantity - 1)
    )
    db.session.execute(
        StockLevel.__table__.update().where(StockLevel.lot_id != lot_b).values(quantity=StockLevel.quantity + 1)
    )
    db.session.commit()
    mismatches = find_ledger_mismatches()
    assert sorted((m.lot, m.on_hand, m.from_ledger) for m in mismatches) == [("A", 4, 3), ("B", 4, 5)]
    assert find_total_mismatches() == []


def test_tracking_changes_only_while_no_stock_is_held(db, factory, shelf):
    factory.item(sku="BOLT-1")
    stock.receive_stock(sku="BOLT-1", location=shelf.code, quantity=1, user="u")
    with pytest.raises(TrackingLocked):
        items.update_item(sku="BOLT-1", tracking="lot")
    stock.issue_stock(sku="BOLT-1", location=shelf.code, quantity=1, user="u")
    assert items.update_item(sku="BOLT-1", tracking="lot", requires_expiry=True).tracking == "lot"
    with pytest.raises(InvalidInput):
        factory.item(sku="BOLT-2", requires_expiry=True)  # only lot-tracked items expire


def test_a_cycle_count_counts_each_lot_and_approval_posts_per_lot(db, milk, shelf):
    receive(shelf, "A", 3, days(4))
    receive(shelf, "B", 5, days(8))
    count = counts.open_count(user="boss", location=shelf.code)
    view = counts.get_count(count.id)
    assert [(line.sku, line.lot) for line in view.lines] == [("MILK-1", "A"), ("MILK-1", "B")]
    found = {line.id: quantity for line, quantity in zip(view.lines, (2, 5), strict=True)}
    counts.record_counts(count_id=count.id, user="clerk", lines=found)
    # Found by SKU alone, a lot-tracked item does not say which lot was counted.
    with pytest.raises(LotRequired):
        counts.record_counts(count_id=count.id, user="clerk", found={"MILK-1": 1})
    stock.issue_stock(sku="MILK-1", location=shelf.code, quantity=1, lot="B", user="u")  # during the count
    counts.approve_count(count_id=count.id, user="boss")
    assert per_lot(db, milk, shelf) == {"A": 2, "B": 4}
    assert_clean()


def test_an_untracked_issue_runs_exactly_the_statements_it_ran_before_lots(app, db, factory, shelf):
    """The hot path: resolve (the item's tracking rides along), lock, update, insert. No lot or
    serial statement for untracked stock."""
    factory.item(sku="FAST-1")
    stock.receive_stock(sku="FAST-1", location=shelf.code, quantity=10, user="u")
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement.split()[0].upper())

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        stock.issue_stock(sku="FAST-1", location=shelf.code, quantity=1, user="u")
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    body = [s for s in statements if s not in {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"}]
    if settings().INVENTORY_COMBINE_STOCK_OUTS and db.engine.dialect.name != "sqlite":
        # Combined (issue 19), the lock free: one more read, for stock-outs waiting for the level.
        assert body == ["SELECT", "SELECT", "SELECT", "UPDATE", "INSERT"]
    else:
        assert body == ["SELECT", "SELECT", "UPDATE", "INSERT"]


def test_a_fefo_issue_runs_the_statements_of_the_hot_path(app, db, milk, shelf):
    """Resolve, one locking read that also brings the lots' facts, then per lot taken an UPDATE
    and an INSERT: no separate read of the lots; the answer's lot codes come with the lines."""
    receive(shelf, "A", 2, days(4))
    receive(shelf, "B", 5, days(8))
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement.split()[0].upper())

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        first = stock.issue_stock(sku="MILK-1", location=shelf.code, quantity=3, user="u")
        traced = lots.traced(stock.lines_of(first))
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    body = [s for s in statements if s not in {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"}]
    assert body == ["SELECT", "SELECT", "UPDATE", "INSERT", "UPDATE", "INSERT"]
    assert [traced.lots[m.lot_id] for m in stock.lines_of(first)] == ["A", "B"]
    assert per_lot(db, milk, shelf) == {"A": 0, "B": 4}
