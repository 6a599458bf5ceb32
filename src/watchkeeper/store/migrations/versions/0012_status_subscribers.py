"""status page subscribers (email and webhook)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 13:30:00
"""

import sqlalchemy as sa
from alembic import op

import watchkeeper.store.types

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "status_subscribers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("page", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("address_key", sa.String(length=64), nullable=False),
        sa.Column("components", sa.JSON(), nullable=True),
        sa.Column("salt", sa.String(length=32), nullable=False),
        sa.Column("created_at", watchkeeper.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "confirmed_at", watchkeeper.store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_subscribers")),
        sa.UniqueConstraint(
            "page", "kind", "address_key", name=op.f("uq_status_subscribers_page_kind_address_key")
        ),
    )
    op.create_index(
        "ix_status_subscribers_confirmed_at",
        "status_subscribers",
        ["confirmed_at", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_status_subscribers_confirmed_at", table_name="status_subscribers")
    op.drop_table("status_subscribers")
