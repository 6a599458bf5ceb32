"""The dead man's switch: ping an outside heartbeat while the core loops are healthy.

`watchdog: {url, interval}` makes the service call `url` (another Watchkeeper's `/ping/<uuid>`,
healthchecks.io, any URL that expects a request every so often) once per `interval`, but only
while the scheduler, the dispatcher and the outbox loop run. A stuck or dead service stops
pinging, so the outside heartbeat goes late and pages from elsewhere: what a monitor cannot
report about itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

import aiohttp
from pydantic import field_validator

from watchkeeper.core.clock import Clock
from watchkeeper.core.durations import Interval, Timeout
from watchkeeper.core.model import StrictModel
from watchkeeper.core.redact import Redactor

log = logging.getLogger(__name__)


class WatchdogConfig(StrictModel):
    """The `watchdog:` section (absent: no dead man's switch)."""

    url: str
    """Called every `interval` while healthy, e.g. `https://hc-ping.com/<uuid>` or another
    Watchkeeper's `http://other:8080/ping/<uuid>`. Kept out of logs (it holds the secret)."""
    interval: Interval = timedelta(minutes=1)
    method: Literal["GET", "POST"] = "GET"
    timeout: Timeout = timedelta(seconds=10)
    """How long one ping may take; a slow or failing ping is logged and tried again at the
    next interval."""

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")) or len(value) > 2000:
            raise ValueError("expected an http:// or https:// URL")
        return value


class Watchdog:
    """Pings `config.url` every interval while `stalled()` says nothing is stuck."""

    def __init__(
        self,
        config: WatchdogConfig,
        *,
        clock: Clock,
        session: Callable[[], aiohttp.ClientSession],
        stalled: Callable[[], str | None],
        redactor: Redactor,
    ) -> None:
        self.config = config
        self._clock = clock
        self._session = session
        self._stalled = stalled
        self._redactor = redactor
        redactor.add([config.url])
        self._never = asyncio.Event()  # the loop ends by cancellation; it only waits on time
        self.beats = 0
        """Intervals that came round (pinged or held back)."""
        self.pings = 0
        """Pings the outside answered with 2xx."""
        self.last_ping_at: datetime | None = None
        self.last_error: str | None = None
        self.held_back: str | None = None
        """Why the last beat sent no ping (a stalled core loop); None when it pinged."""

    async def run(self) -> None:
        """Beat now, then every interval, until cancelled."""
        interval = self.config.interval.total_seconds()
        while True:
            await self.beat()
            await self._clock.wait(self._never, interval)

    async def beat(self) -> bool:
        """Ping once if healthy; return whether the outside took it."""
        self.beats += 1
        problem = self._stalled()
        if problem is not None:
            if self.held_back != problem:
                log.error("watchdog: not pinging while unhealthy: %s", problem)
            self.held_back = problem
            return False
        if self.held_back is not None:
            log.info("watchdog: healthy again, pinging")
        self.held_back = None
        timeout = aiohttp.ClientTimeout(total=self.config.timeout.total_seconds())
        try:
            async with self._session().request(
                self.config.method, self.config.url, timeout=timeout
            ) as response:
                if response.status >= 300:
                    raise ValueError(f"HTTP {response.status}")
        except Exception as exc:
            self.last_error = self._redactor(f"{type(exc).__name__}: {exc}")
            log.warning("watchdog ping failed: %s", self.last_error)
            return False
        self.pings += 1
        self.last_ping_at = self._clock.now()
        self.last_error = None
        return True
