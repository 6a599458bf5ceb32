"""`system`: resources of the host watchkeeper runs on (CPU, memory, disks, load) via psutil."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, Self

import psutil
from pydantic import Field, field_validator, model_validator

from watchkeeper.checks.base import Check, CheckConfigBase, CheckContext
from watchkeeper.checks.registry import register
from watchkeeper.core.domain import CheckResult, Status
from watchkeeper.core.model import StrictModel


class Thresholds(StrictModel):
    """Warn/crit levels; a reading at or above a level trips it. Either may be left out."""

    warn: float | None = Field(default=None, ge=0)
    crit: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _crit_not_below_warn(self) -> Self:
        if self.warn is not None and self.crit is not None and self.crit < self.warn:
            raise ValueError(f"crit ({self.crit:g}) must be >= warn ({self.warn:g})")
        return self


class PercentThresholds(Thresholds):
    """Thresholds on a percentage, so both levels lie in 0..100."""

    warn: float | None = Field(default=None, ge=0, le=100)
    crit: float | None = Field(default=None, ge=0, le=100)


class DiskThresholds(PercentThresholds):
    """Usage thresholds for the filesystem holding `path`."""

    path: str = Field(min_length=1)


class SystemCheckConfig(CheckConfigBase):
    """Config of a `system` check. With no section at all, cpu/memory/`/` are checked at 90/95."""

    type: Literal["system"]
    cpu: PercentThresholds | None = None
    memory: PercentThresholds | None = None
    disk: list[DiskThresholds] = Field(default_factory=list)
    load: Thresholds | None = None
    """On the 1-minute load average divided by the number of CPUs."""
    network: bool = True
    """Also record network throughput (bytes/s received and sent, all interfaces) as
    metrics for charts; it has no thresholds and no part in the status."""

    @field_validator("disk")
    @classmethod
    def _unique_paths(cls, value: list[DiskThresholds]) -> list[DiskThresholds]:
        paths = [d.path for d in value]
        duplicates = sorted({p for p in paths if paths.count(p) > 1})
        if duplicates:
            raise ValueError(f"disk paths listed twice: {', '.join(duplicates)}")
        return value


DEFAULT_CPU = PercentThresholds(warn=90, crit=95)
DEFAULT_MEMORY = PercentThresholds(warn=90, crit=95)
DEFAULT_DISK = DiskThresholds(path="/", warn=90, crit=95)


class SystemReader(Protocol):
    """Source of readings; blocking calls are fine, the check runs them in a worker thread."""

    def cpu_percent(self) -> float:
        """Busy CPU % since the previous call (or since the reader was created)."""
        ...

    def memory_percent(self) -> float: ...

    def disk_percent(self, path: str) -> float: ...

    def load1_per_cpu(self) -> float: ...


class PsutilReader:
    """The real host, through psutil.

    CPU usage is computed from our own `cpu_times` baseline instead of
    `psutil.cpu_percent(interval=None)`: psutil keeps that baseline per thread, and
    `asyncio.to_thread` hops between executor threads, so most readings would compare against
    a stale or missing baseline.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Priming: the first check run then measures usage since the check was built.
        self._last_cpu = psutil.cpu_times()
        self._last_at = time.monotonic()
        self._cpu_count = psutil.cpu_count() or 1
        self._last_net: Any = psutil.net_io_counters()
        self._last_net_at = time.monotonic()

    def cpu_percent(self) -> float:
        # A window of a few milliseconds (a run right after start, as `watchkeeper check`
        # does) reads our own start-up as 100 % busy; measure at least _MIN_CPU_WINDOW.
        # This runs in a worker thread, so waiting here blocks nothing.
        short = _MIN_CPU_WINDOW - (time.monotonic() - self._last_at)
        if short > 0:
            time.sleep(short)
        now = psutil.cpu_times()
        with self._lock:
            last, self._last_cpu = self._last_cpu, now
            self._last_at = time.monotonic()
        return _busy_percent(last, now)

    def memory_percent(self) -> float:
        return float(psutil.virtual_memory().percent)

    def disk_percent(self, path: str) -> float:
        return float(psutil.disk_usage(path).percent)

    def load1_per_cpu(self) -> float:
        return psutil.getloadavg()[0] / self._cpu_count

    def network_bytes_per_s(self) -> tuple[float, float]:
        """(received, sent) bytes per second since the previous reading (or since start)."""
        counters = psutil.net_io_counters()
        now = time.monotonic()
        with self._lock:
            last, last_at = self._last_net, self._last_net_at
            self._last_net, self._last_net_at = counters, now
        elapsed = max(now - last_at, 1e-3)
        if last is None:
            return 0.0, 0.0
        # Counters can wrap or reset (an interface goes away): never a negative rate.
        received = max(0, counters.bytes_recv - last.bytes_recv) / elapsed
        sent = max(0, counters.bytes_sent - last.bytes_sent) / elapsed
        return received, sent


_MIN_CPU_WINDOW = 0.5  # seconds


def _busy_percent(before: Any, after: Any) -> float:
    # Same accounting as psutil.cpu_percent: guest time is already inside user/nice on Linux,
    # and iowait is idle time; counters that go backwards (it happens) count as zero.
    deltas: dict[str, float] = {
        name: max(0.0, float(getattr(after, name) - getattr(before, name)))
        for name in after._fields
    }
    total = sum(deltas.values()) - deltas.get("guest", 0.0) - deltas.get("guest_nice", 0.0)
    busy = total - deltas["idle"] - deltas.get("iowait", 0.0)
    if total <= 0:
        return 0.0
    return min(100.0, max(0.0, busy / total * 100))


@dataclass(slots=True)
class _Item:
    name: str
    """How the reading is named in reasons: `cpu`, `memory`, `disk /`, `load1/cpu`."""
    metric: str
    thresholds: Thresholds
    read: Callable[[], float]
    percent: bool = True


@dataclass(slots=True)
class _Sample:
    values: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


@register
class SystemCheck(Check[SystemCheckConfig]):
    """Compares host readings with thresholds: any crit → DOWN, any warn → DEGRADED."""

    type = "system"
    config_model = SystemCheckConfig

    def __init__(
        self,
        config: SystemCheckConfig,
        context: CheckContext,
        *,
        reader: SystemReader | None = None,
    ) -> None:
        super().__init__(config, context)
        self.reader: SystemReader = reader if reader is not None else PsutilReader()
        # Defaults are applied here rather than in the model so the config still reads back
        # exactly as written.
        unset = config.cpu is None and config.memory is None and not config.disk
        unset = unset and config.load is None
        cpu = DEFAULT_CPU if unset else config.cpu
        memory = DEFAULT_MEMORY if unset else config.memory
        disks = [DEFAULT_DISK] if unset else config.disk
        reader_ = self.reader
        items: list[_Item] = []
        if cpu is not None:
            items.append(_Item("cpu", "system.cpu.percent", cpu, reader_.cpu_percent))
        if memory is not None:
            items.append(_Item("memory", "system.memory.percent", memory, reader_.memory_percent))
        for disk in disks:
            items.append(
                _Item(
                    f"disk {disk.path}",
                    f'system.disk.percent{{path="{_label_value(disk.path)}"}}',
                    disk,
                    _bind(reader_.disk_percent, disk.path),
                )
            )
        if config.load is not None:
            items.append(
                _Item(
                    "load1/cpu",
                    "system.load1.per_cpu",
                    config.load,
                    reader_.load1_per_cpu,
                    percent=False,
                )
            )
        self._items = items

    async def run(self) -> CheckResult:
        sample = await asyncio.to_thread(self._sample)
        crit: list[str] = []
        warn: list[str] = []
        summary: list[str] = []
        for item in self._items:
            value = sample.values.get(item.metric)
            if value is None:
                continue
            shown = _format(value, item.percent)
            summary.append(f"{_SHORT.get(item.name, item.name)} {shown}")
            levels = item.thresholds
            unit = "%" if item.percent else ""
            if levels.crit is not None and value >= levels.crit:
                crit.append(f"{item.name} {shown} >= {levels.crit:g}{unit}")
            elif levels.warn is not None and value >= levels.warn:
                warn.append(f"{item.name} {shown} >= {levels.warn:g}{unit}")

        errors = [f"{name}: {error}" for name, error in sample.errors.items()]
        if crit:
            status = Status.DOWN
        elif errors:
            status = Status.UNKNOWN
        elif warn:
            status = Status.DEGRADED
        else:
            status = Status.UP
        problems = crit + errors + warn
        reason = ", ".join(problems) if problems else " ".join(summary) or "no readings"
        details: dict[str, Any] = {}
        if sample.errors:
            details["errors"] = dict(sample.errors)
        return CheckResult(status, reason, metrics=sample.values, details=details)

    def _sample(self) -> _Sample:
        # One worker-thread hop for all readings; a failing one (say, an unmounted disk) must
        # not hide the others.
        sample = _Sample()
        for item in self._items:
            try:
                sample.values[item.metric] = float(item.read())
            except (OSError, ValueError, psutil.Error) as exc:
                sample.errors[item.name] = getattr(exc, "strerror", None) or str(exc)
        # Throughput is for charts only; a reader without it (a test's) simply has none.
        network = getattr(self.reader, "network_bytes_per_s", None)
        if self.config.network and network is not None:
            try:
                received, sent = network()
            except (OSError, psutil.Error):
                pass  # a gap in a chart, not a reason to call the host's state unknown
            else:
                sample.values["system.network.receive_bytes_per_s"] = float(received)
                sample.values["system.network.transmit_bytes_per_s"] = float(sent)
        return sample


_SHORT = {"memory": "mem"}


def _bind(read: Callable[[str], float], path: str) -> Callable[[], float]:
    return lambda: read(path)


def _label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _format(value: float, percent: bool) -> str:
    if not percent:
        return f"{value:.2f}"
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{text}%"


__all__ = [
    "DiskThresholds",
    "PercentThresholds",
    "PsutilReader",
    "SystemCheck",
    "SystemCheckConfig",
    "SystemReader",
    "Thresholds",
]
