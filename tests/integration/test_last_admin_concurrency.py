"""The last-admin rule under concurrency (issue 14, finding 12): two admins demoting or
deactivating each other at the same moment leave one active admin. MariaDB only: it needs real
concurrent transactions and row locks (SQLite queues writers on BEGIN IMMEDIATE)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event, func, select

from app.extensions import db
from app.models import User
from app.services import admin
from app.services.errors import Conflict

MYSQL_ONLY = pytest.mark.parametrize("backend", [pytest.param("mysql", marks=pytest.mark.mysql)], indirect=True)
# How long the first transaction waits for the second to reach the same point. Without the fix the
# second arrives at once; with it, it is blocked on the admin rows the first holds, so the wait
# runs out and the first goes on to commit.
RENDEZVOUS_SECONDS = 3


@pytest.fixture
def rendezvous(app: Any) -> Iterator[threading.Barrier]:
    """Both transactions pause right after counting the other active admins, until both have counted
    or the wait runs out: the interleaving that broke the rule, made certain instead of lucky."""
    barrier = threading.Barrier(2, timeout=RENDEZVOUS_SECONDS)
    with app.app_context():
        engine = db.engine

    def pause_after_count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT COUNT") and "users" in statement:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()

    event.listen(engine, "after_cursor_execute", pause_after_count)
    yield barrier
    event.remove(engine, "after_cursor_execute", pause_after_count)


def _at_once(app: Any, *changes: Callable[[], Any]) -> list[Any]:
    outcomes: list[Any] = [None] * len(changes)

    def run(n: int) -> None:
        with app.app_context():
            try:
                outcomes[n] = changes[n]()
            except Conflict as exc:
                outcomes[n] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(changes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a transaction hung"
    return outcomes


def _active_admins(app: Any) -> list[str]:
    with app.app_context():
        names = db.session.scalars(select(User.username).where(User.role == "admin", User.active)).all()
        db.session.remove()
        return sorted(names)


@MYSQL_ONLY
@pytest.mark.parametrize(
    "change",
    [
        lambda name: admin.set_role(username=name, role="manager"),
        lambda name: admin.set_active(username=name, active=False),
    ],
    ids=["demote", "deactivate"],
)
def test_two_admins_removing_each_other_at_once_leave_one_admin(
    app: Any, factory: Any, rendezvous: threading.Barrier, change: Callable[[str], Any]
) -> None:
    factory.user(role="admin", username="admin-a")
    factory.user(role="admin", username="admin-b")
    outcomes = _at_once(app, lambda: change("admin-b"), lambda: change("admin-a"))
    refused = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(refused) == 1 and refused[0].code == "conflict"
    assert len(_active_admins(app)) == 1
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 2
