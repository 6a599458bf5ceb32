"""The library API: checks registered in-process, the engine embedded in the caller's loop."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.auth import admin_headers
from tests.support.servers import wait_until
from watchkeeper import CheckResult, Monitor, Status
from watchkeeper.config.loader import Config


async def test_in_process_checks_run_in_the_applications_event_loop(tmp_path: Path) -> None:
    monitor = Monitor(Config.model_validate({"storage": {"url": f"sqlite:///{tmp_path / 'm.db'}"}}))
    calls: list[str] = []
    cache_ok = asyncio.Event()

    @monitor.check("cache", interval="1h", timeout="1s")
    async def cache() -> bool:
        calls.append("cache")
        cache_ok.set()
        return True

    @monitor.check("queue", interval="1h", failure_threshold=1)
    def queue() -> CheckResult:
        return CheckResult.degraded("queue depth 900 > 500", metrics={"queue.depth": 900})

    async with monitor:
        await asyncio.wait_for(cache_ok.wait(), 10)
        await wait_until(lambda: monitor.status("queue") is Status.DEGRADED, 10, "queue degraded")
        await wait_until(lambda: monitor.status("cache") is Status.UP, 10, "cache up")
        assert monitor.runtime.check_configs["cache"].interval.total_seconds() == 3600
    assert calls == ["cache"]


async def test_the_monitor_serves_the_same_http_api(tmp_path: Path) -> None:
    import httpx

    monitor = Monitor(Config.model_validate({"storage": {"url": f"sqlite:///{tmp_path / 'm.db'}"}}))
    monitor.add_check("always", lambda: True, interval="1h")
    async with monitor:
        app = monitor.asgi_app()
        transport = httpx.ASGITransport(app=app)
        headers = await admin_headers(monitor.runtime)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://app", headers=headers
        ) as client:
            await wait_until(lambda: monitor.status("always") is Status.UP, 10, "up")
            body = (await client.get("/api/v1/checks/always")).json()
    assert body["type"] == "python" and body["status"] == "up"
