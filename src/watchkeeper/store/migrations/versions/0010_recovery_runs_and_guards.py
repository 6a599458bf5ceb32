"""recovery runs; each recovery action's attempts and lock-out

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 11:30:00
"""

import sqlalchemy as sa
from alembic import op

import watchkeeper.store.types

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recovery_runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("check_name", sa.String(length=100), nullable=True),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", watchkeeper.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", watchkeeper.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("output", sa.Text(), server_default="", nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_runs")),
    )
    op.create_index(
        "ix_recovery_runs_action", "recovery_runs", ["action", "started_at"], unique=False
    )
    op.create_index("ix_recovery_runs_started", "recovery_runs", ["started_at"], unique=False)
    op.create_table(
        "recovery_guards",
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("attempts", sa.JSON(), nullable=False),
        sa.Column("exhausted", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("updated_at", watchkeeper.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("action", name=op.f("pk_recovery_guards")),
    )


def downgrade() -> None:
    op.drop_table("recovery_guards")
    op.drop_index("ix_recovery_runs_started", table_name="recovery_runs")
    op.drop_index("ix_recovery_runs_action", table_name="recovery_runs")
    op.drop_table("recovery_runs")
