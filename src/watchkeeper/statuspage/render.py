"""A page's machine-readable faces: Statuspage v2 JSON, Atom and RSS feeds, SVG badges.

JSON field names and enum values are Atlassian Statuspage's public v2 ones (`summary.json`
and its siblings), so status-page clients and aggregators read Watchkeeper as they read a
Statuspage page. Timestamps are ISO 8601 in UTC with milliseconds (`…T12:00:00.000Z`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from markdown_it import MarkdownIt

from watchkeeper.core.version import __version__
from watchkeeper.statuspage.model import LABELS, Incident, Maintenance
from watchkeeper.statuspage.views import ComponentView, PageView

_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
"""CommonMark with raw HTML off: `<script>` in an update is shown as text, never run; links
with `javascript:` and similar schemes are not made links (markdown-it's validateLink)."""


def markdown(source: str) -> str:
    """An update's Markdown as safe HTML."""
    return _MARKDOWN.render(source)


def ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dumps(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


# -- Statuspage v2 JSON ------------------------------------------------------------------


def page_json(page: PageView) -> dict[str, Any]:
    return {
        "id": page.id,
        "name": page.config.title,
        "url": page.url,
        "time_zone": page.config.time_zone,
        "updated_at": ts(page.built_at),
    }


def component_json(page: PageView, component: ComponentView) -> dict[str, Any]:
    return {
        "id": component.id,
        "name": component.name,
        "status": component.status,
        "created_at": ts(page.created_at),
        "updated_at": ts(component.updated_at),
        "position": component.position,
        "description": component.description,
        "showcase": True,
        "start_date": page.created_at.date().isoformat(),
        "group_id": component.group_id,
        "page_id": page.id,
        "group": False,
        "only_show_if_degraded": False,
    }


def components_json(page: PageView) -> list[dict[str, Any]]:
    """Components and, as Statuspage lists them, their groups (`group: true`, with the
    ids of their `components`)."""
    out: list[dict[str, Any]] = []
    for group in page.groups:
        if group.name:
            out.append(
                {
                    "id": group.id,
                    "name": group.name,
                    "status": group.status,
                    "created_at": ts(page.created_at),
                    "updated_at": ts(max(c.updated_at for c in group.components)),
                    "position": group.position,
                    "description": None,
                    "showcase": False,
                    "start_date": None,
                    "group_id": None,
                    "page_id": page.id,
                    "group": True,
                    "only_show_if_degraded": False,
                    "components": [c.id for c in group.components],
                }
            )
        out.extend(component_json(page, c) for c in group.components)
    return out


def _affected(page: PageView, names: Any) -> list[dict[str, Any]]:
    return [component_json(page, c) for name in names if (c := page.component(name)) is not None]


def incident_json(page: PageView, incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "name": incident.name,
        "status": incident.status,
        "created_at": ts(incident.created_at),
        "updated_at": ts(incident.updated_at),
        "monitoring_at": ts(incident.monitoring_at),
        "resolved_at": ts(incident.resolved_at),
        "impact": incident.impact,
        "shortlink": f"{page.url}/incidents/{incident.id}",
        "started_at": ts(incident.started_at),
        "page_id": page.id,
        "incident_updates": [
            {
                "id": u.id,
                "status": u.status,
                "body": u.body,
                "incident_id": incident.id,
                "created_at": ts(u.created_at),
                "updated_at": ts(u.created_at),
                "display_at": ts(u.display_at),
                "affected_components": [
                    {
                        "code": c.id if (c := page.component(a.name)) is not None else a.name,
                        "name": a.name,
                        "old_status": a.old_status,
                        "new_status": a.new_status,
                    }
                    for a in u.affected
                ]
                or None,
                "deliver_notifications": True,
                "custom_tweet": None,
                "tweet_id": None,
            }
            for u in incident.updates
        ],
        "components": _affected(page, incident.components),
    }


def maintenance_json(page: PageView, m: Maintenance) -> dict[str, Any]:
    return {
        "id": m.id,
        "name": m.name,
        "status": m.status,
        "created_at": ts(m.created_at),
        "updated_at": ts(m.scheduled_until if m.status == "completed" else m.scheduled_for),
        "monitoring_at": None,
        "resolved_at": ts(m.scheduled_until) if m.status == "completed" else None,
        "impact": "maintenance",
        "shortlink": f"{page.url}#maintenance-{m.id}",
        "started_at": ts(m.scheduled_for),
        "page_id": page.id,
        "incident_updates": [
            {
                "id": f"{m.id}{m.status[:1]}",
                "status": m.status,
                "body": m.body,
                "incident_id": m.id,
                "created_at": ts(m.created_at),
                "updated_at": ts(m.created_at),
                "display_at": ts(m.created_at),
                "affected_components": [
                    {
                        "code": c.id if (c := page.component(name)) is not None else name,
                        "name": name,
                        "old_status": "operational",
                        "new_status": "under_maintenance",
                    }
                    for name in m.components
                ],
                "deliver_notifications": True,
                "custom_tweet": None,
                "tweet_id": None,
            }
        ],
        "components": _affected(page, m.components),
        "scheduled_for": ts(m.scheduled_for),
        "scheduled_until": ts(m.scheduled_until),
    }


def status_json(page: PageView) -> dict[str, Any]:
    return {"indicator": page.indicator, "description": page.description}


def documents(page: PageView) -> dict[str, bytes]:
    """Every JSON document of the page, by path under its prefix."""
    head = page_json(page)
    components = components_json(page)
    incidents = [incident_json(page, i) for i in page.incidents[:50]]
    unresolved = [incident_json(page, i) for i in page.unresolved]
    maintenances = [maintenance_json(page, m) for m in page.maintenances[:50]]
    upcoming = [maintenance_json(page, m) for m in page.maintenances if m.status == "scheduled"]
    active = [
        maintenance_json(page, m)
        for m in page.maintenances
        if m.status in ("in_progress", "verifying")
    ]
    status = status_json(page)
    return {
        "/summary.json": dumps(
            {
                "page": head,
                "components": components,
                "incidents": unresolved,
                "scheduled_maintenances": upcoming + active,
                "status": status,
            }
        ),
        "/status.json": dumps({"page": head, "status": status}),
        "/components.json": dumps({"page": head, "components": components}),
        "/incidents.json": dumps({"page": head, "incidents": incidents}),
        "/incidents/unresolved.json": dumps({"page": head, "incidents": unresolved}),
        "/scheduled-maintenances.json": dumps(
            {"page": head, "scheduled_maintenances": maintenances}
        ),
        "/scheduled-maintenances/upcoming.json": dumps(
            {"page": head, "scheduled_maintenances": upcoming}
        ),
        "/scheduled-maintenances/active.json": dumps(
            {"page": head, "scheduled_maintenances": active}
        ),
    }


# -- feeds ---------------------------------------------------------------------------------


def _entry_html(incident: Incident) -> str:
    parts = []
    for u in incident.updates:
        parts.append(
            f"<p><strong>{escape(LABELS.get(u.status, u.status))}</strong> "
            f"({escape(ts(u.display_at) or '')})</p>{markdown(u.body)}"
        )
    return "".join(parts)


def atom(page: PageView) -> bytes:
    """The page's incidents as an Atom 1.0 feed (RFC 4287)."""
    items = page.incidents[:50]
    updated = max([i.updated_at for i in items], default=page.created_at)
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">',
        f"<id>{escape(page.url)}</id>",
        f"<title>{escape(page.config.title)} incident history</title>",
        f"<updated>{ts(updated)}</updated>",
        f'<link rel="alternate" type="text/html" href={quoteattr(page.url)}/>',
        f'<link rel="self" type="application/atom+xml" href={quoteattr(page.url + "/feed.atom")}/>',
        f"<author><name>{escape(page.config.title)}</name></author>",
        f'<generator version="{escape(__version__)}">Watchkeeper</generator>',
    ]
    for incident in items:
        link = f"{page.url}/incidents/{incident.id}"
        lines += [
            "<entry>",
            f"<id>{escape(link)}</id>",
            f"<title>{escape(incident.name)}</title>",
            f"<published>{ts(incident.created_at)}</published>",
            f"<updated>{ts(incident.updated_at)}</updated>",
            f'<link rel="alternate" type="text/html" href={quoteattr(link)}/>',
            f'<content type="html">{escape(_entry_html(incident))}</content>',
            "</entry>",
        ]
    lines.append("</feed>")
    return "\n".join(lines).encode()


def rss(page: PageView) -> bytes:
    """The page's incidents as an RSS 2.0 feed."""
    items = page.incidents[:50]
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">',
        "<channel>",
        f"<title>{escape(page.config.title)} incident history</title>",
        f"<link>{escape(page.url)}</link>",
        f"<description>Incidents of {escape(page.config.title)}</description>",
        f'<atom:link href={quoteattr(page.url + "/feed.rss")} rel="self" '
        'type="application/rss+xml"/>',
        f"<lastBuildDate>{format_datetime(page.built_at.astimezone(UTC), usegmt=True)}"
        "</lastBuildDate>",
    ]
    for incident in items:
        link = f"{page.url}/incidents/{incident.id}"
        lines += [
            "<item>",
            f"<title>{escape(incident.name)}</title>",
            f"<link>{escape(link)}</link>",
            f'<guid isPermaLink="true">{escape(link)}</guid>',
            f"<pubDate>{format_datetime(incident.created_at.astimezone(UTC), usegmt=True)}"
            "</pubDate>",
            f"<description>{escape(_entry_html(incident))}</description>",
            "</item>",
        ]
    lines += ["</channel>", "</rss>"]
    return "\n".join(lines).encode()


# -- badges --------------------------------------------------------------------------------

BADGE_COLOURS = {
    "operational": "#1f7a3a",
    "degraded_performance": "#8a6100",
    "partial_outage": "#b54708",
    "major_outage": "#b42318",
    "under_maintenance": "#1d5fb4",
    "unknown": "#555555",
}
"""Darker than the page's colours: white badge text keeps 4.5:1 contrast on each."""


def _text_width(text: str) -> int:
    return 7 * len(text) + 10


def badge(label: str, message: str, colour: str) -> bytes:
    """A flat two-part badge (as shields.io draws them), with a title for screen readers."""
    left, right = _text_width(label), _text_width(message)
    total = left + right
    title = escape(f"{label}: {message}")
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" '
        f'aria-label="{title}"><title>{title}</title>'
        f'<rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        '<g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{left / 2}" y="14" text-anchor="middle">{escape(label)}</text>'
        f'<text x="{left + right / 2}" y="14" text-anchor="middle">{escape(message)}</text>'
        "</g></svg>"
    )
    return svg.encode()


def status_badge(component: ComponentView) -> bytes:
    return badge(
        component.name,
        LABELS.get(component.status, component.status).lower(),
        BADGE_COLOURS.get(component.status, BADGE_COLOURS["unknown"]),
    )


def uptime_badge(page: PageView, component: ComponentView, days: int) -> bytes:
    uptime = page.uptime(component, days)
    if uptime is None:
        return badge(f"uptime {days}d", "no data", BADGE_COLOURS["unknown"])
    shown = "100%" if uptime >= 1 else f"{min(uptime * 100, 99.99):.2f}%"
    colour = (
        BADGE_COLOURS["operational"]
        if uptime >= 0.999
        else BADGE_COLOURS["degraded_performance"]
        if uptime >= 0.99
        else BADGE_COLOURS["major_outage"]
    )
    return badge(f"uptime {days}d", shown, colour)
