"""Incidents on the public status pages: created, updated and resolved by operators (or
opened by a firing critical alert), published to the page and to subscribers.

Lifecycle: `investigating → identified → monitoring → resolved`, then optionally
`postmortem`. Each change adds a public update (Markdown) to the incident's timeline. A
draft is not shown publicly until it is published (`draft: false`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from watchkeeper.core.clock import Clock
from watchkeeper.core.errors import Conflict, Invalid, NotFound
from watchkeeper.statuspage.config import StatusPageConfig
from watchkeeper.statuspage.events import StatusEvent, StatusEventKind, StatusEventSink
from watchkeeper.statuspage.model import (
    COMPONENT_STATUSES,
    IMPACTS,
    INCIDENT_STATUSES,
    RESOLVED,
    Incident,
    impact_status,
)
from watchkeeper.statuspage.snapshot import NoSink, StatusPages, incident_from_row
from watchkeeper.statuspage.views import component_checks
from watchkeeper.store import alerts as alert_store
from watchkeeper.store import status_incidents as store
from watchkeeper.store.database import Database

log = logging.getLogger(__name__)

NO_INCIDENT = "no such incident"
DEFAULT_BODY = {
    "investigating": "We are investigating this issue.",
    "identified": "The issue has been identified and a fix is being worked on.",
    "monitoring": "A fix has been implemented and we are monitoring the results.",
    "resolved": "This incident has been resolved.",
    "postmortem": "A postmortem has been published.",
}


def _new_id() -> str:
    return secrets.token_hex(6)


@dataclass(slots=True)
class IncidentService:
    """Incident writes and reads; each write is one transaction, then the pages rebuild
    (so the page, its JSON and feeds show it on return) and subscribers are told."""

    db: Database
    clock: Clock
    pages: StatusPages
    sink: StatusEventSink = field(default_factory=NoSink)
    _auto: asyncio.Lock = field(default_factory=asyncio.Lock)
    """One pass of automatic incidents at a time (the loop's and any other), so none is
    opened twice for one alert."""

    # -- helpers --------------------------------------------------------------------------

    def configured_pages(self) -> list[StatusPageConfig]:
        """Every status page, in page order (the first is at /status)."""
        return self.pages.pages()

    def page(self, slug: str | None) -> StatusPageConfig:
        """The page `slug` (None: the first); Invalid when there is no such page."""
        configs = self.pages.pages()
        if not configs:
            raise Invalid(
                "no status page is configured (status_page: or status_pages:)", field="page"
            )
        if slug is None:
            return configs[0]
        for config in configs:
            if config.slug == slug:
                return config
        raise Invalid(f"no status page with the slug {slug!r}", field="page")

    @staticmethod
    def _components(
        page: StatusPageConfig, components: Mapping[str, str] | None, impact: str
    ) -> dict[str, str]:
        out: dict[str, str] = {}
        known = {c.name for c in page.components}
        for name, status in (components or {}).items():
            if name not in known:
                raise Invalid(
                    f"components: {name!r} is not a component of the page {page.slug!r}",
                    field="components",
                )
            if status is None or status == "":
                status = impact_status(impact) if impact != "none" else "degraded_performance"
            if status not in COMPONENT_STATUSES:
                raise Invalid(
                    f"components.{name}: {status!r} is not one of {', '.join(COMPONENT_STATUSES)}",
                    field="components",
                )
            out[name] = status
        return out

    @staticmethod
    def _check(status: str | None, impact: str | None) -> None:
        if status is not None and status not in INCIDENT_STATUSES:
            raise Invalid(
                f"status: {status!r} is not one of {', '.join(INCIDENT_STATUSES)}", field="status"
            )
        if impact is not None and impact not in IMPACTS:
            raise Invalid(f"impact: {impact!r} is not one of {', '.join(IMPACTS)}", field="impact")

    async def _publish(self, kind: StatusEventKind, incident: Incident) -> None:
        if incident.draft:
            return
        try:
            page = self.page(incident.page)
            position = self.pages.pages().index(page)
        except (Invalid, ValueError):
            return
        prefix = "/status" if position == 0 else f"/status/{page.slug}"
        latest = incident.updates[0].body if incident.updates else ""
        event = StatusEvent(
            kind=kind,
            page=incident.page,
            subject_id=incident.id,
            title=incident.name,
            status=incident.status,
            impact=incident.impact,
            body=latest,
            components=tuple(incident.components),
            url=f"{self.pages.public_url.rstrip('/')}{prefix}/incidents/{incident.id}",
            at=incident.updated_at,
        )
        try:
            await self.sink.publish(event)
        except Exception:
            log.exception("publishing %s of incident %s failed", kind, incident.id)

    # -- reading --------------------------------------------------------------------------

    async def get(self, incident_id: str) -> Incident:
        row = await store.get_incident(self.db, incident_id)
        if row is None:
            raise NotFound(NO_INCIDENT)
        return incident_from_row(row)

    async def list_incidents(
        self,
        *,
        page: str | None = None,
        unresolved: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[Incident], int]:
        rows, total = await store.list_incidents(
            self.db, page=page, unresolved=unresolved, limit=limit, offset=offset
        )
        return [incident_from_row(r) for r in rows], total

    # -- writing --------------------------------------------------------------------------

    async def create(
        self,
        *,
        name: str,
        actor: str,
        page: str | None = None,
        status: str = "investigating",
        impact: str = "none",
        body: str | None = None,
        components: Mapping[str, str] | None = None,
        draft: bool = False,
        started_at: datetime | None = None,
        source: str = "api",
        alert_fingerprint: str | None = None,
    ) -> Incident:
        """Open an incident (its first update says `body`); Invalid naming the field."""
        self._check(status, impact)
        if status in RESOLVED:
            raise Invalid(
                "status: a new incident is investigating, identified or monitoring", field="status"
            )
        config = self.page(page)
        affected = self._components(config, components, impact)
        now = self.clock.now()
        incident_id = _new_id()
        async with self.db.begin() as conn:
            await store.insert_incident(
                conn,
                {
                    "id": incident_id,
                    "page": config.slug,
                    "name": name,
                    "status": status,
                    "impact": impact,
                    "draft": draft,
                    "created_at": now,
                    "updated_at": now,
                    "started_at": started_at or now,
                    "monitoring_at": now if status == "monitoring" else None,
                    "resolved_at": None,
                    "postmortem": None,
                    "source": source,
                    "alert_fingerprint": alert_fingerprint,
                    "created_by": actor,
                },
            )
            await store.set_components(conn, incident_id, affected)
            await store.add_update(
                conn,
                {
                    "id": _new_id(),
                    "incident_id": incident_id,
                    "status": status,
                    "body": body or DEFAULT_BODY[status],
                    "created_at": now,
                    "display_at": now,
                    "affected": [
                        {"name": n, "old_status": "operational", "new_status": s}
                        for n, s in affected.items()
                    ],
                    "created_by": actor,
                },
            )
        await self.pages.refresh()
        incident = await self.get(incident_id)
        await self._publish("incident.created", incident)
        return incident

    async def update(
        self,
        incident_id: str,
        *,
        actor: str,
        status: str | None = None,
        body: str | None = None,
        impact: str | None = None,
        name: str | None = None,
        components: Mapping[str, str] | None = None,
        draft: bool | None = None,
        postmortem: str | None = None,
    ) -> Incident:
        """Change an incident; a new status, body or component change adds a public update.
        `resolved` incidents take only `postmortem` (Conflict otherwise)."""
        self._check(status, impact)
        current = await self.get(incident_id)
        config = self.page(current.page)
        if current.resolved and status not in (None, "postmortem", current.status):
            raise Conflict("the incident is resolved; it can only get a postmortem")
        if status == "postmortem" and not (current.resolved or postmortem):
            raise Invalid(
                "status: postmortem comes after resolved, with a postmortem text", field="status"
            )
        affected = (
            self._components(config, components, impact or current.impact)
            if components is not None
            else None
        )
        now = self.clock.now()
        new_status = status or current.status
        changes: dict[str, Any] = {"updated_at": now}
        if status is not None:
            changes["status"] = status
            if status == "monitoring" and current.monitoring_at is None:
                changes["monitoring_at"] = now
            if status in RESOLVED and current.resolved_at is None:
                changes["resolved_at"] = now
        if impact is not None:
            changes["impact"] = impact
        if name is not None:
            changes["name"] = name
        if draft is not None:
            changes["draft"] = draft
        if postmortem is not None:
            changes["postmortem"] = postmortem
        moved = [
            {"name": n, "old_status": current.components.get(n, "operational"), "new_status": s}
            for n, s in (affected or {}).items()
            if current.components.get(n) != s
        ]
        if new_status in RESOLVED and status is not None and not current.resolved:
            moved += [
                {"name": n, "old_status": s, "new_status": "operational"}
                for n, s in current.components.items()
            ]
        timeline = body is not None or (status is not None and status != current.status) or moved
        async with self.db.begin() as conn:
            await store.update_incident(conn, incident_id, **changes)
            if affected is not None:
                await store.set_components(conn, incident_id, {**current.components, **affected})
            if timeline:
                await store.add_update(
                    conn,
                    {
                        "id": _new_id(),
                        "incident_id": incident_id,
                        "status": new_status,
                        "body": body if body is not None else DEFAULT_BODY[new_status],
                        "created_at": now,
                        "display_at": now,
                        "affected": moved,
                        "created_by": actor,
                    },
                )
        await self.pages.refresh()
        incident = await self.get(incident_id)
        if current.draft and not incident.draft:
            await self._publish("incident.created", incident)
        elif incident.resolved and not current.resolved:
            await self._publish("incident.resolved", incident)
        elif timeline:
            await self._publish("incident.updated", incident)
        return incident

    async def resolve(self, incident_id: str, *, actor: str, body: str | None = None) -> Incident:
        """Resolve an open incident (Conflict if it is resolved already)."""
        current = await self.get(incident_id)
        if current.resolved:
            raise Conflict("the incident is resolved already")
        return await self.update(incident_id, actor=actor, status="resolved", body=body)

    async def delete(self, incident_id: str) -> None:
        async with self.db.begin() as conn:
            if not await store.delete_incident(conn, incident_id):
                raise NotFound(NO_INCIDENT)
        await self.pages.refresh()

    # -- automatic incidents --------------------------------------------------------------

    async def open_for_alerts(self) -> list[Incident]:
        """For each page with `auto_incidents` on: a firing critical alert on one of its
        components opens an incident (a draft, or published), once per alert."""
        pages = [p for p in self.pages.pages() if p.auto_incidents != "off"]
        if not pages:
            return []
        async with self._auto:
            return await self._open_for_alerts(pages)

    async def _open_for_alerts(self, pages: list[StatusPageConfig]) -> list[Incident]:
        alerts, _ = await alert_store.list_alerts(
            self.db, status="firing", severity="critical", limit=1000
        )
        made: list[Incident] = []
        checks = self.pages._inputs()
        for page in pages:
            for alert in alerts:
                component = next(
                    (
                        c
                        for c in page.components
                        if alert.labels.get("component") == c.name
                        or (
                            alert.check
                            and alert.check in {x.name for x in component_checks(c, checks)}
                        )
                    ),
                    None,
                )
                if component is None:
                    continue
                async with self.db.connect() as conn:
                    if await store.for_alert(conn, page.slug, alert.id):
                        continue
                made.append(
                    await self.create(
                        page=page.slug,
                        name=f"{component.name}: {alert.summary or alert.name}"[:200],
                        actor="watchkeeper",
                        impact="critical",
                        body=f"We are investigating a problem with {component.name}.",
                        components={component.name: "major_outage"},
                        draft=page.auto_incidents == "draft",
                        started_at=alert.started_at,
                        source="auto",
                        alert_fingerprint=alert.id,
                    )
                )
        return made
