"""status page incidents, their public updates and affected components

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 13:20:00
"""

import sqlalchemy as sa
from alembic import op

import watchkeeper.store.types

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, watchkeeper.store.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "status_incidents",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("page", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("impact", sa.String(length=16), nullable=False),
        sa.Column("draft", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        _at("started_at"),
        _at("monitoring_at", True),
        _at("resolved_at", True),
        sa.Column("postmortem", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=16), server_default="api", nullable=False),
        sa.Column("alert_fingerprint", sa.String(length=255), nullable=True),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_incidents")),
    )
    op.create_index("ix_status_incidents_page_started", "status_incidents", ["page", "started_at"])
    op.create_table(
        "status_incident_updates",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("incident_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        _at("created_at"),
        _at("display_at"),
        sa.Column("affected", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["status_incidents.id"],
            name=op.f("fk_status_incident_updates_incident_id_status_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_incident_updates")),
    )
    op.create_index(
        "ix_status_incident_updates_incident",
        "status_incident_updates",
        ["incident_id", "created_at"],
    )
    op.create_table(
        "status_incident_components",
        sa.Column("incident_id", sa.String(length=36), nullable=False),
        sa.Column("component", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["status_incidents.id"],
            name=op.f("fk_status_incident_components_incident_id_status_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "incident_id", "component", name=op.f("pk_status_incident_components")
        ),
    )


def downgrade() -> None:
    op.drop_table("status_incident_components")
    op.drop_index("ix_status_incident_updates_incident", table_name="status_incident_updates")
    op.drop_table("status_incident_updates")
    op.drop_index("ix_status_incidents_page_started", table_name="status_incidents")
    op.drop_table("status_incidents")
