"""The `auth:` config section: whether callers must authenticate, and the login throttle."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field

from watchkeeper.core.durations import LongSpan, PositiveShort
from watchkeeper.core.model import StrictModel


class LoginThrottleConfig(StrictModel):
    """Brute-force protection: too many failed logins lock the account (or address) out until
    the oldest failure leaves the window; a correct password is refused meanwhile."""

    max_failures: int = Field(default=10, ge=1, le=10_000)
    """Failed logins for one account within `window` before it is throttled."""
    max_failures_per_ip: int = Field(default=50, ge=1, le=100_000)
    """Failed logins from one client address (any accounts) within `window`."""
    window: PositiveShort = timedelta(minutes=15)


class AuthConfig(StrictModel):
    """Who may use the API: users (browser sessions) and API tokens, each with a role."""

    enabled: bool = True
    """False turns every check off: anyone reaching the port is an admin. Only for a
    loopback-only or embedded setup."""
    metrics: Literal["open", "token", "off"] = "open"
    """`/metrics`: open to anyone, only with a (viewer or better) token or session, or off."""
    session_ttl: LongSpan = timedelta(hours=12)
    """How long a browser login lasts."""
    login_throttle: LoginThrottleConfig = Field(default_factory=LoginThrottleConfig)
