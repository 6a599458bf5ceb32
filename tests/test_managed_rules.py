"""Metric rules over the API: what the rule engine evaluates changes with each write."""

from __future__ import annotations

from typing import Any

from tests.support.servers import wait_until
from tests.support.service import Service, running


def config(db_url: str) -> dict[str, Any]:
    return {
        "storage": {"url": db_url},
        "rules": [{"name": "cpu", "metric": "system.cpu.percent", "threshold": 95}],
    }


async def push(service: Service, value: float) -> int:
    body = {"samples": [{"metric": "queue.depth", "value": value, "labels": {"q": "mail"}}]}
    response = await service.client.post("/api/v1/metrics", json=body)
    assert response.status_code == 200, response.text
    return int(response.json()["watched"])


async def rule_alerts(service: Service, status: str = "open") -> list[dict[str, Any]]:
    found = await service.client.get("/api/v1/alerts", params={"status": status})
    return [a for a in found.json()["items"] if a["rule"] == "queue"]


async def test_rule_writes_change_what_the_engine_evaluates(db_url: str) -> None:
    async with running(config(db_url)) as service:
        client = service.client
        assert await push(service, 150) == 0  # nobody watches queue.depth yet

        rule = {"name": "queue", "metric": "queue.depth", "op": ">", "threshold": 100, "for": "0s"}
        created = await client.post("/api/v1/rules", json=rule)
        assert created.status_code == 201, created.text
        assert created.json()["source"] == "api" and created.json()["definition"] == rule
        assert await push(service, 150) == 1
        (alert,) = await wait_until(lambda: rule_alerts(service), 10, "the rule's alert")
        assert alert["severity"] == "medium"

        # A higher threshold: the same series no longer holds the condition and resolves.
        raised = await client.put("/api/v1/rules/queue", json={**rule, "threshold": 200})
        assert raised.status_code == 200 and raised.json()["version"] == 2
        await push(service, 150)
        await wait_until(lambda: _none(rule_alerts(service)), 10, "the alert to resolve")
        listed = {r["name"]: r for r in (await client.get("/api/v1/rules")).json()["items"]}
        assert listed["queue"]["source"] == "api" and listed["queue"]["levels"] == {"medium": 200}
        assert listed["cpu"]["source"] == "config"

        await push(service, 250)
        (alert,) = await wait_until(lambda: rule_alerts(service), 10, "a new alert")
        assert (await client.delete("/api/v1/rules/queue")).status_code == 204
        detail = (await client.get(f"/api/v1/alerts/{alert['id']}")).json()
        assert detail["status"] == "resolved" and detail["events"][-1]["comment"] == "rule deleted"
        assert await push(service, 250) == 0
        assert (await client.get("/api/v1/rules/queue")).status_code == 404
        assert "queue" not in {
            r["name"] for r in (await client.get("/api/v1/rules")).json()["items"]
        }


async def _none(value: Any) -> bool:
    return not await value


async def test_rules_survive_a_restart_and_config_rules_are_read_only(sqlite_url: str) -> None:
    rule = {"name": "queue", "metric": "queue.depth", "thresholds": {"warning": 50, "critical": 90}}
    async with running(config(sqlite_url)) as service:
        assert (await service.client.post("/api/v1/rules", json=rule)).status_code == 201

    async with running(config(sqlite_url)) as service:
        client = service.client
        got = (await client.get("/api/v1/rules/queue")).json()
        assert got["source"] == "api" and got["definition"] == rule
        assert await push(service, 95) == 1
        (alert,) = await wait_until(lambda: rule_alerts(service), 10, "the restored rule fires")
        assert alert["severity"] == "critical"

        cpu = (await client.get("/api/v1/rules/cpu")).json()
        assert cpu["source"] == "config" and cpu["definition"]["threshold"] == 95
        for response in (
            await client.put("/api/v1/rules/cpu", json={"metric": "m", "threshold": 1}),
            await client.delete("/api/v1/rules/cpu"),
        ):
            assert response.status_code == 409
            assert "defined in the config file; edit it there" in response.json()["detail"]

        both = await client.post("/api/v1/rules", json={"name": "r", "metric": "m", "op": "~"})
        assert both.status_code == 422 and both.json()["detail"].startswith("op: ")
        unknown = {"name": "r", "metric": "m", "threshold": 1, "escalation": "nobody"}
        response = await client.post("/api/v1/rules", json=unknown)
        assert response.status_code == 422
        assert response.json()["detail"] == "escalation: no escalation policy 'nobody'"
        assert await push(service, 1) == 1  # still only the restored rule on queue.depth
