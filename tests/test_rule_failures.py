"""A rule alert that cannot be stored: storage unavailable is retried with backoff and logged
once per outage; data the database refuses marks the series failed, logs one error and is not
tried again until the value changes, and never holds up the other series."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from tests.support.clock import FakeClock
from watchkeeper.alerting.rule_config import RuleConfig
from watchkeeper.alerting.rules import RuleEngine
from watchkeeper.store import alerts as alert_store
from watchkeeper.store.database import Database
from watchkeeper.store.rule_pending import load_pending

T0 = datetime(2026, 8, 3, 12, 0, tzinfo=UTC)
DISK = "system.disk.percent"
# A mount point whose name is not UTF-8, as a system check reports it (os.fsdecode).
ODD_PATH = os.fsdecode(b"/mnt/backup-\xff")
LOGGER = "watchkeeper.alerting.rules"


def _engine(db: Database) -> tuple[RuleEngine, FakeClock]:
    clock = FakeClock(T0)
    config = RuleConfig.model_validate(
        {"name": "disk-full", "metric": DISK, "op": ">", "threshold": 90, "for": "0s"}
    )
    return RuleEngine(db, [config], clock), clock


def _disks(engine: RuleEngine, clock: FakeClock, **percent_by_path: float) -> None:
    """One system check result with a disk metric per path."""
    metrics = {f'{DISK}{{path="{path}"}}': value for path, value in percent_by_path.items()}
    engine.observe_result_metrics("host", metrics, clock.now())


def _series(engine: RuleEngine) -> dict[str, dict[str, Any]]:
    (rule,) = engine.snapshot()
    return {s["labels"]["path"]: s for s in rule["series"]}


def _records(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


@pytest.fixture
def alert_writes(db: Database) -> Iterator[list[str]]:
    """Statements that would open or change an alert."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("INSERT INTO ALERTS", "UPDATE ALERTS")):
            seen.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    yield seen
    event.remove(db.engine.sync_engine, "before_cursor_execute", record)


async def test_a_series_the_database_refuses_is_marked_failed_once_and_others_still_fire(
    db: Database, alert_writes: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    engine, clock = _engine(db)
    odd = {"/": 95.0, ODD_PATH: 97.0}
    if db.dialect == "postgresql":
        odd["/srv/\x00tmp"] = 98.0  # PostgreSQL cannot hold a NUL in text either
    caplog.set_level(logging.INFO, LOGGER)
    _disks(engine, clock, **odd)
    await engine.evaluate()

    (alert,) = (await alert_store.list_alerts(db, status="open"))[0]
    assert alert.labels["path"] == "/"
    series = _series(engine)
    assert series["/"]["state"] == "firing"
    for path in odd.keys() - {"/"}:
        assert series[path]["state"] == "failed" and series[path]["error"]
    errors = _records(caplog, logging.ERROR)
    assert len(errors) == len(odd) - 1
    assert all("disk-full" in e and "marked failed" in e for e in errors)
    assert ascii(ODD_PATH)[1:-1] in "".join(errors)
    # Their pending state was stored all the same (the series id copes with the odd text).
    assert {p.labels["path"] for p in await load_pending(db)} == set(odd)

    # The same values again and again: not tried again, not logged again.
    writes = len(alert_writes)
    for _ in range(5):
        clock.advance(15)
        _disks(engine, clock, **odd)
        await engine.evaluate()
    assert len(alert_writes) == writes
    assert len(_records(caplog, logging.ERROR)) == len(odd) - 1

    # A new value is tried again (and refused again, quietly); a value that clears the
    # condition leaves nothing to store, so the series is no longer failed.
    clock.advance(15)
    _disks(engine, clock, **{ODD_PATH: 99.0})
    await engine.evaluate()
    assert len(alert_writes) > writes and _series(engine)[ODD_PATH]["state"] == "failed"
    assert len(_records(caplog, logging.ERROR)) == len(odd) - 1
    clock.advance(15)
    _disks(engine, clock, **{ODD_PATH: 50.0})
    await engine.evaluate()
    assert _series(engine)[ODD_PATH]["state"] == "inactive"
    assert _series(engine)[ODD_PATH]["error"] is None
    assert len((await alert_store.list_alerts(db))[0]) == 1


@pytest.fixture
def outage(db: Database) -> Iterator[dict[str, bool]]:
    """`outage["on"] = True`: the database refuses connections (as when it is down)."""
    state = {"on": False}

    def connect(*_: Any) -> None:
        if state["on"]:
            raise ConnectionRefusedError(111, "Connection refused")

    event.listen(db.engine.sync_engine, "do_connect", connect)
    yield state
    event.remove(db.engine.sync_engine, "do_connect", connect)


async def test_storage_unavailable_holds_the_alert_retries_with_backoff_and_logs_once(
    db: Database, outage: dict[str, bool], caplog: pytest.LogCaptureFixture
) -> None:
    engine, clock = _engine(db)
    caplog.set_level(logging.INFO, LOGGER)
    outage["on"] = True
    await db.engine.dispose()  # the pooled connections went with the server

    _disks(engine, clock, **{"/": 95.0})
    retry_at = await engine.evaluate()
    assert retry_at == T0 + timedelta(seconds=1)
    assert _series(engine)["/"]["state"] == "pending"  # not firing: no alert was stored

    # Evaluations before the retry try nothing; the retries back off: 1 s, 2 s, 4 s...
    attempts = []
    for _ in range(4):
        assert await engine.evaluate() == retry_at  # a sample's wake-up before the retry
        assert retry_at is not None
        clock.set(retry_at)
        _disks(engine, clock, **{"/": 96.0})
        next_retry = await engine.evaluate()
        assert next_retry is not None
        attempts.append((next_retry - retry_at).total_seconds())
        retry_at = next_retry
    assert attempts == [2, 4, 8, 16]
    warnings = _records(caplog, logging.WARNING)
    assert len(warnings) == 1 and "storage unavailable" in warnings[0]
    assert _records(caplog, logging.ERROR) == []

    outage["on"] = False
    assert retry_at is not None
    clock.set(retry_at)
    await engine.evaluate()
    (alert,) = (await alert_store.list_alerts(db, status="open"))[0]
    assert alert.started_at == retry_at and alert.labels["path"] == "/"
    assert _series(engine)["/"]["state"] == "firing"
    assert [p.labels for p in await load_pending(db)] == [{"check": "host", "path": "/"}]
    warnings = _records(caplog, logging.WARNING)
    assert len(warnings) == 2 and "storage answers again after 31s" in warnings[1]
