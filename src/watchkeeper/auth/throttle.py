"""Failed-login throttling per account and per client address.

Over the limit, a login is answered 429 without looking at the password at all, so even the
right password is refused until the window has moved past enough failures; Retry-After says
when. Refused attempts are not counted: the lock ends when announced. Failures are rows in
the database, so the limit holds across restarts and across nodes sharing PostgreSQL.
"""

from __future__ import annotations

import math
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from watchkeeper.clock import Clock
from watchkeeper.config import LoginThrottleConfig
from watchkeeper.store.database import Database
from watchkeeper.store.tables import login_failures


class LoginThrottle:
    def __init__(self, db: Database, config: LoginThrottleConfig, clock: Clock) -> None:
        self.db = db
        self.config = config
        self.clock = clock

    async def retry_after(self, username: str, source_ip: str) -> int | None:
        """Seconds until a login for `username` from `source_ip` may be tried, or None."""
        now = self.clock.now()
        since = now - self.config.window
        async with self.db.connect() as conn:
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
