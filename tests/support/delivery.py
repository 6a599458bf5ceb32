"""The delivery settings the outbox tests share: retries start at 2 s, give up after 1 h."""

from __future__ import annotations

from datetime import timedelta

from watchkeeper.notify.config import DeliveryConfig

DELIVERY = DeliveryConfig(
    timeout=timedelta(seconds=5),
    backoff_initial=timedelta(seconds=2),
    backoff_max=timedelta(minutes=5),
    max_age=timedelta(hours=1),
)
