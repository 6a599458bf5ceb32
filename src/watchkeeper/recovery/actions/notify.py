"""`notify`: tell people something (a message to channels) as a recovery action.

The message goes through the `Notifier` the running service gives (the notification outbox,
so it is retried like any notification); recovery itself never imports notify.
"""

from __future__ import annotations

from time import perf_counter

from watchkeeper.recovery.actions.base import (
    ACTIONS,
    Action,
    ActionContext,
    ActionOutcome,
    OutcomeStatus,
)
from watchkeeper.recovery.config import NotifySpec


async def send(context: ActionContext, message: str, channels: list[str] | None) -> ActionOutcome:
    """Queue `message`; succeeded once queued (delivery is the outbox's business)."""
    started = perf_counter()
    if context.notifier is None:
        return ActionOutcome(
            OutcomeStatus.ERROR, perf_counter() - started, reason="no notifier available"
        )
    try:
        told = await context.notifier.send(
            message,
            channels,
            action=context.action or "notify",
            check=context.check,
            run_id=context.run_id,
        )
    except ValueError as exc:
        return ActionOutcome(OutcomeStatus.ERROR, perf_counter() - started, reason=str(exc))
    if not told:
        return ActionOutcome(
            OutcomeStatus.FAILED, perf_counter() - started, reason="no channel to notify"
        )
    return ActionOutcome(
        OutcomeStatus.SUCCEEDED,
        perf_counter() - started,
        output=message,
        reason=f"notified {', '.join(told)}",
    )


@ACTIONS.register
class NotifyRecovery(Action[NotifySpec]):
    """Hands `message` to the notifier for `channels` (all the check's when unset)."""

    type = "notify"
    config_model = NotifySpec

    async def run(self, context: ActionContext) -> ActionOutcome:
        return await send(context, self.config.message, self.config.channels)
