"""The `delivery:` config section and the per-channel delivery settings of the outbox."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import Field

from watchkeeper.core.durations import PositiveShort, Repeat, Timeout
from watchkeeper.core.model import StrictModel

DEFAULT_MAX_IN_FLIGHT = 4
"""Deliveries a channel's lane has in hand at once unless its config says otherwise."""

MaxInFlight = Annotated[int, Field(ge=1, le=64)]
"""A channel's `max_in_flight`: 1 (one at a time, in order) to 64; the bound keeps one
channel from holding a connection pool's worth of sockets."""


class DeliveryConfig(StrictModel):
    """How the outbox delivers notifications."""

    timeout: Timeout = timedelta(seconds=10)
    backoff_initial: PositiveShort = timedelta(seconds=1)
    backoff_max: PositiveShort = timedelta(minutes=5)
    max_age: Repeat = timedelta(hours=24)
    """A notification still undelivered this long after it was queued is marked failed."""
