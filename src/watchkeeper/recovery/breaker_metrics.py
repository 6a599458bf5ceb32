"""Circuit breakers as Prometheus metrics, read from the breakers at scrape time.

`CircuitBreaker(..., registry=r)` adds the breaker to the one `BreakerMetrics` collector of
`r` (made and registered by the first breaker), which reports, by `breaker` (its name):

    watchkeeper_circuit_breaker_state{breaker, state}   1 for the current state, 0 others
    watchkeeper_circuit_breaker_calls_total{breaker}     calls that ran (outcomes counted)
    watchkeeper_circuit_breaker_failures_total{breaker}  of those, failures
    watchkeeper_circuit_breaker_rejected_calls_total{breaker}  calls refused

The collector holds its breakers weakly: a breaker that is gone stops being reported.
`state_family` is also what the checks' breakers (`watchkeeper_check_breaker_state`) use.
"""

from __future__ import annotations

import enum
import threading
import weakref
from collections.abc import Iterable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class Reported(Protocol):
    """What the collector reads of a `CircuitBreaker` (not imported: it imports this module)."""

    name: str

    def snapshot(self) -> tuple[enum.StrEnum, int, int, int]: ...


_STATE = "watchkeeper_circuit_breaker_state"
_STATE_HELP = "1 for the circuit breaker's current state (closed, open, half_open), 0 for others."
_CALLS = "watchkeeper_circuit_breaker_calls"
_FAILURES = "watchkeeper_circuit_breaker_failures"
_REJECTED = "watchkeeper_circuit_breaker_rejected_calls"


def state_family(
    name: str, documentation: str, label: str, states: Iterable[tuple[str, enum.StrEnum]]
) -> GaugeMetricFamily:
    """A gauge with, for each (label value, `BreakerState`), 1 for that state and 0 for the
    others (every member of the state's enum)."""
    family = GaugeMetricFamily(name, documentation, labels=[label, "state"])
    for value, current in states:
        for state in type(current):
            family.add_metric([value, state.value], 1.0 if state is current else 0.0)
    return family


class BreakerMetrics(Collector):
    """The application breakers of one registry (find or make it with `on`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._breakers: weakref.WeakSet[Reported] = weakref.WeakSet()

    @classmethod
    def on(cls, registry: CollectorRegistry) -> BreakerMetrics:
        """The registry's collector of breakers, registered on it if it has none yet."""
        for _ in range(2):
            existing = _find(registry)
            if existing is not None:
                return existing
            made = cls()
            try:
                registry.register(made)
            except ValueError:
                continue  # registered meanwhile by another thread: find that one
            return made
        raise ValueError("the registry already has watchkeeper_circuit_breaker_* metrics")

    def add(self, breaker: Reported) -> None:
        with self._lock:
            if any(b.name == breaker.name for b in self._breakers):
                raise ValueError(
                    f"a circuit breaker named {breaker.name!r} is already reported on this registry"
                )
            self._breakers.add(breaker)

    def describe(self) -> list[Metric]:
        return list(_families())

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            breakers = sorted(self._breakers, key=lambda b: b.name)
        snapshots = [(b.name, b.snapshot()) for b in breakers]
        calls, failures, rejected = _families()[1:]
        for name, (_, n_calls, n_failures, n_rejected) in snapshots:
            calls.add_metric([name], n_calls)
            failures.add_metric([name], n_failures)
            rejected.add_metric([name], n_rejected)
        states = [(name, snapshot[0]) for name, snapshot in snapshots]
        yield state_family(_STATE, _STATE_HELP, "breaker", states)
        yield from (calls, failures, rejected)


def _families() -> tuple[
    GaugeMetricFamily, CounterMetricFamily, CounterMetricFamily, CounterMetricFamily
]:
    return (
        GaugeMetricFamily(_STATE, _STATE_HELP, labels=["breaker", "state"]),
        CounterMetricFamily(_CALLS, "Calls through the circuit breaker.", labels=["breaker"]),
        CounterMetricFamily(
            _FAILURES, "Calls through the circuit breaker that failed.", labels=["breaker"]
        ),
        CounterMetricFamily(
            _REJECTED,
            "Calls the circuit breaker refused (open, or half-open with its trials taken).",
            labels=["breaker"],
        ),
    )


def _find(registry: CollectorRegistry) -> BreakerMetrics | None:
    # prometheus_client offers no public lookup of a registered collector.
    with registry._lock:
        collectors = list(registry._collector_to_names)
    return next((c for c in collectors if isinstance(c, BreakerMetrics)), None)


__all__ = ["BreakerMetrics", "state_family"]
