"""In-memory snapshots of the status pages, rebuilt on change and served as ready bytes.

Requests never touch the database: each page's HTML, JSON, feeds and badges are rendered
when something changes (a check's state, an alert, an incident, a maintenance window's
start or end) and answered from memory, with an ETag and Last-Modified. Component states
come from memory too; incidents, maintenance windows made over the API and the 90-day
history are read from the database with a timeout. When that read fails (the database is
down, slow or locked), the page is rebuilt from what was read last and says how old it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

from watchkeeper.alerting import stored_windows
from watchkeeper.alerting.maintenance import MaintenanceWindow
from watchkeeper.checks.base import CheckConfigBase
from watchkeeper.core.changes import ChangeFeed
from watchkeeper.core.checkstate import CheckState
from watchkeeper.core.clock import Clock
from watchkeeper.statuspage import html, render
from watchkeeper.statuspage.config import StatusPageConfig
from watchkeeper.statuspage.events import StatusEvent, StatusEventSink
from watchkeeper.statuspage.maintenance import plan
from watchkeeper.statuspage.model import AffectedComponent, Incident, IncidentUpdate
from watchkeeper.statuspage.views import (
    HISTORY_DAYS,
    CheckInput,
    PageView,
    build_page,
    component_checks,
)
from watchkeeper.store import status_history, status_incidents
from watchkeeper.store.database import Database

log = logging.getLogger(__name__)

STATUS_PAGE = "status-page"
"""The change-feed key that asks for a rebuild (an incident changed)."""

HISTORY_EVERY = timedelta(minutes=5)
REFRESH_EVERY = 30.0
"""At least this often (seconds) a page is rebuilt, so maintenance and day bars move on."""
MIN_GAP = 0.25
"""Rebuilds on change come at most this often (seconds): a burst of changes is one."""
KEPT_INCIDENTS = 1000
"""Published incidents held per page (the history pages page through these)."""


class NoSink:
    """The default StatusEventSink: nobody subscribes."""

    async def publish(self, event: StatusEvent) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Rendered:
    """One ready response body."""

    body: bytes
    content_type: str
    etag: str
    gzipped: bytes | None = None

    @classmethod
    def of(cls, body: bytes, content_type: str) -> Rendered:
        etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
        packed = gzip.compress(body, 6, mtime=0) if len(body) >= 1024 else None
        return cls(body, content_type, etag, packed if packed and len(packed) < len(body) else None)


HTML = "text/html; charset=utf-8"
JSON = "application/json"
CSS = "text/css; charset=utf-8"
SVG = "image/svg+xml"
ATOM = "application/atom+xml; charset=utf-8"
RSS = "application/rss+xml; charset=utf-8"


@dataclass(slots=True)
class PageSnapshot:
    """A page's responses at one moment; a few (history pages, badges for other spans,
    incident pages) are rendered on first request and kept until the next snapshot."""

    view: PageView
    fixed: dict[str, Rendered]
    renderer: html.PageRenderer
    css_version: str
    built_monotonic: float
    last_modified: str
    """HTTP date of when the data last changed."""
    lazy: dict[str, Rendered | None] = field(default_factory=dict)

    def get(self, path: str, query: str = "") -> Rendered | None:
        """The response for `path` under the page's prefix ("" is the page), or None."""
        found = self.fixed.get(path)
        if found is not None:
            return found
        key = f"{path}?{query}"
        if key in self.lazy:
            return self.lazy[key]
        made = self._make(path, query)
        if len(self.lazy) < 2000:
            self.lazy[key] = made
        return made

    def _make(self, path: str, query: str) -> Rendered | None:
        view = self.view
        if path == "/history":
            number = _int_param(query, "page", 1)
            body = self.renderer.history(view, number, self.css_version) if number else None
            return Rendered.of(body, HTML) if body is not None else None
        if path.startswith("/incidents/"):
            wanted = path.removeprefix("/incidents/")
            for incident in view.incidents:
                if incident.id == wanted:
                    return Rendered.of(
                        self.renderer.incident(view, incident, self.css_version), HTML
                    )
            return None
        if path.startswith("/badge/") and path.endswith("/uptime.svg"):
            component = view.component(path[len("/badge/") : -len("/uptime.svg")])
            days = _int_param(query, "days", 30)
            if component is None or days is None or not 1 <= days <= HISTORY_DAYS:
                return None
            return Rendered.of(render.uptime_badge(view, component, days), SVG)
        if path.startswith("/badge/") and path.endswith(".svg"):
            component = view.component(path[len("/badge/") : -len(".svg")])
            if component is None:
                return None
            return Rendered.of(render.status_badge(component), SVG)
        return None

    @property
    def age(self) -> float:
        """Seconds since this snapshot was built."""
        return time.monotonic() - self.built_monotonic


def _int_param(query: str, name: str, default: int) -> int | None:
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if key == name:
            return int(value) if value.isdigit() and len(value) < 7 else None
    return default


def incident_from_row(row: Mapping[str, Any]) -> Incident:
    return Incident(
        id=row["id"],
        page=row["page"],
        name=row["name"],
        status=row["status"],
        impact=row["impact"],
        draft=bool(row["draft"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        started_at=row["started_at"],
        monitoring_at=row["monitoring_at"],
        resolved_at=row["resolved_at"],
        components=dict(row.get("components") or {}),
        updates=tuple(
            IncidentUpdate(
                id=u["id"],
                incident_id=u["incident_id"],
                status=u["status"],
                body=u["body"],
                created_at=u["created_at"],
                display_at=u["display_at"],
                affected=tuple(
                    AffectedComponent(a["name"], a["old_status"], a["new_status"])
                    for a in (u["affected"] or [])
                ),
            )
            for u in row.get("updates") or ()
        ),
        postmortem=row["postmortem"],
        source=row["source"],
        alert_fingerprint=row["alert_fingerprint"],
    )


class StatusPages:
    """Keeps every page's snapshot current; see the module docstring."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        pages: Callable[[], list[StatusPageConfig]],
        checks: Mapping[str, CheckConfigBase],
        states: Mapping[str, CheckState],
        windows: Callable[[], Sequence[MaintenanceWindow]],
        changes: ChangeFeed,
        public_url: str,
        sink: StatusEventSink | None = None,
        on_alerts: Callable[[], Awaitable[None]] | None = None,
        on_pages: Callable[[list[StatusPageConfig]], None] | None = None,
        db_timeout: float = 3.0,
    ) -> None:
        self.db = db
        self.clock = clock
        self.pages = pages
        self.checks = checks
        self.states = states
        self.windows = windows
        self.changes = changes
        self.public_url = public_url
        self.sink: StatusEventSink = sink or NoSink()
        self.on_alerts = on_alerts
        """Called when alerts changed (automatic incidents)."""
        self.on_pages = on_pages
        """Told the pages at each rebuild (the subscriptions follow the pages that exist)."""
        self.db_timeout = db_timeout
        self.renderer = html.PageRenderer()
        self.snapshots: dict[str, PageSnapshot] = {}
        self.first: str | None = None
        self.domains: dict[str, str] = {}
        self._incidents: dict[str, list[Incident]] = {}
        self._stored_windows: list[MaintenanceWindow] = []
        self._daily: dict[str, dict[int, tuple[int, int, int]]] = {}
        self._daily_at: datetime | None = None
        self._loaded_at: datetime | None = None
        self._stale = False
        self._dirty = True
        self._since: dict[str, tuple[str, datetime]] = {}
        self._maintenance_seen: dict[str, dict[str, str]] = {}
        """Per page: each listed maintenance's status at the last rebuild."""
        self._created_at = clock.now()
        self._lock = asyncio.Lock()
        self._built = asyncio.Condition()
        self.builds = 0
        self._last_modified: dict[str, tuple[bytes, str]] = {}

    # -- serving --------------------------------------------------------------------------

    def snapshot(self, slug: str | None = None) -> PageSnapshot | None:
        """The snapshot of the page `slug` (None: the first page)."""
        key = self.first if slug is None else slug
        return self.snapshots.get(key) if key is not None else None

    def for_host(self, host: str) -> PageSnapshot | None:
        """The page whose `domain` is `host` (a port is ignored unless configured)."""
        slug = self.domains.get(host) or self.domains.get(host.rsplit(":", 1)[0])
        return self.snapshots.get(slug) if slug else None

    # -- rebuilding -----------------------------------------------------------------------

    def invalidate(self) -> None:
        """Incidents or windows changed: read them again at the next rebuild (soon)."""
        self._dirty = True
        self.changes.publish(STATUS_PAGE)

    async def refresh(self) -> None:
        """Read the database again and rebuild now (after an incident was written); a
        failure is logged (the write it follows is made; the loop tries again)."""
        self._dirty = True
        try:
            await self.rebuild()
        except Exception:
            log.exception("status pages: rebuilding failed")

    async def wait_built(self, after: int, timeout: float) -> int:
        """Wait until a build later than number `after` finished; its number."""
        async with self._built:
            await asyncio.wait_for(self._built.wait_for(lambda: self.builds > after), timeout)
            return self.builds

    async def rebuild(self) -> None:
        async with self._lock:
            now = self.clock.now()
            configs = self.pages()
            if self.on_pages is not None:
                self.on_pages(configs)
            if self._dirty or self._daily_at is None or now - self._daily_at >= HISTORY_EVERY:
                await self._read_database(configs, now)
            snapshots: dict[str, PageSnapshot] = {}
            domains: dict[str, str] = {}
            events: list[StatusEvent] = []
            for position, config in enumerate(configs):
                view = self._view(config, position, now, events)
                snapshots[config.slug] = self._render(view)
                if config.domain:
                    domains[config.domain] = config.slug
            self.snapshots = snapshots
            self.domains = domains
            self.first = configs[0].slug if configs else None
        async with self._built:
            self.builds += 1
            self._built.notify_all()
        for event in events:
            try:
                await self.sink.publish(event)
            except Exception:
                log.exception("publishing %s of %s failed", event.kind, event.subject_id)

    async def _read_database(self, configs: list[StatusPageConfig], now: datetime) -> None:
        try:
            await asyncio.wait_for(self._read(configs, now), self.db_timeout)
        except Exception as exc:
            if not self._stale:
                log.warning(
                    "status pages: reading the database failed (%s); serving what was read last",
                    type(exc).__name__,
                )
            self._stale = True
            return
        self._stale = False
        self._dirty = False
        self._loaded_at = now
        self._daily_at = now

    async def _read(self, configs: list[StatusPageConfig], now: datetime) -> None:
        incidents: dict[str, list[Incident]] = {}
        for config in configs:
            rows, _total = await status_incidents.list_incidents(
                self.db, page=config.slug, include_drafts=False, limit=KEPT_INCIDENTS
            )
            incidents[config.slug] = [incident_from_row(r) for r in rows]
        stored = await stored_windows.load_windows(self.db)
        names = sorted({c for config in configs for c in self._feeding(config)})
        start = datetime.fromtimestamp(
            (int(now.timestamp()) // 86400 - HISTORY_DAYS + 1) * 86400, UTC
        )
        daily = await status_history.daily_counts(self.db, names, start, now + timedelta(hours=1))
        self._incidents, self._stored_windows, self._daily = incidents, stored, daily

    def _feeding(self, config: StatusPageConfig) -> set[str]:
        names: set[str] = set()
        for component in config.components:
            if component.checks is not None:
                names.update(component.checks)
            else:
                names.update(c.name for c in self.checks.values() if c.component == component.name)
        return names

    def _inputs(self) -> list[CheckInput]:
        out = []
        for config in list(self.checks.values()):
            state = self.states.get(config.name)
            status = (
                "unknown" if state is None else "paused" if state.paused else state.status.value
            )
            labels = {**config.labels, "check": config.name, "severity": config.severity.value}
            if config.component:
                labels["component"] = config.component
            out.append(CheckInput(config.name, status, config.severity.value, labels))
        return out

    def _view(
        self, config: StatusPageConfig, position: int, now: datetime, events: list[StatusEvent]
    ) -> PageView:
        checks = self._inputs()
        labels: dict[str, list[dict[str, str]]] = {}
        operational: dict[str, bool] = {}
        for component in config.components:
            feeding = component_checks(component, checks)
            labels[component.name] = [c.labels for c in feeding]
            operational[component.name] = all(
                c.state in ("up", "paused", "unknown") for c in feeding
            )
        windows = [*self.windows(), *self._stored_windows]
        maintenances = plan(config.slug, windows, labels, now, operational=operational)
        view = build_page(
            config,
            position=position,
            public_url=self.public_url,
            checks=checks,
            incidents=self._incidents.get(config.slug, []),
            maintenances=maintenances,
            daily=self._daily,
            since=self._since,
            now=now,
            data_as_of=self._loaded_at,
            stale=self._stale,
            created_at=self._created_at,
        )
        for shown in view.components:
            key = f"{config.slug}\x1f{shown.name}"
            if self._since.get(key, ("",))[0] != shown.status:
                self._since[key] = (shown.status, now)
        seen = self._maintenance_seen.setdefault(config.slug, {})
        current: dict[str, str] = {}
        for m in maintenances:
            previous = seen.get(m.id)
            current[m.id] = m.status
            kind = None
            if m.status == "in_progress" and previous not in (None, "in_progress"):
                kind = "maintenance.started"
            elif m.status == "completed" and previous in ("in_progress", "verifying"):
                kind = "maintenance.completed"
            if kind is not None:
                events.append(
                    StatusEvent(
                        kind=kind,  # type: ignore[arg-type]
                        page=config.slug,
                        subject_id=m.id,
                        title=m.name,
                        status=m.status,
                        impact="maintenance",
                        body=m.body,
                        components=m.components,
                        url=f"{view.url}#maintenance-{m.id}",
                        at=now,
                    )
                )
        self._maintenance_seen[config.slug] = current  # forgets what is no longer listed
        return view

    def _render(self, view: PageView) -> PageSnapshot:
        css = self.renderer.stylesheet(view)
        css_version = hashlib.sha256(css).hexdigest()[:10]
        fixed: dict[str, Rendered] = {
            "": Rendered.of(self.renderer.page(view, css_version), HTML),
            "/style.css": Rendered.of(css, CSS),
            "/feed.atom": Rendered.of(render.atom(view), ATOM),
            "/feed.rss": Rendered.of(render.rss(view), RSS),
        }
        for path, body in render.documents(view).items():
            fixed[path] = Rendered.of(body, JSON)
        for component in view.components:
            badge = Rendered.of(render.status_badge(component), SVG)
            fixed[f"/badge/{component.id}.svg"] = badge
        # Last-Modified moves when what the page says changes, not at every rebuild.
        digest = hashlib.blake2b(
            fixed["/components.json"].body
            + fixed["/incidents.json"].body
            + fixed["/scheduled-maintenances.json"].body
        ).digest()
        previous = self._last_modified.get(view.config.slug)
        if previous is None or previous[0] != digest:
            stamp = format_datetime(view.built_at.astimezone(UTC), usegmt=True)
            self._last_modified[view.config.slug] = (digest, stamp)
        return PageSnapshot(
            view=view,
            fixed=fixed,
            renderer=self.renderer,
            css_version=css_version,
            built_monotonic=time.monotonic(),
            last_modified=self._last_modified[view.config.slug][1],
        )

    # -- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        """Rebuild on every change (at most every MIN_GAP s) and every REFRESH_EVERY s."""
        with self.changes.subscribe() as subscription:
            while True:
                try:
                    await self.rebuild()
                except Exception:
                    log.exception("status pages: rebuilding failed")
                keys = await subscription.changes(REFRESH_EVERY)
                if keys is None:
                    return
                if self.on_alerts is not None and "alerts" in keys:
                    try:
                        await self.on_alerts()
                    except Exception:
                        log.exception("status pages: automatic incidents failed")
                with contextlib.suppress(Exception):
                    await asyncio.sleep(MIN_GAP)
