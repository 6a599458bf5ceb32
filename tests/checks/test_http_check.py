"""The `http` check against a real aiohttp server on loopback."""

from __future__ import annotations

import asyncio
import base64
import itertools
import shlex
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import ValidationError

from tests.support.required import unavailable
from watchkeeper.checks import CheckContext, build_check
from watchkeeper.checks import http as http_module
from watchkeeper.checks.http import MAX_BODY_BYTES, HttpCheck, HttpCheckConfig, redact_url
from watchkeeper.core.domain import Status

NEEDLE = b"NEEDLE"
RELEASE = web.AppKey("release", asyncio.Event)


def _make_app() -> web.Application:
    release = asyncio.Event()

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="status: ok")

    async def error(request: web.Request) -> web.Response:
        return web.Response(status=500, text="boom")

    async def no_content(request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="late")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("/ok")

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * MAX_BODY_BYTES + NEEDLE)

    async def echo(request: web.Request) -> web.Response:
        body = await request.text()
        token = request.headers.get("X-Token", "-")
        auth = request.headers.get("Authorization", "-")
        return web.Response(text=f"{request.method} token={token} auth={auth} body={body}")

    app = web.Application()
    app[RELEASE] = release
    app.router.add_get("/ok", ok)
    app.router.add_get("/error", error)
    app.router.add_get("/no-content", no_content)
    app.router.add_get("/hang", hang)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/big", big)
    app.router.add_route("*", "/echo", echo)
    return app


async def _serve(ssl_context: ssl.SSLContext | None = None) -> tuple[web.AppRunner, int]:
    app = _make_app()
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port = runner.addresses[0][1]
    return runner, port


async def _stop(runner: web.AppRunner) -> None:
    # Let hanging handlers finish so cleanup does not wait on them.
    runner.app[RELEASE].set()
    await runner.cleanup()


@pytest.fixture
async def server() -> AsyncIterator[str]:
    """Base URL of a loopback HTTP server with /ok, /error, /hang, /redirect, /big, /echo."""
    runner, port = await _serve()
    yield f"http://127.0.0.1:{port}"
    await _stop(runner)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound once, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def make_check(context: CheckContext) -> Callable[..., HttpCheck]:
    def make(**fields: Any) -> HttpCheck:
        config = HttpCheckConfig.model_validate({"name": "web", "type": "http", **fields})
        return HttpCheck(config, context)

    return make


async def test_2xx_response_is_up_with_status_and_timing(
    server: str, make_check: Callable[..., HttpCheck]
) -> None:
    result = await make_check(url=f"{server}/ok").run()

    assert result.status is Status.UP
    assert result.reason.startswith("HTTP 200 in ")
    assert result.details == {"status_code": 200}
    assert result.response_time is not None and result.response_time > 0
    assert result.metrics == {
        "http.response_time": result.response_time,
        "http.status_code": 200.0,
    }


async def test_any_2xx_is_accepted_by_default(
    server: str, make_check: Callable[..., HttpCheck]
) -> None:
    result = await make_check(url=f"{server}/no-content").run()

    assert result.status is Status.UP
    assert result.details == {"status_code": 204}


async def test_500_is_down_with_the_url_and_expectation_in_the_reason(
    server: str, make_check: Callable[..., HttpCheck]
) -> None:
    result = await make_check(url=f"{server}/error", expect={"status": [200]}).run()

    assert result.status is Status.DOWN
    assert result.reason == f"HTTP 500 from {server}/error (expected 200)"
    assert result.metrics["http.status_code"] == 500.0


async def test_default_expectation_is_described_as_2xx(
    server: str, make_check: Callable[..., HttpCheck]
) -> None:
    result = await make_check(url=f"{server}/error").run()

    assert result.reason == f"HTTP 500 from {server}/error (expected 2xx)"


async def test_an_explicitly_expected_error_status_is_up(
    server: str, make_check: Callable[..., HttpCheck]
) -> None:
    result = await make_check(url=f"{server}/error", expect={"status": [500, 503]}).run()

    assert result.status is Status.UP


async def test_a_2xx_not_in_the_expected_list_is_down(
    server: str, make_check: Callable[..., HttpCheck]
) -> None:
    result = await make_check(url=f"{server}/no-content", expect={"status": [200]}).run()

    assert result.status is Status.DOWN
    assert result.reason == f"HTTP 204 from {server}/no-content (expected 200)"


async def test_body_containing_the_expected_text_is_up(
    server: str, make_check: Callable[..., HttpCheck]
) -> None:
    result = await make_check(url=f"{server}/ok", expect={"body_contains": "ok"}).run()

    assert result.status is Status.UP


async def test_body_missing_the_expected_text_is_down(
    server: str, make_check: Callable[..., HttpCheck]
) -> None:
    result = await make_check(url=f"{server}/ok", expect={"body_contains": "healthy"}).run()

    assert result.status is Status.DOWN
    assert result.reason == "body does not contain 'healthy'"


async def test_body_with_forbidden_text_is_down(
    server: str, make_check: Callable[..., HttpCheck]
) -> None:
    result = await make_check(url=f"{server}/ok", expect={"body_not_contains": "status"}).run()

    assert result.status is Status.DOWN
    assert result.reason == "body contains 'status'"


async def test_only_the_first_mebibyte_of_the_body_is_searched(
    server: str, make_check: Callable[..., HttpCheck]
) -> None:
    result = await make_check(url=f"{server}/big", expect={"body_contains": "NEEDLE"}).run()

    assert result.status is Status.DOWN
    assert result.reason == "body does not contain 'NEEDLE'"


async def test_a_response_slower_than_max_response_time_is_degraded_not_down(
    server: str, make_check: Callable[..., HttpCheck], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fake clock makes every request take exactly 2 seconds, without waiting for it.
    ticks = itertools.count(step=2.0)
    monkeypatch.setattr(http_module, "perf_counter", lambda: next(ticks))
    check = make_check(url=f"{server}/ok", expect={"max_response_time": "1s"})

    result = await check.run()

    assert result.status is Status.DEGRADED
    assert result.reason == "slow response: 2000ms exceeds 1s (HTTP 200)"
    assert result.response_time == 2.0


async def test_a_response_within_max_response_time_is_up(
    server: str, make_check: Callable[..., HttpCheck], monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks = itertools.count(step=2.0)
    monkeypatch.setattr(http_module, "perf_counter", lambda: next(ticks))
    check = make_check(url=f"{server}/ok", expect={"max_response_time": "5s"})

    assert (await check.run()).status is Status.UP


async def test_a_wrong_status_outranks_a_slow_response(
    server: str, make_check: Callable[..., HttpCheck], monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks = itertools.count(step=2.0)
    monkeypatch.setattr(http_module, "perf_counter", lambda: next(ticks))
    check = make_check(url=f"{server}/error", expect={"max_response_time": "1s"})

    assert (await check.run()).status is Status.DOWN


async def test_a_hanging_server_times_out_at_the_check_timeout(
    server: str, make_check: Callable[..., HttpCheck]
) -> None:
    # The session has aiohttp's 5-minute default; only the per-request timeout can end this.
    result = await make_check(url=f"{server}/hang", timeout="200ms").run()

    assert result.status is Status.DOWN
    assert result.reason == "timed out after 200ms"


async def test_redirects_are_followed_by_default(
    server: str, make_check: Callable[..., HttpCheck]
) -> None:
    result = await make_check(url=f"{server}/redirect", expect={"body_contains": "ok"}).run()

    assert result.status is Status.UP
    assert result.details == {"status_code": 200}


async def test_a_redirect_is_down_when_not_following_redirects(
    server: str, make_check: Callable[..., HttpCheck]
) -> None:
    result = await make_check(url=f"{server}/redirect", follow_redirects=False).run()

    assert result.status is Status.DOWN
    assert result.reason == f"HTTP 302 from {server}/redirect (expected 2xx)"


async def test_method_headers_and_body_are_sent(
    server: str, make_check: Callable[..., HttpCheck]
) -> None:
    check = make_check(
        url=f"{server}/echo",
        method="post",
        headers={"X-Token": "abc"},
        body="ping",
        expect={"body_contains": "POST token=abc auth=- body=ping"},
    )

    result = await check.run()

    assert result.status is Status.UP, result.reason


async def test_a_closed_port_is_down_as_connection_refused(
    closed_port: int, make_check: Callable[..., HttpCheck]
) -> None:
    url = f"http://127.0.0.1:{closed_port}/health"

    result = await make_check(url=url).run()

    assert result.status is Status.DOWN
    assert result.reason == f"connection refused: {url}"
    assert result.response_time is None


async def test_url_credentials_are_sent_but_never_shown_in_the_reason(
    server: str, make_check: Callable[..., HttpCheck]
) -> None:
    base = server.replace("http://", "http://user:s3cret@")
    expected_auth = "Basic " + base64.b64encode(b"user:s3cret").decode()

    sent = await make_check(url=f"{base}/echo", expect={"body_contains": expected_auth}).run()
    failed = await make_check(url=f"{base}/error").run()

    assert sent.status is Status.UP, sent.reason
    assert failed.reason == f"HTTP 500 from {server.replace('//', '//user:***@')}/error" + (
        " (expected 2xx)"
    )
    assert "s3cret" not in failed.reason


async def test_url_credentials_are_redacted_in_connection_errors(
    closed_port: int, make_check: Callable[..., HttpCheck]
) -> None:
    result = await make_check(url=f"http://admin:hunter2@127.0.0.1:{closed_port}/").run()

    assert result.reason == f"connection refused: http://admin:***@127.0.0.1:{closed_port}/"
    assert "hunter2" not in result.reason


async def test_the_shared_session_is_used_instead_of_a_new_one(
    server: str, make_check: Callable[..., HttpCheck], monkeypatch: pytest.MonkeyPatch
) -> None:
    check = make_check(url=f"{server}/ok")

    def no_new_sessions(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a check must not create its own ClientSession")

    monkeypatch.setattr(aiohttp.ClientSession, "__init__", no_new_sessions)

    assert (await check.run()).status is Status.UP
    assert (await check.run()).status is Status.UP


# --- TLS -----------------------------------------------------------------------------------


@pytest.fixture
def self_signed(tmp_path: Path) -> ssl.SSLContext:
    if shutil.which("openssl") is None:
        unavailable("openssl is needed to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    command = shlex.split("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1")
    subprocess.run(
        [*command, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


@pytest.fixture
async def tls_server(self_signed: ssl.SSLContext) -> AsyncIterator[str]:
    runner, port = await _serve(self_signed)
    yield f"https://127.0.0.1:{port}"
    await _stop(runner)


async def test_an_untrusted_certificate_is_down_with_a_tls_reason(
    tls_server: str, make_check: Callable[..., HttpCheck]
) -> None:
    result = await make_check(url=f"{tls_server}/ok").run()

    assert result.status is Status.DOWN
    assert result.reason.startswith(f"TLS error from {tls_server}/ok: "), result.reason


async def test_an_untrusted_certificate_is_accepted_without_tls_verification(
    tls_server: str, make_check: Callable[..., HttpCheck]
) -> None:
    result = await make_check(url=f"{tls_server}/ok", verify_tls=False).run()

    assert result.status is Status.UP, result.reason


# --- config ----------------------------------------------------------------------------------


def _config(**fields: Any) -> HttpCheckConfig:
    return HttpCheckConfig.model_validate({"name": "web", "type": "http", **fields})


def test_config_defaults_are_get_with_redirects_and_tls_verification() -> None:
    config = _config(url="https://example.com/health")

    assert config.method == "GET"
    assert config.follow_redirects is True
    assert config.verify_tls is True
    assert config.expect.status is None
    assert config.headers == {}


@pytest.mark.parametrize(
    "fields",
    [
        {"url": "ftp://example.com/"},
        {"url": "example.com/health"},
        {"url": "http://"},
        {"url": "https://example.com", "method": "FETCH"},
        {"url": "https://example.com", "headers": {"X-A": "a\r\nInjected: 1"}},
        {"url": "https://example.com", "headers": {"Bad Name": "x"}},
        {"url": "https://example.com", "expect": {"status": [99]}},
        {"url": "https://example.com", "expect": {"status": []}},
        {"url": "https://example.com", "expect": {"max_response_time": "0s"}},
        {"url": "https://example.com", "expect": {"status_code": 200}},
        {"url": "https://example.com", "verify_ssl": False},
    ],
)
def test_invalid_config_is_rejected(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        _config(**fields)


def test_the_http_type_is_registered(context: CheckContext) -> None:
    check = build_check(_config(url="http://127.0.0.1/"), context)

    assert isinstance(check, HttpCheck)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://user:pw@host/x", "http://user:***@host/x"),
        ("https://user:p@ss@host:8443/", "https://user:***@host:8443/"),
        ("see http://u:%40x@h/ and https://v:y@k", "see http://u:***@h/ and https://v:***@k"),
        ("http://user@host/", "http://user@host/"),
        ("http://host/a:b@c", "http://host/a:b@c"),
    ],
)
def test_redact_url_hides_only_passwords(text: str, expected: str) -> None:
    assert redact_url(text) == expected
