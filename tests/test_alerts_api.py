"""The alert API: other systems post alerts (Alertmanager too), people ack, resolve, silence."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.support.servers import WebhookReceiver
from tests.support.service import running
from watchkeeper.config.loader import Config

AM_FIRING = {
    "version": "4",
    "groupKey": '{}:{alertname="DiskFull"}',
    "status": "firing",
    "receiver": "watchkeeper",
    "groupLabels": {"alertname": "DiskFull"},
    "commonLabels": {"alertname": "DiskFull"},
    "commonAnnotations": {},
    "externalURL": "http://prometheus:9093",
    "truncatedAlerts": 0,
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "DiskFull", "instance": "db1:9100", "severity": "critical"},
            "annotations": {"summary": "disk / on db1 is 97% full"},
            "startsAt": "2026-07-01T09:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": "a1b2c3d4e5f60718",
        }
    ],
}


@pytest.fixture
async def client(tmp_path: Path, receiver: WebhookReceiver) -> AsyncIterator[httpx.AsyncClient]:
    config = Config.model_validate(
        {
            "storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"},
            "notifications": [{"name": "ops", "type": "webhook", "url": receiver.hook_url}],
        }
    )
    async with running(config) as service:
        yield service.client


async def test_alertmanager_webhook_creates_and_later_resolves_an_alert(
    client: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    response = await client.post("/api/v1/alerts", json=AM_FIRING)
    assert response.status_code == 200, response.text
    (alert,) = response.json()
    assert alert["name"] == "DiskFull" and alert["severity"] == "critical"
    assert alert["summary"] == "disk / on db1 is 97% full"
    assert alert["labels"]["instance"] == "db1:9100" and alert["source"] == "external"
    (firing,) = await receiver.wait_for(lambda r: r.accepted("alert.firing"), 5, "alert.firing")
    assert firing.payload["alert"]["id"] == alert["id"]

    # Alertmanager repeats the firing alert: still one alert.
    again = (await client.post("/api/v1/alerts", json=AM_FIRING)).json()
    assert again[0]["id"] == alert["id"]

    resolved_body = {**AM_FIRING, "status": "resolved"}
    resolved_body["alerts"] = [{**AM_FIRING["alerts"][0], "status": "resolved"}]
    (done,) = (await client.post("/api/v1/alerts", json=resolved_body)).json()
    assert done["status"] == "resolved" and done["id"] == alert["id"]
    await receiver.wait_for(lambda r: r.accepted("alert.resolved"), 5, "alert.resolved")


async def test_own_shape_alerts_are_acknowledged_and_resolved_by_hand(
    client: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    body = {"name": "backup-stale", "severity": "high", "summary": "no backup for 2 days"}
    (alert,) = (await client.post("/api/v1/alerts", json=body)).json()
    await receiver.wait_for(lambda r: r.accepted("alert.firing"), 5, "alert.firing")

    ack = await client.post(
        f"/api/v1/alerts/{alert['id']}/ack", json={"actor": "alice", "comment": "looking"}
    )
    assert ack.status_code == 200
    assert ack.json()["status"] == "acknowledged" and ack.json()["acknowledged_by"] == "alice"
    (notice,) = await receiver.wait_for(
        lambda r: r.accepted("alert.acknowledged"), 5, "alert.acknowledged"
    )
    assert notice.payload["alert"]["acknowledged_by"] == "alice"

    assert (
        await client.post(f"/api/v1/alerts/{alert['id']}/comment", json={"comment": "disk swapped"})
    ).status_code == 200
    resolved = await client.post(f"/api/v1/alerts/{alert['id']}/resolve", json={"actor": "alice"})
    assert resolved.json()["status"] == "resolved"
    assert (await client.post(f"/api/v1/alerts/{alert['id']}/ack", json={})).status_code == 409
    detail = (await client.get(f"/api/v1/alerts/{alert['id']}")).json()
    assert [e["kind"] for e in detail["events"]] == [
        "firing",
        "acknowledged",
        "comment",
        "resolved",
    ]
    assert (await client.post("/api/v1/alerts/nope/ack", json={})).status_code == 404


async def test_silences_are_created_listed_and_expired(client: httpx.AsyncClient) -> None:
    ends = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    created = await client.post(
        "/api/v1/silences",
        json={
            "matchers": [
                "alertname=DiskFull",
                {"name": "instance", "value": "db.*", "isRegex": True},
            ],
            "ends_at": ends,
            "comment": "replacing disk",
            "created_by": "bob",
        },
    )
    assert created.status_code == 201, created.text
    silence = created.json()
    assert silence["matchers"] == ["alertname=DiskFull", "instance=~db.*"]
    assert silence["state"] == "active"

    (alert,) = (await client.post("/api/v1/alerts", json=AM_FIRING)).json()
    detail = (await client.get(f"/api/v1/alerts/{alert['id']}")).json()
    for _ in range(50):  # the dispatcher marks it within a pass
        if detail["silenced_by"]:
            break
        detail = (await client.get(f"/api/v1/alerts/{alert['id']}")).json()
    active = (await client.get("/api/v1/silences", params={"state": "active"})).json()["items"]
    assert [s["id"] for s in active] == [silence["id"]]
    expired = (await client.delete(f"/api/v1/silences/{silence['id']}")).json()
    assert expired["state"] == "expired"
    bad = await client.post("/api/v1/silences", json={"matchers": ["no operator"], "ends_at": ends})
    assert bad.status_code == 422 and "expected a matcher" in bad.text
