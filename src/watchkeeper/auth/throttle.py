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

from watchkeeper.auth.config import LoginThrottleConfig
from watchkeeper.core.clock import Clock
from watchkeeper.store import login_failures as failure_store
from watchkeeper.store.database import Database


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
        async with self._counting:
            return await failure_store.count_attempt(
                self.db,
                username,
                source_ip,
                self.clock.now,
                self.config.window,
                self._limits,
                self._wait,
            )

    @property
    def _limits(self) -> tuple[int, int]:
        return self.config.max_failures, self.config.max_failures_per_ip

    async def retry_after(self, username: str, source_ip: str) -> int | None:
        """Seconds until a login for `username` from `source_ip` may be tried, or None."""
        now = self.clock.now()
        failures = await failure_store.recent(
            self.db, username, source_ip, now - self.config.window, self._limits
        )
        return self._wait(failures, now)

    def _wait(self, failures: failure_store.Failures, now: datetime) -> int | None:
        by_account, by_ip = failures
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

    async def record_failure(self, username: str, source_ip: str) -> None:
        await failure_store.record(
            self.db, username, source_ip, self.clock.now(), self.config.window
        )

    async def record_success(self, username: str) -> None:
        """A correct login clears the account's failures (not the address's: one valid
        account must not let an address go on guessing others)."""
        await failure_store.clear_account(self.db, username)
