"""Reservations hold stock at levels for orders: stock_levels.reserved, items.reserved, the tables

Revision ID: b8d4f2a6c051
Revises: a3c9e1f7b240
Create Date: 2026-12-06 07:40:00.000000

stock_levels.reserved is what open reservations hold at a level; the database refuses a level
whose reserved part is negative or more than its quantity. items.reserved is its sum per item,
kept by the same three triggers that keep items.on_hand (5d2f6e1a9b47), replaced with the second
column (on SQLite dropped and created again: it refuses to rebuild stock_levels while they exist;
on MariaDB replaced in place, set-wise-aware as f3b9e1d7c482 makes them). reservations,
reservation_lines and reservation_movements (which ledger line issued which reservation line) are
new; the outbox gains the reservation an event is about, and room for the longer reservation kinds.

On MariaDB/MySQL the migrating user needs the TRIGGER privilege (see 5d2f6e1a9b47).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "b8d4f2a6c051"
down_revision = "a3c9e1f7b240"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
QUANTITY = sa.Numeric(precision=18, scale=3)
_EVENTS = ("insert", "update", "delete")


# Each item total and the level column it sums.
_SUMS = {"on_hand": "quantity", "reserved": "reserved"}


def _totals(event: str, columns: tuple[str, ...]) -> tuple[str, str]:
    """The SET list of one trigger over the item `columns`, and which items it touches."""
    if event == "insert":
        exprs = [f"{c} = {{round}}({c} + NEW.{_SUMS[c]})" for c in columns]
        return ", ".join(exprs), "NEW.item_id"
    if event == "delete":
        exprs = [f"{c} = {{round}}({c} - OLD.{_SUMS[c]})" for c in columns]
        return ", ".join(exprs), "OLD.item_id"
    exprs = [
        f"{c} = {{round}}({c} + CASE WHEN id = NEW.item_id THEN NEW.{_SUMS[c]} ELSE 0 END"
        f" - CASE WHEN id = OLD.item_id THEN OLD.{_SUMS[c]} ELSE 0 END)"
        for c in columns
    ]
    return ", ".join(exprs), "OLD.item_id, NEW.item_id"


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _create_triggers(columns: tuple[str, ...]) -> None:
    """The three triggers over the item `columns`. SQLite stores fractional NUMERIC values as
    floats: ROUND keeps its totals at three decimals. MariaDB's are replaced in one statement each
    (no write goes uncounted in between), and its INSERT and UPDATE triggers skip their row while a
    bulk writer totals on_hand itself (@inventory_on_hand_set_wise, revision f3b9e1d7c482; such a
    writer never changes `reserved`): the variable is NULL for every other writer."""
    for event in _EVENTS:
        sets, items = _totals(event, columns)
        rounded = sets.replace("{round}(", "ROUND(").replace(")", ", 3)")
        sets = rounded if _sqlite() else sets.replace("{round}", "")
        body = f"UPDATE items SET {sets} WHERE id IN ({items})"  # noqa: S608 (constants only)
        trigger = f"TRIGGER stock_levels_on_hand_{event} AFTER {event.upper()} ON stock_levels FOR EACH ROW"
        if _sqlite():
            op.execute(f"CREATE {trigger} BEGIN {body}; END")
        elif event == "delete":
            op.execute(f"CREATE OR REPLACE {trigger} {body}")
        else:
            op.execute(f"CREATE OR REPLACE {trigger} IF @inventory_on_hand_set_wise IS NULL THEN {body}; END IF")


def _drop_triggers() -> None:
    for event in _EVENTS:
        op.execute(f"DROP TRIGGER stock_levels_on_hand_{event}")


def _kind(batch_op, before: int, after: int) -> None:
    batch_op.alter_column(
        "kind",
        existing_type=sa.String(length=before),
        type_=sa.String(length=after),
        existing_nullable=False,
        existing_server_default=sa.text("'low_stock'"),
    )


def _outbox(change) -> None:
    if _sqlite():
        op.execute("PRAGMA foreign_keys=OFF")
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        change(batch_op)
    if _sqlite():
        op.execute("PRAGMA foreign_keys=ON")


def upgrade():
    # SQLite cannot rebuild stock_levels while they exist; MariaDB alters it in place.
    if _sqlite():
        _drop_triggers()
    with op.batch_alter_table("stock_levels", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reserved", QUANTITY, server_default=sa.text("0"), nullable=False))
        batch_op.create_check_constraint("reserved_within_quantity", "reserved >= 0 AND reserved <= quantity")
    with op.batch_alter_table("items", schema=None, recreate="never") as batch_op:
        batch_op.add_column(sa.Column("reserved", QUANTITY, server_default=sa.text("0"), nullable=False))
    _create_triggers(("on_hand", "reserved"))
    op.create_table(
        "reservations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("expires_at", UTC_DATETIME, nullable=True),
        sa.Column("idempotency_scope", sa.String(length=80), nullable=True),
        sa.Column("idempotency_key", sa.String(length=160), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.Column("closed_at", UTC_DATETIME, nullable=True),
        sa.Column("closed_by", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'partly_picked', 'picked', 'cancelled', 'expired')",
            name=op.f("ck_reservations_status_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reservations")),
        sa.UniqueConstraint("idempotency_scope", "idempotency_key", name="uq_reservations_idempotency_scope"),
    )
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.create_index("ix_reservations_reference_id", ["reference", "id"], unique=False)
        batch_op.create_index("ix_reservations_status_id", ["status", "id"], unique=False)
        batch_op.create_index("ix_reservations_status_expires_at", ["status", "expires_at"], unique=False)
    op.create_table(
        "reservation_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reservation_id", sa.Integer(), nullable=False),
        sa.Column("request_line", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("location_id", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=True),
        sa.Column("quantity", QUANTITY, nullable=False),
        sa.Column("picked", QUANTITY, nullable=False),
        sa.Column("released", QUANTITY, nullable=False),
        sa.Column("short_reason", sa.String(length=200), nullable=True),
        sa.Column("picked_by", sa.String(length=64), nullable=True),
        sa.Column("picked_at", UTC_DATETIME, nullable=True),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_reservation_lines_quantity_positive")),
        sa.CheckConstraint(
            "picked >= 0 AND released >= 0", name=op.f("ck_reservation_lines_picked_released_not_negative")
        ),
        sa.CheckConstraint("picked + released <= quantity", name=op.f("ck_reservation_lines_within_quantity")),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name=op.f("fk_reservation_lines_item_id_items")),
        sa.ForeignKeyConstraint(
            ["location_id"], ["locations.id"], name=op.f("fk_reservation_lines_location_id_locations")
        ),
        sa.ForeignKeyConstraint(["lot_id"], ["lots.id"], name=op.f("fk_reservation_lines_lot_id_lots")),
        sa.ForeignKeyConstraint(
            ["reservation_id"], ["reservations.id"], name=op.f("fk_reservation_lines_reservation_id_reservations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reservation_lines")),
    )
    with op.batch_alter_table("reservation_lines", schema=None) as batch_op:
        batch_op.create_index("ix_reservation_lines_reservation_id_id", ["reservation_id", "id"], unique=False)
        batch_op.create_index("ix_reservation_lines_item_id_location_id", ["item_id", "location_id"], unique=False)
    op.create_table(
        "reservation_movements",
        sa.Column("movement_id", BIG_ID, nullable=False),
        sa.Column("line_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["line_id"], ["reservation_lines.id"], name=op.f("fk_reservation_movements_line_id_reservation_lines")
        ),
        sa.ForeignKeyConstraint(
            ["movement_id"], ["movements.id"], name=op.f("fk_reservation_movements_movement_id_movements")
        ),
        sa.PrimaryKeyConstraint("movement_id", name=op.f("pk_reservation_movements")),
    )
    with op.batch_alter_table("reservation_movements", schema=None) as batch_op:
        batch_op.create_index("ix_reservation_movements_line_id", ["line_id"], unique=False)

    def change(batch_op):
        _kind(batch_op, 16, 32)
        batch_op.add_column(sa.Column("reservation_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_outbox_events_reservation_id_reservations", "reservations", ["reservation_id"], ["id"]
        )

    _outbox(change)


def downgrade():
    op.execute("DELETE FROM outbox_events WHERE reservation_id IS NOT NULL")

    def change(batch_op):
        batch_op.drop_constraint("fk_outbox_events_reservation_id_reservations", type_="foreignkey")
        batch_op.drop_column("reservation_id")
        _kind(batch_op, 32, 16)

    _outbox(change)
    op.drop_table("reservation_movements")
    op.drop_table("reservation_lines")
    op.drop_table("reservations")
    if _sqlite():
        _drop_triggers()
    else:
        _create_triggers(("on_hand",))  # no longer naming the columns about to go
    with op.batch_alter_table("items", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("reserved")
    with op.batch_alter_table("stock_levels", schema=None) as batch_op:
        batch_op.drop_constraint("reserved_within_quantity", type_="check")
        batch_op.drop_column("reserved")
    if _sqlite():
        _create_triggers(("on_hand",))
