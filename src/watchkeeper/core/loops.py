"""The loop shared by every timer-driven component (dispatcher, heartbeats, rules)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from watchkeeper.core.clock import Clock

log = logging.getLogger(__name__)


async def run_timed(
    step: Callable[[], Awaitable[datetime | None]],
    wake: asyncio.Event,
    clock: Clock,
    *,
    idle: float,
    what: str,
) -> None:
    """Call `step` forever: again when `wake` is set, at the instant `step` returned, or after
    `idle` seconds, whichever comes first. A failing step is logged and retried, never fatal."""
    while True:
        wake.clear()
        try:
            next_at = await step()
        except Exception:
            log.exception("%s failed; will retry", what)
            next_at = None
        wait = idle
        if next_at is not None:
            # A hair past the instant, so the next step sees it as due.
            wait = min(idle, max(0.0, (next_at - clock.now()).total_seconds()) + 0.01)
        await clock.wait(wake, wait)
