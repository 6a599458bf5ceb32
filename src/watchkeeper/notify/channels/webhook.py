"""`webhook`: POST the event as JSON, HMAC-SHA256 signed when a secret is set."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, HttpUrl

from watchkeeper.core.redact import header_secrets, redact_url, url_secrets
from watchkeeper.notify.channels._http_post import post
from watchkeeper.notify.channels.base import Channel, ChannelConfigBase, Message, Outcome
from watchkeeper.notify.channels.registry import register

SIGNATURE_HEADER = "X-Watchkeeper-Signature"


class WebhookChannelConfig(ChannelConfigBase):
    type: Literal["webhook"]
    url: HttpUrl
    secret: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)


def isoformat(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def build_body(message: Message, sent_at: datetime) -> bytes:
    """The exact bytes posted: the stored payload with `sent_at` stamped at send time."""
    payload: dict[str, Any] = {
        "version": message.payload.get("version", 1),
        "event": message.event,
        "sent_at": isoformat(sent_at),
    }
    payload.update({k: v for k, v in message.payload.items() if k not in payload})
    return json.dumps(payload, separators=(",", ":"), sort_keys=False).encode()


def sign(body: bytes, secret: str) -> str:
    """Header value a receiver recomputes: `sha256=<hex HMAC-SHA256 of the raw body>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@register
class WebhookChannel(Channel[WebhookChannelConfig]):
    type = "webhook"
    config_model = WebhookChannelConfig

    async def send(self, message: Message) -> Outcome:
        body = build_body(message, self.context.now())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "watchkeeper",
            "Idempotency-Key": message.idempotency_key,
            **self.config.headers,
        }
        if self.config.secret:
            headers[SIGNATURE_HEADER] = sign(body, self.config.secret)
        url = str(self.config.url)
        return await post(
            self.context.http, url, body, headers, self.context.timeout, redact_url(url)
        )

    def secrets(self) -> list[str]:
        sensitive = [*header_secrets(self.config.headers), *url_secrets(str(self.config.url))]
        return [s for s in (self.config.secret, *sensitive) if s]
