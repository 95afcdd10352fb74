"""Which database errors make a unit of work run again."""

from __future__ import annotations

import sqlite3

import pymysql
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from app.services.transaction import retry_reason


def wrap(kind, orig):
    return kind("UPDATE stock_levels ...", {}, orig)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (wrap(OperationalError, pymysql.err.OperationalError(1213, "Deadlock found")), "deadlock"),
        (wrap(OperationalError, pymysql.err.OperationalError(1205, "Lock wait timeout")), "lock_wait_timeout"),
        (wrap(OperationalError, sqlite3.OperationalError("database is locked")), "database_locked"),
        # Galera: a certification conflict with another node, and a node that is not in the cluster.
        (
            wrap(OperationalError, pymysql.err.OperationalError(1213, "Deadlock: wsrep aborted transaction")),
            "deadlock",
        ),
        (
            wrap(
                OperationalError,
                pymysql.err.OperationalError(1047, "WSREP has not yet prepared node for application use"),
            ),
            "node_not_ready",
        ),
        (
            wrap(
                IntegrityError,
                pymysql.err.IntegrityError(1062, "Duplicate entry 'k' for key 'uq_movements_idempotency_key'"),
            ),
            "duplicate_key",
        ),
        (
            wrap(
                IntegrityError,
                sqlite3.IntegrityError("UNIQUE constraint failed: stock_levels.item_id, stock_levels.location_id"),
            ),
            "duplicate_key",
        ),
    ],
)
def test_lock_conflicts_and_lost_insert_races_are_retried(error, reason):
    assert retry_reason(error) == reason


@pytest.mark.parametrize(
    "error",
    [
        wrap(
            IntegrityError,
            pymysql.err.IntegrityError(4025, "CONSTRAINT `ck_stock_levels_quantity_not_negative` failed"),
        ),
        wrap(IntegrityError, pymysql.err.IntegrityError(1062, "Duplicate entry 'A-1' for key 'uq_items_sku'")),
        wrap(OperationalError, pymysql.err.OperationalError(2003, "Can't connect")),
        wrap(ProgrammingError, pymysql.err.ProgrammingError(1064, "syntax")),
        ValueError("not a database error"),
    ],
)
def test_other_errors_are_not_retried(error):
    assert retry_reason(error) is None


def test_a_lost_connection_is_retried_only_before_commit():
    lost = OperationalError(
        "SELECT 1", {}, pymysql.err.OperationalError(2013, "Lost connection"), connection_invalidated=True
    )
    assert retry_reason(lost) == "disconnect"
    assert retry_reason(lost, committing=True) is None
