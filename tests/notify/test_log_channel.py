"""The log channel: one structured line per notification, always delivered."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from watchkeeper.notify.channels.base import ChannelContext, Message
from watchkeeper.notify.channels.log import LogChannel, LogChannelConfig, record

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def channel(http: aiohttp.ClientSession, **extra: Any) -> LogChannel:
    config = LogChannelConfig.model_validate({"name": "audit", "type": "log", **extra})
    return LogChannel(config, ChannelContext(http, 5.0, lambda: T0))


def alert(i: int = 1, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": f"a-{i}",
        "fingerprint": f"check:svc{i}",
        "name": f"svc{i}",
        "check": f"svc{i}",
        "rule": None,
        "severity": "high",
        "status": "firing",
        "started_at": "2030-01-01T12:00:00Z",
        "resolved_at": None,
        "summary": "down",
        "labels": {},
    }
    return {**base, **overrides}


def message(event: str, payload: dict[str, Any]) -> Message:
    return Message(7, f"key:{event}", event, {"version": 1, "event": event, **payload}, T0, 2)


def logged(caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    [entry] = [r for r in caplog.records if r.name == "watchkeeper.notify"]
    text = entry.getMessage()
    assert text.startswith("notification {") and "\n" not in text
    fields = json.loads(text.removeprefix("notification "))
    assert fields == entry.notification  # type: ignore[attr-defined]
    return fields


async def test_a_notification_is_one_warning_line_with_its_fields(
    http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    payload = {"alert": alert(), "links": {"alert": "https://wk.example/a/1"}}
    with caplog.at_level(logging.DEBUG, "watchkeeper.notify"):
        outcome = await channel(http).send(message("alert.firing", payload))
    assert outcome.delivered
    assert caplog.records[-1].levelno == logging.WARNING
    assert logged(caplog) == {
        "channel": "audit",
        "event": "alert.firing",
        "idempotency_key": "key:alert.firing",
        "attempt": 2,
        "title": "FIRING [high] svc1: down",
        "severity": "high",
        "alerts": 1,
        "fingerprints": ["check:svc1"],
        "links": {"alert": "https://wk.example/a/1"},
    }


async def test_the_level_is_configurable(
    http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, "watchkeeper.notify"):
        await channel(http, level="info").send(message("alert.resolved", {"alert": alert()}))
    assert [r.levelname for r in caplog.records] == ["INFO"]


async def test_it_is_delivered_even_when_nobody_listens(
    http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, "watchkeeper.notify"):
        outcome = await channel(http, level="debug").send(message("alert.firing", {}))
    assert outcome.delivered
    assert caplog.records == []


def test_a_group_lists_its_size_key_and_fingerprints() -> None:
    alerts = [alert(i) for i in range(3)]
    payload = {"alert": alerts[0], "alerts": alerts, "group": {"key": "team=db", "labels": {}}}
    fields = record("audit", message("alert.firing", payload))
    assert (fields["alerts"], fields["group"]) == (3, "team=db")
    assert fields["fingerprints"] == ["check:svc0", "check:svc1", "check:svc2"]


def test_digests_and_recoveries_say_what_they_are_about() -> None:
    digest = {"suppressed": 9, "since": "2030-01-01T11:00:00Z", "events": {"alert.firing": 9}}
    assert record("audit", message("notifications.digest", {"digest": digest}))["digest"] == digest
    recovery = {"id": "r-1", "action": "restart", "check": "db", "status": "failed", "output": "x"}
    fields = record("audit", message("recovery.failed", {"recovery": recovery}))
    assert fields["recovery"] == {
        "id": "r-1",
        "action": "restart",
        "check": "db",
        "status": "failed",
    }
    assert fields["severity"] == "high"


def test_an_unknown_level_is_a_config_error() -> None:
    with pytest.raises(ValueError):
        LogChannelConfig.model_validate({"name": "audit", "type": "log", "level": "loud"})
