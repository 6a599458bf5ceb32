"""Deletes history older than `storage.retention`, so the database does not grow forever."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from sqlalchemy import Text, cast, delete, null, update

from watchkeeper.core.clock import Clock
from watchkeeper.core.domain import AlertStatus
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store import rollups as rollup_store
from watchkeeper.store import tables
from watchkeeper.store.config import RetentionConfig
from watchkeeper.store.database import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Pruned:
    results: int
    alerts: int
    notifications: int
    audit: int = 0
    rollups: int = 0
    metrics: int = 0
    """Results whose metrics were cleared (`retention.metrics`); the results themselves stay."""


class Retention:
    """Prunes every kind of history past its `storage.retention` (the housekeeping job
    `retention` runs it each hour; see watchkeeper.engine.housekeeping)."""

    def __init__(self, db: Database, config: RetentionConfig, clock: Clock) -> None:
        self._db = db
        self._config = config
        self._clock = clock

    async def prune(self) -> Pruned:
        """Delete expired rows now. Open alerts and undelivered notifications are never touched."""
        now = self._clock.now()
        results_before = now - self._config.results
        alerts_before = now - self._config.alerts
        r, a, o = tables.check_results, tables.alerts, tables.outbox
        async with self._db.begin() as conn:
            results = await conn.execute(delete(r).where(r.c.started_at < results_before))
            # Metrics are part of a result row: past their own retention they are cleared and
            # the result (status, reason, response time) stays until `results`. JSON `null` is
            # what a result without metrics holds, so it is not rewritten every pass.
            metrics = await conn.execute(
                update(r)
                .where(
                    r.c.started_at < now - self._config.metrics,
                    r.c.metrics.is_not(None),
                    cast(r.c.metrics, Text) != "null",
                )
                .values(metrics=null())
            )
            await conn.execute(
                delete(tables.alert_events).where(
                    tables.alert_events.c.alert_id.in_(
                        a.select()
                        .with_only_columns(a.c.id)
                        .where(a.c.status == AlertStatus.RESOLVED, a.c.resolved_at < alerts_before)
                    )
                )
            )
            alerts = await conn.execute(
                delete(a).where(a.c.status == AlertStatus.RESOLVED, a.c.resolved_at < alerts_before)
            )
            sent = await conn.execute(
                delete(o).where(o.c.status != outbox_store.PENDING, o.c.created_at < alerts_before)
            )
            audit = await conn.execute(
                delete(tables.audit_log).where(tables.audit_log.c.at < now - self._config.audit)
            )
            rollups = await rollup_store.delete_before(
                conn, rollup_store.FIVE_MINUTES, now - self._config.rollups_5m
            )
            rollups += await rollup_store.delete_before(
                conn, rollup_store.ONE_HOUR, now - self._config.rollups_1h
            )
        pruned = Pruned(
            int(results.rowcount or 0),
            int(alerts.rowcount or 0),
            int(sent.rowcount or 0),
            int(audit.rowcount or 0),
            rollups,
            int(metrics.rowcount or 0),
        )
        if any(dataclasses.astuple(pruned)):
            log.info("retention pruned %s", pruned)
        return pruned
