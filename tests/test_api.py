"""The HTTP surface in-process: probes, health document, metrics, read-only API."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import wait_until
from tests.support.service import running
from watchkeeper.app import Runtime
from watchkeeper.config.loader import Config
from watchkeeper.core.logs import JsonFormatter
from watchkeeper.core.redact import RedactingFilter, Redactor
from watchkeeper.http.factory import create_app


def command(code: int) -> list[str]:
    return [sys.executable, "-c", f"print('exit {code} | t=1s;;;'); raise SystemExit({code})"]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    config = Config.model_validate(
        {
            "storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"},
            "checks": [
                {"name": "ok", "type": "command", "command": command(0), "interval": "1h"},
                {"name": "warn", "type": "command", "command": command(1), "interval": "1h"},
                {
                    "name": "crit",
                    "type": "command",
                    "command": command(2),
                    "interval": "1h",
                    "component": "API",
                },
            ],
        }
    )
    async with running(config) as service:
        yield service.runtime, service.client


async def states(client: httpx.AsyncClient) -> dict[str, str]:
    body = (await client.get("/api/v1/checks")).json()
    return {c["name"]: c["status"] for c in body["items"]}


async def test_checks_report_their_hard_states_and_results(api) -> None:
    _, client = api
    wanted = {"ok": "up", "warn": "degraded", "crit": "down"}
    await wait_until(lambda: _equals(states(client), wanted), 15, "all three checks ran")

    crit = (await client.get("/api/v1/checks/crit")).json()
    assert crit["status"] == "down" and crit["component"] == "API"
    assert crit["last_result"]["reason"] == "exit 2"

    results = (await client.get("/api/v1/checks/crit/results")).json()
    assert results[0]["status"] == "down"
    assert results[0]["metrics"] == {"t": 1.0}

    down_only = (await client.get("/api/v1/checks", params={"state": "down"})).json()
    assert [c["name"] for c in down_only["items"]] == ["crit"]
    assert (await client.get("/api/v1/checks/nope")).status_code == 404

    alerts = (await client.get("/api/v1/alerts", params={"status": "open"})).json()
    assert [a["check"] for a in alerts["items"]] == ["crit"]
    detail = (await client.get(f"/api/v1/alerts/{alerts['items'][0]['id']}")).json()
    assert [e["kind"] for e in detail["events"]] == ["firing"]


async def _equals(coro, wanted) -> bool:  # type: ignore[no-untyped-def]
    return await coro == wanted


async def test_health_probes_and_document(api) -> None:
    _, client = api
    assert (await client.get("/health/live")).json() == {"status": "pass"}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    health = await client.get("/health")
    assert health.headers["content-type"].startswith("application/health+json")
    body = health.json()
    assert body["status"] in ("pass", "warn")
    assert set(body["checks"]) == {"storage:responseTime", "scheduler:lag", "outbox:depth"}
    assert body["checks"]["storage:responseTime"][0]["status"] == "pass"


async def test_readiness_fails_once_the_runtime_stops(tmp_path: Path) -> None:
    config = Config.model_validate({"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}})
    runtime = Runtime(config)
    app = create_app(config, runtime=runtime)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://wk") as c:
        assert (await c.get("/health/ready")).status_code == 503
        await runtime.start()
        assert (await c.get("/health/ready")).status_code == 200
        await runtime.stop()
        assert (await c.get("/health/ready")).status_code == 503


async def test_metrics_expose_check_state_lag_and_outbox_depth(api) -> None:
    _, client = api
    await wait_until(lambda: _has_state(client), 15, "a check state")
    text = (await client.get("/metrics")).text
    assert 'watchkeeper_check_up{check="ok"} 1.0' in text
    assert 'watchkeeper_check_up{check="crit"} 0.0' in text
    assert "watchkeeper_scheduler_lag_seconds_bucket" in text
    assert "watchkeeper_outbox_depth 0.0" in text


async def _has_state(client: httpx.AsyncClient) -> bool:
    return (await states(client)).get("crit") == "down" and (await states(client))["ok"] == "up"


def test_logs_never_show_secrets_or_url_passwords(caplog: pytest.LogCaptureFixture) -> None:
    redactor = Redactor(["hook-secret-123"])
    record = logging.LogRecord(
        "wk", logging.ERROR, __file__, 1, "posting %s to %s", ("hook-secret-123", "x"), None
    )
    RedactingFilter(redactor).filter(record)
    assert "hook-secret-123" not in record.getMessage()
    text = redactor("connect postgresql://admin:hunter2@db:5432/wk failed")
    assert text == "connect postgresql://admin:***@db:5432/wk failed"
    line = JsonFormatter().format(record)
    assert '"message": "posting *** to x"' in line


async def test_operators_pause_resume_and_run_checks_now(api) -> None:
    runtime, client = api
    await wait_until(
        lambda: _equals(states(client), {"ok": "up", "warn": "degraded", "crit": "down"}),
        15,
        "first runs",
    )
    paused = await client.post("/api/v1/checks/ok/pause")
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert (await states(client))["ok"] == "paused"
    runs = runtime.scheduler.runs
    queued = await client.post("/api/v1/checks/crit/run")
    assert queued.status_code == 202 and queued.json()["queued"] is True
    await wait_until(lambda: runtime.scheduler.runs > runs, 10, "the run-now run")
    resumed = await client.post("/api/v1/checks/ok/resume")
    assert resumed.json()["status"] == "up"
    assert (await client.post("/api/v1/checks/nope/run")).status_code == 404
