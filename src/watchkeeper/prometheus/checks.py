"""The per-check Prometheus metrics: one collector over compact per-check state.

With a prometheus_client labelled child per check and series, 5,000 checks made tens of
thousands of small objects that every full garbage collection walked (100 ms loop stalls).
Here each check is a slot number, and its figures live at that slot in a few flat `array`s
of numbers, which the collector does not track. Counting a result is a handful of integer and
float operations; `collect()` copies the arrays under the lock and builds the families from
the copy, so a scrape from another thread (prometheus_client's own server) sees a consistent
state and keeps the lock only for the copy.

The exposition is the one the labelled metrics produced: same names, types, help texts, label
names, bucket boundaries, and `_created` samples (unless prometheus_client's are disabled).
"""

from __future__ import annotations

import threading
import time
from array import array
from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import metrics as _client_metrics
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from watchkeeper.core.domain import Status

RESPONSE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

_UP = "watchkeeper_check_up"
_UP_HELP = "1 if the check's hard state is up, 0 otherwise (degraded counts as up=0.5)."
_STATUS = "watchkeeper_check_status"
_STATUS_HELP = "1 for the check's current hard state, 0 for the others."
_RESPONSE = "watchkeeper_check_response_seconds"
_RESPONSE_HELP = "Response time measured by each check run."
_RUNS = "watchkeeper_check_runs"
_RUNS_HELP = "Check runs by result status."

_STATUSES = tuple(Status)
_STATUS_INDEX = {s: i for i, s in enumerate(_STATUSES)}
_STATUS_VALUES = tuple(s.value for s in _STATUSES)
_UP_VALUES = tuple({Status.UP: 1.0, Status.DEGRADED: 0.5}.get(s, 0.0) for s in _STATUSES)
_NO_STATE = -1
_N_STATUS = len(_STATUSES)
_N_BUCKET = len(RESPONSE_BUCKETS) + 1  # and +Inf
_LE = (*(floatToGoString(b) for b in RESPONSE_BUCKETS), "+Inf")


class CheckMetrics(Collector):
    """Run counts by status, hard state and response-time histogram of every check.

    Per slot: `_state[slot]` the index of the hard state in `Status` (-1: none observed yet);
    `_runs[slot * 5 + status]` the runs and `_runs_created` when the first was counted (0:
    none, no series); `_buckets[slot * 13 + bucket]` the response times per bucket (not
    cumulative), `_sum[slot]` their sum and `_created[slot]` the first one's time (0: none).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[str, int] = {}
        self._free: list[int] = []
        self._capacity = 0
        self._state = array("b")
        self._runs = array("d")
        self._runs_created = array("d")
        self._buckets = array("q")
        self._sum = array("d")
        self._created = array("d")

    def count_run(self, check: str, status: Status, response_time: float | None) -> None:
        with self._lock:
            slot = self._slots.get(check)
            if slot is None:
                slot = self._new_slot(check)
            at = slot * _N_STATUS + _STATUS_INDEX[status]
            runs = self._runs
            if not runs[at]:
                self._runs_created[at] = time.time()
            runs[at] += 1.0
            if response_time is not None:
                if not self._created[slot]:
                    self._created[slot] = time.time()
                # The first bound >= the time, as prometheus_client's `le` buckets; past the
                # last bound, +Inf.
                self._buckets[slot * _N_BUCKET + bisect_left(RESPONSE_BUCKETS, response_time)] += 1
                self._sum[slot] += response_time

    def observe_state(self, check: str, status: Status) -> None:
        with self._lock:
            slot = self._slots.get(check)
            if slot is None:
                slot = self._new_slot(check)
            self._state[slot] = _STATUS_INDEX[status]

    def forget(self, check: str) -> None:
        """Remove a deleted check's series; its slot is reused by the next new check."""
        with self._lock:
            slot = self._slots.pop(check, None)
            if slot is None:
                return
            self._clear(slot)
            self._free.append(slot)

    def _new_slot(self, check: str) -> int:
        if self._free:
            slot = self._free.pop()
        else:
            slot = self._capacity
            self._capacity += 1
            self._state.append(_NO_STATE)
            self._runs.extend(_ZERO_RUNS)
            self._runs_created.extend(_ZERO_RUNS)
            self._buckets.extend(_ZERO_BUCKETS)
            self._sum.append(0.0)
            self._created.append(0.0)
        self._slots[check] = slot
        return slot

    def _clear(self, slot: int) -> None:
        self._state[slot] = _NO_STATE
        runs = slice(slot * _N_STATUS, (slot + 1) * _N_STATUS)
        self._runs[runs] = _ZERO_RUNS
        self._runs_created[runs] = _ZERO_RUNS
        self._buckets[slot * _N_BUCKET : (slot + 1) * _N_BUCKET] = _ZERO_BUCKETS
        self._sum[slot] = 0.0
        self._created[slot] = 0.0

    def describe(self) -> list[Metric]:
        return list(_families())

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            slots = list(self._slots.items())
            state = self._state[:]
            runs, runs_created = self._runs[:], self._runs_created[:]
            buckets, sums, created = self._buckets[:], self._sum[:], self._created[:]
        with_created = _client_metrics._use_created
        up, status, response, counts = _families()
        for check, slot in slots:
            hard = state[slot]
            if hard != _NO_STATE:
                up.add_metric([check], _UP_VALUES[hard])
                for i, value in enumerate(_STATUS_VALUES):
                    status.add_metric([check, value], 1.0 if i == hard else 0.0)
            if created[slot]:
                cumulative = 0
                le_counts = []
                for i, le in enumerate(_LE):
                    cumulative += buckets[slot * _N_BUCKET + i]
                    le_counts.append((le, float(cumulative)))
                response.add_metric([check], le_counts, sums[slot])
                if with_created:
                    response.samples.append(
                        Sample(f"{_RESPONSE}_created", {"check": check}, created[slot])
                    )
            for i, value in enumerate(_STATUS_VALUES):
                at = slot * _N_STATUS + i
                if runs[at]:
                    started = runs_created[at] if with_created else None
                    counts.add_metric([check, value], runs[at], created=started)
        yield from (up, status, response, counts)


_ZERO_RUNS = array("d", [0.0] * _N_STATUS)
_ZERO_BUCKETS = array("q", [0] * _N_BUCKET)


def _families() -> tuple[
    GaugeMetricFamily, GaugeMetricFamily, HistogramMetricFamily, CounterMetricFamily
]:
    return (
        GaugeMetricFamily(_UP, _UP_HELP, labels=["check"]),
        GaugeMetricFamily(_STATUS, _STATUS_HELP, labels=["check", "status"]),
        HistogramMetricFamily(_RESPONSE, _RESPONSE_HELP, labels=["check"]),
        CounterMetricFamily(_RUNS, _RUNS_HELP, labels=["check", "status"]),
    )
