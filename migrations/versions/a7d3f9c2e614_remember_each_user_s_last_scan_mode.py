"""Remember each user's last scan mode

The scan page opened in issue mode for everyone, so a clerk receiving a delivery who forgot to
switch issued the stock instead. It now opens in the mode the user chose last, and in no mode
until they choose one. A plain nullable ADD COLUMN: no rebuild on SQLite, instant on MariaDB.

Revision ID: a7d3f9c2e614
Revises: a7d3f9b2c615
Create Date: 2026-12-06 04:20:00.000000

"""

import sqlalchemy as sa
from alembic import op

revision = "a7d3f9c2e614"
down_revision = "a7d3f9b2c615"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("scan_mode", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("scan_mode")
