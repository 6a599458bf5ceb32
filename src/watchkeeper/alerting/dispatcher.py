"""Decides who hears about which alert, and when; the only writer of the outbox.

Level-triggered, like a Kubernetes controller: each pass reads the alerts that still owe a
notification and does what is due (first page after `group_wait`, escalation steps,
acknowledgement and resolution notices), each action in one transaction with its outbox
entries. Nothing is kept only in memory, so a restart picks up exactly where it stopped and
escalation timers keep their absolute deadlines.

The order of the stages is the order of `_plan`: suppression (dependencies, silences) →
grouping → escalation → acknowledgement → resolution.

Fail-open: each maintenance window, silence and escalation policy is evaluated on its own at
the start of a pass; one that raises is reported to `BrokenObjects` and left out of the pass
(a window or silence that cannot be evaluated silences nothing; an alert whose policy cannot
be evaluated is routed as if it had none). One alert that cannot be handled does not stop
the others.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from watchkeeper.alerting import lifecycle
from watchkeeper.alerting.broken import BrokenObjects, Key
from watchkeeper.alerting.config import AlertingConfig, EscalationPolicy
from watchkeeper.alerting.dependencies import DependencyGraph
from watchkeeper.alerting.inhibition import InhibitRule, inhibited_by
from watchkeeper.alerting.maintenance import MaintenanceWindow
from watchkeeper.alerting.routes import Route, route_channels
from watchkeeper.alerting.rule_config import RuleConfig
from watchkeeper.alerting.silences import Silence, list_silences
from watchkeeper.alerting.stored_windows import load_stored_windows
from watchkeeper.checks.base import CheckConfigBase
from watchkeeper.config.model import Config
from watchkeeper.core.checkstate import CheckState
from watchkeeper.core.clock import Clock
from watchkeeper.core.domain import Alert, AlertStatus, Status
from watchkeeper.core.loops import run_timed
from watchkeeper.notify.payload import alert_payload
from watchkeeper.notify.storm import ChannelLimit, StormGuard
from watchkeeper.store import alert_groups as group_store
from watchkeeper.store import alerts as alert_store
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store.database import Database
from watchkeeper.store.errors import from_storage

log = logging.getLogger(__name__)


_IDLE = 5.0  # seconds between passes when nothing is due (catches API changes too)


@dataclass(slots=True)
class Routing:
    """Where an alert goes when nobody configured an escalation policy."""

    channels: Sequence[str]
    by_check: Mapping[str, Sequence[str] | None] = field(default_factory=dict)
    by_rule: Mapping[str, Sequence[str] | None] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)

    def channels_for(self, alert: Alert) -> list[str]:
        """A check's or rule's own `notify` first, then the routing tree, then everyone."""
        routed = None
        if alert.check:
            routed = self.by_check.get(alert.check)
        elif alert.rule:
            routed = self.by_rule.get(alert.rule)
        if routed is None and self.routes:
            routed = route_channels(self.routes, alert.match_labels)
        return list(self.channels if routed is None else routed)


class Dispatcher:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        config: AlertingConfig,
        policies: Mapping[str, EscalationPolicy],
        routing: Routing,
        states: Mapping[str, CheckState] | None = None,
        dependencies: DependencyGraph | None = None,
        on_enqueued: Callable[[], None] = lambda: None,
        on_pass: Callable[[], None] = lambda: None,
        is_flapping: Callable[[str], bool] = lambda _check: False,
        maintenance: Sequence[MaintenanceWindow] = (),
        inhibit_rules: Sequence[InhibitRule] = (),
        limits: Mapping[str, ChannelLimit] | None = None,
        broken: BrokenObjects | None = None,
    ) -> None:
        self.broken = broken if broken is not None else BrokenObjects()
        self._unusable_policies: set[str] = set()
        """Policies that could not be evaluated this pass: alerts naming them route as if
        they named none."""
        self._storm = StormGuard(dict(limits or {}))
        self._is_flapping = is_flapping
        self._maintenance = list(maintenance)
        self._inhibit_rules = list(inhibit_rules)
        self._db = db
        self._clock = clock
        self._config = config
        self._policies = policies
        self._routing = routing
        self._states = states if states is not None else {}
        self._graph = dependencies or DependencyGraph({})
        self._on_enqueued = on_enqueued
        self._on_pass = on_pass
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    def reconfigure(
        self,
        *,
        checks: Iterable[CheckConfigBase],
        rules: Iterable[RuleConfig],
        policies: Iterable[EscalationPolicy],
    ) -> None:
        """Take in the checks, rules and escalation policies as they are now (the config
        file's and those managed over the API): the next pass routes and escalates by them."""
        checks = list(checks)
        self._policies = {p.name: p for p in policies}
        self._routing.by_check = {c.name: c.notify for c in checks}
        self._routing.by_rule = {r.name: r.notify for r in rules}
        self._graph = DependencyGraph({c.name: list(c.depends_on) for c in checks})
        self.wake()

    async def run(self) -> None:
        await run_timed(
            self._dispatch_and_tell,
            self._wake,
            self._clock,
            idle=_IDLE,
            what="dispatching notifications",
        )

    async def _dispatch_and_tell(self) -> datetime | None:
        try:
            return await self.dispatch_once()
        finally:
            # Every alert change wakes the dispatcher, so after its pass live views see
            # alerts with their suppression decided.
            self._on_pass()

    # -- one pass -------------------------------------------------------------------------

    async def dispatch_once(self) -> datetime | None:
        """Do everything due now; return when the next thing falls due (None: nothing)."""
        now = self._clock.now()
        try:
            await self.broken.sync_alerts(self._db, now)
        except Exception:
            log.exception("raising or resolving alerts about broken objects failed")
        found: dict[Key, BaseException | str] = {}
        async with self._db.connect() as conn:
            alerts = await alert_store.dispatchable(conn)
            groups = await group_store.load(conn)
        silences = await list_silences(self._db, include_expired_since=now)
        for silence in silences:
            if silence.error is not None:
                found[("silence", silence.id)] = silence.error
        stored = await load_stored_windows(self._db)
        for bad in (w for w in stored if w.window is None):
            found[("maintenance", bad.name)] = bad.error or "invalid"
        wakeups: list[datetime] = []
        queued = 0
        windows = self._active_windows(
            [*self._maintenance, *(w.window for w in stored if w.window is not None)],
            now,
            wakeups,
            found,
        )
        self._unusable_policies = {
            name for name, policy in self._policies.items() if not _usable(policy, now, found)
        }

        # Inhibition sources: what is firing right now (before this pass's own decisions).
        firing = [a.match_labels for a in alerts if a.status is not AlertStatus.RESOLVED]
        pending: dict[str, list[Alert]] = {}
        for alert in alerts:
            # Each alert is checked against every silence and window: with thousands of
            # each that is seconds of CPU, so the loop (probes, the API's transactions) gets
            # its turn between alerts rather than after the pass.
            await asyncio.sleep(0)
            try:
                queued += await self._handle(
                    alert, silences, windows, firing, now, wakeups, pending, found
                )
            except Exception as exc:
                if _refused_by_storage(exc):
                    raise
                found[("alert", alert.fingerprint)] = exc

        for key, members in pending.items():
            try:
                due = self._group_due(key, members, groups.get(key))
                if due <= now:
                    queued += await self._notify_firing(key, members, now)
                else:
                    wakeups.append(due)
            except Exception as exc:
                if _refused_by_storage(exc):
                    raise
                for alert in members:
                    found[("alert", alert.fingerprint)] = exc
        self.broken.update("dispatcher", found, now)
        digests, digest_wakeups = await self._storm.flush_digests(self._db, now)
        queued += digests
        wakeups.extend(digest_wakeups)
        if queued:
            self._on_enqueued()
        return min(wakeups) if wakeups else None

    async def _handle(
        self,
        alert: Alert,
        silences: list[Silence],
        windows: list[MaintenanceWindow],
        firing: list[dict[str, str]],
        now: datetime,
        wakeups: list[datetime],
        pending: dict[str, list[Alert]],
        found: dict[Key, BaseException | str],
    ) -> int:
        """One alert's stages, up to grouping (its first page is sent per group)."""
        queued = 0
        if self._expired(alert, now):
            async with self._db.begin() as conn:
                await lifecycle.resolve(
                    conn, alert.fingerprint, now, comment="auto-resolved: not re-sent"
                )
            alert.status = AlertStatus.RESOLVED
        elif (due := self._expires_at(alert)) is not None:
            wakeups.append(due)
        if alert.status is AlertStatus.RESOLVED:
            return queued + await self._notify_resolved(alert, now)
        await self._update_suppression(alert, silences, windows, firing, now, wakeups, found)
        if alert.suppressed_reason or alert.silenced_by:
            return queued
        if alert.notified_at is None:
            if alert.status is AlertStatus.FIRING:
                pending.setdefault(self._group_key(alert), []).append(alert)
            return queued
        if alert.status is AlertStatus.ACKNOWLEDGED:
            queued += await self._notify_acknowledged(alert, now)
        elif alert.next_escalation_at is not None:
            if alert.next_escalation_at <= now:
                queued += await self._escalate(alert, now)
            else:
                wakeups.append(alert.next_escalation_at)
        return queued

    @staticmethod
    def _active_windows(
        windows: list[MaintenanceWindow],
        now: datetime,
        wakeups: list[datetime],
        found: dict[Key, BaseException | str],
    ) -> list[MaintenanceWindow]:
        """The windows active now (each evaluated once per pass, on its own)."""
        active = []
        for window in windows:
            try:
                change = window.next_change(now)
                is_active = window.active_at(now)
            except Exception as exc:
                found[("maintenance", window.name)] = exc
                continue
            if change is not None:
                wakeups.append(change)
            if is_active:
                active.append(window)
        return active

    def _expires_at(self, alert: Alert) -> datetime | None:
        after = self._config.auto_resolve_after
        if after is None or alert.source != "external" or alert.status is AlertStatus.RESOLVED:
            return None
        return (alert.updated_at or alert.started_at) + after

    def _expired(self, alert: Alert, now: datetime) -> bool:
        due = self._expires_at(alert)
        return due is not None and due <= now

    # -- suppression ----------------------------------------------------------------------

    async def _update_suppression(
        self,
        alert: Alert,
        silences: list[Silence],
        windows: list[MaintenanceWindow],
        firing: list[dict[str, str]],
        now: datetime,
        wakeups: list[datetime],
        found: dict[Key, BaseException | str],
    ) -> None:
        """`windows`: those active now (see `_active_windows`)."""
        reason = None
        labels = alert.match_labels
        if alert.check and alert.notified_at is None:
            blocker = self._graph.first_blocker(alert.check, self._is_down)
            if blocker:
                reason = f"suppressed: {blocker} down"
            elif self._is_flapping(alert.check):
                reason = "suppressed: flapping"
        for window in windows:
            if reason is not None or ("maintenance", window.name) in found:
                continue
            try:
                if window.covers(labels):
                    reason = f"suppressed: maintenance {window.name}"
            except Exception as exc:
                found[("maintenance", window.name)] = exc
        if reason is None and self._inhibit_rules:
            source = inhibited_by(self._inhibit_rules, labels, firing)
            if source is not None:
                reason = f"suppressed: inhibited by {source.get('alertname', 'another alert')}"
        silenced_by = None
        for silence in silences:
            if ("silence", silence.id) in found:
                continue
            try:
                silences_it = silence.silences(labels, now)
            except Exception as exc:
                found[("silence", silence.id)] = exc
                continue
            if silences_it:
                silenced_by = silence.id
                wakeups.append(silence.ends_at)
                break
            if now < silence.starts_at:
                wakeups.append(silence.starts_at)
        if (reason, silenced_by) != (alert.suppressed_reason, alert.silenced_by):
            alert.suppressed_reason, alert.silenced_by = reason, silenced_by
            async with self._db.begin() as conn:
                await alert_store.set_suppression(conn, alert.id, reason, silenced_by)
                if silenced_by:
                    await alert_store.add_event(
                        conn, alert.id, "silenced", now, comment=silenced_by
                    )

    def _is_down(self, name: str) -> bool:
        state = self._states.get(name)
        return state is not None and state.status is Status.DOWN

    # -- grouping and the first page --------------------------------------------------------

    def _policy(self, alert: Alert) -> EscalationPolicy | None:
        name = alert.escalation_policy or self._config.default_escalation
        if not name or name in self._unusable_policies:
            return None
        return self._policies.get(name)

    def _first_channels(self, alert: Alert) -> list[str]:
        policy = self._policy(alert)
        return list(policy.steps[0].notify) if policy else self._routing.channels_for(alert)

    def _group_key(self, alert: Alert) -> str:
        route = ",".join(sorted(self._first_channels(alert)))
        if self._config.group_by is None:
            return f"alert:{alert.id}"
        values = ",".join(f"{n}={alert.match_labels.get(n, '')}" for n in self._config.group_by)
        return f"group:{route}|{values}"[:255]

    def _group_due(self, key: str, members: list[Alert], group: Any) -> datetime:
        first = min(a.started_at for a in members)
        due = first + self._config.group_wait
        for alert in members:
            policy = self._policy(alert)
            if policy is not None:
                due = max(due, alert.started_at + policy.steps[0].after)
        if group is not None and group.last_notified_at is not None:
            due = max(due, group.last_notified_at + self._config.group_interval)
        return due

    async def _notify_firing(self, key: str, members: list[Alert], now: datetime) -> int:
        channels = self._first_channels(members[0])
        async with self._db.begin() as conn:
            claimed = []
            for alert in members:
                policy = self._policy(alert)
                next_at = None
                if policy is not None and len(policy.steps) > 1:
                    next_at = now + (policy.steps[1].after - policy.steps[0].after)
                elif policy is not None and policy.repeat is not None:
                    next_at = now + policy.repeat
                elif policy is None and self._config.repeat_interval:
                    next_at = now + self._config.repeat_interval
                if await alert_store.claim_first_page(
                    conn,
                    alert.id,
                    at=now,
                    channels=channels,
                    group_key=key,
                    next_escalation_at=next_at,
                ):
                    alert.notified_at, alert.paged_channels = now, channels
                    claimed.append(alert)
            if not claimed:
                return 0
            await group_store.touch(conn, key, now, first_seen=min(a.started_at for a in claimed))
            event = "alert.firing"
            if len(claimed) == 1:
                payload = alert_payload(claimed[0], event)
                idem = f"{claimed[0].id}:{event}"
            else:
                payload = group_payload(claimed, event, key, self._config.group_by or [])
                idem = f"group:{uuid.uuid4()}:{event}"
            entries = [
                outbox_store.OutboxEntry(c, idem, event, payload, claimed[0].id) for c in channels
            ]
            await self._storm.enqueue(conn, entries, now)
        log.info(
            "paged %s about %d alert(s) in %s", ",".join(channels) or "nobody", len(claimed), key
        )
        return len(entries)

    # -- escalation, acknowledgement, resolution ------------------------------------------

    async def _escalate(self, alert: Alert, now: datetime) -> int:
        policy = self._policy(alert)
        if alert.notified_at is None:
            return 0
        if policy is None:
            return await self._repeat(alert, now)
        step = alert.escalation_step + 1
        index = min(step, len(policy.steps) - 1)
        channels = list(policy.steps[index].notify)
        if step + 1 < len(policy.steps):
            next_at: datetime | None = alert.notified_at + (
                policy.steps[step + 1].after - policy.steps[0].after
            )
        else:
            next_at = now + policy.repeat if policy.repeat else None
        paged = sorted({*(alert.paged_channels or []), *channels})
        async with self._db.begin() as conn:
            if not await alert_store.advance_escalation(
                conn,
                alert.id,
                from_step=alert.escalation_step,
                step=step,
                next_escalation_at=next_at,
                paged_channels=paged,
            ):
                return 0  # acknowledged or resolved meanwhile
            await alert_store.add_event(
                conn, alert.id, "escalated", now, comment=f"step {step}: {', '.join(channels)}"
            )
            event = "alert.escalated"
            payload = alert_payload(alert, event)
            payload["escalation"] = {"policy": policy.name, "step": step}
            entries = [
                outbox_store.OutboxEntry(c, f"{alert.id}:{event}:{step}", event, payload, alert.id)
                for c in channels
            ]
            await self._storm.enqueue(conn, entries, now)
        log.info("escalated %s to step %d: %s", alert.name, step, ", ".join(channels))
        return len(entries)

    async def _repeat(self, alert: Alert, now: datetime) -> int:
        """`repeat_interval`: page the same channels again while nobody acknowledges."""
        interval = self._config.repeat_interval
        channels = alert.paged_channels or self._first_channels(alert)
        count = alert.escalation_step + 1
        async with self._db.begin() as conn:
            if not await alert_store.advance_escalation(
                conn,
                alert.id,
                from_step=alert.escalation_step,
                step=count,
                next_escalation_at=now + interval if interval else None,
            ):
                return 0
            event = "alert.firing"
            payload = alert_payload(alert, event)
            payload["repeat"] = count
            entries = [
                outbox_store.OutboxEntry(
                    c, f"{alert.id}:{event}:repeat:{count}", event, payload, alert.id
                )
                for c in channels
            ]
            await self._storm.enqueue(conn, entries, now)
        return len(entries)

    async def _notify_acknowledged(self, alert: Alert, now: datetime) -> int:
        if alert.ack_notified_at is not None:
            return 0
        return await self._notify_paged(alert, "alert.acknowledged", "ack_notified_at", now)

    async def _notify_resolved(self, alert: Alert, now: datetime) -> int:
        return await self._notify_paged(alert, "alert.resolved", "resolved_notified_at", now)

    async def _notify_paged(
        self,
        alert: Alert,
        event: str,
        mark: Literal["ack_notified_at", "resolved_notified_at"],
        now: datetime,
    ) -> int:
        """Tell everyone who was paged about this alert (nobody, if nobody was paged)."""
        channels = alert.paged_channels
        if channels is None:  # paged before this was recorded: the routing of today
            channels = self._first_channels(alert)
        async with self._db.begin() as conn:
            if not await alert_store.mark_told(conn, alert.id, mark, now):
                return 0
            payload = alert_payload(alert, event)
            entries = [
                outbox_store.OutboxEntry(c, f"{alert.id}:{event}", event, payload, alert.id)
                for c in channels
            ]
            await self._storm.enqueue(conn, entries, now)
        return len(entries)


def _usable(policy: EscalationPolicy, now: datetime, found: dict[Key, BaseException | str]) -> bool:
    """Whether every instant the policy can schedule is computable (a stored policy from
    before delays were bounded may overflow); an unusable one is reported broken."""
    try:
        for step in policy.steps:
            _ = now + step.after - policy.steps[0].after
        if policy.repeat is not None:
            _ = now + policy.repeat
    except Exception as exc:
        found[("escalation_policy", policy.name)] = exc
        return False
    return True


def _refused_by_storage(exc: BaseException) -> bool:
    """Database errors stop the pass (retried whole) rather than marking an object broken."""
    return from_storage(exc) or isinstance(exc, OSError)


def group_payload(alerts: list[Alert], event: str, key: str, group_by: list[str]) -> dict[str, Any]:
    """One notification about several alerts: `alerts` lists them, `alert` is the first."""
    first = alert_payload(alerts[0], event)
    return {
        **first,
        "alerts": [alert_payload(a, event)["alert"] for a in alerts],
        "group": {
            "key": key,
            "labels": {n: alerts[0].match_labels.get(n, "") for n in group_by},
            "count": len(alerts),
        },
    }


def build_dispatcher(
    db: Database,
    clock: Clock,
    config: Config,
    *,
    states: Mapping[str, CheckState] | None = None,
    on_enqueued: Callable[[], None] = lambda: None,
    on_pass: Callable[[], None] = lambda: None,
    is_flapping: Callable[[str], bool] = lambda _check: False,
    checks: Iterable[CheckConfigBase] | None = None,
    rules: Iterable[RuleConfig] | None = None,
    policies: Iterable[EscalationPolicy] | None = None,
    broken: BrokenObjects | None = None,
) -> Dispatcher:
    """A dispatcher wired from the config: policies, routing and the dependency graph.

    `checks`, `rules` and `policies` replace the config file's (the runtime passes them with
    the API-managed ones added)."""
    dispatcher = Dispatcher(
        db,
        clock,
        config=config.alerting,
        policies={},
        routing=Routing(
            [c.name for c in config.notifications], routes=list(config.alerting.routes)
        ),
        states=states,
        on_enqueued=on_enqueued,
        on_pass=on_pass,
        is_flapping=is_flapping,
        maintenance=config.maintenance,
        inhibit_rules=config.alerting.inhibit_rules,
        limits={
            c.name: ChannelLimit(c.max_per_hour, c.digest_interval)
            for c in config.notifications
            if c.max_per_hour
        },
        broken=broken,
    )
    dispatcher.reconfigure(
        checks=config.checks if checks is None else checks,
        rules=config.rules if rules is None else rules,
        policies=config.escalation if policies is None else policies,
    )
    return dispatcher
