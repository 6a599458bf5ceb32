"""alerts: ends_at, annotations and generator_url (Alertmanager v2 clients)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 13:20:00
"""

import sqlalchemy as sa
from alembic import op

import watchkeeper.store.types

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(
            sa.Column("ends_at", watchkeeper.store.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("annotations", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("generator_url", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("generator_url")
        batch.drop_column("annotations")
        batch.drop_column("ends_at")
