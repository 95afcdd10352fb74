"""The ledger audit reads one consistent snapshot, blocks no writer and reports only what a second
look confirms: proved with a real writer committing while the audit is paused between reads."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal

from sqlalchemy import event, select, update

from app.extensions import db
from app.models import Movement, StockLevel
from app.services import stock
from app.services.ledger import LedgerReport, audit_ledger

WAIT = 30


@contextmanager
def paused_after_first_read(app) -> Iterator[tuple[threading.Event, threading.Event, list[LedgerReport]]]:
    """Run audit_ledger() in a thread that stops right after its first SELECT returned, until
    `resume` is set; yields (paused, resume, [report])."""
    paused, resume = threading.Event(), threading.Event()
    reports: list[LedgerReport] = []
    selects: list[str] = []
    auditor: threading.Thread

    def hold(_conn, _cursor, statement, *_args) -> None:
        if threading.current_thread() is auditor and statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)
            if len(selects) == 1:
                paused.set()
                assert resume.wait(WAIT)

    def audit() -> None:
        with app.app_context():
            reports.append(audit_ledger())

    with app.app_context():
        engine = db.engine
    auditor = threading.Thread(target=audit)
    event.listen(engine, "after_cursor_execute", hold)
    try:
        auditor.start()
        assert paused.wait(WAIT), "the audit never read"
        yield paused, resume, reports
    finally:
        resume.set()
        auditor.join(WAIT)
        event.remove(engine, "after_cursor_execute", hold)
    assert not auditor.is_alive() and len(selects) >= 2  # the pause fell between two of its reads


def in_thread(app, work: Callable[[], object]) -> object:
    """Run `work` in its own thread and connection; fail if it does not finish (a blocked writer)."""
    done: list[object] = []
    writer = threading.Thread(target=lambda: done.append(_in_context(app, work)))
    writer.start()
    writer.join(WAIT)
    assert done, "the writer was blocked by the audit"
    return done[0]


def _in_context(app, work: Callable[[], object]) -> object:
    with app.app_context():
        try:
            return work()
        finally:
            db.session.remove()


def test_a_movement_committing_during_the_audit_is_never_reported_and_is_not_blocked(app, factory):
    item, shelf, bin_ = factory.item(sku="RACE-1"), factory.location(), factory.location()
    factory.stock(item, shelf, 10)

    with paused_after_first_read(app) as (_paused, resume, reports):
        moved = in_thread(
            app,
            lambda: (
                stock.transfer_stock(
                    sku="RACE-1", from_location=shelf.code, to_location=bin_.code, quantity=4, user="clerk"
                ).id
            ),
        )
        in_thread(app, lambda: stock.issue_stock(sku="RACE-1", location=shelf.code, quantity=1, user="clerk"))
        resume.set()

    assert reports == [LedgerReport(mismatches=[], totals=[], reservations=[])]
    with app.app_context():
        assert db.session.get(Movement, moved).to_balance == Decimal(4)
        assert audit_ledger() == LedgerReport(mismatches=[], totals=[], reservations=[])


def test_a_suspect_that_reconciles_at_the_second_look_is_not_reported(app, factory):
    item, shelf = factory.item(sku="HEAL-1"), factory.location()
    factory.stock(item, shelf, 10)
    tamper(app, item.id, shelf.id, Decimal(7))

    with paused_after_first_read(app) as (_paused, resume, reports):
        tamper(app, item.id, shelf.id, Decimal(10))
        resume.set()

    assert reports[0].mismatches == []


def test_a_real_mismatch_is_confirmed_and_reported_with_its_figures(app, factory):
    good, bad, shelf = factory.item(sku="OK-1"), factory.item(sku="BAD-1"), factory.location()
    factory.stock(good, shelf, 3)
    factory.stock(bad, shelf, 5)
    in_thread(app, lambda: stock.issue_stock(sku="BAD-1", location=shelf.code, quantity=2, user="clerk"))
    tamper(app, bad.id, shelf.id, Decimal(9))

    with app.app_context():
        report = audit_ledger()

    [wrong] = report.mismatches
    assert (wrong.sku, wrong.location) == ("BAD-1", shelf.code)
    assert (wrong.on_hand, wrong.from_ledger, wrong.last_balance) == (Decimal(9), Decimal(3), Decimal(3))
    assert report.totals == []  # the trigger kept items.on_hand equal to the tampered level


def tamper(app, item_id: int, location_id: int, quantity: Decimal) -> None:
    def write() -> None:
        db.session.execute(
            update(StockLevel)
            .where(StockLevel.item_id == item_id, StockLevel.location_id == location_id)
            .values(quantity=quantity)
        )
        db.session.commit()
        assert db.session.scalar(select(StockLevel.quantity).where(StockLevel.item_id == item_id)) == quantity

    in_thread(app, write)
