"""objects managed over the API (checks, escalation policies, rules)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 03:55:00
"""

import sqlalchemy as sa
from alembic import op

import watchkeeper.store.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "managed_objects",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", watchkeeper.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=255), nullable=False),
        sa.Column("updated_at", watchkeeper.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "name", name=op.f("pk_managed_objects")),
    )


def downgrade() -> None:
    op.drop_table("managed_objects")
