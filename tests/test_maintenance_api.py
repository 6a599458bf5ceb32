"""Maintenance windows over the API: created by operators, listed with config ones, enforced."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.support.auth import admin_headers
from watchkeeper.app import Runtime
from watchkeeper.config.loader import Config
from watchkeeper.http.factory import create_app


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    config = Config.model_validate(
        {
            "storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"},
            "maintenance": [
                {"name": "patching", "schedule": "0 2 * * 0", "duration": "2h", "checks": ["db"]}
            ],
        }
    )
    runtime = Runtime(config)
    await runtime.start()
    app = create_app(config, runtime=runtime)
    headers = await admin_headers(runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://wk", headers=headers) as c:
        yield c
    await runtime.stop()


async def test_windows_are_created_listed_enforced_and_deleted(client: httpx.AsyncClient) -> None:
    now = datetime.now(UTC)
    body = {
        "name": "deploy",
        "starts_at": (now - timedelta(minutes=1)).isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(),
        "matchers": ["alertname=DiskFull"],
    }
    created = await client.post("/api/v1/maintenances", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["active"] is True and created.json()["source"] == "api"
    listed = {
        m["name"]: m["source"] for m in (await client.get("/api/v1/maintenances")).json()["items"]
    }
    assert listed == {"patching": "config", "deploy": "api"}

    alert = {"name": "DiskFull", "severity": "critical", "summary": "disk full"}
    (posted,) = (await client.post("/api/v1/alerts", json=alert)).json()
    for _ in range(100):  # the dispatcher marks it within a pass
        detail = (await client.get(f"/api/v1/alerts/{posted['id']}")).json()
        if detail["suppressed"]:
            break
    assert detail["suppressed"] == "suppressed: maintenance deploy"

    assert (await client.post("/api/v1/maintenances", json=body)).status_code == 409
    bad = await client.post("/api/v1/maintenances", json={"name": "x", "checks": ["a"]})
    assert bad.status_code == 422
    assert (await client.delete("/api/v1/maintenances/patching")).status_code == 409
    assert (await client.delete("/api/v1/maintenances/deploy")).status_code == 204
    assert (await client.delete("/api/v1/maintenances/deploy")).status_code == 404
