"""Resolution: external alerts that stopped being re-sent, and the closing notices.

An acknowledgement or a resolution is told once to everyone who was paged about the alert
(nobody, if nobody was paged).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal, Protocol

from watchkeeper.alerting import lifecycle
from watchkeeper.alerting.dispatch.context import Pass
from watchkeeper.alerting.dispatch.storm import StormStage
from watchkeeper.alerting.dispatch.targets import Targets
from watchkeeper.core.domain import Alert, AlertStatus
from watchkeeper.notify.payload import alert_payload
from watchkeeper.store import alerts as alert_store
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store.database import Database


class Posted(Protocol):
    """What the ingest path knows fresher than the database (`alerting.ingest`)."""

    def latest(self, fingerprint: str) -> tuple[datetime, datetime | None] | None: ...

    def forget(self, fingerprint: str) -> None: ...


class _NothingPosted:
    def latest(self, fingerprint: str) -> tuple[datetime, datetime | None] | None:
        return None

    def forget(self, fingerprint: str) -> None:
        return None


class Expiry:
    """An open external alert resolves at its `endsAt` (Alertmanager's semantics: unless
    re-sent with a later one), or, without one, when not re-sent for `auto_resolve_after`."""

    def __init__(self, db: Database, after: timedelta | None, posted: Posted | None = None) -> None:
        self._db = db
        self._after = after
        self._posted = posted if posted is not None else _NothingPosted()

    def expires_at(self, alert: Alert) -> datetime | None:
        """When the alert resolves unless re-sent (None: never by itself)."""
        if alert.source != "external" or alert.status is AlertStatus.RESOLVED:
            return None
        seen, ends_at = alert.updated_at or alert.started_at, alert.ends_at
        latest = self._posted.latest(alert.fingerprint)
        if latest is not None:
            seen, ends_at = latest
        if ends_at is not None:
            return ends_at
        return None if self._after is None else seen + self._after

    async def apply(self, alert: Alert, at: Pass) -> None:
        """Resolve the alert, in its own transaction, if it expired by `at.now`; else the
        pass wakes when it will."""
        due = self.expires_at(alert)
        if due is None:
            return
        if due > at.now:
            at.wakeups.append(due)
            return
        async with self._db.begin() as conn:
            await lifecycle.resolve(
                conn, alert.fingerprint, at.now, comment="auto-resolved: not re-sent"
            )
        self._posted.forget(alert.fingerprint)
        alert.status = AlertStatus.RESOLVED


class Resolution:
    """Tells those paged about an alert that it was acknowledged, or resolved, once."""

    def __init__(self, db: Database, targets: Targets, storm: StormStage) -> None:
        self._db = db
        self._targets = targets
        self._storm = storm

    async def acknowledged(self, alert: Alert, now: datetime) -> int:
        """`alert.acknowledged`, unless already told; return the outbox entries queued."""
        if alert.ack_notified_at is not None:
            return 0
        return await self._tell(alert, "alert.acknowledged", "ack_notified_at", now)

    async def resolved(self, alert: Alert, now: datetime) -> int:
        """`alert.resolved`, unless already told; return the outbox entries queued."""
        return await self._tell(alert, "alert.resolved", "resolved_notified_at", now)

    async def _tell(
        self,
        alert: Alert,
        event: str,
        mark: Literal["ack_notified_at", "resolved_notified_at"],
        now: datetime,
    ) -> int:
        """Tell everyone who was paged about this alert (nobody, if nobody was paged)."""
        channels = alert.paged_channels
        if channels is None:  # paged before this was recorded: the routing of today
            channels = self._targets.first_channels(alert)
        async with self._db.begin() as conn:
            if not await alert_store.mark_told(conn, alert.id, mark, now):
                return 0
            payload = alert_payload(alert, event)
            entries = [
                outbox_store.OutboxEntry(c, f"{alert.id}:{event}", event, payload, alert.id)
                for c in channels
            ]
            return await self._storm.enqueue(conn, entries, now)
