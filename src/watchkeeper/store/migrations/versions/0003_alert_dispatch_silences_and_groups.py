"""alert dispatch, silences and groups

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 02:03:33.347964
"""

import sqlalchemy as sa
from alembic import op

import watchkeeper.store.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "alert_groups",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column(
            "first_seen_at", watchkeeper.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "last_notified_at", watchkeeper.store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_alert_groups")),
    )
    op.create_table(
        "silences",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("matchers", sa.JSON(), nullable=False),
        sa.Column("starts_at", watchkeeper.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", watchkeeper.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", watchkeeper.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_silences")),
    )
    with op.batch_alter_table("silences", schema=None) as batch_op:
        batch_op.create_index("ix_silences_ends_at", ["ends_at"], unique=False)

    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("source", sa.String(length=16), server_default="check", nullable=False)
        )
        batch_op.add_column(sa.Column("silenced_by", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("escalation_policy", sa.String(length=100), nullable=True))
        batch_op.add_column(
            sa.Column("escalation_step", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "next_escalation_at",
                watchkeeper.store.types.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("paged_channels", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "ack_notified_at", watchkeeper.store.types.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column(
                "resolved_notified_at",
                watchkeeper.store.types.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("group_key", sa.String(length=255), nullable=True))
    # Before this revision resolution was notified together with the change itself.
    op.execute("UPDATE alerts SET resolved_notified_at = resolved_at WHERE resolved_at IS NOT NULL")


def downgrade() -> None:

    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_column("group_key")
        batch_op.drop_column("resolved_notified_at")
        batch_op.drop_column("ack_notified_at")
        batch_op.drop_column("paged_channels")
        batch_op.drop_column("next_escalation_at")
        batch_op.drop_column("escalation_step")
        batch_op.drop_column("escalation_policy")
        batch_op.drop_column("silenced_by")
        batch_op.drop_column("source")

    with op.batch_alter_table("silences", schema=None) as batch_op:
        batch_op.drop_index("ix_silences_ends_at")

    op.drop_table("silences")
    op.drop_table("alert_groups")
