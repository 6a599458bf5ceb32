"""The outbox's two channels for subscribers. Each entry's payload names its recipient, so
one channel serves every subscriber of its kind; the sending itself is the email channel's
SMTP conversation and the webhook channel's HTTP POST, reused as they are.

Their names cannot be configured channel names (those match `[a-z0-9][a-z0-9_-]*`), so
they never collide with `notifications:`, and they are kept apart from the runtime's
channels: self-alerts and recovery notices never go to subscribers.
"""

from __future__ import annotations

import json

from watchkeeper.core.redact import redact_url
from watchkeeper.notify.channels._http_post import post
from watchkeeper.notify.channels.base import (
    Channel,
    ChannelConfigBase,
    ChannelContext,
    Message,
    Outcome,
)
from watchkeeper.notify.channels.email import SmtpSettings, smtp_send
from watchkeeper.statuspage.subscriptions.messages import build_mail

EMAIL_CHANNEL = "status-subscribers.email"
WEBHOOK_CHANNEL = "status-subscribers.webhook"


class _SenderConfig(ChannelConfigBase):
    type: str


def _config(name: str, kind: str) -> _SenderConfig:
    # Built without validation: the name is deliberately not a configurable one.
    return _SenderConfig.model_construct(name=name, type=kind)


class SubscriberMailer(Channel[_SenderConfig]):
    """Sends each entry's mail (payload `to`, `subject`, `text`, `html`) through `smtp`."""

    type = "status-subscribers-email"
    config_model = _SenderConfig

    def __init__(self, smtp: SmtpSettings, sender: str, context: ChannelContext) -> None:
        super().__init__(_config(EMAIL_CHANNEL, self.type), context)
        self.smtp = smtp
        self.sender = sender

    async def send(self, message: Message) -> Outcome:
        mail = build_mail(
            message.payload,
            sender=self.sender,
            idempotency_key=message.idempotency_key,
            now=self.context.now(),
        )
        return await smtp_send(
            self.smtp,
            mail,
            sender=self.sender,
            recipients=[str(message.payload["to"])],
            timeout=self.context.timeout,
        )

    def secrets(self) -> list[str]:
        return [self.smtp.password] if self.smtp.password else []


class SubscriberWebhooks(Channel[_SenderConfig]):
    """POSTs each entry's `body` as JSON to its `url`, with the entry's Idempotency-Key."""

    type = "status-subscribers-webhook"
    config_model = _SenderConfig

    def __init__(self, context: ChannelContext) -> None:
        super().__init__(_config(WEBHOOK_CHANNEL, self.type), context)

    async def send(self, message: Message) -> Outcome:
        url = str(message.payload["url"])
        body = json.dumps(message.payload["body"], separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "watchkeeper",
            "Idempotency-Key": message.idempotency_key,
        }
        return await post(
            self.context.http, url, body, headers, self.context.timeout, redact_url(url)
        )
