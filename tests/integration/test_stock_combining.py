"""Combined stock-outs (issue 19) under real concurrency on MariaDB: many clients on one hot stock
level never oversell and every line's balance follows the ledger's order; idempotent replays
return the original line; a combiner killed (its process) after applying a batch but before its
COMMIT loses nothing and applies nothing twice; and a combiner that forgets to mark what it applied
is caught (the negative control)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from app.extensions import db
from app.models import Movement, StockOutIntent
from app.models.types import utcnow
from app.services import combining, stock
from app.services.errors import IdempotencyConflict, InsufficientStock
from app.services.transaction import transaction_retried
from tests.integration.test_stock_concurrency import assert_ledger_clean, level, run_workers

pytestmark = pytest.mark.parametrize("backend", [pytest.param("mysql", marks=pytest.mark.mysql)], indirect=True)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def combining_app(make_app):
    """Combining on, whatever INVENTORY_COMBINE_STOCK_OUTS the run was given, with a connection
    for every worker thread."""
    return make_app(INVENTORY_COMBINE_STOCK_OUTS=True, SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 70, "max_overflow": 10})


@pytest.fixture
def batch_sizes() -> Iterator[list[int]]:
    sizes: list[int] = []

    def seen(sender: Any, size: int) -> None:
        sizes.append(size)

    combining.stock_outs_combined.connect(seen)
    yield sizes
    combining.stock_outs_combined.disconnect(seen)


def issue_lines(app, item) -> list[Movement]:
    with app.app_context():
        lines = db.session.scalars(
            select(Movement).where(Movement.item_id == item.id, Movement.kind == "issue").order_by(Movement.id)
        ).all()
        db.session.remove()
        return list(lines)


def intents(app) -> dict[str, int]:
    with app.app_context():
        rows = db.session.execute(select(StockOutIntent.status, func.count()).group_by(StockOutIntent.status))
        counted = dict(rows.tuples().all())
        db.session.remove()
        return counted


def assert_balances_follow_the_ledger(lines: list[Movement], start: Decimal) -> None:
    """Replayed in id order, each line's balance after is the one before it minus its quantity."""
    balance = start
    for line in lines:
        balance -= line.quantity
        assert line.from_balance == balance, f"line #{line.id}"


def test_64_clients_on_one_hot_sku_take_exactly_its_1000_units(combining_app, factory, batch_sizes):
    item, shelf = factory.item(sku="HOT-64"), factory.location()
    factory.stock(item, shelf, 1000)

    def work(n, rng):
        taken, refused = 0, []
        while True:
            try:
                stock.issue_stock(sku="HOT-64", location=shelf.code, quantity=1, user=f"w{n}", reference=f"R{n}")
            except InsufficientStock as short:
                refused.append((short.status, short.available))
                return taken, refused
            taken += 1

    results = run_workers(combining_app, 64, work)
    assert sum(taken for taken, _ in results) == 1000
    assert all(refused == [(409, Decimal(0))] for _, refused in results)  # one 409 each, once empty
    lines = issue_lines(combining_app, item)
    assert len(lines) == 1000
    assert_balances_follow_the_ledger(lines, Decimal(1000))
    assert level(combining_app, item, shelf) == 0
    assert_ledger_clean(combining_app)
    assert max(batch_sizes) > 1  # requests were applied by another's transaction
    assert "pending" not in intents(combining_app)


def test_a_short_stock_out_is_refused_alone_while_the_others_in_its_batch_go_through(
    combining_app, factory, batch_sizes
):
    item, shelf = factory.item(sku="HOT-MIX"), factory.location()
    factory.stock(item, shelf, 100)

    def work(n, rng):
        quantity = 60 if n % 8 == 0 else 3  # the 60s cannot all fit
        try:
            return stock.issue_stock(sku="HOT-MIX", location=shelf.code, quantity=quantity, user=f"w{n}").from_balance
        except InsufficientStock as short:
            assert short.available < quantity
            return None

    results = run_workers(combining_app, 32, work)
    lines = issue_lines(combining_app, item)
    assert len(lines) == sum(r is not None for r in results)
    assert sorted(r for r in results if r is not None) == sorted(m.from_balance for m in lines)
    assert_balances_follow_the_ledger(lines, Decimal(100))
    assert level(combining_app, item, shelf) == 100 - sum(m.quantity for m in lines)
    assert_ledger_clean(combining_app)


def test_concurrent_replays_of_one_key_return_the_original_line(combining_app, factory, batch_sizes):
    item, shelf = factory.item(sku="ONCE-HOT"), factory.location()
    factory.stock(item, shelf, 100)
    keyed = dict(sku="ONCE-HOT", location=shelf.code, quantity=7, user="api", reference="SO-1")

    def work(n, rng):
        if n % 2:  # the other half keeps the level hot with stock-outs of their own
            return stock.issue_stock(sku="ONCE-HOT", location=shelf.code, quantity=1, user=f"w{n}").id
        return ("keyed", stock.issue_stock(**keyed, idempotency_key="order-1").id)

    results = run_workers(combining_app, 16, work)
    keyed_ids = {r[1] for r in results if isinstance(r, tuple)}
    assert len(keyed_ids) == 1
    with combining_app.app_context():
        again = stock.issue_stock(**keyed, idempotency_key="order-1").id
        with pytest.raises(IdempotencyConflict):
            stock.issue_stock(**{**keyed, "quantity": 8}, idempotency_key="order-1")
        db.session.remove()
    assert again in keyed_ids
    lines = issue_lines(combining_app, item)
    assert [m.quantity for m in lines].count(Decimal(7)) == 1
    assert level(combining_app, item, shelf) == 100 - 7 - 8  # eight stock-outs of 1
    assert_ledger_clean(combining_app)


# ---------------------------------------------------------------- a combiner killed mid-batch

# The victim: one stock-out in its own process, which stops (1) once it holds the level's lock
# (free: it takes it without an intent), until told to go on, and (2) once it has applied and
# marked the intents waiting behind it and its own stock-out, before its COMMIT: killed there.
VICTIM = textwrap.dedent(
    """
    import sys
    from app import create_app
    from app.services import combining, stock, stock_core
    from tests.conftest import make_config

    real_lock = stock_core.lock_level

    def lock(*args, **kwargs):
        level = real_lock(*args, **kwargs)
        print("VICTIM locked", flush=True)
        sys.stdin.readline()
        return level

    def applied(size):
        print("VICTIM applied", size, flush=True)
        sys.stdin.readline()  # killed here

    stock_core.lock_level, combining._announce_batch = lock, applied
    app = create_app(make_config(sys.argv[1], INVENTORY_COMBINE_STOCK_OUTS=True))
    with app.app_context():
        stock.issue_stock(sku=sys.argv[2], location=sys.argv[3], quantity=50, user="victim")
    """
)


def said(victim: subprocess.Popen[str]) -> list[str]:
    """The victim's next marker line (its log lines share its stdout)."""
    assert victim.stdout is not None
    for line in victim.stdout:
        if line.startswith("VICTIM "):
            return line.split()[1:]
    raise AssertionError(f"the victim ended ({victim.wait(5)}) without a word")


def start_threads(app, count: int, work: Callable[[int], Any]) -> tuple[list[threading.Thread], list[Any]]:
    results: list[Any] = [None] * count

    def run(n: int) -> None:
        with app.app_context():
            try:
                results[n] = work(n)
            except BaseException as exc:  # reported by the test
                results[n] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    return threads, results


def wait_for_pending(app, count: int) -> None:
    """Until `count` intents are pending (each client has committed its intent and waits for the lock)."""
    deadline = time.monotonic() + 30
    while intents(app).get("pending", 0) < count:
        assert time.monotonic() < deadline, f"only {intents(app)} intents"
        time.sleep(0.01)


def test_a_combiner_killed_before_its_commit_loses_nothing_and_applies_nothing_twice(
    combining_app, factory, database_url
):
    item, shelf = factory.item(sku="KILL-1"), factory.location()
    factory.stock(item, shelf, 100)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    victim = subprocess.Popen(
        [sys.executable, "-c", VICTIM, database_url, "KILL-1", shelf.code],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert said(victim) == ["locked"]
        threads, results = start_threads(
            combining_app,
            6,
            lambda n: stock.issue_stock(sku="KILL-1", location=shelf.code, quantity=n + 1, user=f"w{n}"),
        )
        wait_for_pending(combining_app, 6)  # six clients waiting behind the victim's lock
        victim.stdin.write("go\n")
        victim.stdin.flush()
        assert said(victim) == ["applied", "7"]  # their six stock-outs and its own
        assert level(combining_app, item, shelf) == 100  # applied, not committed: nothing shows
        victim.send_signal(signal.SIGKILL)
        victim.wait(30)
        for thread in threads:
            thread.join(60)
    finally:
        victim.kill()
    assert all(isinstance(r, Movement) for r in results), results
    lines = issue_lines(combining_app, item)
    # The six clients' stock-outs, each once; the dead request's own (it had no intent: the lock
    # was free) went with its transaction, as on the plain path.
    assert sorted(m.quantity for m in lines) == [1, 2, 3, 4, 5, 6]
    assert sorted(m.id for m in results) == [m.id for m in lines]
    assert level(combining_app, item, shelf) == 100 - 21
    assert_balances_follow_the_ledger(lines, Decimal(100))
    assert intents(combining_app) == {"done": 6}
    assert_ledger_clean(combining_app)


def test_the_harness_catches_a_combiner_that_does_not_mark_what_it_applied(
    combining_app, factory, monkeypatch, database_url
):
    """The negative control: intents applied but left pending are applied again by the next lock
    holder, and the counts above would fail."""
    monkeypatch.setattr(combining, "_mark", lambda outcomes: None)
    item, shelf = factory.item(sku="TWICE-1"), factory.location()
    factory.stock(item, shelf, 100)
    with combining_app.app_context(), db.engine.connect() as holder:
        holder.execute(
            text("SELECT quantity FROM stock_levels WHERE item_id = :id FOR UPDATE"), {"id": item.id}
        )  # every client queues behind this lock with its intent committed
        threads, _ = start_threads(
            combining_app, 6, lambda n: stock.issue_stock(sku="TWICE-1", location=shelf.code, quantity=1, user="w")
        )
        wait_for_pending(combining_app, 6)
        holder.rollback()
        db.session.remove()
    for thread in threads:
        thread.join(60)
    assert len(issue_lines(combining_app, item)) > 6  # applied more than once
    assert level(combining_app, item, shelf) < 94


def test_a_stock_out_run_again_after_a_lock_timeout_keeps_its_one_intent(make_app, factory):
    """The unit of work runs again after a lock-wait timeout: the intent committed by the first
    attempt is reused, never written twice, and the stock-out is applied once."""
    impatient = make_app(
        INVENTORY_COMBINE_STOCK_OUTS=True,
        SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"init_command": "SET innodb_lock_wait_timeout = 1"}},
    )
    item, shelf = factory.item(sku="SLOW-1"), factory.location()
    factory.stock(item, shelf, 10)
    timed_out = threading.Event()

    def retried(sender: Any, reason: str) -> None:
        if reason == "lock_wait_timeout":
            timed_out.set()

    transaction_retried.connect(retried)
    try:
        with impatient.app_context(), db.engine.connect() as holder:
            holder.execute(text("SELECT quantity FROM stock_levels WHERE item_id = :id FOR UPDATE"), {"id": item.id})
            threads, results = start_threads(
                impatient, 1, lambda n: stock.issue_stock(sku="SLOW-1", location=shelf.code, quantity=3, user="w")
            )
            assert timed_out.wait(30)
            holder.rollback()
            db.session.remove()
        threads[0].join(60)
    finally:
        transaction_retried.disconnect(retried)
    assert isinstance(results[0], Movement), results
    assert [m.quantity for m in issue_lines(impatient, item)] == [3]
    assert intents(impatient) == {"done": 1}
    assert level(impatient, item, shelf) == 7


def test_a_lock_holder_deletes_outcomes_older_than_they_are_kept(combining_app, factory, monkeypatch):
    monkeypatch.setattr(combining, "CLEAN_EVERY", 1)  # every batch cleans up (normally one in 256)
    item, shelf = factory.item(sku="OLD-1"), factory.location()
    factory.stock(item, shelf, 10)
    with combining_app.app_context():
        old = dict(item_id=item.id, location_id=shelf.id, quantity=1, username="u", status="done")
        db.session.add_all(
            [
                StockOutIntent(**old, created_at=utcnow() - combining.KEEP - timedelta(minutes=1)),
                StockOutIntent(**old, created_at=utcnow() - combining.KEEP + timedelta(minutes=1)),
                StockOutIntent(**old | {"location_id": shelf.id + 1000}, created_at=utcnow() - 2 * combining.KEEP),
            ]
        )
        db.session.commit()
        db.session.remove()
    with combining_app.app_context(), db.engine.connect() as holder:
        holder.execute(text("SELECT quantity FROM stock_levels WHERE item_id = :id FOR UPDATE"), {"id": item.id})
        threads, results = start_threads(
            combining_app, 2, lambda n: stock.issue_stock(sku="OLD-1", location=shelf.code, quantity=1, user="w")
        )
        wait_for_pending(combining_app, 2)
        holder.rollback()
        db.session.remove()
    for thread in threads:
        thread.join(60)
    assert all(isinstance(r, Movement) for r in results), results
    # The place's outcome older than KEEP is gone; the newer one, another place's and the two new stay.
    assert intents(combining_app) == {"done": 4}
