"""Metric rules when the database refuses a write or does not answer, on real SQLite with the
faults injected per statement: the pending state written series by series when one series is
refused, a refused alert that is retried on a new value and stored later, the outage backoff
with its cap, and the exact lines an operator reads in the log."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
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
LOGGER = "watchkeeper.alerting.rules"
LOCKED = "storage unavailable (OperationalError: database is locked): rule alerts and pending "
LOCKED += "series are kept and retried until it answers"


class TextRefused(sqlite3.DataError):
    """The driver's refusal of a value (named apart from SQLAlchemy's DataError wrapping it)."""


@dataclass
class Faults:
    """What the database does wrong, statement by statement; everything else is real."""

    down: bool = False
    """Every statement fails as when the database is locked (storage unavailable)."""
    refuse: dict[str, str] = field(default_factory=dict)
    """Statements on a table (key) whose parameters hold a text (value) are refused."""
    message: str = "no room for this"
    statements: list[str] = field(default_factory=list)
    """Every statement tried, refused or not."""

    def before(self, _conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        self.statements.append(statement)
        if self.down:
            raise sqlite3.OperationalError("database is locked")
        for table, marker in self.refuse.items():
            if table in statement.lower() and marker in repr(params):
                raise TextRefused(self.message)

    def on(self, table: str) -> int:
        """How many statements touched `table` so far."""
        return sum(1 for s in self.statements if table in s.lower())


@pytest.fixture
def db(sqlite_db: Database) -> Database:
    return sqlite_db


@pytest.fixture
def faults(db: Database) -> Iterator[Faults]:
    faults = Faults()
    event.listen(db.engine.sync_engine, "before_cursor_execute", faults.before)
    yield faults
    event.remove(db.engine.sync_engine, "before_cursor_execute", faults.before)


def rule(**fields: Any) -> RuleConfig:
    base = {"name": "disk-full", "metric": DISK, "op": ">", "threshold": 90, "for": "5m"}
    return RuleConfig.model_validate({**base, **fields})


class Disks:
    """A rule engine fed disk samples per path, as a system check reports them."""

    def __init__(self, db: Database, *rules: RuleConfig) -> None:
        self.db = db
        self.clock = FakeClock(T0)
        self.engine = RuleEngine(db, list(rules) or [rule()], self.clock)

    async def report(self, seconds: float, **percent_by_path: float) -> datetime | None:
        self.clock.set(T0 + timedelta(seconds=seconds))
        for path, value in percent_by_path.items():
            labels = {"check": "host", "path": path}
            self.engine.observe(DISK, labels, value, self.clock.now())
        return await self.engine.evaluate()

    async def stored_paths(self) -> set[str]:
        return {p.labels.get("path", "") for p in await load_pending(self.db)}

    def series(self, path: str) -> dict[str, Any]:
        (view,) = [r for r in self.engine.snapshot() if r["metric"] == DISK]
        (found,) = [s for s in view["series"] if s["labels"]["path"] == path]
        return dict(found)


def logged(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


def pending_refused(series: str) -> str:
    return (
        f"rule disk-full: the pending state of series '{series}' cannot be stored "
        "(TextRefused: no room for this); it is not kept across a restart"
    )


# --- the pending state, written series by series ----------------------------------------------


async def test_a_refused_series_is_left_out_of_the_pending_state_and_the_others_are_stored(
    db: Database, faults: Faults, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    faults.refuse["rule_pending"] = "/bad"
    disks = Disks(db)
    await disks.report(0, **{"/": 95, "/bad": 96})
    assert await disks.stored_paths() == {"/"}
    assert logged(caplog, logging.ERROR) == [pending_refused("check=host,path=/bad")]
    assert logged(caplog, logging.WARNING) == []  # refused is not "unavailable"
    assert disks.series("/bad")["state"] == "pending"  # it waits in memory all the same

    # Written (or given up) once: the same holding series are not written again.
    tried = faults.on("rule_pending")
    for second in (15, 30, 45):
        await disks.report(second, **{"/": 95, "/bad": 96})
    assert faults.on("rule_pending") == tried
    assert len(logged(caplog, logging.ERROR)) == 1

    # A release and a refused start in one pass: the release is still written.
    await disks.report(60, **{"/": 50, "/bad-too": 97})
    assert await disks.stored_paths() == set()
    assert logged(caplog, logging.ERROR)[1:] == [pending_refused("check=host,path=/bad-too")]
    assert logged(caplog, logging.WARNING) == []

    # The rest keeps working: "/" holds again and is stored, and fires after `for`.
    await disks.report(75, **{"/": 99})
    assert await disks.stored_paths() == {"/"}
    await disks.report(75 + 300, **{"/": 99, "/bad": 96, "/bad-too": 97})
    assert disks.series("/")["state"] == "firing"


async def test_a_series_without_labels_is_shown_as_braces_in_the_log(
    db: Database, faults: Faults, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    faults.refuse["rule_pending"] = "'{}'"
    engine = RuleEngine(db, [rule(metric="queue.depth")], FakeClock(T0))
    engine.observe("queue.depth", {}, 95, T0)
    engine.observe("queue.depth", {"queue": "mail"}, 95, T0)
    await engine.evaluate()
    errors = logged(caplog, logging.ERROR)
    assert errors == [
        "rule disk-full: the pending state of series {} cannot be stored "
        "(TextRefused: no room for this); it is not kept across a restart"
    ]
    assert [p.labels for p in await load_pending(db)] == [{"queue": "mail"}]


async def test_a_replaced_rule_forgets_its_stored_series_even_when_a_held_batch_is_refused(
    db: Database, faults: Faults, caplog: pytest.LogCaptureFixture
) -> None:
    """The changes held through an outage are written when a rule is replaced, and the batch
    is refused for one series: the replaced rule's old series are forgotten all the same."""
    caplog.set_level(logging.INFO, LOGGER)
    queue = rule(name="queue", metric="queue.depth", threshold=100)
    disks = Disks(db, rule(), queue)
    disks.engine.observe("queue.depth", {"q": "mail"}, 150, T0)
    await disks.report(0)
    assert [p.rule for p in await load_pending(db)] == ["queue"]

    faults.down = True
    await disks.report(1, **{"/": 95, "/bad": 96})
    assert logged(caplog, logging.WARNING) == [LOCKED]
    faults.down = False
    faults.refuse["rule_pending"] = "/bad"
    disks.clock.advance(0.5)
    await disks.engine.put(rule(name="queue", metric="queue.size", threshold=100))

    assert {(p.rule, p.labels.get("path")) for p in await load_pending(db)} == {("disk-full", "/")}
    assert logged(caplog, logging.ERROR) == [pending_refused("check=host,path=/bad")]
    assert logged(caplog, logging.WARNING)[1:] == [
        "storage answers again after 500ms: rule alerts held meanwhile are stored"
    ]

    # The old rule's series are forgotten once: the new rule's series, held one after the
    # other (the first along with another refused series), are all kept.
    disks.engine.observe("queue.size", {"q": "mail"}, 150, T0 + timedelta(seconds=2))
    await disks.report(2, **{"/bad-too": 97})
    faults.refuse.clear()
    disks.engine.observe("queue.size", {"q": "jobs"}, 150, T0 + timedelta(seconds=3))
    await disks.report(3)
    assert {(p.rule, p.labels.get("q")) for p in await load_pending(db)} == {
        ("disk-full", None),
        ("queue", "mail"),
        ("queue", "jobs"),
    }
    assert len(logged(caplog, logging.ERROR)) == 2


async def test_storage_lost_while_writing_series_by_series_is_retried_later(
    db: Database, faults: Faults, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    faults.refuse["rule_pending"] = "/bad"
    original = faults.before
    tried: list[int] = []

    def lost_after_the_refusal(*args: Any) -> None:
        try:
            original(*args)
        except TextRefused:
            if not tried:  # the first batch was refused; then the database goes away
                faults.down = True
            tried.append(1)
            raise

    event.remove(db.engine.sync_engine, "before_cursor_execute", faults.before)
    event.listen(db.engine.sync_engine, "before_cursor_execute", lost_after_the_refusal)
    try:
        disks = Disks(db)
        assert await disks.report(0, **{"/": 95, "/bad": 96}) == T0 + timedelta(seconds=1)
        assert len(tried) == 1
        assert logged(caplog, logging.WARNING) == [LOCKED]
        assert logged(caplog, logging.ERROR) == []
        faults.down = False
        await disks.report(1)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", lost_after_the_refusal)
        event.listen(db.engine.sync_engine, "before_cursor_execute", faults.before)
    assert await disks.stored_paths() == {"/"}
    assert logged(caplog, logging.ERROR) == [pending_refused("check=host,path=/bad")]


async def test_pending_changes_are_written_in_one_transaction(db: Database, faults: Faults) -> None:
    disks = Disks(db)
    await disks.report(0, **{"/": 95, "/a": 96, "/b": 97})
    assert faults.on("rule_pending") == 1
    assert await disks.stored_paths() == {"/", "/a", "/b"}
    read = faults.on("rule_pending")
    await disks.report(15, **{"/": 50, "/a": 50, "/b": 50})
    assert faults.on("rule_pending") == read + 1
    assert await disks.stored_paths() == set()


# --- outages: held, retried with a capped backoff, logged once ---------------------------------


async def test_the_retry_backoff_doubles_up_to_a_minute(
    db: Database, faults: Faults, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    disks = Disks(db)
    faults.down = True
    retry_at = await disks.report(0, **{"/": 95})
    assert retry_at == T0 + timedelta(seconds=1)
    delays = []
    for _ in range(8):
        assert retry_at is not None
        disks.clock.set(retry_at)
        next_retry = await disks.engine.evaluate()
        assert next_retry is not None
        delays.append((next_retry - retry_at).total_seconds())
        retry_at = next_retry
    assert delays == [2, 4, 8, 16, 32, 60, 60, 60]
    assert logged(caplog, logging.WARNING) == [LOCKED]

    faults.down = False
    assert retry_at is not None
    disks.clock.set(retry_at)
    await disks.engine.evaluate()
    assert await disks.stored_paths() == {"/"}
    assert logged(caplog, logging.WARNING)[1:] == [
        "storage answers again after 243s: rule alerts held meanwhile are stored"
    ]


async def test_an_alert_held_through_an_outage_is_logged_with_the_reason(
    db: Database, faults: Faults, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    disks = Disks(db, rule(**{"for": "0s"}))
    faults.down = True
    assert await disks.report(0, **{"/": 95}) == T0 + timedelta(seconds=1)
    assert logged(caplog, logging.WARNING) == [LOCKED]
    assert disks.series("/")["state"] == "pending"
    faults.down = False
    await disks.report(1)
    (alert,) = (await alert_store.list_alerts(db, status="open"))[0]
    assert alert.started_at == T0 + timedelta(seconds=1)


async def test_a_series_that_holds_and_releases_during_an_outage_is_not_stored(
    db: Database, faults: Faults
) -> None:
    disks = Disks(db)
    faults.down = True
    retry_at = await disks.report(0, **{"/": 95})
    await disks.report(0.5, **{"/": 50})  # before the retry: nothing is tried
    faults.down = False
    assert retry_at is not None
    await disks.report((retry_at - T0).total_seconds())
    assert await disks.stored_paths() == set()


async def test_a_series_that_releases_and_holds_again_during_an_outage_is_stored(
    db: Database, faults: Faults
) -> None:
    """Held changes written series by series (one of them refused) keep a start that came
    back after a release: the release is not written after it."""
    disks = Disks(db)
    await disks.report(0, **{"/": 95})
    faults.down = True
    retry_at = await disks.report(1, **{"/": 50})  # the release cannot be written
    await disks.report(1.2, **{"/": 96, "/bad": 97})  # before the retry: nothing is tried
    faults.down = False
    faults.refuse["rule_pending"] = "/bad"
    assert retry_at is not None
    await disks.report((retry_at - T0).total_seconds())
    assert await disks.stored_paths() == {"/"}
    (stored,) = await load_pending(db)
    assert stored.active_since == T0 + timedelta(seconds=1.2)


# --- a refused alert: failed, retried on a new value, stored later ------------------------------


async def test_a_refused_escalation_is_retried_on_a_new_value_and_logged_when_stored(
    db: Database, faults: Faults, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    disks = Disks(
        db, rule(threshold=None, thresholds={"warning": 90, "critical": 95}, **{"for": "0s"})
    )
    await disks.report(0, **{"/": 92})
    (alert,) = (await alert_store.list_alerts(db, status="open"))[0]
    assert alert.severity.value == "medium"

    faults.refuse["alert"] = "critical"
    faults.message = "no room for this\nDETAIL: the rest of what the driver said"
    await disks.report(15, **{"/": 97})
    refused = disks.series("/")
    assert (refused["state"], refused["error"]) == ("failed", "TextRefused: no room for this")
    (alert,) = (await alert_store.list_alerts(db, status="open"))[0]
    assert alert.severity.value == "medium"
    assert logged(caplog, logging.ERROR) == [
        "rule disk-full: the database refuses the alert of series 'check=host,path=/' "
        "(TextRefused: no room for this); the series is marked failed and tried again when "
        "its value changes"
    ]

    # The same value: not tried again. A new value back at the stored level: nothing to
    # store, so no write, and the series is no longer failed.
    writes = faults.on("alert")
    await disks.report(30, **{"/": 97})
    assert faults.on("alert") == writes
    await disks.report(45, **{"/": 93})
    assert faults.on("alert") == writes
    back = disks.series("/")
    assert (back["state"], back["error"], back["severity"]) == ("firing", None, "medium")

    # Refused again (a message without text: only the type is shown), logged again.
    faults.message = ""
    await disks.report(60, **{"/": 98})
    assert disks.series("/")["error"] == "TextRefused: "
    assert len(logged(caplog, logging.ERROR)) == 2

    # The database takes it now: stored, said once, and the series goes on as usual.
    faults.refuse.clear()
    await disks.report(75, **{"/": 99})
    stored = disks.series("/")
    assert (stored["state"], stored["error"], stored["severity"]) == ("firing", None, "critical")
    stored_now = [m for m in logged(caplog, logging.INFO) if "stored now" in m]
    assert stored_now == ["rule disk-full: the alert of series 'check=host,path=/' is stored now"]
    await disks.report(90, **{"/": 50})
    assert disks.series("/")["state"] == "inactive"
    assert (await alert_store.list_alerts(db, status="open"))[0] == []
    (view,) = disks.engine.snapshot()
    assert view["broken"] is None


async def test_a_refusal_the_driver_raises_unwrapped_is_shown_as_is(db: Database) -> None:
    disks = Disks(db, rule(**{"for": "0s"}))
    odd = os.fsdecode(b"/mnt/backup-\xff")
    await disks.report(0, **{odd: 95})
    error = disks.series(odd)["error"]
    assert error.startswith("UnicodeEncodeError: 'utf-8' codec can't encode character '\\udcff'")
    assert error.endswith(": surrogates not allowed")


async def test_a_rule_removed_with_changes_held_from_an_outage_leaves_no_series_behind(
    db: Database, faults: Faults
) -> None:
    queue = rule(name="queue", metric="queue.depth", threshold=100)
    disks = Disks(db, rule(), queue)
    faults.down = True
    disks.engine.observe("queue.depth", {"q": "mail"}, 150, T0)
    await disks.report(0, **{"/": 95})
    faults.down = False  # back before the retry: the changes are still held
    disks.clock.advance(0.5)
    assert await disks.engine.remove("queue") is True
    assert [(p.rule, p.labels) for p in await load_pending(db)] == [
        ("disk-full", {"check": "host", "path": "/"})
    ]
