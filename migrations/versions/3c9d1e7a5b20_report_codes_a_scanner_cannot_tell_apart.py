"""Report SKUs, barcodes and location codes a scanner cannot tell apart

Revision ID: 3c9d1e7a5b20
Revises: e5a1c7d93b20
Create Date: 2026-11-26 03:20:00.000000

From now on SKUs, barcodes and location codes share one namespace (compared without case, as
MariaDB's collations compare them), enforced by the services and the import. Rows stored before
may collide, and which one should change is a person's decision, so this revision changes no
schema and no data: it logs one warning line per colliding code (the code and every owner) on the
migration log and carries on. `flask db upgrade` prints them; re-running the query below finds
what is left.
"""

import logging

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "3c9d1e7a5b20"
down_revision = "e5a1c7d93b20"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

COLLISIONS = sa.text(
    """
    SELECT LOWER(code) AS folded, owner FROM (
        SELECT sku AS code, CONCAT('item SKU ', sku) AS owner, id AS item_id FROM items
        UNION ALL
        SELECT barcode, CONCAT('barcode of item ', sku), id FROM items WHERE barcode IS NOT NULL AND barcode <> ''
        UNION ALL
        SELECT code, CONCAT('location ', code), NULL FROM locations
    ) AS codes
    WHERE LOWER(code) IN (
        SELECT LOWER(code) FROM (
            SELECT sku AS code, id AS item_id FROM items
            UNION ALL
            SELECT barcode, id FROM items WHERE barcode IS NOT NULL AND barcode <> '' AND barcode <> sku
            UNION ALL
            SELECT code, NULL FROM locations
        ) AS every_code
        GROUP BY LOWER(code)
        HAVING COUNT(*) > 1
    )
    ORDER BY folded, owner
    """
)


def upgrade() -> None:
    bind = op.get_bind()
    query = COLLISIONS
    if bind.dialect.name == "sqlite":
        # SQLite has no CONCAT before 3.44: the same query with its || operator.
        query = sa.text(
            str(COLLISIONS)
            .replace("CONCAT('item SKU ', sku)", "'item SKU ' || sku")
            .replace("CONCAT('barcode of item ', sku)", "'barcode of item ' || sku")
            .replace("CONCAT('location ', code)", "'location ' || code")
        )
    owners: dict[str, list[str]] = {}
    for folded, owner in bind.execute(query):
        owners.setdefault(folded, []).append(owner)
    for folded, found in owners.items():
        log.warning("scanner code collision: %r is %s", folded, "; ".join(found))
    if owners:
        log.warning("%d codes collide: change them by hand (items edit page, locations edit page)", len(owners))


def downgrade() -> None:
    """Nothing was changed."""
