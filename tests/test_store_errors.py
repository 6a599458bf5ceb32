"""The store raises its own errors: callers outside `store/` never see SQLAlchemy's."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from watchkeeper.store import silences as silence_store
from watchkeeper.store import users as user_store
from watchkeeper.store.conflicts import retrying
from watchkeeper.store.database import Database
from watchkeeper.store.errors import (
    Conflict,
    StorageRefused,
    StorageUnavailable,
    from_storage,
    is_conflict,
    refused_data,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def _add_user(db: Database, user_id: str, username: str) -> None:
    await user_store.insert(
        db, id=user_id, username=username, password_hash="x", role="viewer", created_at=NOW
    )


async def test_a_taken_unique_key_is_a_conflict(db: Database) -> None:
    await _add_user(db, "1", "alice")
    with pytest.raises(Conflict) as caught:
        await _add_user(db, "2", "alice")
    assert is_conflict(caught.value) and from_storage(caught.value)
    assert refused_data(caught.value)  # the same write can never succeed
    assert [r.username for r in await user_store.list_all(db)] == ["alice"]


@pytest.mark.postgres
async def test_text_the_database_refuses_is_refused_with_its_sqlstate(postgres_url: str) -> None:
    db = Database(postgres_url)
    await db.migrate()
    try:
        with pytest.raises(StorageRefused) as caught:
            await silence_store.insert(
                db,
                id="s1",
                matchers=[],
                starts_at=NOW,
                ends_at=NOW,
                created_by="a\x00b",
                comment="",
                created_at=NOW,
            )
    finally:
        await db.close()
    assert not isinstance(caught.value, Conflict)
    assert caught.value.sqlstate == "22021"  # what the API maps to 422
    assert refused_data(caught.value)


async def test_a_database_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/no/such/dir/watchkeeper.db")
    try:
        with pytest.raises(StorageUnavailable) as caught:
            await user_store.count(db)
    finally:
        await db.close()
    assert from_storage(caught.value)
    assert not refused_data(caught.value)  # retried later, not dropped
    assert not is_conflict(caught.value)


async def test_retrying_runs_again_after_a_conflict_but_not_after_a_refusal() -> None:
    runs: list[int] = []

    async def lose_once() -> str:
        runs.append(1)
        if len(runs) == 1:
            raise Conflict("UNIQUE constraint failed")
        return "won"

    assert await retrying(lose_once) == "won"
    assert len(runs) == 2

    async def refused() -> str:
        runs.append(1)
        raise StorageRefused("a NUL in text", "22021")

    runs.clear()
    with pytest.raises(StorageRefused):
        await retrying(refused)
    assert len(runs) == 1
