"""Store why the system wrote a ledger line as a reason code, translated when shown

Revision ID: e4a9c2d17b85
Revises: 26f84955be03
Create Date: 2026-11-26 02:50:00.000000

Scan-page undos used to write a sentence in the clerk's language into movements.note, where it
stayed in that language for every later reader. They now write movements.reason_code
("scan_undo") and leave note for what a person typed. Existing lines keep their note as written:
the ledger is never updated.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "e4a9c2d17b85"
down_revision = "26f84955be03"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain nullable ADD COLUMN: no table rebuild on SQLite, instant on MariaDB (no triggers on
    # movements are touched).
    op.add_column("movements", sa.Column("reason_code", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("movements") as batch:
        batch.drop_column("reason_code")
