"""The stock service on SQLite and MariaDB: every operation and every way it refuses."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import event, func, select, text, update

from app.models import Item, Movement, OutboxEvent, StockLevel
from app.services import items, locations, stock, stock_core, transaction
from app.services.errors import (
    AlreadyReversed,
    ArchivedItem,
    IdempotencyConflict,
    InactiveLocation,
    InsufficientStock,
    InvalidInput,
    InvalidQuantity,
    IrreversibleMovement,
    SameLocation,
    UnknownItem,
    UnknownLocation,
    UnknownMovement,
)


def on_hand(db, item, location) -> Decimal:
    value = db.session.scalar(
        select(StockLevel.quantity).where(StockLevel.item_id == item.id, StockLevel.location_id == location.id)
    )
    return Decimal(0) if value is None else value


def movement_count(db) -> int:
    return db.session.scalar(select(func.count()).select_from(Movement))


@pytest.fixture
def shelf(factory):
    return factory.location()


@pytest.fixture
def screw(factory):
    return factory.item(sku="A-100", name="螺丝钉", reorder_point=5)


def test_receive_creates_the_level_and_records_the_balance(db, screw, shelf):
    first = stock.receive_stock(sku="A-100", location=shelf.code, quantity="2.5", user="alice", reference="PO-1")
    second = stock.receive_stock(sku="A-100", location=shelf.code, quantity=Decimal("1.25"), user="alice")
    assert (first.kind, first.to_location_id, first.quantity, first.to_balance) == (
        "receive",
        shelf.id,
        Decimal("2.5"),
        Decimal("2.5"),
    )
    assert second.to_balance == Decimal("3.75")
    assert on_hand(db, screw, shelf) == Decimal("3.75")
    stored = db.session.get(Movement, first.id)
    assert (stored.reference, stored.username, stored.from_location_id) == ("PO-1", "alice", None)


def test_issue_takes_stock_out_and_records_the_balance(db, factory, screw, shelf):
    factory.stock(screw, shelf, 10)
    movement = stock.issue_stock(sku="A-100", location=shelf.code, quantity=3, user="bob", reference="SO-1")
    assert (movement.kind, movement.from_location_id, movement.quantity, movement.from_balance) == (
        "issue",
        shelf.id,
        Decimal(3),
        Decimal(7),
    )
    assert movement.to_location_id is None
    assert on_hand(db, screw, shelf) == 7


def test_issue_rejects_quantity_above_on_hand_and_writes_nothing(db, factory, screw, shelf):
    factory.stock(screw, shelf, 4)
    before = movement_count(db)
    with pytest.raises(InsufficientStock) as caught:
        stock.issue_stock(sku="A-100", location=shelf.code, quantity="4.001", user="bob")
    error = caught.value
    assert (error.sku, error.location, error.requested, error.available) == (
        "A-100",
        shelf.code,
        Decimal("4.001"),
        Decimal(4),
    )
    assert error.status == 409 and error.to_dict()["available"] == "4.000"
    assert on_hand(db, screw, shelf) == 4
    assert movement_count(db) == before


def test_issue_from_a_location_that_never_held_the_item_reports_zero_available(db, screw, shelf):
    with pytest.raises(InsufficientStock) as caught:
        stock.issue_stock(sku="A-100", location=shelf.code, quantity=1, user="bob")
    assert caught.value.available == 0
    assert movement_count(db) == 0


@pytest.mark.parametrize(
    "bad", [0, -1, "0.000", "nan", "NaN", "inf", "-Infinity", "1.2345", "abc", "", None, True, "1e16"]
)
def test_bad_quantities_are_refused_before_anything_is_written(db, factory, screw, shelf, bad):
    factory.stock(screw, shelf, 10)
    with pytest.raises(InvalidQuantity):
        stock.issue_stock(sku="A-100", location=shelf.code, quantity=bad, user="bob")
    with pytest.raises(InvalidQuantity):
        stock.receive_stock(sku="A-100", location=shelf.code, quantity=bad, user="bob")
    assert movement_count(db) == 1
    assert on_hand(db, screw, shelf) == 10


def test_unknown_item_and_location_are_named(db, screw, shelf):
    with pytest.raises(UnknownItem) as item_error:
        stock.receive_stock(sku="NOPE", location=shelf.code, quantity=1, user="bob")
    with pytest.raises(UnknownLocation) as location_error:
        stock.receive_stock(sku="A-100", location="WH9-Z-99-99", quantity=1, user="bob")
    assert item_error.value.extras == {"sku": "NOPE"} and item_error.value.status == 404
    assert location_error.value.extras == {"location": "WH9-Z-99-99"}
    assert movement_count(db) == 0


def test_archived_items_and_inactive_locations_cannot_move(db, factory, shelf):
    from app.services.items import archive_item

    old = factory.item(sku="OLD-1")
    archive_item(sku="OLD-1")
    closed = factory.location(active=False)
    with pytest.raises(ArchivedItem):
        stock.receive_stock(sku=old.sku, location=shelf.code, quantity=1, user="bob")
    live = factory.item(sku="LIVE-1")
    with pytest.raises(InactiveLocation):
        stock.receive_stock(sku=live.sku, location=closed.code, quantity=1, user="bob")
    assert movement_count(db) == 0


def test_text_fields_are_limited_and_the_user_is_required(db, screw, shelf):
    with pytest.raises(InvalidInput) as too_long:
        stock.receive_stock(sku="A-100", location=shelf.code, quantity=1, user="bob", reference="x" * 101)
    with pytest.raises(InvalidInput) as no_user:
        stock.receive_stock(sku="A-100", location=shelf.code, quantity=1, user="  ")
    assert too_long.value.field == "reference" and no_user.value.field == "user"


def test_transfer_moves_stock_and_records_both_balances(db, factory, screw, shelf):
    other = factory.location()
    factory.stock(screw, shelf, 10)
    movement = stock.transfer_stock(sku="A-100", from_location=shelf.code, to_location=other.code, quantity=4, user="c")
    assert (movement.from_balance, movement.to_balance) == (Decimal(6), Decimal(4))
    assert (on_hand(db, screw, shelf), on_hand(db, screw, other)) == (6, 4)


def test_transfer_refuses_same_location_and_short_source(db, factory, screw, shelf):
    other = factory.location()
    factory.stock(screw, shelf, 2)
    with pytest.raises(SameLocation):
        stock.transfer_stock(sku="A-100", from_location=shelf.code, to_location=shelf.code, quantity=1, user="c")
    with pytest.raises(InsufficientStock) as short:
        stock.transfer_stock(sku="A-100", from_location=shelf.code, to_location=other.code, quantity=3, user="c")
    assert short.value.available == 2
    assert (on_hand(db, screw, shelf), on_hand(db, screw, other)) == (2, 0)
    assert movement_count(db) == 1


@pytest.mark.parametrize(
    ("counted", "direction", "difference"),
    [("12", "to", Decimal(2)), ("7.5", "from", Decimal("2.5")), ("10", "to", Decimal(0))],
)
def test_adjust_sets_the_counted_quantity_and_records_the_difference(
    db, factory, screw, shelf, counted, direction, difference
):
    factory.stock(screw, shelf, 10)
    movement = stock.adjust_stock(sku="A-100", location=shelf.code, counted=counted, user="m", note="stocktake")
    assert movement.kind == "adjust" and movement.quantity == difference
    assert getattr(movement, f"{direction}_location_id") == shelf.id
    assert getattr(movement, f"{direction}_balance") == Decimal(counted)
    assert on_hand(db, screw, shelf) == Decimal(counted)


def test_adjust_accepts_zero_but_not_negative_counts(db, factory, screw, shelf):
    factory.stock(screw, shelf, 3)
    assert stock.adjust_stock(sku="A-100", location=shelf.code, counted=0, user="m").from_balance == 0
    with pytest.raises(InvalidQuantity):
        stock.adjust_stock(sku="A-100", location=shelf.code, counted=-1, user="m")


def test_reversing_an_issue_puts_the_stock_back_and_links_both_ways(db, factory, screw, shelf):
    factory.stock(screw, shelf, 10)
    issue = stock.issue_stock(sku="A-100", location=shelf.code, quantity=4, user="bob", reference="SO-9")
    reversal = stock.reverse_movement(movement_id=issue.id, user="mgr", reason="wrong item picked")
    assert (reversal.kind, reversal.reverses_id, reversal.to_location_id, reversal.to_balance) == (
        "reversal",
        issue.id,
        shelf.id,
        Decimal(10),
    )
    assert reversal.reference == "SO-9" and reversal.note == "wrong item picked"
    assert on_hand(db, screw, shelf) == 10


def test_a_movement_is_reversed_at_most_once_and_reversals_are_final(db, factory, screw, shelf):
    receipt = factory.stock(screw, shelf, 10)
    reversal = stock.reverse_movement(movement_id=receipt.id, user="mgr", reason="duplicate receipt")
    with pytest.raises(AlreadyReversed) as again:
        stock.reverse_movement(movement_id=receipt.id, user="mgr", reason="again")
    with pytest.raises(IrreversibleMovement):
        stock.reverse_movement(movement_id=reversal.id, user="mgr", reason="undo the undo")
    with pytest.raises(UnknownMovement):
        stock.reverse_movement(movement_id=999_999, user="mgr", reason="?")
    with pytest.raises(InvalidInput):
        stock.reverse_movement(movement_id=receipt.id, user="mgr", reason=" ")
    assert again.value.extras["reversal_id"] == reversal.id
    assert on_hand(db, screw, shelf) == 0


def test_a_reversal_takes_a_known_reason_code_instead_of_text_and_refuses_an_unknown_one(db, factory, screw, shelf):
    receipt = factory.stock(screw, shelf, 5)
    with pytest.raises(InvalidInput) as unknown:
        stock.reverse_movement(movement_id=receipt.id, user="mgr", reason_code="because")
    assert unknown.value.field == "reason_code" and on_hand(db, screw, shelf) == 5
    reversal = stock.reverse_movement(movement_id=receipt.id, user="mgr", reason_code="scan_undo")
    stored = db.session.get(Movement, reversal.id)
    assert (stored.note, stored.reason_code) == (None, "scan_undo") and on_hand(db, screw, shelf) == 0


def test_reversing_a_receipt_whose_stock_has_left_is_refused(db, factory, screw, shelf):
    receipt = factory.stock(screw, shelf, 5)
    stock.issue_stock(sku="A-100", location=shelf.code, quantity=3, user="bob")
    with pytest.raises(InsufficientStock) as short:
        stock.reverse_movement(movement_id=receipt.id, user="mgr", reason="wrong delivery")
    assert short.value.available == 2 and on_hand(db, screw, shelf) == 2


def test_reversing_a_transfer_moves_it_back(db, factory, screw, shelf):
    other = factory.location()
    factory.stock(screw, shelf, 5)
    moved = stock.transfer_stock(sku="A-100", from_location=shelf.code, to_location=other.code, quantity=5, user="c")
    back = stock.reverse_movement(movement_id=moved.id, user="mgr", reason="wrong bin")
    assert (back.from_location_id, back.to_location_id) == (other.id, shelf.id)
    assert (on_hand(db, screw, shelf), on_hand(db, screw, other)) == (5, 0)


def test_same_idempotency_key_and_request_replays_the_original(db, factory, screw, shelf):
    factory.stock(screw, shelf, 10)
    first = stock.issue_stock(sku="A-100", location=shelf.code, quantity=2, user="bob", idempotency_key="k-1")
    again = stock.issue_stock(sku="A-100", location=shelf.code, quantity="2.000", user="bob", idempotency_key="k-1")
    assert again.id == first.id
    assert on_hand(db, screw, shelf) == 8 and movement_count(db) == 2


def test_same_idempotency_key_with_another_request_is_a_conflict(db, factory, screw, shelf):
    factory.stock(screw, shelf, 10)
    stock.issue_stock(sku="A-100", location=shelf.code, quantity=2, user="bob", idempotency_key="k-2")
    with pytest.raises(IdempotencyConflict) as conflict:
        stock.issue_stock(sku="A-100", location=shelf.code, quantity=3, user="bob", idempotency_key="k-2")
    assert conflict.value.status == 409 and on_hand(db, screw, shelf) == 8


def test_issue_lines_is_all_or_nothing(db, factory, screw, shelf):
    nut = factory.item(sku="B-200")
    factory.stock(screw, shelf, 5)
    factory.stock(nut, shelf, 1)
    before = movement_count(db)
    with pytest.raises(InsufficientStock) as short:
        stock.issue_lines(
            lines=[
                dict(sku="A-100", location=shelf.code, quantity=2),
                dict(sku="B-200", location=shelf.code, quantity=2),
            ],
            user="bob",
        )
    assert short.value.sku == "B-200"
    assert (on_hand(db, screw, shelf), on_hand(db, nut, shelf), movement_count(db)) == (5, 1, before)


def test_issue_lines_writes_a_line_per_pick_in_order_and_replays(db, factory, screw, shelf):
    nut = factory.item(sku="B-200")
    factory.stock(screw, shelf, 5)
    factory.stock(nut, shelf, 5)
    lines = [
        stock.PickLine("B-200", shelf.code, 1),
        stock.PickLine("A-100", shelf.code, 2),
        stock.PickLine("B-200", shelf.code, 3),
    ]
    picked = stock.issue_lines(lines=lines, user="bob", reference="SO-7", idempotency_key="pick-1")
    assert [(m.item_id, m.quantity, m.from_balance) for m in picked] == [
        (nut.id, 1, 4),
        (screw.id, 2, 3),
        (nut.id, 3, 1),
    ]
    replay = stock.issue_lines(lines=lines, user="bob", reference="SO-7", idempotency_key="pick-1")
    assert [m.id for m in replay] == [m.id for m in picked]
    with pytest.raises(IdempotencyConflict):
        stock.issue_lines(lines=lines[:2], user="bob", reference="SO-7", idempotency_key="pick-1")
    assert (on_hand(db, screw, shelf), on_hand(db, nut, shelf)) == (3, 1)


def test_issue_lines_needs_at_least_one_line(db):
    with pytest.raises(InvalidInput):
        stock.issue_lines(lines=[], user="bob")


def test_crossing_the_reorder_point_writes_one_outbox_event(db, factory, screw, shelf):
    factory.stock(screw, shelf, 8)  # reorder point 5
    stock.issue_stock(sku="A-100", location=shelf.code, quantity=2, user="bob")  # 6: above
    crossing = stock.issue_stock(sku="A-100", location=shelf.code, quantity=2, user="bob")  # 4: crosses
    stock.issue_stock(sku="A-100", location=shelf.code, quantity=1, user="bob")  # 3: already below
    with pytest.raises(InsufficientStock):
        stock.issue_stock(sku="A-100", location=shelf.code, quantity=99, user="bob")
    events = db.session.scalars(select(OutboxEvent)).all()
    assert [(e.movement_id, e.quantity, e.reorder_point, e.status) for e in events] == [
        (crossing.id, Decimal(4), Decimal(5), "pending")
    ]


def test_the_database_itself_refuses_negative_stock(db, factory, screw, shelf):
    from sqlalchemy import update
    from sqlalchemy.exc import IntegrityError, OperationalError

    factory.stock(screw, shelf, 1)
    with pytest.raises((IntegrityError, OperationalError)):
        db.session.execute(update(StockLevel).values(quantity=-1))
        db.session.commit()
    db.session.rollback()
    assert on_hand(db, screw, shelf) == 1


def test_committed_movements_are_announced_and_rolled_back_ones_are_not(app_ctx, factory, screw, shelf):
    seen = []

    def listener(sender, movements=None, **extra):
        seen.append([m.kind for m in movements])

    stock.stock_moved.connect(listener)
    try:
        factory.stock(screw, shelf, 1)
        with pytest.raises(InsufficientStock):
            stock.issue_stock(sku="A-100", location=shelf.code, quantity=2, user="bob")
    finally:
        stock.stock_moved.disconnect(listener)
    assert seen == [["receive"]]


def test_a_clerk_undoing_on_the_scan_page_may_take_back_only_their_own_scans(db, factory, screw, shelf):
    factory.stock(screw, shelf, 10)
    scan = stock.issue_stock(sku="A-100", location=shelf.code, quantity=1, user="ann", reason_code="scan")
    typed = stock.issue_stock(sku="A-100", location=shelf.code, quantity=1, user="ann", reference="SO-1")
    with pytest.raises(InvalidInput) as not_hers:
        stock.reverse_movement(movement_id=scan.id, user="bob", reason="undo", own_scan_only=True)
    with pytest.raises(InvalidInput):
        stock.reverse_movement(movement_id=typed.id, user="ann", reason="undo", own_scan_only=True)
    assert not_hers.value.field == "movement_id" and on_hand(db, screw, shelf) == 8
    undone = stock.reverse_movement(movement_id=scan.id, user="ann", reason="undo", own_scan_only=True)
    assert undone.reverses_id == scan.id and on_hand(db, screw, shelf) == 9


def test_a_scan_recorded_before_reason_codes_is_still_its_clerks_to_undo(db, factory, screw, shelf):
    """Scans written before the reason code 'scan' existed carry only the reference SCAN."""
    factory.stock(screw, shelf, 10)
    legacy = stock.issue_stock(sku="A-100", location=shelf.code, quantity=1, user="ann", reference=stock.SCAN_REFERENCE)
    with pytest.raises(InvalidInput):
        stock.reverse_movement(movement_id=legacy.id, user="bob", reason="undo", own_scan_only=True)
    undone = stock.reverse_movement(movement_id=legacy.id, user="ann", reason="undo", own_scan_only=True)
    assert undone.reverses_id == legacy.id and on_hand(db, screw, shelf) == 10


def test_a_reversal_never_puts_stock_back_into_an_inactive_location(db, factory, screw, shelf):
    factory.stock(screw, shelf, 4)
    issue = stock.issue_stock(sku="A-100", location=shelf.code, quantity=4, user="bob")
    locations.set_location_active(code=shelf.code, active=False)
    with pytest.raises(InactiveLocation):
        stock.reverse_movement(movement_id=issue.id, user="mgr", reason="wrong item picked")
    assert on_hand(db, screw, shelf) == 0 and movement_count(db) == 2
    locations.set_location_active(code=shelf.code, active=True)
    assert stock.reverse_movement(movement_id=issue.id, user="mgr", reason="wrong item picked").to_balance == 4


def test_a_reversal_never_moves_an_archived_item(db, factory, screw, shelf):
    factory.stock(screw, shelf, 10)
    issue = stock.issue_stock(sku="A-100", location=shelf.code, quantity=4, user="bob")
    items.archive_item(sku="A-100")
    with pytest.raises(ArchivedItem):
        stock.reverse_movement(movement_id=issue.id, user="mgr", reason="wrong item picked")
    assert on_hand(db, screw, shelf) == 6 and movement_count(db) == 2


def test_a_bulk_receipt_past_the_bounds_finds_items_as_asked_and_adds_to_the_levels_there(
    db, factory, shelf, monkeypatch
):
    # Issue 13: past BOUND_SKUS and _BOUND_IDS, the SKUs travel as JSON lists (transaction.listed)
    # and the item ids are written into the locking statements (transaction.ids_in), two a slice.
    monkeypatch.setattr(stock_core, "BOUND_SKUS", 1)
    monkeypatch.setattr(stock, "_BOUND_IDS", 1)
    monkeypatch.setattr(transaction, "JSON_ROWS", 2)
    other = factory.location()
    bolts = [factory.item(sku=f"BULK-{n}", name="螺栓") for n in range(5)]
    factory.stock(bolts[0], shelf, 5)
    factory.stock(bolts[3], other, "1.5")
    # MariaDB compares SKUs without case, as a single receipt does; SQLite byte for byte.
    asked = "bulk-0" if db.engine.dialect.name == "mysql" else "BULK-0"
    lines = [stock.PickLine(asked, shelf.code, "2"), stock.PickLine("BULK-0", other.code, 1)]
    lines += [stock.PickLine(f"BULK-{n}", shelf.code, Decimal(n)) for n in range(1, 5)]
    lines.append(stock.PickLine("BULK-3", other.code, "0.25"))
    assert stock.receive_lines(lines=lines, user="alice") == 7
    levels = db.session.execute(select(StockLevel.item_id, StockLevel.location_id, StockLevel.quantity)).all()
    assert {(i, loc, q) for i, loc, q in levels} == {
        (bolts[0].id, shelf.id, Decimal("7")),
        (bolts[0].id, other.id, Decimal("1")),
        (bolts[1].id, shelf.id, Decimal("1")),
        (bolts[2].id, shelf.id, Decimal("2")),
        (bolts[3].id, shelf.id, Decimal("3")),
        (bolts[3].id, other.id, Decimal("1.75")),
        (bolts[4].id, shelf.id, Decimal("4")),
    }
    assert [items.get_item(f"BULK-{n}").on_hand for n in range(5)] == [8, 1, 2, Decimal("4.75"), 4]
    with pytest.raises(UnknownItem):
        stock.receive_lines(lines=[*lines, stock.PickLine("BULK-0 ' OR 1=1", shelf.code, 1)], user="alice")


def test_items_read_packed_past_the_bound_are_the_items_read_as_rows(db, factory, monkeypatch):
    monkeypatch.setattr(transaction, "JSON_ROWS", 2)
    skus = ["Q\"1'", "螺栓-😀", "Q-3", "Q-4", "Q-5"]
    for n, sku in enumerate(skus):
        factory.item(sku=sku, name="件", reorder_point=["1.5", 0, "12345678901.125", 2, "0.001"][n])
    db.session.execute(update(Item).where(Item.sku == "Q-4").values(tracking="lot"))
    db.session.execute(update(Item).where(Item.sku == "Q-3").values(archived=True))
    asked = {*skus, "NONE", "x" * 300}
    as_rows = stock_core.items_by_sku(asked)
    monkeypatch.setattr(stock_core, "BOUND_SKUS", 0)
    packed = stock_core.items_by_sku(asked)
    assert packed == as_rows and sorted(packed) == sorted(skus)
    assert [str(packed[sku].reorder_point) for sku in skus] == ["1.500", "0.000", "12345678901.125", "2.000", "0.001"]
    assert [(packed[s].archived, packed[s].tracking) for s in ("Q-3", "Q-4")] == [(True, "none"), (False, "lot")]
    if db.engine.dialect.name == "mysql":
        # A document cut short by group_concat_max_len is read again as rows.
        db.session.execute(text("SET SESSION group_concat_max_len = 4"))
        try:
            assert stock_core.items_by_sku(asked) == as_rows
        finally:
            db.session.execute(text("SET SESSION group_concat_max_len = DEFAULT"))


def test_the_bulk_tracking_recheck_refuses_a_tracking_read_before_it_changed(db, factory, monkeypatch):
    monkeypatch.setattr(stock, "_BOUND_IDS", 0)
    monkeypatch.setattr(transaction, "JSON_ROWS", 2)
    made = [factory.item(sku=f"TR-{n}", name="垫片") for n in range(3)]
    read = [stock_core.ItemFacts(i.id, i.sku, False, Decimal(0), "none") for i in made]
    stock._recheck_tracking(read)  # as they are: nothing to retry
    stale = [*read[:2], stock_core.ItemFacts(made[2].id, "TR-2", False, Decimal(0), "lot")]
    with pytest.raises(transaction.StaleRead, match=f"item {made[2].id} is now tracked by none"):
        stock._recheck_tracking(stale)
    db.session.rollback()


def test_ids_written_into_a_statement_are_whole_numbers_only():
    column = StockLevel.__table__.c.item_id
    assert [str(clause) for clause in transaction.ids_in(column, [3, 1, 3])] == ["stock_levels.item_id IN (1,3)"]
    with pytest.raises(ValueError):
        list(transaction.ids_in(column, ["1) OR (1=1"]))  # type: ignore[list-item]


def test_the_same_idempotency_key_from_two_callers_is_two_requests(db, factory, screw, shelf):
    factory.stock(screw, shelf, 10)
    ann = stock.issue_stock(sku="A-100", location=shelf.code, quantity=1, user="ann", idempotency_key="k-1")
    bob = stock.issue_stock(sku="A-100", location=shelf.code, quantity=1, user="bob", idempotency_key="k-1")
    token = stock.issue_stock(
        sku="A-100", location=shelf.code, quantity=1, user="ann", idempotency_key="k-1", caller="token:7"
    )
    again = stock.issue_stock(sku="A-100", location=shelf.code, quantity=1, user="ann", idempotency_key="k-1")
    assert len({ann.id, bob.id, token.id}) == 3 and again.id == ann.id
    assert (bob.username, bob.from_balance, on_hand(db, screw, shelf)) == ("bob", 8, 7)


def test_a_bulk_receipt_sent_in_several_chunks_keeps_every_line_its_order_and_its_text(db, factory, shelf, monkeypatch):
    # Two rows per statement, so the lines of one level cross chunks (MariaDB: JSON_TABLE).
    monkeypatch.setattr(transaction, "JSON_ROWS", 2)
    name = "O'Brien \\ 100% 螺栓 😀"
    assert items.create_items(
        [items.check_item(sku="Q-1", name=name, reorder_point="1.5"), items.check_item(sku="Q-2", name="垫片")]
    ) == ["Q-1", "Q-2"]
    quantities = ["1", "2.125", "3", "0.5", "4"]
    lines = [
        stock.PickLine(sku, shelf.code, q)
        for sku, q in zip(["Q-1", "Q-1", "Q-2", "Q-1", "Q-2"], quantities, strict=True)
    ]
    assert stock.receive_lines(lines=lines, user="alice", reference="OPENING", note="100% 'opening' \\ 😀") == 5
    written = db.session.scalars(select(Movement).order_by(Movement.id)).all()
    skus = dict(db.session.execute(select(Item.id, Item.sku)).tuples().all())
    assert [(skus[m.item_id], m.quantity, m.to_balance) for m in written] == [
        ("Q-1", Decimal("1"), Decimal("1")),
        ("Q-1", Decimal("2.125"), Decimal("3.125")),
        ("Q-2", Decimal("3"), Decimal("3")),
        ("Q-1", Decimal("0.5"), Decimal("3.625")),
        ("Q-2", Decimal("4"), Decimal("7")),
    ]
    assert {(m.kind, m.username, m.reference, m.note, m.idempotency_key) for m in written} == {
        ("receive", "alice", "OPENING", "100% 'opening' \\ 😀", None)
    }
    assert all(
        m.created_at.tzinfo is not None and abs(m.created_at - written[0].created_at).total_seconds() == 0
        for m in written
    )
    first = items.get_item("Q-1")
    assert (first.name, first.reorder_point, first.archived, first.on_hand) == (
        name,
        Decimal("1.5"),
        False,
        Decimal("3.625"),
    )


def test_a_bulk_receipt_reads_no_levels_or_tracking_of_items_its_own_unit_of_work_created(db, factory, shelf):
    """An import's new items: nobody else can see them, so neither their stock levels nor their
    tracking are read again under locks; an existing item in the same receipt still is."""
    old = factory.item(sku="OLD-1", name="旧物")
    sent: list[tuple[str, set[object]]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if not executemany:  # the lock reads are single statements; bulk writes send lists
            values = parameters.values() if isinstance(parameters, dict) else parameters
            sent.append((" ".join(statement.split()), set(values)))

    @transaction.unit_of_work
    def import_like() -> tuple[int, list[int]]:
        created = items.create_items([items.ItemInput(sku=f"NEW-{n}", name="新物") for n in (1, 2)])
        new_ids = list(db.session.scalars(select(Item.id).where(Item.sku.in_(created))))
        lines = [{"sku": sku, "location": shelf.code, "quantity": 2} for sku in ("NEW-1", "OLD-1", "NEW-2")]
        return stock.receive_lines(lines=lines, user="bench", created=created), new_ids

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        written, new_ids = import_like()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert written == 3 and len(new_ids) == 2
    reads = [
        values
        for statement, values in sent
        if statement.startswith(("SELECT stock_levels.id, stock_levels.item_id", "SELECT items.id, items.tracking"))
    ]
    assert len(reads) == 2  # the old item's levels, then its tracking
    assert all(old.id in values and not values & set(new_ids) for values in reads)
    assert [on_hand(db, item, shelf) for item in (old, *(db.session.get(Item, i) for i in new_ids))] == [2, 2, 2]
