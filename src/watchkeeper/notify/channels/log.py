"""`log`: one structured line per notification on the `watchkeeper.notify` logger.

Always delivered. Useful to see what routing would send without a real receiver, and as a
last-resort channel whose output ends up wherever the service's logs go.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

from watchkeeper.notify import render
from watchkeeper.notify.channels.base import Channel, ChannelConfigBase, Message, Outcome
from watchkeeper.notify.channels.registry import register

log = logging.getLogger("watchkeeper.notify")

MAX_FINGERPRINTS = 100
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


class LogChannelConfig(ChannelConfigBase):
    type: Literal["log"]
    level: Literal["debug", "info", "warning", "error", "critical"] = "warning"


def record(channel: str, message: Message) -> dict[str, Any]:
    """The fields logged for one notification (pure: tested on its own)."""
    event, payload = message.event, message.payload
    alerts = render.alerts_of(payload)
    fields: dict[str, Any] = {
        "channel": channel,
        "event": event,
        "idempotency_key": message.idempotency_key,
        "attempt": message.attempt,
        "title": render.title(event, payload, icons=False),
        "severity": render.severity_of(event, payload),
    }
    if alerts:
        fields["alerts"] = len(alerts)
        fields["fingerprints"] = [a.get("fingerprint") for a in alerts[:MAX_FINGERPRINTS]]
    group = render.as_mapping(payload.get("group"))
    if group:
        fields["group"] = group.get("key")
    if event == render.DIGEST_EVENT:
        fields["digest"] = dict(render.as_mapping(payload.get("digest")))
    recovery = render.as_mapping(payload.get("recovery"))
    if recovery:
        fields["recovery"] = {k: recovery.get(k) for k in ("id", "action", "check", "status")}
    found = render.links(payload)
    if found:
        fields["links"] = found
    return fields


@register
class LogChannel(Channel[LogChannelConfig]):
    """Writes each notification as a `notification {json}` log line; never fails."""

    type = "log"
    config_model = LogChannelConfig

    async def send(self, message: Message) -> Outcome:
        fields = record(self.name, message)
        # JSON keeps the line machine-readable in both text and JSON log formats; `extra`
        # hands the same fields to handlers that want them structured.
        line = json.dumps(fields, ensure_ascii=False, default=str)
        log.log(LEVELS[self.config.level], "notification %s", line, extra={"notification": fields})
        return Outcome.ok()
