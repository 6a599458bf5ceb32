"""Heartbeat pings (healthchecks.io-compatible): who may ping, and what a ping records."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from watchkeeper.engine.heartbeat.access import BadExitCode, PingAccess
from watchkeeper.engine.heartbeat.monitor import HeartbeatMonitor
from watchkeeper.engine.heartbeat.writer import PingBacklog, PingNotStored
from watchkeeper.prometheus.service import ServiceMetrics


@dataclass(frozen=True, slots=True)
class PingAnswer:
    """What a ping gets back: a status code, a short text, and with 429 and 503 the
    seconds to wait. Pings answer in plain text (cron wrappers read it), not with problem
    documents."""

    status: int
    text: str
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class PingKeyInfo:
    """The install's heartbeat ping key and how URLs are made with it."""

    ping_key: str
    source: str
    ping_url_template: str
    ping_by_name: bool


@dataclass(slots=True)
class HeartbeatService:
    """Takes pings for the heartbeat checks, within the per-address and per-check limits."""

    monitor: HeartbeatMonitor
    access: PingAccess
    metrics: ServiceMetrics
    base_url: str
    ping_by_name: bool

    async def ping(
        self,
        segments: Sequence[str],
        source: str | None,
        body: Callable[[], Awaitable[bytes]] | None = None,
    ) -> PingAnswer:
        """Record the ping of path `segments` (`[uuid]`, `[uuid, "fail"]`, `[ping key,
        name]`…) from address `source`; `body` reads the log it carries (POST only)."""
        # Every ping counts against its address, known key or not: guessing costs the guesser.
        if (wait := self.access.admit_address(source or "")) is not None:
            return self._too_many("address", wait)
        try:
            ping = self.access.parse(self.monitor, list(segments))
        except BadExitCode:
            return PingAnswer(400, "exit status must be 0-255")
        if ping is None:
            # Same answer for every unknown key: which names exist is not revealed.
            return PingAnswer(404, "not found")
        if (wait := self.access.admit_check(ping.check.name)) is not None:
            return self._too_many("check", wait)
        log = await body() if body is not None else b""
        try:
            await self.monitor.ping(
                ping.check, ping.kind, exit_code=ping.exit_code, body=log, source=source
            )
        except PingBacklog as exc:
            return PingAnswer(503, "too many pings waiting to be stored", exc.retry_after)
        except PingNotStored:
            # Logged by the writer; the job's retry (curl --retry) pings again.
            return PingAnswer(503, "ping not stored, try again", retry_after=1.0)
        return PingAnswer(200, "OK")

    def _too_many(self, limit: str, wait: float) -> PingAnswer:
        self.metrics.pings_rate_limited.labels(limit).inc()
        return PingAnswer(429, "too many pings", retry_after=wait)

    def ping_key(self) -> PingKeyInfo:
        """The ping key (a secret: for admins), where it comes from, and its URL template."""
        key = self.access.ping_key
        return PingKeyInfo(
            ping_key=key,
            source=self.access.key_source,
            ping_url_template=f"{self.base_url}/ping/{key}/{{name}}",
            ping_by_name=self.ping_by_name,
        )
