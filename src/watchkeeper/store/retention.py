"""Deletes history older than `storage.retention`, so the database does not grow forever.

Deletes run in batches of at most `batch` rows, each in its own short transaction, with a
pause between them: on SQLite the write lock is held for one batch (milliseconds), never
for a whole prune, so the result writer, the alert engine and a second process are not made
to wait past their busy timeout, even on an upgraded install whose first prune removes
months of history.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Table,
    Text,
    and_,
    cast,
    delete,
    func,
    null,
    or_,
    select,
    update,
)

from watchkeeper.core.clock import Clock
from watchkeeper.core.domain import AlertStatus, Status
from watchkeeper.core.durations import SHORT_WAIT
from watchkeeper.core.flapping import MAX_WINDOW
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store import rollups as rollup_store
from watchkeeper.store import tables
from watchkeeper.store.config import RetentionConfig
from watchkeeper.store.database import Database

log = logging.getLogger(__name__)

BATCH = 5000
"""Rows deleted (or updated) per transaction."""

PAUSE = 0.02
"""Seconds between two batches: room for other writers to take the lock."""


@dataclass(frozen=True, slots=True)
class Pruned:
    results: int
    alerts: int
    notifications: int
    audit: int = 0
    rollups: int = 0
    metrics: int = 0
    """Results whose metrics were cleared (`retention.metrics`); the results themselves stay."""
    successes: int = 0
    """Plain successful results deleted early (`retention.raw_success`)."""
    groups: int = 0
    """Notification groups not paged for `GROUP_ROWS_KEEP`."""


GROUP_ROWS_KEEP = 2 * SHORT_WAIT.maximum
"""A notification group's row (when it was last paged) holds its next page back by
`group_interval`, at most a day: a row untouched for longer decides nothing. Groups are
label values (`group_by`), so without this the table grew with every value ever seen."""


async def _pause(seconds: float) -> None:
    await asyncio.sleep(seconds)


class Retention:
    """Prunes every kind of history past its `storage.retention` (the housekeeping job
    `retention` runs it each hour; see watchkeeper.engine.housekeeping)."""

    def __init__(
        self,
        db: Database,
        config: RetentionConfig,
        clock: Clock,
        *,
        batch: int = BATCH,
        pause: float = PAUSE,
        between: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._db = db
        self._config = config
        self._clock = clock
        self._batch = batch
        self._between = between or (lambda: _pause(pause))
        self.batches = 0
        """Transactions the prunes of this instance have committed (for tests and logs)."""

    async def prune(self) -> Pruned:
        """Delete expired rows now. Open alerts and undelivered notifications are never touched."""
        now = self._clock.now()
        cfg = self._config
        r, a, o = tables.check_results, tables.alerts, tables.outbox
        alerts_before = now - cfg.alerts

        results = await self._by_id(r, r.c.started_at < now - cfg.results)
        successes = await self._by_id(
            r,
            _plain_success(now - cfg.raw_success, now - cfg.metrics),
            bound=r.c.started_at < now - cfg.raw_success,
        )
        # Metrics are part of a result row: past their own retention they are cleared and
        # the result (status, reason, response time) stays until `results`. JSON `null` is
        # what a result without metrics holds, so it is not rewritten every pass.
        metrics = await self._by_id(
            r,
            and_(
                r.c.started_at < now - cfg.metrics,
                r.c.metrics.is_not(None),
                cast(r.c.metrics, Text) != "null",
            ),
            bound=r.c.started_at < now - cfg.metrics,
            values={"metrics": null()},
        )
        old_alerts = and_(a.c.status == AlertStatus.RESOLVED, a.c.resolved_at < alerts_before)
        # An alert's events first (they reference it), then the alert.
        alerts = await self._by_key(a.c.id, old_alerts, first=[tables.alert_events.c.alert_id])
        sent = await self._by_id(
            o, and_(o.c.status != outbox_store.PENDING, o.c.created_at < alerts_before)
        )
        au = tables.audit_log
        audit = await self._by_id(au, au.c.at < now - cfg.audit)
        rollups = 0
        for resolution, keep in (
            (rollup_store.FIVE_MINUTES, cfg.rollups_5m),
            (rollup_store.ONE_HOUR, cfg.rollups_1h),
        ):
            while True:
                async with self._db.begin() as conn:
                    n = await rollup_store.delete_before(conn, resolution, now - keep, self._batch)
                rollups += n
                if n < self._batch:
                    break
                await self._next()
        g = tables.alert_groups
        groups = await self._by_key(g.c.key, g.c.last_notified_at < now - GROUP_ROWS_KEEP)
        pruned = Pruned(results, alerts, sent, audit, rollups, metrics, successes, groups)
        if any(dataclasses.astuple(pruned)):
            log.info("retention pruned %s in %d batches", pruned, self.batches)
        return pruned

    async def _by_key(
        self, key: Column[Any], where: ColumnElement[bool], *, first: Sequence[Column[Any]] = ()
    ) -> int:
        """Delete the rows of `key`'s table matching `where`, `batch` at a time, one
        transaction per batch (re-checking `where` in it: changed meanwhile?), the rows
        referencing them through the `first` columns before them. For tables without the
        ascending id `_by_id` needs, or with rows that reference theirs."""
        done = 0
        while True:
            async with self._db.connect() as conn:
                found = select(key).where(where).limit(self._batch)
                keys = (await conn.execute(found)).scalars().all()
            if not keys:
                return done
            chosen = and_(key.in_(keys), where)
            async with self._db.begin() as conn:
                for column in first:
                    await conn.execute(
                        delete(column.table).where(column.in_(select(key).where(chosen)))
                    )
                done += int((await conn.execute(delete(key.table).where(chosen))).rowcount or 0)
            await self._next()
            if len(keys) < self._batch:
                return done

    async def _next(self) -> None:
        self.batches += 1
        await self._between()

    async def _by_id(
        self,
        table: Table,
        where: ColumnElement[bool],
        *,
        bound: ColumnElement[bool] | None = None,
        values: dict[str, Any] | None = None,
    ) -> int:
        """Delete (or update with `values`) the rows matching `where`, `batch` at a time in
        ascending id order, one transaction per batch. The candidates are found first
        outside any transaction (a read: on SQLite it never blocks a writer), then each
        batch re-checks `where` inside its own transaction. `bound`, a cheaper condition
        that `where` implies, sets the highest id to look at."""
        ident = table.c.id
        async with self._db.connect() as conn:
            # `+ 0`: SQLite would otherwise walk the table back from its newest row; this way
            # it reads the (short) index range of old rows that `bound` names.
            highest = select(func.max(ident + 0)).where(where if bound is None else bound)
            top = (await conn.execute(highest)).scalar_one()
        if top is None:
            return 0
        done, after = 0, None
        while True:
            window = select(ident).where(where, ident <= top)
            if after is not None:
                window = window.where(ident > after)
            window = window.order_by(ident).limit(self._batch)
            async with self._db.connect() as conn:
                ids = (await conn.execute(window)).scalars().all()
            if not ids:
                return done
            lo, hi = ids[0], ids[-1]
            span = and_(ident >= lo, ident <= hi, where)
            statement = (
                update(table).where(span).values(values) if values else delete(table).where(span)
            )
            async with self._db.begin() as conn:
                done += int((await conn.execute(statement)).rowcount or 0)
            after = hi
            await self._next()
            if len(ids) < self._batch:
                return done


KEEP_LATEST = MAX_WINDOW
"""Each check's latest results stay whatever their age: a restart rebuilds the flap
detector from them (a window of at most this many), and a slow check's results page keeps
its recent history."""


def _plain_success(before: datetime, metrics_before: datetime) -> ColumnElement[bool]:
    """Results older than `retention.raw_success` that tell nothing the rollups do not: `up`,
    after an `up` result of the same check (or none), not among the check's latest
    KEEP_LATEST, and without metrics that are still kept (`retention.metrics`, which charts
    read from raw results). A failure, and the first success after one (the recovery), stay
    until `retention.results`."""
    r = tables.check_results
    p, n = r.alias("previous"), r.alias("newer")
    previous = (
        select(p.c.status)
        .where(p.c.check_name == r.c.check_name, p.c.started_at < r.c.started_at)
        .order_by(p.c.started_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    enough_newer = (
        select(n.c.id)
        .where(n.c.check_name == r.c.check_name, n.c.started_at > r.c.started_at)
        .order_by(n.c.started_at)
        .limit(1)
        .offset(KEEP_LATEST - 1)
        .exists()
    )
    # The cheap tests first: the kept failures and metric-carrying rows an hourly pass meets
    # again never reach the subqueries.
    return and_(
        r.c.started_at < before,
        r.c.status == Status.UP.value,
        or_(
            r.c.metrics.is_(None),
            cast(r.c.metrics, Text) == "null",
            r.c.started_at < metrics_before,
        ),
        func.coalesce(previous, Status.UP.value) == Status.UP.value,
        enough_newer,
    )
