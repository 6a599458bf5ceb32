"""Supervised programs across Watchkeeper's own restart: an instance left running on purpose
(`keep_running`) is adopted, the same process by its identity, and still restarted when it
dies; one left behind without `keep_running` is stopped and the program started cleanly;
a recorded pid now used by another process is left alone."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.clock import FakeClock
from watchkeeper.core.redact import Redactor
from watchkeeper.notify.payload import recovery_payload
from watchkeeper.recovery.config import RecoveryConfig
from watchkeeper.recovery.coordinator import Recovery
from watchkeeper.recovery.supervisor import ProgramState, process_identity
from watchkeeper.store import recovery as run_store
from watchkeeper.store.database import Database

PY = sys.executable
PAUSE = [PY, "-c", "import signal; signal.pause()"]


def program(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "process",
        "command": PAUSE,
        "startsecs": "0s",
        "stop_timeout": "5s",
        **extra,
    }


def build(db: Database, *actions: dict[str, Any]) -> Recovery:
    return Recovery(
        RecoveryConfig.model_validate(list(actions)),
        db=db,
        clock=FakeClock(),
        redactor=Redactor(),
        payload=recovery_payload,
        channels_for=lambda _check: [],
    )


@pytest.fixture
def groups() -> Iterator[list[int]]:
    """Process groups the test started or left running: killed at the end."""
    found: list[int] = []
    yield found
    for pgid in found:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


async def test_a_program_left_running_is_adopted_and_restarted_when_it_dies(
    sqlite_db: Database, groups: list[int]
) -> None:
    first = build(sqlite_db, program("api", keep_running=True))
    await first.start()
    pid = first.supervisor.get("api").pid
    assert pid is not None
    groups.append(pid)
    await first.stop()
    assert process_identity(pid) is not None, "keep_running: it outlives Watchkeeper"
    assert (await run_store.load_programs(sqlite_db))["api"][0] == pid

    again = build(sqlite_db, program("api", keep_running=True))
    await again.start()
    try:
        adopted = again.supervisor.get("api")
        assert adopted.pid == pid and adopted.adopted and adopted.restarts == 0
        assert adopted.state is ProgramState.RUNNING
        status = adopted.status()
        assert status.adopted and status.uptime is not None and status.uptime >= 0

        os.kill(pid, signal.SIGKILL)  # its exit is noticed (pidfd), not polled
        async with asyncio.timeout(10):
            await adopted.wait_for(lambda p: p.restarts == 1 and p.state is ProgramState.RUNNING)
        assert adopted.pid is not None and adopted.pid != pid and not adopted.adopted
        groups.append(adopted.pid)
    finally:
        await again.stop()


async def test_an_instance_left_behind_is_stopped_and_a_reused_pid_left_alone(
    sqlite_db: Database, groups: list[int]
) -> None:
    stray = await asyncio.create_subprocess_exec(*PAUSE, start_new_session=True)
    other = await asyncio.create_subprocess_exec(*PAUSE, start_new_session=True)
    groups += [stray.pid, other.pid]
    identity = process_identity(stray.pid)
    assert identity is not None
    now = FakeClock().now()
    # As a Watchkeeper killed with SIGKILL leaves them: the records of running instances.
    await run_store.save_program(sqlite_db, "api", stray.pid, identity, now)
    await run_store.save_program(sqlite_db, "db", other.pid, "another-boot:1", now)

    recovery = build(sqlite_db, program("api"), program("db"))
    await recovery.start()
    try:
        async with asyncio.timeout(5):
            assert await stray.wait() == -signal.SIGTERM, "stopped with its stop_signal"
        assert other.returncode is None, "a pid whose identity differs is not ours"
        assert process_identity(other.pid) is not None
        api = recovery.supervisor.get("api")
        assert api.state is ProgramState.RUNNING and api.pid not in (None, stray.pid)
        assert not api.adopted
        groups += [p.pid for p in recovery.supervisor.programs.values() if p.pid]
        await asyncio.gather(*recovery._program_saves)
        recorded = await run_store.load_programs(sqlite_db)
        assert recorded["api"] == (api.pid, process_identity(api.pid))  # type: ignore[arg-type]
    finally:
        await recovery.stop()
    assert await run_store.load_programs(sqlite_db) == {}, "stopped with Watchkeeper"
    other.kill()
    await other.wait()
