"""Stored objects that cannot be evaluated: marked broken, ignored, and said out loud.

Fail-open: an evaluator (the dispatcher's stages, heartbeats, rules) handles one object at a
time, and one that raises (a stored duration from before validation existed, a schedule that
never fires) is reported here and treated as absent, so alerts are paged rather than
silenced. Each owner reports, after each pass, the full set it found broken; the state lives
in memory and is recomputed pass after pass (no migration, nothing stale after a fix).

A newly broken object is logged once (not on every pass), shows in `/health` as a `warn`
component and in its API object, and raises one self-alert (source `watchkeeper`,
fingerprint `watchkeeper:broken:<kind>:<name>`) through the usual alert lifecycle, so it is
paged like any other alert and resolves by itself once the object evaluates again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from watchkeeper.alerting import lifecycle
from watchkeeper.core.domain import Severity
from watchkeeper.store import alerts as alert_store
from watchkeeper.store.database import Database

log = logging.getLogger(__name__)

SOURCE = "watchkeeper"
ALERT_NAME = "WatchkeeperObjectBroken"
_PREFIX = "watchkeeper:broken:"
_MAX_ERROR = 300


def fingerprint(kind: str, name: str) -> str:
    """The self-alert's fingerprint for a broken object."""
    return f"{_PREFIX}{kind}:{name}"[:255]


def describe(exc: BaseException) -> str:
    """An exception in one short line (type and first line of its message)."""
    lines = str(exc).splitlines()
    text = f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 1] + "…"


@dataclass(frozen=True, slots=True)
class Broken:
    kind: str
    """`maintenance`, `silence`, `escalation_policy`, `heartbeat`, `rule`, `check`, `alert`."""
    name: str
    error: str
    since: datetime


Key = tuple[str, str]


class BrokenObjects:
    """What each owner found broken on its last pass, and the self-alerts that say so."""

    def __init__(self, redact: Callable[[str], str] = lambda text: text) -> None:
        self._by_owner: dict[str, dict[Key, Broken]] = {}
        self._redact = redact
        self._alerted: set[Key] | None = None
        """Keys whose self-alert is open (None: not read from the database yet)."""
        self.on_change: Callable[[], None] = lambda: None
        """Called when the set changes (the runtime wakes the dispatcher to page it)."""

    # -- reporting ---------------------------------------------------------------------------

    def update(
        self,
        owner: str,
        found: Mapping[Key, BaseException | str],
        now: datetime,
        *,
        logged: bool = False,
    ) -> None:
        """`owner`'s pass found exactly `found` broken (every other object of its is fine).

        `logged`: the owner has already logged each newly broken object."""
        before = self._by_owner.get(owner, {})
        after: dict[Key, Broken] = {}
        for key, error in found.items():
            kept = before.get(key)
            text = self._redact(error if isinstance(error, str) else describe(error))
            after[key] = kept if kept is not None else Broken(key[0], key[1], text, now)
            if kept is None and not logged:
                log.error(
                    "%s %r cannot be evaluated and is ignored until fixed: %s",
                    key[0],
                    key[1],
                    text,
                )
        for key in before.keys() - after.keys():
            log.info("%s %r evaluates again", *key)
        self._by_owner[owner] = after
        if before.keys() != after.keys():
            self.on_change()

    def get(self, kind: str, name: str) -> Broken | None:
        for found in self._by_owner.values():
            if (hit := found.get((kind, name))) is not None:
                return hit
        return None

    def error(self, kind: str, name: str) -> str | None:
        """Why the object is broken, or None when it is not."""
        hit = self.get(kind, name)
        return hit.error if hit is not None else None

    def all(self) -> list[Broken]:
        merged: dict[Key, Broken] = {}
        for found in self._by_owner.values():
            for key, broken in found.items():
                merged.setdefault(key, broken)
        return sorted(merged.values(), key=lambda b: (b.kind, b.name))

    # -- self-alerts -------------------------------------------------------------------------

    async def sync_alerts(self, db: Database, now: datetime) -> None:
        """Open a self-alert for each newly broken object; resolve those that evaluate again.

        Called by the dispatcher before each pass, so the alert is paged in that pass."""
        current = {(b.kind, b.name): b for b in self.all()}
        if self._alerted is None:
            self._alerted = await _open_self_alerts(db)
        for key in current.keys() - self._alerted:
            broken = current[key]
            spec = lifecycle.AlertSpec(
                fingerprint=fingerprint(*key),
                name=ALERT_NAME,
                severity=Severity.HIGH,
                summary=(
                    f"{broken.kind} {broken.name!r} cannot be evaluated and is ignored "
                    f"until fixed: {broken.error}"
                )[:1000],
                labels={
                    "alertname": ALERT_NAME,
                    "kind": broken.kind,
                    "object": broken.name,
                    "severity": Severity.HIGH.value,
                },
                source=SOURCE,
            )
            async with db.begin() as conn:
                await lifecycle.fire(conn, spec, now)
            self._alerted.add(key)
        for key in self._alerted - current.keys():
            async with db.begin() as conn:
                await lifecycle.resolve(conn, fingerprint(*key), now, comment="evaluates again")
            self._alerted.discard(key)


async def _open_self_alerts(db: Database) -> set[Key]:
    """Self-alerts left open by an earlier run (resolved at the first sync if now fine)."""
    async with db.connect() as conn:
        fingerprints = await alert_store.open_fingerprints(conn, SOURCE, prefix=_PREFIX)
    keys: set[Key] = set()
    for found in fingerprints:
        kind, _, name = found.removeprefix(_PREFIX).partition(":")
        keys.add((kind, name))
    return keys
