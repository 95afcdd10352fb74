"""Rename the outbox table low_stock_events to outbox_events

Revision ID: a3c9e1f7b240
Revises: a6c2e9f4b1d8
Create Date: 2026-12-06 07:20:00.000000

The table has held more than low-stock events since lot expiry events joined it (`kind`), and
reservation events join it next: its name says what it is, the notification outbox. Its index and
its unique key are renamed with it. MariaDB renames both in place; SQLite (3.26+) renames the table
and rewrites the foreign key of notification_deliveries that points at it, and the table is then
rebuilt to rename its unique key (foreign keys off meanwhile, as in d5e2a8c4f917).
"""

from alembic import op

revision = "a3c9e1f7b240"
down_revision = "a6c2e9f4b1d8"
branch_labels = None
depends_on = None

_NAMES = {
    "table": ("low_stock_events", "outbox_events"),
    "index": ("ix_low_stock_events_status_next_attempt_at", "ix_outbox_events_status_next_attempt_at"),
    "unique": ("uq_low_stock_events_lot_location_day", "uq_outbox_events_lot_location_day"),
}


def _rename(old: int, new: int):
    table = _NAMES["table"][new]
    op.rename_table(_NAMES["table"][old], table)
    index, unique = (_NAMES["index"][old], _NAMES["index"][new]), (_NAMES["unique"][old], _NAMES["unique"][new])
    if op.get_bind().dialect.name != "sqlite":
        for before, after in (index, unique):
            op.execute(f"ALTER TABLE {table} RENAME INDEX {before} TO {after}")
        return
    op.execute(f"DROP INDEX {index[0]}")
    op.execute(f"CREATE INDEX {index[1]} ON {table} (status, next_attempt_at)")
    op.execute("PRAGMA foreign_keys=OFF")
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.drop_constraint(unique[0], type_="unique")
        batch_op.create_unique_constraint(unique[1], ["lot_id", "location_id", "event_day"])
    op.execute("PRAGMA foreign_keys=ON")


def upgrade():
    _rename(0, 1)


def downgrade():
    _rename(1, 0)
