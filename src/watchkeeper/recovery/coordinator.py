"""The running side of automatic recovery: what happens when a check with `recovery:` is DOWN.

`Recovery` is told each hard state of a check that names a recovery action (the result
pipeline calls `observe`). While the check is DOWN it runs the action whenever the action's
guard allows (`guard.py`: `max_attempts` within `within`, `cooldown`, one run at a time per
action, `max_concurrent` across all), records each run (`store/recovery.py`), and queues
`recovery.started|succeeded|failed|exhausted` notifications to the check's channels in the
same transaction. When the last allowed attempt failed, the action is locked out, the
check's open alert gets "automatic recovery exhausted after N attempts" and its next
escalation step is brought forward, and the dispatcher is woken. When the check is UP again
the lock-out is lifted and the action's `on_resolved` runs once.

A runbook with `approval: required` does not run when triggered: its run is recorded as
`pending_approval`, `recovery.approval_requested` is queued (with a dashboard link), and
the run waits for `approve` or `reject` (an operator's, with a comment), or expires after
`approval_timeout`: then `recovery.expired` is queued and the check's alert escalates.
Pending runs are in the database and taken back at the next start.

Automatic runs (a check's DOWN, a rule's alert) wait while `hold` says so for the check (a
maintenance window, a dependency DOWN); runs by hand are not held.

The guards' attempt times and lock-outs are stored, so a restart does not start the budget
afresh. `process` actions' programs are supervised from `start()` to `stop()`; each restart
the supervisor makes on its own (the program exited) is recorded and notified as a run too.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from watchkeeper.core.checkstate import Transition
from watchkeeper.core.clock import Clock
from watchkeeper.core.domain import Status
from watchkeeper.core.durations import format_duration
from watchkeeper.core.redact import (
    Redactor,
    body_secrets,
    data_secrets,
    header_secrets,
    url_secrets,
)
from watchkeeper.recovery.actions import ActionContext, ActionOutcome, OutcomeStatus, build_action
from watchkeeper.recovery.actions.base import Action, CheckProbe, Notifier
from watchkeeper.recovery.config import (
    ProcessAction,
    RecoveryAction,
    RecoveryConfig,
    RunbookAction,
)
from watchkeeper.recovery.guard import Attempt, GuardState, RecoveryGuard, Refused, TargetGuard
from watchkeeper.recovery.supervisor import Program, ProgramState, ProgramStatus, Supervisor
from watchkeeper.store import recovery as store
from watchkeeper.store.database import Database
from watchkeeper.store.outbox import OutboxEntry

log = logging.getLogger(__name__)

MAX_STORED_OUTPUT = 64 * 1024
"""Characters of a run's output kept in its record (after redaction)."""

EVENTS = (
    "recovery.started",
    "recovery.succeeded",
    "recovery.failed",
    "recovery.exhausted",
    "recovery.approval_requested",
    "recovery.rejected",
    "recovery.expired",
    "recovery.cancelled",
)

APPROVAL_REQUESTED = "recovery.approval_requested"

REJECTED = "rejected"
EXPIRED = "expired"
CANCELLED = "cancelled"

PayloadBuilder = Callable[[dict[str, Any], str], dict[str, Any]]
"""(the run's record, the event) -> the notification body (notify/payload.py builds it)."""


class Trigger:
    """What started a run (the `trigger` of its record)."""

    CHECK = "check"
    EXIT = "exit"
    """A supervised program exited and the supervisor started it again."""
    MANUAL = "manual"
    RESOLVED = "resolved"
    """`on_resolved`: the check is UP again."""
    RULE = "rule"
    """A rule with `recovery:` fired its alert."""


class NotPending(Exception):
    """A run that is not (or no longer) waiting for approval."""


@dataclass(slots=True)
class Pending:
    """A runbook run waiting for approval."""

    record: dict[str, Any]
    deadline: datetime


def needs_approval(config: RecoveryAction) -> bool:
    """Whether a run of `config` waits for a person to approve it."""
    return isinstance(config, RunbookAction) and config.approval == "required"


@dataclass(frozen=True, slots=True)
class ActionStatus:
    """What the API shows of one action."""

    name: str
    type: str
    state: GuardState
    attempts: int
    """Attempts within the current window."""
    max_attempts: int
    cooldown_left: float
    program: ProgramStatus | None
    """For `process`: the supervised program (pid, uptime, restarts)."""


def run_record(row: Any) -> dict[str, Any]:
    """A stored run as plain values (times as datetimes)."""
    return {
        "id": row.id,
        "action": row.action,
        "check": row.check_name,
        "trigger": row.trigger,
        "actor": row.actor,
        "attempt": row.attempt,
        "status": row.status,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "output": row.output,
        "exit_code": row.exit_code,
        "http_status": row.http_status,
        "reason": row.reason,
    }


class Recovery:
    """Every configured recovery action, its guard and (for `process`) its program."""

    def __init__(
        self,
        config: RecoveryConfig,
        *,
        db: Database,
        clock: Clock,
        redactor: Redactor,
        payload: PayloadBuilder,
        channels_for: Callable[[str | None], list[str]],
        on_enqueued: Callable[[], None] = lambda: None,
        on_escalated: Callable[[], None] = lambda: None,
        on_run_ended: Callable[[str, str], None] = lambda _action, _status: None,
        log_dir: Path | None = None,
        notifier: Notifier | None = None,
        probe: CheckProbe | None = None,
        hold: Callable[[str], Awaitable[str | None]] | None = None,
        dashboard_url: str | None = None,
    ) -> None:
        self.config = config
        self._db = db
        self._clock = clock
        self._redactor = redactor
        self._payload = payload
        self._channels_for = channels_for
        self._on_enqueued = on_enqueued
        self._on_escalated = on_escalated
        self._on_run_ended = on_run_ended
        self.notifier = notifier
        self.probe = probe
        self._hold = hold
        """check -> why its automatic recovery waits now (None: it does not)."""
        self._dashboard_url = dashboard_url.rstrip("/") if dashboard_url else None
        self.pending: dict[str, Pending] = {}
        """Runs waiting for approval, by id."""
        self._pending_changed = asyncio.Event()
        self.live: dict[str, list[str]] = {}
        """Output lines of the runs in progress so far (runbooks say each step as it ends)."""
        self.guard = RecoveryGuard(clock, config.max_concurrent)
        self.supervisor = Supervisor(clock=clock, log_dir=log_dir)
        self.actions: dict[str, Action[Any]] = {}
        self.configs: dict[str, RecoveryAction] = {}
        for action in config.actions:
            self.configs[action.name] = action
            self.actions[action.name] = build_action(action)
            # What an action sends or is run with may come back in its output or reason.
            redactor.add(action_secrets(action))
            if (undo := getattr(action, "on_resolved", None)) is not None:
                redactor.add(action_secrets(undo))
            if isinstance(action, ProcessAction):
                self.supervisor.add(action)
        self._engaged: dict[str, set[str]] = {}
        """check -> actions run for it since it went DOWN (their `on_resolved` is due)."""
        self._tasks: set[asyncio.Task[None]] = set()
        """Runs in progress."""
        self._watchers: set[asyncio.Task[None]] = set()
        """One per supervised program, from start to stop (see `_watch`)."""
        self._started = False
        self._program_saves: set[asyncio.Task[None]] = set()
        self._program_lock = asyncio.Lock()

    # -- start and stop ---------------------------------------------------------------------

    async def start(self) -> None:
        """Take back the stored guards, close runs a previous process left open, start the
        supervised programs."""
        interrupted = await store.interrupt_running(self._db, self._clock.now())
        if interrupted:
            log.warning("%d recovery runs were cut short by the last stop", interrupted)
        now, mono = self._clock.now(), self._clock.monotonic()
        for name, (times, exhausted) in (await store.load_guards(self._db)).items():
            action = self.configs.get(name)
            if action is None:
                continue
            ages = [mono - (now - at).total_seconds() for at in times]
            self.guard.target(name, action).restore(ages, exhausted=exhausted)
        await self._take_back_pending()
        self._started = True
        recorded = await store.load_programs(self._db) if self.supervisor.programs else {}
        for program in self.supervisor.programs.values():
            program.on_spawn = self._record_program
        await self.supervisor.start(recorded)
        for program in self.supervisor.programs.values():
            self._watchers.add(asyncio.create_task(self._watch(program)))
        self._watchers.add(asyncio.create_task(self._expire_loop(), name="recovery-approvals"))

    async def stop(self) -> None:
        """Cancel the runs in progress (their records say interrupted at the next start)
        and stop the supervised programs (unless `keep_running`)."""
        self._started = False
        tasks = [*self._watchers, *self._tasks]
        self._watchers.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # What keeps running (keep_running) stays recorded, to be adopted at the next start.
        left = {
            name: (p.pid, p.identity)
            for name, p in self.supervisor.programs.items()
            if p.config.keep_running and p.pid is not None
        }
        await self.supervisor.stop()
        await asyncio.gather(*self._program_saves, return_exceptions=True)
        for name in self.supervisor.programs:
            pid, identity = left.get(name, (None, None))
            try:
                await store.save_program(self._db, name, pid, identity, self._clock.now())
            except Exception:
                log.exception("recording the program of %s failed", name)

    # -- what the result pipeline tells us ----------------------------------------------------

    def observe(
        self, check: str, action: str, status: Status, transition: Transition | None
    ) -> None:
        """The hard state of `check`, whose `recovery:` is `action`, after one of its results:
        DOWN runs the action if its guard allows; UP after DOWN lifts its lock-out and runs
        `on_resolved`. Never blocks: the work is a task of its own."""
        if not self._started or action not in self.configs:
            return
        if status is Status.DOWN:
            self.trigger(action, check, Trigger.CHECK)
        elif status is Status.UP and transition is not None and transition.previous is Status.DOWN:
            self._spawn(self._resolved(check, action))

    def trigger(self, action: str, check: str | None, trigger: str) -> bool:
        """Run `action` automatically for `check` (its DOWN, or a rule's alert) if its guard
        allows and nothing holds the check's recovery; return whether a run was started.
        Never blocks."""
        if not self._started or action not in self.configs:
            return False
        target = self.guard.get(action)
        if target is not None and target.state is not GuardState.READY:
            return False  # running, waiting, cooling down or locked out
        self._spawn(self._automatic(action, check, trigger))
        return True

    async def _automatic(self, action: str, check: str | None, trigger: str) -> None:
        if check is not None and self._hold is not None:
            try:
                why = await self._hold(check)
            except Exception:  # cannot tell: recover rather than stay down
                log.exception("deciding whether recovery of %s waits failed", check)
                why = None
            if why is not None:
                log.debug("automatic recovery of %s waits: %s", check, why)
                return
        await self._attempt(action, check, trigger, None, None)

    async def settled(self) -> None:
        """Return once the runs in progress (and those they lead to) have ended."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- by hand ------------------------------------------------------------------------------

    async def run(self, name: str, *, actor: str | None, check: str | None = None) -> str:
        """Run `name` now (an operator asked); return the run's id once it started. Raises
        KeyError (no such action) or `Refused` (its guard says no now)."""
        if name not in self.configs:
            raise KeyError(name)
        started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._spawn(self._attempt(name, check, Trigger.MANUAL, actor, started))
        return await started

    async def reset(self, name: str) -> None:
        """Lift the lock-out of `name` and forget its attempts. KeyError: no such action."""
        if name not in self.configs:
            raise KeyError(name)
        self.guard.reset(name)
        await self._save_guard(name)

    async def approve(self, run_id: str, *, actor: str, comment: str = "") -> str:
        """Run a pending runbook run now (a person approved it); return its id once it
        started. Raises `NotPending` when it is not waiting (any more)."""
        pending = self._take_pending(run_id)
        record = pending.record
        note = f"approved by {actor}" + (f": {comment}" if comment else "")
        started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._spawn(
            self._attempt(
                record["action"],
                record["check"],
                record["trigger"],
                record["actor"],
                started,
                approved=(record, note),
            )
        )
        return await started

    async def reject(self, run_id: str, *, actor: str, comment: str = "") -> None:
        """End a pending run without running it; raises `NotPending` when it is not waiting."""
        pending = self._take_pending(run_id)
        reason = f"rejected by {actor}" + (f": {comment}" if comment else "")
        await self._decide(pending.record, REJECTED, reason, "recovery.rejected", escalate=False)

    def _take_pending(self, run_id: str) -> Pending:
        pending = self.pending.pop(run_id, None)
        if pending is None:
            raise NotPending(run_id)
        target = self.guard.get(pending.record["action"])
        if target is not None and target.pending == run_id:
            target.pending = None
        self._pending_changed.set()
        return pending

    async def _decide(
        self, record: dict[str, Any], status: str, reason: str, event: str, *, escalate: bool
    ) -> dict[str, Any]:
        """A pending run ends without running (rejected, expired): stored, told once."""
        now = self._clock.now()
        reason = self._redactor(reason)  # an operator's comment may quote anything
        record = {**record, "status": status, "finished_at": now, "reason": reason}
        escalation = None
        if escalate and record["check"] is not None:
            escalation = store.Escalation(record["check"], "recovery_approval_expired", reason)
        changed, alert = await store.decide_run(
            self._db,
            record["id"],
            {"status": status, "finished_at": now, "reason": reason},
            self._events(record, [event]),
            now,
            escalation,
        )
        if changed:
            self._told(alert)
            self._on_run_ended(record["action"], status)
            log.info("recovery %s %s: %s", record["action"], status, reason)
        return record

    async def _request_approval(
        self,
        name: str,
        check: str | None,
        trigger: str,
        actor: str | None,
        started: asyncio.Future[str] | None,
    ) -> None:
        """Record a run of `name` waiting for approval and ask for it."""
        config = self.configs[name]
        assert isinstance(config, RunbookAction)
        target = self.guard.target(name, config)
        try:
            target.admit()
        except Refused as refused:
            if started is not None and not started.done():
                started.set_exception(refused)
            return
        run_id = str(uuid.uuid4())
        target.pending = run_id
        now = self._clock.now()
        deadline = now + config.approval_timeout
        record: dict[str, Any] = {
            "id": run_id,
            "action": name,
            "check": check,
            "trigger": trigger,
            "actor": actor,
            "attempt": target.attempts + 1,
            "status": store.PENDING_APPROVAL,
            "started_at": now,
            "finished_at": None,
            "output": "",
            "exit_code": None,
            "http_status": None,
            "reason": "waiting for approval (expires in "
            f"{format_duration(config.approval_timeout)})",
        }
        try:
            await store.insert_run(
                self._db, _row(record), self._events(record, [APPROVAL_REQUESTED]), now
            )
        except Exception as exc:
            target.pending = None
            log.exception("recording the approval request of %s failed", name)
            if started is not None and not started.done():
                started.set_exception(exc)
            return
        self.pending[run_id] = Pending(record, deadline)
        self._pending_changed.set()
        self._on_enqueued()
        log.info("recovery %s waits for approval (run %s)", name, run_id)
        if started is not None and not started.done():
            started.set_result(run_id)

    async def _take_back_pending(self) -> None:
        """The runs a previous process left waiting for approval wait again (their
        deadlines as they were); those whose action no longer needs approval end."""
        for row in await store.pending_runs(self._db):
            record = run_record(row)
            config = self.configs.get(record["action"])
            if config is None or not needs_approval(config):
                await self._decide(
                    record,
                    store.INTERRUPTED,
                    "the action no longer needs approval (config changed)",
                    "recovery.failed",
                    escalate=False,
                )
                continue
            assert isinstance(config, RunbookAction)
            self.guard.target(record["action"], config).pending = record["id"]
            self.pending[record["id"]] = Pending(
                record, record["started_at"] + config.approval_timeout
            )

    async def _expire_loop(self) -> None:
        """End each pending run whose `approval_timeout` passed: expired, escalated."""
        while True:
            self._pending_changed.clear()
            now = self._clock.now()
            for run_id, pending in list(self.pending.items()):
                if pending.deadline > now:
                    continue
                self._take_pending(run_id)
                config = self.configs[pending.record["action"]]
                waited = format_duration(getattr(config, "approval_timeout", timedelta(0)))
                try:
                    await self._decide(
                        pending.record,
                        EXPIRED,
                        f"approval not given within {waited}",
                        "recovery.expired",
                        escalate=True,
                    )
                except Exception:
                    log.exception("expiring recovery run %s failed", run_id)
            self._pending_changed.clear()
            deadlines = [p.deadline for p in self.pending.values()]
            if not deadlines:
                # Idle, it waits for a request, not on the clock (tests count what waits there).
                await self._pending_changed.wait()
                continue
            wait = max(0.0, (min(deadlines) - self._clock.now()).total_seconds())
            await self._clock.wait(self._pending_changed, wait)

    def status(self) -> list[ActionStatus]:
        """Every action with its state; `process` ones with their program."""
        out = []
        for name, config in self.configs.items():
            target = self.guard.target(name, config)
            program = self.supervisor.programs.get(name)
            out.append(
                ActionStatus(
                    name=name,
                    type=config.type,
                    state=target.state,
                    attempts=target.attempts,
                    max_attempts=config.max_attempts,
                    cooldown_left=target.cooldown_left(),
                    program=program.status() if program is not None else None,
                )
            )
        return out

    # -- one run ------------------------------------------------------------------------------

    async def _attempt(
        self,
        name: str,
        check: str | None,
        trigger: str,
        actor: str | None,
        started: asyncio.Future[str] | None,
        approved: tuple[dict[str, Any], str] | None = None,
    ) -> None:
        config = self.configs[name]
        if approved is None and needs_approval(config):
            await self._request_approval(name, check, trigger, actor, started)
            return
        target = self.guard.target(name, config)
        was_exhausted = target.exhausted
        run_id = str(uuid.uuid4()) if approved is None else approved[0]["id"]
        record: dict[str, Any] | None = None
        try:
            async with self.guard.attempt(name, config) as attempt:
                if approved is None:
                    record = await self._begin(run_id, name, check, trigger, actor, attempt)
                else:
                    record = await self._begin_approved(approved[0], approved[1], attempt)
                if started is not None and not started.done():
                    started.set_result(run_id)
                outcome = await self._run_action(name, check, attempt, run_id)
                attempt.ok = outcome.ok
            exhausted = attempt.exhausted
        except Refused as refused:
            if approved is not None:
                # Approved, but the guard says no now (locked out meanwhile): it ends here.
                await self._decide(
                    approved[0],
                    "error",
                    f"{approved[1]}; {refused}",
                    "recovery.failed",
                    escalate=False,
                )
                if started is not None and not started.done():
                    started.set_result(run_id)
                return
            if started is not None and not started.done():
                started.set_exception(refused)
            if refused.state is GuardState.EXHAUSTED and not was_exhausted:
                await self._save_guard(name)
                await self._exhausted_without_run(name, check, target)
            return
        except asyncio.CancelledError:
            if started is not None and not started.done():
                started.cancel()
            raise
        except Exception as exc:  # the database failed: the run is not lost from the log
            log.exception("recovery action %s failed to run", name)
            if started is not None and not started.done():
                started.set_exception(exc)
            return
        await self._save_guard(name)
        if record is None:
            return
        self._engage(check, name)
        await self._finish(record, outcome, target if exhausted else None)

    def _context(self, name: str, check: str | None, attempt: int, run_id: str) -> ActionContext:
        lines = self.live.setdefault(run_id, [])
        return ActionContext(
            check=check,
            attempt=attempt,
            supervisor=self.supervisor,
            action=name,
            run_id=run_id,
            clock=self._clock,
            notifier=self.notifier,
            probe=self.probe,
            run_step=lambda step: self._run_step(step, check, attempt, run_id),
            on_output=lambda line: lines.append(self._redactor(line)),
        )

    async def _run_action(
        self, name: str, check: str | None, attempt: Attempt, run_id: str
    ) -> ActionOutcome:
        context = self._context(name, check, attempt.number, run_id)
        try:
            return await self.actions[name].run(context)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in an action: a failed run, not a crash
            log.exception("recovery action %s raised", name)
            return ActionOutcome(OutcomeStatus.ERROR, 0.0, reason=f"{type(exc).__name__}: {exc}")

    async def _run_step(
        self, name: str, check: str | None, attempt: int, run_id: str
    ) -> ActionOutcome:
        """A runbook's `action:` step: the named action, once (the runbook's guard counted
        the attempt)."""
        context = self._context(name, check, attempt, run_id)
        context.on_output = None
        try:
            return await self.actions[name].run(context)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("recovery action %s (a runbook step) raised", name)
            return ActionOutcome(OutcomeStatus.ERROR, 0.0, reason=f"{type(exc).__name__}: {exc}")

    async def _begin_approved(
        self, record: dict[str, Any], note: str, attempt: Attempt
    ) -> dict[str, Any]:
        """The approved run starts: pending -> running, `recovery.started` queued."""
        now = self._clock.now()
        note = self._redactor(note)
        record = {
            **record,
            "status": store.RUNNING,
            "attempt": attempt.number,
            "reason": note,
        }
        self.live.setdefault(record["id"], []).append(note)
        changed, _ = await store.decide_run(
            self._db,
            record["id"],
            {"status": store.RUNNING, "attempt": attempt.number, "reason": note},
            self._events(record, ["recovery.started"]),
            now,
        )
        if not changed:
            raise RuntimeError(f"recovery run {record['id']} was no longer pending")
        self._on_enqueued()
        log.info("recovery %s started (%s)", record["action"], note)
        return record

    async def _begin(
        self,
        run_id: str,
        name: str,
        check: str | None,
        trigger: str,
        actor: str | None,
        attempt: Attempt,
    ) -> dict[str, Any]:
        now = self._clock.now()
        record: dict[str, Any] = {
            "id": run_id,
            "action": name,
            "check": check,
            "trigger": trigger,
            "actor": actor,
            "attempt": attempt.number,
            "status": store.RUNNING,
            "started_at": now,
            "finished_at": None,
            "output": "",
            "exit_code": None,
            "http_status": None,
            "reason": "",
        }
        await store.insert_run(
            self._db, _row(record), self._events(record, ["recovery.started"]), now
        )
        self._on_enqueued()
        log.info("recovery %s started (%s, attempt %d)", name, trigger, attempt.number)
        return record

    async def _finish(
        self, record: dict[str, Any], outcome: ActionOutcome, exhausted: TargetGuard | None
    ) -> dict[str, Any]:
        """Record how the run went and tell the channels; `exhausted`: it was the last
        attempt the guard allowed, so the alert escalates (in the same transaction)."""
        now = self._clock.now()
        output = self._redactor(outcome.output)[:MAX_STORED_OUTPUT]
        if record["trigger"] != Trigger.RESOLVED and record["reason"].startswith("approved by"):
            output = (self._redactor(record["reason"]) + "\n" + output).strip()
        self.live.pop(record["id"], None)
        record = {
            **record,
            "status": outcome.status.value,
            "finished_at": now,
            "output": output,
            "exit_code": outcome.exit_code,
            "http_status": outcome.http_status,
            "reason": self._redactor(outcome.reason),
        }
        events = ["recovery.succeeded" if outcome.ok else "recovery.failed"]
        escalation = None
        if exhausted is not None:
            events.append("recovery.exhausted")
            escalation = self._escalation(record, exhausted)
        elif outcome.escalate and record["check"] is not None:
            message = f"recovery {record['action']} failed: {record['reason']}"
            escalation = store.Escalation(record["check"], "recovery_escalated", message)
        values = {k: v for k, v in _row(record).items() if k not in ("id", "action")}
        alert = await store.finish_run(
            self._db, record["id"], values, self._events(record, events), now, escalation
        )
        self._told(alert)
        self._on_run_ended(record["action"], record["status"])
        if exhausted is not None:
            self._on_run_ended(record["action"], GuardState.EXHAUSTED.value)
        log.info("recovery %s %s: %s", record["action"], record["status"], record["reason"])
        return record

    async def _exhausted_without_run(
        self, name: str, check: str | None, target: TargetGuard
    ) -> None:
        """The budget ran out on attempts that each looked successful (the check stayed
        DOWN): locked out now, said once with a record of its own."""
        now = self._clock.now()
        record = {
            "id": str(uuid.uuid4()),
            "action": name,
            "check": check,
            "trigger": Trigger.CHECK,
            "actor": None,
            "attempt": target.attempts,
            "status": GuardState.EXHAUSTED.value,
            "started_at": now,
            "finished_at": now,
            "output": "",
            "exit_code": None,
            "http_status": None,
            "reason": target.exhausted_message(),
        }
        alert = await store.insert_run(
            self._db,
            _row(record),
            self._events(record, ["recovery.exhausted"]),
            now,
            self._escalation(record, target),
        )
        self._told(alert)
        self._on_run_ended(name, GuardState.EXHAUSTED.value)

    def _escalation(self, record: dict[str, Any], target: TargetGuard) -> store.Escalation | None:
        message = target.exhausted_message()
        log.warning("recovery %s: %s", record["action"], message)
        check = record["check"]
        return None if check is None else store.Escalation(check, "recovery_exhausted", message)

    def _told(self, escalated_alert: str | None) -> None:
        self._on_enqueued()
        if escalated_alert is not None:
            self._on_escalated()

    async def _resolved(self, check: str, name: str) -> None:
        """The check is UP again: lift the lock-out; a request for approval made for its
        DOWN is not needed any more (cancelled); undo a fallback that ran for it."""
        self.guard.reset(name)
        await self._save_guard(name)
        for run_id, pending in list(self.pending.items()):
            record = pending.record
            if record["check"] == check and record["trigger"] in (Trigger.CHECK, Trigger.RULE):
                self._take_pending(run_id)
                await self._decide(
                    record,
                    CANCELLED,
                    f"not needed: {check} is UP again",
                    "recovery.cancelled",
                    escalate=False,
                )
        if name not in self._engaged.pop(check, set()):
            return
        spec = getattr(self.configs[name], "on_resolved", None)
        if spec is None:
            return
        run_id = str(uuid.uuid4())
        attempt = Attempt(name, 1, self._clock.monotonic())
        record = await self._begin(run_id, name, check, Trigger.RESOLVED, None, attempt)
        action = build_action(spec)
        try:
            outcome = await action.run(ActionContext(check=check, supervisor=self.supervisor))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("on_resolved of %s raised", name)
            outcome = ActionOutcome(OutcomeStatus.ERROR, 0.0, reason=f"{type(exc).__name__}")
        await self._finish(record, outcome, None)

    async def _watch(self, program: Program) -> None:
        """Record each restart the supervisor makes on its own (the program exited) as a
        run: it succeeded once the new instance runs past `startsecs`, failed if it exited
        sooner. When the supervisor gives up, that is said once (until it runs again)."""
        seen = program.restarts
        gave_up = program.state is ProgramState.EXHAUSTED
        while True:
            await program.wait_for(_changed_since(seen, gave_up))
            try:
                if program.restarts > seen:
                    seen = program.restarts
                    await self._exit_run(program, seen)
                exhausted = program.state is ProgramState.EXHAUSTED
                if exhausted and not gave_up:
                    await self._program_gave_up(program)
            except Exception:  # the database failed: the next restart is recorded again
                log.exception("recording a restart of %s failed", program.name)
                exhausted = program.state is ProgramState.EXHAUSTED
            gave_up = exhausted

    async def _exit_run(self, program: Program, restart: int) -> None:
        name = program.name
        attempt = Attempt(name, restart, self._clock.monotonic())
        record = await self._begin(str(uuid.uuid4()), name, None, Trigger.EXIT, None, attempt)
        record["reason"] = f"exited (code {program.last_exit})"
        await program.wait_for(
            lambda p: (
                p.state in (ProgramState.RUNNING, ProgramState.STOPPED)
                or p.restarts != restart
                or p.state is ProgramState.EXHAUSTED
            )
        )
        if program.state is ProgramState.RUNNING and program.restarts == restart:
            outcome = ActionOutcome(
                OutcomeStatus.SUCCEEDED,
                0.0,
                exit_code=program.last_exit,
                reason=f"exited (code {program.last_exit}); running again as pid {program.pid}",
            )
        else:
            reason = program.last_error or f"exited again at start (code {program.last_exit})"
            outcome = ActionOutcome(
                OutcomeStatus.FAILED, 0.0, exit_code=program.last_exit, reason=reason
            )
        await self._finish(record, outcome, None)

    async def _program_gave_up(self, program: Program) -> None:
        cfg = program.config
        now = self._clock.now()
        record = {
            "id": str(uuid.uuid4()),
            "action": program.name,
            "check": None,
            "trigger": Trigger.EXIT,
            "actor": None,
            "attempt": program.restarts,
            "status": GuardState.EXHAUSTED.value,
            "started_at": now,
            "finished_at": now,
            "output": "",
            "exit_code": program.last_exit,
            "http_status": None,
            "reason": f"the supervisor gave up after {cfg.max_attempts} restarts",
        }
        alert = await store.insert_run(
            self._db, _row(record), self._events(record, ["recovery.exhausted"]), now
        )
        self._told(alert)
        self._on_run_ended(program.name, GuardState.EXHAUSTED.value)

    def _record_program(self, program: Program) -> None:
        """A supervised instance started or ended: record it, to adopt it after a restart."""
        if not self._started:
            return
        task = asyncio.create_task(self._save_program(program))
        self._program_saves.add(task)
        task.add_done_callback(self._program_saves.discard)

    async def _save_program(self, program: Program) -> None:
        async with self._program_lock:  # each write stores the state as it is by then
            try:
                await store.save_program(
                    self._db, program.name, program.pid, program.identity, self._clock.now()
                )
            except Exception:
                log.exception("recording the program of %s failed", program.name)

    def _engage(self, check: str | None, name: str) -> None:
        if check is not None:
            self._engaged.setdefault(check, set()).add(name)

    async def _save_guard(self, name: str) -> None:
        target = self.guard.get(name)
        if target is None:
            return
        now, mono = self._clock.now(), self._clock.monotonic()
        times = [now - timedelta(seconds=mono - t) for t in target.attempt_times()]
        try:
            await store.save_guard(self._db, name, times, target.exhausted, now)
        except Exception:
            log.exception("storing the guard of recovery action %s failed", name)

    def _events(self, record: dict[str, Any], events: list[str]) -> list[OutboxEntry]:
        channels = self._channels_for(record["check"])
        return [
            OutboxEntry(
                channel=channel,
                idempotency_key=f"{record['id']}:{event}",
                event=event,
                payload=self._body(record, event),
            )
            for event in events
            for channel in channels
        ]

    def _body(self, record: dict[str, Any], event: str) -> dict[str, Any]:
        body = self._payload(record, event)
        if event == APPROVAL_REQUESTED and self._dashboard_url is not None:
            body["links"] = {"approval": self.approval_url(record["id"])}
        return body

    def approval_url(self, run_id: str) -> str:
        """Where a person approves or rejects the run (the dashboard's Recovery page)."""
        return f"{self._dashboard_url or ''}/dashboard/recovery#run-{run_id}"


def action_secrets(spec: Any) -> list[str]:
    """The secret values an action's config carries: an HTTP action's URL password and
    secret-named query parameters, headers and body fields; secret-named environment
    variables and keyword arguments."""
    found: list[str] = []
    if (url := getattr(spec, "url", None)) is not None:
        found += url_secrets(url)
    found += header_secrets(getattr(spec, "headers", None) or {})
    found += body_secrets(getattr(spec, "body", None))
    found += data_secrets(getattr(spec, "env", None) or {})
    found += data_secrets(getattr(spec, "kwargs", None) or {})
    return found


def _changed_since(restarts: int, gave_up: bool) -> Callable[[Program], bool]:
    """Whether a program restarted on its own, or gave up or ran again, since then."""
    return lambda p: p.restarts != restarts or (p.state is ProgramState.EXHAUSTED) != gave_up


def _row(record: dict[str, Any]) -> dict[str, Any]:
    row = dict(record)
    row["check_name"] = row.pop("check")
    return row


__all__ = [
    "EVENTS",
    "ActionStatus",
    "NotPending",
    "Pending",
    "Recovery",
    "Trigger",
    "action_secrets",
    "needs_approval",
    "run_record",
]
