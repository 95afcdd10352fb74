"""Give each user a credential version that sign-out, password and role changes raise

Revision ID: e4a7c2d9b813
Revises: b7e3c4a1f9d2
Create Date: 2026-11-26 02:40:00

"""

import sqlalchemy as sa
from alembic import op

revision = "e4a7c2d9b813"
down_revision = "b7e3c4a1f9d2"
branch_labels = None
depends_on = None


def upgrade():
    # A plain ADD COLUMN on both databases (no batch copy of users): nothing else on the table changes.
    op.add_column("users", sa.Column("credential_version", sa.Integer(), nullable=False, server_default="1"))


def downgrade():
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("credential_version")
