"""The `delivery:` config section: how the outbox delivers notifications."""

from __future__ import annotations

from datetime import timedelta

from watchkeeper.core.durations import PositiveShort, Repeat, Timeout
from watchkeeper.core.model import StrictModel


class DeliveryConfig(StrictModel):
    """How the outbox delivers notifications."""

    timeout: Timeout = timedelta(seconds=10)
    backoff_initial: PositiveShort = timedelta(seconds=1)
    backoff_max: PositiveShort = timedelta(minutes=5)
    max_age: Repeat = timedelta(hours=24)
    """A notification still undelivered this long after it was queued is marked failed."""
