"""daily ping-body bytes per heartbeat; install-wide settings (the ping key)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 07:30:00
"""

import sqlalchemy as sa
from alembic import op

import watchkeeper.store.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "settings",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_settings")),
    )
    with op.batch_alter_table("heartbeats", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("body_day", watchkeeper.store.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("body_bytes", sa.BigInteger(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("heartbeats", schema=None) as batch_op:
        batch_op.drop_column("body_bytes")
        batch_op.drop_column("body_day")
    op.drop_table("settings")
