"""The Slack channel against a loopback stand-in for Slack's incoming webhook endpoint."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.notify.payloads import alert, message
from tests.support.servers import Server, free_port
from watchkeeper.notify.channels.base import ChannelContext
from watchkeeper.notify.channels.slack import SlackChannel, SlackChannelConfig, build_payload

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
HOOK_PATH = "/services/T0000/B0000/s3cretWebhookToken"


def slack_shape_errors(body: Any) -> list[str]:
    """What Slack checks before accepting a message (the subset our messages use)."""
    errors: list[str] = []

    def blocks_ok(blocks: Any, where: str) -> None:
        if not isinstance(blocks, list) or len(blocks) > 50:
            errors.append(f"{where}: blocks must be a list of at most 50")
            return
        for block in blocks:
            if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                errors.append(f"{where}: every block is an object with a `type`")
            elif block["type"] == "header" and len(block["text"]["text"]) > 150:
                errors.append(f"{where}: header text over 150 characters")
            elif len(block.get("fields", [])) > 10:
                errors.append(f"{where}: more than 10 fields")

    if not isinstance(body, dict):
        return ["body is not an object"]
    if not isinstance(body.get("text"), str) or not body["text"]:
        errors.append("`text` must be a non-empty string")
    blocks_ok(body.get("blocks"), "blocks")
    for attachment in body.get("attachments", []):
        blocks_ok(attachment.get("blocks", []), "attachment")
        if not str(attachment.get("color", "")).startswith("#"):
            errors.append("attachment colour must be a hex colour")
    return errors


class SlackReceiver(Server):
    """Answers like Slack: 200 "ok", 400 "invalid_payload" for a malformed message."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.reply: tuple[int, str] | None = None
        self.retry_after: str | None = None
        app = web.Application()
        app.router.add_post(HOOK_PATH, self._hook)
        super().__init__(app)

    @property
    def hook_url(self) -> str:
        return self.url + HOOK_PATH

    async def _hook(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        if slack_shape_errors(body):
            return web.Response(status=400, text="invalid_payload")
        self.received.append(body)
        headers = {"Retry-After": self.retry_after} if self.retry_after else None
        status, text = self.reply or (200, "ok")
        return web.Response(status=status, text=text, headers=headers)


@pytest.fixture
async def slack() -> AsyncIterator[SlackReceiver]:
    receiver = await SlackReceiver().start()
    yield receiver
    await receiver.close()


def channel(http: aiohttp.ClientSession, url: str, **extra: Any) -> SlackChannel:
    config = SlackChannelConfig.model_validate(
        {"name": "chat", "type": "slack", "webhook_url": url, **extra}
    )
    return SlackChannel(config, ChannelContext(http, 5.0, lambda: T0))


def test_a_firing_alert_becomes_a_header_summary_and_a_red_bar_of_fields() -> None:
    payload = {"alert": alert(), "links": {"alert": "https://wk.example/alerts/a-1"}}
    assert build_payload(message("alert.firing", payload), channel="#ops", username="wk") == {
        "text": "🔴 FIRING [critical] db: connection refused",
        "blocks": [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": "🔴 FIRING [critical] db: connection refused",
                },
            },
            {"type": "section", "text": {"type": "mrkdwn", "text": "connection refused"}},
        ],
        "attachments": [
            {
                "color": "#d00000",
                "fallback": "🔴 FIRING [critical] db: connection refused",
                "blocks": [
                    {
                        "type": "section",
                        "fields": [
                            {"type": "mrkdwn", "text": "*Severity*\ncritical"},
                            {"type": "mrkdwn", "text": "*Status*\nfiring"},
                            {"type": "mrkdwn", "text": "*Check*\ndb"},
                            {"type": "mrkdwn", "text": "*Started*\n2030-01-01 12:00:00 UTC"},
                            {"type": "mrkdwn", "text": "*Labels*\ncheck=db"},
                            {"type": "mrkdwn", "text": "*Fingerprint*\ncheck:db"},
                            {"type": "mrkdwn", "text": "*Alert ID*\na-1"},
                        ],
                    },
                    {
                        "type": "context",
                        "elements": [
                            {
                                "type": "mrkdwn",
                                "text": "<https://wk.example/alerts/a-1|Open alert>"
                                " · watchkeeper · alert.firing",
                            }
                        ],
                    },
                ],
            }
        ],
        "channel": "#ops",
        "username": "wk",
    }


def test_a_resolved_alert_has_a_green_bar() -> None:
    resolved = alert(status="resolved", resolved_at="2030-01-01T12:10:00Z")
    body = build_payload(message("alert.resolved", {"alert": resolved}))
    assert body["attachments"][0]["color"] == "#2e7d32"
    assert body["text"] == "✅ RESOLVED [critical] db: connection refused"


def test_fifty_grouped_alerts_show_ten_sections_and_count_the_rest() -> None:
    alerts = [alert(id=f"a-{i}", name=f"svc{i}", severity="medium") for i in range(50)]
    payload = {
        "alert": alerts[0],
        "alerts": alerts,
        "group": {"key": "k", "labels": {"team": "db"}},
    }
    body = build_payload(message("alert.firing", payload))
    assert body["text"] == "🟡 50 alerts firing [medium]: team=db"
    assert body["blocks"][1]["text"]["text"] == "*50 alerts* firing in group `team=db`"
    details = body["attachments"][0]["blocks"]
    sections = [b for b in details if b["type"] == "section"]
    assert len(sections) == 10
    assert sections[0]["text"]["text"] == "🟡 *svc0* — connection refused"
    assert [f["text"] for f in sections[0]["fields"]] == [
        "*Severity*\nmedium",
        "*Status*\nfiring",
        "*Started*\n2030-01-01 12:00:00 UTC",
        "*Labels*\ncheck=db",
    ]
    assert details[10] == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "… and 40 more"}],
    }
    assert slack_shape_errors(body) == []


def test_text_from_alerts_cannot_inject_slack_markup() -> None:
    payload = {"alert": alert(summary="<!channel> & <https://evil|click>")}
    body = build_payload(message("alert.firing", payload))
    assert body["blocks"][1]["text"]["text"] == "&lt;!channel&gt; &amp; &lt;https://evil|click&gt;"


def test_a_very_long_summary_still_fits_slacks_limits() -> None:
    body = build_payload(message("alert.firing", {"alert": alert(summary="x" * 10_000)}))
    assert len(body["blocks"][0]["text"]["text"]) == 150
    assert len(body["blocks"][1]["text"]["text"]) == 3000
    assert slack_shape_errors(body) == []


async def test_the_message_posted_is_exactly_the_built_payload(
    http: aiohttp.ClientSession, slack: SlackReceiver
) -> None:
    msg = message("alert.firing", {"alert": alert()})
    outcome = await channel(http, slack.hook_url).send(msg)
    assert outcome.delivered, outcome.error
    assert slack.received == [build_payload(msg)]


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("alert.acknowledged", {"alert": alert(status="acknowledged")}),
        ("alert.escalated", {"alert": alert()}),
        (
            "notifications.digest",
            {"digest": {"suppressed": 7, "since": "2030-01-01T11:00:00Z", "events": {"x": 7}}},
        ),
        (
            "recovery.failed",
            {
                "recovery": {
                    "id": "r-1",
                    "action": "restart",
                    "check": "db",
                    "attempt": 1,
                    "status": "failed",
                    "started_at": "2030-01-01T12:00:00Z",
                    "finished_at": "2030-01-01T12:00:01Z",
                    "output": "```exit 1```",
                }
            },
        ),
    ],
)
async def test_every_kind_of_event_is_a_message_slack_accepts(
    http: aiohttp.ClientSession, slack: SlackReceiver, event: str, payload: dict[str, Any]
) -> None:
    outcome = await channel(http, slack.hook_url).send(message(event, payload))
    assert outcome.delivered, outcome.error
    assert len(slack.received) == 1


async def test_the_receiver_rejects_what_slack_would_reject(
    http: aiohttp.ClientSession, slack: SlackReceiver
) -> None:
    async with http.post(slack.hook_url, json={"blocks": [{"text": "no type"}]}) as response:
        assert (response.status, await response.text()) == (400, "invalid_payload")


@pytest.mark.parametrize(("status", "text"), [(404, "channel_not_found"), (403, "invalid_token")])
async def test_a_client_error_is_permanent_and_hides_the_webhook_token(
    http: aiohttp.ClientSession, slack: SlackReceiver, status: int, text: str
) -> None:
    slack.reply = (status, text)
    chat = channel(http, slack.hook_url)
    outcome = await chat.send(message("alert.firing", {"alert": alert()}))
    assert (outcome.delivered, outcome.retry) == (False, False)
    assert outcome.error == f"HTTP {status} from {slack.url}/***: {text}"
    assert all(secret not in outcome.error for secret in chat.secrets())
    assert slack.hook_url in chat.secrets()


async def test_a_server_error_is_temporary(
    http: aiohttp.ClientSession, slack: SlackReceiver
) -> None:
    slack.reply = (500, "rollup_error")
    outcome = await channel(http, slack.hook_url).send(message("alert.firing", {"alert": alert()}))
    assert (outcome.delivered, outcome.retry, outcome.retry_after) == (False, True, None)


async def test_rate_limiting_is_temporary_and_honours_retry_after(
    http: aiohttp.ClientSession, slack: SlackReceiver
) -> None:
    slack.reply, slack.retry_after = (429, "rate_limited"), "30"
    outcome = await channel(http, slack.hook_url).send(message("alert.firing", {"alert": alert()}))
    assert (outcome.delivered, outcome.retry, outcome.retry_after) == (False, True, 30.0)


async def test_an_unreachable_slack_is_temporary(http: aiohttp.ClientSession) -> None:
    url = f"http://127.0.0.1:{free_port()}{HOOK_PATH}"
    outcome = await channel(http, url).send(message("alert.firing", {"alert": alert()}))
    assert (outcome.delivered, outcome.retry) == (False, True)
    assert "s3cretWebhookToken" not in (outcome.error or "")
