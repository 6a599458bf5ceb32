"""heartbeats and alert suppression

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 01:45:08.929609
"""

import sqlalchemy as sa
from alembic import op

import watchkeeper.store.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "heartbeats",
        sa.Column("check_name", sa.String(length=100), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column(
            "last_ping_at", watchkeeper.store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "last_start_at", watchkeeper.store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "last_fail_at", watchkeeper.store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("last_exit_code", sa.Integer(), nullable=True),
        sa.Column("last_duration", sa.Float(), nullable=True),
        sa.Column(
            "ping_count",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            server_default="0",
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("check_name", name=op.f("pk_heartbeats")),
        sa.UniqueConstraint("uuid", name=op.f("uq_heartbeats_uuid")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("suppressed_reason", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "notified_at", watchkeeper.store.types.UTCDateTime(timezone=True), nullable=True
            )
        )
    # Every alert before this revision was notified when it opened.
    op.execute("UPDATE alerts SET notified_at = started_at")


def downgrade() -> None:

    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_column("notified_at")
        batch_op.drop_column("suppressed_reason")

    op.drop_table("heartbeats")
