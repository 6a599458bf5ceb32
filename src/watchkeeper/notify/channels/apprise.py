"""`apprise`: any of Apprise's 100+ services (Discord, Telegram, Teams, ntfy, Gotify, ...).

Apprise reports only success or failure, not whether a retry can help, so every failure is
`temporary` and the outbox retries until `delivery.max_age`. With several URLs, a retry goes to
all of them again: Apprise targets have no idempotency key, so a target that succeeded the
first time sees the notification twice.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import re
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import Field, model_validator

from watchkeeper.core.redact import RedactingFilter, Redactor
from watchkeeper.notify import render
from watchkeeper.notify.channels.base import (
    Channel,
    ChannelConfigBase,
    ChannelContext,
    Message,
    Outcome,
)
from watchkeeper.notify.channels.registry import register

if TYPE_CHECKING:
    # Apprise is imported where a channel or its config uses it: every `watchkeeper` command
    # imports this module (the registry loads all channel types), and Apprise with its plugins
    # costs ~0.2 s of CPU to import.
    import apprise

_GRACE = 1.0  # seconds past our timeout before we stop waiting for Apprise ourselves
_TOKEN_MIN = 10  # URL parts at least this long are treated as tokens (see url_secrets)
_SECRET_QUERY = re.compile(r"token|key|secret|pass|auth|webhook", re.IGNORECASE)

# Apprise logs a URL (tokens included) the moment it parses it: while the config is validated
# and channels are built, before the service's log redactor has heard of the channel. So the
# `apprise` logger, which every Apprise module logs through, masks our URLs' secrets itself,
# and learns them before Apprise first sees a URL.
_LOG_SECRETS = Redactor()
logging.getLogger("apprise").addFilter(RedactingFilter(_LOG_SECRETS))


class AppriseChannelConfig(ChannelConfigBase):
    type: Literal["apprise"]
    url: str | None = None
    """One Apprise URL, e.g. `discord://webhook_id/webhook_token`."""
    urls: list[str] = Field(default_factory=list)
    """More Apprise URLs; every one of them gets every notification."""

    @property
    def all_urls(self) -> list[str]:
        return ([self.url] if self.url else []) + self.urls

    @model_validator(mode="after")
    def _valid_urls(self) -> AppriseChannelConfig:
        if not self.all_urls:
            raise ValueError("set `url` or `urls`")
        import apprise  # lazy: startup cost (see the top); only a config using it pays

        for position, url in enumerate(self.all_urls, 1):
            _LOG_SECRETS.add(url_secrets(url))
            # The URL embeds tokens, so the error names its position, never its text.
            if apprise.Apprise.instantiate(url) is None:
                raise ValueError(
                    f"Apprise URL #{position} is not valid or its service is not available"
                )
        return self


@functools.cache
def _has_timeout() -> bool:
    """Newer Apprise bounds a whole notify() call itself; older ones reject the keyword."""
    import apprise  # lazy: startup cost (see the top)

    return "timeout" in inspect.signature(apprise.Apprise.notify).parameters


def url_secrets(url: str) -> list[str]:
    """The URL and the parts of it that can be credentials, for log masking.

    Apprise services put tokens anywhere: user, password, host (`discord://ID/TOKEN`), path,
    query. Apprise logs some of them (e.g. the expanded POST URL at debug level), so we mask
    the password, secret-named query values, and every other part long enough to be a token.
    Host names with a dot are left readable: they are addresses, not credentials.
    """
    found = {url}
    try:
        parts = urlsplit(url)
        password, user, host = parts.password, parts.username, parts.hostname
    except ValueError:
        return [url]
    if password:
        found.add(password)
    candidates = [user or "", *parts.path.split("/")]
    if host and "." not in host:
        candidates.append(host)
    for key, value in parse_qsl(parts.query):
        if _SECRET_QUERY.search(key):
            found.add(value)
        else:
            candidates.append(value)
    found.update(c for c in candidates if len(c) >= _TOKEN_MIN)
    return sorted(s for s in found if s)


NOTIFY_TYPES = {"critical": "FAILURE", "high": "FAILURE", "medium": "WARNING"}
"""The `apprise.NotifyType` member (by name) for each severity; others are INFO."""


def notify_type(event: str, payload: dict[str, Any]) -> apprise.NotifyType:
    """Apprise's four moods: success for good news, failure/warning by severity, else info."""
    import apprise  # lazy: startup cost (see the top)

    if render.is_good_news(event):
        return apprise.NotifyType.SUCCESS
    name = NOTIFY_TYPES.get(render.severity_of(event, payload), "INFO")
    return getattr(apprise.NotifyType, name)


@register
class AppriseChannel(Channel[AppriseChannelConfig]):
    """Sends title + plain-text body to every configured Apprise URL."""

    type = "apprise"
    config_model = AppriseChannelConfig

    def __init__(self, config: AppriseChannelConfig, context: ChannelContext) -> None:
        import apprise  # lazy: startup cost (see the top)

        super().__init__(config, context)
        self._redact = Redactor(self.secrets())
        _LOG_SECRETS.add(self.secrets())
        self._apprise = apprise.Apprise()
        for url in config.all_urls:
            service = apprise.Apprise.instantiate(url)
            if service is None:  # validated with the config; only a changed install gets here
                raise ValueError(f"channel {config.name}: an Apprise URL is no longer valid")
            # Apprise's per-request default is 4 s connect + 4 s read; keep within our budget.
            service.socket_connect_timeout = min(service.socket_connect_timeout, context.timeout)
            service.socket_read_timeout = min(service.socket_read_timeout, context.timeout)
            self._apprise.add(service)

    async def send(self, message: Message) -> Outcome:
        import apprise  # loaded by `__init__` already; lazy for startup cost (see the top)

        kwargs: dict[str, Any] = {
            "body": render.text_body(message.event, message.payload)
            or render.title(message.event, message.payload),
            "title": render.title(message.event, message.payload),
            "notify_type": notify_type(message.event, message.payload),
            "body_format": apprise.NotifyFormat.TEXT,
        }
        if _has_timeout():
            kwargs["timeout"] = self.context.timeout
        try:
            # A blocking Apprise call cannot be cancelled; this only stops us waiting for it.
            async with asyncio.timeout(self.context.timeout + _GRACE):
                if hasattr(self._apprise, "async_notify"):
                    result = await self._apprise.async_notify(**kwargs)
                else:
                    result = await asyncio.to_thread(self._apprise.notify, **kwargs)
        except TimeoutError:
            return Outcome.temporary(f"apprise timed out after {self.context.timeout:g}s")
        except Exception as exc:  # Apprise plugins may raise anything; never leak the token
            return Outcome.temporary(self._redact(f"apprise failed: {type(exc).__name__}: {exc}"))
        if result:
            return Outcome.ok()
        return Outcome.temporary(self._redact(self._failure(result)))

    def _failure(self, result: Any) -> str:
        # Newer Apprise (2.x) says which services failed, by URLs with their secrets hidden.
        failed = [
            f"{r.url} ({r.status.name.lower()})" for r in getattr(result, "results", ()) if not r
        ]
        total = len(self.config.all_urls)
        if failed:
            return f"apprise could not deliver to {len(failed)} of {total} URLs: " + ", ".join(
                failed
            )
        return f"apprise reported failure delivering to {total} URL(s) (see apprise log lines)"

    def secrets(self) -> list[str]:
        return [s for url in self.config.all_urls for s in url_secrets(url)]
