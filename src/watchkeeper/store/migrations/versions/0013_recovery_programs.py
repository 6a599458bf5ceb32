"""the supervised program of each process action, to adopt it after a restart

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 13:30:00
"""

import sqlalchemy as sa
from alembic import op

import watchkeeper.store.types

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recovery_programs",
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("identity", sa.String(length=100), nullable=False),
        sa.Column("updated_at", watchkeeper.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("action", name=op.f("pk_recovery_programs")),
    )


def downgrade() -> None:
    op.drop_table("recovery_programs")
