"""What every notification channel shares: config fields, the message it gets, its outcome."""

from __future__ import annotations

import abc
import builtins
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Generic, TypeVar

import aiohttp
from pydantic import Field

from watchkeeper.core.clock import utcnow
from watchkeeper.core.durations import PositiveShort
from watchkeeper.core.model import Name, StrictModel
from watchkeeper.notify.config import DEFAULT_MAX_IN_FLIGHT, MaxInFlight


class ChannelConfigBase(StrictModel):
    name: Name
    type: str
    max_per_hour: int | None = Field(default=None, ge=1)
    """Storm protection: above this many notifications an hour, the rest are held and
    summarised in a digest (nothing is dropped silently)."""
    digest_interval: PositiveShort = timedelta(minutes=15)
    """At most one digest per this interval while notifications are being held."""
    max_in_flight: MaxInFlight = DEFAULT_MAX_IN_FLIGHT
    """The channel's delivery lane: at most this many notifications in hand at once. A slow
    or hung receiver holds only its own lane's slots, never another channel's."""


@dataclass(frozen=True, slots=True)
class Message:
    """One outbox entry to deliver: the event, its payload body and its idempotency key."""

    id: int
    idempotency_key: str
    event: str
    payload: dict[str, Any]
    created_at: datetime
    attempt: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """Result of one delivery attempt. `retry` says whether trying again can help."""

    delivered: bool
    retry: bool = False
    error: str | None = None
    retry_after: float | None = None
    """Seconds the receiver asked us to wait (HTTP Retry-After), if any."""
    retry_at: datetime | None = None
    """The instant the receiver asked us to wait for (Retry-After as an HTTP-date), if any:
    the outbox turns it into a wait on its own clock."""

    @classmethod
    def ok(cls) -> Outcome:
        return cls(delivered=True)

    @classmethod
    def temporary(
        cls, error: str, retry_after: float | None = None, retry_at: datetime | None = None
    ) -> Outcome:
        return cls(
            delivered=False, retry=True, error=error, retry_after=retry_after, retry_at=retry_at
        )

    @classmethod
    def permanent(cls, error: str) -> Outcome:
        return cls(delivered=False, retry=False, error=error)


@dataclass(slots=True)
class ChannelContext:
    http: aiohttp.ClientSession
    timeout: float
    now: Callable[[], datetime] = utcnow
    """Wall clock for timestamps in payloads (injectable like every other clock)."""


CC = TypeVar("CC", bound=ChannelConfigBase)


class Channel(abc.ABC, Generic[CC]):
    """A destination for notifications. `send` makes one attempt; the outbox owns retries."""

    type: ClassVar[str]
    config_model: ClassVar[builtins.type[ChannelConfigBase]]

    def __init__(self, config: CC, context: ChannelContext) -> None:
        self.config = config
        self.context = context

    @property
    def name(self) -> str:
        return self.config.name

    @abc.abstractmethod
    async def send(self, message: Message) -> Outcome:
        """Deliver once; never raise for delivery errors, return an Outcome instead."""

    def secrets(self) -> list[str]:
        """Strings that must never appear in logs (tokens, passwords)."""
        return []
