"""Alerts: list and read them; acknowledge, resolve and comment; take in external ones."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from watchkeeper.alerting import lifecycle
from watchkeeper.alerting.external import parse_external
from watchkeeper.core.clock import Clock
from watchkeeper.core.domain import Alert, Severity
from watchkeeper.core.errors import Conflict, NotFound
from watchkeeper.store import alerts as alert_store
from watchkeeper.store.conflicts import retrying
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
        return await self._change(alert_id, lifecycle.resolve_by_id, actor, comment)

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
        items = parse_external(body)
        now = self.clock.now()

        async def apply() -> list[Alert]:
            touched: list[Alert] = []
            async with self.db.begin() as conn:
                for spec, firing in items:
                    if firing:
                        alert, _ = await lifecycle.fire(conn, spec, now)
                        touched.append(alert)
                    elif (
                        resolved := await lifecycle.resolve(conn, spec.fingerprint, now)
                    ) is not None:
                        touched.append(resolved)
            return touched

        # The same alert posted at once by both Alertmanagers of a pair: the second run finds
        # the first's open alert and refreshes it.
        touched = await retrying(apply)
        self.wake_dispatcher()
        return touched
