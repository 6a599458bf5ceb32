"""Prometheus metrics of the service itself, declared once on a registry passed in."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from watchkeeper.core.domain import Status
from watchkeeper.prometheus.checks import CheckMetrics

_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ServiceMetrics:
    """The service's metrics. The per-check ones (`watchkeeper_check_*`) come from one
    collector over compact state (see `metrics.checks`), not from labelled children."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.checks = CheckMetrics()
        r.register(self.checks)
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
        # The self-watch's measures (watchkeeper.engine.selfwatch), refreshed every pass.
        self.outbox_oldest_age = Gauge(
            "watchkeeper_outbox_oldest_age_seconds",
            "How long the oldest undelivered notification has waited.",
            registry=r,
        )
        self.event_loop_lag = Gauge(
            "watchkeeper_event_loop_lag_seconds",
            "How late the self-watch's last timed wake-up fired (a blocked event loop).",
            registry=r,
        )
        self.storage_write = Gauge(
            "watchkeeper_storage_write_seconds",
            "How long the last timed trivial database write took.",
            registry=r,
        )
        self.resident_memory = Gauge(
            "watchkeeper_resident_memory_bytes",
            "Resident memory (RSS) of the process.",
            registry=r,
        )
        self.open_fds = Gauge(
            "watchkeeper_open_fds", "Open file descriptors of the process.", registry=r
        )
        self.selfwatch_status = Gauge(
            "watchkeeper_selfwatch_status",
            "Each self-watch measure against its thresholds: 0 pass, 1 warn, 2 fail.",
            ["measure"],
            registry=r,
        )
        self.open_alerts = Gauge("watchkeeper_alerts_open", "Alerts currently open.", registry=r)
        self.pings_rate_limited = Counter(
            "watchkeeper_pings_rate_limited",
            "Heartbeat pings refused with 429, by the limit hit (check or address).",
            ["limit"],
            registry=r,
        )
        self.recovery_runs: Counter | None = None
        """Made by `track_recovery`: only a service with recovery actions has the family."""

    def track_recovery(self) -> Counter:
        """The `watchkeeper_recovery_runs_total` family (registered on first use)."""
        if self.recovery_runs is None:
            self.recovery_runs = Counter(
                "watchkeeper_recovery_runs",
                "Recovery runs ended, by action and how (succeeded, failed, timed_out, "
                "error; exhausted: the action was locked out).",
                ["action", "status"],
                registry=self.registry,
            )
        return self.recovery_runs

    def count_recovery(self, action: str, status: str) -> None:
        """One recovery run ended (`exhausted`: an action was locked out)."""
        self.track_recovery().labels(action, status).inc()

    def count_run(self, check: str, status: Status, response_time: float | None) -> None:
        self.checks.count_run(check, status, response_time)

    def observe_state(self, check: str, status: Status) -> None:
        self.checks.observe_state(check, status)

    def forget(self, check: str) -> None:
        """Remove a deleted check's series, so /metrics stops reporting it."""
        self.checks.forget(check)
