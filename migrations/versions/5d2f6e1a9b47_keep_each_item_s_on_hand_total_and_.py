"""Keep each item's on-hand total and whether it is low, maintained by triggers on stock levels

Revision ID: 5d2f6e1a9b47
Revises: caff2c0f360b
Create Date: 2026-11-25 12:20:00.000000

items.on_hand is the sum of the item's stock_levels; three triggers on stock_levels change it in
the same statement as the level, whoever writes it. items.is_low (computed, indexed) lets the
low-stock filters and counts read an index instead of summing every item's levels.

SQLite refuses to rebuild `items` or `stock_levels` (what a batch migration does) while these
triggers exist: a later migration that does must drop them first and create them again.

On MariaDB/MySQL the migrating user needs the TRIGGER privilege and, with binary logging on,
SUPER or log_bin_trust_function_creators=1.

The backfill runs after the triggers exist, so a stock change made while it runs is counted
either by the trigger or by the backfill; `flask check-ledger` verifies the totals.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "5d2f6e1a9b47"
down_revision = "caff2c0f360b"
branch_labels = None
depends_on = None

# Each trigger is one UPDATE of the items it touches: (new total, which items). An UPDATE of a
# level handles a level moved to another item too (never done, but a trigger must not be wrong
# for it). SQLite stores fractional NUMERIC values as floats: ROUND keeps its totals at three
# decimals so that is_low compares exactly.
_TRIGGERS = {
    "insert": ("on_hand + NEW.quantity", "NEW.item_id"),
    "update": (
        "on_hand + CASE WHEN id = NEW.item_id THEN NEW.quantity ELSE 0 END"
        " - CASE WHEN id = OLD.item_id THEN OLD.quantity ELSE 0 END",
        "OLD.item_id, NEW.item_id",
    ),
    "delete": ("on_hand - OLD.quantity", "OLD.item_id"),
}


def _create_trigger(event: str, sqlite: bool) -> str:
    total, items = _TRIGGERS[event]
    if sqlite:
        total = f"ROUND({total}, 3)"
    head = f"CREATE TRIGGER stock_levels_on_hand_{event} AFTER {event.upper()} ON stock_levels FOR EACH ROW"
    body = f"UPDATE items SET on_hand = {total} WHERE id IN ({items})"  # noqa: S608 (constants only)
    return f"{head} BEGIN {body}; END" if sqlite else f"{head} {body}"


def upgrade():
    # Plain ALTER TABLE on SQLite too: rebuilding `items` would fail the foreign keys that point
    # at it (and SQLite can add a VIRTUAL computed column, not a STORED one).
    with op.batch_alter_table("items", schema=None, recreate="never") as batch_op:
        batch_op.add_column(
            sa.Column("on_hand", sa.Numeric(precision=18, scale=3), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "is_low",
                sa.Boolean(),
                sa.Computed("reorder_point > 0 AND on_hand <= reorder_point", persisted=False),
                nullable=True,
            )
        )
        batch_op.create_index("ix_items_is_low_archived_sku", ["is_low", "archived", "sku"], unique=False)
        batch_op.create_index(
            "ix_items_category_id_is_low_archived_sku", ["category_id", "is_low", "archived", "sku"], unique=False
        )
    sqlite = op.get_bind().dialect.name == "sqlite"
    for event in _TRIGGERS:
        op.execute(_create_trigger(event, sqlite))
    op.execute(
        "UPDATE items SET on_hand = COALESCE("
        "(SELECT SUM(stock_levels.quantity) FROM stock_levels WHERE stock_levels.item_id = items.id), 0)"
    )


def downgrade():
    for event in _TRIGGERS:
        op.execute(f"DROP TRIGGER stock_levels_on_hand_{event}")
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+), for the same reason.
    with op.batch_alter_table("items", schema=None, recreate="never") as batch_op:
        batch_op.drop_index("ix_items_category_id_is_low_archived_sku")
        batch_op.drop_index("ix_items_is_low_archived_sku")
        batch_op.drop_column("is_low")
        batch_op.drop_column("on_hand")
