"""Delivery mechanics shared by every channel that POSTs to an HTTP endpoint."""

from __future__ import annotations

import asyncio
import email.utils
from datetime import UTC, datetime

import aiohttp

from watchkeeper.notify.channels.base import Outcome

# 408 and 429 are the receiver asking us to come back; other 4xx mean the request is wrong
# and retrying the same bytes cannot help (Alertmanager treats them the same way).
_RETRYABLE_4XX = {408, 425, 429}


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _retry_at(value: str | None) -> datetime | None:
    """Retry-After in its other form, an HTTP-date (RFC 9110 §10.2.3); None if it is not one."""
    if not value or _retry_after(value) is not None:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    # HTTP-dates are GMT; a date without a zone is read as GMT too.
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    display_url: str,
) -> Outcome:
    """POST `body` once and classify the answer; `display_url` is the redacted URL for errors."""
    try:
        async with session.post(
            url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            if 200 <= response.status < 300:
                return Outcome.ok()
            text = (await response.content.read(200)).decode("utf-8", "replace").strip()
            error = f"HTTP {response.status} from {display_url}" + (f": {text}" if text else "")
            if response.status >= 500 or response.status in _RETRYABLE_4XX:
                retry_after = response.headers.get("Retry-After")
                return Outcome.temporary(error, _retry_after(retry_after), _retry_at(retry_after))
            return Outcome.permanent(error)
    except TimeoutError:
        return Outcome.temporary(f"timed out after {timeout:g}s posting to {display_url}")
    except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as exc:
        return Outcome.temporary(f"{type(exc).__name__} posting to {display_url}: {exc}")
