"""Alerts, settings and targets for the dispatch stages' unit tests."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from watchkeeper.alerting import lifecycle
from watchkeeper.alerting.config import AlertingConfig, EscalationPolicy
from watchkeeper.alerting.dispatch.targets import Routing, Targets
from watchkeeper.core.domain import Alert, AlertStatus, Severity
from watchkeeper.store import alerts as alert_store
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store import tables
from watchkeeper.store.database import Database

T0 = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)


def alert(name: str = "ApiDown", **fields: Any) -> Alert:
    """A firing alert started at T0, not yet paged; `fields` override any attribute."""
    values: dict[str, Any] = {
        "id": f"id-{name}",
        "fingerprint": f"fp-{name}",
        "name": name,
        "check": None,
        "rule": None,
        "severity": Severity.CRITICAL,
        "status": AlertStatus.FIRING,
        "started_at": T0,
        "resolved_at": None,
        "summary": f"{name} summary",
    }
    return Alert(**{**values, **fields})


async def stored_alert(db: Database, name: str = "ApiDown", **spec: Any) -> Alert:
    """A firing alert fired at T0 through the lifecycle, as the dispatcher reads it."""
    async with db.begin() as conn:
        fired, _ = await lifecycle.fire(
            conn,
            lifecycle.AlertSpec(
                fingerprint=f"fp-{name}",
                name=name,
                severity=Severity.CRITICAL,
                summary=f"{name} summary",
                **spec,
            ),
            T0,
        )
    return fired


def settings(**values: Any) -> AlertingConfig:
    """The `alerting:` section as written in YAML (durations as text)."""
    return AlertingConfig.model_validate(values)


def policy(name: str, steps: list[dict[str, Any]], **values: Any) -> EscalationPolicy:
    """An escalation policy as written in YAML."""
    return EscalationPolicy.model_validate({"name": name, "steps": steps, **values})


def targets(
    config: AlertingConfig | None = None,
    policies: Iterable[EscalationPolicy] = (),
    *,
    channels: Iterable[str] = ("ops",),
    unusable: Iterable[str] = (),
    **routing: Any,
) -> Targets:
    """Targets over `policies`, routing to `channels` unless `routing` says otherwise."""
    return Targets(
        config or settings(),
        {p.name: p for p in policies},
        Routing(list(channels), **routing),
        frozenset(unusable),
    )


async def outbox(db: Database) -> list[tuple[str, str, str]]:
    """Every outbox entry as (channel, event, idempotency key), in order of queueing."""
    rows = await outbox_store.list_entries(db, limit=1000)
    return [(r.channel, r.event, r.idempotency_key) for r in sorted(rows, key=lambda r: r.id)]


async def reread(db: Database, alert_id: str) -> Alert:
    """The alert as stored now."""
    found = await alert_store.get_alert(db, alert_id)
    assert found is not None
    return found[0]


async def outbox_alert_ids(db: Database) -> list[str | None]:
    """The alert each outbox entry is stored against, in enqueue order."""
    async with db.connect() as conn:
        rows = await conn.execute(select(tables.outbox.c.alert_id).order_by(tables.outbox.c.id))
        return [row.alert_id for row in rows]
