"""`slack`: a Block Kit message to a Slack incoming webhook.

Layout: the top-level `text` is the notification/fallback line; `blocks` holds a header and a
short summary that is always visible; one attachment carries the severity colour bar beside the
details (one section of fields per alert, at most `render.MAX_LISTED`), then links.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import HttpUrl

from watchkeeper.notify import render
from watchkeeper.notify.channels._http_post import post
from watchkeeper.notify.channels.base import Channel, ChannelConfigBase, Message, Outcome
from watchkeeper.notify.channels.registry import register

# Block Kit limits (https://api.slack.com/reference/block-kit/blocks); Slack rejects the whole
# message with 400 invalid_blocks when one is exceeded, so every text is cut to fit.
HEADER_MAX = 150
SECTION_MAX = 3000
FIELD_MAX = 2000
FIELDS_MAX = 10
_ALERT_FIELDS = ("Severity", "Status", "Started", "Resolved", "Acknowledged by", "Labels")


class SlackChannelConfig(ChannelConfigBase):
    type: Literal["slack"]
    webhook_url: HttpUrl
    channel: str | None = None
    """Overrides the webhook's channel; only legacy webhooks honour it."""
    username: str | None = None


def escape(text: str) -> str:
    """Escape text for mrkdwn: Slack's formatting reference asks for exactly these three."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(text: str) -> dict[str, Any]:
    return {
        "type": "section",
        "text": {"type": "mrkdwn", "text": render.truncate(text, SECTION_MAX)},
    }


def _fields(pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [
        {"type": "mrkdwn", "text": render.truncate(f"*{escape(k)}*\n{escape(v)}", FIELD_MAX)}
        for k, v in pairs[:FIELDS_MAX]
    ]


def _context(texts: list[str]) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": t} for t in texts[:10]]}


def _link(url: str, label: str) -> str:
    # `>` and `|` end Slack's <url|label> syntax early; they are never needed unencoded in a URL.
    return f"<{url.replace('>', '%3E').replace('|', '%7C')}|{escape(label)}>"


def _intro(event: str, payload: Mapping[str, Any]) -> str:
    alerts = render.alerts_of(payload)
    if event in render.ALERT_EVENTS and alerts:
        if render.details(event, payload):
            return escape(str(alerts[0].get("summary") or ""))
        text = f"*{len(alerts)} alerts* {render.ALERT_EVENTS[event]}"
        labels = render.label_text(render.group_labels(payload))
        return text + (f" in group `{escape(labels)}`" if labels else "")
    if event == render.DIGEST_EVENT:
        return "Notifications were held back to protect against a notification storm."
    output = render.recovery_output(payload) if event.startswith(render.RECOVERY_PREFIX) else ""
    return f"```{escape(output)}```" if output else ""


def _detail_blocks(event: str, payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    facts = render.details(event, payload)
    if facts:
        return [{"type": "section", "fields": _fields(facts)}]
    alerts = render.alerts_of(payload)
    blocks: list[dict[str, Any]] = []
    for alert in render.by_severity(alerts)[: render.MAX_LISTED]:
        icon = render.SEVERITY_EMOJI.get(str(alert.get("severity")), "•")
        if alert.get("status") == "resolved":
            icon = render.RESOLVED_EMOJI
        name = escape(str(alert.get("name") or alert.get("check") or "alert"))
        summary = escape(str(alert.get("summary") or ""))
        block = _section(f"{icon} *{name}*" + (f" — {summary}" if summary else ""))
        pairs = [(k, v) for k, v in render.alert_details(alert) if k in _ALERT_FIELDS]
        if pairs:
            block["fields"] = _fields(pairs)
        blocks.append(block)
    if len(alerts) > render.MAX_LISTED:
        blocks.append(_context([escape(render.more_line(len(alerts) - render.MAX_LISTED))]))
    return blocks


def build_payload(
    message: Message, *, channel: str | None = None, username: str | None = None
) -> dict[str, Any]:
    """The JSON object posted to the webhook (pure: tested on its own)."""
    event, payload = message.event, message.payload
    headline = render.title(event, payload)
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": render.truncate(headline, HEADER_MAX)},
        }
    ]
    intro = _intro(event, payload)
    if intro:
        blocks.append(_section(intro))
    footer = [_link(url, render.link_label(name)) for name, url in render.links(payload).items()]
    footer.append(f"watchkeeper · {escape(event)}")
    body: dict[str, Any] = {
        "text": headline,
        "blocks": blocks,
        "attachments": [
            {
                "color": render.colour(event, payload),
                "fallback": headline,
                "blocks": [*_detail_blocks(event, payload), _context([" · ".join(footer)])],
            }
        ],
    }
    if channel:
        body["channel"] = channel
    if username:
        body["username"] = username
    return body


@register
class SlackChannel(Channel[SlackChannelConfig]):
    """Posts Block Kit messages to a Slack incoming webhook (one attempt per `send`)."""

    type = "slack"
    config_model = SlackChannelConfig

    async def send(self, message: Message) -> Outcome:
        body = build_payload(message, channel=self.config.channel, username=self.config.username)
        url = str(self.config.webhook_url)
        parts = urlsplit(url)
        # The whole webhook path is the credential, so errors name only the host.
        display = f"{parts.scheme}://{parts.netloc}/***"
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "watchkeeper"}
        return await post(
            self.context.http,
            url,
            json.dumps(body).encode(),
            headers,
            self.context.timeout,
            display,
        )

    def secrets(self) -> list[str]:
        url = str(self.config.webhook_url)
        return [url, urlsplit(url).path.strip("/")]
