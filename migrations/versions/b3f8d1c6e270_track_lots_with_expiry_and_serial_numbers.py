"""Track lots with expiry dates and serial numbers: stock levels, movements and count lines per lot

Revision ID: b3f8d1c6e270
Revises: a7d3f9c2e614
Create Date: 2026-12-06 05:00:00.000000

Items get `tracking` ('none', 'lot', 'serial'), `requires_expiry` and `expiry_warning_days`.
`lots` (unique per item and code) and `serials` (unique per item and serial) are new; a ledger
line records its lot, and `movement_serials` the serials it moved.

A stock level (and a count line) is per item, location and lot. A unique index never sees two
NULL lots as equal, so the key holds `lot_key`: the lot's id, or 0 without a lot (checked by the
database to agree with `lot_id`). Existing levels and lines get lot_key 0: nothing changes for them.

SQLite cannot change a table's unique constraint in place: `stock_levels` and `count_lines` are
rebuilt, and the on-hand triggers of stock_levels (5d2f6e1a9b47) are dropped before and created
again after (SQLite refuses the rebuild while they exist). The rebuild copies every level: the
totals they keep do not change.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "b3f8d1c6e270"
down_revision = "a7d3f9c2e614"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# The on-hand triggers as 5d2f6e1a9b47 created them (a revision imports nothing from another).
_TRIGGERS = {
    "insert": ("on_hand + NEW.quantity", "NEW.item_id"),
    "update": (
        "on_hand + CASE WHEN id = NEW.item_id THEN NEW.quantity ELSE 0 END"
        " - CASE WHEN id = OLD.item_id THEN OLD.quantity ELSE 0 END",
        "OLD.item_id, NEW.item_id",
    ),
    "delete": ("on_hand - OLD.quantity", "OLD.item_id"),
}


def _create_trigger(event: str) -> str:
    total, items = _TRIGGERS[event]
    head = f"CREATE TRIGGER stock_levels_on_hand_{event} AFTER {event.upper()} ON stock_levels FOR EACH ROW"
    body = f"UPDATE items SET on_hand = ROUND({total}, 3) WHERE id IN ({items})"  # noqa: S608 (constants only)
    return f"{head} BEGIN {body}; END"


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


@contextmanager
def _rebuilding(table: str) -> Iterator[None]:
    """SQLite rebuilds `table`: the on-hand triggers of stock_levels go first and come back after."""
    triggered = _sqlite() and table == "stock_levels"
    if triggered:
        for event in _TRIGGERS:
            op.execute(f"DROP TRIGGER stock_levels_on_hand_{event}")
    yield
    if triggered:
        for event in _TRIGGERS:
            op.execute(_create_trigger(event))


def _rekey(table: str, old: tuple[str, list[str]], new: tuple[str, list[str]], with_check: bool) -> None:
    """Add lot_id and lot_key to `table` and swap its unique key `old` for `new`."""
    with _rebuilding(table), op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.add_column(sa.Column("lot_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("lot_key", sa.Integer(), server_default=sa.text("0"), nullable=False))
        batch_op.create_foreign_key(batch_op.f(f"fk_{table}_lot_id_lots"), "lots", ["lot_id"], ["id"])
        batch_op.create_index(batch_op.f(f"ix_{table}_lot_id"), ["lot_id"], unique=False)
        if with_check:
            batch_op.create_check_constraint(batch_op.f(f"ck_{table}_lot_key_is_lot"), "lot_key = COALESCE(lot_id, 0)")
        # The new key first: on MariaDB the old one may be the index a foreign key uses.
        batch_op.create_unique_constraint(new[0], new[1])
        batch_op.drop_constraint(old[0], type_="unique")


def _unkey(table: str, old: tuple[str, list[str]], new: tuple[str, list[str]], with_check: bool) -> None:
    with _rebuilding(table), op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.create_unique_constraint(old[0], old[1])
        batch_op.drop_constraint(new[0], type_="unique")
        if with_check:
            batch_op.drop_constraint(batch_op.f(f"ck_{table}_lot_key_is_lot"), type_="check")
        batch_op.drop_constraint(batch_op.f(f"fk_{table}_lot_id_lots"), type_="foreignkey")
        batch_op.drop_index(batch_op.f(f"ix_{table}_lot_id"))
        batch_op.drop_column("lot_key")
        batch_op.drop_column("lot_id")


_KEYS = {
    "stock_levels": (
        ("uq_stock_levels_item_location", ["item_id", "location_id"]),
        ("uq_stock_levels_item_location_lot", ["item_id", "location_id", "lot_key"]),
        True,
    ),
    "count_lines": (
        ("uq_count_lines_count_item_location", ["count_id", "item_id", "location_id"]),
        ("uq_count_lines_count_item_location_lot", ["count_id", "item_id", "location_id", "lot_key"]),
        False,
    ),
}


def upgrade():
    # Plain ALTER TABLE on SQLite: rebuilding `items` would fail the foreign keys that point at it.
    with op.batch_alter_table("items", schema=None, recreate="never") as batch_op:
        batch_op.add_column(
            sa.Column("tracking", sa.String(length=8), server_default=sa.text("'none'"), nullable=False)
        )
        batch_op.add_column(sa.Column("requires_expiry", sa.Boolean(), server_default=sa.text("0"), nullable=False))
        batch_op.add_column(sa.Column("expiry_warning_days", sa.Integer(), nullable=True))

    op.create_table(
        "lots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("expiry", sa.Date(), nullable=True),
        sa.Column("received_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name=op.f("fk_lots_item_id_items")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lots")),
        sa.UniqueConstraint("item_id", "code", name="uq_lots_item_code"),
    )
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.create_index("ix_lots_expiry", ["expiry"], unique=False)

    op.create_table(
        "serials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("location_id", sa.Integer(), nullable=True),
        sa.Column("lot_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.CheckConstraint("status IN ('in_stock', 'issued')", name=op.f("ck_serials_status_known")),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name=op.f("fk_serials_item_id_items")),
        sa.ForeignKeyConstraint(["location_id"], ["locations.id"], name=op.f("fk_serials_location_id_locations")),
        sa.ForeignKeyConstraint(["lot_id"], ["lots.id"], name=op.f("fk_serials_lot_id_lots")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serials")),
        sa.UniqueConstraint("item_id", "serial", name="uq_serials_item_serial"),
    )
    with op.batch_alter_table("serials", schema=None) as batch_op:
        batch_op.create_index("ix_serials_item_id_location_id", ["item_id", "location_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_serials_location_id"), ["location_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_serials_lot_id"), ["lot_id"], unique=False)

    # The ledger is large and other tables point at it: a column added in place, never a rebuild.
    if _sqlite():
        op.execute(
            "ALTER TABLE movements ADD COLUMN lot_id INTEGER CONSTRAINT fk_movements_lot_id_lots REFERENCES lots (id)"
        )
    else:
        op.add_column("movements", sa.Column("lot_id", sa.Integer(), nullable=True))
        op.create_foreign_key("fk_movements_lot_id_lots", "movements", "lots", ["lot_id"], ["id"])
    op.create_index("ix_movements_lot_id_id", "movements", ["lot_id", "id"], unique=False)

    op.create_table(
        "movement_serials",
        sa.Column("movement_id", BIG_ID, nullable=False),
        sa.Column("serial_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["movement_id"], ["movements.id"], name=op.f("fk_movement_serials_movement_id_movements")
        ),
        sa.ForeignKeyConstraint(["serial_id"], ["serials.id"], name=op.f("fk_movement_serials_serial_id_serials")),
        sa.PrimaryKeyConstraint("movement_id", "serial_id", name=op.f("pk_movement_serials")),
    )
    with op.batch_alter_table("movement_serials", schema=None) as batch_op:
        batch_op.create_index("ix_movement_serials_serial_id_movement_id", ["serial_id", "movement_id"], unique=False)

    for table, (old, new, with_check) in _KEYS.items():
        _rekey(table, old, new, with_check)


def downgrade():
    for table, (old, new, with_check) in _KEYS.items():
        _unkey(table, old, new, with_check)
    op.drop_table("movement_serials")
    # On SQLite a rebuild of the ledger (the column is in a foreign key), as e4a9c2d17b85 does.
    sqlite = _sqlite()
    if not sqlite:  # the key first: MariaDB's key needs the index (SQLite's rebuild drops both)
        op.drop_constraint("fk_movements_lot_id_lots", "movements", type_="foreignkey")
    op.drop_index("ix_movements_lot_id_id", table_name="movements")
    with op.batch_alter_table("movements", schema=None) as batch_op:
        batch_op.drop_column("lot_id")
    op.drop_table("serials")
    op.drop_table("lots")
    with op.batch_alter_table("items", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("expiry_warning_days")
        batch_op.drop_column("requires_expiry")
        batch_op.drop_column("tracking")
