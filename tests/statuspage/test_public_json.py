"""The public status page's JSON: Statuspage v2 shape, component status from checks and
maintenance windows, served from the in-memory snapshot with ETag and Last-Modified."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import FlippingTarget
from tests.support.service import Service, running

FIXTURE = Path(__file__).parent.parent / "fixtures" / "statuspage" / "summary.json"


def config(tmp_path: Path, target: FlippingTarget, **extra: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"},
        "checks": [
            {
                "name": "api",
                "type": "http",
                "url": f"{target.url}/health",
                "interval": "1s",
                "timeout": "1s",
                "component": "API",
            },
            {
                "name": "db",
                "type": "tcp",
                "host": "127.0.0.1",
                "port": int(target.url.rsplit(":", 1)[1]),
                "interval": "1s",
                "component": "Database",
            },
        ],
        "maintenance": [
            {
                "name": "db-upgrade",
                "starts_at": (now - timedelta(minutes=5)).isoformat(),
                "ends_at": (now + timedelta(hours=1)).isoformat(),
                "components": ["Database"],
                "comment": "Database upgrade",
            },
            {
                "name": "later",
                "starts_at": (now + timedelta(days=1)).isoformat(),
                "ends_at": (now + timedelta(days=1, hours=2)).isoformat(),
                "checks": ["api"],
                "comment": "Network work",
            },
        ],
        "status_page": {
            "title": "Example status",
            "components": [
                {"name": "API", "description": "Public REST API", "group": "Core"},
                {"name": "Database"},
            ],
        },
        **extra,
    }


@pytest.fixture
async def service(tmp_path: Path, target: FlippingTarget) -> AsyncIterator[Service]:
    async with running(config(tmp_path, target)) as svc:
        yield svc


async def until_component(service: Service, name: str, wanted: set[str], seconds: float) -> str:
    """Wait (on the snapshot's rebuilds, not a sleep) until `name` shows one of `wanted`."""
    pages = service.runtime.status_pages
    build = 0
    status = ""
    deadline = seconds
    while deadline > 0:
        doc = (await service.client.get("/status/components.json")).json()
        status = next(c["status"] for c in doc["components"] if c["name"] == name)
        if status in wanted:
            return status
        build = await pages.wait_built(build, timeout=deadline)
        deadline -= 0.25
    return status


def _same_shape(expected: Any, actual: Any, where: str) -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for key, value in expected.items():
            if key.startswith("_"):
                continue
            assert key in actual, f"{where}.{key} is missing"
            if value is None:
                continue  # documented nullable: any type, or null
            if actual[key] is not None:
                _same_shape(value, actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: expected an array"
        if expected:
            for i, item in enumerate(actual):
                _same_shape(expected[0], item, f"{where}[{i}]")
    elif isinstance(expected, bool):
        assert isinstance(actual, bool), f"{where}: expected a boolean, got {actual!r}"
    elif isinstance(expected, int):
        assert isinstance(actual, int) and not isinstance(actual, bool), where
    elif isinstance(expected, str):
        assert isinstance(actual, str), f"{where}: expected a string, got {actual!r}"
        if expected.endswith("Z") and "T" in expected:
            datetime.fromisoformat(actual.replace("Z", "+00:00"))


async def test_summary_json_has_every_documented_field_and_is_cached_right(
    service: Service,
) -> None:
    fixture = json.loads(FIXTURE.read_text())
    created = await service.client.post(
        "/api/v1/incidents",
        json={
            "name": "Elevated errors",
            "impact": "major",
            "components": {"API": "partial_outage"},
            "body": "Looking into it",
        },
    )
    assert created.status_code == 201, created.text
    response = await service.client.get("/status/summary.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    summary = response.json()
    assert summary["incidents"], "an unresolved incident is listed"
    assert summary["scheduled_maintenances"], "the active and the upcoming window are listed"
    for key in ("page", "components", "incidents", "scheduled_maintenances", "status"):
        _same_shape(fixture[key], summary[key], key)
    # Each incident's components carry the full component shape too.
    _same_shape(fixture["components"][0], summary["incidents"][0]["components"][0], "c")
    enums = fixture["_enums"]
    for c in summary["components"]:
        assert c["status"] in enums["component.status"]
    for i in summary["incidents"]:
        assert i["status"] in enums["incident.status"] and i["impact"] in enums["incident.impact"]
    for m in summary["scheduled_maintenances"]:
        assert m["status"] in enums["scheduled_maintenance.status"]
        assert m["impact"] == "maintenance"
    assert summary["status"]["indicator"] in enums["status.indicator"]
    assert summary["status"] == {"indicator": "major", "description": "Partial System Outage"}
    # The group is listed as Statuspage lists groups, with its members' ids.
    group = next(c for c in summary["components"] if c["group"])
    api = next(c for c in summary["components"] if c["name"] == "API")
    assert group["name"] == "Core" and group["components"] == [api["id"]]
    assert api["group_id"] == group["id"] and api["status"] == "partial_outage"

    other = {
        "/status/status.json": {"page", "status"},
        "/status/components.json": {"page", "components"},
        "/status/incidents.json": {"page", "incidents"},
        "/status/incidents/unresolved.json": {"page", "incidents"},
        "/status/scheduled-maintenances.json": {"page", "scheduled_maintenances"},
        "/status/scheduled-maintenances/upcoming.json": {"page", "scheduled_maintenances"},
        "/status/scheduled-maintenances/active.json": {"page", "scheduled_maintenances"},
    }
    for path, keys in other.items():
        doc = (await service.client.get(path)).json()
        assert set(doc) == keys, path
        _same_shape(fixture["page"], doc["page"], path)
    upcoming = (await service.client.get("/status/scheduled-maintenances/upcoming.json")).json()
    active = (await service.client.get("/status/scheduled-maintenances/active.json")).json()
    assert [m["name"] for m in upcoming["scheduled_maintenances"]] == ["Network work"]
    assert [m["status"] for m in active["scheduled_maintenances"]] == ["in_progress"]

    # Served from the snapshot with validators and cache headers.
    first = await service.client.get("/status/summary.json")
    etag = first.headers["etag"]
    assert first.headers["last-modified"].endswith("GMT")
    assert "max-age" in first.headers["cache-control"]
    assert int(first.headers["age"]) >= 0
    again = await service.client.get("/status/summary.json", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    since = first.headers["last-modified"]
    unchanged = await service.client.get(
        "/status/summary.json", headers={"If-Modified-Since": since}
    )
    assert unchanged.status_code == 304
    stale = await service.client.get("/status/summary.json", headers={"If-None-Match": '"x"'})
    assert stale.status_code == 200 and stale.headers["etag"] == etag
    page = await service.client.get("/status", headers={"Accept-Encoding": "gzip"})
    assert page.status_code == 200 and "Example status" in page.text
    assert "script-src" not in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    badge = await service.client.get("/status/badge/API.svg")
    assert badge.status_code == 200 and badge.headers["content-type"] == "image/svg+xml"
    assert "API: " in badge.text
    uptime = await service.client.get("/status/badge/API/uptime.svg?days=7")
    assert uptime.status_code == 200 and "uptime 7d" in uptime.text
    assert (await service.client.get("/status/badge/API/uptime.svg?days=91")).status_code == 404
    assert (await service.client.get("/status/badge/Nope.svg")).status_code == 404
    history = await service.client.get("/status/history")
    assert history.status_code == 200 and "Page 1 of 1" in history.text
    assert (await service.client.get("/status/history?page=2")).status_code == 404
    head = await service.client.head("/status/summary.json")
    assert head.status_code == 200 and head.content == b""


async def test_a_failing_check_leaves_operational_within_one_interval_and_a_window_shows(
    service: Service, target: FlippingTarget
) -> None:
    assert await until_component(service, "API", {"operational"}, 5) == "operational"
    # The active window covers the Database component.
    db = await until_component(service, "Database", {"under_maintenance"}, 1)
    assert db == "under_maintenance"
    target.status = 500
    failed_at = datetime.now(UTC)
    status = await until_component(
        service, "API", {"partial_outage", "major_outage", "degraded_performance"}, 5
    )
    assert status == "major_outage", status  # its only check is down
    # One 1 s interval, with slack for a loaded machine; the 30 s refresh would be far later.
    assert datetime.now(UTC) - failed_at < timedelta(seconds=3)
    status_doc = (await service.client.get("/status/status.json")).json()
    assert status_doc["status"]["indicator"] == "critical"
