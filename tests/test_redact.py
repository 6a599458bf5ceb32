"""The secret policy itself: which names are secret, how text, bodies and definitions are
masked, and that every secret-bearing field of every check and channel type is reported."""

from __future__ import annotations

import json
import logging
from typing import Any, cast

import aiohttp
import pytest
from pydantic import TypeAdapter

from watchkeeper.checks import CheckContext, build_check
from watchkeeper.config.loader import ChannelConfig, CheckConfig
from watchkeeper.core.domain import CheckResult
from watchkeeper.core.redact import (
    RedactingFilter,
    Redactor,
    body_secrets,
    is_secret_name,
    redact_body,
    redact_data,
    redact_text,
    url_secrets,
)
from watchkeeper.notify.channels import build_channel
from watchkeeper.notify.channels.base import ChannelContext


@pytest.mark.parametrize(
    "name",
    [
        "api_key",
        "apikey",
        "X-API-Key",
        "token",
        "access_token",
        "client_secret",
        "password",
        "passwd",
        "pwd",
        "sslpassword",
        "pass",
        "X-Amz-Signature",
        "sig",
        "Authorization",
        "basic_auth",
        "session",
        "Cookie",
        "Set-Cookie",
        "credentials",
        "private_key",
        "X-CSRF-Token",
        "routing_key",
    ],
)
def test_secret_names_are_recognised_in_any_case(name: str) -> None:
    assert is_secret_name(name) and is_secret_name(name.upper()) and is_secret_name(name.lower())


@pytest.mark.parametrize(
    "name", ["page", "q", "user", "username", "signal", "passive", "Content-Type", "Accept"]
)
def test_ordinary_names_are_not_secret(name: str) -> None:
    assert not is_secret_name(name)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "HTTP 500 from https://h/x?api_key=s3cr3t&page=2&Signature=abc",
            "HTTP 500 from https://h/x?api_key=***&page=2&Signature=***",
        ),
        ("postgresql://us@er:p@ss@db/x", "postgresql://us@er:***@db/x"),
        (
            "postgresql://u@db/x?password=pw&sslpassword=kp",
            "postgresql://u@db/x?password=***&sslpassword=***",
        ),
        ("host=db password=pw user=u", "host=db password=*** user=u"),
        ("--password=pw --port=5", "--password=*** --port=5"),
        ('{"password": "p\\"w", "user": "bob"}', '{"password": "***", "user": "bob"}'),
        ("{'Cookie': 'sid=1', 'Accept': '*/*'}", "{'Cookie': '***', 'Accept': '*/*'}"),
        ('"body": "{\\"password\\": \\"pw\\"}"', '"body": "{\\"password\\": \\"***\\"}"'),
        ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer ***"),
        ("header Basic dXNlcjpwYXNz sent", "header Basic *** sent"),
        ("http://user@host:8080/x?page=1", "http://user@host:8080/x?page=1"),
        ("check api is down (was up): HTTP 503", "check api is down (was up): HTTP 503"),
    ],
)
def test_text_is_masked_by_name_and_keeps_its_shape(text: str, expected: str) -> None:
    assert redact_text(text) == expected
    assert redact_text(expected) == expected, "masking twice changes nothing"


def test_known_values_are_masked_wherever_they_appear() -> None:
    redactor = Redactor(["hunter2-long", "abc"])  # too short a value is never masked
    assert redactor("echo hunter2-long; abc") == "echo ***; abc"
    redactor.add(["other-value"])
    assert redactor("other-value and hunter2-long") == "*** and ***"


def test_url_secrets_are_the_password_and_secret_parameters_both_encoded_and_decoded() -> None:
    found = url_secrets("https://u:p%40ss@h/x?api_key=a%2Fb&page=2&token=t0k")
    assert {"p%40ss", "p@ss", "a%2Fb", "a/b", "t0k"} <= set(found)
    assert "2" not in found and "u" not in found


def test_body_secrets_and_redaction_for_json_and_form_bodies() -> None:
    body = json.dumps({"user": "bob", "auth": {"password": "pw-1"}, "tokens": ["t-1", "t-2"]})
    assert {"pw-1", "t-1", "t-2", body} <= set(body_secrets(body))
    assert json.loads(redact_body(body)) == {
        "user": "bob",
        "auth": {"password": "***"},
        "tokens": ["***", "***"],
    }
    assert "pw-2" in body_secrets("user=bob&passwd=pw-2")
    assert redact_body("user=bob&passwd=pw-2") == "user=bob&passwd=***"
    assert body_secrets('{"query": "{ health }"}') == [], "no secret field: nothing to mask"


def test_definitions_mask_secret_keys_headers_bodies_and_urls_but_not_ids() -> None:
    definition = {
        "url": "https://h/x?api_key=k1&page=2",
        "headers": {"Cookie": "sid=1", "X-Api-Key": "k2", "Accept": "text/plain"},
        "basic_auth": {"username": "bob", "password": "pw"},
        "bearer_token": "tok",
        "body": '{"password": "pw3", "user": "bob"}',
        "token_id": 7,
        "labels": {"team": "core"},
    }
    assert redact_data(definition) == {
        "url": "https://h/x?api_key=***&page=2",
        "headers": {"Cookie": "***", "X-Api-Key": "***", "Accept": "text/plain"},
        "basic_auth": {"username": "bob", "password": "***"},
        "bearer_token": "***",
        "body": '{"password": "***", "user": "bob"}',
        "token_id": 7,
        "labels": {"team": "core"},
    }


def test_the_log_filter_masks_messages_tracebacks_and_stacks() -> None:
    record = logging.LogRecord("x", logging.DEBUG, "f", 1, "GET %s", ("/a?token=t1",), None)
    record.stack_info = "Stack: called with secret-value-9"
    RedactingFilter(Redactor(["secret-value-9"])).filter(record)
    assert record.getMessage() == "GET /a?token=***"
    assert record.stack_info == "Stack: called with ***"


# Every secret-bearing field of every check and channel type, with the marker it carries.
CHECKS: list[tuple[dict[str, Any], list[str]]] = [
    (
        {
            "type": "http",
            "url": "https://u:M-userinfo@h/x?api_key=M-query&sig=M-sig",
            "headers": {"Cookie": "s=M-cookie", "X-Api-Key": "M-header", "X-Session": "M-sess"},
            "body": '{"password": "M-body"}',
            "basic_auth": None,
        },
        ["M-userinfo", "M-query", "M-sig", "s=M-cookie", "M-header", "M-sess", "M-body"],
    ),
    (
        {
            "type": "http",
            "url": "https://h/",
            "basic_auth": {"username": "u", "password": "M-basic"},
        },
        ["M-basic"],
    ),
    ({"type": "http", "url": "https://h/", "bearer_token": "M-bearer"}, ["M-bearer"]),
    (
        {"type": "http", "url": "https://h/", "method": "POST", "body": "a=1&passwd=M-form"},
        ["M-form"],
    ),
    (
        {"type": "postgres", "dsn": "postgresql://u:M-pw@h/db?sslpassword=M-sslpw"},
        ["M-pw", "M-sslpw"],
    ),
    ({"type": "postgres", "dsn": "postgresql://u@h/db?password=M-qpw"}, ["M-qpw"]),
    ({"type": "postgres", "dsn": "postgresql://us@er:M-rawat@h/db"}, ["M-rawat"]),
    ({"type": "mysql", "dsn": "mysql://u:M-my%40pw@h/db"}, ["M-my%40pw", "M-my@pw"]),
    ({"type": "redis", "url": "redis://:M-redis@h:6379/0"}, ["M-redis"]),
    ({"type": "redis", "url": "redis://h:6379/0?password=M-rqpw"}, ["M-rqpw"]),
    (
        {
            "type": "command",
            "command": ["plugin", "--password", "M-arg", "--api-key=M-flag"],
            "env": {"API_TOKEN": "M-env", "HOME": "/root"},
        },
        ["M-arg", "M-flag", "M-env"],
    ),
    (
        {
            "type": "python",
            "target": "tests.checks.pytargets:refused_with_token",
            "args": {"api_token": "M-py"},
        },
        ["M-py"],
    ),
]

CHANNELS: list[tuple[dict[str, Any], list[str]]] = [
    (
        {
            "type": "webhook",
            "url": "https://h/hook?token=M-wq",
            "secret": "M-wsecret",
            "headers": {"Authorization": "Bearer M-wauth", "X-Api-Key": "M-wkey"},
        },
        ["M-wq", "M-wsecret", "Bearer M-wauth", "M-wkey"],
    ),
    ({"type": "slack", "webhook_url": "https://hooks.slack.com/services/T/B/M-slack"}, ["M-slack"]),
    ({"type": "pagerduty", "routing_key": "M" * 32}, ["M" * 32]),
    (
        {
            "type": "email",
            "host": "smtp",
            "username": "u",
            "password": "M-smtp",
            "from_addr": "a@example.com",
            "to": ["b@example.com"],
        },
        ["M-smtp"],
    ),
    ({"type": "apprise", "url": "json://u:M-apprise@h/notify/M-apprisetoken"}, ["M-apprise"]),
]


@pytest.mark.parametrize(("fields", "markers"), CHECKS, ids=lambda v: str(v)[:40])
async def test_every_secret_field_of_every_check_type_is_reported(
    fields: dict[str, Any], markers: list[str]
) -> None:
    body = {k: v for k, v in fields.items() if v is not None}
    config = TypeAdapter(CheckConfig).validate_python({"name": "c", **body})
    async with aiohttp.ClientSession() as http:
        check = build_check(config, CheckContext(http))
        secrets = check.secrets()
        await check.close()
    assert set(markers) <= set(secrets), f"missing: {set(markers) - set(secrets)}"
    masked = check.redacted(CheckResult.down(" ".join(markers), details={"m": markers}))
    assert "M-" not in masked.reason and "M-" not in json.dumps(masked.details)


@pytest.mark.parametrize(("fields", "markers"), CHANNELS, ids=lambda v: str(v)[:40])
async def test_every_secret_field_of_every_channel_type_is_reported(
    fields: dict[str, Any], markers: list[str]
) -> None:
    config = TypeAdapter(ChannelConfig).validate_python({"name": "n", **fields})
    async with aiohttp.ClientSession() as http:
        channel = build_channel(config, ChannelContext(http, 5.0))
        secrets = cast(list[str], channel.secrets())
    redactor = Redactor(secrets)
    for marker in markers:
        assert any(marker in s for s in secrets), f"{marker} not among {secrets}"
    # As the whole configured value (a URL, a header) appears in a log line or an error.
    leaked = redactor(f"failed: {json.dumps(fields)} {' '.join(map(str, fields.values()))}")
    assert "M-" not in leaked and "M" * 32 not in leaked, leaked


def test_input_nested_too_deep_is_masked_whole_never_a_crash() -> None:
    deep_body = '{"a":' * 900 + '{"password": "pw-deep"}' + "}" * 900
    assert "pw-deep" not in redact_body(deep_body)
    assert deep_body in body_secrets(deep_body)
    nested: dict[str, Any] = {}
    inner = nested
    for _ in range(5000):
        inner["a"] = inner = {}
    assert redact_data({"details": nested}) == "***"
    assert redact_text('"a": "' * 2000 + "x") is not None
