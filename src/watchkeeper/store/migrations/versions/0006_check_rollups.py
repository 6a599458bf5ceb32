"""check rollups (response time and availability per check and time bucket)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 03:55:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

RESOLUTIONS = (300, 3600)  # 5 minutes, 1 hour


def upgrade() -> None:
    op.create_table(
        "check_rollups",
        sa.Column("resolution", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("check_name", sa.String(length=100), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("available", sa.Integer(), nullable=False),
        sa.Column("down", sa.Integer(), nullable=False),
        sa.Column("rt_count", sa.Integer(), nullable=False),
        sa.Column("rt_sum", sa.Float(), nullable=False),
        sa.Column("rt_min", sa.Float(), nullable=True),
        sa.Column("rt_max", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint(
            "resolution", "bucket", "check_name", name=op.f("pk_check_rollups")
        ),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_check_rollups_check",
        "check_rollups",
        [
            "check_name",
            "resolution",
            "bucket",
            "count",
            "available",
            "rt_count",
            "rt_sum",
            "rt_max",
        ],
        unique=False,
    )
    _backfill()


def _backfill() -> None:
    """Rollups of the results already stored, aggregated by the database itself."""
    if op.get_bind().dialect.name == "postgresql":
        epoch = "floor(extract(epoch from started_at))::bigint"
    else:  # SQLite stores UTC as 'YYYY-MM-DD HH:MM:SS.ffffff'
        epoch = "CAST(strftime('%s', started_at) AS INTEGER)"
    for resolution in RESOLUTIONS:
        bucket = f"(({epoch}) / {resolution}) * {resolution}"
        op.execute(
            sa.text(
                "INSERT INTO check_rollups (check_name, resolution, bucket, count, available,"
                " down, rt_count, rt_sum, rt_min, rt_max)"
                f" SELECT check_name, {resolution}, {bucket}, COUNT(*),"
                " SUM(CASE WHEN status IN ('up', 'degraded') THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN status = 'down' THEN 1 ELSE 0 END),"
                " COUNT(response_time), COALESCE(SUM(response_time), 0),"
                " MIN(response_time), MAX(response_time)"
                f" FROM check_results GROUP BY check_name, {bucket}"
            )
        )


def downgrade() -> None:
    op.drop_index("ix_check_rollups_check", table_name="check_rollups")
    op.drop_table("check_rollups")
