"""An item's tracking changes only while it holds no stock (issue 17), and that holds under
concurrency: an edit of the tracking racing a first receipt never leaves stock without lots under a
lot-tracked item. The edit decides "no stock held" under the item's row lock, and a receipt reads
the tracking again under that lock once its level is locked (stock.\\_recheck_tracking).

MariaDB only for the races (SQLite runs one writer at a time). Each interleaving is forced, not
hoped for: the receipt pauses after reading the tracking until the edit has committed, or the edit
pauses holding the item row until the receipt waits on it (seen in information_schema). The
negative controls run the same interleavings without the recheck and show the damage it prevents."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Item, StockLevel
from app.services import items, stock
from app.services.errors import IrreversibleMovement, LotRequired
from tests.integration import lock_waits

MYSQL_ONLY = pytest.mark.parametrize("backend", [pytest.param("mysql", marks=pytest.mark.mysql)], indirect=True)
WAIT = 30  # seconds: only reached when something hangs


class Outcome:
    """What a thread's transaction returned or raised."""

    value: Any = None
    error: BaseException | None = None


def in_thread(app: Any, work: Callable[[], Any]) -> tuple[threading.Thread, Outcome]:
    outcome = Outcome()

    def run() -> None:
        with app.app_context():
            try:
                outcome.value = work()
            except BaseException as exc:  # handed back to the test
                outcome.error = exc
            finally:
                db.session.remove()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def finish(thread: threading.Thread) -> None:
    thread.join(timeout=WAIT)
    assert not thread.is_alive(), "a transaction hung"


def untracked_stock(app: Any, sku: str) -> tuple[str, Decimal]:
    """The item's tracking and the quantity it holds without a lot."""
    with app.app_context():
        item = db.session.scalar(select(Item).where(Item.sku == sku))
        assert item is not None
        held = db.session.scalar(
            select(StockLevel.quantity).where(StockLevel.item_id == item.id, StockLevel.lot_key == 0)
        )
        db.session.remove()
        return item.tracking, held or Decimal(0)


def wait_for_lock_wait(
    app: Any, waiter: threading.Thread | None = None, outcome: Outcome | None = None, holder: Outcome | None = None
) -> None:
    """Return once some transaction waits on a row lock (the receipt, on the item row); fail at
    once, with its error (and the lock holder's, and how long it took), when the `waiter` thread
    ends instead."""
    started = time.monotonic()
    with app.app_context():
        waited = threading.Event()
        for _ in range(WAIT * 100):
            if waiter is not None and not waiter.is_alive():
                pytest.fail(
                    f"it never waited: {outcome.error if outcome else None!r}, the holder's outcome "
                    f"{holder.error if holder else None!r}, after {time.monotonic() - started:.1f} s"
                )
            count = lock_waits.waiting(db.session.connection())
            db.session.rollback()
            if count:
                break
            waited.wait(0.01)  # polling the server's lock table, not guessing a duration
        else:
            pytest.fail("the receipt never waited on the edit's lock")
        db.session.remove()


@pytest.fixture(params=["recheck", "no_recheck"])
def recheck(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[bool]:
    """With the recheck (the fix), and without it (the negative control)."""
    if request.param == "no_recheck":
        monkeypatch.setattr(stock, "_recheck_tracking", lambda _items: None)
    yield request.param == "recheck"


@MYSQL_ONLY
def test_edit_committed_between_a_receipts_read_and_its_lock(app, factory, monkeypatch, recheck):
    item, shelf = factory.item(sku="RACE-A"), factory.location()
    resolved, edited = threading.Event(), threading.Event()
    real = stock._resolve_pair

    def resolve_then_pause(sku: str, code: str) -> Any:
        found = real(sku, code)
        if not resolved.is_set():  # the first run only: a retry reads on without pausing
            resolved.set()
            assert edited.wait(WAIT)
        return found

    monkeypatch.setattr(stock, "_resolve_pair", resolve_then_pause)
    receipt, outcome = in_thread(
        app, lambda: stock.receive_stock(sku=item.sku, location=shelf.code, quantity=5, user="clerk")
    )
    assert resolved.wait(WAIT)
    with app.app_context():  # the receipt has read "none" and holds no lock yet: the edit goes through
        items.update_item(sku=item.sku, tracking="lot")
        db.session.remove()
    edited.set()
    finish(receipt)
    tracking, held = untracked_stock(app, item.sku)
    assert tracking == "lot"
    if recheck:
        assert isinstance(outcome.error, LotRequired)  # run again, the receipt is told the truth
        assert held == 0
    else:
        assert outcome.error is None and held == 5  # the race: untracked stock under a lot item


@MYSQL_ONLY
def test_receipt_arriving_while_the_edit_holds_the_item(app, factory, monkeypatch, recheck):
    item, shelf = factory.item(sku="RACE-B"), factory.location()
    checked, release = threading.Event(), threading.Event()
    real = items.check_item

    def check_then_pause(**fields: Any) -> Any:
        found = real(**fields)
        checked.set()  # update_item holds the item row, and has read on_hand = 0
        assert release.wait(WAIT)
        return found

    monkeypatch.setattr(items, "check_item", check_then_pause)
    edit, edit_outcome = in_thread(app, lambda: items.update_item(sku=item.sku, tracking="lot"))
    assert checked.wait(WAIT)
    receipt, outcome = in_thread(
        app, lambda: stock.receive_stock(sku=item.sku, location=shelf.code, quantity=5, user="clerk")
    )
    # The receipt waits on the item row: the recheck, or else the trigger.
    wait_for_lock_wait(app, receipt, outcome, edit_outcome)
    release.set()
    finish(edit)
    finish(receipt)
    assert edit_outcome.error is None
    tracking, held = untracked_stock(app, item.sku)
    assert tracking == "lot"
    if recheck:
        assert isinstance(outcome.error, LotRequired)
        assert held == 0
    else:
        assert outcome.error is None and held == 5


@MYSQL_ONLY
def test_receipt_first_keeps_the_tracking(app, factory, monkeypatch):
    """The other order: the receipt holds the item row (its recheck) when the edit asks for it;
    the edit then sees the stock and is refused."""
    item, shelf = factory.item(sku="RACE-C"), factory.location()
    locked, release = threading.Event(), threading.Event()
    real = stock._recheck_tracking

    def recheck_then_pause(found: Any) -> None:
        real(found)
        locked.set()
        assert release.wait(WAIT)

    monkeypatch.setattr(stock, "_recheck_tracking", recheck_then_pause)
    receipt, outcome = in_thread(
        app, lambda: stock.receive_stock(sku=item.sku, location=shelf.code, quantity=5, user="clerk")
    )
    assert locked.wait(WAIT)
    edit, edit_outcome = in_thread(app, lambda: items.update_item(sku=item.sku, tracking="lot"))
    wait_for_lock_wait(app, edit, edit_outcome)
    release.set()
    finish(receipt)
    finish(edit)
    assert outcome.error is None
    assert type(edit_outcome.error).__name__ == "TrackingLocked"
    assert untracked_stock(app, item.sku) == ("none", Decimal(5))


def test_a_reversal_never_puts_back_stock_that_no_longer_fits(app, factory):
    """Issue everything, change the tracking (allowed: nothing held), reverse the issue: the
    untracked units would land under a lot-tracked item, so the reversal is refused."""
    item, shelf = factory.item(sku="RACE-D"), factory.location()
    factory.stock(item, shelf, 3)
    with app.app_context():
        issued = stock.issue_stock(sku=item.sku, location=shelf.code, quantity=3, user="clerk")
        items.update_item(sku=item.sku, tracking="lot")
        with pytest.raises(IrreversibleMovement):
            stock.reverse_movement(movement_id=issued.id, user="manager", reason="wrong order")
        db.session.remove()
    assert untracked_stock(app, item.sku) == ("lot", Decimal(0))
