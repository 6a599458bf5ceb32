"""The login_failures table: failed (or about to be verified) logins, per account and address
(see `auth.throttle` for the policy)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from watchkeeper.store.database import Database
from watchkeeper.store.errors import translated
from watchkeeper.store.tables import login_failures

_ADVISORY_KEY = 7427002
"""PostgreSQL advisory lock serialising attempts (7427001 serialises migrations)."""

Failures = tuple[list[datetime], list[datetime]]
"""The newest failure times in the window (oldest first): of the account, of the address."""


async def count_attempt(
    db: Database,
    username: str,
    source_ip: str,
    clock: Callable[[], datetime],
    window: timedelta,
    limits: tuple[int, int],
    wait: Callable[[Failures, datetime], int | None],
) -> int | None:
    """In one transaction that is serialised against every other attempt: forget the
    failures older than `window`, ask `wait` about the recent ones (at most `limits` per
    account and per address) and, when it answers None, record the attempt as a failure.
    Returns `wait`'s answer. `clock` is read once the transaction has begun."""
    async with translated(), db.begin() as conn:
        now = clock()
        if conn.dialect.name == "postgresql":
            # One lock for all attempts, held for a few statements (not for the hash).
            await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_ADVISORY_KEY)))
        # A write first: on SQLite it takes the database's write lock, so the counting
        # below cannot interleave with another attempt's.
        await conn.execute(login_failures.delete().where(login_failures.c.at <= now - window))
        seconds = wait(await _recent(conn, username, source_ip, now - window, limits), now)
        if seconds is None:
            await conn.execute(
                login_failures.insert().values(username=username, source_ip=source_ip, at=now)
            )
    return seconds


async def recent(
    db: Database, username: str, source_ip: str, since: datetime, limits: tuple[int, int]
) -> Failures:
    """The newest failures after `since`: at most `limits` of the account and the address."""
    async with translated(), db.connect() as conn:
        return await _recent(conn, username, source_ip, since, limits)


async def _recent(
    conn: AsyncConnection, username: str, source_ip: str, since: datetime, limits: tuple[int, int]
) -> Failures:
    by_account = await _failures(conn, login_failures.c.username == username, since, limits[0])
    by_ip = await _failures(conn, login_failures.c.source_ip == source_ip, since, limits[1])
    return by_account, by_ip


async def _failures(
    conn: AsyncConnection, where: sa.ColumnElement[bool], since: datetime, limit: int
) -> list[datetime]:
    """The newest `limit` failure times matching `where` after `since`, oldest first."""
    rows = await conn.execute(
        sa.select(login_failures.c.at)
        .where(where, login_failures.c.at > since)
        .order_by(login_failures.c.at.desc())
        .limit(limit)
    )
    return sorted(r.at for r in rows)


async def record(
    db: Database, username: str, source_ip: str, now: datetime, window: timedelta
) -> None:
    """Record a failure, forgetting those older than `window` in the same transaction."""
    async with translated(), db.begin() as conn:
        await conn.execute(login_failures.delete().where(login_failures.c.at <= now - window))
        await conn.execute(
            login_failures.insert().values(username=username, source_ip=source_ip, at=now)
        )


async def clear_account(db: Database, username: str) -> None:
    async with translated(), db.begin() as conn:
        await conn.execute(login_failures.delete().where(login_failures.c.username == username))
