"""`pagerduty`: PagerDuty Events API v2 (alert events) and Change Events (recovery actions).

PagerDuty keys an incident by `dedup_key` and an event carries exactly one, so a grouped
notification becomes one event per alert (keyed by its fingerprint). `send` posts them all and
succeeds only when every one was accepted; the first failure, in alert order, is the Outcome.
Re-sending the ones that did succeed on the next attempt is harmless: PagerDuty deduplicates a
trigger for an open incident with the same key, and acknowledge/resolve are idempotent. An alert
that is already resolved is sent as `resolve` whatever the event, so a group never pages for it.

Other events: a digest (storm protection) triggers one warning incident, because suppressed pages
are exactly what the on-call must learn about; recovery events go to the Change Events API, which
records them on the service timeline without paging anybody.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, HttpUrl, StringConstraints, field_validator

from watchkeeper.core.redact import redact_url, url_secrets
from watchkeeper.notify import render
from watchkeeper.notify.channels._http_post import post
from watchkeeper.notify.channels.base import Channel, ChannelConfigBase, Message, Outcome
from watchkeeper.notify.channels.registry import register

PdSeverity = Literal["critical", "error", "warning", "info"]
Severity = Literal["critical", "high", "medium", "low", "info"]

DEFAULT_SEVERITY_MAP: dict[Severity, PdSeverity] = {
    "critical": "critical",
    "high": "error",
    "medium": "warning",
    "low": "info",
    "info": "info",
}
EVENT_ACTIONS = {
    "alert.firing": "trigger",
    "alert.escalated": "trigger",
    "alert.acknowledged": "acknowledge",
    "alert.resolved": "resolve",
}
SUMMARY_MAX = 1024
DEDUP_KEY_MAX = 255
PARALLEL = 4
"""Events of one grouped message in flight at once: quick, yet gentle on PagerDuty's rate limit."""

RoutingKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{32}$")]


class PagerDutyChannelConfig(ChannelConfigBase):
    type: Literal["pagerduty"]
    routing_key: RoutingKey
    """The 32-character Integration Key of an Events API v2 integration."""
    url: HttpUrl = HttpUrl("https://events.pagerduty.com/v2/enqueue")
    change_url: HttpUrl = HttpUrl("https://events.pagerduty.com/v2/change/enqueue")
    severity_map: dict[Severity, PdSeverity] = Field(default_factory=dict)
    """Overrides per watchkeeper severity; unlisted severities keep the default mapping."""

    @field_validator("severity_map", mode="after")
    @classmethod
    def _complete(cls, value: dict[Severity, PdSeverity]) -> dict[Severity, PdSeverity]:
        return {**DEFAULT_SEVERITY_MAP, **value}


def dedup_key(value: str) -> str:
    """`value` as a dedup_key: kept when it fits PagerDuty's 255 characters, else hashed."""
    if len(value) <= DEDUP_KEY_MAX:
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def _links(payload: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{"href": url, "text": render.link_label(n)} for n, url in render.links(payload).items()]


def _common(routing_key: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"routing_key": routing_key, "client": "watchkeeper"}
    dashboard = render.links(payload).get("dashboard")
    if dashboard:
        body["client_url"] = dashboard
    links = _links(payload)
    if links:
        body["links"] = links
    return body


def alert_event(
    alert: Mapping[str, Any],
    event: str,
    payload: Mapping[str, Any],
    routing_key: str,
    severity_map: Mapping[Any, str],
) -> dict[str, Any]:
    """One Events API v2 body for one alert (pure: tested on its own)."""
    action = EVENT_ACTIONS[event]
    if alert.get("status") == "resolved":
        # A group notification can carry alerts that resolved meanwhile; never page for those.
        action = "resolve"
    key = dedup_key(str(alert.get("fingerprint") or alert.get("id") or ""))
    if action != "trigger":
        # PagerDuty ignores `payload` on acknowledge/resolve; the key alone finds the incident.
        return {"routing_key": routing_key, "event_action": action, "dedup_key": key}
    labels = render.as_mapping(alert.get("labels"))
    ids = {
        "alert_id": alert.get("id"),
        "fingerprint": alert.get("fingerprint"),
        "check": alert.get("check"),
        "rule": alert.get("rule"),
        "status": alert.get("status"),
        "event": event,
        "group_key": render.as_mapping(payload.get("group")).get("key"),
    }
    details = {**labels, **{k: v for k, v in ids.items() if v is not None}}
    fields = {
        "summary": render.truncate(render.alert_summary(alert), SUMMARY_MAX),
        "source": str(alert.get("check") or "watchkeeper"),
        "severity": severity_map.get(str(alert.get("severity")), "error"),
        "timestamp": alert.get("started_at"),
        "component": alert.get("name"),
        "group": ids["group_key"] or labels.get("group"),
        "class": alert.get("rule") or "check",
        "custom_details": details,
    }
    return {
        **_common(routing_key, payload),
        "event_action": action,
        "dedup_key": key,
        # PagerDuty rejects explicit nulls in optional fields, so absent ones are left out.
        "payload": {k: v for k, v in fields.items() if v is not None},
    }


def digest_event(message: Message, routing_key: str, now: datetime) -> dict[str, Any]:
    """A warning incident saying notifications were suppressed (one per digest)."""
    digest = render.as_mapping(message.payload.get("digest"))
    return {
        **_common(routing_key, message.payload),
        "event_action": "trigger",
        "dedup_key": dedup_key(f"watchkeeper:digest:{message.idempotency_key}"),
        "payload": {
            "summary": render.truncate(
                render.title(message.event, message.payload, icons=False), SUMMARY_MAX
            ),
            "source": "watchkeeper",
            "severity": "warning",
            "timestamp": render_ts(now),
            "class": "notifications.digest",
            "custom_details": dict(digest),
        },
    }


def change_event(message: Message, routing_key: str, now: datetime) -> dict[str, Any]:
    """A Change Events API body for a recovery event: on the timeline, never paging."""
    recovery = render.as_mapping(message.payload.get("recovery"))
    details = dict(render.recovery_details(message.payload))
    output = render.recovery_output(message.payload)
    if output:
        details["Output"] = output
    title = render.title(message.event, message.payload, icons=False)
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "payload": {
            "summary": render.truncate(title, SUMMARY_MAX),
            "source": str(recovery.get("check") or "watchkeeper"),
            "timestamp": recovery.get("finished_at")
            or recovery.get("started_at")
            or render_ts(now),
            "custom_details": details,
        },
    }
    links = _links(message.payload)
    if links:
        body["links"] = links
    return body


def render_ts(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def build_events(
    message: Message, routing_key: str, severity_map: Mapping[Any, str], now: datetime
) -> list[dict[str, Any]]:
    """Every Events API v2 body a message becomes (one per distinct alert; [] for recovery)."""
    if message.event == render.DIGEST_EVENT:
        return [digest_event(message, routing_key, now)]
    if message.event not in EVENT_ACTIONS:
        return []
    events: dict[str, dict[str, Any]] = {}
    for alert in render.alerts_of(message.payload):
        body = alert_event(alert, message.event, message.payload, routing_key, severity_map)
        events.setdefault(body["dedup_key"], body)
    return list(events.values())


@register
class PagerDutyChannel(Channel[PagerDutyChannelConfig]):
    """Triggers, acknowledges and resolves PagerDuty incidents, one per alert fingerprint."""

    type = "pagerduty"
    config_model = PagerDutyChannelConfig

    async def send(self, message: Message) -> Outcome:
        now = self.context.now()
        key = self.config.routing_key
        if message.event.startswith(render.RECOVERY_PREFIX):
            return await self._post(str(self.config.change_url), change_event(message, key, now))
        events = build_events(message, key, self.config.severity_map, now)
        if not events:
            # Nothing PagerDuty can represent (e.g. an alert event without alerts): not an error
            # worth retrying for a day.
            return Outcome.ok()
        return await self._post_all(events)

    async def _post_all(self, events: list[dict[str, Any]]) -> Outcome:
        semaphore = asyncio.Semaphore(PARALLEL)
        failed = False

        async def one(body: dict[str, Any]) -> Outcome | None:
            nonlocal failed
            async with semaphore:
                if failed:
                    return None  # no point in sending more once the attempt has failed
                outcome = await self._post(str(self.config.url), body)
                failed = failed or not outcome.delivered
                return outcome

        try:
            # One deadline for the whole batch: the outbox allows `timeout` (+5 s) per `send`.
            async with asyncio.timeout(self.context.timeout):
                outcomes = await asyncio.gather(*(one(e) for e in events))
        except TimeoutError:
            return Outcome.temporary(
                f"timed out after {self.context.timeout:g}s sending {len(events)} PagerDuty events"
            )
        for body, outcome in zip(events, outcomes, strict=True):
            if outcome is not None and not outcome.delivered:
                if len(events) == 1:
                    return outcome
                error = f"{body['dedup_key']!r} (1 of {len(events)} events): {outcome.error}"
                return Outcome(False, outcome.retry, error, outcome.retry_after, outcome.retry_at)
        return Outcome.ok()

    async def _post(self, url: str, body: dict[str, Any]) -> Outcome:
        headers = {"Content-Type": "application/json", "User-Agent": "watchkeeper"}
        return await post(
            self.context.http,
            url,
            json.dumps(body).encode(),
            headers,
            self.context.timeout,
            redact_url(url),
        )

    def secrets(self) -> list[str]:
        urls = (str(self.config.url), str(self.config.change_url))
        return [self.config.routing_key, *(s for url in urls for s in url_secrets(url))]
