"""Decides who hears about which alert, and when; the only writer of the outbox.

Level-triggered, like a Kubernetes controller: each pass reads the alerts that still owe a
notification and does what is due (first page after `group_wait`, escalation steps,
acknowledgement and resolution notices), each action in one transaction with its outbox
entries. Nothing is kept only in memory, so a restart picks up exactly where it stopped and
escalation timers keep their absolute deadlines.

`Dispatcher` is the loop; the stages live in `alerting.dispatch`, one small unit each, and
run in the order of `_handle` for each alert: expiry of external alerts → resolution notice
→ suppression (dependency, flapping, maintenance, inhibition; silences on their own) →
grouping → first page (once per group, after every alert was handled) → acknowledgement
notice or escalation and repeat. Every notification goes through the storm guard.

Fail-open: each maintenance window, silence and escalation policy is evaluated on its own at
the start of a pass; one that raises is reported to `BrokenObjects` and left out of the pass
(a window or silence that cannot be evaluated silences nothing; an alert whose policy cannot
be evaluated is routed as if it had none). One alert that cannot be handled does not stop
the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from watchkeeper.alerting.broken import BrokenObjects, Key
from watchkeeper.alerting.config import AlertingConfig, EscalationPolicy
from watchkeeper.alerting.dependencies import DependencyGraph
from watchkeeper.alerting.dispatch.context import Pass, refused_by_storage
from watchkeeper.alerting.dispatch.escalation import Escalation
from watchkeeper.alerting.dispatch.first_page import FirstPage, group_payload
from watchkeeper.alerting.dispatch.grouping import Grouping, is_own_group
from watchkeeper.alerting.dispatch.resolution import Expiry, Posted, Resolution
from watchkeeper.alerting.dispatch.storm import StormStage
from watchkeeper.alerting.dispatch.suppression import (
    DependencyStage,
    FlappingStage,
    InhibitionStage,
    MaintenanceStage,
    SilenceStage,
    Suppression,
)
from watchkeeper.alerting.dispatch.targets import Routing, Targets, unusable_policies
from watchkeeper.alerting.inhibition import InhibitRule
from watchkeeper.alerting.maintenance import MaintenanceWindow
from watchkeeper.alerting.rule_config import RuleConfig
from watchkeeper.alerting.silences import Silence, list_silences
from watchkeeper.alerting.stored_windows import StoredWindow, load_stored_windows
from watchkeeper.checks.base import CheckConfigBase
from watchkeeper.core.checkstate import CheckState
from watchkeeper.core.clock import Clock
from watchkeeper.core.domain import Alert, AlertStatus, Status
from watchkeeper.core.loops import run_timed
from watchkeeper.notify.channels.base import ChannelConfigBase
from watchkeeper.notify.storm import ChannelLimit
from watchkeeper.store import alert_groups as group_store
from watchkeeper.store import alerts as alert_store
from watchkeeper.store.database import Connection, Database

__all__ = ["Dispatcher", "Routing", "build_dispatcher", "group_payload"]

log = logging.getLogger(__name__)


_SLICE = 0.002
"""Seconds a pass runs alerts' stages before it lets the loop's other tasks run."""
_IDLE = 5.0  # seconds between passes when nothing is due (catches API changes too)
_WHOLE_SHARE = 0.05
"""At most this share of the time goes to the passes over every alert that nothing asked
for (the safety net for changes that wake nobody, such as another node's): after such a
pass of `d` seconds the next is due `max(_IDLE, d / _WHOLE_SHARE)` later. With tens of
thousands of open alerts one takes about a second, and every 5 s it was a fifth of a storm's
CPU. Deadlines, wakes and posted alerts still get their pass at once."""
_WHOLE_EVERY_MAX = 60.0
"""The longest the safety net waits, however long a pass over every alert takes."""


@dataclass(slots=True)
class _Stages:
    """One pass's stages, built at its start (they see the pass's policies and objects)."""

    expiry: Expiry
    suppression: Suppression
    grouping: Grouping
    first_page: FirstPage
    escalation: Escalation
    resolution: Resolution


class Dispatcher:
    """The dispatching loop: one pass whenever woken or something falls due."""

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
        posted: Posted | None = None,
        hand_off: Callable[[list[Any]], None] | None = None,
        pass_timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        """`hand_off`: the outbox worker's, given the entries of a first page to send now
        once they are committed (None: `on_enqueued` wakes the worker to claim them).
        `pass_timer`: seconds, to time the passes over every alert (see `_WHOLE_SHARE`)."""
        self._hand_off = hand_off
        self._pass_timer = pass_timer
        self._posted = posted
        self.broken = broken if broken is not None else BrokenObjects()
        self._storm = StormStage(limits)
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
        self._everything = True
        """A wake since the last pass asked for every alert to be looked at."""
        self._touched: set[str] = set()
        """Ids of the alerts posted since the last pass (`wake_for`)."""
        self._created: dict[str, Alert] = {}
        """Of those, the alerts opened, as their writer stored them (not read again)."""
        self._whole_due: datetime | None = None
        """When a pass must look at every alert again: the earliest instant a pass found
        something falling due, or the safety net's next pass (None: now)."""
        self._owing: set[str] = set()
        """Ids of never-paged alerts whose group was not due yet at the last pass: a pass
        about posted alerts reads them too (their group may fall due meanwhile)."""
        self._whole_found: dict[Key, BaseException | str] = {}
        """What the last pass over every alert found broken (kept by the passes between)."""

    def wake(self) -> None:
        """Run a pass soon (something changed: an alert, a silence, a window)."""
        self._everything = True
        self._wake.set()

    def wake_for(self, alert_ids: Iterable[str], created: Iterable[Alert] = ()) -> None:
        """Run a pass soon about these alerts, just posted (opened, changed or resolved):
        unless something else asks for more, the pass reads the alerts owing a first page
        and these, not every open alert (the others are as the last pass left them).
        `created`: those of them just opened, as stored, given away by the caller: that
        pass takes them as they are instead of reading them back (a burst of new alerts was
        read twice: written, then read by the pass)."""
        new = {a.id: a for a in created}
        for alert_id in alert_ids:
            self._touched.add(alert_id)
            if alert_id in new:
                self._created[alert_id] = new[alert_id]
            else:  # changed since it was opened: read as stored now
                self._created.pop(alert_id, None)
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

    def use_settings(self, settings: DispatcherSettings) -> None:
        """Take in a reloaded config file's alerting settings, channels, routes, maintenance
        windows, inhibit rules and storm limits: the next pass decides by them (what
        `reconfigure` takes in is set apart, with the API-managed objects added)."""
        self._config = settings.alerting
        self._routing.channels = [c.name for c in settings.notifications]
        self._routing.routes = list(settings.alerting.routes)
        self._maintenance = list(settings.maintenance)
        self._inhibit_rules = list(settings.alerting.inhibit_rules)
        self._storm = StormStage(_limits(settings.notifications))
        self.wake()

    async def run(self) -> None:
        """Dispatch until cancelled."""
        await run_timed(
            self._dispatch_and_tell,
            self._wake,
            self._clock,
            idle=_IDLE,
            what="dispatching notifications",
        )

    async def _dispatch_and_tell(self) -> datetime | None:
        if self._woken_for_nothing():
            return self._whole_due
        try:
            return await self.dispatch_once()
        except BaseException:
            # The alerts this pass was about may not have been looked at: the next looks
            # at every alert.
            self._everything = True
            raise
        finally:
            # Every alert change wakes the dispatcher, so after its pass live views see
            # alerts with their suppression decided.
            self._on_pass()

    def _woken_for_nothing(self) -> bool:
        """Whether only the loop's timer woke it, with nothing due: nothing asked for a pass
        and the safety net's next pass over every alert (`_whole_due`, which holds every
        deadline a pass found) is still ahead."""
        due = self._whole_due
        if self._everything or self._touched or self._wake.is_set() or due is None:
            return False
        return self._clock.now() < due

    # -- one pass -------------------------------------------------------------------------

    async def dispatch_once(self) -> datetime | None:
        """Do everything due now; return when the next thing falls due (None: nothing)."""
        now = self._clock.now()
        started = self._pass_timer()
        touched, self._touched = self._touched, set()
        # Alerts opened by posts and not changed since (a change to one otherwise than by a
        # post wakes with `wake`, and such a pass reads every alert).
        created, self._created = self._created, {}
        # Every alert is looked at unless only posted alerts woke this pass: the paged ones
        # change only by what is posted (those touched), by the clock (`_whole_due`), or by
        # what wakes with `wake` (a silence, a window, an acknowledgement, the config), and
        # any of them may be an inhibition source.
        whole = (
            self._everything
            or not touched
            or bool(self._inhibit_rules)
            or self._whole_due is None
            or now >= self._whole_due
        )
        self._everything = False
        try:
            await self.broken.sync_alerts(self._db, now)
        except Exception:
            log.exception("raising or resolving alerts about broken objects failed")
        at = Pass(now)
        # Without inhibit rules the alerts already paged are read after the first pages left:
        # with many open alerts, reading them all is the larger part of a pass.
        inhibiting = bool(self._inhibit_rules)

        async def read(
            conn: Connection,
        ) -> tuple[list[Alert], list[Alert], list[Silence], list[StoredWindow]]:
            # Their sources: every alert firing at the pass's start.
            if whole:
                alerts = await alert_store.dispatchable(conn, paged=None if inhibiting else False)
                mentioned: list[Alert] = []
            else:
                # The alerts posted, and those waiting for their group: nothing else can
                # owe a first page that the last pass did not send (whatever changes that
                # wakes with `wake`, or waits for `_whole_due`).
                known = [a for i, a in created.items() if i in touched]
                read = (touched | self._owing) - created.keys()
                mentioned = [*known, *await alert_store.dispatchable_of(conn, read)]
                alerts = [a for a in mentioned if a.notified_at is None]
            silences = await list_silences(self._db, include_expired_since=now, conn=conn)
            stored = await load_stored_windows(self._db, conn=conn)
            return alerts, mentioned, silences, stored

        # Read on the loop's own connection (SQLite): a few statements with no trip to
        # another thread each, before a new alert's first page.
        alerts, mentioned, silences, stored = await self._db.on_loop(read)
        paged: list[Alert] | None = None
        if inhibiting:
            paged = [a for a in alerts if a.notified_at is not None]
        elif not whole:
            paged = [a for a in mentioned if a.notified_at is not None]
        for silence in silences:
            if silence.error is not None:
                at.found[("silence", silence.id)] = silence.error
        for bad in (w for w in stored if w.window is None):
            at.found[("maintenance", bad.name)] = bad.error or "invalid"
        queued = 0
        maintenance = MaintenanceStage.for_pass(
            [*self._maintenance, *(w.window for w in stored if w.window is not None)], at
        )
        targets = Targets(
            self._config,
            self._policies,
            self._routing,
            unusable_policies(self._policies, at),
        )
        # Inhibition sources: what is firing right now (before this pass's own decisions).
        firing = [
            a.match_labels
            for a in (alerts if self._inhibit_rules else ())
            if a.status is not AlertStatus.RESOLVED
        ]
        stages = _Stages(
            expiry=Expiry(self._db, self._config.auto_resolve_after, self._posted),
            suppression=Suppression(
                [
                    DependencyStage(self._graph, self._is_down),
                    FlappingStage(self._is_flapping),
                    maintenance,
                    InhibitionStage(self._inhibit_rules, firing),
                ],
                SilenceStage(silences),
            ),
            grouping=Grouping(targets),
            first_page=FirstPage(self._db, targets, self._storm, self._hand_off),
            escalation=Escalation(self._db, targets, self._storm),
            resolution=Resolution(self._db, targets, self._storm),
        )

        pending: dict[str, list[Alert]] = {}
        # Alerts that owe a first page go first, and their pages leave (the outbox is woken)
        # before the alerts already paged are looked at: a new alert's notification does not
        # wait for a pass over every open alert.
        fresh = [a for a in alerts if a.notified_at is None]
        queued += await self._handle_all(fresh, stages, at, pending)
        # Only the groups about to page are read (not every group ever paged), and not an
        # alert's own group (`alert:<id>`, without `group_by`): it is stored when its one
        # member is paged first, which this never-paged alert was not.
        shared = [k for k in pending if not is_own_group(k)]
        groups = (
            await self._db.on_loop(lambda conn: group_store.by_keys(conn, shared)) if shared else {}
        )
        ready: list[tuple[str, list[Alert]]] = []
        waiting: set[str] = set()
        for key, members in pending.items():
            try:
                due = stages.grouping.due(members, groups.get(key))
            except Exception as exc:
                for alert in members:
                    at.found[("alert", alert.fingerprint)] = exc
                continue
            if due <= now:
                ready.append((key, members))
            else:
                at.wakeups.append(due)
                waiting.update(a.id for a in members)
        # Every alert owing a first page was read (a whole pass) or was posted or owing
        # before (a pass about posted alerts): those still waiting are all there are.
        self._owing = waiting
        try:
            # All due groups in a few transactions: a burst of new alerts, each its own
            # group, is not a transaction each.
            queued += await stages.first_page.send_many(ready, now)
        except Exception as exc:
            if refused_by_storage(exc):
                raise
            # Something in one group failed them all: again one group at a time, so only
            # its own alerts are reported (those paged meanwhile are not paged twice: a
            # claim takes only never-paged alerts).
            for key, members in ready:
                try:
                    queued += await stages.first_page.send(key, members, now)
                except Exception as exc:
                    if refused_by_storage(exc):
                        raise
                    for alert in members:
                        at.found[("alert", alert.fingerprint)] = exc
        if queued:
            self._on_enqueued()
        if paged is None:
            async with self._db.connect() as conn:
                paged = await alert_store.dispatchable(conn, paged=True)
            handled = {a.id for a in fresh}  # those just paged are done for this pass
            paged = [a for a in paged if a.id not in handled]
        later = await self._handle_all(paged, stages, at, pending)
        if whole:
            self._whole_found = dict(at.found)
            took = self._pass_timer() - started
            every = min(max(_IDLE, took / _WHOLE_SHARE), _WHOLE_EVERY_MAX)
            self._whole_due = min([*at.wakeups, now + timedelta(seconds=every)])
            found = at.found
        else:
            # The alerts looked at now are as found now; the others as the last whole pass
            # found them (so their self-alerts do not resolve and fire again meanwhile).
            seen = {("alert", a.fingerprint) for a in [*fresh, *paged]}
            found = {k: v for k, v in self._whole_found.items() if k not in seen}
            found.update(at.found)
            assert self._whole_due is not None
            # What falls due from this pass (a group's wait, an endsAt) is looked at by a
            # pass over every alert then.
            self._whole_due = min([*at.wakeups, self._whole_due])
            at.wakeups.append(self._whole_due)
        self.broken.update("dispatcher", found, now)
        later += await self._storm.flush_digests(self._db, at)
        if later:
            self._on_enqueued()
        return at.next_wakeup()

    async def _handle_all(
        self, alerts: list[Alert], stages: _Stages, at: Pass, pending: dict[str, list[Alert]]
    ) -> int:
        """`_handle` each alert; one that cannot be handled is reported, not fatal."""
        queued = 0
        yielded = time.perf_counter()
        for alert in alerts:
            # Each alert is checked against every silence and window: with thousands of
            # each that is seconds of CPU, so the loop (probes, the API's transactions) gets
            # its turn every few milliseconds rather than after the pass (and not after
            # every alert: a burst of new alerts would wait for every request in between).
            if time.perf_counter() - yielded >= _SLICE:
                await asyncio.sleep(0)
                yielded = time.perf_counter()
            try:
                queued += await self._handle(alert, stages, at, pending)
            except Exception as exc:
                if refused_by_storage(exc):
                    raise
                at.found[("alert", alert.fingerprint)] = exc
        return queued

    async def _handle(
        self, alert: Alert, stages: _Stages, at: Pass, pending: dict[str, list[Alert]]
    ) -> int:
        """One alert's stages, up to grouping (its first page is sent per group, into
        `pending`); return how many outbox entries were queued."""
        await stages.expiry.apply(alert, at)
        if alert.status is AlertStatus.RESOLVED:
            return await stages.resolution.resolved(alert, at.now)
        verdict = await stages.suppression.apply(self._db, alert, at)
        if verdict.quiet:
            return 0
        if alert.notified_at is None:
            if alert.status is AlertStatus.FIRING:
                pending.setdefault(stages.grouping.key(alert), []).append(alert)
            return 0
        if alert.status is AlertStatus.ACKNOWLEDGED:
            return await stages.resolution.acknowledged(alert, at.now)
        if alert.next_escalation_at is not None:
            if alert.next_escalation_at <= at.now:
                return await stages.escalation.escalate(alert, at.now)
            at.wakeups.append(alert.next_escalation_at)
        return 0

    def _is_down(self, name: str) -> bool:
        state = self._states.get(name)
        return state is not None and state.status is Status.DOWN


class DispatcherSettings(Protocol):
    """The parts of the config file a dispatcher is wired from (the root `Config` has them;
    alerting does not import the config package, which sits above it)."""

    @property
    def alerting(self) -> AlertingConfig: ...

    @property
    def notifications(self) -> Sequence[ChannelConfigBase]: ...

    @property
    def maintenance(self) -> Sequence[MaintenanceWindow]: ...

    @property
    def checks(self) -> Sequence[CheckConfigBase]: ...

    @property
    def rules(self) -> Sequence[RuleConfig]: ...

    @property
    def escalation(self) -> Sequence[EscalationPolicy]: ...


def _limits(channels: Iterable[ChannelConfigBase]) -> dict[str, ChannelLimit]:
    return {
        c.name: ChannelLimit(c.max_per_hour, c.digest_interval) for c in channels if c.max_per_hour
    }


def build_dispatcher(
    db: Database,
    clock: Clock,
    config: DispatcherSettings,
    *,
    states: Mapping[str, CheckState] | None = None,
    on_enqueued: Callable[[], None] = lambda: None,
    on_pass: Callable[[], None] = lambda: None,
    is_flapping: Callable[[str], bool] = lambda _check: False,
    checks: Iterable[CheckConfigBase] | None = None,
    rules: Iterable[RuleConfig] | None = None,
    policies: Iterable[EscalationPolicy] | None = None,
    broken: BrokenObjects | None = None,
    posted: Posted | None = None,
    hand_off: Callable[[list[Any]], None] | None = None,
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
        limits=_limits(config.notifications),
        broken=broken,
        posted=posted,
        hand_off=hand_off,
    )
    dispatcher.reconfigure(
        checks=config.checks if checks is None else checks,
        rules=config.rules if rules is None else rules,
        policies=config.escalation if policies is None else policies,
    )
    return dispatcher
