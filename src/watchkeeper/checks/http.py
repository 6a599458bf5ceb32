"""`http`: the URL answers with an expected status (and body) within the timeout.

This is the hot path: a deployment may run thousands of these per second, so everything that
depends only on the config is computed once in `HttpCheck.__init__` and `run` does little more
than the request itself.
"""

from __future__ import annotations

import errno
import re
from datetime import timedelta
from time import perf_counter
from typing import Any, Literal

import aiohttp
from pydantic import Field, field_validator
from yarl import URL

from watchkeeper._model import StrictModel
from watchkeeper.checks.base import Check, CheckConfigBase, CheckContext
from watchkeeper.checks.registry import register
from watchkeeper.domain import CheckResult, Status
from watchkeeper.durations import Duration, format_duration

MAX_BODY_BYTES = 1024 * 1024
"""Bodies are read up to this many bytes; `body_contains` only sees this prefix."""

HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

# RFC 9110 token characters; anything else in a header name is a config mistake that aiohttp
# would only report at request time, on every run.
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# `scheme://user:password@` anywhere in a text. The greedy userinfo part backtracks to the
# last '@' of the authority, so passwords containing a raw '@' are fully covered too.
_CREDENTIALS = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^\s/?#@:]*):[^\s/?#]*@")


def redact_url(text: str) -> str:
    """Replace the password of any `scheme://user:password@host` in `text` with `***`."""
    return _CREDENTIALS.sub(r"\1:***@", text)


class HttpExpect(StrictModel):
    """What a healthy response looks like."""

    status: list[int] | None = Field(default=None, min_length=1)
    """Accepted status codes; None accepts any 2xx."""
    body_contains: str | None = Field(default=None, min_length=1)
    body_not_contains: str | None = Field(default=None, min_length=1)
    max_response_time: Duration | None = None
    """Slower responses are DEGRADED (not DOWN)."""

    @field_validator("status")
    @classmethod
    def _status_codes_exist(cls, value: list[int] | None) -> list[int] | None:
        if value is not None:
            bad = [code for code in value if not 100 <= code <= 599]
            if bad:
                raise ValueError(f"status codes must be between 100 and 599, got {bad}")
        return value

    @field_validator("max_response_time")
    @classmethod
    def _positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("max_response_time must be positive")
        return value


class HttpCheckConfig(CheckConfigBase):
    """Config of an `http` check."""

    type: Literal["http"]
    url: str
    method: HttpMethod = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    follow_redirects: bool = True
    verify_tls: bool = True
    expect: HttpExpect = Field(default_factory=HttpExpect)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip()
        try:
            url = URL(value)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not a valid URL: {exc}") from None
        if url.scheme not in ("http", "https"):
            raise ValueError("url must start with http:// or https://")
        if not url.host:
            raise ValueError("url must include a host")
        return value

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, header_value in value.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"invalid header name {name!r}")
            if any(ch in header_value for ch in "\r\n\0"):
                raise ValueError(f"header {name!r} must not contain line breaks or NUL")
        return value


@register
class HttpCheck(Check[HttpCheckConfig]):
    """Requests a URL with the shared client session and judges status, body and latency."""

    type = "http"
    config_model = HttpCheckConfig

    def __init__(self, config: HttpCheckConfig, context: CheckContext) -> None:
        super().__init__(config, context)
        expect = config.expect
        self._url = URL(config.url)
        self._display_url = redact_url(config.url)
        self._method = config.method
        self._timeout_text = format_duration(config.timeout)
        kwargs: dict[str, Any] = {
            "timeout": aiohttp.ClientTimeout(total=config.timeout.total_seconds()),
            "allow_redirects": config.follow_redirects,
            # The session is shared; never let a session-wide setting turn statuses into errors.
            "raise_for_status": False,
        }
        if config.headers:
            kwargs["headers"] = config.headers
        if config.body is not None:
            kwargs["data"] = config.body.encode()
        if not config.verify_tls:
            kwargs["ssl"] = False
        self._request_kwargs = kwargs
        self._accepted = frozenset(expect.status) if expect.status is not None else None
        self._expected_text = (
            ", ".join(str(code) for code in expect.status) if expect.status else "2xx"
        )
        # Bodies are matched as UTF-8 bytes so a run never pays for decoding the response.
        self._contains = expect.body_contains.encode() if expect.body_contains else None
        self._not_contains = expect.body_not_contains.encode() if expect.body_not_contains else None
        self._max_response_time = (
            expect.max_response_time.total_seconds() if expect.max_response_time else None
        )
        self._max_response_time_text = (
            format_duration(expect.max_response_time) if expect.max_response_time else ""
        )
        # Draining the body (even when unchecked) lets aiohttp reuse the keep-alive connection;
        # an unread body forces it to close the socket, which costs a handshake per run.
        self._read_body = config.method != "HEAD"

    async def run(self) -> CheckResult:
        started = perf_counter()
        try:
            async with self.context.http.request(
                self._method, self._url, **self._request_kwargs
            ) as resp:
                code = resp.status
                body = await _read_limited(resp.content) if self._read_body else b""
        except TimeoutError:
            return CheckResult.down(f"timed out after {self._timeout_text}")
        except aiohttp.ClientError as exc:
            return CheckResult.down(self._describe_error(exc))
        except (OSError, ValueError) as exc:
            return CheckResult.down(
                f"request to {self._display_url} failed: {redact_url(str(exc))}"
            )
        elapsed = perf_counter() - started

        metrics = {"http.response_time": elapsed, "http.status_code": float(code)}
        details = {"status_code": code}
        accepted = self._accepted
        if (code not in accepted) if accepted is not None else not 200 <= code < 300:
            reason = f"HTTP {code} from {self._display_url} (expected {self._expected_text})"
            status = Status.DOWN
        elif self._contains is not None and self._contains not in body:
            reason = f"body does not contain {self.config.expect.body_contains!r}"
            status = Status.DOWN
        elif self._not_contains is not None and self._not_contains in body:
            reason = f"body contains {self.config.expect.body_not_contains!r}"
            status = Status.DOWN
        elif self._max_response_time is not None and elapsed > self._max_response_time:
            reason = (
                f"slow response: {_ms(elapsed)} exceeds {self._max_response_time_text}"
                f" (HTTP {code})"
            )
            status = Status.DEGRADED
        else:
            reason = f"HTTP {code} in {_ms(elapsed)}"
            status = Status.UP
        return CheckResult(status, reason, response_time=elapsed, metrics=metrics, details=details)

    def _describe_error(self, exc: aiohttp.ClientError) -> str:
        url = self._display_url
        if isinstance(exc, aiohttp.ClientSSLError):
            return f"TLS error from {url}: {_os_error_text(exc)}"
        if isinstance(exc, aiohttp.ClientConnectorDNSError):
            return f"DNS lookup failed for {exc.host}: {_os_error_text(exc)}"
        if isinstance(exc, aiohttp.ClientConnectorError):
            os_error = exc.os_error
            if isinstance(os_error, ConnectionRefusedError) or os_error.errno == errno.ECONNREFUSED:
                return f"connection refused: {url}"
            return f"cannot connect to {url}: {_os_error_text(exc)}"
        if isinstance(exc, aiohttp.TooManyRedirects):
            return f"too many redirects from {url}"
        if isinstance(exc, aiohttp.ServerDisconnectedError):
            return f"server disconnected: {url}"
        detail = redact_url(str(exc)) or type(exc).__name__
        return f"request to {url} failed: {detail}"


async def _read_limited(content: aiohttp.StreamReader) -> bytes:
    """Read the body up to MAX_BODY_BYTES; a longer body is cut (and its connection dropped)."""
    first = await content.read(MAX_BODY_BYTES)
    if not first or content.at_eof():
        return first
    chunks = [first]
    size = len(first)
    while size < MAX_BODY_BYTES:
        chunk = await content.read(MAX_BODY_BYTES - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _os_error_text(exc: aiohttp.ClientOSError) -> str:
    # aiohttp's own str() repeats host and ssl context; strerror is the part people read.
    # The message never carries URL userinfo, but redact anyway in case a future one does.
    return redact_url(exc.strerror or str(exc) or type(exc).__name__)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms"


__all__ = ["MAX_BODY_BYTES", "HttpCheck", "HttpCheckConfig", "HttpExpect", "redact_url"]
