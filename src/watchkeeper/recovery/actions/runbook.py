"""`runbook`: steps in order. Approval (`approval: required`) is the coordinator's business:
by the time `run` is called a person has approved (see recovery/coordinator.py).

Steps:
- `{action: NAME}` runs another action of the section once (not under its own guard: the
  runbook's guard counts the attempt);
- `{action: notify, message: ...}` tells people through the notifier;
- `{wait: 10s}` pauses (on the injected clock);
- `{verify: CHECK, timeout: 2m}` runs that check now, then every `VERIFY_EVERY` seconds,
  until it is UP; not UP within `timeout` fails the step;
- `{if_failed: escalate|abort|continue}` applies when a step before it failed: the steps
  between the failure and it are skipped; `escalate` ends the run failed and escalates the
  check's alert, `abort` ends it failed, `continue` goes on with the steps after it. A
  failure with no `if_failed:` after it ends the run failed (abort).

Each step adds one line to the output (`3. verify database: UP after 2 tries`), given to
`context.on_output` as it happens, so a running runbook's progress can be shown live.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from time import perf_counter

from watchkeeper.core.durations import format_duration
from watchkeeper.recovery.actions.base import (
    ACTIONS,
    Action,
    ActionContext,
    ActionOutcome,
    OutcomeStatus,
)
from watchkeeper.recovery.actions.notify import send
from watchkeeper.recovery.config import (
    IfFailedStep,
    NotifyStep,
    RunbookSpec,
    RunStep,
    Step,
    VerifyStep,
    WaitStep,
)

VERIFY_EVERY = 5.0
"""Seconds between two runs of a `verify:` step's check."""

STEP_OUTPUT = 2000
"""Characters of a step's own output kept in the runbook's output."""


def describe(step: Step) -> str:
    """A step in a few words, as its output line starts."""
    if isinstance(step, NotifyStep):
        return "notify"
    if isinstance(step, RunStep):
        return f"action {step.action}"
    if isinstance(step, WaitStep):
        return f"wait {format_duration(step.wait)}"
    if isinstance(step, VerifyStep):
        return f"verify {step.verify}"
    return f"if_failed: {step.if_failed}"


async def _sleep(context: ActionContext, seconds: float) -> None:
    if context.clock is not None:
        await context.clock.sleep(seconds)
    else:
        await asyncio.sleep(seconds)


def _monotonic(context: ActionContext) -> Callable[[], float]:
    return context.clock.monotonic if context.clock is not None else perf_counter


async def verify(context: ActionContext, check: str, timeout: timedelta) -> ActionOutcome:
    """Run `check` until it is UP, for at most `timeout` (on the context's clock)."""
    started = perf_counter()
    if context.probe is None:
        return ActionOutcome(OutcomeStatus.ERROR, 0.0, reason="checks cannot be run here")
    now = _monotonic(context)
    deadline = now() + timeout.total_seconds()
    tries = 0
    while True:
        tries += 1
        up = await context.probe(check)
        if up is None:
            return ActionOutcome(
                OutcomeStatus.ERROR, perf_counter() - started, reason=f"no check named {check!r}"
            )
        if up:
            plural = "try" if tries == 1 else "tries"
            return ActionOutcome(
                OutcomeStatus.SUCCEEDED,
                perf_counter() - started,
                reason=f"UP after {tries} {plural}",
            )
        left = deadline - now()
        if left <= 0:
            return ActionOutcome(
                OutcomeStatus.FAILED,
                perf_counter() - started,
                reason=f"not UP within {format_duration(timeout)} ({tries} tries)",
            )
        await _sleep(context, min(VERIFY_EVERY, left))


@ACTIONS.register
class RunbookRecovery(Action[RunbookSpec]):
    """Runs the steps in order (see the module docstring)."""

    type = "runbook"
    config_model = RunbookSpec

    async def run(self, context: ActionContext) -> ActionOutcome:
        started = perf_counter()
        lines: list[str] = []

        def note(line: str) -> None:
            lines.append(line)
            if context.on_output is not None:
                context.on_output(line)

        failure: str | None = None
        escalate = False
        done = 0
        steps = self.config.steps
        for number, step in enumerate(steps, 1):
            what = describe(step)
            if isinstance(step, IfFailedStep):
                if failure is None:
                    continue
                note(f"{number}. {what}")
                if step.if_failed == "continue":
                    failure = None
                    continue
                escalate = step.if_failed == "escalate"
                break
            if failure is not None:
                note(f"{number}. {what}: skipped")
                continue
            outcome = await self._step(step, context)
            line = f"{number}. {what}: {outcome.status.value}"
            if outcome.reason:
                line += f" ({outcome.reason})"
            note(line)
            if isinstance(step, RunStep) and outcome.output.strip():
                text = outcome.output.strip()[:STEP_OUTPUT]
                note("\n".join("   " + part for part in text.splitlines()))
            if outcome.ok:
                done += 1
            else:
                failure = f"step {number} ({what}) {outcome.status.value}" + (
                    f": {outcome.reason}" if outcome.reason else ""
                )
        output = "\n".join(lines)
        if failure is not None:
            return ActionOutcome(
                OutcomeStatus.FAILED,
                perf_counter() - started,
                output,
                reason=failure + ("; escalated" if escalate else ""),
                escalate=escalate,
            )
        return ActionOutcome(
            OutcomeStatus.SUCCEEDED,
            perf_counter() - started,
            output,
            reason=f"{done} step{'s' if done != 1 else ''} done",
        )

    async def _step(self, step: Step, context: ActionContext) -> ActionOutcome:
        if isinstance(step, NotifyStep):
            return await send(context, step.message, step.channels)
        if isinstance(step, WaitStep):
            began = perf_counter()
            await _sleep(context, step.wait.total_seconds())
            return ActionOutcome(OutcomeStatus.SUCCEEDED, perf_counter() - began)
        if isinstance(step, VerifyStep):
            return await verify(context, step.verify, step.timeout)
        assert isinstance(step, RunStep)
        if context.run_step is None:
            return ActionOutcome(OutcomeStatus.ERROR, 0.0, reason="actions cannot be run here")
        return await context.run_step(step.action)
