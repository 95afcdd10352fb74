"""Mark the search pieces found only at the start of a search text, so a SKU-prefix search reads a range

Revision ID: a6c2e9f4b1d8
Revises: f3b9e1d7c482
Create Date: 2026-12-06 08:00:00.000000

search_grams.inside is true for a piece seen somewhere other than at the start of some item's
search text (which starts with the folded SKU), false for one seen only at the start. A term with
a piece never seen inside can only be contained at the start, that is in SKUs that begin with it:
the items search then reads that SKU range of ix_items_search instead of scanning the catalogue
up to the page (app.services.catalog). Existing pieces are marked from today's search texts;
pieces no item holds any more stay inside (true), which only costs that shortcut.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "a6c2e9f4b1d8"
down_revision = "f3b9e1d7c482"
branch_labels = None
depends_on = None

GRAM = 3
CHUNK = 1000


def _leading_only() -> list[str]:
    """The first pieces of today's search texts that no search text holds anywhere else."""
    items = sa.table("items", sa.column("search_text"))
    leading: set[str] = set()
    inside: set[str] = set()
    for (text,) in op.get_bind().execute(sa.select(items.c.search_text)):
        leading.add(text[:GRAM])
        inside.update(text[i : i + GRAM] for i in range(1, len(text) - GRAM + 1))
    return sorted(piece for piece in leading - inside if len(piece) == GRAM)


def upgrade():
    with op.batch_alter_table("search_grams", schema=None) as batch_op:
        batch_op.add_column(sa.Column("inside", sa.Boolean(), server_default=sa.text("1"), nullable=False))
        batch_op.create_index("ix_search_grams_inside", ["inside"], unique=False)
    grams = sa.table("search_grams", sa.column("gram"), sa.column("inside", sa.Boolean()))
    pieces = _leading_only()
    for start in range(0, len(pieces), CHUNK):
        op.execute(grams.update().where(grams.c.gram.in_(pieces[start : start + CHUNK])).values(inside=False))


def downgrade():
    with op.batch_alter_table("search_grams", schema=None) as batch_op:
        batch_op.drop_index("ix_search_grams_inside")
        batch_op.drop_column("inside")
