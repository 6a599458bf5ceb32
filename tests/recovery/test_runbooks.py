"""Runbooks and the `notify` action: steps in order on an injected clock, what a failed step
leads to, and approvals (approve runs it, reject ends it with the reason, expiry escalates,
a pending run survives a restart) driven through the real coordinator and database."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

import pytest

from tests.support.clock import FakeClock, until_parked
from tests.support.servers import wait_until
from watchkeeper.alerting import lifecycle
from watchkeeper.config.model import Config
from watchkeeper.core.checkstate import Transition
from watchkeeper.core.domain import CheckResult, Severity, Status
from watchkeeper.core.redact import Redactor
from watchkeeper.notify.payload import recovery_payload
from watchkeeper.recovery.actions import ActionContext, ActionOutcome, OutcomeStatus, build_action
from watchkeeper.recovery.config import RecoveryConfig
from watchkeeper.recovery.coordinator import NotPending, Recovery
from watchkeeper.recovery.guard import GuardState
from watchkeeper.services.recovery import RecoveryService
from watchkeeper.store import alerts as alert_store
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store import recovery as run_store
from watchkeeper.store.database import Database

PY = sys.executable


class Told:
    """A `Notifier` that keeps what it was given."""

    def __init__(self, known: Sequence[str] = ("hook", "ops")) -> None:
        self.known = known
        self.messages: list[tuple[str, list[str] | None, str | None]] = []

    async def send(
        self,
        message: str,
        channels: Sequence[str] | None,
        *,
        action: str,
        check: str | None,
        run_id: str | None,
    ) -> list[str]:
        names = list(channels) if channels is not None else ["hook"]
        if unknown := [c for c in names if c not in self.known]:
            raise ValueError(f"no notification channel named {unknown[0]!r}")
        self.messages.append((message, None if channels is None else list(channels), check))
        return names


def runbook(steps: list[dict[str, Any]], **extra: Any) -> Any:
    section = RecoveryConfig.model_validate(
        [
            {"name": "ok", "type": "command", "command": ["true"]},
            {"name": "rb", "type": "runbook", "steps": steps, **extra},
        ]
    )
    return build_action(section.actions[1])


class Steps:
    """Runs a runbook on a FakeClock, with a probe and step results the test sets."""

    def __init__(self, up_after: int = 1, step_ok: bool = True) -> None:
        self.clock = FakeClock()
        self.told = Told()
        self.probes: list[float] = []
        self.up_after = up_after
        self.step_ok = step_ok
        self.ran: list[str] = []
        self.lines: list[str] = []

    async def probe(self, check: str) -> bool | None:
        if check != "database":
            return None
        self.probes.append(self.clock.monotonic())
        return len(self.probes) >= self.up_after

    async def run_step(self, name: str) -> ActionOutcome:
        self.ran.append(name)
        status = OutcomeStatus.SUCCEEDED if self.step_ok else OutcomeStatus.FAILED
        return ActionOutcome(
            status, 0.0, "restarted\n", reason="exit 0" if self.step_ok else "exit 1"
        )

    async def run(self, action: Any) -> ActionOutcome:
        context = ActionContext(
            check="web",
            action="rb",
            run_id="r1",
            clock=self.clock,
            notifier=self.told,
            probe=self.probe,
            run_step=self.run_step,
            on_output=self.lines.append,
        )
        result: ActionOutcome = await action.run(context)
        return result


# -- steps ---------------------------------------------------------------------------------


async def test_the_steps_run_in_order_on_the_clock_and_each_says_how_it_went() -> None:
    steps = Steps(up_after=3)
    start = steps.clock.monotonic()
    outcome = await steps.run(
        runbook(
            [
                {"action": "notify", "message": "restarting the database"},
                {"action": "ok"},
                {"wait": "10s"},
                {"verify": "database", "timeout": "2m"},
                {"if_failed": "escalate"},
            ]
        )
    )
    assert outcome.ok and not outcome.escalate, outcome
    assert outcome.reason == "4 steps done"
    assert steps.told.messages == [("restarting the database", None, "web")]
    assert steps.ran == ["ok"]
    # The wait, then the check run at once and every 5 s until UP (the third run).
    assert [t - start for t in steps.probes] == [10.0, 15.0, 20.0]
    assert outcome.output.splitlines() == [
        "1. notify: succeeded (notified hook)",
        "2. action ok: succeeded (exit 0)",
        "   restarted",
        "3. wait 10s: succeeded",
        "4. verify database: succeeded (UP after 3 tries)",
    ]
    assert steps.lines == outcome.output.splitlines()  # said as they happened


async def test_a_failed_step_skips_to_if_failed_escalate() -> None:
    steps = Steps(step_ok=False)
    outcome = await steps.run(
        runbook(
            [
                {"action": "ok"},
                {"action": "notify", "message": "never said"},
                {"if_failed": "escalate"},
                {"action": "notify", "message": "nor this"},
            ]
        )
    )
    assert outcome.status is OutcomeStatus.FAILED and outcome.escalate
    assert outcome.reason == "step 1 (action ok) failed: exit 1; escalated"
    assert steps.told.messages == []
    assert "2. notify: skipped" in outcome.output.splitlines()


async def test_verify_gives_up_after_its_timeout_and_continue_goes_on() -> None:
    steps = Steps(up_after=1000)
    start = steps.clock.monotonic()
    outcome = await steps.run(
        runbook(
            [
                {"verify": "database", "timeout": "12s"},
                {"if_failed": "continue"},
                {"action": "notify", "message": "carried on"},
            ]
        )
    )
    assert outcome.ok, outcome
    assert [t - start for t in steps.probes] == [0.0, 5.0, 10.0, 12.0]
    assert outcome.output.splitlines()[0] == (
        "1. verify database: failed (not UP within 12s (4 tries))"
    )
    assert steps.told.messages == [("carried on", None, "web")]


async def test_a_failure_without_if_failed_aborts_and_does_not_escalate() -> None:
    steps = Steps()
    outcome = await steps.run(runbook([{"verify": "nope"}, {"action": "ok"}]))
    assert outcome.status is OutcomeStatus.FAILED and not outcome.escalate
    assert outcome.reason == "step 1 (verify nope) error: no check named 'nope'"
    assert steps.ran == []


async def test_the_notify_action_hands_its_message_to_the_notifier() -> None:
    section = RecoveryConfig.model_validate(
        [
            {"name": "tell", "type": "notify", "message": "web restarts", "channels": ["ops"]},
            {"name": "lost", "type": "notify", "message": "x", "channels": ["gone"]},
        ]
    )
    told = Told()
    tell, lost = (build_action(a) for a in section.actions)
    outcome = await tell.run(ActionContext(check="web", notifier=told))
    assert outcome.ok and outcome.reason == "notified ops" and outcome.output == "web restarts"
    assert told.messages == [("web restarts", ["ops"], "web")]
    failed = await lost.run(ActionContext(check="web", notifier=told))
    assert failed.status is OutcomeStatus.ERROR
    assert failed.reason == "no notification channel named 'gone'"
    alone = await tell.run(ActionContext(check="web"))
    assert alone.status is OutcomeStatus.ERROR and alone.reason == "no notifier available"


def test_the_config_refuses_a_notify_channel_that_does_not_exist() -> None:
    body: dict[str, Any] = {
        "notifications": [{"name": "hook", "type": "webhook", "url": "http://127.0.0.1:9/"}],
        "recovery": [
            {
                "name": "rb",
                "type": "runbook",
                "steps": [{"action": "notify", "message": "m", "channels": ["hook", "pager"]}],
            }
        ],
    }
    with pytest.raises(
        ValueError, match=r"runbook 'rb' step 1: no notification channel named 'pager'"
    ):
        Config.model_validate(body)


# -- approvals, through the coordinator and the database ---------------------------------------

APPROVAL = [
    {"name": "fix", "type": "command", "command": [PY, "-c", "print('fixed')"]},
    {
        "name": "db-runbook",
        "type": "runbook",
        "approval": "required",
        "approval_timeout": "1h",
        "cooldown": "0s",
        "steps": [{"action": "notify", "message": "restarting"}, {"action": "fix"}],
    },
]


def build(db: Database, clock: FakeClock, told: Told | None = None) -> Recovery:
    redactor = Redactor()
    redactor.add(["s3cret-t0ken"])
    return Recovery(
        RecoveryConfig.model_validate(APPROVAL),
        db=db,
        clock=clock,
        redactor=redactor,
        payload=recovery_payload,
        channels_for=lambda _check: ["hook"],
        notifier=told or Told(),
        dashboard_url="https://wk.example/",
    )


@pytest.fixture
async def started(sqlite_db: Database) -> AsyncIterator[tuple[Recovery, FakeClock, Told]]:
    clock, told = FakeClock(), Told()
    recovery = build(sqlite_db, clock, told)
    await recovery.start()
    try:
        yield recovery, clock, told
    finally:
        await recovery.stop()


async def queued(db: Database, event: str) -> list[Any]:
    return [e for e in await outbox_store.list_entries(db, limit=1000) if e.event == event]


async def open_alert(db: Database, clock: FakeClock) -> str:
    spec = lifecycle.AlertSpec(
        fingerprint="check:web", name="web", severity=Severity.CRITICAL, summary="down", check="web"
    )
    async with db.begin() as conn:
        alert, _ = await lifecycle.fire(conn, spec, clock.now())
    return alert.id


async def test_approved_runs_and_says_who_approved(
    sqlite_db: Database, started: tuple[Recovery, FakeClock, Told]
) -> None:
    recovery, _clock, told = started
    recovery.observe("web", "db-runbook", Status.DOWN, None)
    await recovery.settled()
    (pending,) = await run_store.pending_runs(sqlite_db)
    assert pending.check_name == "web" and pending.trigger == "check"
    assert told.messages == [], "nothing runs before approval"
    target = recovery.guard.get("db-runbook")
    assert target is not None and target.state is GuardState.PENDING_APPROVAL
    (asked,) = await queued(sqlite_db, "recovery.approval_requested")
    assert asked.payload["recovery"]["id"] == pending.id
    assert asked.payload["links"] == {
        "approval": f"https://wk.example/dashboard/recovery#run-{pending.id}"
    }
    # Waiting: another DOWN starts nothing more.
    recovery.observe("web", "db-runbook", Status.DOWN, None)
    await recovery.settled()
    assert len(await run_store.pending_runs(sqlite_db)) == 1

    assert await recovery.approve(pending.id, actor="alice", comment="go ahead") == pending.id
    await recovery.settled()
    row = await run_store.get_run(sqlite_db, pending.id)
    assert row is not None and row.status == "succeeded", row
    assert row.output.splitlines()[0] == "approved by alice: go ahead"
    assert "2. action fix: succeeded (exit 0)" in row.output and "fixed" in row.output
    assert told.messages == [("restarting", None, "web")]
    assert len(await queued(sqlite_db, "recovery.succeeded")) == 1
    assert target.state is GuardState.READY
    with pytest.raises(NotPending):
        await recovery.approve(pending.id, actor="bob")


async def test_rejected_ends_with_the_reason_and_nothing_runs(
    sqlite_db: Database, started: tuple[Recovery, FakeClock, Told]
) -> None:
    recovery, _clock, told = started
    run_id = await recovery.run("db-runbook", actor="carol")
    row = await run_store.get_run(sqlite_db, run_id)
    assert row is not None and row.status == "pending_approval" and row.actor == "carol"

    await recovery.reject(run_id, actor="dave", comment="not during the backup s3cret-t0ken")
    row = await run_store.get_run(sqlite_db, run_id)
    assert row is not None and row.status == "rejected"
    assert row.reason.startswith("rejected by dave: not during the backup ")
    assert "s3cret-t0ken" not in row.reason, "a comment passes the redactor"
    assert row.finished_at is not None
    (rejected,) = await queued(sqlite_db, "recovery.rejected")
    assert rejected.payload["recovery"]["status"] == "rejected"
    assert told.messages == [] and not await queued(sqlite_db, "recovery.started")
    assert recovery.guard.get("db-runbook").state is GuardState.READY  # type: ignore[union-attr]
    with pytest.raises(NotPending):
        await recovery.reject(run_id, actor="dave")


async def test_expiry_escalates_the_checks_alert(
    sqlite_db: Database, started: tuple[Recovery, FakeClock, Told]
) -> None:
    recovery, clock, told = started
    alert_id = await open_alert(sqlite_db, clock)
    parks = clock.parks  # nothing pending yet: the expiry loop waits for a request
    recovery.observe("web", "db-runbook", Status.DOWN, None)
    await recovery.settled()
    (pending,) = await run_store.pending_runs(sqlite_db)
    await until_parked(clock, after=parks)  # it waits again, for this run's deadline
    assert clock.next_deadline == pytest.approx(3600)

    clock.advance(timedelta(minutes=59))  # before the deadline: the loop sleeps on
    row = await run_store.get_run(sqlite_db, pending.id)
    assert row is not None and row.status == "pending_approval"

    clock.advance(timedelta(minutes=1))

    async def expired() -> bool:  # the run ended, its alert escalated, the notice queued
        found = await run_store.get_run(sqlite_db, pending.id)
        escalated = await alert_store.get_alert(sqlite_db, alert_id)
        return (
            found is not None
            and found.status == "expired"
            and escalated is not None
            and any(e.kind == "recovery_approval_expired" for e in escalated[1])
            and bool(await queued(sqlite_db, "recovery.expired"))
        )

    await wait_until(expired, 5, "the run expired and escalated")
    row = await run_store.get_run(sqlite_db, pending.id)
    assert row is not None and row.status == "expired"
    assert row.reason == "approval not given within 1h"
    found = await alert_store.get_alert(sqlite_db, alert_id)
    assert found is not None
    notes = [(e.kind, e.comment) for e in found[1] if e.kind.startswith("recovery")]
    assert notes == [("recovery_approval_expired", "approval not given within 1h")]
    assert len(await queued(sqlite_db, "recovery.expired")) == 1
    assert told.messages == []
    with pytest.raises(NotPending):
        await recovery.approve(pending.id, actor="late")


async def test_a_request_for_a_down_check_is_cancelled_when_it_is_up_again(
    sqlite_db: Database, started: tuple[Recovery, FakeClock, Told]
) -> None:
    recovery, clock, _told = started
    recovery.observe("web", "db-runbook", Status.DOWN, None)
    await recovery.settled()
    by_hand = await recovery.run("fix", actor="carol")  # not a runbook: no approval
    (pending,) = await run_store.pending_runs(sqlite_db)
    up = Transition("web", Status.DOWN, Status.UP, clock.now(), CheckResult.up())
    recovery.observe("web", "db-runbook", Status.UP, up)
    await recovery.settled()
    row = await run_store.get_run(sqlite_db, pending.id)
    assert row is not None and row.status == "cancelled"
    assert row.reason == "not needed: web is UP again"
    assert len(await queued(sqlite_db, "recovery.cancelled")) == 1
    assert not recovery.pending
    assert (await run_store.get_run(sqlite_db, by_hand)).status == "succeeded"  # type: ignore[union-attr]


async def test_a_pending_run_survives_a_restart_with_its_deadline(sqlite_db: Database) -> None:
    clock = FakeClock()
    first = build(sqlite_db, clock)
    await first.start()
    run_id = await first.run("db-runbook", actor="carol")
    deadline = first.pending[run_id].deadline
    await first.stop()

    clock.advance(timedelta(minutes=10))
    again = build(sqlite_db, clock)
    await again.start()
    try:
        assert again.pending[run_id].deadline == deadline
        target = again.guard.get("db-runbook")
        assert target is not None and target.state is GuardState.PENDING_APPROVAL
        await until_parked(clock)
        assert clock.next_deadline == pytest.approx(50 * 60)
        await again.approve(run_id, actor="alice")
        await again.settled()
        row = await run_store.get_run(sqlite_db, run_id)
        assert row is not None and row.status == "succeeded"
    finally:
        await again.stop()


async def test_a_second_run_while_one_waits_for_approval_is_refused(
    started: tuple[Recovery, FakeClock, Told],
) -> None:
    recovery, _clock, _told = started
    await recovery.run("db-runbook", actor="carol")
    with pytest.raises(Exception, match="waiting for approval"):
        await recovery.run("db-runbook", actor="carol")


async def test_a_running_runbook_shows_its_steps_so_far(sqlite_db: Database) -> None:
    section = RecoveryConfig.model_validate(
        [
            {
                "name": "rb",
                "type": "runbook",
                "steps": [{"action": "notify", "message": "going"}, {"verify": "web"}],
            }
        ]
    )
    asked, release = asyncio.Event(), asyncio.Event()

    async def probe(_check: str) -> bool:
        asked.set()
        await release.wait()  # the verify step is in progress until the test says
        return True

    recovery = Recovery(
        section,
        db=sqlite_db,
        clock=FakeClock(),
        redactor=Redactor(),
        payload=recovery_payload,
        channels_for=lambda _check: [],
        notifier=Told(),
        probe=probe,
    )
    service = RecoveryService(recovery=recovery, db=sqlite_db)
    await recovery.start()
    try:
        run_id = await recovery.run("rb", actor="carol")
        async with asyncio.timeout(5):
            await asked.wait()
        during = await service.run(run_id)
        assert during["status"] == "running"
        assert during["output"] == "1. notify: succeeded (notified hook)"
        release.set()
        await recovery.settled()
        after = await service.run(run_id)
        assert after["status"] == "succeeded" and after["output"].splitlines()[-1] == (
            "2. verify web: succeeded (UP after 1 try)"
        )
        assert run_id not in recovery.live
    finally:
        release.set()
        await recovery.stop()
