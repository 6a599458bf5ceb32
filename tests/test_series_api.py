"""Charts and summaries over the API: check series, result metrics, system status, filters."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.support.clock import FakeClock
from tests.support.servers import wait_until
from tests.support.service import running
from watchkeeper.app import Runtime, __version__
from watchkeeper.config.loader import Config
from watchkeeper.core.domain import CheckResult
from watchkeeper.http.api.status import overall_status

NOW = datetime(2030, 1, 1, 12, 0, 30, tzinfo=UTC)
CPU, DISK = "system.cpu.percent", 'system.disk.percent{path="/"}'


def command(code: int) -> list[str]:
    return [sys.executable, "-c", f"print('exit {code} | t=1s;;;'); raise SystemExit({code})"]


def check(name: str, code: int, **extra: object) -> dict[str, object]:
    return {"name": name, "type": "command", "command": command(code), "interval": "1h", **extra}


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    config = Config.model_validate(
        {
            "storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"},
            "checks": [
                check("api", 0, component="API", labels={"team": "core", "tier": "1"}),
                check("db", 2, component="Database", labels={"team": "data"}),
                check("host", 0, labels={"team": "core"}),
            ],
        }
    )
    async with running(config, clock=FakeClock(NOW)) as service:
        yield service.runtime, service.client


def record(rt: Runtime, name: str, at: str, result: CheckResult) -> None:
    """A result in the history, `at` HH:MM:SS on the clock's day."""
    assert rt.writer is not None
    hours, minutes, seconds = (int(x) for x in at.split(":"))
    rt.writer.record(name, NOW.replace(hour=hours, minute=minutes, second=seconds), result)


def by_time(points: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(p["t"]).replace("Z", "+00:00"): p for p in points}


def t(hhmm: str, day: int = 1) -> str:
    return f"2030-01-{day:02d}T{hhmm}:00+00:00"


async def test_check_series_lists_every_bucket_of_the_range_with_uptime_and_times(
    service: tuple[Runtime, httpx.AsyncClient],
) -> None:
    rt, client = service
    record(rt, "api", "11:00:10", CheckResult.up(response_time=0.1))
    record(rt, "api", "11:02:00", CheckResult.down("refused", response_time=0.3))
    record(rt, "api", "11:07:00", CheckResult.degraded("slow"))

    day = (await client.get("/api/v1/checks/api/series", params={"range": "24h"})).json()

    assert day["check"] == "api" and day["range"] == "24h" and day["step_seconds"] == 300
    assert day["until"].startswith("2030-01-01T12:05:00") and len(day["points"]) == 288
    points = by_time(day["points"])
    assert points[t("11:00")] == {
        "t": points[t("11:00")]["t"],
        "count": 2,
        "uptime": 50.0,
        "avg_response_time": pytest.approx(0.2),
        "max_response_time": 0.3,
    }
    assert points[t("11:05")]["count"] == 1 and points[t("11:05")]["uptime"] == 100.0
    assert points[t("11:05")]["avg_response_time"] is None
    assert points[t("10:55")] == {
        "t": points[t("10:55")]["t"],
        "count": 0,
        "uptime": None,
        "avg_response_time": None,
        "max_response_time": None,
    }
    # The range's uptime agrees with its points (the check's own run may be among them).
    counted = sum(p["count"] for p in day["points"])
    available = sum(p["count"] * p["uptime"] / 100 for p in day["points"] if p["count"])
    assert day["uptime"] == pytest.approx(available / counted * 100)

    hour = (await client.get("/api/v1/checks/api/series", params={"range": "1h"})).json()
    assert hour["step_seconds"] == 60 and len(hour["points"]) == 60
    assert [p["t"][11:16] for p in hour["points"] if p["count"]][:2] == ["11:02", "11:07"]
    week = (await client.get("/api/v1/checks/api/series", params={"range": "7d"})).json()
    assert len(week["points"]) == 168 and by_time(week["points"])[t("11:00")]["count"] == 3
    month = (await client.get("/api/v1/checks/api/series", params={"range": "30d"})).json()
    assert len(month["points"]) == 120 and by_time(month["points"])[t("06:00")]["count"] == 3

    assert (await client.get("/api/v1/checks/nope/series")).status_code == 404
    bad = await client.get("/api/v1/checks/api/series", params={"range": "2h"})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"


async def test_result_metrics_come_as_named_series_per_check_and_across_checks(
    service: tuple[Runtime, httpx.AsyncClient],
) -> None:
    rt, client = service
    record(rt, "host", "11:00:10", CheckResult.up(metrics={CPU: 10.0, DISK: 70.0}))
    record(rt, "host", "11:03:00", CheckResult.up(metrics={CPU: 30.0, DISK: 71.0}))
    record(rt, "host", "11:10:00", CheckResult.up(metrics={CPU: 50.0}))
    record(rt, "api", "11:04:59", CheckResult.up(metrics={CPU: 5.0}))

    body = (await client.get("/api/v1/checks/host/metrics", params={"range": "24h"})).json()
    series = {s["metric"]: by_time(s["points"]) for s in body["series"]}
    assert {CPU, DISK} <= set(series)
    assert series[CPU][t("11:00")]["value"] == 20.0
    assert series[CPU][t("11:05")]["value"] is None  # an empty bucket is listed
    assert series[CPU][t("11:10")]["value"] == 50.0
    assert series[DISK][t("11:00")]["value"] == 70.5 and series[DISK][t("11:10")]["value"] is None
    assert all(len(s["points"]) == 288 for s in body["series"])

    across = (
        await client.get("/api/v1/metrics/series", params={"name": DISK, "range": "7d"})
    ).json()
    assert across["metric"] == DISK and [s["check"] for s in across["series"]] == ["host"]
    cpu = (await client.get("/api/v1/metrics/series", params={"name": CPU, "range": "7d"})).json()
    values = {s["check"]: by_time(s["points"])[t("11:00")]["value"] for s in cpu["series"]}
    assert values == {"api": 5.0, "host": 30.0}
    none = (await client.get("/api/v1/metrics/series", params={"name": "no.such"})).json()
    assert none["series"] == []


async def test_checks_can_be_filtered_by_labels(
    service: tuple[Runtime, httpx.AsyncClient],
) -> None:
    _, client = service

    async def names(*labels: str, **params: str) -> list[str]:
        query = [("label", label) for label in labels] + list(params.items())
        body = (await client.get("/api/v1/checks", params=query)).json()
        return [c["name"] for c in body["items"]]

    assert await names("team=core") == ["api", "host"]
    assert await names("team=core", "tier=1") == ["api"]
    assert await names("team=core", component="API") == ["api"]
    assert await names("team=nobody") == []
    page = (
        await client.get("/api/v1/checks", params={"label": "team=core", "limit": 1, "offset": 1})
    ).json()
    assert page["total"] == 2 and [c["name"] for c in page["items"]] == ["host"]
    assert (await client.get("/api/v1/checks", params={"label": "team"})).status_code == 422


async def test_status_summarises_checks_components_alerts_and_performance(
    service: tuple[Runtime, httpx.AsyncClient],
) -> None:
    rt, client = service

    async def settled() -> dict[str, object] | None:
        body = (await client.get("/api/v1/status")).json()
        if body["checks"]["unknown"] or not body["alerts"]["firing"]["critical"]:
            return None
        return body

    # First runs are spread over at most 5 s of the (fake) clock: move it past them, once
    # every check's loop is parked on it.
    clock = rt.clock
    assert isinstance(clock, FakeClock)
    await wait_until(lambda: clock.waiting >= 3, 5, "the check loops to wait for their slot")
    clock.advance(5)
    body = await wait_until(settled, 20, "every check run once and db's alert firing")

    assert body["status"] == "major_outage"  # a firing critical alert (db is down)
    assert body["version"] == __version__ and body["started_at"] is not None
    assert body["checks"] == {"up": 2, "degraded": 0, "down": 1, "unknown": 0, "paused": 0}
    components = {c["name"]: c for c in body["components"]}
    assert list(components) == ["API", "Database", "other"]
    assert components["Database"]["status"] == "down" and components["Database"]["checks"] == 1
    assert components["other"]["states"]["up"] == 1 and components["API"]["status"] == "up"
    assert body["alerts"]["firing"] == {
        "critical": 1,
        "high": 0,
        "medium": 0,
        "low": 0,
        "info": 0,
    }
    assert sum(body["alerts"]["acknowledged"].values()) == 0
    performance = body["performance"]
    assert performance["storage_ping_ms"] > 0 and performance["storage_error"] is None
    assert performance["checks_per_second"] == pytest.approx(3 / 60)  # three runs this minute
    assert performance["scheduler_lag_seconds"] is not None
    assert performance["outbox_depth"] == 0

    # Acknowledged, the alert no longer drives the headline; db being down still does.
    alert = (await client.get("/api/v1/alerts", params={"status": "firing"})).json()["items"][0]
    assert (await client.post(f"/api/v1/alerts/{alert['id']}/ack", json={})).status_code == 200
    body = (await client.get("/api/v1/status")).json()
    assert body["status"] == "partial_outage"
    assert body["alerts"]["acknowledged"]["critical"] == 1
    assert rt.scheduler is not None


def test_overall_status_follows_check_states_and_firing_alert_severities() -> None:
    def status(states: dict[str, int], firing: dict[str, int] | None = None) -> str:
        return overall_status(Counter(states), Counter(firing or {}))

    assert status({"up": 4, "unknown": 1, "paused": 3}) == "operational"
    assert status({"up": 4}, {"info": 2}) == "operational"
    assert status({"up": 3, "degraded": 1}) == "degraded"
    assert status({"up": 4}, {"low": 1}) == "degraded"
    assert status({"up": 3, "down": 1}) == "partial_outage"
    assert status({"up": 4}, {"high": 1}) == "partial_outage"
    assert status({"up": 2, "down": 2, "paused": 5}) == "major_outage"
    assert status({"up": 4}, {"critical": 1}) == "major_outage"
    assert status({}) == "operational"


@pytest.fixture
async def alerts_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    config = Config.model_validate({"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}})
    async with running(config) as service:
        yield service.client


async def test_alerts_can_be_filtered_by_severity_source_silence_and_text(
    alerts_client: httpx.AsyncClient,
) -> None:
    client = alerts_client
    posted = [
        {"name": "DiskFull", "severity": "critical", "summary": "disk / is 97% full"},
        {"name": "SlowQueries", "severity": "medium", "summary": "p99 above 2 s"},
        {"name": "CertExpiry", "severity": "low", "summary": "certificate ends in 9 days"},
    ]
    response = await client.post("/api/v1/alerts", json=posted)
    assert response.status_code == 200, response.text
    ends = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    silence = await client.post(
        "/api/v1/silences",
        json={"matchers": ["alertname=CertExpiry"], "ends_at": ends, "comment": "renewing"},
    )
    assert silence.status_code in (200, 201), silence.text

    async def names(**params: str) -> list[str]:
        body = (await client.get("/api/v1/alerts", params=params)).json()
        return sorted(a["name"] for a in body["items"])

    await wait_until(
        lambda: names(silenced="true"), 10, "the dispatcher to mark CertExpiry silenced"
    )
    assert await names(silenced="true") == ["CertExpiry"]
    assert await names(status="silenced") == ["CertExpiry"]
    assert await names(silenced="false") == ["DiskFull", "SlowQueries"]
    assert await names(severity="critical") == ["DiskFull"]
    assert await names(source="external") == ["CertExpiry", "DiskFull", "SlowQueries"]
    assert await names(source="check") == []
    assert await names(q="97%") == ["DiskFull"]  # % is a literal, not a wildcard
    assert await names(q="P99") == ["SlowQueries"]  # case-insensitive, summary too
    assert await names(q="cert") == ["CertExpiry"]
    assert await names(q="%") == ["DiskFull"]
    assert await names(severity="medium", silenced="false", status="open") == ["SlowQueries"]
    page = (await client.get("/api/v1/alerts", params={"silenced": "false", "limit": 1})).json()
    assert page["total"] == 2 and len(page["items"]) == 1
    assert (await client.get("/api/v1/alerts", params={"severity": "dire"})).status_code == 422


async def test_a_large_response_is_gzip_encoded_when_asked_and_only_then(
    service: tuple[Runtime, httpx.AsyncClient],
) -> None:
    _rt, client = service
    url, params = "/api/v1/checks/api/series", {"range": "24h"}  # 288 points: tens of KB
    zipped = await client.get(url, params=params, headers={"Accept-Encoding": "gzip"})
    plain = await client.get(url, params=params, headers={"Accept-Encoding": "identity"})
    assert zipped.status_code == plain.status_code == 200
    assert zipped.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in plain.headers
    assert "accept-encoding" in zipped.headers["vary"].lower()
    assert zipped.json() == plain.json()  # the same document …
    assert zipped.num_bytes_downloaded * 5 < plain.num_bytes_downloaded  # … far smaller
    # Small answers are not worth compressing.
    small = await client.get("/api/v1/checks/nope/series", headers={"Accept-Encoding": "gzip"})
    assert small.status_code == 404 and "content-encoding" not in small.headers
