"""What a public status page tells its subscribers: incidents and maintenance changing.

The status page publishes these; the subscriptions package delivers them (email, webhooks)
through the durable outbox. Kept apart so either side can change without the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

StatusEventKind = Literal[
    "incident.created",
    "incident.updated",
    "incident.resolved",
    "maintenance.started",
    "maintenance.completed",
]


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """One public change on a status page, as a subscriber is told about it."""

    kind: StatusEventKind
    page: str  # the status page's slug
    subject_id: str  # the incident's or the maintenance's id
    title: str
    status: str  # Statuspage's value: investigating ... resolved, scheduled ... completed
    impact: str  # none | minor | major | critical | maintenance
    body: str  # the latest public update, Markdown source
    components: tuple[str, ...]  # names of the affected components
    url: str  # link to the incident on the status page
    at: datetime


class StatusEventSink(Protocol):
    """Receives the status page's public changes (the subscriptions package implements it)."""

    async def publish(self, event: StatusEvent) -> None: ...
