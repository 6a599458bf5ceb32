"""Prometheus metrics of the service itself, declared once on a registry passed in."""

from __future__ import annotations

import contextlib
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from watchkeeper.domain import Status

_RESPONSE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ServiceMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.check_up = Gauge(
            "watchkeeper_check_up",
            "1 if the check's hard state is up, 0 otherwise (degraded counts as up=0.5).",
            ["check"],
            registry=r,
        )
        self.check_status = Gauge(
            "watchkeeper_check_status",
            "1 for the check's current hard state, 0 for the others.",
            ["check", "status"],
            registry=r,
        )
        self.check_response = Histogram(
            "watchkeeper_check_response_seconds",
            "Response time measured by each check run.",
            ["check"],
            buckets=_RESPONSE_BUCKETS,
            registry=r,
        )
        self.check_runs = Counter(
            "watchkeeper_check_runs",
            "Check runs by result status.",
            ["check", "status"],
            registry=r,
        )
        self.scheduler_lag = Histogram(
            "watchkeeper_scheduler_lag_seconds",
            "How late each check run started compared with its schedule.",
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.outbox_depth = Gauge(
            "watchkeeper_outbox_depth",
            "Notifications queued and not yet delivered.",
            registry=r,
        )
        self.open_alerts = Gauge("watchkeeper_alerts_open", "Alerts currently open.", registry=r)

        # labels() takes a lock and a dict lookup per call; the hot path reuses the children.
        self._run_children: dict[tuple[str, Status], Any] = {}
        self._response_children: dict[str, Any] = {}

    def count_run(self, check: str, status: Status, response_time: float | None) -> None:
        key = (check, status)
        child = self._run_children.get(key)
        if child is None:
            child = self._run_children[key] = self.check_runs.labels(check, status.value)
        child.inc()
        if response_time is not None:
            histogram = self._response_children.get(check)
            if histogram is None:
                histogram = self._response_children[check] = self.check_response.labels(check)
            histogram.observe(response_time)

    def forget(self, check: str) -> None:
        """Remove a deleted check's series, so /metrics stops reporting it."""
        series: list[tuple[Any, tuple[str, ...]]] = [
            (self.check_up, (check,)),
            (self.check_response, (check,)),
            *((self.check_status, (check, s.value)) for s in Status),
            *((self.check_runs, (check, s.value)) for s in Status),
        ]
        for metric, labels in series:
            with contextlib.suppress(KeyError):
                metric.remove(*labels)
        self._response_children.pop(check, None)
        for key in [k for k in self._run_children if k[0] == check]:
            del self._run_children[key]

    def observe_state(self, check: str, status: Status) -> None:
        value = {Status.UP: 1.0, Status.DEGRADED: 0.5}.get(status, 0.0)
        self.check_up.labels(check).set(value)
        for s in Status:
            self.check_status.labels(check, s.value).set(1.0 if s is status else 0.0)
