"""The reservation service on SQLite and MariaDB: reserving, picking, releasing, and what plain
issues, transfers and stocktakes may do with reserved stock (issue 18)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.models import Item, OutboxEvent, Reservation, ReservationLine, StockLevel
from app.services import ledger, reservations, stock
from app.services.errors import (
    ExpiredLot,
    IdempotencyConflict,
    InactiveLocation,
    InsufficientStock,
    InvalidInput,
    InvalidQuantity,
    NotTracked,
    PickExceedsReserved,
    ReservationClosed,
    ReservationShort,
    SerialCountMismatch,
    UnknownItem,
    UnknownLocation,
    UnknownLot,
    UnknownReservation,
)

D = Decimal


def level(db, item, location) -> tuple[Decimal, Decimal]:
    """(quantity, reserved) of the item's level without a lot at `location`."""
    row = db.session.execute(
        select(StockLevel.quantity, StockLevel.reserved).where(
            StockLevel.item_id == item.id, StockLevel.location_id == location.id, StockLevel.lot_key == 0
        )
    ).one()
    return row[0], row[1]


def totals(db, item) -> tuple[Decimal, Decimal]:
    db.session.expire_all()
    row = db.session.execute(select(Item.on_hand, Item.reserved).where(Item.id == item.id)).one()
    return row[0], row[1]


def clean_ledger() -> None:
    report = ledger.audit_ledger()
    assert (report.mismatches, report.totals, report.reservations) == ([], [], [])


def events(db) -> list[str]:
    return list(db.session.scalars(select(OutboxEvent.kind).where(OutboxEvent.reservation_id.is_not(None))))


@pytest.fixture
def shelf(factory):
    return factory.location()


@pytest.fixture
def bin_(factory):
    return factory.location()


@pytest.fixture
def bolt(factory, shelf):
    item = factory.item(sku="BOLT-R")
    factory.stock(item, shelf, 10)
    return item


def reserve(sku="BOLT-R", quantity=4, location=None, lot=None, **kw):
    kw.setdefault("reference", "SO-1")
    kw.setdefault("user", "erp")
    return reservations.reserve(lines=[{"sku": sku, "quantity": quantity, "location": location, "lot": lot}], **kw)


def test_reserving_holds_stock_and_plain_issues_take_only_the_rest(db, bolt, shelf):
    made = reserve(quantity=4, location=shelf.code)
    assert (made.status, made.reference) == ("open", "SO-1")
    [line] = made.lines
    assert (line.sku, line.location, line.quantity, line.outstanding) == ("BOLT-R", shelf.code, D(4), D(4))
    assert level(db, bolt, shelf) == (D(10), D(4))
    assert totals(db, bolt) == (D(10), D(4))
    with pytest.raises(InsufficientStock) as refused:
        stock.issue_stock(sku="BOLT-R", location=shelf.code, quantity=7, user="u")
    assert refused.value.extras["available"] == D(6)
    stock.issue_stock(sku="BOLT-R", location=shelf.code, quantity=6, user="u")
    assert level(db, bolt, shelf) == (D(4), D(4))
    assert events(db) == ["reservation_created"]
    clean_ledger()


def test_transfers_and_multi_line_picks_take_only_unreserved_stock(db, bolt, shelf, bin_):
    reserve(quantity=8, location=shelf.code)
    with pytest.raises(InsufficientStock):
        stock.transfer_stock(sku="BOLT-R", from_location=shelf.code, to_location=bin_.code, quantity=3, user="u")
    with pytest.raises(InsufficientStock):
        stock.issue_lines(lines=[{"sku": "BOLT-R", "location": shelf.code, "quantity": 3}], user="u")
    stock.transfer_stock(sku="BOLT-R", from_location=shelf.code, to_location=bin_.code, quantity=2, user="u")
    assert level(db, bolt, shelf) == (D(8), D(8))


def test_a_reservation_short_on_one_line_reserves_nothing(db, bolt, shelf, factory):
    nut = factory.item(sku="NUT-R")
    factory.stock(nut, shelf, 2)
    with pytest.raises(ReservationShort) as refused:
        reservations.reserve(
            reference="SO-2",
            lines=[{"sku": "BOLT-R", "quantity": 5}, {"sku": "NUT-R", "quantity": 3, "location": shelf.code}],
            user="erp",
        )
    assert refused.value.status == 409
    assert refused.value.extras["lines"] == [
        {"line": 2, "sku": "NUT-R", "location": shelf.code, "lot": None, "requested": "3.000", "available": "2.000"}
    ]
    assert level(db, bolt, shelf) == (D(10), D(0))
    assert db.session.scalar(select(Reservation.id)) is None


def test_without_a_location_the_place_with_most_available_is_reserved_first(db, bolt, shelf, bin_, factory):
    factory.stock(bolt, bin_, 15)
    made = reserve(quantity=20)
    assert [(line.location, line.quantity) for line in made.lines] == [(bin_.code, D(15)), (shelf.code, D(5))]
    assert {line.request_line for line in made.lines} == {1}
    assert totals(db, bolt) == (D(25), D(20))
    clean_ledger()


def test_lot_items_are_reserved_first_expired_first_out_and_never_from_expired_lots(db, factory, shelf):
    factory.item(sku="MILK-R", tracking="lot")
    today = date.today()
    for code, days in (("LATE", 30), ("SOON", 5), ("GONE", -1)):
        stock.receive_stock(
            sku="MILK-R", location=shelf.code, quantity=3, lot=code, expiry=today + timedelta(days=days), user="u"
        )
    made = reserve(sku="MILK-R", quantity=4)
    assert [(line.lot, line.quantity) for line in made.lines] == [("SOON", D(3)), ("LATE", D(1))]
    with pytest.raises(ReservationShort):
        reserve(sku="MILK-R", quantity=3)  # 2 left of LATE; GONE has expired
    named = reserve(sku="MILK-R", quantity=2, lot="LATE", location=shelf.code)
    assert [(line.lot, line.quantity) for line in named.lines] == [("LATE", D(2))]
    with pytest.raises(InsufficientStock):
        stock.issue_stock(sku="MILK-R", location=shelf.code, quantity=1, user="u")
    clean_ledger()


def test_idempotent_replays_return_the_first_reservation_and_another_body_conflicts(db, bolt, shelf):
    first = reserve(quantity=3, idempotency_key="k-1", caller="token:1")
    again = reserve(quantity=3, idempotency_key="k-1", caller="token:1")
    assert again.id == first.id
    assert level(db, bolt, shelf) == (D(10), D(3))
    with pytest.raises(IdempotencyConflict):
        reserve(quantity=4, idempotency_key="k-1", caller="token:1")
    other = reserve(quantity=3, idempotency_key="k-1", caller="token:2")
    assert other.id != first.id


def test_cancel_releases_what_is_left_and_cannot_be_repeated(db, bolt, shelf):
    made = reserve(quantity=4)
    cancelled = reservations.cancel_reservation(reservation_id=made.id, user="boss")
    assert (cancelled.status, cancelled.closed_by) == ("cancelled", "boss")
    assert cancelled.lines[0].released == D(4)
    assert level(db, bolt, shelf) == (D(10), D(0))
    with pytest.raises(ReservationClosed):
        reservations.cancel_reservation(reservation_id=made.id, user="boss")
    with pytest.raises(UnknownReservation):
        reservations.cancel_reservation(reservation_id=made.id + 99, user="boss")
    assert events(db) == ["reservation_created", "reservation_cancelled"]
    clean_ledger()


def test_expiry_releases_reservations_past_their_time_or_too_old(db, bolt, shelf):
    now = datetime.now(UTC)
    soon = reserve(quantity=2, expires_at=(now + timedelta(hours=1)).isoformat())
    kept = reserve(quantity=3, reference="SO-KEEP")
    assert reservations.expire_stale(now=now) == 0
    assert reservations.expire_stale(now=now + timedelta(hours=2)) == 1
    assert reservations.get_reservation(soon.id).status == "expired"
    assert level(db, bolt, shelf) == (D(10), D(3))
    assert reservations.expire_stale(now=now + timedelta(days=31)) == 1  # INVENTORY_RESERVATION_MAX_AGE_DAYS
    assert reservations.get_reservation(kept.id).status == "expired"
    assert level(db, bolt, shelf) == (D(10), D(0))
    clean_ledger()


def test_a_full_pick_issues_the_reserved_stock_with_the_order_reference(db, bolt, shelf):
    made = reserve(quantity=4)
    picked = reservations.issue_reservation(reservation_id=made.id, user="picker")
    assert picked.status == "picked"
    [movement] = picked.movements
    assert (movement.kind, movement.reference, movement.quantity, movement.from_balance) == (
        "issue",
        "SO-1",
        D(4),
        D(6),
    )
    assert level(db, bolt, shelf) == (D(6), D(0))
    assert picked.lines[0].picked_by == "picker"
    with pytest.raises(ReservationClosed):
        reservations.cancel_reservation(reservation_id=made.id, user="boss")
    assert events(db)[-1] == "reservation_picked"
    clean_ledger()


def test_a_partial_pick_keeps_the_rest_reserved_then_cancel_releases_it(db, bolt, shelf):
    made = reserve(quantity=4)
    line = made.lines[0]
    partly = reservations.issue_reservation(
        reservation_id=made.id, lines=[{"line_id": line.id, "quantity": 1, "short_reason": "damaged"}], user="p"
    )
    assert partly.status == "partly_picked"
    assert (partly.lines[0].picked, partly.lines[0].outstanding, partly.lines[0].short_reason) == (
        D(1),
        D(3),
        "damaged",
    )
    assert level(db, bolt, shelf) == (D(9), D(3))
    reservations.cancel_reservation(reservation_id=made.id, user="boss")
    assert level(db, bolt, shelf) == (D(9), D(0))
    clean_ledger()


def test_a_short_pick_may_release_the_rest(db, bolt, shelf):
    made = reserve(quantity=4)
    done = reservations.issue_reservation(
        reservation_id=made.id, lines=[{"line_id": made.lines[0].id, "quantity": 3}], release_rest=True, user="p"
    )
    assert (done.status, done.lines[0].picked, done.lines[0].released) == ("picked", D(3), D(1))
    assert level(db, bolt, shelf) == (D(7), D(0))
    clean_ledger()


def test_picking_more_than_a_line_holds_is_refused(db, bolt, shelf):
    made = reserve(quantity=2)
    with pytest.raises(PickExceedsReserved):
        reservations.issue_reservation(
            reservation_id=made.id, lines=[{"line_id": made.lines[0].id, "quantity": 3}], user="p"
        )
    assert level(db, bolt, shelf) == (D(10), D(2))


def test_reversing_a_pick_restores_the_stock_and_optionally_the_line(db, bolt, shelf):
    made = reserve(quantity=4)
    picked = reservations.issue_reservation(reservation_id=made.id, user="p")
    reservations.reverse_pick(movement_id=picked.movements[0].id, user="boss", reason="wrong order", restore=True)
    again = reservations.get_reservation(made.id)
    assert (again.status, again.lines[0].picked, again.lines[0].outstanding) == ("open", D(0), D(4))
    assert level(db, bolt, shelf) == (D(10), D(4))
    clean_ledger()
    second = reservations.issue_reservation(reservation_id=made.id, user="p")
    reservations.reverse_pick(movement_id=second.movements[0].id, user="boss", reason="returned")
    assert reservations.get_reservation(made.id).status == "picked"
    assert level(db, bolt, shelf) == (D(10), D(0))
    clean_ledger()


def test_a_stocktake_below_the_reserved_amount_cuts_the_newest_reservations(db, bolt, shelf):
    older = reserve(quantity=4, reference="SO-OLD")
    newer = reserve(quantity=5, reference="SO-NEW")
    stock.adjust_stock(sku="BOLT-R", location=shelf.code, counted=6, user="counter")
    assert level(db, bolt, shelf) == (D(6), D(6))
    cut = reservations.get_reservation(newer.id).lines[0]
    assert (cut.released, cut.outstanding, cut.short_reason) == (D(3), D(2), "count")
    assert reservations.get_reservation(older.id).lines[0].outstanding == D(4)
    assert "reservation_reduced" in events(db)
    stock.adjust_stock(sku="BOLT-R", location=shelf.code, counted=0, user="counter")
    assert level(db, bolt, shelf) == (D(0), D(0))
    clean_ledger()


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ({"sku": "BOLT-R", "quantity": 0}, InvalidQuantity),
        ({"sku": "BOLT-R", "quantity": -1}, InvalidQuantity),
        ({"sku": "BOLT-R", "quantity": "1e30"}, InvalidQuantity),
        ({"sku": "BOLT-R", "quantity": "0.0001"}, InvalidQuantity),
        ({"sku": "NOPE", "quantity": 1}, UnknownItem),
        ({"sku": "BOLT-R", "quantity": 1, "location": "NOWHERE"}, UnknownLocation),
        ({"sku": "BOLT-R", "quantity": 1, "lot": "L1"}, NotTracked),
        ({"sku": "", "quantity": 1}, InvalidInput),
        ({"sku": "BOLT-R", "quantity": 1, "colour": "red"}, InvalidInput),
    ],
)
def test_hostile_lines_are_refused_clearly(db, bolt, line, error):
    with pytest.raises(error):
        reservations.reserve(reference="SO-X", lines=[line], user="erp")


def test_hostile_requests_are_refused_clearly(db, bolt, shelf, factory):
    with pytest.raises(InvalidInput):
        reservations.reserve(reference="SO-X", lines=[{"sku": "BOLT-R", "quantity": 1}] * 600, user="erp")
    with pytest.raises(InvalidInput):
        reservations.reserve(reference="SO-X", lines=[], user="erp")
    with pytest.raises(InvalidInput):
        reservations.reserve(reference=" ", lines=[{"sku": "BOLT-R", "quantity": 1}], user="erp")
    for bad in ("tomorrow", "2020-01-01T00:00:00+00:00", "2030-01-01T00:00:00"):
        with pytest.raises(InvalidInput):
            reserve(quantity=1, expires_at=bad)
    closed = factory.location(active=False)
    with pytest.raises(InactiveLocation):
        reserve(quantity=1, location=closed.code)
    factory.item(sku="MILK-X", tracking="lot")
    with pytest.raises(UnknownLot):
        reserve(sku="MILK-X", quantity=1, lot="NOPE")
    assert db.session.scalar(select(ReservationLine.id)) is None


def test_a_named_expired_lot_is_not_reserved(db, factory, shelf):
    factory.item(sku="MILK-OLD", tracking="lot")
    stock.receive_stock(
        sku="MILK-OLD", location=shelf.code, quantity=3, lot="GONE", expiry=date.today() - timedelta(days=1), user="u"
    )
    with pytest.raises(ExpiredLot):
        reserve(sku="MILK-OLD", quantity=1, lot="GONE")


def test_releasing_everything_unpicked_cancels_the_reservation(db, bolt, shelf):
    made = reserve(quantity=4)
    done = reservations.issue_reservation(
        reservation_id=made.id, lines=[{"line_id": made.lines[0].id, "quantity": 0}], release_rest=True, user="p"
    )
    assert (done.status, done.movements) == ("cancelled", ())
    assert level(db, bolt, shelf) == (D(10), D(0))


def test_restoring_a_line_needs_a_reservation_pick(db, bolt, shelf):
    plain = stock.issue_stock(sku="BOLT-R", location=shelf.code, quantity=1, user="u")
    with pytest.raises(InvalidInput):
        reservations.reverse_pick(movement_id=plain.id, user="boss", reason="oops", restore=True)


def test_serial_items_are_reserved_by_quantity_and_picked_by_serial(db, factory, shelf):
    factory.item(sku="PHONE-R", tracking="serial")
    stock.receive_stock(sku="PHONE-R", location=shelf.code, quantity=3, serials=["S1", "S2", "S3"], user="u")
    with pytest.raises(InvalidInput):
        reserve(sku="PHONE-R", quantity="1.5")
    made = reserve(sku="PHONE-R", quantity=2)
    with pytest.raises(InsufficientStock):
        stock.issue_stock(sku="PHONE-R", location=shelf.code, quantity=2, serials=["S1", "S2"], user="u")
    line = made.lines[0].id
    with pytest.raises(SerialCountMismatch):
        reservations.issue_reservation(
            reservation_id=made.id, lines=[{"line_id": line, "quantity": 2, "serials": ["S1"]}], user="p"
        )
    done = reservations.issue_reservation(
        reservation_id=made.id, lines=[{"line_id": line, "quantity": 2, "serials": ["S3", "S1"]}], user="p"
    )
    assert done.status == "picked"
    clean_ledger()


def test_the_pick_check_pages_show_counts_only_unreserved_stock(db, bolt, shelf):
    from app.services import catalog

    reserve(quantity=8, location=shelf.code)
    [check] = catalog.check_pick_lines([("BOLT-R", shelf.code, D(3))])
    assert (check.problem, check.available) == ("insufficient", D(2))
