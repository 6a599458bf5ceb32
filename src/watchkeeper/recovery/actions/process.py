"""`process`: restart a program Watchkeeper supervises (see recovery/supervisor.py).

The supervisor restarts a program that exits on its own; this action is for a program that
runs but is unhealthy (its linked check is DOWN): stop it, start it again, succeed once it
has run for `startsecs`.
"""

from __future__ import annotations

import asyncio
from time import perf_counter

from watchkeeper.recovery.actions.base import (
    ACTIONS,
    Action,
    ActionContext,
    ActionOutcome,
    OutcomeStatus,
)
from watchkeeper.recovery.config import ProcessAction
from watchkeeper.recovery.supervisor import Program, ProgramState

_SETTLED = (ProgramState.RUNNING, ProgramState.BACKOFF, ProgramState.EXHAUSTED)


@ACTIONS.register
class ProcessRecovery(Action[ProcessAction]):
    """Restarts the supervised program of the same name."""

    type = "process"
    config_model = ProcessAction

    async def run(self, context: ActionContext) -> ActionOutcome:
        started = perf_counter()
        if context.supervisor is None or self.config.name not in context.supervisor.programs:
            reason = f"{self.config.name} is not supervised"
            return ActionOutcome(OutcomeStatus.ERROR, perf_counter() - started, reason=reason)
        program = context.supervisor.get(self.config.name)
        cfg = self.config
        # Stopping may take stop_timeout (then SIGKILL), starting startsecs; 5s for the rest.
        limit = cfg.stop_timeout.total_seconds() + cfg.startsecs.total_seconds() + 5
        try:
            async with asyncio.timeout(limit):
                await program.restart()
                await program.wait_for(lambda p: p.state in _SETTLED)
        except TimeoutError:
            return ActionOutcome(
                OutcomeStatus.TIMED_OUT, perf_counter() - started, reason="restart did not settle"
            )
        return _outcome(program, perf_counter() - started)


def _outcome(program: Program, duration: float) -> ActionOutcome:
    if program.state is ProgramState.RUNNING:
        return ActionOutcome(
            OutcomeStatus.SUCCEEDED, duration, reason=f"running as pid {program.pid}"
        )
    reason = program.last_error or f"exited at start (code {program.last_exit})"
    return ActionOutcome(OutcomeStatus.FAILED, duration, exit_code=program.last_exit, reason=reason)
