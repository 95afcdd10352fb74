"""Keep a keyed hash of the typed username in failed sign-ins, never the text

A password typed into the username box stayed in sign_in_failures for up to 30 minutes. The hash is
keyed with SECRET_KEY, which a revision cannot read (it must not import application code), so the
existing rows cannot be converted: they are cleared. The throttle forgets at most the last
30 minutes of failures, once, at upgrade.

Revision ID: c4d8e2f6a913
Revises: 3c9d1e7a5b20
Create Date: 2026-11-26 03:55:00.000000

"""

import sqlalchemy as sa
from alembic import op

revision = "c4d8e2f6a913"
down_revision = "3c9d1e7a5b20"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(sa.text("DELETE FROM sign_in_failures"))
    with op.batch_alter_table("sign_in_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_sign_in_failures_username_client_created_at")
        batch_op.alter_column(
            "username",
            new_column_name="username_digest",
            existing_type=sa.String(length=64),
            existing_nullable=False,
        )
    # A separate batch: SQLite's batch copy cannot index a column renamed in the same batch.
    with op.batch_alter_table("sign_in_failures", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sign_in_failures_username_digest_client_created_at",
            ["username_digest", "client", "created_at"],
            unique=False,
        )


def downgrade():
    # Digests cannot be turned back into names: the rows are cleared again.
    op.execute(sa.text("DELETE FROM sign_in_failures"))
    with op.batch_alter_table("sign_in_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_sign_in_failures_username_digest_client_created_at")
        batch_op.alter_column(
            "username_digest",
            new_column_name="username",
            existing_type=sa.String(length=64),
            existing_nullable=False,
        )
    # A separate batch: SQLite's batch copy cannot index a column renamed in the same batch.
    with op.batch_alter_table("sign_in_failures", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sign_in_failures_username_client_created_at",
            ["username", "client", "created_at"],
            unique=False,
        )
