"""Grouping: which never-paged firing alerts share one first page, and when it is due."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from watchkeeper.alerting.dispatch.targets import Targets
from watchkeeper.core.domain import Alert

_OWN = "alert:"


def own_group(alert_id: str) -> str:
    """The key of an alert's own group (no `group_by`): it is paged once, so its first
    page stores no group row, and no pass reads one (`is_own_group`)."""
    return f"{_OWN}{alert_id}"


def is_own_group(key: str) -> bool:
    """Whether `key` is an alert's own group (see `own_group`)."""
    return key.startswith(_OWN)


class Grouping:
    """Alerts with the same first channels and the same `group_by` label values page
    together; without `group_by` each alert is its own group."""

    def __init__(self, targets: Targets) -> None:
        self._targets = targets

    def key(self, alert: Alert) -> str:
        """The group the alert joins (at most 255 characters, as stored)."""
        config = self._targets.config
        route = ",".join(sorted(self._targets.first_channels(alert)))
        if config.group_by is None:
            return own_group(alert.id)
        values = ",".join(f"{n}={alert.match_labels.get(n, '')}" for n in config.group_by)
        return f"group:{route}|{values}"[:255]

    def due(self, members: Sequence[Alert], group: Any) -> datetime:
        """When the group's page is due: `group_wait` after its first member started, no
        earlier than any member's first policy step, and `group_interval` after the
        group's last page (`group`: its stored row, None when never paged)."""
        config = self._targets.config
        due = min(a.started_at for a in members) + config.group_wait
        for alert in members:
            policy = self._targets.policy(alert)
            if policy is not None:
                due = max(due, alert.started_at + policy.steps[0].after)
        if group is not None and group.last_notified_at is not None:
            due = max(due, group.last_notified_at + config.group_interval)
        return due
