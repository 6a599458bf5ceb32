"""The `http` check's JSON assertions, credentials, custom CA and certificate expiry."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import ValidationError

from tests.support.certs import SLACK, Issued, make_ca, make_cert, server_context
from watchkeeper.checks import CheckContext
from watchkeeper.checks.http import HttpCheck, HttpCheckConfig
from watchkeeper.checks.tls import cert_expiry
from watchkeeper.config.loader import ConfigError, parse_config
from watchkeeper.core.domain import Status

PASSWORD = "pa55-w0rd:with/odd@chars"
TOKEN = "tok-3f9c1e7a"


@dataclass
class Target:
    """A loopback app whose /health JSON the test sets, recording Authorization headers."""

    url: str = ""
    health: Any = field(default_factory=dict)
    authorizations: list[str] = field(default_factory=list)


def _app(target: Target) -> web.Application:
    async def health(request: web.Request) -> web.Response:
        return web.json_response(target.health)

    async def text(request: web.Request) -> web.Response:
        return web.Response(text="<html>fine</html>")

    async def error(request: web.Request) -> web.Response:
        return web.json_response({"status": "UP"}, status=500)

    async def empty(request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def secured(request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        target.authorizations.append(header)
        expected = {
            "Basic " + base64.b64encode(f"monitor:{PASSWORD}".encode()).decode(),
            f"Bearer {TOKEN}",
        }
        if header not in expected:
            return web.json_response({"error": "unauthorized"}, status=401)
        return web.json_response({"status": "UP"})

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/text", text)
    app.router.add_get("/error", error)
    app.router.add_get("/empty", empty)
    app.router.add_get("/secured", secured)
    return app


async def _start(target: Target, ssl_context: Any = None) -> web.AppRunner:
    runner = web.AppRunner(_app(target), shutdown_timeout=0.1, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    scheme = "https" if ssl_context else "http"
    target.url = f"{scheme}://127.0.0.1:{runner.addresses[0][1]}"
    return runner


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    target = Target()
    runner = await _start(target)
    yield target
    await runner.cleanup()


@pytest.fixture
def ca() -> Issued:
    return make_ca()


@pytest.fixture
def ca_file(ca: Issued, tmp_path: Path) -> str:
    return str(ca.write_cert(tmp_path / "ca.pem"))


@pytest.fixture
def leaf(ca: Issued) -> Issued:
    """A certificate for 127.0.0.1 from the test CA, expiring in 30 days."""
    return make_cert(
        "127.0.0.1", sans=["127.0.0.1"], issuer=ca, expires_in=timedelta(days=30) + SLACK
    )


@pytest.fixture
async def tls_target(tmp_path: Path, leaf: Issued, ca: Issued) -> AsyncIterator[Target]:
    target = Target(health={"status": "UP"})
    runner = await _start(target, server_context(tmp_path, leaf, (ca,)))
    yield target
    await runner.cleanup()


def _config(**fields: Any) -> HttpCheckConfig:
    return HttpCheckConfig.model_validate({"name": "api", "type": "http", **fields})


@pytest.fixture
def make_check(context: CheckContext) -> Callable[..., HttpCheck]:
    def make(**fields: Any) -> HttpCheck:
        return HttpCheck(_config(**fields), context)

    return make


# --- JSON assertions ---------------------------------------------------------------------------

HEALTH_ASSERTIONS = {"$.status": "UP", "$.db.latency_ms": "< 200"}


async def test_json_assertions_that_hold_are_up(
    target: Target, make_check: Callable[..., HttpCheck]
) -> None:
    target.health = {"status": "UP", "db": {"latency_ms": 120}}
    check = make_check(url=f"{target.url}/health", expect={"json": HEALTH_ASSERTIONS})

    result = await check.run()

    assert result.status is Status.UP, result.reason
    assert result.reason.startswith("HTTP 200 in ")
    assert "json_failures" not in result.details


async def test_a_json_value_other_than_the_expected_literal_is_down(
    target: Target, make_check: Callable[..., HttpCheck]
) -> None:
    target.health = {"status": "DOWN", "db": {"latency_ms": 120}}
    check = make_check(url=f"{target.url}/health", expect={"json": HEALTH_ASSERTIONS})

    result = await check.run()

    assert result.status is Status.DOWN
    assert result.reason == '$.status is "DOWN", expected "UP"'


async def test_a_json_number_failing_its_comparison_is_down(
    target: Target, make_check: Callable[..., HttpCheck]
) -> None:
    target.health = {"status": "UP", "db": {"latency_ms": 350}}
    check = make_check(url=f"{target.url}/health", expect={"json": HEALTH_ASSERTIONS})

    result = await check.run()

    assert result.status is Status.DOWN
    assert result.reason == "$.db.latency_ms is 350, expected < 200"


async def test_a_missing_json_path_is_down_as_not_found(
    target: Target, make_check: Callable[..., HttpCheck]
) -> None:
    target.health = {"status": "UP", "db": {}}
    check = make_check(url=f"{target.url}/health", expect={"json": HEALTH_ASSERTIONS})

    result = await check.run()

    assert result.status is Status.DOWN
    assert result.reason == "$.db.latency_ms not found"


async def test_every_failing_assertion_is_in_details_and_the_first_in_the_reason(
    target: Target, make_check: Callable[..., HttpCheck]
) -> None:
    target.health = {"status": "DOWN", "db": {"latency_ms": 350}}
    check = make_check(url=f"{target.url}/health", expect={"json": HEALTH_ASSERTIONS})

    result = await check.run()

    assert result.reason == '$.status is "DOWN", expected "UP" (+1 more)'
    assert result.details["json_failures"] == [
        '$.status is "DOWN", expected "UP"',
        "$.db.latency_ms is 350, expected < 200",
    ]


async def test_indexes_and_bracketed_keys_reach_into_the_body(
    target: Target, make_check: Callable[..., HttpCheck]
) -> None:
    target.health = {"items": [{"name": "primary"}], "key with space": True, "count": 3}
    expect = {"json": {"$.items[0].name": "primary", "$['key with space']": True, "$.count": 3}}

    result = await make_check(url=f"{target.url}/health", expect=expect).run()

    assert result.status is Status.UP, result.reason


async def test_a_body_that_is_not_json_is_down(
    target: Target, make_check: Callable[..., HttpCheck]
) -> None:
    check = make_check(url=f"{target.url}/text", expect={"json": {"$.status": "UP"}})

    result = await check.run()

    assert result.status is Status.DOWN
    assert result.reason == "body is not JSON"


async def test_a_wrong_status_code_outranks_json_assertions(
    target: Target, make_check: Callable[..., HttpCheck]
) -> None:
    check = make_check(url=f"{target.url}/error", expect={"json": {"$.status": "UP"}})

    result = await check.run()

    assert result.reason == f"HTTP 500 from {target.url}/error (expected 2xx)"


# --- credentials -------------------------------------------------------------------------------


async def test_basic_auth_reaches_the_server_and_never_shows_in_results(
    target: Target, make_check: Callable[..., HttpCheck]
) -> None:
    good = make_check(
        url=f"{target.url}/secured", basic_auth={"username": "monitor", "password": PASSWORD}
    )
    bad = make_check(
        url=f"{target.url}/secured", basic_auth={"username": "monitor", "password": "wrong-pw"}
    )

    ok = await good.run()
    refused = await bad.run()

    encoded = base64.b64encode(f"monitor:{PASSWORD}".encode()).decode()
    assert target.authorizations[0] == f"Basic {encoded}"
    assert ok.status is Status.UP, ok.reason
    assert refused.reason == f"HTTP 401 from {target.url}/secured (expected 2xx)"
    for result in (ok, refused):
        shown = f"{result.reason} {result.details} {result.metrics}"
        assert PASSWORD not in shown and encoded not in shown and "wrong-pw" not in shown


async def test_a_bearer_token_reaches_the_server_and_never_shows_in_results(
    target: Target, make_check: Callable[..., HttpCheck]
) -> None:
    good = make_check(url=f"{target.url}/secured", bearer_token=TOKEN)
    bad = make_check(url=f"{target.url}/secured", bearer_token="tok-expired")

    ok = await good.run()
    refused = await bad.run()

    assert target.authorizations == [f"Bearer {TOKEN}", "Bearer tok-expired"]
    assert ok.status is Status.UP, ok.reason
    assert refused.status is Status.DOWN
    for result in (ok, refused):
        shown = f"{result.reason} {result.details}"
        assert TOKEN not in shown and "tok-expired" not in shown


async def test_credentials_are_offered_to_the_log_redactor_but_not_shown_by_the_config(
    make_check: Callable[..., HttpCheck],
) -> None:
    basic = make_check(
        url="http://127.0.0.1/", basic_auth={"username": "monitor", "password": PASSWORD}
    )
    bearer = make_check(url="http://127.0.0.1/", bearer_token=TOKEN)

    assert PASSWORD in basic.secrets()
    assert f"Bearer {TOKEN}" in bearer.secrets()
    assert PASSWORD not in repr(basic.config) and TOKEN not in repr(bearer.config)
    assert TOKEN not in str(bearer.config.model_dump(mode="json"))


# --- HTTPS: custom CA and certificate expiry ---------------------------------------------------


async def test_an_https_target_verified_with_ca_file_records_days_until_cert_expiry(
    tls_target: Target, ca_file: str, leaf: Issued, make_check: Callable[..., HttpCheck]
) -> None:
    check = make_check(url=f"{tls_target.url}/health", ca_file=ca_file)

    result = await check.run()

    assert result.status is Status.UP, result.reason
    assert 30 < result.metrics["tls.days_left"] < 30.1
    assert result.details["tls_not_after"] == leaf.cert.not_valid_after_utc.isoformat()


async def test_without_the_ca_file_the_same_target_is_down_with_a_tls_error(
    tls_target: Target, make_check: Callable[..., HttpCheck]
) -> None:
    result = await make_check(url=f"{tls_target.url}/health").run()

    assert result.status is Status.DOWN
    assert result.reason.startswith(f"TLS error from {tls_target.url}/health: ")


async def test_cert_expiry_is_still_recorded_without_tls_verification(
    tls_target: Target, make_check: Callable[..., HttpCheck]
) -> None:
    result = await make_check(url=f"{tls_target.url}/health", verify_tls=False).run()

    assert result.status is Status.UP, result.reason
    assert 30 < result.metrics["tls.days_left"] < 30.1


async def test_cert_expiry_is_recorded_for_responses_without_a_body(
    tls_target: Target, ca_file: str, make_check: Callable[..., HttpCheck]
) -> None:
    # aiohttp releases the connection of a body-less response before the check sees it.
    empty = await make_check(url=f"{tls_target.url}/empty", ca_file=ca_file).run()
    head = await make_check(url=f"{tls_target.url}/health", ca_file=ca_file, method="HEAD").run()

    assert "tls.days_left" in empty.metrics
    assert "tls.days_left" in head.metrics


async def test_a_certificate_is_parsed_once_however_often_it_is_seen(
    tls_target: Target, ca_file: str, make_check: Callable[..., HttpCheck]
) -> None:
    cert_expiry.cache_clear()
    check = make_check(url=f"{tls_target.url}/health", ca_file=ca_file)

    for _ in range(3):
        assert "tls.days_left" in (await check.run()).metrics

    info = cert_expiry.cache_info()
    assert (info.misses, info.hits) == (1, 2)


async def test_plain_http_results_carry_no_certificate_fields(
    target: Target, make_check: Callable[..., HttpCheck]
) -> None:
    target.health = {"status": "UP"}

    result = await make_check(url=f"{target.url}/health").run()

    assert "tls.days_left" not in result.metrics
    assert "tls_not_after" not in result.details


# --- config ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"expect": {"json": {"status": "UP"}}},
            "JSONPath 'status' must start with '$'",
        ),
        (
            {"expect": {"json": {"$.items[*].ok": True}}},
            "wildcards, filters, slices and unions are not supported",
        ),
        (
            {"expect": {"json": {"$.latency": "< fast"}}},
            "'<' needs a number",
        ),
        ({"expect": {"json": {}}}, "at least 1 item"),
        (
            {"expect": {"json": {"$.a": [1]}}},
            "$.a: expected a string, number, boolean or null, got list",
        ),
        (
            {"basic_auth": {"username": "u", "password": "p"}, "bearer_token": "t"},
            "basic_auth and bearer_token are mutually exclusive",
        ),
        (
            {"url": "https://u:p@example.com/", "bearer_token": "t"},
            "url carries credentials (user@host); remove them or bearer_token",
        ),
        (
            {"headers": {"authorization": "x"}, "basic_auth": {"username": "u", "password": "p"}},
            "headers sets Authorization; remove it or basic_auth",
        ),
        ({"basic_auth": {"username": "a:b", "password": "p"}}, "username must not contain ':'"),
        ({"basic_auth": {"username": "u"}}, "password"),
        ({"bearer_token": ""}, "bearer_token must not be empty"),
        ({"ca_file": "/nonexistent/ca.pem"}, "ca_file '/nonexistent/ca.pem' does not exist"),
        (
            {"method": "HEAD", "expect": {"json": {"$.ok": True}}},
            "expect.json needs a response body",
        ),
    ],
)
def test_invalid_extras_are_rejected_with_a_clear_message(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        _config(**{"url": "https://example.com/", **fields})

    assert message in str(caught.value)


def test_ca_file_with_verification_off_is_rejected(ca_file: str) -> None:
    with pytest.raises(ValidationError, match="ca_file has no effect with verify_tls: false"):
        _config(url="https://example.com/", ca_file=ca_file, verify_tls=False)


def test_a_malformed_bearer_token_is_rejected_without_echoing_it() -> None:
    with pytest.raises(ValidationError) as caught:
        _config(url="https://example.com/", bearer_token="secret token")

    assert "must not contain spaces" in str(caught.value)
    assert "secret token" not in str(caught.value)


def test_a_bad_json_path_in_a_config_file_is_reported_at_its_line() -> None:
    text = """
checks:
  - name: api
    type: http
    url: https://example.com/health
    expect:
      json:
        "$.status": UP
        "$.items[*]": 1
"""

    with pytest.raises(ConfigError) as caught:
        parse_config(text, "watchkeeper.yaml", environ={})

    assert "wildcards, filters, slices and unions are not supported" in str(caught.value)
    assert str(caught.value).startswith("watchkeeper.yaml:8: checks[0].expect.json: ")
