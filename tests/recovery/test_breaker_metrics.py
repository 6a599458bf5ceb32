"""Circuit breakers as Prometheus metrics: an application breaker on the registry it is given,
and the checks' breakers on the service's own /metrics, both read from the exposition text."""

from __future__ import annotations

import gc
import socket
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.recovery.test_breaker import Boom, breaker, calls, fail
from tests.support.clock import FakeClock
from tests.support.servers import wait_until
from tests.support.service import running
from watchkeeper.recovery.breaker import CircuitBreaker, CircuitOpenError


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of an exposition."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return samples(generate_latest(registry).decode())


def state_of(scraped: dict, label: str, name: str, metric: str) -> dict[str, float]:
    return {
        dict(labels)["state"]: value
        for (sample, labels), value in scraped.items()
        if sample == metric and dict(labels)[label] == name
    }


def app_state(scraped: dict, name: str) -> dict[str, float]:
    return state_of(scraped, "breaker", name, "watchkeeper_circuit_breaker_state")


def totals(scraped: dict, name: str) -> tuple[float, float, float]:
    labels = (("breaker", name),)
    return (
        scraped[("watchkeeper_circuit_breaker_calls_total", labels)],
        scraped[("watchkeeper_circuit_breaker_failures_total", labels)],
        scraped[("watchkeeper_circuit_breaker_rejected_calls_total", labels)],
    )


def test_state_and_totals_are_read_at_scrape_time_through_closed_open_half_open() -> None:
    clock = FakeClock()
    registry = CollectorRegistry()
    b, _ = breaker(clock, registry=registry)  # min_calls 4, rate 0.5, wait 30 s, 2 trials
    closed = scrape(registry)
    assert app_state(closed, "dep") == {"closed": 1.0, "open": 0.0, "half_open": 0.0}
    assert totals(closed, "dep") == (0, 0, 0)

    calls(b, True, True, False, False)  # 50 % of 4: open
    with pytest.raises(CircuitOpenError):
        b.call(lambda: None)
    opened = scrape(registry)
    assert app_state(opened, "dep") == {"closed": 0.0, "open": 1.0, "half_open": 0.0}
    assert totals(opened, "dep") == (4, 2, 1)

    clock.advance(30)  # nothing called: the scrape itself sees the wait is over
    assert app_state(scrape(registry), "dep") == {"closed": 0.0, "open": 0.0, "half_open": 1.0}
    calls(b, True, True)  # both trials succeed
    assert app_state(scrape(registry), "dep") == {"closed": 1.0, "open": 0.0, "half_open": 0.0}
    assert totals(scrape(registry), "dep") == (6, 2, 1)


def test_breakers_share_a_registry_by_name_and_only_when_given_one() -> None:
    registry = CollectorRegistry()
    clock = FakeClock()
    a = CircuitBreaker("a", clock=clock, registry=registry, min_calls=1, failure_rate=1.0)
    b = CircuitBreaker("b", clock=clock, registry=registry)
    CircuitBreaker("unreported", clock=clock)  # no registry: reported nowhere
    with pytest.raises(Boom):
        a.call(fail)
    scraped = scrape(registry)
    assert app_state(scraped, "a")["open"] == 1.0 and app_state(scraped, "b")["closed"] == 1.0
    assert {dict(labels)["breaker"] for _, labels in scraped} == {"a", "b"}
    with pytest.raises(ValueError, match="'a' is already reported"):
        CircuitBreaker("a", registry=registry)

    del b
    gc.collect()
    assert {dict(labels)["breaker"] for _, labels in scrape(registry)} == {"a"}, "b is gone"
    assert a.state.value == "open"


@pytest.fixture
def ports() -> Iterator[tuple[int, int]]:
    """A port that refuses connections (bound, not listening) and one that accepts them."""
    with socket.socket() as refusing, socket.socket() as listening:
        refusing.bind(("127.0.0.1", 0))
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        yield refusing.getsockname()[1], listening.getsockname()[1]


async def test_the_checks_breakers_are_on_the_service_metrics(tmp_path, ports) -> None:
    refusing, listening = ports
    breaker_settings = {"min_results": 1, "window": 1, "wait_in_open": "1h"}
    check = {"type": "tcp", "host": "127.0.0.1", "interval": "1h", "breaker": breaker_settings}
    config = {
        "storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"},
        "checks": [
            {"name": "down", "port": refusing, **check},
            {"name": "up", "port": listening, **check},
            {"name": "plain", "type": "tcp", "host": "127.0.0.1", "port": listening},
        ],
    }
    async with running(config) as service:
        for name in ("down", "up"):  # now, not at their first runs spread over 5 s
            assert (await service.client.post(f"/api/v1/checks/{name}/run")).status_code == 202

        async def both_counted() -> bool:
            states = service.runtime.breakers.states()
            return [name for name, _ in states] == ["down", "up"]

        await wait_until(both_counted, 15, "a result of both checks with a breaker")
        scraped = samples((await service.client.get("/metrics")).text)
    metric = "watchkeeper_check_breaker_state"
    assert state_of(scraped, "check", "down", metric) == {
        "closed": 0.0,
        "open": 1.0,
        "half_open": 0.0,
    }
    assert state_of(scraped, "check", "up", metric)["closed"] == 1.0
    assert state_of(scraped, "check", "plain", metric) == {}, "no breaker, no series"
