"""`/health/detailed`, `/health/database`, `/health/system`: the health document's shape, who
may read them (`server.health_details`), and no secret in them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.conftest import fresh_pg_database
from tests.support.clock import FakeClock
from tests.support.servers import wait_until
from tests.support.service import running
from watchkeeper.http.roles import Role

DETAILED = ("/health/detailed", "/health/database", "/health/system")


def sqlite(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}, **extra}


def assert_health_document(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/health+json"
    body: dict[str, Any] = response.json()
    assert body["status"] in ("pass", "warn")
    assert {"version", "releaseId", "serviceId", "description", "checks"} <= set(body)
    for key, entries in body["checks"].items():
        assert ":" in key
        for entry in entries:
            assert entry["status"] in ("pass", "warn", "fail"), (key, entry)
            assert entry["componentType"] in ("datastore", "component", "system"), key
    return body


async def test_by_default_a_viewer_token_is_needed(tmp_path: Path) -> None:
    async with running(sqlite(tmp_path)) as service:
        viewer = await service.as_role(Role.VIEWER)
        anonymous = httpx.AsyncClient(transport=service.client._transport, base_url="http://wk")
        for path in DETAILED:
            refused = await anonymous.get(path)
            assert refused.status_code == 401, path
            assert refused.headers["content-type"] == "application/problem+json"
            assert_health_document(await service.client.get(path, headers=viewer))
        # The probes stay public.
        assert (await anonymous.get("/health")).status_code == 200


async def test_public_lets_anyone_read_them(tmp_path: Path) -> None:
    async with running(sqlite(tmp_path, server={"health_details": "public"})) as service:
        anonymous = httpx.AsyncClient(transport=service.client._transport, base_url="http://wk")
        for path in DETAILED:
            assert_health_document(await anonymous.get(path))


async def test_the_documents_hold_the_database_the_process_and_the_self_watch(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    config = sqlite(tmp_path, watchdog={"url": "http://127.0.0.1:9/never", "interval": "1h"})
    async with running(config, clock=clock) as service:
        runtime = service.runtime
        before = runtime.selfwatch.passes
        clock.advance(5)
        await wait_until(lambda: runtime.selfwatch.passes > before, 5, "a self-watch pass")

        database = assert_health_document(await service.client.get("/health/database"))
        checks = database["checks"]
        assert checks["storage:responseTime"][0]["componentId"] == "sqlite"
        assert checks["storage:revision"][0]["status"] == "pass"
        assert checks["storage:size"][0]["observedValue"] > 0
        assert checks["storage:writeLatency"][0]["observedUnit"] == "s"

        system = assert_health_document(await service.client.get("/health/system"))
        assert {
            "eventLoop:lag",
            "process:memory",
            "process:openFiles",
            "process:cpuTime",
            "process:uptime",
            "service:uptime",
            "runtime:python",
        } <= set(system["checks"])

        detailed = (await service.client.get("/health/detailed")).json()
        assert set(database["checks"]) | set(system["checks"]) <= set(detailed["checks"])
        assert {"scheduler:lag", "outbox:depth", "outbox:oldestAge"} <= set(detailed["checks"])
        assert detailed["checks"]["selfAlerts:open"][0]["observedValue"] == 0
        # The watchdog's ping to a closed port failed: a warning, and no URL in it.
        watchdog = detailed["checks"]["watchdog:lastPing"][0]
        assert watchdog["status"] == "warn"
        assert "/never" not in watchdog["output"]


async def test_the_database_url_shows_no_password() -> None:
    async with fresh_pg_database() as url:
        secret_url = url.replace("postgresql://postgres@", "postgresql://postgres:s3cret-pw@")
        async with running({"storage": {"url": secret_url}}) as service:
            for path in DETAILED:
                response = await service.client.get(path)
                assert "s3cret-pw" not in response.text, path
            body = (await service.client.get("/health/database")).json()
            entry = body["checks"]["storage:responseTime"][0]
            assert entry["componentId"] == "postgresql"
            assert ":***@" in entry["url"]


async def test_a_database_gone_is_a_503_saying_why(tmp_path: Path) -> None:
    home = tmp_path / "data"
    home.mkdir()
    # Public, as a load balancer reads it: a token cannot be checked without the database.
    config = {
        "storage": {"url": f"sqlite:///{home / 'wk.db'}"},
        "server": {"health_details": "public"},
    }
    async with running(config) as service:
        anonymous = httpx.AsyncClient(transport=service.client._transport, base_url="http://wk")
        home.rename(tmp_path / "away")  # an unmounted volume: no connection can open it
        await service.runtime.db.engine.dispose()
        try:
            response = await anonymous.get("/health/database")
            assert response.status_code == 503
            entry = response.json()["checks"]["storage:responseTime"][0]
            assert entry["status"] == "fail"
            assert "unable to open database file" in entry["output"]
        finally:
            (tmp_path / "away").rename(home)
            await service.runtime.db.engine.dispose()
