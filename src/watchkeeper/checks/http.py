"""`http`: the URL answers with an expected status (and body) within the timeout.

Optionally the JSON body must meet `expect.json` assertions, requests carry Basic or Bearer
credentials, HTTPS is verified against a custom CA bundle, and HTTPS results carry the days
left before the server certificate expires.

This is the hot path: a deployment may run thousands of these per second, so everything that
depends only on the config is computed once in `HttpCheck.__init__` and `run` does little more
than the request itself.
"""

from __future__ import annotations

import base64
import errno
import json
import re
from time import perf_counter, time
from typing import Any, Literal

import aiohttp
from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator
from yarl import URL

from watchkeeper.checks._jsonpath import JsonScalar, compile_assertions, evaluate
from watchkeeper.checks.base import Check, CheckConfigBase, CheckContext
from watchkeeper.checks.registry import register
from watchkeeper.checks.tls import DAY, cert_expiry, verifying_context
from watchkeeper.core.domain import CheckResult, Status
from watchkeeper.core.durations import ProbeTime, format_duration
from watchkeeper.core.model import StrictModel
from watchkeeper.core.redact import body_secrets, header_secrets, redact_url, url_secrets
from watchkeeper.core.tls import CaFile

MAX_BODY_BYTES = 1024 * 1024
"""Bodies are read up to this many bytes; `body_contains` only sees this prefix."""

HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

# RFC 9110 token characters; anything else in a header name is a config mistake that aiohttp
# would only report at request time, on every run.
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class HttpExpect(StrictModel):
    """What a healthy response looks like."""

    status: list[int] | None = Field(default=None, min_length=1)
    """Accepted status codes; None accepts any 2xx."""
    body_contains: str | None = Field(default=None, min_length=1)
    body_not_contains: str | None = Field(default=None, min_length=1)
    max_response_time: ProbeTime | None = None
    """Slower responses are DEGRADED (not DOWN)."""
    json_: dict[str, JsonScalar] | None = Field(default=None, alias="json", min_length=1)
    """`JSONPath: expected` assertions on the JSON body (see checks/_jsonpath.py)."""

    @field_validator("status")
    @classmethod
    def _status_codes_exist(cls, value: list[int] | None) -> list[int] | None:
        if value is not None:
            bad = [code for code in value if not 100 <= code <= 599]
            if bad:
                raise ValueError(f"status codes must be between 100 and 599, got {bad}")
        return value

    @field_validator("json_", mode="before")
    @classmethod
    def _valid_assertions(cls, value: Any) -> Any:
        # Checked before pydantic's own validation, whose errors for a list or a mapping as an
        # expected value would list every member of the scalar union.
        if isinstance(value, dict):
            for path, expected in value.items():
                if not isinstance(expected, str | int | float | bool | type(None)):
                    raise ValueError(
                        f"{path}: expected a string, number, boolean or null, got"
                        f" {type(expected).__name__}"
                    )
            # Parsed here only to fail at load time; HttpCheck compiles its own copy.
            compile_assertions({str(path): expected for path, expected in value.items()})
        return value


class HttpBasicAuth(StrictModel):
    """Credentials for HTTP Basic authentication (sent UTF-8 encoded)."""

    model_config = ConfigDict(hide_input_in_errors=True)

    username: str = Field(min_length=1)
    password: SecretStr

    @field_validator("username")
    @classmethod
    def _no_colon(cls, value: str) -> str:
        # RFC 7617: the user-id ends at the first colon, so one inside it cannot be sent.
        if ":" in value:
            raise ValueError("username must not contain ':'")
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            raise ValueError("username must not contain control characters")
        return value


class HttpCheckConfig(CheckConfigBase):
    """Config of an `http` check."""

    # Validation errors would otherwise quote inputs, and some of them are credentials.
    model_config = ConfigDict(hide_input_in_errors=True)

    type: Literal["http"]
    url: str
    method: HttpMethod = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    follow_redirects: bool = True
    verify_tls: bool = True
    ca_file: CaFile | None = None
    """PEM bundle of CAs to verify HTTPS against, replacing the system store."""
    basic_auth: HttpBasicAuth | None = None
    bearer_token: SecretStr | None = None
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

    @field_validator("bearer_token")
    @classmethod
    def _token_syntax(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            token = value.get_secret_value()
            if not token:
                raise ValueError("bearer_token must not be empty")
            # Never echo the token: the message may end up in logs.
            if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in token):
                raise ValueError("bearer_token must not contain spaces or control characters")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> HttpCheckConfig:
        auth = "basic_auth" if self.basic_auth else "bearer_token" if self.bearer_token else None
        if self.basic_auth and self.bearer_token:
            raise ValueError("basic_auth and bearer_token are mutually exclusive; set one")
        if auth and URL(self.url).user is not None:
            raise ValueError(f"url carries credentials (user@host); remove them or {auth}")
        if auth and any(name.lower() == "authorization" for name in self.headers):
            raise ValueError(f"headers sets Authorization; remove it or {auth}")
        if self.ca_file and not self.verify_tls:
            raise ValueError("ca_file has no effect with verify_tls: false; remove one")
        if self.expect.json_ and self.method == "HEAD":
            raise ValueError("expect.json needs a response body, which HEAD responses lack")
        return self


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
        headers = dict(config.headers)
        # Credentials go in as a ready header: no per-request encoding, and aiohttp still drops
        # Authorization on redirects to another origin.
        if config.basic_auth is not None:
            auth = config.basic_auth
            userpass = f"{auth.username}:{auth.password.get_secret_value()}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(userpass).decode("ascii")
        elif config.bearer_token is not None:
            headers["Authorization"] = f"Bearer {config.bearer_token.get_secret_value()}"
        if headers:
            kwargs["headers"] = headers
        if config.body is not None:
            kwargs["data"] = config.body.encode()
        if not config.verify_tls:
            kwargs["ssl"] = False
        elif config.ca_file is not None:
            # Shared per bundle, so checks trusting the same CA share pooled connections.
            kwargs["ssl"] = verifying_context(config.ca_file)
        self._request_kwargs = kwargs
        self._assertions = compile_assertions(expect.json_) if expect.json_ else ()
        # Only HTTPS targets pay for looking at the peer certificate.
        self._tls = self._url.scheme == "https"
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
                # Taken before the body is read: reading it to the end releases the connection.
                ssl_object = _ssl_object(resp) if self._tls else None
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
        details: dict[str, Any] = {"status_code": code}
        if ssl_object is not None:
            _record_cert_expiry(ssl_object, metrics, details)
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
        elif self._assertions and (failures := self._json_failures(body)):
            reason = (
                failures[0] if len(failures) == 1 else f"{failures[0]} (+{len(failures) - 1} more)"
            )
            details["json_failures"] = failures
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

    def _json_failures(self, body: bytes) -> list[str]:
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            if len(body) >= MAX_BODY_BYTES:
                return [f"body is not JSON (only its first {MAX_BODY_BYTES} bytes are read)"]
            return ["body is not JSON"]
        return evaluate(self._assertions, document)

    def secrets(self) -> list[str]:
        """Credentials this check sends, for the log redactor (as channels offer theirs):
        URL password and secret query parameters, secret-named headers (the full
        Authorization value too: its base64 form hides a Basic password), secret body fields."""
        cfg = self.config
        headers: dict[str, str] = self._request_kwargs.get("headers", {})
        values = [
            cfg.basic_auth.password.get_secret_value() if cfg.basic_auth else "",
            cfg.bearer_token.get_secret_value() if cfg.bearer_token else "",
            *url_secrets(cfg.url),
            *header_secrets(headers),
            *body_secrets(cfg.body),
        ]
        return [value for value in values if value]

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


def _ssl_object(resp: aiohttp.ClientResponse) -> Any:
    """The SSLObject of the response's connection, or None (plain HTTP, already closed)."""
    conn = resp.connection
    # A body-less response (204, HEAD, Content-Length: 0) hands its connection back to the pool
    # before we get to see it; the response still knows the protocol it was read from.
    protocol = conn.protocol if conn is not None else getattr(resp, "_protocol", None)
    transport = getattr(protocol, "transport", None)
    return transport.get_extra_info("ssl_object") if transport is not None else None


def _record_cert_expiry(
    ssl_object: Any, metrics: dict[str, float], details: dict[str, Any]
) -> None:
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return
    try:
        expiry = cert_expiry(der)  # cached per DER bytes: parsing happens once per certificate
    except ValueError:
        return
    metrics["tls.days_left"] = round((expiry.timestamp - time()) / DAY, 4)
    details["tls_not_after"] = expiry.iso


def _os_error_text(exc: aiohttp.ClientOSError) -> str:
    # aiohttp's own str() repeats host and ssl context; strerror is the part people read.
    # The message never carries URL userinfo, but redact anyway in case a future one does.
    return redact_url(exc.strerror or str(exc) or type(exc).__name__)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms"


__all__ = [
    "MAX_BODY_BYTES",
    "HttpBasicAuth",
    "HttpCheck",
    "HttpCheckConfig",
    "HttpExpect",
    "redact_url",
]
