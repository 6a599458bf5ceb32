"""Self-alerts: the service pages about itself when the scheduler stalls, the outbox backs up
or storage fails.

Each condition is one alert, fingerprint `watchkeeper:<what>` (source `watchkeeper`), opened
and resolved through the normal lifecycle, so the dispatcher routes, groups and escalates it
like any other. When the alert cannot be stored (the database itself is down) it is sent
straight to every channel, once per outage and with a timeout, not through the outbox; once
storage is back it is recorded (as paged to the channels that took it, so the dispatcher does
not page them again) and, when healthy, resolved: the resolution goes out as usual.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from watchkeeper.alerting import lifecycle
from watchkeeper.alerting.dispatch.grouping import own_group
from watchkeeper.core.clock import Clock
from watchkeeper.core.domain import Alert, AlertStatus, Severity
from watchkeeper.notify.channels.base import Channel, Message
from watchkeeper.notify.payload import alert_payload
from watchkeeper.store import alerts as alert_store
from watchkeeper.store.database import Database

log = logging.getLogger(__name__)

SOURCE = "watchkeeper"
PREFIX = "watchkeeper:"
NAMES = {
    "scheduler": "WatchkeeperSchedulerStalled",
    "outbox": "WatchkeeperOutboxBackedUp",
    "storage": "WatchkeeperStorageFailing",
}
"""The conditions watched (`what`) and their alert names."""


def fingerprint(what: str) -> str:
    """The fingerprint of the self-alert about `what` (`scheduler`, `outbox`, `storage`)."""
    return PREFIX + what


@dataclass(slots=True)
class _Open:
    """A condition that is (or was, until it is resolved in storage) failing."""

    alert: Alert
    stored: bool = False
    sent_to: list[str] | None = None
    """Channels that took it straight (None: not sent straight)."""
    sent_at: datetime | None = None


class SelfAlerts:
    """Opens, records and resolves the self-alerts (see the module doc)."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        channels: Mapping[str, Channel[Any]],
        severity: Severity,
        send_timeout: float,
        wake_dispatcher: Callable[[], None],
    ) -> None:
        self._db = db
        self._clock = clock
        self._channels = channels
        self._severity = severity
        self._send_timeout = send_timeout
        self._wake_dispatcher = wake_dispatcher
        self._open: dict[str, _Open] = {}
        self._restored = False

    @property
    def failing(self) -> dict[str, str]:
        """The conditions failing now, or not yet resolved in storage: what → summary."""
        return {what: o.alert.summary for what, o in self._open.items()}

    async def update(self, problems: Mapping[str, str | None]) -> None:
        """Apply one pass: `problems` maps each condition to what is wrong, or None when it
        is healthy. Storage errors are logged and retried at the next pass."""
        if not self._restored:
            await self._restore()
        for what, problem in problems.items():
            if problem is not None:
                await self._raise(what, problem)
            elif what in self._open:
                await self._clear(what)

    async def _restore(self) -> None:
        """Adopt the self-alerts left open by an earlier run, so they resolve when healthy."""
        try:
            async with self._db.connect() as conn:
                found = await alert_store.open_fingerprints(conn, SOURCE, prefix=PREFIX)
                for fp in found:
                    alert = await alert_store.open_alert(conn, fp)
                    if alert is not None:
                        self._open.setdefault(fp[len(PREFIX) :], _Open(alert, stored=True))
        except Exception as exc:
            log.debug("cannot read the open self-alerts yet: %s", exc)
            return
        self._restored = True

    async def _raise(self, what: str, problem: str) -> None:
        opened = self._open.get(what)
        if opened is None:
            opened = self._open[what] = _Open(self._new_alert(what, problem))
            log.error("self-alert %s: %s", opened.alert.name, problem)
        if opened.stored:
            return
        try:
            async with self._db.begin() as conn:
                await self._store(conn, opened)
        except Exception as exc:
            if opened.sent_at is None:  # once per outage: the passes meanwhile retry quietly
                log.error("cannot store the self-alert %s (%s)", opened.alert.name, exc)
                await self._send_straight(opened)
            else:
                log.debug("still cannot store the self-alert %s (%s)", opened.alert.name, exc)
            return
        opened.stored = True
        self._wake_dispatcher()

    async def _clear(self, what: str) -> None:
        opened = self._open[what]
        try:
            async with self._db.begin() as conn:
                if not opened.stored:
                    await self._store(conn, opened)
                await lifecycle.resolve(
                    conn, opened.alert.fingerprint, self._clock.now(), comment="healthy again"
                )
        except Exception as exc:
            log.warning("cannot resolve the self-alert %s yet: %s", opened.alert.name, exc)
            return
        del self._open[what]
        log.info("self-alert %s resolved: healthy again", opened.alert.name)
        self._wake_dispatcher()

    def _new_alert(self, what: str, problem: str) -> Alert:
        return Alert(
            id=str(uuid.uuid4()),
            fingerprint=fingerprint(what),
            name=NAMES.get(what, f"Watchkeeper {what}"),
            check=None,
            rule=None,
            severity=self._severity,
            status=AlertStatus.FIRING,
            started_at=self._clock.now(),
            resolved_at=None,
            summary=problem,
            labels={"severity": self._severity.value, "watchkeeper": what},
            source=SOURCE,
        )

    async def _store(self, conn: Any, opened: _Open) -> None:
        """Open the alert in storage (as it started); if channels took it straight, record
        them as paged, so the dispatcher tells them the resolution but pages nobody again."""
        alert = opened.alert
        spec = lifecycle.AlertSpec(
            fingerprint=alert.fingerprint,
            name=alert.name,
            severity=alert.severity,
            summary=alert.summary,
            labels=alert.labels,
            source=SOURCE,
        )
        stored, created = await lifecycle.fire(conn, spec, alert.started_at, alert_id=alert.id)
        if created and opened.sent_to and opened.sent_at is not None:
            await alert_store.claim_first_page(
                conn,
                stored.id,
                at=opened.sent_at,
                channels=opened.sent_to,
                group_key=own_group(stored.id),
                next_escalation_at=None,
            )
        opened.alert = stored

    async def _send_straight(self, opened: _Open) -> None:
        """The database is down: tell every channel now, once, each within the timeout."""
        now = self._clock.now()
        opened.sent_at = now
        event = "alert.firing"
        message = Message(
            id=0,
            idempotency_key=f"{opened.alert.id}:{event}",
            event=event,
            payload=alert_payload(opened.alert, event),
            created_at=now,
            attempt=1,
        )
        took: list[str] = []

        async def send(name: str, channel: Channel[Any]) -> None:
            try:
                async with asyncio.timeout(self._send_timeout):
                    outcome = await channel.send(message)
            except Exception as exc:  # a timeout too: the others still get it
                log.error("self-alert to %s failed: %s: %s", name, type(exc).__name__, exc)
                return
            if outcome.delivered:
                took.append(name)
            else:
                log.error("self-alert to %s failed: %s", name, outcome.error)

        await asyncio.gather(*(send(n, c) for n, c in self._channels.items()))
        opened.sent_to = sorted(took)
        log.error(
            "self-alert %s sent straight to %s (storage is down)",
            opened.alert.name,
            ", ".join(opened.sent_to) or "no channel",
        )
