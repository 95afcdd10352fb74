"""Stock-outs waiting to be combined: one row per stock-out in flight on a hot stock level

Revision ID: a7c3e9f1b524
Revises: e8b4c1f7a2d6
Create Date: 2026-12-06 07:30:00.000000

A plain stock-out records its intent here, committed on its own, before it asks for its stock
level's row lock; whichever request holds that lock applies every pending intent of the level in
one transaction (app/services/combining.py, issue 19). The outcome stays on the row until the
requester has read it; old rows are deleted. No foreign keys: checking one takes a shared lock on
the item row, which a running batch holds (the item totals' triggers update it), and intents
would queue behind the batch they should join.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "a7c3e9f1b524"
down_revision = "e8b4c1f7a2d6"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
QUANTITY = sa.Numeric(precision=18, scale=3)
UTC_DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade():
    op.create_table(
        "stock_out_intents",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("location_id", sa.Integer(), nullable=False),
        sa.Column("quantity", QUANTITY, nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("reason_code", sa.String(length=32), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("idempotency_scope", sa.String(length=80), nullable=True),
        sa.Column("idempotency_key", sa.String(length=160), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("movement_id", BIG_ID, nullable=True),
        sa.Column("available", QUANTITY, nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'done', 'short', 'conflict')", name=op.f("ck_stock_out_intents_status_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_out_intents")),
    )
    op.create_index(
        "ix_stock_out_intents_place_status_id",
        "stock_out_intents",
        ["item_id", "location_id", "status", "id"],
        unique=False,
    )


def downgrade():
    op.drop_table("stock_out_intents")
