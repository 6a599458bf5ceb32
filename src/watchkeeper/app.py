"""Builds the object graph and owns every background task (start, then stop in reverse)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

from watchkeeper.alerting import lifecycle
from watchkeeper.alerting.broken import BrokenObjects
from watchkeeper.alerting.check_alerts import CheckAlerts, check_fingerprint, check_labels
from watchkeeper.alerting.dispatcher import Dispatcher, build_dispatcher
from watchkeeper.alerting.flap_alerts import FlapTracker, flapping_fingerprint
from watchkeeper.alerting.ingest import AlertIngest
from watchkeeper.alerting.rule_config import RuleConfig
from watchkeeper.alerting.rules import RuleEngine
from watchkeeper.alerting.stored_windows import load_stored_windows
from watchkeeper.auth import tokens as token_store
from watchkeeper.auth.credentials import Authenticator
from watchkeeper.auth.throttle import LoginThrottle
from watchkeeper.auth.workers import PasswordWorkers
from watchkeeper.checks import CheckContext, build_check
from watchkeeper.checks.base import Check, CheckConfigBase
from watchkeeper.config.loader import Config, ConfigFile, EscalationPolicy
from watchkeeper.core.changes import ALERTS, CHECKS, ChangeFeed, check_key
from watchkeeper.core.checkstate import CheckState, Transition
from watchkeeper.core.clock import Clock, SystemClock
from watchkeeper.core.domain import CheckResult, Status
from watchkeeper.core.redact import Redactor, url_secrets
from watchkeeper.core.version import __version__
from watchkeeper.engine.breakers import CheckBreakerMetrics, CheckBreakers
from watchkeeper.engine.heartbeat.access import PingAccess, load_ping_key
from watchkeeper.engine.heartbeat.monitor import HeartbeatMonitor, heartbeat_checks
from watchkeeper.engine.housekeeping import (
    Housekeeping,
    optimize_job,
    retention_job,
    vacuum_job,
)
from watchkeeper.engine.pipeline import ResultPipeline
from watchkeeper.engine.scheduler import Scheduler, run_once
from watchkeeper.engine.selfalerts import SelfAlerts
from watchkeeper.engine.selfwatch import SelfWatch
from watchkeeper.engine.watchdog import Watchdog
from watchkeeper.notify.channels import build_channel
from watchkeeper.notify.channels.base import Channel, ChannelContext
from watchkeeper.notify.outbox import OutboxWorker
from watchkeeper.notify.payload import recovery_payload
from watchkeeper.notify.recovery import OutboxNotifier
from watchkeeper.objects.managed import ManagedObjects
from watchkeeper.prometheus.service import ServiceMetrics
from watchkeeper.recovery.breaker import BreakerState
from watchkeeper.recovery.coordinator import Recovery
from watchkeeper.services import Services
from watchkeeper.services.alerts import AlertService
from watchkeeper.services.audit import AuditService
from watchkeeper.services.checks import CheckService
from watchkeeper.services.dashboard import DashboardService
from watchkeeper.services.health import HealthService
from watchkeeper.services.heartbeats import HeartbeatService
from watchkeeper.services.incidents import IncidentService
from watchkeeper.services.maintenance import MaintenanceService
from watchkeeper.services.objects import ObjectService
from watchkeeper.services.recovery import RecoveryService
from watchkeeper.services.reload import ConfigChanges, ReloadService
from watchkeeper.services.rules import RuleService
from watchkeeper.services.series import SeriesService
from watchkeeper.services.sessions import SessionService
from watchkeeper.services.setup import SetupService
from watchkeeper.services.silences import SilenceService
from watchkeeper.services.status import StatusService
from watchkeeper.services.status_subscriptions import StatusSubscriptionService
from watchkeeper.services.tokens import TokenService
from watchkeeper.services.users import UserService
from watchkeeper.statuspage.config import StatusPageConfig
from watchkeeper.statuspage.events import StatusEventSink
from watchkeeper.statuspage.snapshot import StatusPages
from watchkeeper.statuspage.subscriptions import senders as subscriber_senders
from watchkeeper.statuspage.subscriptions.expiry import expiry_job
from watchkeeper.statuspage.subscriptions.messages import Links
from watchkeeper.statuspage.subscriptions.notifier import SubscriberNotifier
from watchkeeper.statuspage.subscriptions.pages import PageDirectory, PageInfo
from watchkeeper.statuspage.subscriptions.tokens import Signer, load_key
from watchkeeper.store.checkpoints import WalCheckpointer
from watchkeeper.store.database import Database
from watchkeeper.store.results import ResultWriter, load_states
from watchkeeper.store.retention import Retention

log = logging.getLogger(__name__)

SETTLE_AFTER_S = 15.0
"""First runs are spread over at most 5 s; by 15 s every check has run once."""

STOP_TIMEOUT_S = 10.0
"""How long one step of the stop may take (the scheduler's adds its shutdown grace)."""

FLUSH_TIMEOUT_S = 30.0
"""The result writer's step: its loop gets 5 s to end, then what is buffered is written."""


RECOVERY_STOP_TIMEOUT_S = 70.0
"""Supervised programs get their `stop_timeout` (at most 60 s) to stop, then SIGKILL."""


NO_CREDENTIALS_HINT = (
    "no users or tokens yet: create the first admin at the one-time setup URL that "
    "'watchkeeper run' prints on standard output, or with 'watchkeeper user create "
    "--username NAME --role admin'; API tokens: 'watchkeeper token create --role admin'"
)
SETUP_HINT = (
    "no dashboard user yet: create the first admin at the one-time setup URL that "
    "'watchkeeper run' prints on standard output (valid 1 h; a new one at each start), or "
    "with 'watchkeeper user create --username NAME --role admin'"
)
"""Logged (never with the URL: its token is a credential, and logs are shipped and kept)."""


def http_session(limit: int) -> aiohttp.ClientSession:
    """One pooled client for all checks and deliveries (aiohttp: the fastest asyncio client)."""
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, ttl_dns_cache=60)
    return aiohttp.ClientSession(
        connector=connector,
        headers={"User-Agent": f"watchkeeper/{__version__}"},
        # Checks must see the target's cookies fresh each time.
        cookie_jar=aiohttp.DummyCookieJar(),
    )


class HttpClient:
    """The one pooled aiohttp session, opened at start (aiohttp wants a running loop) and
    closed at stop; components built before then take it from here when they start."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the HTTP session is opened by Runtime.start()")
        return self._session

    @property
    def closed(self) -> bool:
        return self._session is None or self._session.closed

    async def open(self) -> None:
        self._session = http_session(self._limit)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


Action = Callable[[], Awaitable[None]]
"""What a step does to start or to stop."""


async def _nothing() -> None:
    """The start of a step that only has something to release at stop."""


@dataclass(frozen=True, slots=True)
class Step:
    """One entry of the runtime's task table: started in order, stopped in reverse."""

    name: str
    start: Action
    stop: Action
    stop_timeout: float = STOP_TIMEOUT_S


async def start_steps(steps: list[Step]) -> list[Step]:
    """Start `steps` in order; return them. If one fails, stop those already started (in
    reverse) and re-raise, so a failed start leaves nothing running or open."""
    started: list[Step] = []
    try:
        for step in steps:
            await step.start()
            started.append(step)
    except BaseException:
        log.error("starting failed at %s: stopping what had started", step.name)
        await stop_steps(started)
        raise
    return started


async def stop_steps(steps: list[Step]) -> None:
    """Stop `steps` in reverse order, each within its timeout; a step that fails or hangs is
    logged and the others still stop."""
    for step in reversed(steps):
        try:
            await asyncio.wait_for(step.stop(), timeout=step.stop_timeout)
        except TimeoutError:
            log.error("stopping %s took longer than %.0f s; going on", step.name, step.stop_timeout)
        except Exception:
            log.exception("stopping %s failed; going on", step.name)


class Runtime:
    """Everything a running Watchkeeper is made of, wired once: every component is built
    here, and `start()` loads and starts them from one task table (`stop()` in reverse)."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        redactor: Redactor | None = None,
        on_setup_url: Callable[[str], None] | None = None,
        config_file: ConfigFile | None = None,
        status_sink: StatusEventSink | None = None,
    ) -> None:
        self.config = config
        self.on_setup_url = on_setup_url
        """Shown the one-time setup URL made at a start while no user exists (`watchkeeper
        run` prints it on stdout); the URL is kept nowhere else."""
        self.config_file = config_file
        """The file `config` was read from, read again by a reload (None: not from a file)."""
        self.clock: Clock = clock or SystemClock()
        self.redactor = redactor or Redactor()
        self.redactor.add(url_secrets(config.storage.url))
        self.metrics = ServiceMetrics()
        if config.recovery.actions:
            self.metrics.track_recovery()
        # Registered once: a runtime started again builds new breakers, read at each scrape.
        self.metrics.registry.register(CheckBreakerMetrics(lambda: self.breakers))
        self.changes = ChangeFeed()
        self.db = Database(config.storage.url)
        # Paced by the wall clock, not the runtime's: it spaces out I/O, nothing falls due
        # by it (and a test's clock would have to step through it).
        self.checkpoints = WalCheckpointer(self.db, SystemClock())
        """Keeps SQLite's write-ahead log short (see watchkeeper.store.checkpoints)."""
        self.authenticator = Authenticator(self.db, config.auth, self.clock)
        self.throttle = LoginThrottle(self.db, config.auth.login_throttle, self.clock)
        self.passwords = PasswordWorkers()  # argon2, off the event loop and bounded
        self.http = HttpClient(config.scheduler.max_concurrency + 50)
        self.check_configs: dict[str, CheckConfigBase] = {c.name: c for c in config.checks}
        self.broken = BrokenObjects(self.redactor)
        """Stored objects that cannot be evaluated (fail-open; see watchkeeper.alerting.broken)."""
        # Checks, policies and rules made over the API; they change the service through
        # this runtime's ObjectTarget methods below.
        self.managed = ManagedObjects(
            self, config, db=self.db, clock=self.clock, redactor=self.redactor, broken=self.broken
        )
        self.subscribable_pages = PageDirectory()
        """The status pages subscribers may follow (slug -> title, components); the status
        pages keep it current at each rebuild."""
        self.subscribable_pages.use(subscribable_pages(config.pages))
        self.subscription_signer = Signer()
        """Signs the subscription links; its key is loaded from the database at start."""
        self.started = False
        self.started_at: datetime | None = None
        self.status_sink: StatusEventSink | None = status_sink
        """Told of public incident and maintenance changes (the status page subscriptions)."""
        self._runs = 0
        self._await_listener = False
        """Whether the checks' first runs wait for `listening()`, until it is called (see
        `hold_checks_until_listening`)."""
        self._wire()

    def _wire(self) -> None:
        """Build the components of one run (a runtime started again gets fresh ones, as
        stopped loops do not run again)."""
        config = self.config
        # Filled at start (they need the HTTP session and the database); the components
        # below hold these very containers.
        self.states: dict[str, CheckState] = {}
        self.checks: list[Check[Any]] = []
        self.channels: dict[str, Channel[Any]] = {}
        self.subscriber_channels: dict[str, Channel[Any]] = {}
        """The outbox's channels to status page subscribers (kept out of `channels`, which
        self-alerts and recovery notices go to)."""

        self.outbox = OutboxWorker(
            self.db,
            collections.ChainMap(self.channels, self.subscriber_channels),
            config.delivery,
            self.clock,
        )
        subscriptions = config.status_subscriptions
        self.status_events: StatusEventSink = SubscriberNotifier(
            self.db,
            self.clock,
            signer=self.subscription_signer,
            links=self._subscription_links(),
            pages=self.subscribable_pages,
            enabled=subscriptions.enabled,
            subject_prefix=subscriptions.subject_prefix,
            on_enqueued=self.outbox.wake,
        )
        """Where the status page publishes its incidents and maintenance (to subscribers)."""
        self.flaps = FlapTracker(self.db, config.alerting.flapping, on_change=self.wake_dispatcher)
        self.ingest = AlertIngest(self.db, self.clock)
        """Alerts posted by other systems: the open ones indexed, re-posts written in batches."""
        self.dispatcher: Dispatcher = build_dispatcher(
            self.db,
            self.clock,
            config,
            states=self.states,
            on_enqueued=self.outbox.wake,
            on_pass=lambda: self.changes.publish(ALERTS),
            is_flapping=self.flaps.is_flapping,
            checks=self.check_configs.values(),
            rules=self.managed.rules.values(),
            policies=self.managed.policies.values(),
            broken=self.broken,
            posted=self.ingest,
            hand_off=self.outbox.hand_off,
        )
        self.broken.on_change = self.dispatcher.wake
        self.alerts = CheckAlerts(self.db, self.check_configs, on_change=self.dispatcher.wake)
        self.writer = ResultWriter(self.db, self.states.get)
        self.recovery = Recovery(
            config.recovery,
            db=self.db,
            clock=self.clock,
            redactor=self.redactor,
            payload=recovery_payload,
            channels_for=self._recovery_channels,
            on_enqueued=self.outbox.wake,
            on_escalated=self.dispatcher.wake,
            on_run_ended=self.metrics.count_recovery,
            notifier=OutboxNotifier(
                self.db,
                self.clock,
                channels_for=self._recovery_channels,
                known=lambda: self.channels.keys(),
                on_enqueued=self.outbox.wake,
            ),
            probe=self._probe_check,
            hold=self._recovery_hold,
            dashboard_url=config.server.base_url(),
        )
        self.rules = RuleEngine(
            self.db,
            [],
            self.clock,
            on_change=self.dispatcher.wake,
            broken=self.broken,
            on_fire=self._rule_fired,
        )
        self.pipeline = ResultPipeline(
            self.states,
            self.writer,
            self.alerts,
            self.metrics,
            self.rules,
            self.flaps,
            on_change=lambda name: self.changes.publish(check_key(name)),
            on_hard_state=self._observe_recovery,
        )
        self.breakers = CheckBreakers(self.clock)
        """Checks' circuit breakers (`breaker:`): fed each scheduled result."""
        self.scheduler = Scheduler(
            [],
            self._scheduled_result,
            self.clock,
            max_concurrency=config.scheduler.max_concurrency,
            shutdown_grace=config.scheduler.shutdown_grace.total_seconds(),
            on_lag=self.metrics.scheduler_lag.observe,
            is_paused=self._is_paused,
            is_held=self.breakers.is_open,
        )
        self.heartbeats = HeartbeatMonitor(
            self.db,
            [],
            self.pipeline.handle,
            self.clock,
            is_paused=self._is_paused,
            on_paused_result=self.pipeline.record_paused,
            body_bytes_per_day=config.heartbeats.body_bytes_per_day,
            broken=self.broken,
        )
        self.pings = PingAccess(config.heartbeats, "", self.clock.monotonic)
        """Answers no ping until start loads the install's ping key."""
        self.retention = Retention(self.db, config.storage.retention, self.clock)
        jobs = [retention_job(self.retention), optimize_job(self.db), vacuum_job(self.db)]
        if subscriptions.enabled:
            jobs.append(expiry_job(self.db, self.clock, subscriptions.unconfirmed_ttl))
        self.housekeeping = Housekeeping(
            jobs,
            self.clock,
            redactor=self.redactor,
        )
        self.selfwatch = SelfWatch(
            config.selfwatch,
            db=self.db,
            clock=self.clock,
            metrics=self.metrics,
            redactor=self.redactor,
            scheduler_lag=self._scheduler_lag,
            stalled=self._loops_stalled,
            alerts=SelfAlerts(
                self.db,
                self.clock,
                channels=self.channels,
                severity=config.selfwatch.alert_severity,
                send_timeout=config.selfwatch.send_timeout.total_seconds(),
                wake_dispatcher=self.wake_dispatcher,
            ),
        )
        self.watchdog: Watchdog | None = None
        """The dead man's switch (`watchdog:`), when configured."""
        if config.watchdog is not None:
            self.watchdog = Watchdog(
                config.watchdog,
                clock=self.clock,
                session=lambda: self.http.session,
                stalled=self._loops_stalled,
                redactor=self.redactor,
            )
        self.status_pages = StatusPages(
            db=self.db,
            clock=self.clock,
            pages=self.managed.every_status_page,
            checks=self.check_configs,
            states=self.states,
            windows=lambda: self.config.maintenance,
            changes=self.changes,
            public_url=config.server.base_url(),
            sink=self.status_sink or self.status_events,
            on_alerts=self._auto_incidents,
            on_pages=lambda pages: self.subscribable_pages.use(subscribable_pages(pages)),
        )
        """The public status pages, kept in memory (see watchkeeper.statuspage.snapshot)."""
        self.services = self._services()
        """What routes, pages and the CLI call (see watchkeeper.services)."""
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._started: list[Step] = []
        grace = config.scheduler.shutdown_grace.total_seconds()
        self.steps: list[Step] = [
            Step("database", self._open_database, self.db.close),
            *(
                [self._task_step("wal checkpoints", self.checkpoints.run)]
                if self.checkpoints.needed
                else []
            ),
            # Stopped after the pings (the HTTP server) and before the database.
            Step("ping writer", self.heartbeats.writer.open, self.heartbeats.close),
            Step("password workers", _nothing, self.passwords.shutdown),
            Step("http session", self.http.open, self.http.close),
            Step("components", self._load, self._close_checks),
            Step(
                "result writer",
                self._task("result-writer", self.writer.run),
                self._stop_writer,
                FLUSH_TIMEOUT_S,
            ),
            self._task_step("housekeeping", self.housekeeping.run),
            Step("outbox", self._task("outbox", self.outbox.run), self._stop_outbox),
            Step("rules", self._task("rules", self.rules.run), self._stop_rules),
            Step("recovery", self.recovery.start, self.recovery.stop, RECOVERY_STOP_TIMEOUT_S),
            Step("alert ingest", self._start_ingest, self._stop_ingest),
            self._task_step("dispatcher", self.dispatcher.run),
            self._task_step("heartbeats", self.heartbeats.run),
            Step("scheduler", self._start_scheduler, self._stop_scheduler, grace + STOP_TIMEOUT_S),
            self._task_step("selfwatch", self.selfwatch.run),
            Step("status pages", self._start_status_pages, self._cancel("status-pages")),
            *([self._task_step("watchdog", self.watchdog.run)] if self.watchdog else []),
            Step("gc settle", self._freeze, self._cancel("gc-settle")),
        ]
        """The task table: `start()` runs it in order, `stop()` in reverse."""

    def _services(self) -> Services:
        """The services of this run, over its components (see watchkeeper.services)."""
        config = self.config
        checks = CheckService(
            db=self.db,
            clock=self.clock,
            configs=self.check_configs,
            states=self.states,
            pipeline=self.pipeline,
            heartbeats=self.heartbeats,
            scheduler=self.scheduler,
            changes=self.changes,
            broken=self.broken,
            flush=self.writer.flush,
            base_url=config.server.base_url(),
            is_managed=lambda name: name in self.managed.checks,
        )
        alerts = AlertService(
            db=self.db,
            clock=self.clock,
            wake_dispatcher=self.wake_dispatcher,
            posted=self.ingest,
            wake_for=self.dispatcher.wake_for,
        )
        series = SeriesService(db=self.db, clock=self.clock, checks=checks, flush=self.writer.flush)
        audit = AuditService(self.db, self.clock)
        status = StatusService(
            db=self.db,
            clock=self.clock,
            checks=checks,
            alerts=alerts,
            scheduler=self.scheduler,
            outbox=self.outbox,
            broken=self.broken,
            metrics=self.metrics,
            redactor=self.redactor,
            selfwatch=self.selfwatch,
            flush=self.writer.flush,
            is_started=lambda: self.started,
            started_at=lambda: self.started_at,
        )
        users = UserService(self.db, self.clock, run=self.passwords.run)
        return Services(
            status_subscriptions=StatusSubscriptionService(
                db=self.db,
                clock=self.clock,
                config=config.status_subscriptions,
                signer=self.subscription_signer,
                pages=self.subscribable_pages,
                links=self._subscription_links(),
                on_enqueued=self.outbox.wake,
            ),
            checks=checks,
            alerts=alerts,
            silences=SilenceService(
                db=self.db, clock=self.clock, wake_dispatcher=self.wake_dispatcher
            ),
            maintenance=MaintenanceService(
                db=self.db,
                clock=self.clock,
                configured=config.maintenance,
                broken=self.broken,
                wake_dispatcher=self._maintenance_changed,
            ),
            status=status,
            health=HealthService(
                db=self.db,
                clock=self.clock,
                status=status,
                selfwatch=self.selfwatch,
                watchdog=self.watchdog,
                redactor=self.redactor,
                started_at=lambda: self.started_at,
                housekeeping=self.housekeeping,
            ),
            heartbeats=HeartbeatService(
                monitor=self.heartbeats,
                access=self.pings,
                metrics=self.metrics,
                base_url=config.server.base_url(),
                ping_by_name=config.heartbeats.ping_by_name,
            ),
            rules=RuleService(
                engine=self.rules,
                clock=self.clock,
                is_managed=lambda name: name in self.managed.managed_rules,
            ),
            series=series,
            users=users,
            tokens=TokenService(self.db, self.clock, self.authenticator.verified),
            sessions=SessionService(
                self.db,
                self.clock,
                throttle=self.throttle,
                audit=audit,
                ttl=config.auth.session_ttl,
                public_url=config.server.public_url,
                run=self.passwords.run,
            ),
            audit=audit,
            recovery=RecoveryService(recovery=self.recovery, db=self.db),
            objects=ObjectService(self.managed, redactor=self.redactor, broken=self.broken),
            setup=SetupService(
                self.db,
                self.clock,
                enabled=config.auth.enabled,
                users=users,
                throttle=self.throttle,
                audit=audit,
                session_ttl=config.auth.session_ttl,
            ),
            reload=ReloadService(
                file=self.config_file,
                current=lambda: self.config,
                apply=self.apply_config,
                managed=self.managed,
                changes=self.changes,
            ),
            incidents=IncidentService(
                db=self.db,
                clock=self.clock,
                pages=self.status_pages,
                sink=self.status_pages.sink,
            ),
            status_pages=self.status_pages,
            dashboard=DashboardService(
                clock=self.clock,
                checks=checks,
                alerts=alerts,
                series=series,
                changes=self.changes,
                max_streams=config.server.max_event_streams,
                max_streams_per_owner=config.server.max_event_streams_per_user,
            ),
        )

    def _subscription_links(self) -> Links:
        base = self.config.status_subscriptions.public_url or self.config.server.base_url()
        return Links(str(base).rstrip("/"))

    def _subscriber_channels(self, http: aiohttp.ClientSession) -> dict[str, Channel[Any]]:
        """The senders to status page subscribers: mail through the configured SMTP server
        (an email channel's, or the section's own), webhooks by HTTP POST."""
        config = self.config.status_subscriptions
        context = ChannelContext(http, self.config.delivery.timeout.total_seconds(), self.clock.now)
        found: dict[str, Channel[Any]] = {
            subscriber_senders.WEBHOOK_CHANNEL: subscriber_senders.SubscriberWebhooks(context)
        }
        smtp: Any = config.smtp
        sender = config.from_addr
        if config.email_channel is not None:
            smtp = self.config.channel(config.email_channel)
            sender = sender or smtp.from_addr
        if smtp is not None and sender is not None:
            found[subscriber_senders.EMAIL_CHANNEL] = subscriber_senders.SubscriberMailer(
                smtp, sender, context
            )
        return found

    # -- what callers share -------------------------------------------------------------

    def wake_dispatcher(self) -> None:
        """An alert, silence, maintenance window or routing input changed: decide now."""
        self.dispatcher.wake()

    def status_pages_changed(self) -> None:
        """A status page was made, replaced or deleted over the API: rebuild the pages."""
        self.status_pages.invalidate()

    def _maintenance_changed(self) -> None:
        """A maintenance window was made or deleted: alerts and the status pages follow."""
        self.dispatcher.wake()
        self.status_pages.invalidate()

    def _observe_recovery(
        self, check: CheckConfigBase, status: Status, transition: Transition | None
    ) -> None:
        if check.recovery is not None:
            self.recovery.observe(check.name, check.recovery, status, transition)

    async def _scheduled_result(
        self, check: Check[Any], started_at: datetime, result: CheckResult
    ) -> None:
        self.breakers.record(check.config, result.status)
        await self.pipeline.handle(check, started_at, result)

    def _rule_fired(self, rule: RuleConfig, labels: dict[str, str]) -> None:
        """A rule's alert fired: its `recovery:` runs (the check it is about, if a label
        says, is the run's check)."""
        if rule.recovery is not None:
            check = labels.get("check")
            self.recovery.trigger(
                rule.recovery, check if check in self.check_configs else None, "rule"
            )

    async def _probe_check(self, name: str) -> bool | None:
        """A runbook's `verify:` step: run the check once now (its result is not recorded;
        the scheduler's next run is); whether it is UP, None: no such check."""
        check = next((c for c in self.checks if c.name == name), None)
        if check is None:  # a push check cannot be run: its latest state says
            state = self.states.get(name)
            return None if state is None else state.status is Status.UP
        return (await run_once(check)).status is Status.UP

    async def _recovery_hold(self, check: str) -> str | None:
        """Why the automatic recovery of `check` waits now, or None: its circuit breaker is
        not closed (the target keeps failing: probed less often, not healed in a loop), a
        dependency of it is DOWN (healing it is pointless, the dependency is the cause), or
        a maintenance window covers it (people are working on it). By hand it still runs."""
        config = self.check_configs.get(check)
        if config is None:
            return None
        breaker = self.breakers.state(check)
        if breaker is not None and breaker is not BreakerState.CLOSED:
            return f"its circuit breaker is {breaker.value.replace('_', '-')}"
        for dependency in config.depends_on:
            state = self.states.get(dependency)
            if state is not None and state.status is Status.DOWN:
                return f"its dependency {dependency} is DOWN"
        labels = check_labels(config)
        now = self.clock.now()
        stored = [w.window for w in await load_stored_windows(self.db) if w.window is not None]
        for window in [*self.config.maintenance, *stored]:
            try:
                if window.covers(labels) and window.active_at(now):
                    return f"maintenance window {window.name}"
            except Exception:  # a broken window is reported by the dispatcher
                continue
        return None

    def _recovery_channels(self, check: str | None) -> list[str]:
        """Where a recovery run of `check` is told: the check's channels (every channel
        when it names none, or for a run by hand)."""
        config = self.check_configs.get(check) if check is not None else None
        if config is not None and config.notify is not None:
            return list(config.notify)
        return [c.name for c in self.config.notifications]

    def _scheduler_lag(self) -> float | None:
        """How late the last check run started (None: the scheduler is not running)."""
        return self.scheduler.last_lag if self.scheduler.running else None

    def _is_paused(self, name: str) -> bool:
        return bool((s := self.states.get(name)) and s.paused)

    # -- what API-managed objects change (watchkeeper.objects.base.ObjectTarget) ---------

    async def add_check(self, check: Check[Any], *, run: bool = True) -> None:
        """A check joins the service: alerting knows its config, and when `run` and enabled
        the scheduler (or, a push check, the heartbeat monitor) runs it."""
        self.check_configs[check.name] = check.config
        self.redactor.add(check.secrets())
        if run and check.config.enabled:
            if check.config.push:
                await self.heartbeats.add(check)  # type: ignore[arg-type]
            else:
                self.checks.append(check)
                self.scheduler.add(check)

    async def remove_check(self, name: str, check: Check[Any] | None) -> None:
        """Stop the check `name` (`check`: what runs, if anything) and forget its config."""
        if check is not None:
            if check.config.push:
                self.heartbeats.remove(name)
            else:
                await self.scheduler.remove(name)
                if check in self.checks:
                    self.checks.remove(check)
        self.check_configs.pop(name, None)

    async def flush_results(self) -> None:
        """Store the results and states written so far."""
        await self.writer.flush()

    def forget_check(self, name: str) -> None:
        """Drop what the result pipeline remembers of a deleted check."""
        self.pipeline.forget(name)
        self.breakers.forget(name)

    def checks_changed(self) -> None:
        """Open overviews re-fetch their list of checks."""
        self.changes.publish(CHECKS)

    async def put_rule(self, rule: RuleConfig) -> None:
        """Evaluate a new or replaced rule (a replaced one keeps its series)."""
        await self.rules.put(rule)

    async def remove_rule(self, name: str) -> None:
        """Stop evaluating a rule; its open alerts resolve."""
        await self.rules.remove(name)

    def reconfigure_alerting(
        self, *, rules: Iterable[RuleConfig], policies: Iterable[EscalationPolicy]
    ) -> None:
        """Route and escalate by these rules and policies and the current checks."""
        self.dispatcher.reconfigure(
            checks=self.check_configs.values(), rules=rules, policies=policies
        )

    # -- a reloaded config file (watchkeeper.services.reload) ---------------------------

    async def apply_config(self, changes: ConfigChanges) -> None:
        """Run by `changes.config` from now on: channels, checks, rules, policies, windows,
        routes and inhibit rules follow the file; a check whose name stays keeps its state
        and open alert. The reload service holds the API-managed objects' write lock."""
        new = changes.config
        self.config = new
        if self.started:
            self._reload_channels(new, changes.kinds["notifications"].changed)
        self.managed.use_config(new)
        if self.started:
            await self._reload_checks(new, changes)
        else:  # what is built at start follows self.config; alerting reads the configs now
            for name in changes.kinds["checks"].removed:
                self.check_configs.pop(name, None)
            self.check_configs.update({c.name: c for c in new.checks})
        rules = {r.name: r for r in new.rules}
        for name in changes.kinds["rules"].removed:
            await self.rules.remove(name, comment="rule removed from the config file")
        for name in [*changes.kinds["rules"].added, *changes.kinds["rules"].changed]:
            await self.rules.put(rules[name])
        self.services.maintenance.configured = new.maintenance
        self.status_pages.invalidate()  # pages, components and windows may have changed
        self.dispatcher.use_settings(new)
        self.reconfigure_alerting(
            rules=self.managed.rules.values(), policies=self.managed.policies.values()
        )

    def _reload_channels(self, new: Config, changed: list[str]) -> None:
        """Replace the channels in place (the outbox worker holds this very dict): a queued
        notification goes out through its channel as the file now defines it."""
        context = ChannelContext(
            self.http.session, new.delivery.timeout.total_seconds(), self.clock.now
        )
        wanted = {c.name for c in new.notifications}
        for name in [n for n in self.channels if n not in wanted]:
            del self.channels[name]
        for config in new.notifications:
            if config.name not in self.channels or config.name in changed:
                channel = build_channel(config, context)
                self.redactor.add(channel.secrets())
                self.channels[config.name] = channel

    def _running(self, name: str) -> Check[Any] | None:
        found = next((c for c in self.checks if c.name == name), None)
        return found if found is not None else self.heartbeats.by_name(name)

    async def _reload_checks(self, new: Config, changes: ConfigChanges) -> None:
        kinds = changes.kinds["checks"]
        context = CheckContext(self.http.session)
        configs = {c.name: c for c in new.checks}
        replaced: list[Check[Any]] = []
        for name in [*kinds.removed, *kinds.changed]:
            running = self._running(name)
            await self.remove_check(name, running)
            if running is not None:
                replaced.append(running)
        for name in [*kinds.changed, *kinds.added]:
            # A changed check keeps its name, so its state, history and open alert stay.
            config = configs[name]
            if config.enabled:
                await self.add_check(build_check(config, context))
            else:  # known to alerting, built only when enabled (as at start)
                self.check_configs[name] = config
        if kinds.removed:
            await self.flush_results()
            now = self.clock.now()
            async with self.db.begin() as conn:
                for name in kinds.removed:
                    for fingerprint in (check_fingerprint(name), flapping_fingerprint(name)):
                        await lifecycle.resolve(conn, fingerprint, now, comment="check removed")
            for name in kinds.removed:
                self.forget_check(name)
            self.wake_dispatcher()
        for check in replaced:
            with contextlib.suppress(Exception):
                await check.close()
        for name in kinds.changed:
            self.changes.publish(check_key(name))

    # -- start and stop -----------------------------------------------------------------

    async def start(self) -> None:
        """Start every step of the task table in order; if one fails, what had started is
        stopped in reverse and the error is raised."""
        if self._runs:
            self._wire()
        self._runs += 1
        self._started = await start_steps(self.steps)
        self.started = True
        self.started_at = self.clock.now()
        log.info(
            "watchkeeper started: %d checks, %d channels, storage %s",
            len(self.checks),
            len(self.channels),
            self.db.dialect,
        )

    async def stop(self) -> None:
        """Stop in reverse order of start: checks, then deliveries, then storage."""
        self.changes.close()
        started, self._started = self._started, []
        await stop_steps(started)
        gc.unfreeze()
        self.started = False
        log.info("watchkeeper stopped")

    def _task(self, name: str, run: Callable[[], Coroutine[Any, Any, None]]) -> Action:
        async def start() -> None:
            self._tasks[name] = asyncio.create_task(run(), name=name)

        return start

    def _cancel(self, name: str) -> Action:
        async def stop() -> None:
            task = self._tasks.pop(name, None)
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

        return stop

    async def _start_ingest(self) -> None:
        await self.ingest.load()
        await self._task("alert-ingest", self.ingest.run)()

    async def _stop_ingest(self) -> None:
        await self._cancel("alert-ingest")()
        await self.ingest.flush()

    def _task_step(self, name: str, run: Callable[[], Coroutine[Any, Any, None]]) -> Step:
        return Step(name, self._task(name, run), self._cancel(name))

    async def _open_database(self) -> None:
        await self.db.migrate()
        await self._auth_hint()

    async def _load(self) -> None:
        """Build the channels and checks (they share the HTTP session) and load the stored
        state every component starts from."""
        http = self.http.session
        delivery_timeout = self.config.delivery.timeout.total_seconds()
        self.channels.update(
            {
                c.name: build_channel(c, ChannelContext(http, delivery_timeout, self.clock.now))
                for c in self.config.notifications
            }
        )
        for channel in self.channels.values():
            self.redactor.add(channel.secrets())
        self.subscriber_channels.update(self._subscriber_channels(http))
        subscriptions = self.config.status_subscriptions
        if subscriptions.enabled and not (
            subscriptions.public_url or self.config.server.public_url
        ):
            log.warning(
                "status_subscriptions: neither its public_url nor server.public_url is set; "
                "the links in subscribers' mails point at %s",
                self.config.server.base_url(),
            )
        for channel in self.subscriber_channels.values():
            self.redactor.add(channel.secrets())
        self.subscription_signer.use_key(
            await load_key(self.db, secret=lambda value: self.redactor.add([value]))
        )
        context = CheckContext(http)
        built = [build_check(c, context) for c in self.config.checks if c.enabled]
        built += await self.managed.load(context)
        self.checks[:] = [c for c in built if not c.config.push]
        for check in built:
            self.redactor.add(check.secrets())

        self.states.update(await load_states(self.db))
        # With the API-managed checks, rules and policies loaded.
        self.dispatcher.reconfigure(
            checks=self.check_configs.values(),
            rules=self.managed.rules.values(),
            policies=self.managed.policies.values(),
        )
        repaired = await self.alerts.reconcile(self.states, self.clock.now())
        if repaired:
            log.warning("repaired %d alerts that did not match their check's state", repaired)
        self.rules.load(list(self.managed.rules.values()))
        await self.rules.restore()
        await self.flaps.restore()
        for name, state in self.states.items():
            if name in self.check_configs:
                self.metrics.observe_state(name, state.status)
        for check in self.checks:
            self.scheduler.add(check)  # launched by the scheduler's own step
        await self.heartbeats.load(
            heartbeat_checks(built),
            reported={name: state.status for name, state in self.states.items()},
        )
        ping_key, key_source = await load_ping_key(
            self.db, self.config.heartbeats.ping_key, secret=lambda key: self.redactor.add([key])
        )
        self.redactor.add([ping_key])
        self.pings.use_key(ping_key, key_source)

    async def _close_checks(self) -> None:
        for check in self.checks:
            with contextlib.suppress(Exception):
                await check.close()

    async def _stop_writer(self) -> None:
        self.writer.stop()
        task = self._tasks.pop("result-writer", None)
        if task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(task), timeout=5)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self.writer.flush()

    async def _stop_outbox(self) -> None:
        log.info("shutting down: finishing the deliveries in hand")
        self.outbox.stop()  # finishes the delivery in hand
        task = self._tasks.pop("outbox", None)
        if task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=3)

    async def _stop_rules(self) -> None:
        await self._cancel("rules")()
        try:  # so a restart can tell which pending series went stale meanwhile
            await asyncio.wait_for(self.rules.persist(), timeout=3)
        except Exception:
            log.exception("storing the pending rule series at shutdown failed")

    async def _start_status_pages(self) -> None:
        # The first snapshot is there before the server answers its first request.
        await self.status_pages.rebuild()
        await self._task("status-pages", self.status_pages.run)()

    async def _auto_incidents(self) -> None:
        await self.services.incidents.open_for_alerts()

    async def _start_scheduler(self) -> None:
        if self._await_listener:
            self.scheduler.hold()
        self.scheduler.start()

    def hold_checks_until_listening(self) -> Callable[[], None]:
        """Make each start hold the checks' first runs until the returned callback (the
        HTTP server's, once its socket listens) is called; the heartbeats, alerting and the
        rest run from the start as before.

        The app's lifespan starts this runtime before the server binds: a check of
        Watchkeeper's own API (the built-in `watchkeeper-api`) run in between finds nothing
        there and pages as DOWN. Only a caller that will call back may hold: checks held
        by a server that never listens would never run."""
        self._await_listener = True
        return self.listening

    def listening(self) -> None:
        """The HTTP server listens: the held checks start (their first runs are spread over
        the next seconds, as at any start)."""
        self._await_listener = False  # a later start (a runtime started again) holds nothing
        if self.scheduler.held:
            log.info("the server listens: the checks start")
        self.scheduler.release()

    async def _stop_scheduler(self) -> None:
        log.info("shutting down: letting the checks in flight finish")
        await self.scheduler.stop()

    async def _freeze(self) -> None:
        # Everything built so far lives as long as the process: take it out of the cyclic
        # GC's view, so full collections stop pausing the loop for 100+ ms at 5,000 checks.
        gc.collect()
        gc.freeze()
        await self._task("gc-settle", self._freeze_after_first_round)()

    async def _freeze_after_first_round(self) -> None:
        # After its first run each check holds what it keeps for good (state, last result,
        # flap history): freeze that too, or every full collection walks it again.
        await asyncio.sleep(SETTLE_AFTER_S)
        gc.collect()
        gc.freeze()

    async def _auth_hint(self) -> None:
        if not self.config.auth.enabled:
            log.warning("auth.enabled is false: anyone who reaches the API is an admin")
            return
        # While no user exists, each start makes a new setup token (see services/setup.py).
        token = await self.services.setup.start()
        if token is None:
            return
        self.redactor.add([token])  # should it ever reach a log line, it is masked there
        if self.on_setup_url is not None:
            self.on_setup_url(f"{self.config.server.base_url()}/setup?token={token}")
        if await token_store.count_active(self.db, self.clock.now()):
            log.warning(SETUP_HINT)
        else:
            log.warning(NO_CREDENTIALS_HINT)

    def stalled(self) -> str | None:
        """Which core loop is not running (scheduler, dispatcher, outbox), or None when all
        are: what the systemd watchdog keep-alive depends on."""
        if not self.started:
            return "not started"
        return self._loops_stalled()

    def _loops_stalled(self) -> str | None:
        """Which core loop is not running, the start aside: what the self-watch and the
        watchdog ask (they run only while started)."""
        if not self.scheduler.running:
            return "scheduler not running"
        for what in ("dispatcher", "outbox"):
            task = self._tasks.get(what)
            if task is None or task.done():
                return f"{what} loop ended"
        return None


def subscribable_pages(pages: list[StatusPageConfig]) -> dict[str, PageInfo]:
    """The pages one may subscribe to, by slug (the first is the one at /status), with the
    component names a subscription may follow."""
    return {
        page.slug: PageInfo(title=page.title, components=tuple(c.name for c in page.components))
        for page in pages
    }
