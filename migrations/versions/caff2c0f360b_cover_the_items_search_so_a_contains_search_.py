"""Cover the items search so a contains search reads one index in SKU order

Revision ID: caff2c0f360b
Revises: 6bc0df423a63
Create Date: 2026-11-25 11:27:00.000000

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "caff2c0f360b"
down_revision = "6bc0df423a63"
branch_labels = None
depends_on = None

COLUMNS = ["archived", "sku", "id", "barcode", "name_pinyin", "name_initials", "name"]


def upgrade():
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.create_index("ix_items_search", COLUMNS, unique=False)


def downgrade():
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_index("ix_items_search")
