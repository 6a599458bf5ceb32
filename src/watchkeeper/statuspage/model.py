"""The status page's values, named as Atlassian Statuspage's public v2 API names them.

Component status, from its checks (see `component_status`):

* `major_outage`: every counted check down, or a down check of severity critical;
* `partial_outage`: some check down;
* `degraded_performance`: some check degraded;
* `operational`: otherwise (paused checks and checks with no result yet do not count);
* `under_maintenance`: an active maintenance window covers one of its checks.

An open, published incident that names the component with a status overrides all of these.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

ComponentStatus = Literal[
    "operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance"
]
COMPONENT_STATUSES: tuple[ComponentStatus, ...] = (
    "operational",
    "degraded_performance",
    "partial_outage",
    "major_outage",
    "under_maintenance",
)
IncidentStatus = Literal["investigating", "identified", "monitoring", "resolved", "postmortem"]
INCIDENT_STATUSES: tuple[IncidentStatus, ...] = (
    "investigating",
    "identified",
    "monitoring",
    "resolved",
    "postmortem",
)
RESOLVED: frozenset[str] = frozenset({"resolved", "postmortem"})
Impact = Literal["none", "minor", "major", "critical"]
IMPACTS: tuple[Impact, ...] = ("none", "minor", "major", "critical")
MaintenanceStatus = Literal["scheduled", "in_progress", "verifying", "completed"]
Indicator = Literal["none", "minor", "major", "critical"]

RANK: dict[str, int] = {
    "operational": 0,
    "under_maintenance": 1,
    "degraded_performance": 2,
    "partial_outage": 3,
    "major_outage": 4,
}
"""How bad a component status is (the worst of several wins)."""

LABELS: dict[str, str] = {
    "operational": "Operational",
    "degraded_performance": "Degraded performance",
    "partial_outage": "Partial outage",
    "major_outage": "Major outage",
    "under_maintenance": "Under maintenance",
    "investigating": "Investigating",
    "identified": "Identified",
    "monitoring": "Monitoring",
    "resolved": "Resolved",
    "postmortem": "Postmortem",
    "scheduled": "Scheduled",
    "in_progress": "In progress",
    "verifying": "Verifying",
    "completed": "Completed",
}

_IMPACT_STATUS: dict[str, ComponentStatus] = {
    "critical": "major_outage",
    "major": "partial_outage",
    "minor": "degraded_performance",
    "none": "operational",
}


def worst(statuses: Iterable[str]) -> ComponentStatus:
    found: list[str] = list(statuses)
    if not found:
        return "operational"
    best: Any = max(found, key=RANK.__getitem__)
    return best  # type: ignore[no-any-return]


def component_status(
    checks: Iterable[tuple[str, str]],
    *,
    in_maintenance: bool = False,
    override: ComponentStatus | None = None,
) -> ComponentStatus:
    """A component's status from its checks' (hard state, severity) pairs; see the module."""
    if override is not None:
        return override
    if in_maintenance:
        return "under_maintenance"
    counted = [
        (state, severity) for state, severity in checks if state in ("up", "degraded", "down")
    ]
    down = [severity for state, severity in counted if state == "down"]
    if down:
        if len(down) == len(counted) or "critical" in down:
            return "major_outage"
        return "partial_outage"
    if any(state == "degraded" for state, _ in counted):
        return "degraded_performance"
    return "operational"


def impact_status(impact: str) -> ComponentStatus:
    """The component status an incident of this impact stands for (day bars, defaults)."""
    return _IMPACT_STATUS.get(impact, "operational")


def page_indicator(components: Iterable[str], impacts: Iterable[str]) -> tuple[Indicator, str]:
    """`status.indicator` and `status.description` of a page, from its components'
    statuses and its unresolved incidents' impacts (as Statuspage words them)."""
    statuses = list(components)
    rank = max((RANK[s] for s in statuses), default=0)
    impact_rank = max((IMPACTS.index(i) for i in impacts if i in IMPACTS), default=0)
    if rank >= RANK["major_outage"] or impact_rank >= 3:
        return "critical", "Major System Outage"
    if rank >= RANK["partial_outage"] or impact_rank >= 2:
        return "major", "Partial System Outage"
    if rank >= RANK["degraded_performance"] or impact_rank >= 1:
        return "minor", "Minor Service Outage"
    if "under_maintenance" in statuses:
        return "none", "Service Under Maintenance"
    return "none", "All Systems Operational"


@dataclass(frozen=True, slots=True)
class AffectedComponent:
    """How an update changed a component (Statuspage's `affected_components`)."""

    name: str
    old_status: str
    new_status: str


@dataclass(frozen=True, slots=True)
class IncidentUpdate:
    id: str
    incident_id: str
    status: str
    body: str
    """Markdown source (rendered without raw HTML on the page)."""
    created_at: datetime
    display_at: datetime
    affected: tuple[AffectedComponent, ...] = ()


@dataclass(frozen=True, slots=True)
class Incident:
    id: str
    page: str
    name: str
    status: str
    impact: str
    draft: bool
    created_at: datetime
    updated_at: datetime
    started_at: datetime
    monitoring_at: datetime | None
    resolved_at: datetime | None
    components: dict[str, str] = field(default_factory=dict)
    """Affected component -> the status it shows while the incident is open."""
    updates: tuple[IncidentUpdate, ...] = ()
    """Newest first, as Statuspage lists them."""
    postmortem: str | None = None
    source: str = "api"
    alert_fingerprint: str | None = None

    @property
    def resolved(self) -> bool:
        return self.status in RESOLVED


@dataclass(frozen=True, slots=True)
class Maintenance:
    """A maintenance window's occurrence as the page shows it."""

    id: str
    page: str
    name: str
    status: MaintenanceStatus
    scheduled_for: datetime
    scheduled_until: datetime
    components: tuple[str, ...]
    body: str
    created_at: datetime
