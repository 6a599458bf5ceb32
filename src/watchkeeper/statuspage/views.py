"""What one status page shows at one moment, assembled from its inputs (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from watchkeeper.statuspage.config import ComponentConfig, StatusPageConfig
from watchkeeper.statuspage.maintenance import stable_id
from watchkeeper.statuspage.model import (
    ComponentStatus,
    Incident,
    Maintenance,
    component_status,
    impact_status,
    page_indicator,
    worst,
)

HISTORY_DAYS = 90
DAY_S = 86400


@dataclass(frozen=True, slots=True)
class CheckInput:
    """A check that feeds a component: its hard state now, severity and alert labels."""

    name: str
    state: str
    severity: str
    labels: dict[str, str]


@dataclass(frozen=True, slots=True)
class DayBar:
    day: date
    status: str
    """The day's worst: a component status, or `none` (no data that day)."""
    uptime: float | None
    incidents: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ComponentView:
    id: str
    name: str
    description: str | None
    group: str | None
    group_id: str | None
    position: int
    status: ComponentStatus
    checks: tuple[str, ...]
    updated_at: datetime
    uptime: float | None
    """Over the 90 days of bars (None: no data)."""
    days: tuple[DayBar, ...]


@dataclass(frozen=True, slots=True)
class GroupView:
    id: str
    name: str
    status: ComponentStatus
    position: int
    components: tuple[ComponentView, ...]


@dataclass(frozen=True, slots=True)
class PageView:
    config: StatusPageConfig
    id: str
    url: str
    """The page's public URL (`{public_url}/status` or `/status/{slug}`)."""
    prefix: str
    """Its path prefix (`/status`, `/status/{slug}`)."""
    components: tuple[ComponentView, ...]
    groups: tuple[GroupView, ...]
    """In page order: a group, or a component alone (a group of one without a name)."""
    unresolved: tuple[Incident, ...]
    incidents: tuple[Incident, ...]
    """Published incidents, newest first (unresolved ones too)."""
    maintenances: tuple[Maintenance, ...]
    indicator: str
    description: str
    built_at: datetime
    data_as_of: datetime | None
    """When incidents and history were last read from the database."""
    stale: bool
    """The last read failed: what is shown from the database may be out of date."""
    created_at: datetime

    def component(self, name_or_id: str) -> ComponentView | None:
        for c in self.components:
            if c.id == name_or_id or c.name == name_or_id or _slug(c.name) == name_or_id:
                return c
        return None

    def uptime(self, component: ComponentView, days: int) -> float | None:
        counted = [d.uptime for d in component.days[-days:] if d.uptime is not None]
        return sum(counted) / len(counted) if counted else None


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")


def component_checks(component: ComponentConfig, checks: Sequence[CheckInput]) -> list[CheckInput]:
    """The checks feeding `component`: its explicit list, else those naming it."""
    if component.checks is not None:
        wanted = set(component.checks)
        return [c for c in checks if c.name in wanted]
    return [c for c in checks if c.labels.get("component") == component.name]


def day_status(counts: Sequence[tuple[int, int, int]]) -> tuple[str, float | None]:
    """A day's worst state and uptime from its checks' (results, available, down)."""
    total = sum(c[0] for c in counts)
    if not total:
        return "none", None
    available = sum(c[1] for c in counts)
    share = max((c[2] / c[0] for c in counts if c[0]), default=0.0)
    if share >= 0.5:
        status = "major_outage"
    elif share > 0:
        status = "partial_outage"
    else:
        status = "operational"
    return status, available / total


def _overlaps(incident: Incident, start: datetime, end: datetime, now: datetime) -> bool:
    until = incident.resolved_at or now
    return incident.started_at < end and until >= start


def build_page(
    config: StatusPageConfig,
    *,
    position: int,
    public_url: str,
    checks: Sequence[CheckInput],
    incidents: Sequence[Incident],
    maintenances: Sequence[Maintenance],
    daily: Mapping[str, Mapping[int, tuple[int, int, int]]],
    since: Mapping[str, tuple[str, datetime]],
    now: datetime,
    data_as_of: datetime | None,
    stale: bool,
    created_at: datetime,
) -> PageView:
    """The page at `now`. `position` 0 is the first page (at /status); `since` holds each
    component's last status and when it took it (for `updated_at`)."""
    prefix = "/status" if position == 0 else f"/status/{config.slug}"
    page_id = stable_id("page", config.slug)
    published = [i for i in incidents if not i.draft]
    unresolved = [i for i in published if not i.resolved]
    active = {c for m in maintenances if m.status == "in_progress" for c in m.components}
    today = now.astimezone(UTC).date()
    first_day = today - timedelta(days=HISTORY_DAYS - 1)
    ordered = sorted(enumerate(config.components), key=lambda p: (p[1].order, p[0]))
    views: list[ComponentView] = []
    for pos, (_i, component) in enumerate(ordered, start=1):
        feeding = component_checks(component, checks)
        overrides = [
            i.components[component.name] for i in unresolved if component.name in i.components
        ]
        status = component_status(
            [(c.state, c.severity) for c in feeding],
            in_maintenance=component.name in active,
            override=worst(overrides) if overrides else None,
        )
        bars: list[DayBar] = []
        measured: list[float] = []
        for offset in range(HISTORY_DAYS):
            day = first_day + timedelta(days=offset)
            number = (day - date(1970, 1, 1)).days
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            end = start + timedelta(days=1)
            counts = [daily[c.name][number] for c in feeding if number in daily.get(c.name, {})]
            state, uptime = day_status(counts)
            touching = [
                i
                for i in published
                if component.name in i.components and _overlaps(i, start, end, now)
            ]
            for incident in touching:
                shown = incident.components.get(component.name) or impact_status(incident.impact)
                if shown != "operational":
                    state = worst(["operational" if state == "none" else state, shown])
            if day == today and status != "operational":
                state = worst(["operational" if state == "none" else state, status])
            if uptime is not None:
                measured.append(uptime)
            bars.append(DayBar(day, state, uptime, tuple(i.name for i in touching)))
        key = f"{config.slug}\x1f{component.name}"
        changed = since.get(key)
        views.append(
            ComponentView(
                id=stable_id("component", config.slug, component.name),
                name=component.name,
                description=component.description,
                group=component.group,
                group_id=stable_id("group", config.slug, component.group)
                if component.group
                else None,
                position=pos,
                status=status,
                checks=tuple(c.name for c in feeding),
                updated_at=changed[1] if changed else created_at,
                uptime=sum(measured) / len(measured) if measured else None,
                days=tuple(bars),
            )
        )
    groups: list[GroupView] = []
    seen: dict[str, int] = {}
    for view in views:
        if view.group is None:
            groups.append(GroupView("", "", view.status, view.position, (view,)))
            continue
        if view.group in seen:
            g = groups[seen[view.group]]
            members = (*g.components, view)
            groups[seen[view.group]] = GroupView(
                g.id, g.name, worst(m.status for m in members), g.position, members
            )
        else:
            seen[view.group] = len(groups)
            groups.append(
                GroupView(view.group_id or "", view.group, view.status, view.position, (view,))
            )
    indicator, description = page_indicator(
        [v.status for v in views], [i.impact for i in unresolved]
    )
    return PageView(
        config=config,
        id=page_id,
        url=public_url.rstrip("/") + prefix,
        prefix=prefix,
        components=tuple(views),
        groups=tuple(groups),
        unresolved=tuple(unresolved),
        incidents=tuple(published),
        maintenances=tuple(maintenances),
        indicator=indicator,
        description=description,
        built_at=now,
        data_as_of=data_as_of,
        stale=stale,
        created_at=created_at,
    )
