"""slimmer check_rollups index: the check's key only, not a copy of every column

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 13:40:00

`ix_check_rollups_check` held every read column (a covering index), which on SQLite doubled
the size of the largest table of a long-running install. The key (check, resolution,
bucket) is enough: one check's series finds its rows through it and reads them from the
table by primary key (a few hundred rows per chart).

Without statistics, SQLite's planner will not read a WITHOUT ROWID table through a
non-covering index (it scans every check's rows of the time range by primary key instead),
so the migration gives it starting statistics in `sqlite_stat1`, the documented way to steer
it: rows per check, per check and resolution, per bucket. `PRAGMA optimize` (the daily
housekeeping job) replaces them with measured ones once the table has grown.
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_COVERING = ["check_name", "resolution", "bucket", "count", "available"]
_COVERING += ["rt_count", "rt_sum", "rt_max"]


def upgrade() -> None:
    # Dropped first, so the file has the old index's pages free for the new one.
    op.drop_index("ix_check_rollups_check", table_name="check_rollups")
    op.create_index(
        "ix_check_rollups_check", "check_rollups", ["check_name", "resolution", "bucket"]
    )
    if op.get_bind().dialect.name == "sqlite":
        seed_sqlite_statistics()


STATISTICS = {
    # sqlite_stat1 `stat`: rows, then rows per distinct value of each leading column prefix.
    # noskipscan: the overview (every check) reads the time range by primary key instead.
    "ix_check_rollups_check": "1000000 1000 500 1 noskipscan",
    "check_rollups": "1000000 500000 1000 1",  # primary key: per resolution, bucket, key
}


def seed_sqlite_statistics() -> None:
    op.execute("ANALYZE sqlite_schema")  # creates sqlite_stat1 when it does not exist yet
    op.execute("DELETE FROM sqlite_stat1 WHERE tbl = 'check_rollups'")
    for index, stat in STATISTICS.items():
        op.execute(
            f"INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('check_rollups', '{index}', "
            f"'{stat}')"
        )
    op.execute("ANALYZE sqlite_schema")  # the planner reloads them


def downgrade() -> None:
    op.drop_index("ix_check_rollups_check", table_name="check_rollups")
    op.create_index("ix_check_rollups_check", "check_rollups", _COVERING)
