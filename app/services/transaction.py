"""Units of work: one write transaction per service call, with lock-conflict retries.

Everything that differs between SQLite and MySQL/MariaDB lives here: how a write transaction
starts (SQLite: BEGIN IMMEDIATE, so writers queue on the busy timeout instead of failing when
they upgrade a read lock), the isolation level, which errors mean "run it again", and how many
rows are inserted at once (insert_rows).
"""

from __future__ import annotations

import functools
import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, ParamSpec, TypeVar

from blinker import Namespace
from flask import current_app
from opentelemetry.trace import Span
from sqlalchemy import Table, bindparam, event, insert, text
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from app.config import settings
from app.extensions import db
from app.observability import tracing

P = ParamSpec("P")
R = TypeVar("R")

signals = Namespace()
#: Sent with `reason` ("deadlock", "lock_wait_timeout", "database_locked", "duplicate_key",
#: "disconnect", "node_not_ready").
transaction_retried = signals.signal("transaction-retried")
#: Sent when a unit of work (one attempt) ends, with `outcome` ("commit" or "rollback") and
#: `seconds`. Timed here rather than by engine events: any engine listener makes SQLAlchemy
#: dispatch events on every statement of every request.
transaction_finished = signals.signal("transaction-finished")

MYSQL_DEADLOCK = 1213
MYSQL_LOCK_WAIT_TIMEOUT = 1205
MYSQL_DUPLICATE_KEY = 1062
# Galera: "WSREP has not yet prepared node for application use" (the node is joining, donating or
# cut off from the primary component). Nothing was written; another node can take the work.
MYSQL_NODE_NOT_READY = 1047
SQLITE_BUSY_TIMEOUT_SECONDS = 30
_WRITE_OPTION = "inventory_write"
# How MySQL ("Duplicate entry ... for key 'uq_...'") and SQLite ("UNIQUE constraint failed:
# table.column") name the unique constraints a concurrent writer may have beaten us to.
_RETRYABLE_UNIQUE = (
    "idempotency_scope",
    "idempotency_key",
    "uq_stock_levels_item_location",
    "stock_levels.item_id, stock_levels.location_id",
    # A lot or a serial received by two requests at once: the retry finds the other's row.
    "uq_lots_item_code",
    "lots.item_id, lots.code",
    "uq_serials_item_serial",
    "serials.item_id, serials.serial",
)
_AFTER_COMMIT = "inventory_after_commit"
_ACTIVE = "inventory_unit_of_work"
_CONNECTION = "inventory_connection"
# Rows per INSERT ... SELECT FROM JSON_TABLE: a 100,000-row import sends about 1.5 MB of JSON per
# statement, far below MariaDB's default max_allowed_packet (16 MB).
JSON_ROWS = 5000


def engine_options(url: str) -> dict[str, Any]:
    """SQLAlchemy engine options for the database URL."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False}}
    # READ COMMITTED rather than InnoDB's REPEATABLE READ: every decision about stock is taken on
    # rows read with SELECT ... FOR UPDATE, which see the latest committed version under either
    # level, so nothing is lost; what is gained is that InnoDB stops taking gap/next-key locks on
    # the unique indexes we insert into (stock_levels(item, location), movements.idempotency_key),
    # which otherwise make concurrent first receipts and keyed requests deadlock each other, and a
    # keyed request re-checked after its lock sees a duplicate committed a moment earlier.
    #
    # No pool_pre_ping and no pool reset-on-return: each costs a round trip on every transaction
    # (a stock-out is five). Sessions always end their transactions and Connection.close() rolls
    # back one left open, so the pool's extra ROLLBACK is redundant; a connection the server
    # dropped fails on the first statement, before anything is written, and run_in_transaction
    # runs the unit of work again on a fresh connection (see retry_reason, "disconnect").
    return {
        "pool_pre_ping": False,
        "pool_reset_on_return": None,
        "pool_recycle": 280,
        "pool_size": 10,
        "max_overflow": 20,
        "isolation_level": "READ COMMITTED",
    }


def install_engine_hooks(engine: Engine) -> None:
    """SQLite: WAL, foreign keys, and BEGIN IMMEDIATE for the write transactions we open."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, say when a transaction begins (see the "begin" hook).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def retry_reason(exc: BaseException, *, committing: bool = False) -> str | None:
    """Why `exc` is worth running the transaction again for, or None when it is not.

    A lost connection is retried only when it broke before COMMIT was sent: after that, whether
    the transaction committed is unknown, and running it again could apply it twice.
    """
    if not isinstance(exc, DBAPIError):
        return None
    if exc.connection_invalidated:
        return None if committing else "disconnect"
    orig = exc.orig
    code = orig.args[0] if orig is not None and orig.args else None
    if isinstance(exc, OperationalError):
        # On Galera a conflict with a transaction certified on another node also comes back as
        # 1213, on any statement (mostly the SELECT ... FOR UPDATE, sometimes COMMIT): the whole
        # unit of work runs again, like after a local deadlock.
        if code == MYSQL_DEADLOCK:
            return "deadlock"
        if code == MYSQL_NODE_NOT_READY:
            return "node_not_ready"
        if code == MYSQL_LOCK_WAIT_TIMEOUT:
            return "lock_wait_timeout"
        if "database is locked" in str(orig) or "database is busy" in str(orig):
            return "database_locked"
    # A concurrent transaction inserted the same idempotency key or created the same stock level
    # first: running again replays the request, or finds the row and locks it.
    if isinstance(exc, IntegrityError) and any(name in str(orig) for name in _RETRYABLE_UNIQUE):
        return "duplicate_key"
    return None


class _CommitFailed(Exception):
    """COMMIT itself failed: carried separately so that a lost connection there is not retried."""

    def __init__(self, error: DBAPIError) -> None:
        super().__init__(str(error))
        self.error = error


def connection() -> Connection:
    """The connection of the unit of work in progress, looked up once per transaction rather than
    once per statement (the session's lookup was 7 % of a stock-out's CPU); outside a unit of work,
    the session's connection."""
    session = db.session()
    current: Connection | None = session.info.get(_CONNECTION)
    return current if current is not None else session.connection()


def insert_rows(table: Table, rows: Sequence[Mapping[str, Any]], **shared: Any) -> None:
    """Insert `rows` (dicts with the same keys), each with the `shared` column values too. On
    MySQL/MariaDB the rows travel as one JSON document per JSON_ROWS, unpacked by JSON_TABLE:
    PyMySQL escapes every value of an executemany in Python, which was a quarter of a
    100,000-row import. The document's values are text; the INSERT converts them to the column
    types with the same strict-mode checks as bound values. SQLite binds natively: executemany."""
    if not rows:
        return
    conn = connection()
    if conn.dialect.name != "mysql":
        conn.execute(insert(table).values(**shared) if shared else insert(table), list(rows))
        return
    names = list(rows[0])
    statement = _json_insert(conn.dialect, table, names, list(shared))
    # Only booleans and times have bind processing (to 0/1, to naive UTC): applied where it exists.
    processors = [(n, p) for n, name in enumerate(names) if (p := table.c[name].type.bind_processor(conn.dialect))]
    for start in range(0, len(rows), JSON_ROWS):
        document = [[row[name] for name in names] for row in rows[start : start + JSON_ROWS]]
        for values in document if processors else ():
            for n, process in processors:
                values[n] = process(values[n])
        conn.execute(statement, {"_rows": json.dumps(document, ensure_ascii=False, default=_json_text), **shared})


def _json_insert(dialect: Dialect, table: Table, names: list[str], shared: list[str]) -> Any:
    quote = dialect.identifier_preparer.quote
    columns = ", ".join(f"c{n} LONGTEXT CHARACTER SET utf8mb4 PATH '$[{n}]'" for n in range(len(names)))
    values = [f"j.c{n}" for n in range(len(names))] + [f":{name}" for name in shared]
    # In the document's order, so ids (and a ledger's running balances) follow the rows given.
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(name) for name in names + shared)}) "  # noqa: S608 (names from the table, values bound)
        f"SELECT {', '.join(values)} FROM JSON_TABLE(:_rows, '$[*]' COLUMNS (n FOR ORDINALITY, {columns})) AS j "
        "ORDER BY j.n"
    )
    # Shared values are bound with their columns' types (an aware datetime becomes naive UTC).
    return text(sql).bindparams(*(bindparam(name, type_=table.c[name].type) for name in shared))


def _json_text(value: Any) -> str:
    """Decimals and times as exact text, which the INSERT converts as it would a bound value."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    raise TypeError(f"{type(value).__name__} has no JSON form")


def after_commit(callback: Callable[[], None]) -> None:
    """Run `callback` once the current unit of work has committed (never for rolled-back work)."""
    db.session.info.setdefault(_AFTER_COMMIT, []).append(callback)


def _discard(session: Session, error: BaseException | None = None) -> None:
    """Roll back; when the connection itself is gone, or its node is not ready (so the retry must
    get another connection, which the router sends to a ready node), drop it instead."""
    session.info.pop(_AFTER_COMMIT, None)
    if error is not None and retry_reason(error) == "node_not_ready":
        session.invalidate()
        return
    try:
        session.rollback()
    except SQLAlchemyError:
        session.invalidate()


def _finished(outcome: str, started: float) -> None:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    transaction_finished.send(app, outcome=outcome, seconds=time.perf_counter() - started)


def _run_once(fn: Callable[[], R]) -> R:
    started = time.perf_counter()
    session = db.session()
    if session.in_transaction() and session.get_bind().dialect.name == "sqlite":
        # A view read in a deferred transaction; SQLite writes must start with BEGIN IMMEDIATE.
        session.commit()
    # On MySQL a write joins the request's read transaction (say, the API token lookup): ending
    # it first would cost a COMMIT round trip, and a retry rolls back and re-runs only `fn`.
    options = {} if session.in_transaction() else {"execution_options": {_WRITE_OPTION: True}}
    session.info[_CONNECTION] = session.connection(**options)
    session.info[_AFTER_COMMIT] = []
    session.info[_ACTIVE] = True
    try:
        result = fn()
    except BaseException as error:
        _discard(session, error)
        _finished("rollback", started)
        raise
    finally:
        session.info.pop(_ACTIVE, None)
        session.info.pop(_CONNECTION, None)
    try:
        session.commit()
    except DBAPIError as exc:
        _discard(session, exc)
        _finished("rollback", started)
        raise _CommitFailed(exc) from exc
    _finished("commit", started)
    for callback in session.info.pop(_AFTER_COMMIT, []):
        callback()
    return result


def run_in_transaction(fn: Callable[[], R], *, name: str = "transaction") -> R:
    """Run `fn` as one write transaction; re-run it on lock conflicts, a bounded number of times.

    Called inside another unit of work (an import posting opening stock, a count approval posting
    adjustments), `fn` joins that transaction: everything commits together or not at all, and a
    retry re-runs the outer unit of work as a whole. Traced as one span named `name`, each retry an
    event on it with its reason.
    """
    if db.session.info.get(_ACTIVE):
        return fn()
    with tracing.span(f"unit_of_work {name}") as span:
        return _run_with_retries(fn, span)


def _run_with_retries(fn: Callable[[], R], span: Span | None) -> R:
    retries = settings().INVENTORY_TX_RETRIES
    attempt = 0
    while True:
        try:
            return _run_once(fn)
        except (DBAPIError, _CommitFailed) as failure:
            exc = failure.error if isinstance(failure, _CommitFailed) else failure
            reason = retry_reason(exc, committing=isinstance(failure, _CommitFailed))
            if reason is None or attempt >= retries:
                raise exc from None
            attempt += 1
            if span is not None:
                span.add_event("retry", {"reason": reason, "attempt": attempt})
            app = current_app._get_current_object()  # type: ignore[attr-defined]
            transaction_retried.send(app, reason=reason)
            # Full jitter: concurrent losers of the same deadlock must not collide again in step.
            time.sleep(random.uniform(0, 0.005 * 2**attempt))  # noqa: S311 - not cryptographic


def unit_of_work(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorator: the service function is the transaction (and must be safe to re-run)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return run_in_transaction(lambda: fn(*args, **kwargs), name=fn.__name__)

    return wrapper
