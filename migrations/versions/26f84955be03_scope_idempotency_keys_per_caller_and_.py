"""Scope idempotency keys per caller, and remember item creations made with a key

Revision ID: 26f84955be03
Revises: e4a7c2d9b813
Create Date: 2026-11-26 03:00:00.000000

Keys were unique across everyone, so another caller's request with the same key was answered
with the first caller's movement (issue 14, finding 11). A key is now unique per scope: the user
("user:<username>") for pages, the API token ("token:<id>") for the API. Existing keyed movements
get their user's scope. item_requests holds the API's keyed item creations (issue 12).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = "26f84955be03"
down_revision = "e4a7c2d9b813"
branch_labels = None
depends_on = None

# The DDL of the app's UTC timestamp type, written out so that this revision imports no app code.
UTC_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade():
    with op.batch_alter_table("movements", schema=None) as batch_op:
        batch_op.add_column(sa.Column("idempotency_scope", sa.String(length=80), nullable=True))
    movements = sa.table(
        "movements", sa.column("idempotency_scope", sa.String), sa.column("idempotency_key"), sa.column("username", sa.String)
    )
    # `+` on strings compiles to || on SQLite and CONCAT() on MariaDB/MySQL.
    op.execute(
        movements.update()
        .where(movements.c.idempotency_key.is_not(None))
        .values(idempotency_scope=sa.literal("user:", sa.String) + movements.c.username)
    )
    with op.batch_alter_table("movements", schema=None) as batch_op:
        batch_op.drop_constraint("uq_movements_idempotency_key", type_="unique")
        batch_op.create_unique_constraint(
            "uq_movements_idempotency_scope", ["idempotency_scope", "idempotency_key"]
        )

    op.create_table(
        "item_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_scope", sa.String(length=80), nullable=False),
        sa.Column("idempotency_key", sa.String(length=160), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name="fk_item_requests_item_id_items"),
        sa.PrimaryKeyConstraint("id", name="pk_item_requests"),
        sa.UniqueConstraint("idempotency_scope", "idempotency_key", name="uq_item_requests_idempotency_scope"),
    )
    with op.batch_alter_table("item_requests", schema=None) as batch_op:
        batch_op.create_index("ix_item_requests_item_id", ["item_id"], unique=False)


def downgrade():
    # Fails, rightly, once two callers have used the same key: keys were global before.
    op.drop_table("item_requests")
    with op.batch_alter_table("movements", schema=None) as batch_op:
        batch_op.drop_constraint("uq_movements_idempotency_scope", type_="unique")
        batch_op.drop_column("idempotency_scope")
        batch_op.create_unique_constraint("uq_movements_idempotency_key", ["idempotency_key"])
