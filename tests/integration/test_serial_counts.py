"""Counting a serial-tracked item means scanning the serials found (issue 17): approval writes
off the serials expected and not found, moves here the ones the system had elsewhere, takes into
stock the ones it had issued or never had, each on a ledger line naming them, in the count's one
transaction; the ledger reconciles. Hostile entries are refused. SQLite and MariaDB."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from app.models import Location, Movement, MovementSerial, OutboxEvent, Serial, StockLevel
from app.services import counts, reservations, stock
from app.services.errors import InvalidInput
from app.services.ledger import audit_ledger, find_ledger_mismatches, find_total_mismatches


@pytest.fixture
def places(factory):
    warehouse = factory.warehouse()
    return factory.location(warehouse=warehouse), factory.location(warehouse=warehouse)


@pytest.fixture
def phone(db, factory, places):
    """PHONE-1: SN-1..SN-4 at A, SN-5 at B, SN-6 received at A and issued."""
    a, b = places
    item = factory.item(sku="PHONE-1", tracking="serial")
    stock.receive_stock(
        sku="PHONE-1", location=a.code, quantity=5, serials=["SN-1", "SN-2", "SN-3", "SN-4", "SN-6"], user="rx"
    )
    stock.receive_stock(sku="PHONE-1", location=b.code, quantity=1, serials=["SN-5"], user="rx")
    stock.issue_stock(sku="PHONE-1", location=a.code, quantity=1, serials=["SN-6"], user="px")
    return item


def where(db) -> dict[str, tuple[str, str | None]]:
    rows = db.session.execute(
        select(Serial.serial, Serial.status, Location.code).outerjoin(Location, Location.id == Serial.location_id)
    )
    return {serial: (status, code) for serial, status, code in rows}


def level(db, item, location) -> Decimal:
    found = db.session.scalar(
        select(StockLevel.quantity).where(StockLevel.item_id == item.id, StockLevel.location_id == location.id)
    )
    return found or Decimal(0)


def serials_of(db, movement_id: int) -> set[str]:
    return set(
        db.session.scalars(
            select(Serial.serial)
            .join(MovementSerial, MovementSerial.serial_id == Serial.id)
            .where(MovementSerial.movement_id == movement_id)
        )
    )


def assert_clean(db) -> None:
    assert find_ledger_mismatches() == []
    assert find_total_mismatches() == []


def line_of(view, location) -> counts.LineView:
    return next(line for line in view.lines if line.location == location.code)


def test_a_serial_count_reconciles_lost_moved_and_found_serials(db, phone, places):
    a, b = places
    count = counts.open_count(user="boss", location=a.code)
    line = line_of(counts.get_count(count.id), a)
    assert line.tracking == "serial"
    found = "SN-1\nSN-2\nSN-5\nSN-6\nSN-NEW"
    assert counts.record_counts(count_id=count.id, user="clerk", serials={line.id: found}) == 1
    view = counts.get_count(count.id)
    line = line_of(view, a)
    assert line.serials == ("SN-1", "SN-2", "SN-5", "SN-6", "SN-NEW")
    assert (line.final_count, line.system_quantity, line.variance) == (5, 4, 1)
    difference = counts.serial_differences(view)[line.id]
    assert difference.missing == ("SN-3", "SN-4")
    assert difference.elsewhere == (("SN-5", b.code),)
    assert difference.unknown == ("SN-6", "SN-NEW")

    ids = counts.approve_count(count_id=count.id, user="boss")
    assert len(ids) == 1  # the count line names the first of its ledger lines
    lines = db.session.scalars(
        select(Movement).where(Movement.reference == f"COUNT-{count.id}").order_by(Movement.id)
    ).all()
    assert [(m.kind, m.from_location_id, m.to_location_id, m.quantity) for m in lines] == [
        ("adjust", a.id, None, 2),
        ("transfer", b.id, a.id, 1),
        ("adjust", None, a.id, 2),
    ]
    assert [serials_of(db, m.id) for m in lines] == [{"SN-3", "SN-4"}, {"SN-5"}, {"SN-6", "SN-NEW"}]
    assert where(db) == {
        "SN-1": ("in_stock", a.code),
        "SN-2": ("in_stock", a.code),
        "SN-3": ("issued", None),
        "SN-4": ("issued", None),
        "SN-5": ("in_stock", a.code),
        "SN-6": ("in_stock", a.code),
        "SN-NEW": ("in_stock", a.code),
    }
    assert (level(db, phone, a), level(db, phone, b)) == (5, 0)
    assert lines[-1].to_balance == 5
    assert_clean(db)
    # The write-off is a ledger line like any other: reversing it brings exactly those units back.
    stock.reverse_movement(movement_id=lines[0].id, user="boss", reason="found them after all")
    assert where(db)["SN-3"] == ("in_stock", a.code) and level(db, phone, a) == 7
    assert_clean(db)


def test_movements_after_the_count_are_neither_lost_nor_undone(db, phone, places):
    a, b = places
    count = counts.open_count(user="boss", location=a.code)
    line = line_of(counts.get_count(count.id), a)
    counts.record_counts(count_id=count.id, user="clerk", serials={line.id: "SN-1\nSN-2\nSN-3\nSN-4"})
    # After the count was entered: SN-2 is sold, SN-7 arrives, SN-3 moves to B.
    stock.issue_stock(sku="PHONE-1", location=a.code, quantity=1, serials=["SN-2"], user="px")
    stock.receive_stock(sku="PHONE-1", location=a.code, quantity=1, serials=["SN-7"], user="rx")
    stock.transfer_stock(
        sku="PHONE-1", from_location=a.code, to_location=b.code, quantity=1, serials=["SN-3"], user="px"
    )
    counts.approve_count(count_id=count.id, user="boss")
    places_now = where(db)
    assert places_now["SN-2"] == ("issued", None)
    assert places_now["SN-7"] == ("in_stock", a.code)
    assert places_now["SN-3"] == ("in_stock", b.code)
    # Everything agreed: one zero line confirms the count.
    confirming = db.session.scalars(select(Movement).where(Movement.reference == f"COUNT-{count.id}")).all()
    assert [(m.kind, m.quantity) for m in confirming] == [("adjust", 0)]
    assert level(db, phone, a) == 3
    assert_clean(db)


def test_a_second_count_replaces_the_serials_and_none_found_counts_zero(db, phone, places):
    a, _b = places
    count = counts.open_count(user="boss", location=a.code)
    line = line_of(counts.get_count(count.id), a)
    counts.record_counts(count_id=count.id, user="clerk", serials={line.id: ["SN-1"]})
    assert counts.request_recount(count_id=count.id, user="boss") == 1
    counts.record_counts(count_id=count.id, user="clerk2", serials={line.id: []})
    line = line_of(counts.get_count(count.id), a)
    assert (line.first_count, line.second_count, line.serials) == (1, 0, ())
    counts.approve_count(count_id=count.id, user="boss")
    assert level(db, phone, a) == 0
    assert {s for s, (status, _code) in where(db).items() if status == "issued"} == {
        "SN-1",
        "SN-2",
        "SN-3",
        "SN-4",
        "SN-6",
    }
    assert_clean(db)


def test_a_count_of_chosen_items_reconciles_each_place(db, phone, places):
    a, b = places
    count = counts.open_count(user="boss", skus=["PHONE-1"])
    view = counts.get_count(count.id)
    counts.record_counts(
        count_id=count.id,
        user="clerk",
        serials={line_of(view, a).id: "SN-1\nSN-2\nSN-3\nSN-4", line_of(view, b).id: ""},
    )
    counts.approve_count(count_id=count.id, user="boss")
    assert where(db)["SN-5"] == ("issued", None)
    assert (level(db, phone, a), level(db, phone, b)) == (4, 0)
    assert_clean(db)


@pytest.mark.parametrize(
    "found, message",
    [
        ("SN-1\nSN-1", "named twice"),
        ("SN-1\n   \nSN-2,SN-1", "named twice"),
        ("TAB-1", "serial number of TAB-9"),
        ("x" * 101, "at most 100"),
        ("SN-1\tSN-2", "one line"),
    ],
)
def test_hostile_serial_entries_are_refused(db, factory, phone, places, found, message):
    a, _b = places
    factory.item(sku="TAB-9", tracking="serial")
    stock.receive_stock(sku="TAB-9", location=a.code, quantity=1, serials=["TAB-1"], user="rx")
    count = counts.open_count(user="boss", location=a.code)
    line = line_of(counts.get_count(count.id), a)
    line = next(x for x in counts.get_count(count.id).lines if x.sku == "PHONE-1")
    with pytest.raises(InvalidInput) as refused:
        counts.record_counts(count_id=count.id, user="clerk", serials={line.id: found})
    assert message in str(refused.value)
    assert line_of(counts.get_count(count.id), a).serials == ()


def test_a_serial_found_twice_in_one_count_is_refused(db, phone, places):
    a, b = places
    count = counts.open_count(user="boss", skus=["PHONE-1"])
    view = counts.get_count(count.id)
    counts.record_counts(count_id=count.id, user="clerk", serials={line_of(view, a).id: "SN-1"})
    with pytest.raises(InvalidInput, match=f"SN-1 was already found at {a.code}"):
        counts.record_counts(count_id=count.id, user="clerk", serials={line_of(view, b).id: "SN-5\nSN-1"})


def test_serial_lines_take_serials_and_other_lines_quantities(db, factory, phone, places):
    a, _b = places
    factory.item(sku="BOLT-1")
    stock.receive_stock(sku="BOLT-1", location=a.code, quantity=3, user="rx")
    count = counts.open_count(user="boss", location=a.code)
    view = counts.get_count(count.id)
    serial_line = next(x for x in view.lines if x.sku == "PHONE-1")
    bolt_line = next(x for x in view.lines if x.sku == "BOLT-1")
    with pytest.raises(InvalidInput, match="counted by its serial numbers"):
        counts.record_counts(count_id=count.id, user="clerk", lines={serial_line.id: 4})
    with pytest.raises(InvalidInput, match="not tracked by serial number"):
        counts.record_counts(count_id=count.id, user="clerk", serials={bolt_line.id: "SN-1"})
    # Scanning the SKU alone says nothing about which unit was found.
    with pytest.raises(InvalidInput, match="serial number of each unit"):
        counts.record_counts(count_id=count.id, user="clerk", found={"PHONE-1": 1})


def test_a_serial_count_cuts_back_the_reservations_its_write_offs_and_moves_leave_short(db, phone, places):
    """The physical count wins over reservations, as in adjust_stock: A's write-off cuts A's
    lines (newest first) to what is left there; the serial moved here from B cuts B's line."""
    a, b = places

    def held(reference: str, location: Location) -> reservations.ReservationView:
        return reservations.reserve(
            lines=[{"sku": "PHONE-1", "quantity": 2 if location == a else 1, "location": location.code}],
            reference=reference,
            user="erp",
        )

    older, newer, at_b = held("SO-OLD", a), held("SO-NEW", a), held("SO-B", b)
    count = counts.open_count(user="boss", location=a.code)
    line = line_of(counts.get_count(count.id), a)
    counts.record_counts(count_id=count.id, user="clerk", serials={line.id: "SN-1\nSN-5"})
    counts.approve_count(count_id=count.id, user="boss")

    # A: 4 less the 3 written off = 1, so 3 of the 4 reserved there go: SO-NEW's 2, then 1 of
    # SO-OLD's; SN-5 then arrives (2 at A, 1 held). B's one unit left, so SO-B's hold goes.
    assert {code: held_at(db, phone, place) for code, place in (("A", a), ("B", b))} == {
        "A": (Decimal(2), Decimal(1)),
        "B": (Decimal(0), Decimal(0)),
    }
    cut = {
        r.reference: (line.released, line.outstanding, line.short_reason)
        for r in (older, newer, at_b)
        for line in reservations.get_reservation(r.id).lines
    }
    assert cut == {
        "SO-NEW": (Decimal(2), Decimal(0), "count"),
        "SO-OLD": (Decimal(1), Decimal(1), "count"),
        "SO-B": (Decimal(1), Decimal(0), "count"),
    }
    reduced = db.session.scalars(
        select(OutboxEvent.reservation_id).where(OutboxEvent.kind == "reservation_reduced")
    ).all()
    assert sorted(reduced) == sorted([older.id, newer.id, at_b.id])
    report = audit_ledger()
    assert (report.mismatches, report.totals, report.reservations) == ([], [], [])


def held_at(db, item, location) -> tuple[Decimal, Decimal]:
    """(quantity, reserved) of the item's level at `location`."""
    db.session.expire_all()
    row = db.session.execute(
        select(StockLevel.quantity, StockLevel.reserved).where(
            StockLevel.item_id == item.id, StockLevel.location_id == location.id
        )
    ).one()
    return row[0], row[1]
