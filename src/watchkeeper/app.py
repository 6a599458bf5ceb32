"""Builds the object graph and owns every background task (start, then stop in reverse)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import aiohttp
from fastapi import FastAPI
from starlette.middleware.gzip import GZipMiddleware

from watchkeeper import __version__
from watchkeeper.alerting.check_alerts import CheckAlerts
from watchkeeper.alerting.dispatcher import Dispatcher, build_dispatcher
from watchkeeper.alerting.flap_alerts import FlapTracker
from watchkeeper.alerting.rules import RuleEngine
from watchkeeper.auth import tokens as token_store
from watchkeeper.auth import users as user_store
from watchkeeper.auth.audit import AuditMiddleware
from watchkeeper.auth.credentials import Authenticator
from watchkeeper.auth.throttle import LoginThrottle
from watchkeeper.auth.workers import PasswordWorkers
from watchkeeper.broken import BrokenObjects
from watchkeeper.checks import CheckContext, build_check
from watchkeeper.checks.base import Check, CheckConfigBase
from watchkeeper.clock import Clock, SystemClock
from watchkeeper.config import Config
from watchkeeper.events import ALERTS, ChangeFeed, check_key
from watchkeeper.heartbeat.access import PingAccess, load_ping_key
from watchkeeper.heartbeat.monitor import HeartbeatMonitor, heartbeat_checks
from watchkeeper.managed import ManagedObjects
from watchkeeper.metrics.exposition import ServiceMetrics
from watchkeeper.notify.channels import build_channel
from watchkeeper.notify.channels.base import Channel, ChannelContext
from watchkeeper.notify.outbox import OutboxWorker
from watchkeeper.pipeline import ResultPipeline
from watchkeeper.redact import Redactor, url_secrets
from watchkeeper.scheduler import Scheduler
from watchkeeper.store.database import Database
from watchkeeper.store.results import ResultWriter, load_states
from watchkeeper.store.retention import Retention

log = logging.getLogger(__name__)

SETTLE_AFTER_S = 15.0
"""First runs are spread over at most 5 s; by 15 s every check has run once."""


NO_CREDENTIALS_HINT = (
    "no users or tokens yet: create one with 'watchkeeper token create --role admin'"
)


def http_session(limit: int) -> aiohttp.ClientSession:
    """One pooled client for all checks and deliveries (aiohttp: the fastest asyncio client)."""
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, ttl_dns_cache=60)
    return aiohttp.ClientSession(
        connector=connector,
        headers={"User-Agent": f"watchkeeper/{__version__}"},
        # Checks must see the target's cookies fresh each time.
        cookie_jar=aiohttp.DummyCookieJar(),
    )


class Runtime:
    """Everything a running Watchkeeper is made of, wired once."""

    def __init__(
        self, config: Config, *, clock: Clock | None = None, redactor: Redactor | None = None
    ) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.redactor = redactor or Redactor()
        self.redactor.add(url_secrets(config.storage.url))
        self.metrics = ServiceMetrics()
        self.changes = ChangeFeed()
        self.db = Database(config.storage.url)
        self.authenticator = Authenticator(self.db, config, self.clock)
        self.throttle = LoginThrottle(self.db, config.auth.login_throttle, self.clock)
        self.passwords = PasswordWorkers()  # argon2, off the event loop and bounded
        self.check_configs: dict[str, CheckConfigBase] = {c.name: c for c in config.checks}
        self.broken = BrokenObjects(self.redactor)
        """Stored objects that cannot be evaluated (fail-open; see watchkeeper.broken)."""
        self.managed = ManagedObjects(self)  # checks, policies and rules made over the API
        self.started = False
        self.started_at: datetime | None = None
        self._writer_task: asyncio.Task[None] | None = None
        self._outbox_task: asyncio.Task[None] | None = None
        self._retention_task: asyncio.Task[None] | None = None
        self._settle_task: asyncio.Task[None] | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._dispatcher_task: asyncio.Task[None] | None = None
        self._rules_task: asyncio.Task[None] | None = None
        self.rules: RuleEngine | None = None
        self.dispatcher: Dispatcher | None = None
        self.heartbeats: HeartbeatMonitor | None = None
        self.pings: PingAccess | None = None
        self._http: aiohttp.ClientSession | None = None
        self.checks: list[Check[Any]] = []
        self.channels: dict[str, Channel[Any]] = {}
        self.scheduler: Scheduler | None = None
        self.outbox: OutboxWorker | None = None
        self.writer: ResultWriter | None = None
        self.pipeline: ResultPipeline | None = None

    async def start(self) -> None:
        await self.db.migrate()
        await self._auth_hint()
        self._http = http_session(self.config.scheduler.max_concurrency + 50)
        delivery_timeout = self.config.delivery.timeout.total_seconds()
        self.channels = {
            c.name: build_channel(c, ChannelContext(self._http, delivery_timeout, self.clock.now))
            for c in self.config.notifications
        }
        for channel in self.channels.values():
            self.redactor.add(channel.secrets())
        context = CheckContext(self._http)
        built = [build_check(c, context) for c in self.config.checks if c.enabled]
        built += await self.managed.load(context)
        self.checks = [c for c in built if not c.config.push]
        for check in built:
            self.redactor.add(check.secrets())

        states = await load_states(self.db)
        self.outbox = OutboxWorker(self.db, self.channels, self.config.delivery, self.clock)
        self.flaps = FlapTracker(
            self.db, self.config.alerting.flapping, on_change=lambda: self._wake_dispatcher()
        )
        self.dispatcher = build_dispatcher(
            self.db,
            self.clock,
            self.config,
            states=states,
            on_enqueued=self.outbox.wake,
            on_pass=lambda: self.changes.publish(ALERTS),
            is_flapping=self.flaps.is_flapping,
            checks=self.check_configs.values(),
            rules=self.managed.rules.values(),
            policies=self.managed.policies.values(),
            broken=self.broken,
        )
        self.broken.on_change = self.dispatcher.wake
        alerts = CheckAlerts(self.db, self.check_configs, on_change=self.dispatcher.wake)
        repaired = await alerts.reconcile(states, self.clock.now())
        if repaired:
            log.warning("repaired %d alerts that did not match their check's state", repaired)
        self.writer = ResultWriter(self.db, states.get)
        self.rules = RuleEngine(
            self.db,
            list(self.managed.rules.values()),
            self.clock,
            on_change=self.dispatcher.wake,
            broken=self.broken,
        )
        await self.rules.restore()
        self.pipeline = ResultPipeline(
            states,
            self.writer,
            alerts,
            self.metrics,
            self.rules,
            self.flaps,
            on_change=lambda name: self.changes.publish(check_key(name)),
        )
        for name, state in states.items():
            if name in self.check_configs:
                self.metrics.observe_state(name, state.status)

        def is_paused(name: str) -> bool:
            return bool((s := states.get(name)) and s.paused)

        self.scheduler = Scheduler(
            self.checks,
            self.pipeline.handle,
            self.clock,
            max_concurrency=self.config.scheduler.max_concurrency,
            shutdown_grace=self.config.scheduler.shutdown_grace.total_seconds(),
            on_lag=self.metrics.scheduler_lag.observe,
            is_paused=is_paused,
        )
        self.heartbeats = HeartbeatMonitor(
            self.db,
            heartbeat_checks(built),
            self.pipeline.handle,
            self.clock,
            reported={name: state.status for name, state in states.items()},
            is_paused=is_paused,
            on_paused_result=self.pipeline.record_paused,
            body_bytes_per_day=self.config.heartbeats.body_bytes_per_day,
            broken=self.broken,
        )
        await self.heartbeats.load()
        ping_key, key_source = await load_ping_key(
            self.db, self.config.heartbeats.ping_key, secret=lambda key: self.redactor.add([key])
        )
        self.redactor.add([ping_key])
        self.pings = PingAccess(
            self.config.heartbeats, ping_key, self.clock.monotonic, key_source=key_source
        )
        self._heartbeat_task = asyncio.create_task(self.heartbeats.run(), name="heartbeats")
        self._writer_task = asyncio.create_task(self.writer.run(), name="result-writer")
        self._outbox_task = asyncio.create_task(self.outbox.run(), name="outbox")
        self._dispatcher_task = asyncio.create_task(self.dispatcher.run(), name="dispatcher")
        self._rules_task = asyncio.create_task(self.rules.run(), name="rules")
        self._retention_task = asyncio.create_task(
            Retention(self.db, self.config.storage.retention, self.clock).run(), name="retention"
        )
        self.scheduler.start()
        # Everything built so far lives as long as the process: take it out of the cyclic
        # GC's view, so full collections stop pausing the loop for 100+ ms at 5,000 checks.
        gc.collect()
        gc.freeze()
        self._settle_task = asyncio.create_task(self._freeze_after_first_round(), name="gc-settle")
        self.started = True
        self.started_at = self.clock.now()
        log.info(
            "watchkeeper started: %d checks, %d channels, storage %s",
            len(self.checks),
            len(self.channels),
            self.db.dialect,
        )

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
        if not await user_store.count_users(self.db) and not await token_store.count_active(
            self.db, self.clock.now()
        ):
            log.warning(NO_CREDENTIALS_HINT)

    def _wake_dispatcher(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.wake()

    def stalled(self) -> str | None:
        """Which core loop is not running (scheduler, dispatcher, outbox), or None when all
        are: what the systemd watchdog keep-alive depends on."""
        if not self.started:
            return "not started"
        if self.scheduler is None or not self.scheduler.running:
            return "scheduler not running"
        for what, task in (("dispatcher", self._dispatcher_task), ("outbox", self._outbox_task)):
            if task is None or task.done():
                return f"{what} loop ended"
        return None

    async def stop(self) -> None:
        """Stop in reverse order of start: checks, then deliveries, then storage."""
        self.changes.close()
        if self.scheduler is not None:
            log.info("shutting down: letting the checks in flight finish")
            await self.scheduler.stop()
        for task in (self._heartbeat_task, self._rules_task, self._dispatcher_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self.rules is not None and self._rules_task is not None:
            try:  # so a restart can tell which pending series went stale meanwhile
                await asyncio.wait_for(self.rules.persist(), timeout=3)
            except Exception:
                log.exception("storing the pending rule series at shutdown failed")
        if self.outbox is not None and self._outbox_task is not None:
            log.info("shutting down: finishing the deliveries in hand")
            self.outbox.stop()  # finishes the delivery in hand
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._outbox_task, timeout=3)
        if self.writer is not None and self._writer_task is not None:
            self.writer.stop()
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._writer_task), timeout=5)
        background = [
            t for t in (self._writer_task, self._retention_task, self._settle_task) if t is not None
        ]
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        if self.writer is not None:
            await self.writer.flush()
        for check in self.checks:
            with contextlib.suppress(Exception):
                await check.close()
        if self._http is not None:
            await self._http.close()
        await self.passwords.shutdown()
        await self.db.close()
        gc.unfreeze()
        self.started = False
        log.info("watchkeeper stopped")


def create_app(config: Config, *, runtime: Runtime | None = None) -> FastAPI:
    """The ASGI app; its lifespan starts and stops the runtime."""
    from watchkeeper import edge
    from watchkeeper.api import routes

    rt = runtime or Runtime(config)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await rt.start()
        try:
            yield
        finally:
            await rt.stop()

    app = FastAPI(
        title="Watchkeeper",
        version=__version__,
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # served by web.docs, with the assets vendored under /static
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.runtime = rt
    app.add_middleware(AuditMiddleware, runtime=rt)
    # Pages of 1,000 checks are about a megabyte of HTML, a tenth of that compressed;
    # event streams are left alone by the middleware.
    app.add_middleware(GZipMiddleware, minimum_size=2048, compresslevel=6)
    edge.install(app, rt)  # body limits, authentication before bodies, security headers
    routes.include_all(app)
    return app
