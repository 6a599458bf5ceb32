"""Recovery in the running service: approving and rejecting over the API (roles, audit),
a rule's alert running its `recovery:`, and automatic runs held during a maintenance
window or while a dependency is DOWN (by hand they still run)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.servers import WebhookReceiver, free_port, wait_until
from tests.support.service import Service, running
from watchkeeper.checks.base import BreakerSettings
from watchkeeper.config.model import Config
from watchkeeper.core.domain import Status
from watchkeeper.http.roles import Role

PY = sys.executable


def section() -> list[dict[str, Any]]:
    return [
        {"name": "cool", "type": "command", "command": [PY, "-c", "print('cooled')"]},
        {
            "name": "fix",
            "type": "command",
            "command": [PY, "-c", "print('fixed')"],
            "cooldown": "0s",
        },
        {
            "name": "db-runbook",
            "type": "runbook",
            "approval": "required",
            "cooldown": "0s",
            "steps": [{"action": "fix"}],
        },
    ]


@pytest.fixture
async def service(sqlite_url: str, receiver: WebhookReceiver) -> AsyncIterator[Service]:
    closed = free_port()  # nothing listens there: the check is DOWN at once
    cfg = {
        "storage": {"url": sqlite_url},
        "checks": [
            {"name": "db", "type": "tcp", "host": "127.0.0.1", "port": closed, "interval": "1h"},
            {
                "name": "web",
                "type": "tcp",
                "host": "127.0.0.1",
                "port": closed,
                "interval": "1h",
                "depends_on": ["db"],
                "recovery": "fix",
            },
        ],
        "rules": [{"name": "hot", "metric": "temp", "threshold": 50, "recovery": "cool"}],
        "notifications": [{"name": "hook", "type": "webhook", "url": receiver.hook_url}],
        "server": {"public_url": "https://wk.example"},
        "recovery": section(),
    }
    async with running(cfg) as svc:
        yield svc


async def _run(service: Service, run_id: str) -> dict[str, Any]:
    return dict((await service.client.get(f"/api/v1/recovery/runs/{run_id}")).json())


async def _finished(service: Service, run_id: str) -> dict[str, Any] | None:
    run = await _run(service, run_id)
    return run if run["finished_at"] else None


async def test_approve_and_reject_over_the_api_by_operators_audited(
    service: Service, receiver: WebhookReceiver
) -> None:
    client = service.client
    viewer = await service.as_role(Role.VIEWER)
    operator = await service.as_role(Role.OPERATOR)
    asked = await client.post("/api/v1/recovery/db-runbook/run", headers=operator)
    assert asked.status_code == 202, asked.text
    run = asked.json()
    assert run["status"] == "pending_approval" and run["expires_at"] is not None
    (asked_hook,) = await receiver.wait_for(
        lambda r: r.accepted("recovery.approval_requested"), 15, "the request for approval"
    )
    assert asked_hook.payload["recovery"]["id"] == run["id"]
    assert asked_hook.payload["links"] == {
        "approval": f"https://wk.example/dashboard/recovery#run-{run['id']}"
    }
    state = (await client.get("/api/v1/recovery/db-runbook")).json()
    assert state["state"] == "pending_approval"
    pending = await client.get("/api/v1/recovery/runs", params={"status": "pending_approval"})
    assert [r["id"] for r in pending.json()["items"]] == [run["id"]]

    url = f"/api/v1/recovery/runs/{run['id']}"
    refused = await client.post(f"{url}/approve", json={"comment": "x"}, headers=viewer)
    assert refused.status_code == 403
    approved = await client.post(f"{url}/approve", json={"comment": "go"}, headers=operator)
    assert approved.status_code == 200, approved.text
    assert approved.json()["reason"] == "approved by operator: go"
    done = await wait_until(lambda: _finished(service, run["id"]), 15, "the approved run done")
    assert done["status"] == "succeeded" and "fixed" in done["output"]
    again = await client.post(f"{url}/approve", headers=operator)
    assert again.status_code == 409 and "succeeded, not waiting" in again.json()["detail"]
    assert (await client.post("/api/v1/recovery/runs/nope/approve")).status_code == 404

    second = (await client.post("/api/v1/recovery/db-runbook/run", headers=operator)).json()
    rejected = await client.post(
        f"/api/v1/recovery/runs/{second['id']}/reject",
        json={"comment": "backup running"},
        headers=operator,
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["reason"] == "rejected by operator: backup running"

    audit = (await client.get("/api/v1/audit")).json()["items"]
    decisions = {
        e["detail"].get("decision"): (e["actor"], e["detail"].get("comment"))
        for e in audit
        if e["action"].endswith(("/approve", "/reject"))
    }
    assert decisions == {"approved": ("operator", "go"), "rejected": ("operator", "backup running")}


async def test_a_rules_alert_runs_its_recovery_and_names_only_a_file_action(
    service: Service,
) -> None:
    sample = {"samples": [{"metric": "temp", "value": 90, "labels": {"room": "a"}}]}
    assert (await service.client.post("/api/v1/metrics", json=sample)).status_code == 200
    await service.runtime.rules.evaluate()

    async def by_rule() -> list[dict[str, Any]]:
        items = (await service.client.get("/api/v1/recovery/runs")).json()["items"]
        return [r for r in items if r["trigger"] == "rule" and r["finished_at"]]

    (run,) = await wait_until(by_rule, 15, "a run for the rule")
    assert run["action"] == "cool" and run["status"] == "succeeded" and run["check"] is None

    # A rule made over the API may name only an action of the file.
    rule = {"name": "cold", "metric": "temp", "op": "<", "threshold": 5}
    bad = await service.client.post("/api/v1/rules", json={**rule, "recovery": "evil"})
    assert bad.status_code == 422 and "no recovery action named 'evil'" in bad.text
    good = await service.client.post("/api/v1/rules", json={**rule, "recovery": "fix"})
    assert good.status_code == 201, good.text


async def test_automatic_runs_wait_while_a_dependency_is_down_or_in_maintenance(
    service: Service,
) -> None:
    runtime = service.runtime
    recovery = runtime.recovery

    async def db_down() -> bool:
        state = runtime.states.get("db")
        return state is not None and state.status is Status.DOWN

    runtime.scheduler.run_now("db")  # not at its spread first run, up to 5 s away
    await wait_until(db_down, 15, "db DOWN")
    assert await runtime._recovery_hold("web") == "its dependency db is DOWN"
    assert await runtime._recovery_hold("db") is None
    await recovery.settled()
    before = (await service.client.get("/api/v1/recovery/runs")).json()["total"]
    assert recovery.trigger("fix", "web", "check")
    await recovery.settled()
    assert (await service.client.get("/api/v1/recovery/runs")).json()["total"] == before

    now = datetime.now(UTC)
    window = {
        "name": "deploy",
        "starts_at": (now - timedelta(minutes=1)).isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(),
        "checks": ["db"],
    }
    assert (await service.client.post("/api/v1/maintenances", json=window)).status_code == 201
    assert await runtime._recovery_hold("db") == "maintenance window deploy"
    # A check whose circuit breaker is not closed: probed less often, not healed meanwhile.
    with_breaker = runtime.check_configs["db"].model_copy(
        update={"breaker": BreakerSettings(min_results=1, window=1)}
    )
    runtime.breakers.record(with_breaker, Status.DOWN)
    assert await runtime._recovery_hold("db") == "its circuit breaker is open"
    # By hand it still runs.
    manual = await service.client.post("/api/v1/recovery/fix/run")
    assert manual.status_code == 202, manual.text


def test_a_rule_must_name_a_configured_recovery_action() -> None:
    body = {
        "rules": [{"name": "hot", "metric": "temp", "threshold": 5, "recovery": "nope"}],
        "recovery": section(),
    }
    with pytest.raises(ValueError, match=r"rules\[0\]\.recovery: no recovery action named 'nope'"):
        Config.model_validate(body)
