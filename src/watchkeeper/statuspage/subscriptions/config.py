"""The `status_subscriptions:` config section: who may subscribe to the status page, how the
mails are sent, how often one may ask."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, HttpUrl, field_validator, model_validator

from watchkeeper.core.durations import LongSpan
from watchkeeper.core.model import Name, StrictModel
from watchkeeper.notify.channels.email import DEFAULT_PORTS, check_address


class Rate(StrictModel):
    """A token bucket: `burst` requests at once, refilled at `per_hour` requests an hour."""

    per_hour: float = Field(gt=0, le=1_000_000)
    burst: int = Field(ge=1, le=1_000_000)

    @property
    def rate(self) -> float:
        """Tokens per second (what core.ratelimit.TokenBuckets takes)."""
        return self.per_hour / 3600


class SubscribeRateLimits(StrictModel):
    per_address: Rate = Field(default_factory=lambda: Rate(per_hour=2, burst=3))
    """Subscribe requests naming one email address, from anyone (confirmation mails to it)."""
    per_client: Rate = Field(default_factory=lambda: Rate(per_hour=30, burst=10))
    """Subscribe requests from one client address, for any email address."""


class SmtpServer(StrictModel):
    """The SMTP server the mails go through (the same fields as an `email` channel's)."""

    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None

    @model_validator(mode="after")
    def _credentials_together(self) -> SmtpServer:
        if (self.username is None) != (self.password is None):
            raise ValueError("set both `username` and `password`, or neither")
        return self

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.security]


class StatusSubscriptionsConfig(StrictModel):
    """Email (double opt-in) and webhook subscribers of the public status page."""

    enabled: bool = False
    email_channel: Name | None = None
    """An `email` channel of `notifications:` whose SMTP server (and `from_addr`) send the
    subscribers' mails; or give `smtp:` here."""
    smtp: SmtpServer | None = None
    from_addr: str | None = Field(
        default=None, validation_alias=AliasChoices("from", "from_addr"), serialization_alias="from"
    )
    """The sender (`from:`); defaults to the `email_channel`'s `from_addr`."""
    public_url: HttpUrl | None = None
    """Base of the links in the mails (confirm, unsubscribe); defaults to `server.public_url`."""
    rate_limit: SubscribeRateLimits = Field(default_factory=SubscribeRateLimits)
    unconfirmed_ttl: LongSpan = timedelta(hours=48)
    """An address not confirmed this long after it subscribed is deleted."""
    subject_prefix: str = Field(default="", max_length=100)

    @field_validator("from_addr")
    @classmethod
    def _check_from(cls, value: str | None) -> str | None:
        return None if value is None else check_address(value)

    @field_validator("subject_prefix")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\n" in value or "\r" in value:
            raise ValueError("must be a single line")
        return value

    @model_validator(mode="after")
    def _one_smtp_source(self) -> StatusSubscriptionsConfig:
        if self.email_channel is not None and self.smtp is not None:
            raise ValueError("give either `email_channel` or `smtp`, not both")
        if self.enabled and self.email_channel is None and self.smtp is None:
            raise ValueError("enabled: needs `email_channel` (an email channel's name) or `smtp`")
        if self.smtp is not None and self.from_addr is None:
            raise ValueError("from: required with `smtp` (the sender of the mails)")
        return self

    def channel_problem(self, channel_types: Mapping[str, str]) -> str | None:
        """Why `email_channel` cannot be used with these channels (name -> type), if it can't."""
        name = self.email_channel
        if name is None:
            return None
        if name not in channel_types:
            return f"unknown channel {name!r} (not in notifications)"
        if channel_types[name] != "email":
            return f"channel {name!r} is of type {channel_types[name]!r}, not email"
        return None
