"""Circuit breakers for checks (`breaker:` on a check): a target that keeps failing is
probed less often, and its automatic recovery pauses while the breaker is not closed.

Each result of a check with a breaker counts as a call of a `CircuitBreaker` (DOWN failed,
UP succeeded, UNKNOWN not at all). While it is open the scheduler skips the check's runs
(`is_open`); after `wait_in_open` it is half-open and the next run is the trial.

`CheckBreakerMetrics` reports them on /metrics as `watchkeeper_check_breaker_state{check,
state}` (a check's series appear with its first counted result).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from watchkeeper.checks.base import BreakerSettings, CheckConfigBase
from watchkeeper.core.clock import Clock
from watchkeeper.core.domain import Status
from watchkeeper.recovery.breaker import BreakerState, CircuitBreaker
from watchkeeper.recovery.breaker_metrics import state_family

log = logging.getLogger(__name__)


class CheckBreakers:
    """One breaker per check that has `breaker:` (made on its first result)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._breakers: dict[str, tuple[BreakerSettings, CircuitBreaker]] = {}

    def _breaker(self, config: CheckConfigBase) -> CircuitBreaker | None:
        settings = config.breaker
        if settings is None:
            self._breakers.pop(config.name, None)
            return None
        known = self._breakers.get(config.name)
        if known is not None and known[0] == settings:
            return known[1]
        name = config.name
        breaker = CircuitBreaker(
            name,
            failure_rate=settings.failure_rate,
            min_calls=settings.min_results,
            window=settings.window,
            wait_in_open=settings.wait_in_open,
            clock=self._clock,
            on_change=lambda old, new: log.warning(
                "check %s: circuit breaker %s -> %s", name, old.value, new.value
            ),
        )
        self._breakers[name] = (settings, breaker)
        return breaker

    def record(self, config: CheckConfigBase, status: Status) -> None:
        """One result of the check."""
        breaker = self._breaker(config)
        if breaker is not None and status is not Status.UNKNOWN:
            breaker.record(failed=status is Status.DOWN)

    def state(self, name: str) -> BreakerState | None:
        known = self._breakers.get(name)
        return None if known is None else known[1].state

    def is_open(self, name: str) -> bool:
        """Whether the check's runs are skipped now (open, not yet half-open)."""
        return self.state(name) is BreakerState.OPEN

    def forget(self, name: str) -> None:
        self._breakers.pop(name, None)

    def states(self) -> list[tuple[str, BreakerState]]:
        """(check, state) of every breaker, by check name."""
        known = self._breakers.copy()  # a scrape may run on another thread
        return [(name, known[name][1].state) for name in sorted(known)]


_STATE = "watchkeeper_check_breaker_state"
_STATE_HELP = "1 for the check's circuit breaker state (closed, open, half_open), 0 for others."


class CheckBreakerMetrics(Collector):
    """`watchkeeper_check_breaker_state`, read from the checks' breakers at scrape time."""

    def __init__(self, breakers: Callable[[], CheckBreakers]) -> None:
        self._breakers = breakers
        """The current run's breakers (a runtime started again builds new ones)."""

    def describe(self) -> list[Metric]:
        return [state_family(_STATE, _STATE_HELP, "check", [])]

    def collect(self) -> Iterator[Metric]:
        yield state_family(_STATE, _STATE_HELP, "check", self._breakers().states())


__all__ = ["CheckBreakerMetrics", "CheckBreakers"]
