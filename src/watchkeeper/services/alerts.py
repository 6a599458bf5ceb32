"""Alerts: list and read them; acknowledge, resolve and comment; take in external ones."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from watchkeeper.alerting import lifecycle
from watchkeeper.alerting.external import parse_external, parse_postable
from watchkeeper.alerting.ingest import AlertIngest
from watchkeeper.core.clock import Clock
from watchkeeper.core.domain import Alert, Severity
from watchkeeper.core.errors import Conflict, NotFound
from watchkeeper.store import alerts as alert_store
from watchkeeper.store.database import Database

SEVERITIES = [s.value for s in Severity]

NO_SUCH_ALERT = "no such alert"


@dataclass(frozen=True, slots=True)
class AlertCounts:
    """Open alerts by severity (every severity listed)."""

    firing: dict[str, int]
    """Firing, neither acknowledged nor silenced."""
    acknowledged: dict[str, int]
    silenced: dict[str, int]
    """Open and muted: matched by a silence, or suppressed (maintenance, a failing dependency)."""

    @classmethod
    def none(cls) -> AlertCounts:
        """No open alert at all."""
        empty = {s: 0 for s in SEVERITIES}
        return cls(firing=dict(empty), acknowledged=dict(empty), silenced=dict(empty))


_Action = Callable[..., Awaitable[Alert]]


@dataclass(slots=True)
class AlertService:
    """Alerts from checks, rules, flapping and other systems, and what people do to them."""

    db: Database
    clock: Clock
    wake_dispatcher: Callable[[], None]
    """Someone must be told (or stop being paged): the dispatcher decides now."""
    posted: AlertIngest
    """The write path (and index) of alerts posted by other systems."""
    wake_for: Callable[[list[str], list[Alert]], None] | None = None
    """Posted alerts changed (their ids, and the alerts opened as stored): the dispatcher
    decides about them now, without looking at every open alert again (None:
    `wake_dispatcher`)."""

    async def list_alerts(
        self,
        *,
        status: str | None = None,
        check: str | None = None,
        severity: str | None = None,
        source: str | None = None,
        silenced: bool | None = None,
        q: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[Alert], int]:
        """A page of alerts, newest first, and how many match in all. `status`: `open` (not
        resolved), `silenced` (open and muted), or an alert status."""
        return await alert_store.list_alerts(
            self.db,
            status=status,
            check=check,
            severity=severity,
            source=source,
            silenced=silenced,
            q=q,
            limit=limit,
            offset=offset,
        )

    async def get(self, alert_id: str) -> tuple[Alert, list[Any]]:
        """The alert and its events, oldest first; NotFound if there is none."""
        found = await alert_store.get_alert(self.db, alert_id)
        if found is None:
            raise NotFound(NO_SUCH_ALERT)
        return found

    async def counts(self) -> AlertCounts:
        """Open alerts by state (silenced: muted by a silence or suppressed) and severity."""
        async with self.db.connect() as conn:
            rows = await alert_store.open_counts(conn)
        counts: dict[str, Counter[str]] = {
            k: Counter() for k in ("firing", "acknowledged", "silenced")
        }
        for status, severity, is_muted, n in rows:
            kind = "silenced" if is_muted else status
            if kind in counts:
                counts[kind][severity] += int(n)
        return AlertCounts(**{kind: {s: c[s] for s in SEVERITIES} for kind, c in counts.items()})

    async def acknowledge(self, alert_id: str, actor: str, comment: str | None = None) -> Alert:
        """Stop the alert's escalation. NotFound for an unknown alert, Conflict for a
        resolved one."""
        return await self._change(alert_id, lifecycle.acknowledge, actor, comment)

    async def resolve(self, alert_id: str, actor: str, comment: str | None = None) -> Alert:
        """Resolve the alert by hand. NotFound for an unknown alert, Conflict for a resolved
        one."""
        alert = await self._change(alert_id, lifecycle.resolve_by_id, actor, comment)
        self.posted.forget(alert.fingerprint)
        return alert

    async def comment(self, alert_id: str, actor: str, comment: str) -> Alert:
        """Add a comment to the alert's events. NotFound for an unknown alert."""
        return await self._change(alert_id, lifecycle.add_comment, actor, comment)

    async def _change(self, alert_id: str, action: _Action, *args: Any) -> Alert:
        """Apply a lifecycle action in its own transaction, then wake the dispatcher to
        notify; the alert as stored after."""
        try:
            async with self.db.begin() as conn:
                alert = await action(conn, alert_id, *args, self.clock.now())
        except KeyError:
            raise NotFound(NO_SUCH_ALERT) from None
        except lifecycle.AlertStateError as exc:
            raise Conflict(str(exc)) from None
        self.wake_dispatcher()
        found = await alert_store.get_alert(self.db, alert.id)
        return found[0] if found is not None else alert

    async def ingest(self, body: Any) -> list[Alert]:
        """Create or resolve alerts posted by another system (Watchkeeper's shape or
        Alertmanager's webhook); the alerts touched, in the body's order. Raises
        `alerting.external.InvalidAlerts` (every problem, by location) and stores nothing
        if any alert is invalid."""
        taken = await self.posted.take(parse_external(body))
        if taken.changed:
            self._posted_changed(taken.touched, taken.created)
        ids = [i for i in taken.ids if i is not None]
        async with self.db.connect() as conn:
            found = await alert_store.by_ids(conn, list(dict.fromkeys(ids)))
        return [found[i] for i in ids if i in found]

    async def post_alertmanager(self, raw: bytes) -> None:
        """`POST /api/v2/alerts`: Alertmanager's postable alerts (JSON bytes). An alert whose
        `endsAt` passed resolves; one re-sent unchanged costs no write until the next flush.
        Raises InvalidAlerts and stores nothing if any alert is invalid."""
        taken = await self.posted.take(parse_postable(raw, self.clock.now()))
        if taken.changed:
            self._posted_changed(taken.touched, taken.created)

    def _posted_changed(self, touched: list[str], created: list[Alert]) -> None:
        if self.wake_for is not None and touched:
            self.wake_for(touched, created)
        else:
            self.wake_dispatcher()

    async def open_alerts(self) -> list[Alert]:
        """Every open alert, oldest first, with the last-seen time and `endsAt` of posted
        ones as last re-sent."""
        async with self.db.connect() as conn:
            alerts = await alert_store.open_alerts(conn)
        for alert in alerts:
            latest = self.posted.latest(alert.fingerprint)
            if latest is not None:
                alert.updated_at, alert.ends_at = latest
        return alerts
