"""Count serial-tracked items serial by serial: the serials a counter found on a count line

Revision ID: e8b4c1f7a2d6
Revises: b8d4f2a6c051
Create Date: 2026-12-06 07:20:00.000000

A count line of a serial-tracked item keeps the serial numbers found there (`count_serials`); its
count is how many. Approval writes off the serials expected there and not found, moves found ones
the system had elsewhere, and brings back found ones it had not, each on a ledger line naming them.
"""

import sqlalchemy as sa
from alembic import op

revision = "e8b4c1f7a2d6"
down_revision = "b8d4f2a6c051"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "count_serials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("count_line_id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["count_line_id"], ["count_lines.id"], name=op.f("fk_count_serials_count_line_id_count_lines")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_count_serials")),
        sa.UniqueConstraint("count_line_id", "serial", name="uq_count_serials_line_serial"),
    )


def downgrade():
    op.drop_table("count_serials")
