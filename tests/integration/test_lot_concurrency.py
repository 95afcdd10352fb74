"""Lots and serials under contention (issue 17): many workers issuing first-expired-first-out
from one item's lots never take a lot below zero, never skip an earlier lot, and the ledger
reconciles per lot; a serial is issued once; picks naming lots in opposite orders never deadlock.
MariaDB is where this means something (row locks); SQLite runs a smaller version."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select, update

from app.extensions import db
from app.models import Lot, Movement, Serial, StockLevel
from app.models.types import utcnow
from app.services import stock
from app.services.errors import InsufficientStock, SerialNotHere
from app.services.transaction import transaction_retried
from tests.integration.test_stock_concurrency import (  # noqa: F401 (fixtures)
    MYSQL_ONLY,
    assert_ledger_clean,
    busy_app,
    drain,
    run_workers,
    workers,
)

TODAY = utcnow().date()


def lot_levels(app, item) -> dict[str, Decimal]:
    with app.app_context():
        rows = db.session.execute(
            select(Lot.code, StockLevel.quantity)
            .join(Lot, Lot.id == StockLevel.lot_id)
            .where(StockLevel.item_id == item.id)
        )
        levels = dict(rows.tuples().all())
        db.session.remove()
        return levels


def test_concurrent_fefo_issues_take_the_earliest_lot_first_and_never_oversell_a_lot(busy_app, factory, workers):
    item, shelf = factory.item(sku="FEFO-HOT", tracking="lot", requires_expiry=True), factory.location()
    # Five lots, received out of expiry order: E1 expires first, E5 last.
    received = {"E3": 300, "E1": 150, "E5": 250, "E2": 200, "E4": 100}
    expiry = {code: TODAY + timedelta(days=10 * int(code[1])) for code in received}
    for code, quantity in received.items():
        factory.stock(item, shelf, quantity, lot=code, expiry=expiry[code])

    def work(n, rng):
        return drain(lambda q: stock.issue_stock(sku="FEFO-HOT", location=shelf.code, quantity=q, user=f"w{n}"), rng)

    issued = sum(run_workers(busy_app, workers, work))
    left = lot_levels(busy_app, item)
    assert all(quantity >= 0 for quantity in left.values())
    assert issued == sum(received.values()) - sum(left.values())
    assert sum(left.values()) < 25  # every worker kept trying until the stock ran out
    with busy_app.app_context():
        codes = dict(db.session.execute(select(Lot.id, Lot.code)).tuples().all())
        lines = db.session.scalars(select(Movement).where(Movement.item_id == item.id).order_by(Movement.id)).all()
        db.session.remove()
    # Replayed in ledger order, every issue line took its lot only once all earlier lots were empty.
    balance = {code: Decimal(0) for code in received}
    for line in lines:
        code = codes[line.lot_id]
        if line.kind == "receive":
            balance[code] += line.quantity
            continue
        assert line.kind == "issue"
        earlier = [c for c in balance if expiry[c] < expiry[code] and balance[c] > 0]
        assert earlier == [], f"line #{line.id} took {code} while {earlier} still held stock"
        balance[code] -= line.quantity
        assert balance[code] == line.from_balance >= 0
    assert balance == left
    assert_ledger_clean(busy_app)


def test_two_clients_issuing_the_same_serial_one_succeeds(busy_app, factory, workers):
    item, shelf = factory.item(sku="SER-HOT", tracking="serial"), factory.location()
    serials = [f"SN-{n:03d}" for n in range(8)]
    factory.stock(item, shelf, len(serials), serials=serials)

    def work(n, rng):
        try:
            stock.issue_stock(sku="SER-HOT", location=shelf.code, quantity=1, serials=[serials[n % 8]], user=f"w{n}")
        except SerialNotHere:
            return None
        return serials[n % 8]

    won = [serial for serial in run_workers(busy_app, workers, work) if serial is not None]
    assert sorted(won) == serials  # each serial issued exactly once, whoever asked first
    with busy_app.app_context():
        assert db.session.scalar(select(StockLevel.quantity).where(StockLevel.item_id == item.id)) == 0
        db.session.remove()
    assert_ledger_clean(busy_app)


def test_picks_naming_lots_in_opposite_orders_do_not_deadlock(busy_app, factory, workers):
    item, left, right = factory.item(sku="LOT-PAIR", tracking="lot"), factory.location(), factory.location()
    for place in (left, right):
        for code in ("A", "B"):
            factory.stock(item, place, 400, lot=code)
    reasons: list[str] = []

    def count_retry(sender, reason):
        reasons.append(reason)

    def work(n, rng):
        picked = Decimal(0)
        for _ in range(8):
            lines = [
                stock.PickLine("LOT-PAIR", left.code, rng.randint(1, 9), lot="B"),
                stock.PickLine("LOT-PAIR", right.code, rng.randint(1, 9), lot="A"),
                stock.PickLine("LOT-PAIR", left.code, rng.randint(1, 9), lot="A"),
            ]
            if n % 2:
                lines.reverse()  # half the workers name the lots and places the other way round
            try:
                stock.issue_lines(lines=lines, user=f"w{n}")
            except InsufficientStock:
                continue
            picked += sum(Decimal(line.quantity) for line in lines)
        return picked

    transaction_retried.connect(count_retry)
    try:
        picked = sum(run_workers(busy_app, workers, work))
    finally:
        transaction_retried.disconnect(count_retry)
    assert "deadlock" not in reasons
    with busy_app.app_context():
        held = db.session.scalars(select(StockLevel.quantity).where(StockLevel.item_id == item.id)).all()
        db.session.remove()
    assert sum(held) == 1600 - picked and min(held) >= 0
    assert_ledger_clean(busy_app)


@MYSQL_ONLY
def test_the_serial_harness_fails_without_the_serial_row_lock(busy_app, factory, workers):
    """The negative control: a serial checked by a plain read (no lock) before it is marked issued
    goes to several workers: the harness above can fail."""
    item, shelf = factory.item(sku="SER-NAIVE", tracking="serial"), factory.location()
    factory.stock(item, shelf, 1, serials=["ONLY"])

    def work(n, rng):
        session = db.session()
        row = session.execute(select(Serial.id, Serial.status).where(Serial.serial == "ONLY")).one()
        if row.status != "in_stock":
            session.rollback()
            return 0
        time.sleep(0.002)  # the gap every real request has between its read and its write
        session.execute(update(Serial).where(Serial.id == row.id).values(status="issued"))
        session.commit()
        return 1

    assert sum(run_workers(busy_app, workers, work)) > 1
