"""AuditService on a real SQLite database: entries stamped by its clock, queried newest
first with filters and the total count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.clock import FakeClock
from watchkeeper.services.audit import AuditService
from watchkeeper.store.database import Database

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def service(sqlite_db: Database, clock: FakeClock) -> AuditService:
    return AuditService(sqlite_db, clock)


async def add(service: AuditService, actor: str, action: str, status: int = 200) -> None:
    await service.record(
        actor=actor,
        actor_kind="user",
        action=action,
        target="/api/v1/x",
        status=status,
        detail={"n": 1},
        source_ip="192.0.2.1",
    )


async def test_an_entry_is_stamped_with_the_clock_and_read_back_whole(
    service: AuditService, clock: FakeClock
) -> None:
    clock.advance(timedelta(seconds=30))
    await add(service, "alice", "POST /api/v1/users", 201)
    (entry,), total = await service.query()
    assert total == 1
    assert (entry.at, entry.actor, entry.actor_kind, entry.action) == (
        T0 + timedelta(seconds=30),
        "alice",
        "user",
        "POST /api/v1/users",
    )
    assert (entry.target, entry.status, entry.detail, entry.source_ip) == (
        "/api/v1/x",
        201,
        {"n": 1},
        "192.0.2.1",
    )


async def test_query_filters_pages_and_counts_newest_first(service: AuditService) -> None:
    for i in range(3):
        await add(service, "alice", f"POST /a{i}")
    await add(service, "bob", "POST /a0")
    entries, total = await service.query(actor="alice")
    assert total == 3 and [e.action for e in entries] == ["POST /a2", "POST /a1", "POST /a0"]
    entries, total = await service.query(action="POST /a0")
    assert total == 2 and [e.actor for e in entries] == ["bob", "alice"]
    entries, total = await service.query(limit=2, offset=1)
    assert total == 4 and [(e.actor, e.action) for e in entries] == [
        ("alice", "POST /a2"),
        ("alice", "POST /a1"),
    ]


async def test_long_actors_are_cut_and_an_empty_detail_is_none(service: AuditService) -> None:
    await service.record(
        actor="x" * 300, actor_kind="token", action="DELETE /y", target="/y", status=204
    )
    (entry,), _ = await service.query()
    assert entry.actor == "x" * 255
    assert entry.detail is None
