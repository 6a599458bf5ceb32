"""Metric rules: `metric op threshold` held `for` a while opens an alert (Prometheus-style).

The state machine per series is pure (`RuleSeries.step`); `RuleEngine` feeds it the latest
samples, evaluates on a tick and on new samples, and turns its decisions into alert lifecycle
changes. Time always comes from the injected clock.

Series whose condition holds are stored (`store/rule_pending.py`) when they start and stop
holding, never per sample, so a restart continues a `for` wait where it was.

A write that fails is one of two kinds. Storage unavailable (the database is down, locked,
unreachable): the change is kept and retried with backoff, and the outage is logged once
when it starts and once when it ends. Data refused (text the database cannot hold, e.g. a
label with a NUL from a check's output): retrying cannot help, so the series is marked
failed with one error naming the rule and the series, and is tried again only when its
value changes (a different label set is a different series).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from watchkeeper.alerting import lifecycle
from watchkeeper.alerting.broken import BrokenObjects, Key
from watchkeeper.alerting.matchers import Matcher, matches_all
from watchkeeper.alerting.rule_config import _OPS, RuleConfig
from watchkeeper.core.clock import Clock
from watchkeeper.core.domain import Severity
from watchkeeper.core.durations import format_duration
from watchkeeper.core.loops import run_timed
from watchkeeper.store import alerts as alert_store
from watchkeeper.store.database import Database
from watchkeeper.store.errors import refused_data
from watchkeeper.store.rule_pending import PendingSeries, load_pending, write_pending

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Decision:
    fire: Severity | None = None
    resolve: bool = False


@dataclass(frozen=True, slots=True)
class Refused:
    """A change of a series' alert that the database refused."""

    value: float | None
    """The value at the time: the change is tried again when the value is another."""
    stored: Severity | None
    """The alert as stored (firing at this severity, or not open), which the change was to
    leave."""
    reason: str


@dataclass(slots=True)
class RuleSeries:
    """Pending → firing → (keep_firing_for) → resolved, for one rule and one label set."""

    labels: dict[str, str]
    value: float | None = None
    sampled_at: datetime | None = None
    active_since: datetime | None = None
    cleared_since: datetime | None = None
    firing: Severity | None = None
    refused: Refused | None = None
    """Set while the latest change of its alert was refused (the API shows it `failed`)."""

    def state(self) -> str:
        if self.firing is not None:
            return "firing"
        return "pending" if self.active_since is not None else "inactive"

    def step(self, rule: RuleConfig, now: datetime) -> Decision:
        fresh = self.sampled_at is not None and now - self.sampled_at <= rule.stale_after
        if fresh and self.value is None:
            # Restored after a restart, no sample since: nothing is known yet, so nothing
            # changes until a sample arrives or the series goes stale.
            return Decision()
        level = None
        if fresh and self.value is not None:
            compare = _OPS[rule.op]
            level = next((sev for sev, limit in rule.levels() if compare(self.value, limit)), None)
        if level is not None:
            self.cleared_since = None
            if self.active_since is None:
                self.active_since = now
            if now - self.active_since >= rule.for_ and self.firing is not level:
                self.firing = level
                return Decision(fire=level)
            return Decision()
        self.active_since = None
        if self.firing is None:
            return Decision()
        if self.cleared_since is None:
            self.cleared_since = now
        if now - self.cleared_since >= rule.keep_firing_for:
            self.firing, self.cleared_since = None, None
            return Decision(resolve=True)
        return Decision()

    def next_due(self, rule: RuleConfig) -> datetime | None:
        """When this series may change without a new sample."""
        times = []
        if self.active_since is not None and self.firing is None and self.value is not None:
            times.append(self.active_since + rule.for_)
        if self.cleared_since is not None:
            times.append(self.cleared_since + rule.keep_firing_for)
        if self.sampled_at is not None and (self.firing or self.active_since):
            times.append(self.sampled_at + rule.stale_after)
        return min(times) if times else None


_SERIES = re.compile(r"^(?P<name>[^{]+)(?:\{(?P<labels>.*)\})?$")
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def parse_series(key: str) -> tuple[str, dict[str, str]]:
    """`system.disk.percent{path="/"}` → ("system.disk.percent", {"path": "/"})."""
    match = _SERIES.match(key.strip())
    if not match:
        return key, {}
    labels = dict(_LABEL.findall(match.group("labels") or ""))
    return match.group("name"), labels


def series_key(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def rule_fingerprint(rule: str, labels: dict[str, str]) -> str:
    # surrogatepass: labels from a check's output may hold text that is not valid UTF-8.
    digest = hashlib.sha256(series_key(labels).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"rule:{rule}:{digest}"


@dataclass(slots=True)
class _Rule:
    config: RuleConfig
    matchers: list[Matcher]
    series: dict[str, RuleSeries] = field(default_factory=dict)


class RuleEngine:
    """Holds the latest sample of every series a rule watches and evaluates the rules."""

    def __init__(
        self,
        db: Database,
        rules: list[RuleConfig],
        clock: Clock,
        on_change: Callable[[], None] = lambda: None,
        tick: float = 15.0,
        broken: BrokenObjects | None = None,
        on_fire: Callable[[RuleConfig, dict[str, str]], None] = lambda _rule, _labels: None,
    ) -> None:
        self._broken = broken if broken is not None else BrokenObjects()
        self._db = db
        self._clock = clock
        self._on_change = on_change
        self._on_fire = on_fire
        """Told each time a rule's alert fires (or changes severity): its `recovery:` runs."""
        self._tick = tick
        self._rules = [_Rule(r, r.parsed_matchers()) for r in rules]
        self._by_metric: dict[str, list[_Rule]] = {}
        self.metrics: frozenset[str] = frozenset()
        """Metric names some rule watches: everything else is ignored cheaply."""
        self._index()
        self._wake = asyncio.Event()
        # Evaluation and rule changes take turns, so a removed rule never fires afterwards.
        self._lock = asyncio.Lock()
        # Changes to the stored series not written yet (kept when a write fails).
        self._save: dict[tuple[str, str], PendingSeries] = {}
        self._drop: dict[tuple[str, str], dict[str, str]] = {}
        self._drop_rules: set[str] = set()
        self._outage: _Outage | None = None
        """Set while storage is unavailable: when writes are tried again."""

    def _index(self) -> None:
        by_metric: dict[str, list[_Rule]] = {}
        for rule in self._rules:
            by_metric.setdefault(rule.config.metric, []).append(rule)
        self._by_metric = by_metric
        self.metrics = frozenset(by_metric)

    def load(self, rules: list[RuleConfig]) -> None:
        """Take the rules to evaluate before the engine runs (the runtime builds the engine
        before the API-managed rules are read)."""
        self._rules = [_Rule(r, r.parsed_matchers()) for r in rules]
        self._index()

    @property
    def names(self) -> list[str]:
        return [r.config.name for r in self._rules]

    async def put(self, config: RuleConfig) -> None:
        """Add a rule, or replace the one with its name. A replaced rule that watches the same
        series keeps their state (a firing series resolves if the new rule clears it);
        otherwise its open alerts resolve and it starts afresh."""
        async with self._lock:
            rule = _Rule(config, config.parsed_matchers())
            old = next((r for r in self._rules if r.config.name == config.name), None)
            if old is None:
                self._rules = [*self._rules, rule]
            else:
                same = (old.config.metric, old.config.matchers) == (config.metric, config.matchers)
                if same:
                    rule.series = old.series
                else:
                    await self._resolve_all(config.name, "rule changed")
                    self._forget_stored(config.name)
                self._rules = [rule if r is old else r for r in self._rules]
            self._index()
            await self._write_changes()
        self._wake.set()

    async def remove(self, name: str, comment: str = "rule deleted") -> bool:
        """Stop evaluating a rule and resolve its open alerts; False if there is none."""
        async with self._lock:
            if name not in self.names:
                return False
            await self._resolve_all(name, comment)
            self._rules = [r for r in self._rules if r.config.name != name]
            self._index()
            self._forget_stored(name)
            await self._write_changes()
        return True

    def _forget_stored(self, rule: str) -> None:
        self._drop_rules.add(rule)
        for changes in (self._save, self._drop):
            for key in [k for k in changes if k[0] == rule]:
                del changes[key]

    def _holds(self, rule: str, series: RuleSeries) -> None:
        """`series` started to hold its condition: store when."""
        assert series.active_since is not None
        key = (rule, series_key(series.labels))
        self._drop.pop(key, None)
        self._save[key] = PendingSeries(
            rule, series.labels, series.active_since, series.sampled_at or series.active_since
        )

    def _released(self, rule: str, series: RuleSeries) -> None:
        """`series` stopped holding its condition: forget its stored start."""
        key = (rule, series_key(series.labels))
        self._save.pop(key, None)
        self._drop[key] = series.labels

    async def _write_changes(self) -> None:
        save, drop, drop_rules = dict(self._save), dict(self._drop), set(self._drop_rules)
        if not (save or drop or drop_rules):
            return
        try:
            await write_pending(
                self._db,
                list(save.values()),
                [(key[0], labels) for key, labels in drop.items()],
                drop_rules=sorted(drop_rules),
            )
        except Exception as exc:
            if not refused_data(exc):
                self._unavailable(exc)  # kept, and written with the next change
                return
            await self._write_apart(save, drop)
            return
        self._available()
        self._written(save, drop)
        self._drop_rules -= drop_rules

    async def _write_apart(
        self,
        save: dict[tuple[str, str], PendingSeries],
        drop: dict[tuple[str, str], dict[str, str]],
    ) -> None:
        """The pending state written series by series, after the database refused it as a
        whole: the series it refuses are not kept (their `for` wait then starts afresh after
        a restart), so one bad series never holds up the others'."""
        drop_rules = set(self._drop_rules)
        changes: list[tuple[tuple[str, str], PendingSeries | None, dict[str, str]]] = [
            *((key, pending, pending.labels) for key, pending in save.items()),
            *((key, None, labels) for key, labels in drop.items()),
        ]
        try:
            await write_pending(self._db, [], [], drop_rules=sorted(drop_rules))
            self._drop_rules -= drop_rules
            for key, pending, labels in changes:
                try:
                    if pending is not None:
                        await write_pending(self._db, [pending], [])
                    else:
                        await write_pending(self._db, [], [(key[0], labels)])
                except Exception as exc:
                    if not refused_data(exc):
                        raise
                    log.error(
                        "rule %s: the pending state of series %s cannot be stored (%s); "
                        "it is not kept across a restart",
                        key[0],
                        _shown(labels),
                        _reason(exc),
                    )
                self._written(*(({key: pending}, {}) if pending else ({}, {key: labels})))
        except Exception as exc:
            self._unavailable(exc)
            return
        self._available()

    def _written(
        self,
        save: dict[tuple[str, str], PendingSeries],
        drop: dict[tuple[str, str], dict[str, str]],
    ) -> None:
        for changes, written in ((self._save, save), (self._drop, drop)):
            for key, value in written.items():
                if changes.get(key) is value:
                    del changes[key]

    def _unavailable(self, exc: BaseException) -> None:
        """Storage did not answer: back off, and say so once per outage."""
        now = self._clock.now()
        if self._outage is None:
            log.warning(
                "storage unavailable (%s): rule alerts and pending series are kept and "
                "retried until it answers",
                _reason(exc),
            )
            self._outage = _Outage(since=now, delay=RETRY_FIRST)
        else:
            self._outage.delay = min(self._outage.delay * 2, RETRY_MAX)
        self._outage.retry_at = now + timedelta(seconds=self._outage.delay)

    def _available(self) -> None:
        if self._outage is not None:
            log.warning(
                "storage answers again after %s: rule alerts held meanwhile are stored",
                format_duration(self._clock.now() - self._outage.since),
            )
            self._outage = None

    def _waiting(self, now: datetime) -> bool:
        """In an outage, before its next retry: writes wait."""
        return self._outage is not None and now < self._outage.retry_at

    async def persist(self) -> None:
        """Store the latest sample time of every holding series (at shutdown), so a restart
        can tell whether they went stale meanwhile."""
        async with self._lock:
            for rule in self._rules:
                for series in rule.series.values():
                    if series.active_since is not None:
                        self._holds(rule.config.name, series)
            await self._write_changes()

    async def _resolve_all(self, name: str, comment: str) -> None:
        now = self._clock.now()
        async with self._db.begin() as conn:
            for fingerprint in await alert_store.open_fingerprints(conn, "rule", rule=name):
                await lifecycle.resolve(conn, fingerprint, now, comment=comment)
        self._on_change()

    def observe(self, metric: str, labels: dict[str, str], value: float, at: datetime) -> None:
        rules = self._by_metric.get(metric)
        if not rules:
            return
        key = series_key(labels)
        for rule in rules:
            if not matches_all(rule.matchers, labels):
                continue
            series = rule.series.get(key)
            if series is None:
                series = rule.series[key] = RuleSeries(dict(labels))
            if series.sampled_at is None or at >= series.sampled_at:
                series.value, series.sampled_at = value, at
        self._wake.set()

    def observe_result_metrics(self, check: str, metrics: dict[str, float], at: datetime) -> None:
        """Feed the metrics of a check result (`name` or `name{label="v"}` keys)."""
        for key, value in metrics.items():
            name, labels = parse_series(key)
            if name in self._by_metric:
                self.observe(name, {"check": check, **labels}, value, at)

    async def restore(self) -> None:
        """Mark the series of open rule alerts as firing, so they resolve when they clear, and
        put pending series back with the time their condition started to hold.

        A restored series holds its state until its first sample: one that still breaches
        continues the `for` wait (or keeps the alert firing), one that does not clears it.
        A pending series whose latest known sample is older than `stale_after` is dropped.
        """
        async with self._db.connect() as conn:
            rows = await alert_store.open_rule_alerts(conn)
        by_name = {r.config.name: r for r in self._rules}
        for row in rows:
            rule = by_name.get(row.rule_name)
            if rule is None:
                continue
            labels = {
                k: v
                for k, v in (row.labels or {}).items()
                if k not in ("rule", "severity", *rule.config.labels)
            }
            series = rule.series.setdefault(series_key(labels), RuleSeries(labels))
            series.firing = Severity(row.severity)
            series.active_since = series.sampled_at = self._clock.now()

        now = self._clock.now()
        for stored in await load_pending(self._db):
            rule = by_name.get(stored.rule)
            key = series_key(stored.labels)
            if rule is None or not matches_all(rule.matchers, stored.labels):
                self._drop[(stored.rule, key)] = stored.labels  # rule gone or changed
                continue
            firing = rule.series.get(key)
            if firing is not None:  # restored above
                firing.active_since = stored.active_since
            elif now - stored.sampled_at > rule.config.stale_after:
                self._drop[(stored.rule, key)] = stored.labels  # went stale meanwhile
            else:
                rule.series[key] = RuleSeries(
                    dict(stored.labels),
                    sampled_at=stored.sampled_at,
                    active_since=stored.active_since,
                )
        await self._write_changes()

    def snapshot(self) -> list[dict[str, Any]]:
        """Rules with the state of each series, for the API."""
        out = []
        for rule in self._rules:
            out.append(
                {
                    "name": rule.config.name,
                    "metric": rule.config.metric,
                    "op": rule.config.op,
                    "levels": {s.value: v for s, v in rule.config.levels()},
                    "for": format_duration(rule.config.for_),
                    "broken": self._broken.error("rule", rule.config.name),
                    "series": [
                        {
                            "labels": s.labels,
                            "value": s.value,
                            "sampled_at": s.sampled_at,
                            "state": "failed" if s.refused else s.state(),
                            "error": s.refused.reason if s.refused else None,
                            "severity": s.firing.value if s.firing else None,
                            "active_since": s.active_since,
                        }
                        for s in rule.series.values()
                    ],
                }
            )
        return out

    async def evaluate(self) -> datetime | None:
        """Step every series now; apply decisions; return the next instant worth a look."""
        async with self._lock:
            return await self._evaluate()

    async def _evaluate(self) -> datetime | None:
        now = self._clock.now()
        due: list[datetime] = []
        changed = False
        found: dict[Key, BaseException] = {}
        for rule in self._rules:
            try:
                changed = await self._evaluate_rule(rule, now, due) or changed
            except Exception as exc:  # one rule that cannot be evaluated stops no other
                found[("rule", rule.config.name)] = exc
        self._broken.update("rules", found, now)
        if not self._waiting(now):
            await self._write_changes()
        if changed:
            self._on_change()
        if self._outage is not None:
            # Held changes are due again now, but no write is tried before the retry.
            due = [max(when, self._outage.retry_at) for when in due] + [self._outage.retry_at]
        return min(due) if due else None

    async def _evaluate_rule(self, rule: _Rule, now: datetime, due: list[datetime]) -> bool:
        """Step each series of one rule; True when an alert changed."""
        changed = False
        for key, series in list(rule.series.items()):
            refused = series.refused
            if refused is not None and series.value != refused.value:
                series.firing = refused.stored  # a new value: decide (and store) again
            held = series.active_since is not None
            before = (series.firing, series.cleared_since)
            decision = series.step(rule.config, now)
            if not held and series.active_since is not None:
                self._holds(rule.config.name, series)
            elif held and series.active_since is None:
                self._released(rule.config.name, series)
            if decision.fire is not None or decision.resolve:
                if self._waiting(now) or not await self._apply(
                    rule.config, series, decision, before[0], now
                ):
                    # Not stored: the series stays as stored and decides again later.
                    series.firing, series.cleared_since = before
                else:
                    changed = True
            elif refused is not None and series.value != refused.value:
                series.refused = None  # its alert is as stored: nothing left to store
            if (when := series.next_due(rule.config)) is not None:
                due.append(when)
            elif series.state() == "inactive" and (
                series.sampled_at is None or now - series.sampled_at > rule.config.stale_after
            ):
                del rule.series[key]  # forget series that stopped reporting
        return changed

    async def _apply(
        self,
        rule: RuleConfig,
        series: RuleSeries,
        decision: Decision,
        stored: Severity | None,
        now: datetime,
    ) -> bool:
        """Fire or resolve the series' alert. True when done or refused for good (the series
        is then marked failed); False when storage is unavailable (tried again later)."""
        try:
            if decision.fire is not None:
                await self._fire(rule, series, decision.fire, now)
            else:
                await self._resolve(rule, series, now)
        except Exception as exc:
            if not refused_data(exc):
                self._unavailable(exc)
                return False
            if series.refused is None:
                log.error(
                    "rule %s: the database refuses the alert of series %s (%s); the series is "
                    "marked failed and tried again when its value changes",
                    rule.name,
                    _shown(series.labels),
                    _reason(exc),
                )
            series.refused = Refused(series.value, stored, _reason(exc))
            return True
        self._available()
        if series.refused is not None:
            log.info(
                "rule %s: the alert of series %s is stored now", rule.name, _shown(series.labels)
            )
            series.refused = None
        return True

    async def _fire(
        self, rule: RuleConfig, series: RuleSeries, severity: Severity, now: datetime
    ) -> None:
        labels = {**series.labels, **rule.labels, "rule": rule.name, "severity": severity.value}
        limit = dict(rule.levels()).get(severity)
        shown = ",".join(f'{k}="{v}"' for k, v in sorted(series.labels.items()))
        summary = rule.summary or (
            f"{rule.metric}{{{shown}}} is {series.value:g} ({rule.op} {limit:g}"
            + (f" for {format_duration(rule.for_)})" if rule.for_ else ")")
        )
        spec = lifecycle.AlertSpec(
            fingerprint=rule_fingerprint(rule.name, series.labels),
            name=rule.name,
            severity=severity,
            summary=summary,
            labels=labels,
            source="rule",
            rule=rule.name,
            escalation_policy=rule.escalation,
        )
        async with self._db.begin() as conn:
            await lifecycle.fire(conn, spec, now)
        log.info("rule %s firing (%s): %s", rule.name, severity.value, summary)
        try:
            self._on_fire(rule, labels)
        except Exception:
            log.exception("rule %s: acting on its alert failed", rule.name)

    async def _resolve(self, rule: RuleConfig, series: RuleSeries, now: datetime) -> None:
        async with self._db.begin() as conn:
            await lifecycle.resolve(
                conn, rule_fingerprint(rule.name, series.labels), now, comment="condition cleared"
            )
        log.info("rule %s resolved for %s", rule.name, series_key(series.labels))

    async def run(self) -> None:
        await run_timed(
            self.evaluate, self._wake, self._clock, idle=self._tick, what="evaluating rules"
        )


RETRY_FIRST = 1.0
"""Seconds before the first retry when storage is unavailable; doubled up to RETRY_MAX."""
RETRY_MAX = 60.0


@dataclass(slots=True)
class _Outage:
    since: datetime
    delay: float
    retry_at: datetime = field(default_factory=lambda: datetime.min.replace(tzinfo=UTC))


def _shown(labels: dict[str, str]) -> str:
    """A series for a log line, with odd characters (NUL, invalid UTF-8) escaped."""
    return ascii(series_key(labels)) if labels else "{}"


def _reason(exc: BaseException) -> str:
    """An error in one line, without the SQL statement SQLAlchemy appends."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).splitlines()
    return f"{type(orig or exc).__name__}: {text[0] if text else ''}"
