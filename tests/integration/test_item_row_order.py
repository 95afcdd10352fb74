"""Multi-item writers lock the items rows they touch in item id order (stock_core.lock_items).

On MariaDB the triggers on stock_levels update the item's row at every level write, in the order
the levels are written. Two writers holding different levels of items X and Y (X and Y each at
two places), writing X then Y and Y then X, lock their levels without conflict and used to
deadlock on the items rows (the unit of work's retry hid it). Real threads on MariaDB, held in
the window where they would cross by polling MariaDB for the other's lock wait; a negative control
without the new lock shows the harness catches exactly that deadlock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import event, func, select

from app.extensions import db
from app.models import Item, StockLevel
from app.services import reservations, stock, stock_core
from app.services.reservations import PickedLine
from tests.integration import test_stock_concurrency as harness
from tests.integration.test_reservation_concurrency import (
    FirstLockWindow,
    assert_ledger_clean,
    finish_merged,
    run_crossing,
)
from tests.integration.test_stock_concurrency import MYSQL_ONLY

busy_app = harness.busy_app

THREADS = ("P1", "P2")


class FirstWriteWindow:
    """For two writers run in threads named "P1" and "P2": each, having written its first level
    (and so locked, through the trigger, its item's row, or before it all its items rows), waits
    until the other has written its own first level too, or is queued in MariaDB for a lock the
    first one holds. That is the window in which two writers updating the items rows in opposite
    orders deadlock, made certain instead of left to timing. `locking` wraps a level-locking
    function (the first call learns the thread's connection), `writing` a level-writing one. A
    retried writer is not held again."""

    def __init__(self) -> None:
        self.started = {name: threading.Event() for name in THREADS}
        self.written = {name: threading.Event() for name in THREADS}
        self.connection_ids: dict[str, int] = {}

    def locking(self, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            me = threading.current_thread().name
            if me in self.started and not self.started[me].is_set():
                connection = db.session.connection()
                self.connection_ids[me] = connection.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
                self.started[me].set()
            return real(*args, **kwargs)

        return wrapper

    def writing(self, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = real(*args, **kwargs)
            me = threading.current_thread().name
            if me not in self.written or self.written[me].is_set():
                return result
            self.written[me].set()
            other = "P2" if me == "P1" else "P1"
            assert self.started[other].wait(30), f"{other} never locked a level"
            deadline = time.monotonic() + 30
            # Polls MariaDB for the other writer's lock wait: no event says "queued for a row lock".
            while not self.written[other].wait(0.01) and not FirstLockWindow.queued(self.connection_ids[other]):
                assert time.monotonic() < deadline, f"{other} neither wrote nor queued"
            return result

        return wrapper


def held(app, item) -> tuple[Decimal, Decimal]:
    """(on hand, reserved) of the item summed over its levels, and as the items row keeps them."""
    with app.app_context():
        summed = db.session.execute(
            select(func.sum(StockLevel.quantity), func.sum(StockLevel.reserved)).where(StockLevel.item_id == item.id)
        ).one()
        kept = db.session.execute(select(Item.on_hand, Item.reserved).where(Item.id == item.id)).one()
        db.session.remove()
    assert tuple(kept) == tuple(summed)
    return kept[0], kept[1]


def two_items_at_two_places(app, factory):
    """Items X and Y (X's id lower), 10 of each at places A and B."""
    a, b = factory.location(), factory.location()
    x, y = factory.item(sku="ROW-X"), factory.item(sku="ROW-Y")
    assert x.id < y.id
    for item in (x, y):
        for place in (a, b):
            factory.stock(item, place, 10)
    return (x, y), (a, b)


# ---------------------------------------------------------------- merged picks


def crossing_picks_at_two_places(app, factory):
    """P1 picks reservations holding Y at A, then X at A; P2 ones holding X at B, then Y at B.
    Their levels differ; written reservation by reservation, P1 writes Y's row before X's and P2
    X's before Y's."""
    items, (a, b) = two_items_at_two_places(app, factory)
    with app.app_context():
        views = [
            reservations.reserve(
                reference=f"SO-{n}", lines=[{"sku": sku, "quantity": 1, "location": place.code}], user="planner"
            )
            for n, (sku, place) in enumerate((("ROW-Y", a), ("ROW-X", a), ("ROW-X", b), ("ROW-Y", b)))
        ]
        db.session.remove()
    picks = [{v.id: [PickedLine(v.lines[0].id, 1)] for v in pair} for pair in (views[:2], views[2:])]
    return items, {"P1": picks[0], "P2": picks[1]}


def hold_pick_writes(monkeypatch) -> None:
    window = FirstWriteWindow()
    monkeypatch.setattr(stock_core, "lock_item_levels", window.locking(stock_core.lock_item_levels))
    monkeypatch.setattr(stock, "store_held", window.writing(stock.store_held))


def assert_picked(busy_app, items, results) -> None:
    for name in THREADS:
        assert [view.status for view in results[name]] == ["picked", "picked"]
        assert [len(view.movements) for view in results[name]] == [1, 1]
    for item in items:
        assert held(busy_app, item) == (Decimal(18), Decimal(0))
    assert_ledger_clean(busy_app)


@MYSQL_ONLY
def test_crossing_merged_picks_at_different_places_lock_items_rows_in_one_order(busy_app, factory, monkeypatch):
    items, picks = crossing_picks_at_two_places(busy_app, factory)
    hold_pick_writes(monkeypatch)

    results, reasons = run_crossing(busy_app, picks, finish_merged)

    assert reasons == []  # no deadlock, so nothing to run again
    assert_picked(busy_app, items, results)


@MYSQL_ONLY
def test_without_the_items_lock_crossing_merged_picks_deadlock(busy_app, factory, monkeypatch):
    """Negative control: without lock_items the same two picks deadlock on the items rows (and
    the unit of work's retry hides it from the caller)."""
    items, picks = crossing_picks_at_two_places(busy_app, factory)
    hold_pick_writes(monkeypatch)
    monkeypatch.setattr(stock_core, "lock_items", lambda item_ids: None)

    results, reasons = run_crossing(busy_app, picks, finish_merged)

    assert reasons == ["deadlock"]
    assert_picked(busy_app, items, results)


# ---------------------------------------------------------------- multi-line issues


def crossing_issues(items, places) -> dict[str, list[dict[str, Any]]]:
    """P1 issues Y, then X at A; P2 X, then Y at B."""
    (x, y), (a, b) = items, places
    return {
        "P1": [{"sku": y.sku, "location": a.code, "quantity": 1}, {"sku": x.sku, "location": a.code, "quantity": 1}],
        "P2": [{"sku": x.sku, "location": b.code, "quantity": 1}, {"sku": y.sku, "location": b.code, "quantity": 1}],
    }


def issue(lines, user):
    return stock.issue_lines(lines=lines, user=user)


def hold_issue_writes(monkeypatch) -> None:
    window = FirstWriteWindow()
    monkeypatch.setattr(stock, "lock_level", window.locking(stock.lock_level))
    monkeypatch.setattr(stock, "store_level", window.writing(stock.store_level))


def assert_issued(busy_app, items, places, results) -> None:
    (x, y), (a, b) = items, places
    # The ledger lines and the movements returned keep the caller's line order.
    assert [(m.item_id, m.from_location_id) for m in results["P1"]] == [(y.id, a.id), (x.id, a.id)]
    assert [(m.item_id, m.from_location_id) for m in results["P2"]] == [(x.id, b.id), (y.id, b.id)]
    for name in THREADS:
        ids = [m.id for m in results[name]]
        assert ids == sorted(ids)
    for item in items:
        assert held(busy_app, item) == (Decimal(18), Decimal(0))
    assert_ledger_clean(busy_app)


@MYSQL_ONLY
def test_crossing_multi_line_issues_at_different_places_lock_items_rows_in_one_order(busy_app, factory, monkeypatch):
    items, places = two_items_at_two_places(busy_app, factory)
    hold_issue_writes(monkeypatch)

    results, reasons = run_crossing(busy_app, crossing_issues(items, places), issue)

    assert reasons == []
    assert_issued(busy_app, items, places, results)


@MYSQL_ONLY
def test_without_the_items_lock_crossing_multi_line_issues_deadlock(busy_app, factory, monkeypatch):
    """Negative control: without lock_items the same two issues deadlock on the items rows."""
    items, places = two_items_at_two_places(busy_app, factory)
    hold_issue_writes(monkeypatch)
    monkeypatch.setattr(stock, "lock_items", lambda item_ids: None)

    results, reasons = run_crossing(busy_app, crossing_issues(items, places), issue)

    assert reasons == ["deadlock"]
    assert_issued(busy_app, items, places, results)


# ---------------------------------------------------------------- what it costs


def items_locks(app, call: Callable[[], Any]) -> list[str]:
    """The statements `call` sent that lock items rows FOR UPDATE."""
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        sent.append(" ".join(statement.split()))

    with app.app_context():
        engine = db.engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            call()
        finally:
            event.remove(engine, "before_cursor_execute", record)
            db.session.remove()
    return [s for s in sent if s.startswith("SELECT items.id") and s.endswith("FOR UPDATE")]


@MYSQL_ONLY
def test_only_a_writer_of_several_items_locks_their_rows(busy_app, factory):
    """One item (at two places) runs no extra statement; two items one, naming both ids."""
    (x, y), (a, b) = two_items_at_two_places(busy_app, factory)
    one = [{"sku": x.sku, "location": a.code, "quantity": 1}, {"sku": x.sku, "location": b.code, "quantity": 1}]
    two = [{"sku": y.sku, "location": a.code, "quantity": 1}, {"sku": x.sku, "location": b.code, "quantity": 1}]

    assert items_locks(busy_app, lambda: stock.issue_lines(lines=one, user="clerk")) == []
    assert items_locks(busy_app, lambda: stock.issue_stock(sku=x.sku, location=a.code, quantity=1, user="c")) == []
    locks = items_locks(busy_app, lambda: stock.issue_lines(lines=two, user="clerk"))

    assert len(locks) == 1
    assert "ORDER BY items.id" in locks[0]
