"""The `heartbeats:` config section: who may ping, how often, and how much body is kept."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from watchkeeper.core.model import StrictModel

_PING_KEY = re.compile(r"^[A-Za-z0-9_-]{16,128}$")

MIB = 1024 * 1024


class PingRate(StrictModel):
    """A token bucket: `burst` pings at once, refilled at `rate` pings per second."""

    rate: float = Field(gt=0, le=1_000_000)
    burst: int = Field(ge=1, le=1_000_000)


class PingRateLimits(StrictModel):
    per_check: PingRate = Field(default_factory=lambda: PingRate(rate=2, burst=20))
    """Pings to one heartbeat, from anyone."""
    per_address: PingRate = Field(default_factory=lambda: PingRate(rate=20, burst=200))
    """Pings (to any key, known or not) from one client address."""


class HeartbeatsConfig(StrictModel):
    ping_by_name: bool = False
    """Accept `/ping/<check name>`: anyone who knows a name could then ping it."""
    ping_key: str | None = None
    """The secret of `/ping/<ping_key>/<slug>`; unset: one is generated and kept in the DB."""
    rate_limit: PingRateLimits = Field(default_factory=PingRateLimits)
    body_bytes_per_day: int = Field(default=MIB, ge=0, le=1 << 40)
    """Ping bodies stored per heartbeat per UTC day; past it pings count, bodies are dropped."""

    @field_validator("ping_key")
    @classmethod
    def _check_ping_key(cls, value: str | None) -> str | None:
        # The message never repeats the value: it is a secret.
        if value is not None and not _PING_KEY.match(value):
            raise ValueError("must be 16-128 characters of A-Z, a-z, 0-9, '_' and '-'")
        return value
