"""Units of work: one write transaction per service call, with lock-conflict retries.

Everything that differs between SQLite and MySQL/MariaDB lives here: how a write transaction
starts (SQLite: BEGIN IMMEDIATE, so writers queue on the busy timeout instead of failing when
they upgrade a read lock), the isolation level, which errors mean "run it again", how many
rows are inserted or updated at once (insert_rows, update_rows), how many codes are looked up at
once (listed), and when the on-hand triggers leave their work to a bulk writer
(on_hand_triggers_off).
"""

from __future__ import annotations

import functools
import itertools
import json
import random
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any, ParamSpec, TypeVar

from blinker import Namespace
from flask import current_app
from opentelemetry.trace import Span
from sqlalchemy import Column, String, Table, bindparam, column, event, insert, text, update
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.sql import Subquery
from sqlalchemy.sql.elements import TextClause

from app.config import settings
from app.extensions import db
from app.observability import tracing
from app.services.errors import Conflict

P = ParamSpec("P")
R = TypeVar("R")
_T = TypeVar("_T")

signals = Namespace()
#: Sent with `reason` ("deadlock", "lock_wait_timeout", "database_locked", "duplicate_key",
#: "disconnect", "node_not_ready", "stale_read").
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
_CALL = "inventory_call"
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
    """SQLite: WAL, foreign keys, and BEGIN IMMEDIATE for the write transactions we open.
    MariaDB: a connection goes back to the pool with the on-hand triggers on (see
    _triggers_back_on)."""
    if engine.dialect.name != "sqlite":
        event.listen(engine, "checkin", _triggers_back_on)
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


class StaleRead(Conflict):
    """A fact read before the locks (say, how an item is tracked) changed before they were
    taken: the unit of work runs again, reading it as it is now (a 409 only once the retries
    are spent)."""

    code = "stale_read"
    title = "Changed meanwhile"


def retry_reason(exc: BaseException, *, committing: bool = False) -> str | None:
    """Why `exc` is worth running the transaction again for, or None when it is not.

    A lost connection is retried only when it broke before COMMIT was sent: after that, whether
    the transaction committed is unknown, and running it again could apply it twice.
    """
    if isinstance(exc, StaleRead):
        return "stale_read"
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


def insert_rows(table: Table, rows: Iterable[Mapping[str, Any]], **shared: Any) -> None:
    """Insert `rows` (dicts with the same keys), each with the `shared` column values too. On
    MySQL/MariaDB the rows travel as one JSON document per JSON_ROWS, unpacked by JSON_TABLE:
    PyMySQL escapes every value of an executemany in Python, which was a quarter of a
    100,000-row import. The document's values are text; the INSERT converts them to the column
    types with the same strict-mode checks as bound values. SQLite binds natively: executemany.
    `rows` may be a generator that computes them: on MariaDB it runs, and the documents are
    built, in a helper thread while the INSERT before runs (prefetched)."""
    pending = iter(rows)
    first = next(pending, None)
    if first is None:
        return
    everything = itertools.chain((first,), pending)
    conn = connection()
    if conn.dialect.name != "mysql":
        conn.execute(insert(table).values(**shared) if shared else insert(table), list(everything))
        return
    names = list(first)
    statement = _json_insert(conn.dialect, table, names, list(shared))
    documents = _documents(conn.dialect, table, names, everything)
    many = not isinstance(rows, Sequence) or len(rows) > JSON_ROWS
    for document in prefetched(documents) if many else documents:
        conn.execute(statement, {"_rows": document, **shared})


_END: Any = object()


def prefetched(produce: Iterator[_T]) -> Iterator[_T]:
    """What `produce` yields, each value made in a helper thread while the caller uses the one
    before: the caller waits for the database without holding the GIL, so building the next
    document overlaps the statement under way (on 2 cores an import's 100,000 new items took
    1.1 s less; issue 13). Only the helper advances `produce`, one step at a time, and nothing in
    it may use the database; its error is raised here. A caller that stops early waits for the
    step under way, and nothing more is made."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="inventory-prefetch") as helper:
        step = helper.submit(next, produce, _END)
        while (value := step.result()) is not _END:
            step = helper.submit(next, produce, _END)
            yield value


# A JSON document is bound to MariaDB as UTF-8 bytes and read back as text by CONVERT(... USING
# utf8mb4): PyMySQL sends bytes as a hexadecimal literal (bytes.hex(), in C), where a str goes
# through its escaping, a translate() in Python that took 0.8 s of CPU for the 22 MB of documents
# a 100,000-row import sends (issue 13). Encoded as PyMySQL encodes a statement, so the bytes
# that reach the server are the same.
_ROWS = "CONVERT(:_rows USING utf8mb4)"
_VALUES = "CONVERT(:_values USING utf8mb4)"


def _as_bytes(document: str) -> bytes:
    return document.encode("utf-8", "surrogateescape")


def _documents(dialect: Dialect, table: Table, names: list[str], rows: Iterable[Mapping[str, Any]]) -> Iterator[bytes]:
    """`rows` as JSON documents (UTF-8) of up to JSON_ROWS arrays of the `names` columns' values."""
    # Only booleans and times have bind processing (to 0/1, to naive UTC): applied where it exists.
    processors = [(n, p) for n, name in enumerate(names) if (p := table.c[name].type.bind_processor(dialect))]
    pending = iter(rows)
    while document := [[row[name] for name in names] for row in itertools.islice(pending, JSON_ROWS)]:
        for values in document if processors else ():
            for n, process in processors:
                values[n] = process(values[n])
        yield _as_bytes(json.dumps(document, ensure_ascii=False, default=_json_text))


def _json_insert(dialect: Dialect, table: Table, names: list[str], shared: list[str]) -> Any:
    quote = dialect.identifier_preparer.quote
    columns = ", ".join(f"c{n} LONGTEXT CHARACTER SET utf8mb4 PATH '$[{n}]'" for n in range(len(names)))
    values = [f"j.c{n}" for n in range(len(names))] + [f":{name}" for name in shared]
    # In the document's order, so ids (and a ledger's running balances) follow the rows given.
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(name) for name in names + shared)}) "  # noqa: S608 (names from the table, values bound)
        f"SELECT {', '.join(values)} FROM JSON_TABLE({_ROWS}, '$[*]' COLUMNS (n FOR ORDINALITY, {columns})) AS j "
        "ORDER BY j.n"
    )
    # Shared values are bound with their columns' types (an aware datetime becomes naive UTC).
    return text(sql).bindparams(*(bindparam(name, type_=table.c[name].type) for name in shared))


def update_rows(table: Table, rows: Sequence[Mapping[str, Any]], *, key: str = "id", add: Sequence[str] = ()) -> None:
    """Set each row of `table` whose `key` column equals a row's `key` value to that row's other
    values (dicts with the same keys); the columns named in `add` are added to instead. On
    MySQL/MariaDB one UPDATE joins JSON_ROWS rows of a JSON document at a time (PyMySQL sends an
    executemany UPDATE row by row); SQLite binds natively: executemany."""
    if not rows:
        return
    conn = connection()
    names = [name for name in rows[0] if name != key]
    if conn.dialect.name != "mysql":
        values = {n: (table.c[n] + bindparam(f"_{n}")) if n in add else bindparam(f"_{n}") for n in names}
        by_key = update(table).where(table.c[key] == bindparam("_key")).values(values)
        conn.execute(by_key, [{"_key": row[key], **{f"_{n}": row[n] for n in names}} for row in rows])
        return
    joined = text(_json_update(conn.dialect, table, key, names, add))
    for document in _documents(conn.dialect, table, [key, *names], rows):
        conn.execute(joined, {"_rows": document})


def _json_update(dialect: Dialect, table: Table, key: str, names: list[str], add: Sequence[str]) -> str:
    """The key and the added columns are read from the document as their columns' types (a number
    added to text would be a double); the rest as text, converted on assignment like a bound value."""
    quote = dialect.identifier_preparer.quote

    def typed(n: int, name: str) -> str:
        kind = table.c[name].type.compile(dialect) if name == key or name in add else "LONGTEXT CHARACTER SET utf8mb4"
        return f"c{n} {kind} PATH '$[{n}]'"

    columns = ", ".join(typed(n, name) for n, name in enumerate([key, *names]))
    sets = ", ".join(
        f"t.{quote(name)} = t.{quote(name)} + j.c{n}" if name in add else f"t.{quote(name)} = j.c{n}"
        for n, name in enumerate(names, start=1)
    )
    return (
        f"UPDATE {quote(table.name)} AS t JOIN JSON_TABLE({_ROWS}, '$[*]' COLUMNS ({columns})) AS j "  # noqa: S608 (names from the table, values bound)
        f"ON t.{quote(key)} = j.c0 SET {sets}"
    )


def listed(values: Collection[str], *, like: Column[Any]) -> Iterator[Subquery]:
    """`values` as one-column tables (`value`) of up to JSON_ROWS values each, to join `like` on:
    a JSON array bound as one parameter, unpacked by MariaDB's JSON_TABLE or SQLite's json_each.
    An IN (...) costs SQLAlchemy and PyMySQL a parameter per value (rendered, escaped) and the
    server a long statement to parse: the lookups of a 100,000-row import's codes took 1.0 s of
    CPU and 3.2 s in all as IN lists of 1,000, and 0.4 s and 0.5 s this way (issue 13, measured
    back to back on a busy machine). On MariaDB the values are typed and collated as `like`
    (looked up once per connection), so the join compares as `like` does and seeks its index;
    values longer than `like` holds can equal nothing in it and are left out."""
    conn = connection()
    length = getattr(like.type, "length", None) or 255
    wanted = sorted({value for value in values if len(value) <= length})
    mysql = conn.dialect.name == "mysql"
    if mysql:
        kind = f"VARCHAR({length}) CHARACTER SET utf8mb4 COLLATE {_collation(conn, like)}"
        sql = f"SELECT value FROM JSON_TABLE({_VALUES}, '$[*]' COLUMNS (value {kind} PATH '$')) AS jt"  # noqa: S608 (type from the schema, values bound)
    else:
        sql = "SELECT value FROM json_each(:_values)"
    for start in range(0, len(wanted), JSON_ROWS):
        document = json.dumps(wanted[start : start + JSON_ROWS], ensure_ascii=False)
        bound = _as_bytes(document) if mysql else document
        yield text(sql).bindparams(_values=bound).columns(column("value", String)).subquery("listed")


def ids_in(like: Column[Any], ids: Collection[int]) -> Iterator[TextClause]:
    """`like IN (...)` over `ids` in slices of up to JSON_ROWS, each with the ids written into the
    statement. Bound one by one, SQLAlchemy and PyMySQL render and escape a parameter per id: the
    100,000 item ids a 100,000-row import locks twice cost 0.5 s and 0.2-0.6 s of CPU as IN lists
    of 1,000 (issue 13). Integers need no escaping, and the IN list keeps the plan it had (a range
    on the index, locking in index order), unlike a join to a JSON table. int() refuses anything
    that is not a whole number, so nothing but digits reaches the statement."""
    name = f"{like.table.name}.{like.name}"
    wanted = sorted({int(value) for value in ids})
    for start in range(0, len(wanted), JSON_ROWS):
        yield text(f"{name} IN ({','.join(map(str, wanted[start : start + JSON_ROWS]))})")


def _collation(conn: Connection, like: Column[Any]) -> str:
    """The collation of column `like` on MariaDB: a JSON_TABLE column of another collation
    (its default is the server's) cannot be compared with it."""
    key = f"inventory_collation:{like.table.name}.{like.name}"
    if key not in conn.info:
        found = conn.execute(
            text(
                "SELECT COLLATION_NAME FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :table AND COLUMN_NAME = :column"
            ),
            {"table": like.table.name, "column": like.name},
        ).scalar_one()
        if not str(found).replace("_", "").isalnum():
            raise ValueError(f"unexpected collation {found!r}")
        conn.info[key] = str(found)
    return str(conn.info[key])


def on_hand_set_wise() -> bool:
    """Whether bulk writers total items.on_hand themselves (on_hand_triggers_off yields True):
    on MariaDB/MySQL, not on SQLite."""
    return connection().dialect.name == "mysql"


@contextmanager
def on_hand_triggers_off() -> Iterator[bool]:
    """Stock levels written in this block leave items.on_hand alone on MariaDB, where the on-hand
    triggers skip their row while @inventory_on_hand_set_wise is set (migration f3b9e1d7c482):
    yields True there, and the writer then adds each item's total itself, set-wise, in the same
    unit of work. On SQLite (no session variables) the triggers count every row: yields False.
    The variable is cleared however the block ends, so no other statement on the connection
    skips the triggers."""
    if not on_hand_set_wise():
        yield False
        return
    conn = connection()
    conn.info[_SET_WISE] = True  # until it is cleared: see _triggers_back_on
    conn.exec_driver_sql("SET @inventory_on_hand_set_wise = 1")
    try:
        yield True
    finally:
        conn.exec_driver_sql("SET @inventory_on_hand_set_wise = NULL")
        conn.info.pop(_SET_WISE, None)


_SET_WISE = "inventory_on_hand_set_wise"


def _triggers_back_on(dbapi_connection: Any, record: Any) -> None:
    """Pool check-in: a connection whose on_hand_triggers_off block could not clear the variable
    (its SET failed, the block never ended) clears it now, or is closed. Left set, every later
    stock write on that connection would skip the on-hand triggers and the totals would drift
    silently. The pool does no reset of its own (engine_options), and the mark makes this a dict
    lookup for every other connection."""
    if record is None or dbapi_connection is None or not record.info.pop(_SET_WISE, False):
        return
    try:
        cursor = dbapi_connection.cursor()
        cursor.execute("SET @inventory_on_hand_set_wise = NULL")
        cursor.close()
    except Exception:  # any failure: the connection is not to be trusted
        record.invalidate()


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
        db.session.info[_CALL] = {"name": name}
        try:
            return _run_with_retries(fn, span)
        finally:
            db.session.info.pop(_CALL, None)


def call_state() -> dict[str, Any]:
    """What the service call in progress keeps across the attempts (retries) of its unit of work,
    e.g. a row it committed on its own that a retry must not write again; `name` is the outermost
    unit of work's (a nested call shares its caller's). Forgotten when the call returns or raises."""
    state: dict[str, Any] = db.session.info.get(_CALL) or {}
    return state


def _run_with_retries(fn: Callable[[], R], span: Span | None) -> R:
    retries = settings().INVENTORY_TX_RETRIES
    attempt = 0
    while True:
        try:
            return _run_once(fn)
        except (DBAPIError, _CommitFailed, StaleRead) as failure:
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
