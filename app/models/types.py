"""Column types shared by every model: exact quantities and UTC timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Dialect, Integer, Numeric, String
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeDecorator

QUANTITY_SCALE = 3
QUANTITY_STEP = Decimal(1).scaleb(-QUANTITY_SCALE)  # 0.001
# The largest row id either database stores (a signed 64-bit integer: MariaDB BIGINT, SQLite
# INTEGER); past it SQLite cannot even compare a column with the number.
MAX_ROW_ID = 2**63 - 1
# Up to 999,999,999,999,999.999 of anything: far beyond a warehouse, well inside NUMERIC(18, 3).
Quantity = Numeric(18, QUANTITY_SCALE, asdecimal=True)

# SQLite only auto-increments an INTEGER PRIMARY KEY; MariaDB gets a real BIGINT for the ledger.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def binary_string(length: int) -> String:
    """Text compared byte for byte: utf8mb4_bin on MariaDB/MySQL (SQLite compares bytes anyway)."""
    return String(length).with_variant(mysql.VARCHAR(length, collation="utf8mb4_bin"), "mysql", "mariadb")


def one_of(column: str, values: tuple[str, ...]) -> CheckConstraint:
    """The CHECK that `column` holds one of `values` (named "<column>_known"): the model's own tuple
    of kinds or statuses is the one the database enforces."""
    listed = ", ".join(f"'{value}'" for value in values)
    return CheckConstraint(f"{column} IN ({listed})", name=f"{column}_known")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Stores naive UTC (DATETIME(6) on MySQL) and always hands back aware UTC datetimes."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in {"mysql", "mariadb"}:
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous: pass an aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)
