"""Search items by one folded text, and skip the scan for a term no item contains

Revision ID: b7e3c4a1f9d2
Revises: 5d2f6e1a9b47
Create Date: 2026-11-25 12:45:00.000000

items.search_text holds SKU, name and barcode folded (no case, no accents, full-width as
ASCII) and is compared byte for byte (utf8mb4_bin): the covering ix_items_search index carries it
instead of the raw columns. search_grams holds every three-character piece of any item's search
text: a term with a piece missing there is contained in no item, and the search skips its scan.
"""

import unicodedata

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = "b7e3c4a1f9d2"
down_revision = "5d2f6e1a9b47"
branch_labels = None
depends_on = None

OLD_COLUMNS = ["archived", "sku", "id", "barcode", "name_pinyin", "name_initials", "name"]
NEW_COLUMNS = ["archived", "sku", "id", "search_text", "name_pinyin", "name_initials"]
BATCH = 5000
SEARCH_TEXT_LENGTH = 330


# fold, search_text and grams as app/services/search_keys.py had them when this revision was
# written: copied, so that the revision computes the same keys whatever the app later becomes.
def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFKC", bare).casefold()


def search_text(sku: str, name: str, barcode: str | None) -> str:
    return "\x1f".join(fold(field) for field in (sku, name, barcode or ""))[:SEARCH_TEXT_LENGTH]


def grams(text: str) -> set[str]:
    return {text[i : i + 3] for i in range(len(text) - 3 + 1)}


def _binary(length: int) -> sa.types.TypeEngine:
    return sa.String(length=length).with_variant(mysql.VARCHAR(length, collation="utf8mb4_bin"), "mysql", "mariadb")


def _fill() -> None:
    """Every item's search text, and the pieces of all of them."""
    conn = op.get_bind()
    items = sa.table("items", sa.column("id"), sa.column("sku"), sa.column("name"), sa.column("barcode"))
    texts = {row.id: search_text(row.sku, row.name, row.barcode) for row in conn.execute(sa.select(items))}
    target = sa.table("items", sa.column("id"), sa.column("search_text"))
    change = sa.update(target).where(target.c.id == sa.bindparam("item_id")).values(search_text=sa.bindparam("text"))
    rows = [{"item_id": item_id, "text": text} for item_id, text in texts.items()]
    for start in range(0, len(rows), BATCH):
        conn.execute(change, rows[start : start + BATCH])
    pieces = sorted(set().union(*map(grams, texts.values())))
    if pieces:
        conn.execute(sa.insert(sa.table("search_grams", sa.column("gram"))), [{"gram": g} for g in pieces])


def upgrade():
    op.create_table(
        "search_grams",
        sa.Column("gram", _binary(3), nullable=False),
        sa.PrimaryKeyConstraint("gram", name=op.f("pk_search_grams")),
    )
    # Plain ALTER TABLE on SQLite: rebuilding `items` would fail the foreign keys that point at it.
    with op.batch_alter_table("items", schema=None, recreate="never") as batch_op:
        batch_op.add_column(sa.Column("search_text", _binary(330), server_default=sa.text("''"), nullable=False))
        batch_op.drop_index("ix_items_search")
    _fill()
    with op.batch_alter_table("items", schema=None, recreate="never") as batch_op:
        batch_op.create_index("ix_items_search", NEW_COLUMNS, unique=False)


def downgrade():
    with op.batch_alter_table("items", schema=None, recreate="never") as batch_op:
        batch_op.drop_index("ix_items_search")
        batch_op.drop_column("search_text")
        batch_op.create_index("ix_items_search", OLD_COLUMNS, unique=False)
    op.drop_table("search_grams")
