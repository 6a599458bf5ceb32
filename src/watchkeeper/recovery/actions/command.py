"""`command`: run a program once (argv, no shell); exit code 0 is success."""

from __future__ import annotations

from watchkeeper.recovery.actions._program import run_program
from watchkeeper.recovery.actions.base import ACTIONS, Action, ActionContext, ActionOutcome
from watchkeeper.recovery.config import CommandSpec


@ACTIONS.register
class CommandRecovery(Action[CommandSpec]):
    """Runs `command` with `env` and `cwd`, killing its process group after `timeout`."""

    type = "command"
    config_model = CommandSpec

    async def run(self, context: ActionContext) -> ActionOutcome:
        cfg = self.config
        return await run_program(
            cfg.command,
            timeout=cfg.timeout.total_seconds(),
            limit=cfg.output_limit,
            env=cfg.env,
            cwd=cfg.cwd,
        )
