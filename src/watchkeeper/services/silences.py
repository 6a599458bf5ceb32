"""Silences: mute notifications for alerts matching labels, for a while."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from watchkeeper.alerting import silences as silence_store
from watchkeeper.alerting.matchers import Matcher, parse_matcher
from watchkeeper.alerting.silences import Silence
from watchkeeper.core.clock import Clock
from watchkeeper.core.durations import LONG_SPAN
from watchkeeper.core.errors import Invalid, NotFound
from watchkeeper.services.alerts import NO_SUCH_ALERT
from watchkeeper.store import alerts as alert_store
from watchkeeper.store.database import Database

NO_SUCH_SILENCE = "no such silence"


def parse_length(text: str, field: str) -> timedelta:
    """A length typed by a person (`1h`, `2d`), within the bounds of the API's and the
    config file's silences; Invalid naming `field` otherwise."""
    try:
        return LONG_SPAN.parse(text)
    except ValueError as exc:
        raise Invalid(f"{field}: {exc}") from None


@dataclass(slots=True)
class SilenceService:
    """Silences, stored; the dispatcher applies them on its next pass."""

    db: Database
    clock: Clock
    wake_dispatcher: Callable[[], None]

    async def list_silences(self, *, ended_since: datetime | None = None) -> list[Silence]:
        """Every silence, newest end first; with `ended_since`, those that ended before it
        are left out."""
        return await silence_store.list_silences(self.db, include_expired_since=ended_since)

    async def get(self, silence_id: str) -> Silence:
        """One silence; NotFound if there is none."""
        silence = await silence_store.get_silence(self.db, silence_id)
        if silence is None:
            raise NotFound(NO_SUCH_SILENCE)
        return silence

    async def create(
        self,
        matchers: Sequence[str | dict[str, Any] | Matcher],
        *,
        ends_at: datetime,
        starts_at: datetime | None = None,
        created_by: str,
        comment: str = "",
    ) -> Silence:
        """Store a silence (from now unless `starts_at`) and have the dispatcher apply it.
        Matchers are `check=api`, `severity=~crit.*` or Alertmanager's `{name, value,
        isRegex, isEqual}`. Invalid for a bad matcher, none, or a bad length."""
        now = self.clock.now()
        try:
            parsed = [m if isinstance(m, Matcher) else parse_matcher(m) for m in matchers]
            silence = await silence_store.create_silence(
                self.db, parsed, starts_at or now, ends_at, created_by, comment, now
            )
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        self.wake_dispatcher()
        return silence

    async def create_for(
        self,
        matchers: Sequence[str],
        length: str,
        *,
        created_by: str,
        comment: str = "",
    ) -> Silence:
        """A silence from now for `length` (as typed: `1h`, `2d`). Invalid as `create`,
        or naming `duration`."""
        try:
            parsed = [parse_matcher(m) for m in matchers]
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        span = parse_length(length, "duration")
        now = self.clock.now()
        return await self.create(
            parsed, starts_at=now, ends_at=now + span, created_by=created_by, comment=comment
        )

    async def silence_alert(self, alert_id: str, length: str, *, created_by: str) -> Silence:
        """Silence an alert (its name, and its check if any) from now for `length`.
        NotFound for an unknown alert; Invalid naming `duration`."""
        found = await alert_store.get_alert(self.db, alert_id)
        if found is None:
            raise NotFound(NO_SUCH_ALERT)
        alert = found[0]
        matchers = [Matcher("alertname", alert.name)]
        if alert.check:
            matchers.append(Matcher("check", alert.check))
        span = parse_length(length, "duration")
        now = self.clock.now()
        return await self.create(
            matchers,
            starts_at=now,
            ends_at=now + span,
            created_by=created_by,
            comment=f"silenced from alert {alert.id}",
        )

    async def expire(self, silence_id: str) -> Silence:
        """End a silence now (it is kept: who silenced what stays known); NotFound if there
        is none."""
        silence = await silence_store.expire_silence(self.db, silence_id, self.clock.now())
        if silence is None:
            raise NotFound(NO_SUCH_SILENCE)
        self.wake_dispatcher()
        return silence
