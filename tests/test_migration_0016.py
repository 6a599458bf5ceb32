"""Migration 0016 drops the rows of groups of one alert (`alert:<id>`), which nothing reads,
and keeps the shared groups' (their last page sets when the next may go)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import select

from watchkeeper.store import tables
from watchkeeper.store.database import Database, _alembic_config

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.empty_database
async def test_rows_of_single_alert_groups_are_dropped_and_shared_groups_kept(
    db_url: str,
) -> None:
    database = Database(db_url)
    try:
        async with database.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(_alembic_config(c), "0015"))
            await conn.execute(
                tables.alert_groups.insert(),
                [
                    {"key": key, "first_seen_at": T0, "last_notified_at": T0}
                    for key in ("alert:0193-a", "alert:0193-b", "group:ops|zone=eu", "k")
                ],
            )
        await database.migrate()
        async with database.connect() as conn:
            keys = (await conn.execute(select(tables.alert_groups.c.key))).scalars().all()
        assert sorted(keys) == ["group:ops|zone=eu", "k"]
    finally:
        await database.close()
