"""Whether MariaDB has a connection waiting on a row lock: for tests that must see one request
queue behind another's lock before they let the first go on. No event says "queued for a row
lock", so the tests poll this.

A waiting transaction shows in information_schema.innodb_trx as LOCK WAIT, but on a loaded
machine one blocked on its first locking read can wait before InnoDB lists it at all (seen in
test_tracking_race: the receipt's `SELECT ... FOR UPDATE` blocked in state "Statistics" for 30 s,
absent from innodb_trx, 2 runs in 3 with CPU burners). So a statement of the test's database
still running after half a second counts too: unblocked, each statement these tests send takes
milliseconds.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

_WAITING = text(
    "SELECT (SELECT COUNT(*) FROM information_schema.innodb_trx t"
    " JOIN information_schema.processlist p ON p.id = t.trx_mysql_thread_id"
    " WHERE t.trx_state = 'LOCK WAIT' AND p.db = DATABASE() AND (:id IS NULL OR p.id = :id))"
    " + (SELECT COUNT(*) FROM information_schema.processlist p"
    " WHERE p.db = DATABASE() AND p.id <> CONNECTION_ID() AND p.command = 'Query' AND p.time_ms >= 500"
    " AND (:id IS NULL OR p.id = :id))"
)


def waiting(conn: Connection, connection_id: int | None = None) -> int:
    """How many connections of this database, other than `conn` (or only `connection_id`), wait on
    a row lock: 0 when none does. Sends one statement."""
    return int(conn.execute(_WAITING, {"id": connection_id}).scalar_one())
