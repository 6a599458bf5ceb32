"""`notify`: send a message to channels (to be built: needs the dispatcher's interface)."""

from __future__ import annotations

from watchkeeper.recovery.actions.base import ACTIONS, NotYetImplemented
from watchkeeper.recovery.config import NotifySpec


@ACTIONS.register
class NotifyRecovery(NotYetImplemented):
    """Will hand the message to the notification outbox."""

    type = "notify"
    config_model = NotifySpec
    what = "it needs the dispatcher's narrow interface, wired in a later session"
