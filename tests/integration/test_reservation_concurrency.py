"""Reservations under contention (issue 18): stock promised to an order is never promised twice,
plain issues never take it, multi-line reservations never deadlock for good, and check-ledger
reconciles afterwards. Real threads on MariaDB (row locks), as for stock-outs; a smaller run on
SQLite where meaningful; a naive read-then-write shows the harness can fail."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import DBAPIError

from app.extensions import db
from app.models import Item, Reservation, ReservationLine, StockLevel
from app.models.types import utcnow
from app.services import picking, reservations, stock, stock_core
from app.services.errors import InsufficientStock, ReservationShort
from app.services.ledger import audit_ledger
from app.services.reservations import PickedLine
from app.services.transaction import transaction_retried, unit_of_work
from tests.integration import lock_waits
from tests.integration import test_stock_concurrency as harness
from tests.integration.test_stock_concurrency import MYSQL_ONLY, run_workers

# The stock-out harness's fixtures: a pool with a connection per thread, 64 threads on MariaDB.
busy_app = harness.busy_app
workers = harness.workers


def held(app, item) -> tuple[Decimal, Decimal]:
    """(on hand, reserved) of the item over all its levels, and as the items row keeps them."""
    with app.app_context():
        quantity, reserved = db.session.execute(
            select(StockLevel.quantity, StockLevel.reserved).where(StockLevel.item_id == item.id)
        ).one()
        kept = db.session.execute(select(Item.on_hand, Item.reserved).where(Item.id == item.id)).one()
        db.session.remove()
    assert (kept[0], kept[1]) == (quantity, reserved)
    return quantity, reserved


def ledger_report(app):
    with app.app_context():
        report = audit_ledger()
        db.session.remove()
        return report


def assert_ledger_clean(app) -> None:
    report = ledger_report(app)
    assert (report.mismatches, report.totals, report.reservations) == ([], [], [])


def try_reserve(sku: str, quantity: int, n: int, **line: str) -> int | None:
    try:
        return reservations.reserve(
            reference=f"SO-{n}", lines=[{"sku": sku, "quantity": quantity, **line}], user=f"w{n}"
        ).id
    except ReservationShort:
        return None


@MYSQL_ONLY
def test_64_concurrent_reservations_of_one_unit_against_50_reserve_exactly_50(busy_app, factory):
    item, shelf = factory.item(sku="RSV-50"), factory.location()
    factory.stock(item, shelf, 50)

    made = run_workers(busy_app, 64, lambda n, rng: try_reserve("RSV-50", 1, n))

    assert sum(1 for r in made if r is not None) == 50
    assert sum(1 for r in made if r is None) == 14
    assert held(busy_app, item) == (Decimal(50), Decimal(50))  # available = 0
    with busy_app.app_context():
        with_lines = db.session.scalar(select(db.func.count(db.func.distinct(ReservationLine.reservation_id))))
        db.session.remove()
    assert with_lines == 50
    assert_ledger_clean(busy_app)


@unit_of_work
def naive_reserve(item_id: int, location_id: int, n: int) -> int:
    """What a reservation without row locks would do: read what is reserved, decide, write."""
    level_id, quantity, reserved = db.session.execute(
        select(StockLevel.id, StockLevel.quantity, StockLevel.reserved).where(
            StockLevel.item_id == item_id, StockLevel.location_id == location_id
        )
    ).one()
    if quantity - reserved < 1:
        raise ReservationShort(reference=f"SO-{n}", short=1, lines=[])
    now = utcnow()
    reservation_id = db.session.execute(
        insert(Reservation).values(
            reference=f"SO-{n}", status="open", created_by="naive", username="naive", created_at=now, updated_at=now
        )
    ).inserted_primary_key[0]
    db.session.execute(
        insert(ReservationLine).values(
            reservation_id=reservation_id,
            request_line=1,
            item_id=item_id,
            location_id=location_id,
            quantity=1,
            picked=0,
            released=0,
        )
    )
    db.session.execute(update(StockLevel).where(StockLevel.id == level_id).values(reserved=reserved + 1))
    return reservation_id


@MYSQL_ONLY
def test_the_harness_catches_a_naive_reservation(busy_app, factory):
    """Negative control: the same load without locks promises more than the reserved amount says."""
    item, shelf = factory.item(sku="RSV-NAIVE"), factory.location()
    factory.stock(item, shelf, 50)

    def work(n, rng):
        try:
            return naive_reserve(item.id, shelf.id, n)
        except (ReservationShort, DBAPIError):  # refused, or a deadlock retried until it gave up
            return None

    made = [r for r in run_workers(busy_app, 64, work) if r is not None]
    _, reserved = held(busy_app, item)
    assert len(made) > reserved  # lines promised that the level's reserved amount never counted
    assert ledger_report(busy_app).reservations != []


def test_concurrent_reservations_and_plain_issues_never_share_a_unit(busy_app, factory, workers):
    item, shelf = factory.item(sku="RSV-MIX"), factory.location()
    factory.stock(item, shelf, 200)

    def work(n, rng: random.Random):
        reserved, issued = [], Decimal(0)
        for _ in range(40):
            quantity = rng.randint(1, 6)
            if n % 2:
                made = try_reserve("RSV-MIX", quantity, n, location=shelf.code)
                if made is not None:
                    reserved.append(made)
                continue
            try:
                stock.issue_stock(sku="RSV-MIX", location=shelf.code, quantity=quantity, user=f"w{n}")
                issued += quantity
            except InsufficientStock as short:
                assert short.available < quantity
        return reserved, issued

    results = run_workers(busy_app, workers, work)
    issued = sum((r[1] for r in results), Decimal(0))
    made = [rid for r in results for rid in r[0]]
    quantity, reserved = held(busy_app, item)
    assert quantity == 200 - issued
    assert reserved <= quantity
    assert_ledger_clean(busy_app)
    # Every promise can be kept: each reservation is picked in full from what is left.
    with busy_app.app_context():
        for reservation_id in made:
            assert reservations.issue_reservation(reservation_id=reservation_id, user="picker").status == "picked"
        db.session.remove()
    assert held(busy_app, item) == (200 - issued - reserved, Decimal(0))
    assert_ledger_clean(busy_app)


def test_multi_line_reservations_in_opposite_orders_do_not_deadlock(busy_app, factory, workers):
    a, b = factory.item(sku="RSV-A"), factory.item(sku="RSV-B")
    left, right = factory.location(), factory.location()
    for item in (a, b):
        factory.stock(item, left, 100)
        factory.stock(item, right, 100)

    def work(n, rng: random.Random):
        lines = [{"sku": "RSV-A", "quantity": rng.randint(1, 5)}, {"sku": "RSV-B", "quantity": rng.randint(1, 5)}]
        made = []
        for _ in range(6):
            order = lines if rng.random() < 0.5 else lines[::-1]
            with contextlib.suppress(ReservationShort):
                made.append(reservations.reserve(reference=f"SO-{n}", lines=order, user=f"w{n}"))
            if made and rng.random() < 0.3:
                reservations.cancel_reservation(reservation_id=made.pop().id, user=f"w{n}")
        return made

    kept = [view for views in run_workers(busy_app, workers, work) for view in views]
    for item, sku in ((a, "RSV-A"), (b, "RSV-B")):
        promised = sum((line.outstanding for v in kept for line in v.lines if line.sku == sku), Decimal(0))
        with busy_app.app_context():
            assert db.session.scalar(select(Item.reserved).where(Item.id == item.id)) == promised
            db.session.remove()
    assert_ledger_clean(busy_app)


# ---------------------------------------------------------------- merged picks that cross


class FirstLockWindow:
    """Wraps stock_core.lock_item_levels for two picks run in threads named "P1" and "P2": each,
    having taken its first level lock, waits until the other has taken its own first lock, or is
    queued in MariaDB for a lock the first one holds. That is the window in which two picks
    locking the same levels in opposite orders deadlock, made certain instead of left to timing;
    picks locking in one order never wait on each other in it (the second queues behind the
    first). A retried pick is not held again."""

    def __init__(self, real):
        self.real = real
        self.started = {name: threading.Event() for name in ("P1", "P2")}
        self.holding = {name: threading.Event() for name in ("P1", "P2")}
        self.connection_ids: dict[str, int] = {}

    def __call__(self, item_id, location_ids=None):
        me = threading.current_thread().name
        if me not in self.started or self.started[me].is_set():
            return self.real(item_id, location_ids)
        self.connection_ids[me] = db.session.connection().exec_driver_sql("SELECT CONNECTION_ID()").scalar()
        self.started[me].set()
        levels = self.real(item_id, location_ids)
        self.holding[me].set()
        other = "P2" if me == "P1" else "P1"
        assert self.started[other].wait(30), f"{other} never asked for a lock"
        deadline = time.monotonic() + 30
        # Polls MariaDB for the other pick's lock wait: no event says "queued for a row lock".
        while not self.holding[other].wait(0.01) and not self.queued(self.connection_ids[other]):
            assert time.monotonic() < deadline, f"{other} neither locked nor queued"
        return levels

    @staticmethod
    def queued(connection_id: int) -> bool:
        """The connection waits on a row lock (see lock_waits)."""
        with db.engine.connect() as conn:
            return lock_waits.waiting(conn, connection_id) > 0


def crossing_picks(app, factory) -> tuple[tuple[Item, Item], dict[str, dict[int, list[PickedLine]]]]:
    """Two merged picks over items X and Y (one unit each of four reservations): P1 picks
    reservations holding Y, then X; P2 ones holding X, then Y. Picked reservation by reservation,
    P1 locks Y before X and P2 X before Y."""
    shelf = factory.location()
    x, y = factory.item(sku="CROSS-X"), factory.item(sku="CROSS-Y")
    factory.stock(x, shelf, 10)
    factory.stock(y, shelf, 10)
    with app.app_context():
        views = [
            reservations.reserve(reference=f"SO-{n}", lines=[{"sku": sku, "quantity": 1}], user="planner")
            for n, sku in enumerate(("CROSS-Y", "CROSS-X", "CROSS-X", "CROSS-Y"))
        ]
        db.session.remove()
    picks = [{v.id: [PickedLine(v.lines[0].id, 1)] for v in pair} for pair in (views[:2], views[2:])]
    return (x, y), {"P1": picks[0], "P2": picks[1]}


def run_crossing(app, picks, finish) -> tuple[dict[str, Any], list[str]]:
    """Run finish(picks, user) for P1 and P2 in their own threads; their results and the reasons
    of every unit of work run again meanwhile."""
    reasons: list[str] = []
    results: dict[str, Any] = {}

    def count_retry(sender, reason):
        reasons.append(reason)

    def run(name: str) -> None:
        with app.app_context():
            try:
                results[name] = finish(picks[name], name.lower())
            except BaseException as exc:
                results[name] = exc
            finally:
                db.session.remove()

    transaction_retried.connect(count_retry)
    try:
        threads = [threading.Thread(target=run, args=(name,), name=name) for name in picks]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        transaction_retried.disconnect(count_retry)
    assert not any(t.is_alive() for t in threads), "a pick hung"
    return results, reasons


def finish_merged(picks, user):
    return picking.finish_pick(picks=picks, release_rest=False, user=user)


@MYSQL_ONLY
def test_crossing_merged_picks_lock_their_levels_in_one_order(busy_app, factory, monkeypatch):
    items, picks = crossing_picks(busy_app, factory)
    monkeypatch.setattr(stock_core, "lock_item_levels", FirstLockWindow(stock_core.lock_item_levels))

    results, reasons = run_crossing(busy_app, picks, finish_merged)

    assert reasons == []  # no deadlock, so nothing to run again
    for name in ("P1", "P2"):
        assert [view.status for view in results[name]] == ["picked", "picked"]
        assert [len(view.movements) for view in results[name]] == [1, 1]
    for item in items:
        assert held(busy_app, item) == (Decimal(8), Decimal(0))
    assert_ledger_clean(busy_app)


@unit_of_work
def finish_one_by_one(picks, user):
    """A merged pick as it was before lock_for_issue: each reservation's levels locked in turn."""
    return [reservations.issue_reservation(reservation_id=rid, lines=picks[rid], user=user) for rid in sorted(picks)]


@MYSQL_ONLY
def test_the_crossing_pick_harness_catches_levels_locked_reservation_by_reservation(busy_app, factory, monkeypatch):
    """Negative control: locked reservation by reservation, the same two picks deadlock (and the
    unit of work's retry hides it from the caller)."""
    items, picks = crossing_picks(busy_app, factory)
    monkeypatch.setattr(stock_core, "lock_item_levels", FirstLockWindow(stock_core.lock_item_levels))

    results, reasons = run_crossing(busy_app, picks, finish_one_by_one)

    assert reasons == ["deadlock"]
    assert all([view.status for view in results[name]] == ["picked", "picked"] for name in ("P1", "P2"))
    for item in items:
        assert held(busy_app, item) == (Decimal(8), Decimal(0))
    assert_ledger_clean(busy_app)
