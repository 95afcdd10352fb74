"""Keep the trace context of the transaction that wrote each outbox event

Revision ID: f1c7b3e8a2d4
Revises: e4a9c2d17b85
Create Date: 2026-11-26 03:00:00.000000

low_stock_events.traceparent holds the W3C traceparent of the request that crossed the reorder
point, so its delivery, later and in the notification worker, links its trace to that request.
Older events have none and are delivered unlinked.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "f1c7b3e8a2d4"
down_revision = "e4a9c2d17b85"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("low_stock_events", sa.Column("traceparent", sa.String(length=55), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("low_stock_events") as batch:
        batch.drop_column("traceparent")
