"""The PagerDuty channel against a loopback stand-in for the Events API v2."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.notify import payloads
from tests.notify.payloads import message
from tests.support.servers import Server
from watchkeeper.notify.channels.base import ChannelContext
from watchkeeper.notify.channels.pagerduty import (
    PagerDutyChannel,
    PagerDutyChannelConfig,
    alert_event,
    build_events,
    change_event,
    dedup_key,
)

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def alert(**overrides: Any) -> dict[str, Any]:
    return payloads.alert(**{"labels": {"check": "db", "team": "data"}, **overrides})


KEY = "R0UT1NGKEY0123456789abcdefABCDEF"
SEVERITY_MAP = PagerDutyChannelConfig.model_validate(
    {"name": "pd", "type": "pagerduty", "routing_key": KEY}
).severity_map


def event_errors(body: Any) -> list[str]:
    """The validation PagerDuty applies to an Events API v2 body (the fields we use)."""
    if not isinstance(body, dict):
        return ["Event object is invalid"]
    errors = []
    if not isinstance(body.get("routing_key"), str) or len(body["routing_key"]) != 32:
        errors.append("'routing_key' must be 32 characters")
    action = body.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        errors.append("'event_action' is invalid")
    if not isinstance(body.get("dedup_key"), str) or not 0 < len(body["dedup_key"]) <= 255:
        errors.append("'dedup_key' is missing or too long")
    if action == "trigger":
        payload = body.get("payload")
        if not isinstance(payload, dict):
            return [*errors, "'payload' is missing"]
        if not isinstance(payload.get("summary"), str) or not 0 < len(payload["summary"]) <= 1024:
            errors.append("'payload.summary' is missing or too long")
        if not payload.get("source"):
            errors.append("'payload.source' is missing")
        if payload.get("severity") not in ("critical", "error", "warning", "info"):
            errors.append("'payload.severity' is invalid")
        if any(v is None for v in payload.values()):
            errors.append("'payload' fields may not be null")
    return errors


def change_errors(body: Any) -> list[str]:
    if not isinstance(body, dict) or len(str(body.get("routing_key"))) != 32:
        return ["'routing_key' must be 32 characters"]
    payload = body.get("payload") or {}
    if not payload.get("summary") or "source" not in payload:
        return ["'payload.summary' is missing"]
    return []


class PagerDutyReceiver(Server):
    """Answers like PagerDuty: 202 for an accepted event, 400 with its error body otherwise."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.changes: list[dict[str, Any]] = []
        self.status: int | None = None
        """When set, every request is answered with this status (after validation)."""
        self.failing_keys: set[str] = set()
        """Events with these dedup keys are answered 500."""
        self.retry_after: str | None = None
        app = web.Application()
        app.router.add_post("/v2/enqueue", self._enqueue)
        app.router.add_post("/v2/change/enqueue", self._change)
        super().__init__(app)

    async def _enqueue(self, request: web.Request) -> web.Response:
        return await self._answer(request, event_errors, self.events)

    async def _change(self, request: web.Request) -> web.Response:
        return await self._answer(request, change_errors, self.changes)

    async def _answer(self, request: web.Request, check: Any, into: list[Any]) -> web.Response:
        try:
            body = json.loads(await request.read())
        except ValueError:
            body = None
        errors = check(body)
        if errors:
            return web.json_response(
                {"status": "invalid event", "message": "Event object is invalid", "errors": errors},
                status=400,
            )
        headers = {"Retry-After": self.retry_after} if self.retry_after else None
        if self.status is not None:
            return web.json_response({"status": "error"}, status=self.status, headers=headers)
        if body.get("dedup_key") in self.failing_keys:
            return web.json_response({"status": "error"}, status=500)
        into.append(body)
        return web.json_response(
            {"status": "success", "message": "Event processed", "dedup_key": body.get("dedup_key")},
            status=202,
        )


@pytest.fixture
async def pagerduty() -> AsyncIterator[PagerDutyReceiver]:
    receiver = await PagerDutyReceiver().start()
    yield receiver
    await receiver.close()


def channel(
    http: aiohttp.ClientSession, receiver: PagerDutyReceiver, **extra: Any
) -> PagerDutyChannel:
    config = PagerDutyChannelConfig.model_validate(
        {
            "name": "pd",
            "type": "pagerduty",
            "routing_key": KEY,
            "url": f"{receiver.url}/v2/enqueue",
            "change_url": f"{receiver.url}/v2/change/enqueue",
            **extra,
        }
    )
    return PagerDutyChannel(config, ChannelContext(http, 5.0, lambda: T0))


def grouped(count: int) -> dict[str, Any]:
    alerts = [alert(id=f"a-{i}", fingerprint=f"check:svc{i}", name=f"svc{i}") for i in range(count)]
    return {"alert": alerts[0], "alerts": alerts, "group": {"key": "team=data", "labels": {}}}


def test_a_firing_alert_triggers_an_incident_keyed_by_its_fingerprint() -> None:
    payload = {
        "alert": alert(),
        "links": {"alert": "https://wk.example/a/1", "dashboard": "https://wk.example/"},
    }
    assert alert_event(alert(), "alert.firing", payload, KEY, SEVERITY_MAP) == {
        "routing_key": KEY,
        "client": "watchkeeper",
        "client_url": "https://wk.example/",
        "links": [
            {"href": "https://wk.example/a/1", "text": "Open alert"},
            {"href": "https://wk.example/", "text": "Open dashboard"},
        ],
        "event_action": "trigger",
        "dedup_key": "check:db",
        "payload": {
            "summary": "db: connection refused",
            "source": "db",
            "severity": "critical",
            "timestamp": "2030-01-01T12:00:00Z",
            "component": "db",
            "class": "check",
            "custom_details": {
                "check": "db",
                "team": "data",
                "alert_id": "a-1",
                "fingerprint": "check:db",
                "status": "firing",
                "event": "alert.firing",
            },
        },
    }


@pytest.mark.parametrize(
    ("event", "action"), [("alert.acknowledged", "acknowledge"), ("alert.resolved", "resolve")]
)
def test_acknowledge_and_resolve_need_only_the_key(event: str, action: str) -> None:
    assert alert_event(alert(), event, {"alert": alert()}, KEY, SEVERITY_MAP) == {
        "routing_key": KEY,
        "event_action": action,
        "dedup_key": "check:db",
    }


def test_an_escalation_re_triggers_the_same_incident() -> None:
    body = alert_event(alert(), "alert.escalated", {"alert": alert()}, KEY, SEVERITY_MAP)
    assert (body["event_action"], body["dedup_key"]) == ("trigger", "check:db")


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        ("critical", "critical"),
        ("high", "error"),
        ("medium", "warning"),
        ("low", "info"),
        ("info", "info"),
    ],
)
def test_severities_map_to_pagerdutys_four(severity: str, expected: str) -> None:
    body = alert_event(alert(severity=severity), "alert.firing", {}, KEY, SEVERITY_MAP)
    assert body["payload"]["severity"] == expected


def test_the_severity_map_can_be_overridden_per_severity() -> None:
    config = PagerDutyChannelConfig.model_validate(
        {"name": "pd", "type": "pagerduty", "routing_key": KEY, "severity_map": {"low": "warning"}}
    )
    assert config.severity_map == {
        "critical": "critical",
        "high": "error",
        "medium": "warning",
        "low": "warning",
        "info": "info",
    }


def test_long_summaries_and_fingerprints_fit_pagerdutys_limits() -> None:
    body = alert_event(
        alert(summary="x" * 5000, fingerprint="f" * 300), "alert.firing", {}, KEY, SEVERITY_MAP
    )
    assert len(body["payload"]["summary"]) == 1024
    assert body["dedup_key"] == dedup_key("f" * 300)
    assert body["dedup_key"].startswith("sha256:") and len(body["dedup_key"]) <= 255
    assert event_errors(body) == []


def test_a_grouped_message_is_one_event_per_distinct_alert() -> None:
    payload = grouped(3)
    payload["alerts"].append(dict(payload["alerts"][0]))  # a duplicate fingerprint
    events = build_events(message("alert.firing", payload), KEY, SEVERITY_MAP, T0)
    assert [e["dedup_key"] for e in events] == ["check:svc0", "check:svc1", "check:svc2"]
    assert all(e["payload"]["group"] == "team=data" for e in events)


def test_a_resolved_alert_in_a_firing_group_resolves_instead_of_paging() -> None:
    payload = grouped(2)
    payload["alerts"][1]["status"] = "resolved"
    events = build_events(message("alert.firing", payload), KEY, SEVERITY_MAP, T0)
    assert [(e["event_action"], e["dedup_key"]) for e in events] == [
        ("trigger", "check:svc0"),
        ("resolve", "check:svc1"),
    ]


def test_a_digest_triggers_one_warning_incident() -> None:
    digest = {"suppressed": 12, "since": "2030-01-01T11:00:00Z", "events": {"alert.firing": 12}}
    [event] = build_events(message("notifications.digest", {"digest": digest}, "d-1"), KEY, {}, T0)
    assert event == {
        "routing_key": KEY,
        "client": "watchkeeper",
        "event_action": "trigger",
        "dedup_key": "watchkeeper:digest:d-1",
        "payload": {
            "summary": "12 notifications suppressed since 2030-01-01 11:00:00 UTC",
            "source": "watchkeeper",
            "severity": "warning",
            "timestamp": "2030-01-01T12:00:00Z",
            "class": "notifications.digest",
            "custom_details": digest,
        },
    }


RECOVERY = {
    "recovery": {
        "id": "r-1",
        "action": "restart-db",
        "check": "db",
        "attempt": 2,
        "status": "succeeded",
        "started_at": "2030-01-01T12:00:00Z",
        "finished_at": "2030-01-01T12:00:05Z",
        "output": "restarted",
    }
}


def test_a_recovery_event_is_a_change_event_that_pages_nobody() -> None:
    assert change_event(message("recovery.succeeded", RECOVERY), KEY, T0) == {
        "routing_key": KEY,
        "payload": {
            "summary": "Recovery succeeded: restart-db for db (attempt 2)",
            "source": "db",
            "timestamp": "2030-01-01T12:00:05Z",
            "custom_details": {
                "Action": "restart-db",
                "Check": "db",
                "Attempt": "2",
                "Status": "succeeded",
                "Started": "2030-01-01 12:00:00 UTC",
                "Finished": "2030-01-01 12:00:05 UTC",
                "Recovery ID": "r-1",
                "Output": "restarted",
            },
        },
    }


async def test_each_event_posted_is_exactly_the_built_body(
    http: aiohttp.ClientSession, pagerduty: PagerDutyReceiver
) -> None:
    msg = message("alert.firing", {"alert": alert()})
    outcome = await channel(http, pagerduty).send(msg)
    assert outcome.delivered, outcome.error
    assert pagerduty.events == build_events(msg, KEY, SEVERITY_MAP, T0)


async def test_an_alert_lifecycle_triggers_acknowledges_and_resolves_one_incident(
    http: aiohttp.ClientSession, pagerduty: PagerDutyReceiver
) -> None:
    pd = channel(http, pagerduty)
    for event in ("alert.firing", "alert.acknowledged", "alert.resolved"):
        outcome = await pd.send(message(event, {"alert": alert()}))
        assert outcome.delivered, outcome.error
    assert [(e["event_action"], e["dedup_key"]) for e in pagerduty.events] == [
        ("trigger", "check:db"),
        ("acknowledge", "check:db"),
        ("resolve", "check:db"),
    ]


async def test_fifty_grouped_alerts_trigger_fifty_incidents(
    http: aiohttp.ClientSession, pagerduty: PagerDutyReceiver
) -> None:
    outcome = await channel(http, pagerduty).send(message("alert.firing", grouped(50)))
    assert outcome.delivered, outcome.error
    assert sorted(e["dedup_key"] for e in pagerduty.events) == sorted(
        f"check:svc{i}" for i in range(50)
    )


async def test_one_failed_event_fails_the_group_and_the_retry_resends_safely(
    http: aiohttp.ClientSession, pagerduty: PagerDutyReceiver
) -> None:
    pd = channel(http, pagerduty)
    msg = message("alert.firing", grouped(3))
    pagerduty.failing_keys = {"check:svc1"}
    outcome = await pd.send(msg)
    assert (outcome.delivered, outcome.retry) == (False, True)
    assert outcome.error is not None
    assert outcome.error.startswith("'check:svc1' (1 of 3 events): HTTP 500 from ")

    pagerduty.failing_keys = set()
    assert (await pd.send(msg)).delivered
    # The retry re-sent every event; PagerDuty deduplicates the ones it already had.
    keys = {e["dedup_key"] for e in pagerduty.events}
    assert keys == {"check:svc0", "check:svc1", "check:svc2"}


async def test_digests_and_recoveries_reach_their_endpoints(
    http: aiohttp.ClientSession, pagerduty: PagerDutyReceiver
) -> None:
    pd = channel(http, pagerduty)
    digest = {"suppressed": 3, "since": "2030-01-01T11:00:00Z", "events": {"alert.firing": 3}}
    assert (await pd.send(message("notifications.digest", {"digest": digest}))).delivered
    assert (await pd.send(message("recovery.failed", RECOVERY))).delivered
    assert [e["payload"]["severity"] for e in pagerduty.events] == ["warning"]
    assert [c["payload"]["source"] for c in pagerduty.changes] == ["db"]


async def test_the_receiver_rejects_what_pagerduty_would_reject(
    http: aiohttp.ClientSession, pagerduty: PagerDutyReceiver
) -> None:
    bad = {"routing_key": "short", "event_action": "trigger", "dedup_key": "k", "payload": {}}
    async with http.post(f"{pagerduty.url}/v2/enqueue", json=bad) as response:
        assert response.status == 400
        answer = await response.json()
    assert answer["errors"][0] == "'routing_key' must be 32 characters"
    assert "'payload.severity' is invalid" in answer["errors"]


async def test_a_rejected_event_is_permanent(
    http: aiohttp.ClientSession, pagerduty: PagerDutyReceiver
) -> None:
    pagerduty.status = 400
    outcome = await channel(http, pagerduty).send(message("alert.firing", {"alert": alert()}))
    assert (outcome.delivered, outcome.retry) == (False, False)
    assert outcome.error is not None and "HTTP 400" in outcome.error


@pytest.mark.parametrize(("status", "retry_after"), [(429, "12"), (503, None)])
async def test_rate_limits_and_outages_are_temporary(
    http: aiohttp.ClientSession, pagerduty: PagerDutyReceiver, status: int, retry_after: str | None
) -> None:
    pagerduty.status, pagerduty.retry_after = status, retry_after
    outcome = await channel(http, pagerduty).send(message("alert.firing", {"alert": alert()}))
    assert (outcome.delivered, outcome.retry) == (False, True)
    assert outcome.retry_after == (float(retry_after) if retry_after else None)


async def test_the_routing_key_is_a_secret_and_must_look_like_one(
    http: aiohttp.ClientSession, pagerduty: PagerDutyReceiver
) -> None:
    assert channel(http, pagerduty).secrets() == [KEY]
    config = {"name": "pd", "type": "pagerduty", "routing_key": "not-32-characters"}
    with pytest.raises(ValueError, match="routing_key"):
        PagerDutyChannelConfig.model_validate(config)
