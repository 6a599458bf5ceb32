"""The service watching itself: event-loop lag, scheduler lag, outbox backlog, database write
latency, memory and open files, each with `warn`/`fail` thresholds (the `selfwatch:` section).

One owned task wakes every `interval` on the injected clock; how late that wake-up fires is
the event-loop lag. Each pass refreshes the readings (the `/health` document and `/metrics`
show them); the database write probe runs at most every `write_every`. A failing scheduler,
outbox or storage opens a self-alert (watchkeeper.engine.selfalerts).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import psutil
from pydantic import Field, model_validator

from watchkeeper.core.clock import Clock
from watchkeeper.core.domain import Severity
from watchkeeper.core.durations import Interval, PositiveShort
from watchkeeper.core.model import StrictModel
from watchkeeper.core.redact import Redactor
from watchkeeper.engine.selfalerts import SelfAlerts
from watchkeeper.prometheus.service import ServiceMetrics
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store import settings as settings_store
from watchkeeper.store.database import Database

log = logging.getLogger(__name__)

Level = Literal["pass", "warn", "fail"]
LEVELS: tuple[Level, ...] = ("pass", "warn", "fail")
PROBE_SETTING = "selfwatch.write_probe"
"""The settings row the write probe rewrites (its value: when it was last written)."""


class Threshold(StrictModel):
    """`warn` and `fail` limits of one measure: at or past `warn` it warns, at or past
    `fail` it fails."""

    warn: float = Field(ge=0)
    fail: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Threshold:
        if self.warn > self.fail:
            raise ValueError(f"warn ({self.warn}) must not be above fail ({self.fail})")
        return self

    def level(self, value: float) -> Level:
        """`pass`, `warn` or `fail` for `value`."""
        if value >= self.fail:
            return "fail"
        return "warn" if value >= self.warn else "pass"


class SelfWatchConfig(StrictModel):
    """The `selfwatch:` section: how often the service measures itself, and the thresholds
    (README "Self-watch" lists them)."""

    interval: Interval = timedelta(seconds=5)
    """How often the measures are taken (and the event-loop lag sampled)."""
    write_every: Interval = timedelta(seconds=30)
    """The database write probe runs at most this often."""
    event_loop_lag: Threshold = Threshold(warn=0.5, fail=5)
    """Seconds a timed wake-up fires late: the event loop is blocked or overloaded."""
    scheduler_lag: Threshold = Threshold(warn=1, fail=10)
    """Seconds the last check run started late compared with its schedule."""
    outbox_depth: Threshold = Threshold(warn=100, fail=1000)
    """Notifications queued and not yet delivered."""
    outbox_oldest_age: Threshold = Threshold(warn=300, fail=1800)
    """Seconds the oldest undelivered notification has waited."""
    storage_write: Threshold = Threshold(warn=0.5, fail=5)
    """Seconds one trivial database write (and its commit) takes."""
    memory_mib: Threshold = Threshold(warn=1024, fail=4096)
    """Resident memory (RSS) of the process, in MiB."""
    open_files_ratio: Threshold = Threshold(warn=0.5, fail=0.8)
    """Open file descriptors as a share of the process's soft limit (`ulimit -n`)."""
    alerts: bool = True
    """Open a self-alert (`watchkeeper:scheduler`, `watchkeeper:outbox`,
    `watchkeeper:storage`) while the scheduler stalls, the outbox backs up past a `fail`
    threshold or storage fails; it resolves when healthy again."""
    alert_severity: Severity = Severity.CRITICAL
    send_timeout: PositiveShort = timedelta(seconds=10)
    """How long a self-alert sent straight to a channel (database down) may take."""


@dataclass(frozen=True, slots=True)
class Reading:
    """One measure as the health document shows it (draft-inadarei-api-health-check)."""

    key: str
    """The health document's `component:measurement` key, e.g. `eventLoop:lag`."""
    component_type: str
    status: Level
    value: float | None
    unit: str
    output: str | None = None


def _round(value: float) -> float:
    return round(value, 6)


class SelfWatch:
    """Takes the service's own measures every `config.interval` (see the module doc)."""

    def __init__(
        self,
        config: SelfWatchConfig,
        *,
        db: Database,
        clock: Clock,
        metrics: ServiceMetrics,
        redactor: Redactor,
        scheduler_lag: Callable[[], float | None],
        stalled: Callable[[], str | None] = lambda: None,
        alerts: SelfAlerts | None = None,
    ) -> None:
        self.config = config
        self._db = db
        self._clock = clock
        self._metrics = metrics
        self._redactor = redactor
        self._scheduler_lag = scheduler_lag
        self._stalled = stalled
        self.alerts = alerts
        """Opens and resolves the self-alerts (None: none are raised)."""
        self._process = psutil.Process()
        self._never = asyncio.Event()  # the loop ends by cancellation; it only waits on time
        self.real_monotonic: Callable[[], float] = time.monotonic
        """Real time, which caps the event-loop lag (a test may hand it its clock's)."""
        self._written_at: float | None = None
        self.event_loop_lag: float | None = None
        """Seconds the last timed wake-up fired late (None before the first)."""
        self.write_latency: float | None = None
        """Seconds the last write probe took (None: none yet, or it failed)."""
        self.write_error: str | None = None
        """Why the last write probe failed (None: it succeeded)."""
        self.passes = 0
        """Passes the loop has made."""
        self.readings: dict[str, Reading] = {}
        """The latest readings by health key (empty before the first pass)."""

    async def run(self) -> None:
        """Measure every `interval` until cancelled; a failing pass is logged, never fatal."""
        interval = self.config.interval.total_seconds()
        while True:
            due = self._clock.monotonic() + interval
            real_due = self.real_monotonic() + interval
            await self._clock.wait(self._never, interval)
            # Late on the clock, and late in real time too: a clock moved by hand (tests) or
            # stepped is no lag, a loop blocked past its timer is.
            late = min(self._clock.monotonic() - due, self.real_monotonic() - real_due)
            self.event_loop_lag = max(0.0, late)
            try:
                await self.check()
            except Exception:
                log.exception("self-watch pass failed; will retry")
            self.passes += 1

    async def check(self) -> dict[str, Reading]:
        """Take every measure now (the write probe if it is due); return the readings."""
        now = self._clock.monotonic()
        if (
            self._written_at is None
            or now - self._written_at >= self.config.write_every.total_seconds()
        ):
            self._written_at = now
            await self.probe_write()
        readings = [
            self._event_loop(),
            self._scheduler(),
            *await self._outbox(),
            self._storage(),
            *self._process_readings(),
        ]
        self.readings = {r.key: r for r in readings}
        for reading in readings:
            self._metrics.selfwatch_status.labels(reading.key).set(LEVELS.index(reading.status))
        if self.alerts is not None and self.config.alerts:
            await self.alerts.update(self.problems())
        return self.readings

    def problems(self) -> dict[str, str | None]:
        """What is wrong now with the scheduler, the outbox and storage (None: healthy),
        from the latest readings: each past its `fail` threshold, or a core loop ended."""
        return {
            "scheduler": self._stalled()
            or self._failing("scheduler:lag", "scheduler lag")
            or self._failing("eventLoop:lag", "event-loop lag"),
            "outbox": self._failing("outbox:depth", "outbox depth")
            or self._failing("outbox:oldestAge", "oldest undelivered notification"),
            "storage": self._failing("storage:writeLatency", "database write"),
        }

    def _failing(self, key: str, what: str) -> str | None:
        reading = self.readings.get(key)
        if reading is None or reading.status != "fail":
            return None
        if reading.value is None:
            return f"{what}: {reading.output}"
        return f"{what} {reading.value:g} {reading.unit}, past its fail threshold"

    async def probe_write(self) -> None:
        """Time one trivial write (a settings row); a write that fails or takes past twice
        the `fail` threshold counts as failing storage."""
        limit = max(1.0, 2 * self.config.storage_write.fail)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(limit):
                await settings_store.touch(self._db, PROBE_SETTING, self._clock.now().isoformat())
        except TimeoutError:
            self.write_latency, self.write_error = None, f"a write took over {limit:g} s"
        except Exception as exc:
            self.write_latency = None
            self.write_error = self._redactor(f"{type(exc).__name__}: {exc}")
        else:
            self.write_latency, self.write_error = time.perf_counter() - started, None
            self._metrics.storage_write.set(self.write_latency)

    def _event_loop(self) -> Reading:
        lag = self.event_loop_lag or 0.0
        self._metrics.event_loop_lag.set(lag)
        status = self.config.event_loop_lag.level(lag)
        return Reading("eventLoop:lag", "system", status, _round(lag), "s")

    def _scheduler(self) -> Reading:
        lag = self._scheduler_lag()
        if lag is None:
            return Reading("scheduler:lag", "component", "fail", None, "s", "scheduler not running")
        return Reading(
            "scheduler:lag", "component", self.config.scheduler_lag.level(lag), _round(lag), "s"
        )

    async def _outbox(self) -> list[Reading]:
        try:
            depth, oldest = await outbox_store.backlog(self._db)
        except Exception as exc:
            output = self._redactor(f"cannot read the outbox: {type(exc).__name__}: {exc}")
            return [
                Reading("outbox:depth", "component", "warn", None, "notifications", output),
                Reading("outbox:oldestAge", "component", "warn", None, "s", output),
            ]
        age = max(0.0, (self._clock.now() - oldest).total_seconds()) if oldest else 0.0
        self._metrics.outbox_depth.set(depth)
        self._metrics.outbox_oldest_age.set(age)
        return [
            Reading(
                "outbox:depth",
                "component",
                self.config.outbox_depth.level(depth),
                depth,
                "notifications",
            ),
            Reading(
                "outbox:oldestAge",
                "component",
                self.config.outbox_oldest_age.level(age),
                _round(age),
                "s",
            ),
        ]

    def _storage(self) -> Reading:
        if self.write_error is not None:
            return Reading("storage:writeLatency", "datastore", "fail", None, "s", self.write_error)
        latency = self.write_latency or 0.0
        status = self.config.storage_write.level(latency)
        return Reading("storage:writeLatency", "datastore", status, _round(latency), "s")

    def _process_readings(self) -> list[Reading]:
        rss = self._process.memory_info().rss
        fds = self._process.num_fds()
        self._metrics.resident_memory.set(rss)
        self._metrics.open_fds.set(fds)
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        files: Reading
        if soft in (resource.RLIM_INFINITY, 0):
            files = Reading("process:openFiles", "system", "pass", fds, "files")
        else:
            ratio = fds / soft
            files = Reading(
                "process:openFiles",
                "system",
                self.config.open_files_ratio.level(ratio),
                fds,
                "files",
                f"{fds} of {soft} allowed ({ratio:.0%})",
            )
        mib = rss / 1024**2
        memory = Reading(
            "process:memory", "system", self.config.memory_mib.level(mib), round(mib, 1), "MiB"
        )
        return [memory, files]
