"""The shared text rendering every human-facing channel builds on."""

from __future__ import annotations

from typing import Any

import pytest

from tests.notify import payloads
from watchkeeper.notify import render

STARTED = "2030-01-01T12:00:00Z"


def alert(**overrides: Any) -> dict[str, Any]:
    labels = {"severity": "critical", "check": "db"}
    return payloads.alert(**{"started_at": STARTED, "labels": labels, **overrides})


def group(count: int, labels: dict[str, str] | None = None) -> dict[str, Any]:
    alerts = [alert(id=f"a-{i}", name=f"svc{i}", severity="high") for i in range(count)]
    payload: dict[str, Any] = {"version": 1, "alert": alerts[0], "alerts": alerts}
    if labels is not None:
        payload["group"] = {"key": "team=db", "labels": labels}
    return payload


def test_a_single_firing_alert_title_says_what_how_bad_and_why() -> None:
    payload = {"alert": alert()}
    assert render.title("alert.firing", payload) == "🔴 FIRING [critical] db: connection refused"
    assert (
        render.title("alert.firing", payload, icons=False)
        == "FIRING [critical] db: connection refused"
    )


def test_each_alert_event_has_its_own_verb_and_icon() -> None:
    payload = {"alert": alert(status="acknowledged")}
    assert render.title("alert.acknowledged", payload).startswith("👀 ACKNOWLEDGED [critical]")
    assert render.title("alert.escalated", payload).startswith("⏫ ESCALATED [critical]")
    assert render.title("alert.resolved", payload).startswith("✅ RESOLVED [critical]")


def test_an_acknowledgement_says_who_and_when() -> None:
    acked = alert(
        status="acknowledged", acknowledged_by="alice", acknowledged_at="2030-01-01T12:01:00Z"
    )
    assert render.alert_line(acked, icons=False).endswith("(acknowledged by alice)")
    facts = dict(render.details("alert.acknowledged", {"alert": acked}))
    assert facts["Acknowledged"] == "2030-01-01 12:01:00 UTC"
    assert facts["Acknowledged by"] == "alice"


def test_a_resolved_alert_line_says_when_and_after_how_long() -> None:
    resolved = alert(status="resolved", resolved_at="2030-01-01T13:05:07Z")
    assert render.alert_line(resolved) == (
        "✅ [critical] db: connection refused (resolved 2030-01-01 13:05:07 UTC after 1h 5m)"
    )
    assert render.alert_line(alert(), icons=False) == (
        "[critical] db: connection refused (since 2030-01-01 12:00:00 UTC)"
    )


def test_a_grouped_message_counts_every_alert_and_lists_a_bounded_few() -> None:
    payload = group(50, {"team": "db"})
    payload["alerts"][37]["severity"] = "critical"
    assert render.title("alert.firing", payload) == "🔴 50 alerts firing [critical]: team=db"
    lines = render.alert_lines(render.alerts_of(payload))
    assert len(lines) == render.MAX_LISTED + 1
    assert lines[-1] == "… and 40 more"
    assert lines[0].startswith("🔴 [critical] svc37"), "the most severe alert is never hidden"
    body = render.text_body("alert.firing", payload)
    assert body.startswith("Group: team=db\n\n")
    assert "… and 40 more" in body


def test_a_group_without_labels_is_named_by_its_first_alerts() -> None:
    assert render.title("alert.resolved", group(5), icons=False) == (
        "5 alerts resolved [high]: svc0, svc1, svc2, …"
    )


def test_a_digest_says_how_many_notifications_were_suppressed_per_event() -> None:
    payload = {
        "digest": {
            "suppressed": 42,
            "since": STARTED,
            "events": {"alert.resolved": 2, "alert.firing": 40},
        }
    }
    event = "notifications.digest"
    assert render.title(event, payload) == (
        "📨 42 notifications suppressed since 2030-01-01 12:00:00 UTC"
    )
    assert render.details(event, payload) == [
        ("Suppressed", "42"),
        ("Since", "2030-01-01 12:00:00 UTC"),
        ("alert.firing", "40"),
        ("alert.resolved", "2"),
    ]
    assert render.colour(event, payload) == render.SEVERITY_COLOURS["medium"]


@pytest.mark.parametrize(
    ("event", "icon", "colour"),
    [
        ("recovery.started", "🔧", "#9e9e9e"),
        ("recovery.succeeded", "✅", "#2e7d32"),
        ("recovery.failed", "❌", "#ff6d00"),
        ("recovery.exhausted", "🛑", "#ff6d00"),
    ],
)
def test_recovery_events_name_the_action_check_and_attempt(
    event: str, icon: str, colour: str
) -> None:
    payload = {
        "recovery": {
            "id": "r-1",
            "action": "restart-db",
            "check": "db",
            "attempt": 2,
            "status": event.split(".")[1],
            "started_at": STARTED,
            "finished_at": "2030-01-01T12:00:03Z",
            "output": "x" * 5000,
        }
    }
    verb = event.split(".")[1]
    assert render.title(event, payload) == f"{icon} Recovery {verb}: restart-db for db (attempt 2)"
    assert render.colour(event, payload) == colour
    assert len(render.recovery_output(payload)) == render.MAX_OUTPUT
    assert ("Action", "restart-db") in render.details(event, payload)
    assert "Output:\n" in render.text_body(event, payload)


def test_colours_follow_severity_and_good_news_is_green() -> None:
    assert render.SEVERITY_COLOURS == {
        "critical": "#d00000",
        "high": "#ff6d00",
        "medium": "#ffb300",
        "low": "#2196f3",
        "info": "#9e9e9e",
    }
    for severity, expected in render.SEVERITY_COLOURS.items():
        assert render.colour("alert.firing", {"alert": alert(severity=severity)}) == expected
    assert render.colour("alert.resolved", {"alert": alert()}) == "#2e7d32"


def test_a_single_alert_body_lists_its_facts_and_links() -> None:
    payload = {
        "alert": alert(),
        "links": {"alert": "https://wk.example/alerts/a-1", "evil": "javascript:alert(1)"},
    }
    assert render.text_body("alert.firing", payload) == (
        "connection refused\n\n"
        "Severity:    critical\n"
        "Status:      firing\n"
        "Check:       db\n"
        "Started:     2030-01-01 12:00:00 UTC\n"
        "Labels:      check=db, severity=critical\n"
        "Fingerprint: check:db\n"
        "Alert ID:    a-1\n\n"
        "Open alert: https://wk.example/alerts/a-1"
    )


def test_only_http_links_are_ever_rendered() -> None:
    payload = {"links": {"a": "https://x", "b": "HTTP://y", "c": "javascript:1", "d": 3}}
    assert render.links(payload) == {"a": "https://x", "b": "HTTP://y"}
    assert render.links({"links": "https://x"}) == {}


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"alert": None},
        {"alert": "db"},
        {"alert": {}},
        {"alerts": "x", "group": "y"},
        {"alerts": [{}, 3], "group": {"labels": None}},
        {"digest": None, "recovery": [], "links": None},
        {"alert": {"severity": "weird", "started_at": "not a time", "labels": "x"}},
    ],
)
@pytest.mark.parametrize(
    "event",
    ["alert.firing", "alert.resolved", "notifications.digest", "recovery.failed", "other"],
)
def test_odd_payloads_render_placeholders_instead_of_raising(
    event: str, payload: dict[str, Any]
) -> None:
    assert render.title(event, payload)
    render.text_body(event, payload)
    render.details(event, payload)
    assert render.colour(event, payload).startswith("#")


def test_times_and_durations_read_naturally() -> None:
    assert render.format_time("2030-01-01T13:00:00+01:00") == "2030-01-01 12:00:00 UTC"
    assert render.format_time("yesterday") == "yesterday"
    assert render.format_duration(STARTED, "2030-01-01T12:00:42Z") == "42s"
    assert render.format_duration(STARTED, "2030-01-03T12:30:00Z") == "2d 30m"
    assert render.format_duration(STARTED, None) == ""
    assert render.truncate("abcdef", 4) == "abc…"
