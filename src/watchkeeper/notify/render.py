"""Text every human-facing channel shares: titles, one line per alert, details, colours.

Pure functions of `(event, payload)`, so each channel only decides layout. They never raise on
an unexpected payload: a rendering error would look like a delivery failure and be retried
until the message expires, so missing or odd fields render as placeholders instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

SEVERITIES = ("critical", "high", "medium", "low", "info")
"""Most severe first; the order decides a group's colour and title severity."""

SEVERITY_COLOURS = {
    "critical": "#d00000",
    "high": "#ff6d00",
    "medium": "#ffb300",
    "low": "#2196f3",
    "info": "#9e9e9e",
}
RESOLVED_COLOUR = "#2e7d32"

SEVERITY_EMOJI = {
    "critical": "🔴",
    "high": "🟠",
    "medium": "🟡",
    "low": "🔵",
    "info": "⚪",
}
RESOLVED_EMOJI = "✅"

ALERT_EVENTS = {
    "alert.firing": "firing",
    "alert.resolved": "resolved",
    "alert.acknowledged": "acknowledged",
    "alert.escalated": "escalated",
}
DIGEST_EVENT = "notifications.digest"
RECOVERY_PREFIX = "recovery."

_EVENT_EMOJI = {
    "alert.acknowledged": "👀",
    "alert.escalated": "⏫",
    DIGEST_EVENT: "📨",
    "recovery.started": "🔧",
    "recovery.succeeded": "✅",
    "recovery.failed": "❌",
    "recovery.exhausted": "🛑",
    "recovery.approval_requested": "🙋",
    "recovery.rejected": "🚫",
    "recovery.expired": "⌛",
    "recovery.cancelled": "🆗",
    "recovery.notify": "📣",
}

MAX_LISTED = 10
"""Alerts listed by name in a grouped message; the rest are counted ("and 40 more")."""

MAX_OUTPUT = 1000
"""Characters of a recovery action's output shown; the full output stays in the API."""


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def _str(value: Any, default: str = "") -> str:
    return default if value is None else str(value)


def as_mapping(value: Any) -> Mapping[str, Any]:
    """`value` when it is a mapping, else an empty one (payload fields may be missing or odd)."""
    return value if isinstance(value, Mapping) else {}


def format_time(value: Any) -> str:
    """An ISO timestamp as `2030-01-01 12:00:00 UTC`; anything unparsable is shown as given."""
    if not value:
        return ""
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_duration(start: Any, end: Any) -> str:
    """`1h 5m` between two ISO timestamps, or "" when either is missing or unparsable."""
    try:
        seconds = int(
            (datetime.fromisoformat(str(end)) - datetime.fromisoformat(str(start))).total_seconds()
        )
    except (TypeError, ValueError):
        return ""
    if seconds < 0:
        return ""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    units = ((days, "d"), (hours, "h"), (minutes, "m"), (secs, "s"))
    parts = [f"{n}{unit}" for n, unit in units if n] or ["0s"]
    return " ".join(parts[:2])


def label_text(labels: Any) -> str:
    """`key=value, key=value` in key order, so the same labels always read the same."""
    if not isinstance(labels, Mapping):
        return ""
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items(), key=lambda kv: str(kv[0])))


def alerts_of(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The alerts a message is about: `alerts` of a grouped message, else the single `alert`."""
    grouped = payload.get("alerts")
    if isinstance(grouped, list) and grouped:
        return [a for a in grouped if isinstance(a, dict)]
    single = payload.get("alert")
    return [single] if isinstance(single, dict) else []


def is_grouped(payload: Mapping[str, Any]) -> bool:
    return len(alerts_of(payload)) > 1 or isinstance(payload.get("group"), Mapping)


def top_severity(alerts: Sequence[Mapping[str, Any]]) -> str | None:
    """The most severe of the alerts' severities (unknown values rank last)."""
    found = [_str(a.get("severity")) for a in alerts]
    known = [s for s in SEVERITIES if s in found]
    if known:
        return known[0]
    return next((s for s in found if s), None)


def severity_of(event: str, payload: Mapping[str, Any]) -> str:
    """One severity for the whole message: the top alert severity, else by event kind."""
    severity = top_severity(alerts_of(payload))
    if severity:
        return severity
    if event in ("recovery.failed", "recovery.exhausted", "recovery.expired"):
        return "high"
    if event == DIGEST_EVENT:
        return "medium"
    return "info"


def is_good_news(event: str) -> bool:
    """Events that report things getting better (rendered green)."""
    return event in ("alert.resolved", "recovery.succeeded")


def colour(event: str, payload: Mapping[str, Any]) -> str:
    """Hex colour for the message: green for good news, else by severity."""
    if is_good_news(event):
        return RESOLVED_COLOUR
    return SEVERITY_COLOURS.get(severity_of(event, payload), SEVERITY_COLOURS["info"])


def emoji(event: str, payload: Mapping[str, Any]) -> str:
    """The icon that leads the title: event-specific, else by severity."""
    if event == "alert.resolved":
        return RESOLVED_EMOJI
    if event in _EVENT_EMOJI:
        return _EVENT_EMOJI[event]
    return SEVERITY_EMOJI.get(severity_of(event, payload), SEVERITY_EMOJI["info"])


def alert_summary(alert: Mapping[str, Any]) -> str:
    """`name: summary`, the shortest useful description of one alert."""
    name = _str(alert.get("name") or alert.get("check"), "alert")
    summary = _str(alert.get("summary"))
    return f"{name}: {summary}" if summary else name


def alert_line(alert: Mapping[str, Any], *, icons: bool = True) -> str:
    """One line per alert: icon, severity, name, summary, and since/for how long."""
    severity = _str(alert.get("severity"), "unknown")
    status = _str(alert.get("status"))
    prefix = ""
    if icons:
        prefix = (
            RESOLVED_EMOJI if status == "resolved" else SEVERITY_EMOJI.get(severity, "•")
        ) + " "
    line = f"{prefix}[{severity}] {alert_summary(alert)}"
    if status == "acknowledged" and alert.get("acknowledged_by"):
        line += f" (acknowledged by {alert['acknowledged_by']})"
    elif status == "resolved" and alert.get("resolved_at"):
        lasted = format_duration(alert.get("started_at"), alert.get("resolved_at"))
        line += f" (resolved {format_time(alert['resolved_at'])}" + (
            f" after {lasted})" if lasted else ")"
        )
    elif alert.get("started_at"):
        line += f" (since {format_time(alert['started_at'])})"
    return line


def by_severity(alerts: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Most severe first (stable), so a bounded list never hides a critical alert."""
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(alerts, key=lambda a: rank.get(_str(a.get("severity")), len(rank)))


def more_line(hidden: int) -> str:
    return f"… and {hidden} more"


def alert_lines(
    alerts: Sequence[Mapping[str, Any]], limit: int = MAX_LISTED, *, icons: bool = True
) -> list[str]:
    """A bounded list: the `limit` most severe alerts, then "… and N more" for the rest."""
    lines = [alert_line(a, icons=icons) for a in by_severity(alerts)[:limit]]
    if len(alerts) > limit:
        lines.append(more_line(len(alerts) - limit))
    return lines


def group_labels(payload: Mapping[str, Any]) -> dict[str, Any]:
    group = payload.get("group")
    labels = group.get("labels") if isinstance(group, Mapping) else None
    return dict(labels) if isinstance(labels, Mapping) else {}


def title(event: str, payload: Mapping[str, Any], *, icons: bool = True) -> str:
    """The headline: what happened, to what, how bad. Used as subject, header and fallback."""
    text = _plain_title(event, payload)
    return f"{emoji(event, payload)} {text}" if icons else text


def _plain_title(event: str, payload: Mapping[str, Any]) -> str:
    alerts = alerts_of(payload)
    if event in ALERT_EVENTS and alerts:
        verb = ALERT_EVENTS[event]
        severity = top_severity(alerts) or "unknown"
        if len(alerts) == 1 and not is_grouped(payload):
            return f"{verb.upper()} [{severity}] {alert_summary(alerts[0])}"
        about = label_text(group_labels(payload))
        if not about:
            names = [_str(a.get("name"), "alert") for a in alerts[:3]]
            about = ", ".join(names) + (", …" if len(alerts) > 3 else "")
        noun = "alert" if len(alerts) == 1 else "alerts"
        return f"{len(alerts)} {noun} {verb} [{severity}]: {about}"
    if event == DIGEST_EVENT:
        digest = as_mapping(payload.get("digest"))
        since = format_time(digest.get("since"))
        return f"{_str(digest.get('suppressed'), '?')} notifications suppressed" + (
            f" since {since}" if since else ""
        )
    if event == "recovery.notify" and payload.get("message"):
        return truncate(_str(payload.get("message")), 200)
    if event.startswith(RECOVERY_PREFIX):
        recovery = as_mapping(payload.get("recovery"))
        action = _str(recovery.get("action"), "recovery")
        check = recovery.get("check")
        text = f"Recovery {event.removeprefix(RECOVERY_PREFIX)}: {action}"
        if check:
            text += f" for {check}"
        if recovery.get("attempt") is not None:
            text += f" (attempt {recovery['attempt']})"
        return text
    return f"watchkeeper {event}"


def alert_details(alert: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Labelled facts about one alert, for tables and field lists (empty ones left out)."""
    pairs = [
        ("Severity", _str(alert.get("severity"))),
        ("Status", _str(alert.get("status"))),
        ("Check", _str(alert.get("check"))),
        ("Rule", _str(alert.get("rule"))),
        ("Started", format_time(alert.get("started_at"))),
        ("Resolved", format_time(alert.get("resolved_at"))),
        ("Acknowledged", format_time(alert.get("acknowledged_at"))),
        ("Acknowledged by", _str(alert.get("acknowledged_by"))),
        ("Labels", label_text(alert.get("labels"))),
        ("Fingerprint", _str(alert.get("fingerprint"))),
        ("Alert ID", _str(alert.get("id"))),
    ]
    return [(k, v) for k, v in pairs if v]


def digest_details(payload: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Suppressed notifications counted per event."""
    digest = as_mapping(payload.get("digest"))
    events = as_mapping(digest.get("events"))
    pairs = [
        ("Suppressed", _str(digest.get("suppressed"))),
        ("Since", format_time(digest.get("since"))),
    ]
    pairs += [(str(name), _str(count)) for name, count in sorted(events.items())]
    return [(k, v) for k, v in pairs if v]


def recovery_details(payload: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Facts about a recovery action (its output is rendered separately, see `recovery_output`)."""
    recovery = as_mapping(payload.get("recovery"))
    pairs = [
        ("Action", _str(recovery.get("action"))),
        ("Check", _str(recovery.get("check"))),
        ("Attempt", _str(recovery.get("attempt"))),
        ("Status", _str(recovery.get("status"))),
        ("Started", format_time(recovery.get("started_at"))),
        ("Finished", format_time(recovery.get("finished_at"))),
        ("Recovery ID", _str(recovery.get("id"))),
    ]
    return [(k, v) for k, v in pairs if v]


def recovery_output(payload: Mapping[str, Any], limit: int = MAX_OUTPUT) -> str:
    recovery = as_mapping(payload.get("recovery"))
    return truncate(_str(recovery.get("output")).strip(), limit)


def details(event: str, payload: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The labelled facts for a message that is about one thing (else [])."""
    if event == DIGEST_EVENT:
        return digest_details(payload)
    if event.startswith(RECOVERY_PREFIX):
        return recovery_details(payload)
    alerts = alerts_of(payload)
    if len(alerts) == 1 and not is_grouped(payload):
        return alert_details(alerts[0])
    return []


def links(payload: Mapping[str, Any]) -> dict[str, str]:
    """`payload["links"]` keeping only http(s) URLs, so no channel renders a `javascript:` link."""
    raw = payload.get("links")
    if not isinstance(raw, Mapping):
        return {}
    return {
        str(name): url
        for name, url in raw.items()
        if isinstance(url, str) and url.lower().startswith(("http://", "https://"))
    }


def link_label(name: str) -> str:
    """`alert` -> `Open alert`, for link texts."""
    return f"Open {name.replace('_', ' ')}"


def text_body(event: str, payload: Mapping[str, Any], *, icons: bool = True) -> str:
    """The full plain-text message below the title: alert lines or facts, output, links."""
    sections: list[str] = []
    alerts = alerts_of(payload)
    facts = details(event, payload)
    if event in ALERT_EVENTS and alerts:
        if facts:
            summary = _str(alerts[0].get("summary"))
            if summary:
                sections.append(summary)
        else:
            labels = label_text(group_labels(payload))
            if labels:
                sections.append(f"Group: {labels}")
            sections.append("\n".join(alert_lines(alerts, icons=icons)))
    elif event == DIGEST_EVENT:
        sections.append(
            "Notifications were held back to protect against a notification storm. "
            "See the watchkeeper dashboard for the full list."
        )
    if facts:
        width = max(len(k) for k, _ in facts) + 1
        sections.append("\n".join(f"{k + ':':<{width}} {v}" for k, v in facts))
    output = recovery_output(payload) if event.startswith(RECOVERY_PREFIX) else ""
    if output:
        sections.append(f"Output:\n{output}")
    found = links(payload)
    if found:
        sections.append("\n".join(f"{link_label(name)}: {url}" for name, url in found.items()))
    return "\n\n".join(sections)
