"""What subscribers receive, as pure functions: the confirmation mail, the event mail (both
with RFC 8058 one-click unsubscribe headers) and the webhook body (Statuspage's shape:
`meta`, `page`, `incident`).

Mails are composed when they are queued and kept in the outbox entry's payload (`to`,
`subject`, `text`, `html`, `unsubscribe`), so a retry sends the very same message.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote

from watchkeeper.notify.channels.email import message_id
from watchkeeper.statuspage.events import StatusEvent

_KIND_LABEL = {
    "incident.created": "New incident",
    "incident.updated": "Incident update",
    "incident.resolved": "Resolved",
    "maintenance.started": "Maintenance started",
    "maintenance.completed": "Maintenance completed",
}
_ENDED = {"incident.resolved", "maintenance.completed"}


@dataclass(frozen=True, slots=True)
class Links:
    """The public URLs in mails and webhook bodies, under `base` (no trailing slash)."""

    base: str

    def confirm(self, token: str) -> str:
        return f"{self.base}/status/confirm/{quote(token, safe='')}"

    def unsubscribe(self, token: str) -> str:
        return f"{self.base}/status/unsubscribe/{quote(token, safe='')}"


def _isoformat(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _safe_link(url: str) -> str | None:
    """Only absolute http(s) links go into a mail."""
    return url if url.startswith(("https://", "http://")) else None


def _footer_text(page_title: str, unsubscribe: str) -> str:
    return (
        f"-- \nYou receive this because this address subscribed to {page_title} updates.\n"
        f"Unsubscribe: {unsubscribe}\n"
    )


def _html(title: str, paragraphs: list[str], page_title: str, unsubscribe: str) -> str:
    """A self-contained HTML part; `paragraphs` are HTML already escaped by the caller."""
    e = html.escape
    body = "".join(f'<p style="margin:0 0 12px 0">{p}</p>' for p in paragraphs)
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{e(title)}</title></head>"
        '<body style="font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#222">'
        f'<h2 style="margin:0 0 12px 0;font-size:18px">{e(title)}</h2>{body}'
        '<p style="color:#666;font-size:12px;margin:24px 0 0 0">'
        f"You receive this because this address subscribed to {e(page_title)} updates. "
        f'<a href="{e(unsubscribe)}">Unsubscribe</a></p></body></html>'
    )


def _subject(prefix: str, page_title: str, text: str) -> str:
    subject = f"{prefix} [{page_title}] {text}".strip()
    return " ".join(subject.split())[:200]  # one line, bounded


def confirmation_mail(
    *,
    to: str,
    page_title: str,
    components: list[str] | None,
    confirm_url: str,
    unsubscribe_url: str,
    ttl_hours: int,
    prefix: str = "",
) -> dict[str, Any]:
    """Asks the address's owner to confirm (nothing is sent to it until they do)."""
    e = html.escape
    which = f" (components: {', '.join(components)})" if components else ""
    intro = (
        f"Someone, hopefully you, asked to receive status updates of {page_title} at this "
        f"address{which}."
    )
    ignore = (
        "If it was not you, ignore this mail: the address is forgotten after "
        f"{ttl_hours} hours and gets nothing more."
    )
    text = f"{intro}\n\nConfirm the subscription:\n{confirm_url}\n\n{ignore}\n\n"
    return {
        "to": to,
        "subject": _subject(prefix, page_title, "Confirm your subscription"),
        "text": text + _footer_text(page_title, unsubscribe_url),
        "html": _html(
            "Confirm your subscription",
            [e(intro), f'<a href="{e(confirm_url)}">Confirm the subscription</a>', e(ignore)],
            page_title,
            unsubscribe_url,
        ),
        "unsubscribe": unsubscribe_url,
    }


def already_subscribed_mail(
    *, to: str, page_title: str, unsubscribe_url: str, prefix: str = ""
) -> dict[str, Any]:
    """The answer to subscribing a confirmed address again: only its owner learns it."""
    e = html.escape
    line = f"This address already receives the status updates of {page_title}; nothing changed."
    return {
        "to": to,
        "subject": _subject(prefix, page_title, "You are already subscribed"),
        "text": f"{line}\n\n" + _footer_text(page_title, unsubscribe_url),
        "html": _html("You are already subscribed", [e(line)], page_title, unsubscribe_url),
        "unsubscribe": unsubscribe_url,
    }


def event_mail(
    event: StatusEvent, *, to: str, page_title: str, unsubscribe_url: str, prefix: str = ""
) -> dict[str, Any]:
    """One incident or maintenance change. The body is the update's Markdown source, shown as
    text (never as HTML)."""
    e = html.escape
    label = _KIND_LABEL[event.kind]
    facts = [f"Status: {event.status}", f"Impact: {event.impact}"]
    if event.components:
        facts.append("Affected: " + ", ".join(event.components))
    link = _safe_link(event.url)
    lines = [event.title, " · ".join(facts), "", event.body.strip()]
    if link:
        lines += ["", f"Details: {link}"]
    paragraphs = [
        e(" · ".join(facts)),
        f'<span style="white-space:pre-wrap">{e(event.body.strip())}</span>',
    ]
    if link:
        paragraphs.append(f'<a href="{e(link)}">Details on the status page</a>')
    return {
        "to": to,
        "subject": _subject(prefix, page_title, f"{label}: {event.title}"),
        "text": "\n".join(lines) + "\n\n" + _footer_text(page_title, unsubscribe_url),
        "html": _html(f"{label}: {event.title}", paragraphs, page_title, unsubscribe_url),
        "unsubscribe": unsubscribe_url,
    }


def build_mail(
    payload: dict[str, Any], *, sender: str, idempotency_key: str, now: datetime
) -> EmailMessage:
    """The message as sent, from an outbox payload (see `confirmation_mail`, `event_mail`)."""
    mail = EmailMessage()
    mail["Subject"] = str(payload["subject"])
    mail["From"] = sender
    mail["To"] = str(payload["to"])
    mail["Date"] = format_datetime(now)
    domain = sender.rpartition("@")[2].rstrip(">") or "watchkeeper.invalid"
    mail["Message-ID"] = message_id(idempotency_key, domain)
    # RFC 2369 and RFC 8058: mail clients show an unsubscribe button that POSTs at once.
    mail["List-Unsubscribe"] = f"<{payload['unsubscribe']}>"
    mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    mail["Auto-Submitted"] = "auto-generated"
    mail["Precedence"] = "bulk"
    mail.set_content(str(payload["text"]))
    mail.add_alternative(str(payload["html"]), subtype="html")
    return mail


def _indicator(event: StatusEvent) -> str:
    if event.kind in _ENDED:
        return "none"
    return event.impact if event.impact in ("minor", "major", "critical", "maintenance") else "none"


def webhook_body(
    event: StatusEvent, *, unsubscribe_url: str, page_title: str, now: datetime
) -> dict[str, Any]:
    """Statuspage's webhook shape for an incident (maintenance is an incident there too)."""
    at = _isoformat(event.at)
    ended = event.kind in _ENDED
    update_id = f"{event.subject_id}-{int(event.at.timestamp() * 1000)}"
    return {
        "meta": {
            "unsubscribe": unsubscribe_url,
            "documentation": None,  # Statuspage links its docs here; we have none online
            "generated_at": _isoformat(now),
            "event": event.kind,
        },
        "page": {
            "id": event.page,
            "name": page_title,
            "status_indicator": _indicator(event),
            "status_description": event.title if not ended else "All Systems Operational",
        },
        "incident": {
            "id": event.subject_id,
            "page_id": event.page,
            "name": event.title,
            "status": event.status,
            "impact": event.impact,
            "shortlink": event.url,
            "updated_at": at,
            "resolved_at": at if ended else None,
            "components": [{"name": name} for name in event.components],
            "incident_updates": [
                {
                    "id": update_id,
                    "incident_id": event.subject_id,
                    "status": event.status,
                    "body": event.body,
                    "created_at": at,
                    "updated_at": at,
                    "display_at": at,
                }
            ],
        },
    }
