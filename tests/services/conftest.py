"""A started runtime on SQLite with a hand-moved clock: its services, as routes get them."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.clock import FakeClock
from watchkeeper.app import Runtime
from watchkeeper.config.loader import Config


def config(tmp_path: Path, **extra: object) -> Config:
    """Two checks that never run on their own (the clock does not move), a command check
    and a heartbeat; a rule; ping limits small enough to reach."""
    return Config.model_validate(
        {
            "storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"},
            "checks": [
                {
                    "name": "web",
                    "type": "command",
                    "command": [sys.executable, "-c", "print('ok')"],
                    "interval": "1h",
                    "component": "frontend",
                    "labels": {"team": "core"},
                },
                {"name": "job", "type": "heartbeat", "period": "1h", "grace": "10m"},
            ],
            "rules": [{"name": "queue", "metric": "queue.depth", "threshold": 100, "for": "0s"}],
            "heartbeats": {
                # Small buckets that never refill while the clock stands still.
                "rate_limit": {
                    "per_check": {"rate": 0.001, "burst": 3},
                    "per_address": {"rate": 0.001, "burst": 5},
                }
            },
            **extra,
        }
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def runtime(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Runtime]:
    rt = Runtime(config(tmp_path), clock=clock)
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()
