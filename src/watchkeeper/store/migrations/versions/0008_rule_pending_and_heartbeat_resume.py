"""pending metric-rule series; when a heartbeat's pause ended

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 10:00:00
"""

import sqlalchemy as sa
from alembic import op

import watchkeeper.store.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rule_pending",
        sa.Column("rule_name", sa.String(length=100), nullable=False),
        sa.Column("series", sa.String(length=64), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column(
            "active_since", watchkeeper.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("sampled_at", watchkeeper.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("rule_name", "series", name=op.f("pk_rule_pending")),
    )
    with op.batch_alter_table("heartbeats", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "resumed_at", watchkeeper.store.types.UTCDateTime(timezone=True), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("heartbeats", schema=None) as batch_op:
        batch_op.drop_column("resumed_at")
    op.drop_table("rule_pending")
