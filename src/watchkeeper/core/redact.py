"""The one secret policy: what counts as a secret, and how it is masked in any output.

Two things make a value secret:

- its *name*: a URL query parameter, header, JSON or form body field, DSN parameter or
  definition key whose name contains one of `SECRET_WORDS` (case-insensitive), e.g.
  `?api_key=`, `Cookie`, `{"password": ...}`, `sslpassword=`, `bearer_token`;
- its *value*: every secret a check or channel was configured with (`secrets()`), masked
  wherever it shows up verbatim, whatever surrounds it.

`Redactor` applies both to free text (reasons, log lines, errors, banners), `redact_data`
to structured values (definitions, result details), `redact_body` to request bodies.
Masked output keeps its shape so it stays useful: `?api_key=***`, `user:***@host`,
`{"password": "***"}`, `Authorization: Bearer ***`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

MASK = "***"

SECRET_WORDS = (
    "key",  # api_key, apikey, x-api-key, routing_key, private_key
    "token",
    "secret",
    "passw",  # password, passwd, sslpassword
    "pwd",
    "signature",
    "auth",  # authorization, basic_auth, x-auth-...
    "session",
    "cookie",
    "credential",
    "private",
    "csrf",
    "jwt",
)
"""A name containing one of these (any case) holds a secret."""

# Short words that would match too much inside other names count only as a whole part
# (`sig`, `pass`, `pw` but not `signal`, `passive`, `pwr`).
_WHOLE_WORDS = ("sig", "pass", "pw")
_WORDS = re.compile("|".join(SECRET_WORDS))
_WHOLE = re.compile(r"(?:^|(?<=[^a-z0-9]))(?:sig|pass|pw)(?=$|[^a-z0-9])")


def is_secret_name(name: str) -> bool:
    """Whether a parameter, header or field called `name` holds a secret."""
    # Cheap tests first: this runs for every name in every masked text and result.
    lowered = name.lower()
    if _WORDS.search(lowered):
        return True
    return any(word in lowered for word in _WHOLE_WORDS) and bool(_WHOLE.search(lowered))


# `scheme://user:password@` anywhere in a text. The user part may hold a raw '@' (an e-mail
# address as the user name) and the greedy password part backtracks to the last '@' of the
# authority, so passwords containing a raw '@' are fully covered too.
_URL_PASSWORD = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^\s/?#:]*):[^\s/?#]*@")

_NAME_CHARS = r"[A-Za-z0-9_.\-\[\]]"
# `name=value`: URL query and form parameters, libpq keyword DSNs (`host=db password=x`),
# command-line flags (`--password=x`). The value ends where a URL parameter, a word or a
# quoted string would; only secret names are masked (see `_mask_param`).
_PARAM = re.compile(rf"(?<!{_NAME_CHARS})({_NAME_CHARS}+)=([^&\s#;,'\"<>)\]}}]+)")
# `"name": "value"` / `'name': 'value'` (JSON, Python reprs of headers or bodies), also as
# escaped inside another string (`\"password\": \"x\"`, JSON in a JSON log line).
_QUOTED_PAIR = re.compile(
    r"""(\\{0,3}["'])([^"'\s\\]{1,100})\1(\s*:\s*)(\\{0,3}["'])(.*?)(?<!\\)\4"""
)
# Credentials of an Authorization header in text (`Bearer abc`, `Basic dXNlcjpwdw==`).
_AUTH_SCHEME = re.compile(r"\b(Bearer|Basic|Token|Digest)\s+(?!\*\*\*)[A-Za-z0-9._~+/=:-]{4,}")


def _mask_param(match: re.Match[str]) -> str:
    name = match.group(1)
    if not is_secret_name(name) or match.group(2) == MASK:
        return match.group(0)
    return f"{name}={MASK}"


def _mask_quoted(match: re.Match[str], depth: int = 0) -> str:
    quote, name, sep, vquote, value = match.group(1, 2, 3, 4, 5)
    if is_secret_name(name) and value:
        value = MASK
    elif depth < 3 and ("'" in value or '"' in value):
        # Pairs escaped inside this value (JSON in JSON); a few levels are all that occur.
        value = _QUOTED_PAIR.sub(lambda inner: _mask_quoted(inner, depth + 1), value)
    return f"{quote}{name}{quote}{sep}{vquote}{value}{vquote}"


_AUTH_SCHEMES = ("Bearer", "Basic", "Token", "Digest")


def redact_url(text: str) -> str:
    """`text` with URL passwords and secret parameters masked: `user:***@`, `?token=***`."""
    # Each pattern runs only when its telltale character is there: check results pass
    # through here on the hot path, and most reasons ("HTTP 200 in 12 ms") have none.
    if "://" in text:
        text = _URL_PASSWORD.sub(rf"\1:{MASK}@", text)
    if "=" in text:
        text = _PARAM.sub(_mask_param, text)
    return text


def redact_text(text: str) -> str:
    """Mask everything the policy recognises by its name in free text (no known values)."""
    text = redact_url(text)
    if '"' in text or "'" in text:
        text = _QUOTED_PAIR.sub(_mask_quoted, text)
    if any(scheme in text for scheme in _AUTH_SCHEMES):
        text = _AUTH_SCHEME.sub(rf"\1 {MASK}", text)
    return text


def url_secrets(url: str) -> list[str]:
    """The secret values a URL carries: its password and its secret-named query parameters,
    each as written and percent-decoded."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return []
    found = [password or ""]
    found += [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if is_secret_name(k)]
    found += [
        v for k, v in re.findall(r"([^&=]+)=([^&]*)", parts.query) if is_secret_name(unquote(k))
    ]
    return _with_decoded(found)


def header_secrets(headers: Mapping[str, str]) -> list[str]:
    """Values of secret-named headers (`Authorization`, `Cookie`, `X-Api-Key`, ...)."""
    return _with_decoded(value for name, value in headers.items() if is_secret_name(name))


def body_secrets(body: str | None) -> list[str]:
    """Values of secret-named fields of a JSON or form body, and the whole body with them."""
    if not body:
        return []
    found: list[str] = []
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # not JSON (or nested too deep to be a real body)
        found += [v for k, v in re.findall(r"([^&=\s]+)=([^&\s]*)", body) if is_secret_name(k)]
    else:
        try:
            _collect_named(document, found)
        except RecursionError:
            return [body]  # too deep to look into: the whole body is the secret
    found = [s for s in found if s]
    return _with_decoded([body, *found] if found else [])


def data_secrets(value: Any) -> list[str]:
    """Values of secret-named keys anywhere in a mapping (e.g. a command check's env)."""
    found: list[str] = []
    try:
        _collect_named(value, found)
    except RecursionError:
        return []  # config validation bounds nesting long before this
    return _with_decoded(found)


def _collect_named(value: Any, found: list[str], secret: bool = False) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _collect_named(item, found, secret or is_secret_name(str(key)))
    elif isinstance(value, list):
        for item in value:
            _collect_named(item, found, secret)
    elif secret and isinstance(value, str):
        found.append(value)


def _with_decoded(values: Iterable[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        if value:
            out += [value] if unquote(value) == value else [value, unquote(value)]
    return out


def redact_body(body: str, redactor: Redactor | None = None) -> str:
    """A request body with its secret fields masked (JSON keeps its structure)."""
    mask = redactor or redact_text
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return mask(body)
    if not isinstance(document, dict | list):
        return mask(body)
    redacted = redact_data(document, redactor)
    return MASK if redacted == MASK else json.dumps(redacted, ensure_ascii=False)


def redact_data(value: Any, redactor: Redactor | None = None, *, key: str = "") -> Any:
    """A structured value (a definition, result details) with every secret masked: values of
    secret-named keys become `***`, bodies keep their shape, other strings are masked as text.
    A value nested too deep to walk is masked whole (fail closed)."""
    try:
        return _redact_value(value, redactor, key)
    except RecursionError:
        return MASK


def _redact_value(value: Any, redactor: Redactor | None, key: str) -> Any:
    if isinstance(value, str):
        if key == "body":
            return redact_body(value, redactor)
        return redactor(value) if redactor is not None else redact_text(value)
    if isinstance(value, dict):
        return {k: _redact_item(str(k), v, redactor) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v, redactor, key) for v in value]
    return value


def _redact_item(key: str, value: Any, redactor: Redactor | None) -> Any:
    if isinstance(value, int | float | bool | None):  # numbers are never masked: an id
        return value  # (`token_id`) or a measurement, not a credential
    if is_secret_name(key):
        if isinstance(value, str):
            return MASK
        if isinstance(value, list):
            return [MASK if isinstance(v, str) else _redact_value(v, redactor, "") for v in value]
    return _redact_value(value, redactor, key)


class Redactor:
    """Masks known secret values and everything the policy recognises by name."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first so a secret containing another is masked whole.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def add(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted(
            {*self._secrets, *(s for s in secrets if s and len(s) >= 4)}, key=len, reverse=True
        )

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return redact_text(text)

    def data(self, value: Any) -> Any:
        """`redact_data` with this redactor's known values."""
        return redact_data(value, self)


class RedactingFilter(logging.Filter):
    """Logging filter that renders each record's message through a Redactor."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redactor(message)
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            # Tracebacks carry exception text verbatim; render and mask them here.
            formatter = logging.Formatter()
            record.exc_text = self.redactor(formatter.formatException(record.exc_info))
            record.exc_info = None
            record.msg = f"{record.msg}\n{record.exc_text}"
            record.exc_text = None
        if record.stack_info:
            record.stack_info = self.redactor(record.stack_info)
        return True
