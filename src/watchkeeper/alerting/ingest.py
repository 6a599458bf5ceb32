"""Taking in alerts posted by other systems, at the rate Prometheus re-sends them.

Prometheus re-sends every firing alert each evaluation: almost every post says what is known
already. `AlertIngest` keeps an index of the open posted alerts by fingerprint (rebuilt from
the database at start), so such a re-post touches no row: its last-seen time and `endsAt` go
to a batch that `run` writes every `flush_every` seconds (and `stop` writes at the end). New,
changed and resolved alerts of one request are written in one transaction with set-based
statements (an INSERT that skips a fingerprint a concurrent request opened first, then one
read of what is open), so identical alerts posted at once make one alert and no error.

The index is a cache of the database, never the truth: a resolution elsewhere (by hand, by
expiry, by another node) drops the entry (`forget`, or the next flush finds the row closed),
and the next re-post opens the alert again.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from watchkeeper.alerting.lifecycle import AlertSpec
from watchkeeper.core.clock import Clock
from watchkeeper.core.domain import Alert, AlertEventKind, AlertStatus, Severity
from watchkeeper.store import alerts as alert_store
from watchkeeper.store.conflicts import retrying
from watchkeeper.store.database import Database

log = logging.getLogger(__name__)

FLUSH_EVERY = 1.0
"""Seconds between writes of the re-posted alerts' last-seen times."""
REMEMBERED_RESOLVED = 100_000
"""Fingerprints known to be resolved: a resolved alert re-sent again costs nothing either."""


@dataclass(slots=True)
class _Open:
    """What the index knows of one open posted alert."""

    id: str
    severity: Severity
    annotations: dict[str, str]
    generator_url: str | None
    seen: datetime
    ends_at: datetime | None

    def same(self, spec: AlertSpec) -> bool:
        return (
            self.severity is spec.severity
            and self.annotations == spec.annotations
            and self.generator_url == spec.generator_url
        )


@dataclass(frozen=True, slots=True)
class Taken:
    """What a post did: the alert id of each of its items (None: a resolution of nothing
    open), and whether anything changed (someone must decide who hears it)."""

    ids: list[str | None]
    changed: bool
    touched: list[str] = field(default_factory=list)
    """Ids of the alerts written in this request (new, changed or resolved)."""
    created: list[Alert] = field(default_factory=list)
    """The alerts this request opened, as stored (its own objects: nothing else holds them)."""


class AlertIngest:
    """The write path of posted alerts (see the module's docstring)."""

    def __init__(self, db: Database, clock: Clock, *, flush_every: float = FLUSH_EVERY) -> None:
        self._db = db
        self._clock = clock
        self._flush_every = flush_every
        self._open: dict[str, _Open] = {}
        self._dirty: dict[str, _Open] = {}
        """Re-posted since the last flush, by fingerprint."""
        self._resolved: OrderedDict[str, None] = OrderedDict()
        self.flushed = asyncio.Event()
        """Set by each flush that wrote something (clear it to wait for the next)."""
        self._pending = asyncio.Event()
        """Set while re-posts wait for the flush."""

    # -- what other parts ask ------------------------------------------------------------

    async def load(self) -> None:
        """Rebuild the index from the database's open posted alerts."""
        async with self._db.connect() as conn:
            alerts = await alert_store.open_posted(conn)
        self._open = {a.fingerprint: _entry(a) for a in alerts}
        self._dirty.clear()
        self._resolved.clear()

    def latest(self, fingerprint: str) -> tuple[datetime, datetime | None] | None:
        """(last seen, ends_at) of an open posted alert as last re-sent (the database may
        not have it yet); None if the index has no such alert."""
        entry = self._open.get(fingerprint)
        return None if entry is None else (entry.seen, entry.ends_at)

    def forget(self, fingerprint: str) -> None:
        """The alert was resolved elsewhere: the next post of it opens it again."""
        self._open.pop(fingerprint, None)
        self._dirty.pop(fingerprint, None)

    @property
    def pending(self) -> int:
        """Re-posts not written yet."""
        return len(self._dirty)

    # -- a post ----------------------------------------------------------------------------

    async def take(self, items: Sequence[tuple[AlertSpec, bool]]) -> Taken:
        """Apply one request's alerts ((spec, firing) each, in the body's order; the last
        of one fingerprint wins)."""
        now = self._clock.now()
        latest: dict[str, tuple[AlertSpec, bool]] = {}
        for spec, firing in items:
            latest[spec.fingerprint] = (spec, firing)
        to_write: list[AlertSpec] = []
        to_resolve: list[str] = []
        for fp, (spec, firing) in latest.items():
            entry = self._open.get(fp)
            if firing:
                if entry is not None and entry.same(spec):
                    entry.seen, entry.ends_at = now, spec.ends_at
                    self._dirty[fp] = entry
                    self._pending.set()
                else:
                    to_write.append(spec)
            elif entry is not None or fp not in self._resolved:
                to_resolve.append(fp)
        touched: list[str] = []
        created: list[Alert] = []
        if to_write or to_resolve:
            opened, closed, new_ids = await retrying(lambda: self._write(to_write, to_resolve, now))
            for fp, alert in opened.items():
                self._resolved.pop(fp, None)
                self._dirty.pop(fp, None)
                self._open[fp] = _entry(alert)
                touched.append(alert.id)
                if alert.id in new_ids:
                    created.append(alert)
            for fp in to_resolve:
                self.forget(fp)
                self._remember_resolved(fp)
            touched.extend(closed.values())
        else:
            closed = {}
        ids: list[str | None] = []
        for spec, firing in items:
            if firing:
                entry = self._open.get(spec.fingerprint)
                ids.append(entry.id if entry is not None else None)
            else:
                ids.append(closed.get(spec.fingerprint))
        return Taken(ids=ids, changed=bool(to_write or closed), touched=touched, created=created)

    async def _write(
        self, firing: list[AlertSpec], resolving: list[str], now: datetime
    ) -> tuple[dict[str, Alert], dict[str, str], set[str]]:
        """One transaction: open or update `firing`, resolve `resolving`; (open alerts by
        fingerprint, resolved alert ids by fingerprint, ids of the alerts opened)."""
        # Rows are written in fingerprint order: two requests with the same alerts in other
        # orders wait for each other instead of deadlocking (PostgreSQL).
        firing = sorted(firing, key=lambda spec: spec.fingerprint)
        ids = _uuid7s(len(firing), now)
        fresh = {
            spec.fingerprint: _new_alert(spec, now, i) for spec, i in zip(firing, ids, strict=True)
        }

        async def work(conn: Any) -> tuple[dict[str, Alert], dict[str, str], set[str]]:
            # Everything it builds is its own: on a locked SQLite file it runs again.
            events: list[dict[str, Any]] = []
            updates: list[dict[str, Any]] = []
            inserted = await alert_store.insert_open_alerts(
                conn, [alert_store.alert_row(a) for a in fresh.values()]
            )
            # Open already (in another node's index, or a concurrent request's): read them.
            others = [fp for fp, a in fresh.items() if a.id not in inserted]
            current = await alert_store.open_by_fingerprint(conn, [*others, *resolving])
            opened: dict[str, Alert] = {}
            for spec in firing:
                mine = fresh[spec.fingerprint]
                if mine.id in inserted:
                    events.append(_event(mine.id, AlertEventKind.FIRING.value, now, spec.summary))
                    opened[spec.fingerprint] = mine
                else:
                    stored = current[spec.fingerprint]
                    updates.append(_changes(stored, spec, now, events))
                    opened[spec.fingerprint] = stored
            await alert_store.update_open(conn, sorted(updates, key=lambda row: row["id"]))
            to_close = {current[fp].id: fp for fp in resolving if fp in current}
            closed_ids = await alert_store.resolve_open(conn, list(to_close), now)
            for alert_id in closed_ids:
                events.append(_event(alert_id, AlertEventKind.RESOLVED.value, now, None))
            await alert_store.add_events(conn, events)
            return opened, {to_close[i]: i for i in closed_ids}, inserted

        # On SQLite, on the loop's own connection: no trip to aiosqlite's thread per
        # statement, which was most of a new alert's answer time (see Database.on_loop).
        return await self._db.on_loop(work)

    def _remember_resolved(self, fingerprint: str) -> None:
        self._resolved[fingerprint] = None
        self._resolved.move_to_end(fingerprint)
        while len(self._resolved) > REMEMBERED_RESOLVED:
            self._resolved.popitem(last=False)

    # -- the batched writes of re-posts --------------------------------------------------------

    async def flush(self) -> int:
        """Write the re-posted alerts' last-seen times and `endsAt`; how many."""
        if not self._dirty:
            return 0
        batch, self._dirty = self._dirty, {}
        rows = sorted((e.id, e.seen, e.ends_at) for e in batch.values())
        try:
            async with self._db.begin() as conn:
                closed = await alert_store.touch_open(conn, rows)
        except BaseException:
            for fp, entry in batch.items():  # written with the next flush
                self._dirty.setdefault(fp, entry)
            self._pending.set()
            raise
        for fp, entry in batch.items():
            if entry.id in closed and self._open.get(fp) is entry:
                self.forget(fp)
        self.flushed.set()
        return len(rows)

    async def run(self) -> None:
        """Flush `flush_every` seconds after the first re-post of a batch, until cancelled
        (idle, it waits for a re-post, not on the clock)."""
        never = asyncio.Event()
        while True:
            await self._pending.wait()
            await self._clock.wait(never, self._flush_every)
            self._pending.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("writing re-posted alerts failed; will retry")


def _entry(alert: Alert) -> _Open:
    return _Open(
        id=alert.id,
        severity=alert.severity,
        annotations=dict(alert.annotations),
        generator_url=alert.generator_url,
        seen=alert.updated_at or alert.started_at,
        ends_at=alert.ends_at,
    )


def _uuid7s(count: int, now: datetime) -> list[str]:
    """`count` time-ordered UUIDs (version 7, RFC 9562: `now` in Unix milliseconds, then
    random bits) as text, from one read of the system's randomness: a new alert's id.

    Time-ordered because the id is a key of three indexes (the alerts', their events' and
    their groups'): with random ids every batch of new alerts dirtied a random page of each
    index per alert, and writing those pages was a third of a new alert's cost (new alerts
    4,709/s → 7,090/s, 212 → 142 ms CPU per 1,000, same run). uuid4 one by one was a tenth
    of writing a batch, hence one read for all."""
    raw = bytearray(os.urandom(16 * count))
    stamp = int(now.timestamp() * 1000).to_bytes(6, "big")
    ids = []
    for at in range(0, 16 * count, 16):
        raw[at : at + 6] = stamp
        raw[at + 6] = raw[at + 6] & 0x0F | 0x70  # version 7
        raw[at + 8] = raw[at + 8] & 0x3F | 0x80  # RFC 9562 variant
        h = raw[at : at + 16].hex()
        ids.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return ids


def _new_alert(spec: AlertSpec, now: datetime, alert_id: str) -> Alert:
    return Alert(
        id=alert_id,
        fingerprint=spec.fingerprint,
        name=spec.name,
        check=spec.check,
        rule=spec.rule,
        severity=spec.severity,
        status=AlertStatus.FIRING,
        started_at=spec.starts_at or now,
        resolved_at=None,
        summary=spec.summary,
        labels=dict(spec.labels),
        source=spec.source,
        escalation_policy=spec.escalation_policy,
        updated_at=now,
        ends_at=spec.ends_at,
        annotations=dict(spec.annotations),
        generator_url=spec.generator_url,
    )


def _event(alert_id: str, kind: str, at: datetime, comment: str | None) -> dict[str, Any]:
    return {"alert_id": alert_id, "kind": kind, "at": at, "actor": None, "comment": comment}


def _changes(
    stored: Alert, spec: AlertSpec, now: datetime, events: list[dict[str, Any]]
) -> dict[str, Any]:
    """The row update of an open alert posted again (its summary stays the first cause's);
    a severity change is an event. Updates `stored` to match."""
    if stored.severity is not spec.severity:
        events.append(
            _event(stored.id, "severity", now, f"{stored.severity.value} → {spec.severity.value}")
        )
        stored.severity = spec.severity
        stored.labels = {**stored.labels, "severity": spec.severity.value}
    stored.annotations, stored.generator_url = dict(spec.annotations), spec.generator_url
    stored.updated_at, stored.ends_at = now, spec.ends_at
    return {
        "id": stored.id,
        "severity": stored.severity.value,
        "labels": stored.labels,
        "annotations": stored.annotations or None,
        "generator_url": stored.generator_url,
        "updated_at": now,
        "ends_at": spec.ends_at,
    }
