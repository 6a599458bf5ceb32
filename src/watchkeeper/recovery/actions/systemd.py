"""`systemd`: `systemctl VERB UNIT` (restart by default)."""

from __future__ import annotations

from watchkeeper.recovery.actions._program import run_program
from watchkeeper.recovery.actions.base import ACTIONS, Action, ActionContext, ActionOutcome
from watchkeeper.recovery.config import SystemdSpec

_OUTPUT_LIMIT = 16 * 1024


@ACTIONS.register
class SystemdRecovery(Action[SystemdSpec]):
    """Asks systemd to restart (start, stop, reload) a unit and waits for its answer."""

    type = "systemd"
    config_model = SystemdSpec

    async def run(self, context: ActionContext) -> ActionOutcome:
        cfg = self.config
        # `--` so that no unit name is read as an option (the config refuses those anyway).
        return await run_program(
            ["systemctl", cfg.verb, "--", cfg.unit],
            timeout=cfg.timeout.total_seconds(),
            limit=_OUTPUT_LIMIT,
        )
