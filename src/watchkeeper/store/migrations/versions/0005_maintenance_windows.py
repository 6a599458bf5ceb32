"""maintenance windows

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 02:43:41.154676
"""

import sqlalchemy as sa
from alembic import op

import watchkeeper.store.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "maintenance_windows",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", watchkeeper.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_maintenance_windows")),
    )


def downgrade() -> None:

    op.drop_table("maintenance_windows")
