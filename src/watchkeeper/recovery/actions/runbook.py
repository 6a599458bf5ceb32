"""`runbook`: steps in order, optionally after approval (to be built)."""

from __future__ import annotations

from watchkeeper.recovery.actions.base import ACTIONS, NotYetImplemented
from watchkeeper.recovery.config import RunbookSpec


@ACTIONS.register
class RunbookRecovery(NotYetImplemented):
    """Will run the steps, persisting the pending approval and each step's outcome."""

    type = "runbook"
    config_model = RunbookSpec
    what = "approvals and step records need the store, wired in a later session"
