"""`email`: a multipart (plain text + HTML) message through an SMTP server, via aiosmtplib.

The Message-ID is derived from the outbox idempotency key, so a re-sent notification (the
outbox delivers at least once) carries the same Message-ID and mail clients and filters can
recognise the duplicate. Messages about one alert share a `References` header, so clients that
thread by references show an alert's firing, acknowledgement and resolution together.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import logging
import re
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import Field, field_validator, model_validator

from watchkeeper.notify import render
from watchkeeper.notify.channels.base import Channel, ChannelConfigBase, Message, Outcome
from watchkeeper.notify.channels.registry import register

# aiosmtplib is imported where mail is sent: every `watchkeeper` command imports this module
# (the registry loads all channel types), and aiosmtplib costs ~0.09 s of CPU to import.

log = logging.getLogger("watchkeeper.notify")

_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")
DEFAULT_PORTS = {"starttls": 587, "none": 587, "tls": 465}
SUBJECT_MAX = 200


def check_address(value: str) -> str:
    """`value` if it is one email address (a display name allowed); else ValueError."""
    if "\n" in value or "\r" in value or not _ADDRESS.match(parseaddr(value)[1]):
        raise ValueError(f"expected an email address such as ops@example.com, got {value!r}")
    return value


class EmailChannelConfig(ChannelConfigBase):
    type: Literal["email"]
    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    """Defaults to 587 (465 when `security` is `tls`)."""
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: str | None = None
    from_addr: str
    to: list[str] = Field(min_length=1)
    subject_prefix: str = "[watchkeeper]"
    ca_file: Path | None = None
    """PEM bundle to verify the server certificate with (e.g. an internal CA)."""

    @field_validator("from_addr")
    @classmethod
    def _check_from(cls, value: str) -> str:
        return check_address(value)

    @field_validator("to")
    @classmethod
    def _check_to(cls, value: list[str]) -> list[str]:
        return [check_address(v) for v in value]

    @field_validator("subject_prefix")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\n" in value or "\r" in value:
            raise ValueError("must be a single line")
        return value

    @model_validator(mode="after")
    def _credentials_together(self) -> EmailChannelConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("set both `username` and `password`, or neither")
        return self

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.security]


def _domain(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2] or "watchkeeper.invalid"


def message_id(idempotency_key: str, domain: str) -> str:
    """Stable per outbox entry: the same notification re-sent has the same Message-ID."""
    return f"<watchkeeper.{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}@{domain}>"


def thread_id(alert_id: str, domain: str) -> str:
    """A References target shared by every message about one alert."""
    digest = hashlib.sha256(alert_id.encode()).hexdigest()[:32]
    return f"<watchkeeper.alert.{digest}@{domain}>"


def subject(prefix: str, event: str, payload: dict[str, Any]) -> str:
    # No emoji here: subjects are searched and filtered, and some clients render them poorly.
    text = render.title(event, payload, icons=False)
    return render.truncate(f"{prefix} {text}".strip(), SUBJECT_MAX)


def plain_body(event: str, payload: dict[str, Any]) -> str:
    body = render.text_body(event, payload, icons=False)
    title = render.title(event, payload, icons=False)
    return f"{title}\n\n{body}\n\n-- \nSent by watchkeeper (event {event})\n"


def html_body(event: str, payload: dict[str, Any]) -> str:
    """Self-contained HTML (inline styles, no images or external assets); every value escaped."""
    e = html.escape
    title = render.title(event, payload)
    parts = [f'<h2 style="margin:0 0 12px 0;font-size:18px">{e(title)}</h2>']
    alerts = render.alerts_of(payload)
    facts = render.details(event, payload)
    if event in render.ALERT_EVENTS and alerts:
        if facts:
            summary = str(alerts[0].get("summary") or "")
            if summary:
                parts.append(f'<p style="margin:0 0 12px 0">{e(summary)}</p>')
        else:
            labels = render.label_text(render.group_labels(payload))
            if labels:
                parts.append(f"<p>Group: <code>{e(labels)}</code></p>")
            items = "".join(f"<li>{e(line)}</li>" for line in render.alert_lines(alerts))
            parts.append(f'<ul style="padding-left:20px">{items}</ul>')
    if facts:
        rows = "".join(
            f'<tr><th style="text-align:left;padding:2px 12px 2px 0;vertical-align:top">{e(k)}</th>'
            f'<td style="padding:2px 0">{e(v)}</td></tr>'
            for k, v in facts
        )
        parts.append(f'<table style="border-collapse:collapse;font-size:14px">{rows}</table>')
    output = render.recovery_output(payload) if event.startswith(render.RECOVERY_PREFIX) else ""
    if output:
        parts.append(
            '<pre style="background:#f5f5f5;padding:8px;white-space:pre-wrap">'
            + e(output)
            + "</pre>"
        )
    found = render.links(payload)
    if found:
        anchors = " · ".join(
            f'<a href="{e(url)}">{e(render.link_label(name))}</a>' for name, url in found.items()
        )
        parts.append(f'<p style="margin:12px 0 0 0">{anchors}</p>')
    colour = render.colour(event, payload)
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{e(title)}</title></head>"
        '<body style="font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#222">'
        f'<div style="border-left:6px solid {colour};padding:8px 16px">{"".join(parts)}</div>'
        '<p style="color:#777;font-size:12px;margin:16px 0 0 0">'
        f"Sent by watchkeeper (event {e(event)})</p></body></html>"
    )


def build_email(config: EmailChannelConfig, message: Message, now: datetime) -> EmailMessage:
    """The complete message as sent (pure: tested on its own). `now` stamps the Date header."""
    event, payload = message.event, message.payload
    domain = _domain(config.from_addr)
    mail = EmailMessage()
    mail["Subject"] = subject(config.subject_prefix, event, payload)
    mail["From"] = config.from_addr
    mail["To"] = ", ".join(config.to)
    mail["Date"] = format_datetime(now)
    mail["Message-ID"] = message_id(message.idempotency_key, domain)
    alerts = render.alerts_of(payload)
    if len(alerts) == 1 and not render.is_grouped(payload) and alerts[0].get("id"):
        mail["References"] = thread_id(str(alerts[0]["id"]), domain)
    mail["X-Watchkeeper-Event"] = event
    # RFC 3834: tells vacation responders and ticket systems not to answer.
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(plain_body(event, payload))
    mail.add_alternative(html_body(event, payload), subtype="html")
    return mail


def classify(exc: BaseException, where: str) -> Outcome:
    """SMTP reply codes decide: 4xx is "try later", 5xx is "this will never work"."""
    import aiosmtplib  # lazy: startup cost (see the top)

    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        error = f"all recipients refused by {where}: " + "; ".join(
            f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients
        )
        if any(400 <= c < 500 for c in codes):
            return Outcome.temporary(error)
        return Outcome.permanent(error)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        error = f"SMTP {exc.code} from {where}: {exc.message}"
        return Outcome.permanent(error) if exc.code >= 500 else Outcome.temporary(error)
    if isinstance(exc, TimeoutError):
        return Outcome.temporary(f"timed out talking to {where}")
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        # e.g. no STARTTLS or AUTH offered: a configuration mismatch, not a passing fault.
        return Outcome.permanent(f"{where}: {exc}")
    return Outcome.temporary(f"{type(exc).__name__} talking to {where}: {exc}")


class SmtpSettings(Protocol):
    """Where and how to reach an SMTP server (an email channel's config has these fields)."""

    @property
    def host(self) -> str: ...
    @property
    def effective_port(self) -> int: ...
    @property
    def security(self) -> str: ...
    @property
    def username(self) -> str | None: ...
    @property
    def password(self) -> str | None: ...
    @property
    def ca_file(self) -> Path | None: ...


async def smtp_send(
    server: SmtpSettings,
    mail: EmailMessage,
    *,
    sender: str,
    recipients: list[str],
    timeout: float,
) -> Outcome:
    """Send `mail` once through `server` and classify the answer (never raises for SMTP or
    network errors). Delivered with an `error` when some recipients were refused for good."""
    import aiosmtplib  # lazy: startup cost (see the top)

    where = f"{server.host}:{server.effective_port}"
    try:
        # aiosmtplib's timeout applies per command; this bounds the whole conversation.
        async with asyncio.timeout(timeout):
            refused, _ = await aiosmtplib.send(
                mail,
                sender=parseaddr(sender)[1],
                recipients=[parseaddr(address)[1] for address in recipients],
                hostname=server.host,
                port=server.effective_port,
                username=server.username,
                password=server.password,
                timeout=timeout,
                use_tls=server.security == "tls",
                start_tls=server.security == "starttls",
                cert_bundle=str(server.ca_file) if server.ca_file else None,
            )
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return classify(exc, where)
    if not refused:
        return Outcome.ok()
    error = f"some recipients refused by {where}: " + "; ".join(
        f"{rcpt}: {reply.code} {reply.message}" for rcpt, reply in refused.items()
    )
    if any(400 <= reply.code < 500 for reply in refused.values()):
        # Retrying re-sends to those who got it too; the stable Message-ID marks the repeat.
        return Outcome.temporary(error)
    # Delivered to the others; retrying cannot reach addresses the server says don't exist.
    return Outcome(delivered=True, error=error)


@register
class EmailChannel(Channel[EmailChannelConfig]):
    """Sends each notification as one email to every address in `to`."""

    type = "email"
    config_model = EmailChannelConfig

    async def send(self, message: Message) -> Outcome:
        mail = build_email(self.config, message, self.context.now())
        outcome = await smtp_send(
            self.config,
            mail,
            sender=self.config.from_addr,
            recipients=self.config.to,
            timeout=self.context.timeout,
        )
        if outcome.delivered and outcome.error:
            log.warning("email channel %s: %s", self.name, outcome.error)
        return outcome

    def secrets(self) -> list[str]:
        return [self.config.password] if self.config.password else []
