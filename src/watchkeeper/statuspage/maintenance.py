"""Scheduled maintenance on a status page, from the maintenance windows (pure, no I/O).

A window belongs on a page when it covers one of the page's components: it names the
component, one of its checks, or has matchers that match a check's labels. Its occurrence
(the one-off span, or a recurring window's current or next occurrence) is:

* `scheduled` before it starts;
* `in_progress` while it is active (its components show `under_maintenance`);
* `verifying` after it ends while one of its components is not yet operational, for at most
  `VERIFY_FOR`;
* `completed` afterwards (shown for `KEEP_COMPLETED`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from watchkeeper.alerting.maintenance import MaintenanceWindow
from watchkeeper.core.schedule import next_cron_instant
from watchkeeper.statuspage.model import Maintenance, MaintenanceStatus

VERIFY_FOR = timedelta(minutes=30)
KEEP_COMPLETED = timedelta(days=7)
SHOW_AHEAD = timedelta(days=30)
"""A recurring window's next occurrence is listed when it starts within this."""


def stable_id(*parts: str) -> str:
    """A short id that stays the same across restarts (Statuspage ids are 12 characters)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:12]


def covered_components(
    window: MaintenanceWindow, component_labels: Mapping[str, list[dict[str, str]]]
) -> tuple[str, ...]:
    """The page's components `window` covers (component -> its checks' alert labels)."""
    hit = []
    for component, checks in component_labels.items():
        if component in window.components or any(window.covers(labels) for labels in checks):
            hit.append(component)
    return tuple(hit)


def occurrence(window: MaintenanceWindow, now: datetime) -> tuple[datetime, datetime] | None:
    """The span the page shows: the one-off window's, or a recurring window's current (or
    else next) occurrence; None when nothing is worth showing."""
    if window.schedule is None:
        assert window.starts_at is not None and window.ends_at is not None
        return window.starts_at, window.ends_at
    assert window.duration is not None
    start = next_cron_instant(window.schedule, window.zone, now - window.duration)
    if start > now + SHOW_AHEAD:
        return None
    return start, start + window.duration


def plan(
    page: str,
    windows: Iterable[MaintenanceWindow],
    component_labels: Mapping[str, list[dict[str, str]]],
    now: datetime,
    *,
    operational: Mapping[str, bool],
) -> list[Maintenance]:
    """The page's maintenances at `now`, soonest first; `operational` says, per component,
    whether its checks are all well again (for `verifying`)."""
    out: list[Maintenance] = []
    for window in windows:
        components = covered_components(window, component_labels)
        if not components:
            continue
        try:
            span = occurrence(window, now)
        except Exception:  # a window that cannot be evaluated is reported elsewhere
            continue
        if span is None:
            continue
        start, end = span
        status: MaintenanceStatus
        if now < start:
            if start - now > SHOW_AHEAD:
                continue
            status = "scheduled"
        elif now < end:
            status = "in_progress"
        elif now - end < VERIFY_FOR and not all(operational.get(c, True) for c in components):
            status = "verifying"
        elif now - end < KEEP_COMPLETED:
            status = "completed"
        else:
            continue
        out.append(
            Maintenance(
                id=stable_id(page, "maintenance", window.name, start.isoformat()),
                page=page,
                name=window.comment.splitlines()[0][:200] if window.comment else window.name,
                status=status,
                scheduled_for=start,
                scheduled_until=end,
                components=components,
                body=window.comment or f"Scheduled maintenance ({window.name}).",
                created_at=start - min(SHOW_AHEAD, timedelta(days=1)),
            )
        )
    out.sort(key=lambda m: (m.scheduled_for, m.name))
    return out
