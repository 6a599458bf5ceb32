"""Escalation policies over the API: listed with the config file's, used by the next alert."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.servers import WebhookReceiver
from tests.support.service import running
from watchkeeper.http.roles import Role


@pytest.fixture
async def pager() -> AsyncIterator[WebhookReceiver]:
    server = WebhookReceiver()
    await server.start()
    yield server
    await server.close()


def config(db_url: str, ops: str, pager: str) -> dict[str, Any]:
    return {
        "storage": {"url": db_url},
        "notifications": [
            {"name": "ops", "type": "webhook", "url": ops},
            {"name": "pager", "type": "webhook", "url": pager},
        ],
        "escalation": [{"name": "default", "steps": [{"notify": ["ops", "pager"]}]}],
    }


def names(receiver: WebhookReceiver) -> list[str]:
    return [d.payload["alert"]["name"] for d in receiver.accepted("alert.firing")]


async def test_a_policy_created_over_the_api_is_used_by_the_next_alert(
    db_url: str, receiver: WebhookReceiver, pager: WebhookReceiver
) -> None:
    async with running(config(db_url, receiver.hook_url, pager.hook_url)) as service:
        client = service.client
        policy = {"name": "oncall", "steps": [{"notify": ["pager"]}], "repeat": "30m"}
        created = await client.post("/api/v1/escalation-policies", json=policy)
        assert created.status_code == 201, created.text
        assert created.json()["source"] == "api" and created.json()["version"] == 1
        assert created.json()["definition"] == policy

        first = {"name": "disk-full", "severity": "high", "escalation": "oncall"}
        assert (await client.post("/api/v1/alerts", json=first)).status_code in (200, 201)
        await pager.wait_for(lambda r: "disk-full" in names(r), 10, "the pager paged")

        moved = {"steps": [{"notify": ["ops"]}]}
        replaced = await client.put("/api/v1/escalation-policies/oncall", json=moved)
        assert replaced.status_code == 200, replaced.text
        assert replaced.json()["version"] == 2

        second = {"name": "queue-stuck", "severity": "high", "escalation": "oncall"}
        assert (await client.post("/api/v1/alerts", json=second)).status_code in (200, 201)
        await receiver.wait_for(lambda r: "queue-stuck" in names(r), 10, "ops paged")
        assert names(receiver) == ["queue-stuck"]
        assert names(pager) == ["disk-full"]

        listed = (await client.get("/api/v1/escalation-policies")).json()
        assert [(p["name"], p["source"]) for p in listed["items"]] == [
            ("default", "config"),
            ("oncall", "api"),
        ]
        assert listed["total"] == 2
        page = (await client.get("/api/v1/escalation-policies?limit=1&offset=1")).json()
        assert [p["name"] for p in page["items"]] == ["oncall"]

    # Kept across a restart.
    async with running(config(db_url, receiver.hook_url, pager.hook_url)) as service:
        again = (await service.client.get("/api/v1/escalation-policies/oncall")).json()
        assert again["source"] == "api" and again["definition"] == {
            "name": "oncall",
            "steps": [{"notify": ["ops"]}],
        }
        assert service.runtime.managed.policies["oncall"].steps[0].notify == ["ops"]


async def test_policies_are_validated_protected_and_config_ones_read_only(
    sqlite_url: str,
) -> None:
    hook = "http://127.0.0.1:9/hook"
    async with running(config(sqlite_url, hook, hook)) as service:
        client = service.client
        bad_channel = {"name": "p", "steps": [{"notify": ["sms"]}]}
        response = await client.post("/api/v1/escalation-policies", json=bad_channel)
        assert response.status_code == 422
        assert response.json()["detail"] == "steps.0.notify: no notification channel named 'sms'"
        unordered = {
            "name": "p",
            "steps": [{"after": "10m", "notify": ["ops"]}, {"notify": ["ops"]}],
        }
        response = await client.post("/api/v1/escalation-policies", json=unordered)
        assert response.status_code == 422 and "in order" in response.json()["detail"]

        for response in (
            await client.put("/api/v1/escalation-policies/default", json=bad_channel),
            await client.delete("/api/v1/escalation-policies/default"),
            await client.post(
                "/api/v1/escalation-policies",
                json={"name": "default", "steps": [{"notify": ["ops"]}]},
            ),
        ):
            assert response.status_code == 409
            assert "defined in the config file; edit it there" in response.json()["detail"]

        policy = {"name": "p", "steps": [{"notify": ["ops"]}]}
        assert (await client.post("/api/v1/escalation-policies", json=policy)).status_code == 201
        assert (await client.post("/api/v1/escalation-policies", json=policy)).status_code == 409
        check = {"name": "c", "type": "tcp", "host": "127.0.0.1", "port": 9, "escalation": "p"}
        assert (await client.post("/api/v1/checks", json=check)).status_code == 201
        in_use = await client.delete("/api/v1/escalation-policies/p")
        assert in_use.status_code == 409 and "check c" in in_use.json()["detail"]

        operator = await service.as_role(Role.OPERATOR)
        forbidden = await client.delete("/api/v1/escalation-policies/p", headers=operator)
        assert forbidden.status_code == 403
        viewer = await service.as_role(Role.VIEWER)
        assert (
            await client.get("/api/v1/escalation-policies/p", headers=viewer)
        ).status_code == 200

        assert (await client.delete("/api/v1/checks/c")).status_code == 204
        assert (await client.delete("/api/v1/escalation-policies/p")).status_code == 204
        assert (await client.get("/api/v1/escalation-policies/p")).status_code == 404
        assert "p" not in service.runtime.managed.policies
