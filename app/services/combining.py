"""Combined stock-outs (issue 19): concurrent plain stock-outs of one stock level share one
transaction, so a hot SKU is not limited to one locked transaction, and one COMMIT, per request.

Every request still ends up holding the level's row lock, but whoever obtains it applies, in
arrival order, every stock-out then waiting for that level, and commits them all at once:

0. the request first tries the lock without waiting (FOR UPDATE SKIP LOCKED). Free, it is taken at
   once: the request applies the stock-outs left waiting (step 3, normally none: one more read
   than the plain path), then its own, directly, and commits. Only a busy lock goes on:
1. the request records its intent (item, place, quantity, who, why, its idempotency key and
   request hash) in `stock_out_intents` and commits that alone: it touches no hot row, and
   concurrent small commits share their log flushes (group commit);
2. it waits for the lock (SELECT ... FOR UPDATE), then reads the level's pending intents and its
   own;
3. each pending intent is applied exactly as the plain path applies a stock-out (stock_core.take_out:
   the check against what is available, the new balance, its own ledger line with the balance
   after it, its idempotency key and request hash, its low-stock note); one that would go below
   zero is refused on its own (InsufficientStock, with the available quantity) and the others go
   on; a keyed one whose key already wrote a line replays that line (or is a conflict);
4. each intent is marked with its outcome (its ledger line, or what was available) and everything
   commits once; the request then returns its own outcome, or raises its own refusal (after
   committing the others').

A request whose intent another request already applied finds it done once that request's COMMIT
released the lock: nobody returns before their stock-out is durable. A lock holder that dies
before its COMMIT (a killed worker) leaves the intents it applied pending, for the next lock
holder: nothing is lost and nothing applied twice, since applying an intent and marking it done
commit together. Its own stock-out goes with it when it had no intent (as on the plain path), and
is applied by the next lock holder when it had one (as if it had died just after its COMMIT; a
caller that must know retries with its idempotency key). A unit of work that runs again after a
lock conflict reuses the intent it committed (transaction.call_state), never writing a second.

Step 1 commits on the request's own connection before the transaction goes on (a COMMIT sent
between statements): what came before it were reads (the request's token, the idempotency
replay, the item and place), and a second connection per request would double the pool a
worker needs. Only the outermost `issue_stock` combines, and only on MariaDB/MySQL: SQLite has one
writer anyway, and inside another unit of work (a count approval) committing early would split it.

What it costs and gains, measured on this 2-core machine while other work loaded it (load
average 6-30): statements a stock-out sends, counted at the client, hot SKU, 400-1,600
stock-outs from 4 and 16 threads of one process: plain 4 + COMMIT, 1.6 ms of CPU each; combined
8.9 + COMMIT, 2.5-2.7 ms (a free lock costs one read more than plain; a busy one the empty SKIP
LOCKED read, the intent's INSERT and COMMIT, the pending read and its mark), against one COMMIT,
and one hold of the hot row's lock, per batch instead of per request. The HTTP benchmark
(tests/benchmarks/api_stock_out.py, hot SKU, shipped settings, 3 rounds of 10 s, medians; plain
limit 1,967-2,087 tx/s):

    hot SKU    16 conns   off 418 req/s, p99  63 ms, app 2.40 ms/req, 5.2 statements/req
                          on  227 req/s, p99 111 ms, app 4.00 ms/req, 10.5 statements/req
               64 conns   off 337 req/s, p99 246 ms, app 2.60 ms/req
                          on  197 req/s, p99 378 ms, app 4.14 ms/req
    spread     16 conns   off 477 req/s; on 411 req/s (app 2.35 and 2.86 ms/req)

Batches there: 64-65 % of 1, 29 % of 2, 6-7 % of 3-4. With the shipped 4 sync gunicorn workers
at most four stock-outs are in flight at once, so batches stay that small, and the full stack
is bound by its CPU per request (app CPU x requests/s <= 2 cores, shared with MariaDB), not by
the hot row: here combining costs more than it saves. It pays where many more requests wait on
one row than that: more workers and instances against one database, or a slower log flush.

Outcomes are kept for KEEP (longer than a request can wait for the lock through all its retries),
then deleted by a lock holder now and then (every CLEAN_EVERY-th intent): the table stays bounded
by about KEEP of a place's contended stock-outs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, cast

from blinker import Namespace
from flask import current_app
from sqlalchemy import Row, Table, bindparam, delete, insert, or_, select, update

from app.config import settings
from app.models.stock import Movement, StockOutIntent
from app.models.types import utcnow
from app.services import stock_core, transaction
from app.services.errors import DomainError, IdempotencyConflict, InsufficientStock

signals = Namespace()
#: Sent after the commit of a request that applied pending stock-outs, with `size` (how many).
stock_outs_combined = signals.signal("stock-outs-combined")

KEEP = timedelta(minutes=10)
CLEAN_EVERY = 256
_INTENT = "stock_out_intent"  # the id of the call's committed intent, in transaction.call_state()

_intents = cast(Table, StockOutIntent.__table__)
_RECORD = insert(_intents)
_movements = cast(Table, Movement.__table__)
# The level's pending intents and this request's own, with the ledger line another request wrote
# for it (in the same round trip: reading it afterwards was one more statement per request).
_PENDING_OR_MINE = (
    select(
        _intents.c.id,
        _intents.c.status,
        _intents.c.quantity,
        _intents.c.reference,
        _intents.c.note,
        _intents.c.username,
        _intents.c.idempotency_key,
        _intents.c.request_hash,
        _intents.c.idempotency_scope,
        _intents.c.reason_code,
        _intents.c.movement_id,
        _intents.c.available,
        *(column.label(f"line_{column.name}") for column in _movements.c),
    )
    .select_from(_intents.outerjoin(_movements, _movements.c.id == _intents.c.movement_id))
    .where(
        _intents.c.item_id == bindparam("item_id"),
        _intents.c.location_id == bindparam("location_id"),
        or_(_intents.c.status == "pending", _intents.c.id == bindparam("mine")),
    )
    .order_by(_intents.c.id)
)
_MARK = (
    update(_intents)
    .where(_intents.c.id == bindparam("intent_id"))
    .values(status=bindparam("outcome"), movement_id=bindparam("line"), available=bindparam("left"))
)
_FORGET = delete(_intents).where(
    _intents.c.item_id == bindparam("item_id"),
    _intents.c.location_id == bindparam("location_id"),
    _intents.c.status != "pending",
    _intents.c.created_at < bindparam("before"),
)


@dataclass(frozen=True, slots=True)
class _Outcome:
    status: str  # "done", "short" or "conflict"
    line: int | None = None
    left: Decimal | None = None
    movement: Movement | None = None  # when applied by this request, the line it wrote
    error: DomainError | None = None  # when refused by this request, the error raised


def applies() -> bool:
    """Whether this stock-out is combined: the setting is on, the database is MariaDB/MySQL, and
    the stock-out is its own unit of work."""
    return (
        settings().INVENTORY_COMBINE_STOCK_OUTS
        and transaction.connection().dialect.name != "sqlite"
        and transaction.call_state().get("name") == "issue_stock"
    )


def issue(item: stock_core.ItemFacts, loc: stock_core.LocationFacts, qty: Decimal, req: stock_core.Request) -> Movement:
    """Take `qty` out of the place, applying with it every stock-out waiting for its level (see
    the module docstring). Raises InsufficientStock and IdempotencyConflict as the plain path does."""
    mine, level = _lock(item, loc, qty, req)
    rows = _execute(_PENDING_OR_MINE, {"item_id": item.id, "location_id": loc.id, "mine": mine or 0}).all()
    outcomes = {row.id: _apply(item, loc, level, row) for row in rows if row.status == "pending"}
    if outcomes:
        _mark(outcomes)
        if any(intent_id % CLEAN_EVERY == 0 for intent_id in outcomes):
            _execute(_FORGET, {"item_id": item.id, "location_id": loc.id, "before": utcnow() - KEEP})
    if mine is None:  # the lock was free: this request's stock-out after those that were waiting
        own = _outcome(lambda: stock_core.take_out(item, loc, level, qty, req))
        size = len(outcomes) + 1
    else:
        own = outcomes.get(mine) or _settled(rows, mine, loc)
        size = len(outcomes)
    if own.status == "done":
        _announce_batch(size)
        return cast(Movement, own.movement)  # a done intent names its line (never deleted)
    # Refused: the others' outcomes commit before the refusal rolls back what is left (nothing).
    _execute_commit()
    _sent(size)
    raise own.error or (
        InsufficientStock(sku=item.sku, location=loc.code, requested=qty, available=own.left or stock_core.ZERO)
        if own.status == "short"
        else IdempotencyConflict(req.key or "")
    )


def _lock(
    item: stock_core.ItemFacts, loc: stock_core.LocationFacts, qty: Decimal, req: stock_core.Request
) -> tuple[int | None, stock_core.Level]:
    """The place's level, locked, and this request's intent id: None when the lock was free at
    once (the request is then applied directly, with no intent), else its committed intent. A
    place without a level takes the second way too: its stock-out is refused either way."""
    if _INTENT not in transaction.call_state():
        # SKIP LOCKED rather than NOWAIT: no error to raise and catch (SQLAlchemy's handling of
        # one costs more CPU than the statement).
        level = stock_core.lock_level(item.id, loc.id, if_free=True)
        if level is not None:
            return None, level
    mine = _record(item, loc, qty, req)
    return mine, stock_core.lock_level(item.id, loc.id) or stock_core.Level(None, stock_core.ZERO)


def _execute(statement: Any, params: dict[str, Any] | list[dict[str, Any]] | None = None) -> Any:
    return transaction.connection().execute(statement, params)


def _execute_commit() -> None:
    transaction.connection().exec_driver_sql("COMMIT")


def _record(item: stock_core.ItemFacts, loc: stock_core.LocationFacts, qty: Decimal, req: stock_core.Request) -> int:
    """The id of this call's intent, committed (once, whatever the retries)."""
    state = transaction.call_state()
    if _INTENT not in state:
        values = {
            "item_id": item.id,
            "location_id": loc.id,
            "quantity": qty,
            "reference": req.reference,
            "note": req.note,
            "reason_code": req.reason_code,
            "username": req.user,
            "idempotency_scope": req.scope,
            "idempotency_key": req.key,
            "request_hash": req.digest,
            "status": "pending",
            "created_at": utcnow(),
        }
        intent_id = _execute(_RECORD, values).inserted_primary_key[0]
        _execute_commit()
        state[_INTENT] = intent_id
    return int(state[_INTENT])


def _apply(
    item: stock_core.ItemFacts, loc: stock_core.LocationFacts, level: stock_core.Level, row: Row[Any]
) -> _Outcome:
    """Apply one pending intent to the locked `level`, as the plain path would."""
    req = stock_core.Request(
        row.reference,
        row.note,
        row.username,
        row.idempotency_key,
        row.request_hash,
        row.idempotency_scope,
        row.reason_code,
    )

    def take() -> Movement:
        if req.key and (replayed := stock_core.replay(req.scope, [req.key], req.digest or "")):
            return replayed[0]
        return stock_core.take_out(item, loc, level, row.quantity, req)

    return _outcome(take)


def _outcome(take: Callable[[], Movement]) -> _Outcome:
    try:
        movement = take()
    except InsufficientStock as short:
        return _Outcome("short", left=short.available, error=short)
    except IdempotencyConflict as conflict:
        return _Outcome("conflict", error=conflict)
    return _Outcome("done", movement.id, movement=movement)


def _settled(rows: list[Row[Any]], mine: int, loc: stock_core.LocationFacts) -> _Outcome:
    """This request's outcome, applied by an earlier lock holder (kept for KEEP, far longer than
    a request waits), with the ledger line it wrote."""
    row = next(row for row in rows if row.id == mine)
    line = None
    if row.movement_id is not None:
        line = _counted(Movement(**{c.name: row._mapping[f"line_{c.name}"] for c in _movements.c}), loc)
    return _Outcome(row.status, row.movement_id, row.available, movement=line)


def _mark(outcomes: dict[int, _Outcome]) -> None:
    _execute(
        _MARK,
        [{"intent_id": i, "outcome": o.status, "line": o.line, "left": o.left} for i, o in outcomes.items()],
    )


def _counted(movement: Movement, loc: stock_core.LocationFacts) -> Movement:
    """The line another request wrote for this one, marked counted as stock_core.record_at would."""
    if loc.counted:
        movement.counted_sides = frozenset({"from"})
    return movement


def _announce_batch(size: int) -> None:
    if size:
        transaction.after_commit(lambda: _sent(size))


def _sent(size: int) -> None:
    if size:
        stock_outs_combined.send(current_app._get_current_object(), size=size)  # type: ignore[attr-defined]
