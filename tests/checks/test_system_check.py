"""The `system` check: threshold logic on injected readings, plus a smoke run on this host."""

from __future__ import annotations

import asyncio
import threading
from collections import namedtuple
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import ValidationError

from watchkeeper.checks import CheckContext, build_check
from watchkeeper.checks.system import (
    PsutilReader,
    SystemCheck,
    SystemCheckConfig,
    _busy_percent,
)
from watchkeeper.core.domain import Status

DISK_ROOT = 'system.disk.percent{path="/"}'


@dataclass
class FakeReader:
    """Fixed readings; records which thread asked, and fails on anything not configured."""

    cpu: float | None = None
    memory: float | None = None
    disks: dict[str, float] = field(default_factory=dict)
    load: float | None = None
    threads: set[int] = field(default_factory=set)

    def _get(self, value: float | None, what: str) -> float:
        self.threads.add(threading.get_ident())
        if value is None:
            raise AssertionError(f"{what} was not expected to be read")
        return value

    def cpu_percent(self) -> float:
        return self._get(self.cpu, "cpu")

    def memory_percent(self) -> float:
        return self._get(self.memory, "memory")

    def disk_percent(self, path: str) -> float:
        self.threads.add(threading.get_ident())
        if path not in self.disks:
            raise FileNotFoundError(2, "No such file or directory", path)
        return self.disks[path]

    def load1_per_cpu(self) -> float:
        return self._get(self.load, "load")


def make(context: CheckContext, reader: Any = None, **fields: Any) -> SystemCheck:
    config = SystemCheckConfig.model_validate({"name": "host", "type": "system", **fields})
    return SystemCheck(config, context, reader=reader)


async def test_with_no_sections_cpu_memory_and_root_disk_are_checked_at_90_and_95(
    context: CheckContext,
) -> None:
    reader = FakeReader(cpu=12.0, memory=40.0, disks={"/": 55.0})

    result = await make(context, reader).run()

    assert result.status is Status.UP
    assert result.reason == "cpu 12% mem 40% disk / 55%"
    assert result.metrics == {
        "system.cpu.percent": 12.0,
        "system.memory.percent": 40.0,
        DISK_ROOT: 55.0,
    }


async def test_defaults_use_90_as_warn(context: CheckContext) -> None:
    reader = FakeReader(cpu=12.0, memory=40.0, disks={"/": 93.1})

    result = await make(context, reader).run()

    assert result.status is Status.DEGRADED
    assert result.reason == "disk / 93.1% >= 90%"


async def test_defaults_use_95_as_crit(context: CheckContext) -> None:
    reader = FakeReader(cpu=95.0, memory=40.0, disks={"/": 10.0})

    result = await make(context, reader).run()

    assert result.status is Status.DOWN
    assert result.reason == "cpu 95% >= 95%"


async def test_defaults_are_not_applied_to_the_config_itself(context: CheckContext) -> None:
    check = make(context, FakeReader(cpu=1.0, memory=1.0, disks={"/": 1.0}))

    assert check.config.cpu is None
    assert check.config.model_dump(exclude_defaults=True) == {"name": "host", "type": "system"}


async def test_any_reading_over_crit_is_down_and_warnings_are_listed_after_it(
    context: CheckContext,
) -> None:
    reader = FakeReader(cpu=50.0, memory=91.0, disks={"/": 99.5})

    result = await make(
        context,
        reader,
        cpu={"warn": 80, "crit": 90},
        memory={"warn": 90, "crit": 95},
        disk=[{"path": "/", "warn": 90, "crit": 95}],
    ).run()

    assert result.status is Status.DOWN
    assert result.reason == "disk / 99.5% >= 95%, memory 91% >= 90%"


async def test_a_reading_exactly_at_warn_is_degraded(context: CheckContext) -> None:
    reader = FakeReader(memory=80.0)

    result = await make(context, reader, memory={"warn": 80, "crit": 90}).run()

    assert result.status is Status.DEGRADED
    assert result.reason == "memory 80% >= 80%"


async def test_only_configured_sections_are_read(context: CheckContext) -> None:
    reader = FakeReader(load=0.25)

    result = await make(context, reader, load={"warn": 1, "crit": 2}).run()

    assert result.status is Status.UP
    assert result.reason == "load1/cpu 0.25"
    assert result.metrics == {"system.load1.per_cpu": 0.25}


async def test_load_per_cpu_over_crit_is_down(context: CheckContext) -> None:
    reader = FakeReader(load=2.5)

    result = await make(context, reader, load={"warn": 1, "crit": 2}).run()

    assert result.status is Status.DOWN
    assert result.reason == "load1/cpu 2.50 >= 2"


async def test_thresholds_with_only_warn_never_go_down(context: CheckContext) -> None:
    reader = FakeReader(cpu=100.0)

    result = await make(context, reader, cpu={"warn": 70}).run()

    assert result.status is Status.DEGRADED


async def test_a_section_without_levels_only_reports(context: CheckContext) -> None:
    reader = FakeReader(cpu=100.0)

    result = await make(context, reader, cpu={}).run()

    assert result.status is Status.UP
    assert result.metrics == {"system.cpu.percent": 100.0}


async def test_each_disk_gets_its_own_metric_key(context: CheckContext) -> None:
    reader = FakeReader(disks={"/": 10.0, "/var/lib/data": 20.0})

    result = await make(
        context,
        reader,
        disk=[{"path": "/", "warn": 90}, {"path": "/var/lib/data", "warn": 90}],
    ).run()

    assert result.metrics == {DISK_ROOT: 10.0, 'system.disk.percent{path="/var/lib/data"}': 20.0}
    assert result.reason == "disk / 10% disk /var/lib/data 20%"


async def test_an_unreadable_disk_is_unknown_without_hiding_other_readings(
    context: CheckContext,
) -> None:
    reader = FakeReader(cpu=10.0, disks={})

    result = await make(
        context, reader, cpu={"warn": 90}, disk=[{"path": "/mnt/gone", "crit": 95}]
    ).run()

    assert result.status is Status.UNKNOWN
    assert result.reason == "disk /mnt/gone: No such file or directory"
    assert result.metrics == {"system.cpu.percent": 10.0}
    assert result.details == {"errors": {"disk /mnt/gone": "No such file or directory"}}


async def test_a_crit_reading_outranks_an_unreadable_one(context: CheckContext) -> None:
    reader = FakeReader(cpu=99.0, disks={})

    result = await make(
        context, reader, cpu={"crit": 95}, disk=[{"path": "/mnt/gone", "crit": 95}]
    ).run()

    assert result.status is Status.DOWN


async def test_readings_are_taken_off_the_event_loop_thread(context: CheckContext) -> None:
    reader = FakeReader(cpu=1.0, memory=1.0, disks={"/": 1.0})

    await make(context, reader).run()

    assert reader.threads
    assert threading.get_ident() not in reader.threads


async def test_the_real_host_yields_sane_readings(context: CheckContext) -> None:
    check = make(
        context,
        cpu={"warn": 90},
        memory={"warn": 90},
        disk=[{"path": "/", "warn": 90}],
        load={"warn": 1000},
    )

    result = await check.run()

    assert result.status in {Status.UP, Status.DEGRADED, Status.DOWN}
    for key in ("system.cpu.percent", "system.memory.percent", DISK_ROOT):
        assert 0.0 <= result.metrics[key] <= 100.0
    assert result.metrics["system.load1.per_cpu"] >= 0.0
    # Throughput, for the dashboard's network chart: recorded, never judged.
    assert result.metrics["system.network.receive_bytes_per_s"] >= 0.0
    assert result.metrics["system.network.transmit_bytes_per_s"] >= 0.0
    assert "network" not in result.reason


async def test_cpu_usage_is_measured_whichever_worker_thread_reads_it() -> None:
    reader = PsutilReader()
    # Burn a little CPU so the interval has something to measure.
    sum(i * i for i in range(200_000))

    values = [await asyncio.to_thread(reader.cpu_percent) for _ in range(3)]

    assert all(0.0 <= value <= 100.0 for value in values)


def test_busy_percent_matches_psutils_accounting() -> None:
    times = namedtuple("times", "user nice system idle iowait guest guest_nice")
    before = times(100, 0, 50, 800, 50, 0, 0)
    # 30 busy (user 20 of which 10 guest, system 10), 50 idle, 20 iowait.
    after = times(120, 0, 60, 850, 70, 10, 0)

    assert _busy_percent(before, after) == pytest.approx(30.0)


def test_busy_percent_is_zero_when_no_time_passed() -> None:
    times = namedtuple("times", "user system idle")
    same = times(1, 2, 3)

    assert _busy_percent(same, same) == 0.0


# --- config ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"cpu": {"warn": 95, "crit": 90}},
        {"memory": {"warn": 101}},
        {"cpu": {"warn": -1}},
        {"load": {"warn": 3, "crit": 2}},
        {"disk": [{"path": "/", "warn": 95, "crit": 90}]},
        {"disk": [{"warn": 90}]},
        {"disk": [{"path": "", "warn": 90}]},
        {"disk": [{"path": "/", "warn": 80}, {"path": "/", "warn": 90}]},
        {"cpu": {"warn": 90, "critical": 95}},
        {"swap": {"warn": 90}},
    ],
)
def test_invalid_config_is_rejected(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SystemCheckConfig.model_validate({"name": "host", "type": "system", **fields})


def test_load_thresholds_may_exceed_100() -> None:
    config = SystemCheckConfig.model_validate(
        {"name": "host", "type": "system", "load": {"warn": 150, "crit": 200}}
    )

    assert config.load is not None and config.load.crit == 200


def test_the_system_type_is_registered(context: CheckContext) -> None:
    config = SystemCheckConfig.model_validate({"name": "host", "type": "system"})

    assert isinstance(build_check(config, context), SystemCheck)
