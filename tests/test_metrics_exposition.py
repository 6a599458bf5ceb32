"""/metrics stays compatible: the per-check metrics come from one collector over compact state.

`tests/data/metrics_before.prom` is what the earlier implementation (one prometheus_client
labelled child per check) exposed for `feed` below; the same results must expose the same
families, types, help texts, labels and values.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any
from unittest import mock

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from watchkeeper.core.domain import Status
from watchkeeper.prometheus.service import ServiceMetrics

BEFORE = Path(__file__).parent / "data" / "metrics_before.prom"
CREATED = 1_700_000_000.0  # time.time() while `feed` runs, as the `_created` samples show it
ODD = 'odd "name" \\ with\nnewline'


def feed(m: ServiceMetrics) -> None:
    """A known sequence of results, states and removals."""
    m.observe_state("web", Status.UNKNOWN)  # a state seen before any run
    for i in range(100):
        m.count_run("web", Status.UP, 0.001 * i)
    for on_a_bound in (0.005, 0.01, 1.0, 30.0):
        m.count_run("web", Status.UP, on_a_bound)
    m.count_run("web", Status.DOWN, None)
    m.count_run("web", Status.DEGRADED, 45.0)  # above the largest bound: +Inf only
    m.count_run("web", Status.UNKNOWN, 0.0)
    m.observe_state("web", Status.DEGRADED)
    m.count_run("db.main", Status.DOWN, None)  # never a response time: no histogram
    m.count_run("db.main", Status.DOWN, None)
    m.observe_state("db.main", Status.DOWN)
    m.count_run(ODD, Status.UP, 0.2)
    m.observe_state(ODD, Status.UP)
    m.count_run("gone", Status.UP, 0.1)
    m.observe_state("gone", Status.UP)
    m.count_run("paused", Status.UP, 0.3)
    m.observe_state("paused", Status.PAUSED)
    m.forget("gone")
    m.forget("never-seen")
    m.count_run("back", Status.UP, 0.05)
    m.observe_state("back", Status.UP)
    m.forget("back")
    m.count_run("back", Status.DOWN, 2.0)  # a result in flight after the removal
    m.observe_state("only-state", Status.UP)
    m.scheduler_lag.observe(0.002)
    m.scheduler_lag.observe(0.3)
    m.outbox_depth.set(3)


def exposition(m: ServiceMetrics) -> str:
    return generate_latest(m.registry).decode()


def families(text: str) -> dict[str, tuple[str, str, dict[tuple[Any, ...], float]]]:
    """name -> (type, help, {(sample name, sorted labels): value})."""
    found = {}
    for family in text_string_to_metric_families(text):
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}
        assert len(samples) == len(family.samples), f"duplicate samples in {family.name}"
        found[family.name] = (family.type, family.documentation, samples)
    return found


def fed() -> ServiceMetrics:
    with mock.patch("time.time", return_value=CREATED):
        metrics = ServiceMetrics()
        feed(metrics)
    return metrics


def test_metrics_expose_the_same_families_labels_and_values_as_before() -> None:
    assert families(exposition(fed())) == families(BEFORE.read_text())


def test_a_removed_check_disappears_from_metrics() -> None:
    text = exposition(fed())
    assert 'check="gone"' not in text
    assert 'check="back",status="up"' not in text
    assert 'watchkeeper_check_runs_total{check="back",status="down"} 1.0' in text
    assert 'watchkeeper_check_up{check="back"}' not in text


def test_removing_every_check_leaves_the_families_without_samples() -> None:
    metrics = fed()
    for name in ("web", "db.main", ODD, "paused", "back", "only-state"):
        metrics.forget(name)
    text = exposition(metrics)
    assert "check=" not in text
    assert "# TYPE watchkeeper_check_response_seconds histogram" in text


def test_many_checks_come_and_go_without_mixing_their_series() -> None:
    metrics = ServiceMetrics()
    for round_ in range(3):
        for i in range(300):
            metrics.count_run(f"c{i}", Status.UP, 0.01 * (i % 7))
            metrics.observe_state(f"c{i}", Status.UP if i % 2 else Status.DOWN)
        for i in range(0, 300, 3 + round_):
            metrics.forget(f"c{i}")
    up = {
        s.labels["check"]: s.value
        for f in text_string_to_metric_families(exposition(metrics))
        if f.name == "watchkeeper_check_up"
        for s in f.samples
    }
    assert up == {f"c{i}": 1.0 if i % 2 else 0.0 for i in range(300) if i % 5}


def test_metrics_can_be_read_from_another_thread_while_results_arrive() -> None:
    metrics = ServiceMetrics()
    done = threading.Event()
    errors: list[BaseException] = []

    def scrape() -> None:
        try:
            while not done.is_set():
                for family in text_string_to_metric_families(exposition(metrics)):
                    if family.name == "watchkeeper_check_response_seconds":
                        counts = [s for s in family.samples if s.name.endswith("_count")]
                        infs = [s for s in family.samples if s.labels.get("le") == "+Inf"]
                        assert [s.value for s in counts] == [s.value for s in infs]
        except BaseException as exc:
            errors.append(exc)

    reader = threading.Thread(target=scrape)
    reader.start()
    deadline = time.monotonic() + 1.0
    i = 0
    while time.monotonic() < deadline:
        name = f"c{i % 500}"
        metrics.count_run(name, Status.UP, 0.02)
        if i % 7 == 0:
            metrics.forget(f"c{(i * 13) % 500}")
        i += 1
    done.set()
    reader.join()
    assert errors == []
