"""Receives pings and turns silence into results at the exact instant a deadline passes."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from watchkeeper.alerting.broken import BrokenObjects, describe
from watchkeeper.checks.base import Check
from watchkeeper.checks.heartbeat import HeartbeatCheck, HeartbeatCheckConfig
from watchkeeper.core.clock import Clock
from watchkeeper.core.domain import CheckResult, Status
from watchkeeper.core.loops import run_timed
from watchkeeper.engine.heartbeat.evaluate import Verdict, evaluate
from watchkeeper.engine.heartbeat.writer import LINGER, PingWriter
from watchkeeper.store.database import Database
from watchkeeper.store.heartbeats import (
    HeartbeatRecord,
    load_heartbeats,
    save_heartbeat_rows,
    save_heartbeats,
)

log = logging.getLogger(__name__)

MAX_LOG_BYTES = 10_000
"""A ping's body is kept as the run's log up to this size (healthchecks.io-compatible)."""

_IDLE = 60.0  # seconds to sleep when no deadline is pending

ResultHandler = Callable[[Check[Any], datetime, CheckResult], Awaitable[None]]


class PingKind(StrEnum):
    SUCCESS = "success"
    START = "start"
    FAIL = "fail"
    LOG = "log"


class HeartbeatMonitor:
    """Owns every heartbeat's record; feeds pings and missed deadlines into the pipeline.

    A paused heartbeat (`is_paused`) has no deadline: it is not evaluated, so it never goes
    late or down. Its pings are still recorded and handed to `on_paused_result` (history and
    last result only; they do not change its state). `resume` restarts its deadline.
    """

    def __init__(
        self,
        db: Database,
        checks: list[HeartbeatCheck],
        on_result: ResultHandler,
        clock: Clock,
        reported: Mapping[str, Status] | None = None,
        *,
        is_paused: Callable[[str], bool] = lambda _name: False,
        on_paused_result: ResultHandler | None = None,
        body_bytes_per_day: int | None = None,
        broken: BrokenObjects | None = None,
        ping_linger: float = LINGER,
    ) -> None:
        self._body_bytes_per_day = body_bytes_per_day
        self._broken = broken if broken is not None else BrokenObjects()
        self._failing: dict[str, BaseException] = {}
        """Heartbeats whose last evaluation raised (reported broken after each pass)."""
        self._db = db
        self._checks = {c.name: c for c in checks}
        self._on_result = on_result
        self._on_paused_result = on_paused_result
        self._is_paused = is_paused
        self._clock = clock
        self._records: dict[str, HeartbeatRecord] = {}
        self._by_uuid: dict[str, str] = {}
        # What the pipeline last heard per heartbeat, so only changes are reported.
        self._reported: dict[str, Status] = dict(reported or {})
        self._wake = asyncio.Event()
        self._committing: dict[str, int] = {}
        """Heartbeats with pings waiting for their commit: each reports its own result."""
        self.writer = PingWriter(
            lambda rows, notes: save_heartbeat_rows(db, rows, notes), linger=ping_linger
        )
        """The one writer of records once loaded: pings are committed in groups."""

    async def load(
        self,
        checks: list[HeartbeatCheck] | None = None,
        *,
        reported: Mapping[str, Status] | None = None,
    ) -> None:
        """Read records, creating (and persisting) a ping UUID for new heartbeats. `checks`
        and `reported` replace the constructor's (the runtime knows them only at start)."""
        if checks is not None:
            self._checks = {c.name: c for c in checks}
        if reported is not None:
            self._reported = dict(reported)
        stored = await load_heartbeats(self._db)
        changed = []
        for name, check in self._checks.items():
            record = stored.get(name)
            wanted = str(check.config.uuid) if check.config.uuid else None
            if record is None:
                record = HeartbeatRecord(name, wanted or str(uuid.uuid4()))
                changed.append(record)
            elif wanted and record.uuid != wanted:
                record.uuid = wanted
                changed.append(record)
            self._records[name] = record
        if changed:
            await save_heartbeats(self._db, changed)
        self._by_uuid = {r.uuid: n for n, r in self._records.items()}

    async def add(self, check: HeartbeatCheck) -> None:
        """Watch one more heartbeat (its stored record, if any, is picked up)."""
        if check.name in self._checks:
            raise KeyError(f"{check.name!r} is already watched")
        stored = (await load_heartbeats(self._db)).get(check.name)
        wanted = str(check.config.uuid) if check.config.uuid else None
        record = stored or HeartbeatRecord(check.name, wanted or str(uuid.uuid4()))
        if stored is None or (wanted and record.uuid != wanted):
            record.uuid = wanted or record.uuid
            await save_heartbeats(self._db, [record])
        self._checks[check.name] = check
        self._records[check.name] = record
        self._by_uuid[record.uuid] = check.name
        self._wake.set()

    def remove(self, name: str) -> HeartbeatCheck | None:
        """Stop watching a heartbeat; its pings are 404s from now on."""
        check = self._checks.pop(name, None)
        record = self._records.pop(name, None)
        if record is not None:
            self._by_uuid.pop(record.uuid, None)
        self._reported.pop(name, None)
        return check

    def by_uuid(self, key: str) -> HeartbeatCheck | None:
        """The heartbeat whose ping UUID is `key`, if any."""
        name = self._by_uuid.get(key.lower())
        return self._checks.get(name) if name is not None else None

    def by_name(self, name: str) -> HeartbeatCheck | None:
        """The heartbeat named `name`, if any (who may ping by name is the caller's rule)."""
        return self._checks.get(name)

    def record(self, name: str) -> HeartbeatRecord | None:
        return self._records.get(name)

    def verdict(self, name: str, now: datetime | None = None) -> Verdict:
        """The heartbeat's state now. One that cannot be evaluated (say a stored ping time
        that overflows its deadline) is UNKNOWN and reported broken, never an exception."""
        check = self._checks[name]
        try:
            verdict = evaluate(check.config, self._records[name], now or self._clock.now())
        except Exception as exc:
            self._failing[name] = exc
            return Verdict(Status.UNKNOWN, f"cannot be evaluated: {describe(exc)}", None)
        self._failing.pop(name, None)
        return verdict

    async def resume(self, name: str, at: datetime) -> None:
        """A pause of `name` ends at `at`: its deadline restarts from there, and what it
        reported before no longer counts. Call before the check stops being paused."""
        record = self._records.get(name)
        if record is None:
            return
        record.resumed_at = at
        await self.writer.write(record, urgent=True)
        self._wake.set()

    async def close(self) -> None:
        """Stop the ping writer (what it holds is committed first)."""
        await self.writer.close()

    async def ping(
        self,
        check: HeartbeatCheck,
        kind: PingKind,
        *,
        exit_code: int | None = None,
        body: bytes = b"",
        source: str | None = None,
    ) -> None:
        """Record one ping and report its result at once."""
        now = self._clock.now()
        record = self._records.get(check.name)
        if record is None or self._checks.get(check.name) is not check:
            return  # removed (or replaced) while the ping was on its way
        # From here to `submit` nothing awaits: the record the writer snapshots holds this
        # ping whenever the ping is in its batch.
        record.ping_count += 1
        details: dict[str, Any] = {"ping": kind.value}
        metrics: dict[str, float] = {}
        if source:
            details["source"] = source
        if body:
            self._keep_body(record, now, body[:MAX_LOG_BYTES], details)
        if exit_code is not None:
            details["exit_code"] = exit_code
        if kind is PingKind.START:
            record.last_start_at = now
        elif kind is PingKind.SUCCESS:
            if record.last_start_at is not None and (
                record.last_ping_at is None or record.last_start_at > record.last_ping_at
            ):
                record.last_duration = (now - record.last_start_at).total_seconds()
                metrics["heartbeat.duration_seconds"] = record.last_duration
                details["duration_seconds"] = record.last_duration
            else:
                record.last_duration = None
            record.last_ping_at = now
            record.last_exit_code = exit_code
        elif kind is PingKind.FAIL:
            record.last_fail_at = now
            record.last_exit_code = exit_code
        # The ping's verdict as of its own change (later pings may change the record while
        # this one waits for its commit).
        verdict = self.verdict(check.name, now)
        note = result = None
        if kind is PingKind.LOG or kind is PingKind.START:
            # No state change, but the history shows it (and a /log ping's body), masked as
            # every result is: a job's log may print a password or a token.
            shown = check.redacted(
                CheckResult(
                    verdict.status,
                    "log received" if kind is PingKind.LOG else "run started",
                    details=details,
                )
            )
            note = {
                "check_name": check.name,
                "started_at": now,
                "status": verdict.status.value,
                "reason": shown.reason,
                "response_time": None,
                "metrics": None,
                "details": shown.details,
            }
        else:
            reason = verdict.reason
            if kind is PingKind.SUCCESS:
                took = record.last_duration
                reason = "ping received" + (f" (run took {took:.1f}s)" if took is not None else "")
            result = CheckResult(verdict.status, reason, metrics=metrics, details=details)
        # A failure, or a ping that changes the heartbeat's state (a late one coming back):
        # committed without lingering for company. Answered only once committed.
        urgent = kind is PingKind.FAIL or (
            result is not None and self._reported.get(check.name) is not result.status
        )
        # Until then the ping's own result is not reported: evaluate leaves the heartbeat
        # alone (it would report the same change twice, or one that was never stored).
        self._committing[check.name] = self._committing.get(check.name, 0) + 1
        try:
            await self.writer.write(record, note, urgent=urgent)
        except BaseException:
            self._wake.set()  # evaluate reports what the record now says
            raise
        finally:
            if (left := self._committing.pop(check.name) - 1) > 0:
                self._committing[check.name] = left
        if kind is PingKind.START:
            log.info("heartbeat %s: run started", check.name)
        if result is not None and self._is_paused(check.name):
            # Recorded, shown as the last result, but the paused check's state stays put.
            if self._on_paused_result is not None:
                await self._on_paused_result(check, now, result)
        elif result is not None:
            self._reported[check.name] = result.status
            await self._on_result(check, now, result)
        if urgent or kind is PingKind.START:
            # A new deadline (a run's, or that of a heartbeat coming back) may come before
            # the instant evaluate waits for. A success of an up heartbeat only moves its
            # deadline later (an early look would find nothing): no wake-up, so a stream of
            # pings does not evaluate every heartbeat once per ping.
            self._wake.set()

    def _keep_body(
        self, record: HeartbeatRecord, now: datetime, body: bytes, details: dict[str, Any]
    ) -> None:
        """Put `body` in `details` as the run's log, unless the heartbeat's bodies of this
        UTC day already reached the cap: then only a note says it was not stored."""
        day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        if record.body_day != day:
            record.body_day, record.body_bytes = day, 0
        cap = self._body_bytes_per_day
        if cap is not None and record.body_bytes + len(body) > cap:
            details["log_not_stored"] = (
                f"{len(body)} bytes not stored: this check's ping bodies reached the daily "
                f"limit of {cap} bytes (heartbeats.body_bytes_per_day)"
            )
            return
        record.body_bytes += len(body)
        # NUL is replaced like invalid UTF-8: no engine is given it (PostgreSQL text refuses it).
        details["log"] = body.decode("utf-8", "replace").replace("\x00", "\ufffd")

    async def evaluate(self) -> datetime | None:
        """Report every heartbeat whose status changed; return the next instant to look again."""
        now = self._clock.now()
        next_at: datetime | None = None
        self._failing = {n: e for n, e in self._failing.items() if n in self._checks}
        for name, check in list(self._checks.items()):  # add/remove may run meanwhile
            if self._checks.get(name) is not check or self._is_paused(name):
                continue  # a paused heartbeat has no deadline until it is resumed
            verdict = self.verdict(name, now)
            if verdict.changes_at is not None and (next_at is None or verdict.changes_at < next_at):
                next_at = verdict.changes_at
            if self._reported.get(name) is verdict.status or name in self._committing:
                continue
            if verdict.status is Status.UNKNOWN and name not in self._reported:
                self._reported[name] = verdict.status
                continue  # a new heartbeat: nothing to say until it pings
            self._reported[name] = verdict.status
            await self._on_result(check, now, CheckResult(verdict.status, verdict.reason))
        self._broken.update(
            "heartbeats", {("heartbeat", n): e for n, e in self._failing.items()}, now
        )
        return next_at

    async def run(self) -> None:
        await run_timed(
            self.evaluate, self._wake, self._clock, idle=_IDLE, what="evaluating heartbeats"
        )


def heartbeat_checks(checks: list[Check[Any]]) -> list[HeartbeatCheck]:
    return [c for c in checks if isinstance(c.config, HeartbeatCheckConfig)]  # type: ignore[misc]
