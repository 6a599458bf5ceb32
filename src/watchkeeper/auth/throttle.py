"""Failed-login throttling per account and per client address.

Over the limit, a login is answered 429 without looking at the password at all, so even the
right password is refused until the window has moved past enough failures; Retry-After says
when. Refused attempts are not counted: the lock ends when announced. Failures are rows in
the database, so the limit holds across restarts and across nodes sharing PostgreSQL.

An attempt is counted as a failure *before* its password is verified (`attempt`), in one
transaction that first takes the write lock (SQLite) or an advisory lock (PostgreSQL), so
concurrent attempts are counted one after the other: of 40 simultaneous guesses at one
account with a limit of 10, 10 are verified and 30 refused. A correct password then clears
the account's failures, its own included (`record_success`).
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from watchkeeper.clock import Clock
from watchkeeper.config import LoginThrottleConfig
from watchkeeper.store.database import Database
from watchkeeper.store.tables import login_failures

_ADVISORY_KEY = 7427002
"""PostgreSQL advisory lock serialising attempts (7427001 serialises migrations)."""


class LoginThrottle:
    def __init__(self, db: Database, config: LoginThrottleConfig, clock: Clock) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        # This process's attempts queue here rather than in SQLite's busy handler, whose
        # sleeps grow to 100 ms: 80 logins at once took 20 s that way.
        self._counting = asyncio.Lock()

    async def attempt(self, username: str, source_ip: str) -> int | None:
        """Count an attempt for `username` from `source_ip` as a failure before its password
        is checked, and None; or, over a limit, count nothing and return the seconds until
        one may be tried again. Atomic: concurrent attempts are counted one at a time."""
        async with self._counting, self.db.begin() as conn:
            now = self.clock.now()
            if conn.dialect.name == "postgresql":
                # One lock for all attempts, held for a few statements (not for the hash).
                await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_ADVISORY_KEY)))
            # A write first: on SQLite it takes the database's write lock, so the counting
            # below cannot interleave with another attempt's.
            await conn.execute(
                login_failures.delete().where(login_failures.c.at <= now - self.config.window)
            )
            wait = await self._wait(conn, username, source_ip, now)
            if wait is None:
                await conn.execute(
                    login_failures.insert().values(username=username, source_ip=source_ip, at=now)
                )
        return wait

    async def retry_after(self, username: str, source_ip: str) -> int | None:
        """Seconds until a login for `username` from `source_ip` may be tried, or None."""
        async with self.db.connect() as conn:
            return await self._wait(conn, username, source_ip, self.clock.now())

    async def _wait(
        self, conn: AsyncConnection, username: str, source_ip: str, now: datetime
    ) -> int | None:
        since = now - self.config.window
        by_account = await self._failures(
            conn, login_failures.c.username == username, since, self.config.max_failures
        )
        by_ip = await self._failures(
            conn,
            login_failures.c.source_ip == source_ip,
            since,
            self.config.max_failures_per_ip,
        )
        # Locked while `limit` failures lie in the window: until the oldest of them leaves it.
        unlocks = [
            failures[0] + self.config.window
            for failures, limit in (
                (by_account, self.config.max_failures),
                (by_ip, self.config.max_failures_per_ip),
            )
            if len(failures) >= limit
        ]
        if not unlocks:
            return None
        return max(1, math.ceil((max(unlocks) - now).total_seconds()))

    @staticmethod
    async def _failures(
        conn: AsyncConnection, where: sa.ColumnElement[bool], since: datetime, limit: int
    ) -> list[datetime]:
        """The newest `limit` failure times matching `where` in the window, oldest first."""
        rows = await conn.execute(
            sa.select(login_failures.c.at)
            .where(where, login_failures.c.at > since)
            .order_by(login_failures.c.at.desc())
            .limit(limit)
        )
        return sorted(r.at for r in rows)

    async def record_failure(self, username: str, source_ip: str) -> None:
        now = self.clock.now()
        async with self.db.begin() as conn:
            await conn.execute(
                login_failures.delete().where(login_failures.c.at <= now - self.config.window)
            )
            await conn.execute(
                login_failures.insert().values(username=username, source_ip=source_ip, at=now)
            )

    async def record_success(self, username: str) -> None:
        """A correct login clears the account's failures (not the address's: one valid
        account must not let an address go on guessing others)."""
        async with self.db.begin() as conn:
            await conn.execute(login_failures.delete().where(login_failures.c.username == username))
