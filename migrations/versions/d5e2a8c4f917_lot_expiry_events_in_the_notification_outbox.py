"""Lot expiry events in the notification outbox beside low-stock events

Revision ID: d5e2a8c4f917
Revises: b3f8d1c6e270
Create Date: 2026-12-06 05:30:00.000000

The daily expiry check (`flask lots check-expiry`, also run by the notification worker) writes
"lot expiring" and "lot expired with stock" events into `low_stock_events`, the outbox the
notification worker delivers, so they reach WeCom and webhooks the same way: `kind` tells them
apart ('low_stock' for every existing row), `lot_id` and `event_day` say which lot and day, and a
unique key (lot_id, location_id, event_day) keeps one event per lot and place a day however often
the check runs. A low-stock event has no lot, and NULLs never collide: nothing changes for them.
An expiry event comes from no movement: `movement_id` becomes optional.

SQLite cannot make a column optional in place: the table is rebuilt, with foreign keys off while
`notification_deliveries` points at it (SQLite would otherwise refuse to drop the old table).
"""

import sqlalchemy as sa
from alembic import op

revision = "d5e2a8c4f917"
down_revision = "b3f8d1c6e270"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _rebuild(change):
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("PRAGMA foreign_keys=OFF")
    with op.batch_alter_table("low_stock_events", schema=None) as batch_op:
        change(batch_op)
    if sqlite:
        op.execute("PRAGMA foreign_keys=ON")


def upgrade():
    def change(batch_op):
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default=sa.text("'low_stock'"))
        )
        batch_op.add_column(sa.Column("lot_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("event_day", sa.Date(), nullable=True))
        batch_op.alter_column("movement_id", existing_type=BIG_ID, nullable=True)
        batch_op.create_foreign_key("fk_low_stock_events_lot_id_lots", "lots", ["lot_id"], ["id"])
        batch_op.create_unique_constraint(
            "uq_low_stock_events_lot_location_day", ["lot_id", "location_id", "event_day"]
        )

    _rebuild(change)


def downgrade():
    op.execute("DELETE FROM low_stock_events WHERE kind <> 'low_stock'")

    def change(batch_op):
        batch_op.drop_constraint("fk_low_stock_events_lot_id_lots", type_="foreignkey")
        batch_op.drop_constraint("uq_low_stock_events_lot_location_day", type_="unique")
        batch_op.alter_column("movement_id", existing_type=BIG_ID, nullable=False)
        batch_op.drop_column("event_day")
        batch_op.drop_column("lot_id")
        batch_op.drop_column("kind")

    _rebuild(change)
