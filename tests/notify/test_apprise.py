"""The Apprise channel, posting through Apprise's `json://` service to a loopback receiver."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.notify.payloads import alert, message
from tests.support.servers import Server, free_port
from watchkeeper.notify import render
from watchkeeper.notify.channels.apprise import (
    AppriseChannel,
    AppriseChannelConfig,
    notify_type,
    url_secrets,
)
from watchkeeper.notify.channels.base import ChannelContext

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
TOKEN = "tok3nTok3nTok3n42"


class JsonReceiver(Server):
    """What Apprise's `json://host:port/path` service posts to: records each JSON body."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        app = web.Application()
        app.router.add_post("/notify/{token}", self._notify)
        super().__init__(app)

    def apprise_url(self, path: str = f"notify/{TOKEN}") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    async def _notify(self, request: web.Request) -> web.Response:
        self.received.append(json.loads(await request.read()))
        return web.Response(status=self.status)


@pytest.fixture
async def receiver() -> AsyncIterator[JsonReceiver]:
    server = await JsonReceiver().start()
    yield server
    await server.close()


@pytest.fixture
def apprise_log() -> Iterator[io.StringIO]:
    """Apprise's own log lines at debug level, as our root handler would print them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("apprise")
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(previous)
    stream.seek(0)


def channel(http: aiohttp.ClientSession, **urls: Any) -> AppriseChannel:
    config = AppriseChannelConfig.model_validate({"name": "push", "type": "apprise", **urls})
    return AppriseChannel(config, ChannelContext(http, 5.0, lambda: T0))


async def test_apprise_posts_our_title_and_body(
    http: aiohttp.ClientSession, receiver: JsonReceiver
) -> None:
    payload = {"alert": alert()}
    outcome = await channel(http, url=receiver.apprise_url()).send(message("alert.firing", payload))
    assert outcome.delivered, outcome.error
    [posted] = receiver.received
    assert posted["title"] == render.title("alert.firing", payload)
    assert posted["message"] == render.text_body("alert.firing", payload)
    assert posted["type"] == "failure"


async def test_every_url_gets_the_notification(
    http: aiohttp.ClientSession, receiver: JsonReceiver
) -> None:
    urls = [receiver.apprise_url("notify/one-token-1234"), receiver.apprise_url("notify/two")]
    push = channel(http, url=urls[0], urls=urls[1:])
    payload = {"alert": alert(status="resolved", resolved_at="2030-01-01T12:03:00Z")}
    outcome = await push.send(message("alert.resolved", payload))
    assert outcome.delivered, outcome.error
    assert [p["type"] for p in receiver.received] == ["success", "success"]


@pytest.mark.parametrize(
    ("event", "severity", "expected"),
    [
        ("alert.firing", "critical", "failure"),
        ("alert.firing", "high", "failure"),
        ("alert.firing", "medium", "warning"),
        ("alert.firing", "low", "info"),
        ("alert.resolved", "critical", "success"),
        ("recovery.succeeded", None, "success"),
    ],
)
def test_severity_sets_apprises_notification_type(
    event: str, severity: str | None, expected: str
) -> None:
    payload = {"alert": alert(severity=severity)} if severity else {}
    assert notify_type(event, payload).value == expected


async def test_a_failing_service_is_temporary_and_named_without_its_token(
    http: aiohttp.ClientSession, receiver: JsonReceiver
) -> None:
    receiver.status = 500
    push = channel(http, url=receiver.apprise_url())
    outcome = await push.send(message("alert.firing", {"alert": alert()}))
    assert (outcome.delivered, outcome.retry) == (False, True)
    assert outcome.error is not None and outcome.error.startswith("apprise could not deliver to 1")
    assert TOKEN not in outcome.error


async def test_one_failing_url_of_two_fails_the_attempt(
    http: aiohttp.ClientSession, receiver: JsonReceiver
) -> None:
    dead = f"json://127.0.0.1:{free_port()}/notify/{TOKEN}"
    outcome = await channel(http, urls=[receiver.apprise_url(), dead]).send(
        message("alert.firing", {"alert": alert()})
    )
    assert (outcome.delivered, outcome.retry) == (False, True)
    assert outcome.error is not None and "1 of 2 URLs" in outcome.error
    assert len(receiver.received) == 1, "the working URL still got it"


async def test_apprise_never_logs_a_url_token_even_while_parsing_the_config(
    http: aiohttp.ClientSession, receiver: JsonReceiver, apprise_log: io.StringIO
) -> None:
    push = channel(http, url=receiver.apprise_url())
    assert (await push.send(message("alert.firing", {"alert": alert()}))).delivered
    text = apprise_log.getvalue()
    assert "Loaded JSON URL: ***" in text, "Apprise logs each URL as it parses it"
    assert f"127.0.0.1:{receiver.port}/notify/***" in text, "and the URL it posts to"
    assert TOKEN not in text


def test_the_parts_of_a_url_that_can_be_tokens_are_secrets() -> None:
    assert set(url_secrets("discord://123456789012/AbCdEfGhIjKlMnOp")) == {
        "discord://123456789012/AbCdEfGhIjKlMnOp",
        "123456789012",
        "AbCdEfGhIjKlMnOp",
    }
    secrets = url_secrets("json://me:pw12@hooks.example.com/x?token=abc&mode=plain")
    assert {"pw12", "abc"} <= set(secrets)
    assert "hooks.example.com" not in secrets and "plain" not in secrets


def test_a_bad_url_is_a_config_error_that_does_not_repeat_the_url() -> None:
    with pytest.raises(ValueError, match="Apprise URL #2 is not valid") as raised:
        AppriseChannelConfig.model_validate(
            {"name": "p", "type": "apprise", "urls": ["json://localhost/", "nope://s3cr3t-s3cr3t"]}
        )
    assert "s3cr3t" not in str(raised.value.errors(include_input=False))
    with pytest.raises(ValueError, match="set `url` or `urls`"):
        AppriseChannelConfig.model_validate({"name": "p", "type": "apprise"})
