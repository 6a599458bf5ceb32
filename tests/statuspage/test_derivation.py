"""The status page's pure parts: component status, the page indicator, maintenance status
over time, day bars, badges and the config section."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from watchkeeper.alerting.maintenance import MaintenanceWindow
from watchkeeper.config.loader import Config
from watchkeeper.statuspage import render
from watchkeeper.statuspage.config import StatusPageConfig
from watchkeeper.statuspage.maintenance import plan
from watchkeeper.statuspage.model import Incident, component_status, page_indicator
from watchkeeper.statuspage.views import CheckInput, build_page, day_status

NOW = datetime(2030, 1, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("checks", "expected"),
    [
        ([], "operational"),
        ([("up", "high"), ("up", "low")], "operational"),
        ([("up", "high"), ("degraded", "low")], "degraded_performance"),
        ([("up", "high"), ("down", "low")], "partial_outage"),
        ([("up", "high"), ("down", "critical")], "major_outage"),
        ([("down", "low"), ("down", "low")], "major_outage"),
        ([("down", "low"), ("paused", "low"), ("unknown", "low")], "major_outage"),
        ([("paused", "high"), ("unknown", "low")], "operational"),
        ([("degraded", "low"), ("down", "low"), ("up", "low")], "partial_outage"),
    ],
)
def test_component_status_from_its_checks(checks: list[tuple[str, str]], expected: str) -> None:
    assert component_status(checks) == expected


def test_maintenance_and_incident_overrides() -> None:
    down = [("down", "critical")]
    assert component_status(down, in_maintenance=True) == "under_maintenance"
    assert component_status(down, in_maintenance=True, override="partial_outage") == (
        "partial_outage"
    )
    assert component_status([("up", "low")], override="degraded_performance") == (
        "degraded_performance"
    )


def test_page_indicator_words_as_statuspage() -> None:
    assert page_indicator(["operational"], []) == ("none", "All Systems Operational")
    assert page_indicator(["under_maintenance"], []) == ("none", "Service Under Maintenance")
    assert page_indicator(["degraded_performance"], []) == ("minor", "Minor Service Outage")
    assert page_indicator(["partial_outage"], []) == ("major", "Partial System Outage")
    assert page_indicator(["major_outage"], []) == ("critical", "Major System Outage")
    assert page_indicator(["operational"], ["critical"])[0] == "critical"
    assert page_indicator(["operational"], ["minor"])[0] == "minor"
    assert page_indicator(["operational"], ["none"])[0] == "none"


def test_a_window_goes_scheduled_in_progress_verifying_completed() -> None:
    window = MaintenanceWindow.model_validate(
        {
            "name": "db",
            "starts_at": NOW.isoformat(),
            "ends_at": (NOW + timedelta(hours=1)).isoformat(),
            "checks": ["postgres"],
            "comment": "Database upgrade",
        }
    )
    labels = {"Database": [{"check": "postgres", "component": "Database"}], "API": [{"check": "a"}]}

    def at(moment: datetime, ok: bool = True) -> list[str]:
        found = plan("main", [window], labels, moment, operational={"Database": ok})
        assert all(m.components == ("Database",) for m in found)
        return [m.status for m in found]

    assert at(NOW - timedelta(days=2)) == ["scheduled"]
    assert at(NOW - timedelta(days=40)) == []  # too far ahead to list
    assert at(NOW) == ["in_progress"]
    assert at(NOW + timedelta(minutes=59)) == ["in_progress"]
    assert at(NOW + timedelta(minutes=61), ok=False) == ["verifying"]
    assert at(NOW + timedelta(minutes=61), ok=True) == ["completed"]
    assert at(NOW + timedelta(hours=3), ok=False) == ["completed"]
    assert at(NOW + timedelta(days=8)) == []


def test_a_recurring_window_shows_its_current_or_next_occurrence() -> None:
    window = MaintenanceWindow.model_validate(
        {"name": "weekly", "schedule": "0 2 * * *", "duration": "1h", "components": ["API"]}
    )
    (m,) = plan("main", [window], {"API": []}, NOW, operational={})
    assert m.status == "scheduled" and m.scheduled_for == datetime(2030, 1, 11, 2, tzinfo=UTC)
    (m,) = plan("main", [window], {"API": []}, NOW.replace(hour=2, minute=30), operational={})
    assert m.status == "in_progress" and m.scheduled_until == datetime(2030, 1, 10, 3, tzinfo=UTC)


def test_day_status_and_bars_take_the_worst_of_results_and_incidents() -> None:
    assert day_status([]) == ("none", None)
    assert day_status([(10, 10, 0)]) == ("operational", 1.0)
    assert day_status([(10, 9, 1), (10, 10, 0)]) == ("partial_outage", 0.95)
    assert day_status([(10, 4, 6)]) == ("major_outage", 0.4)
    config = StatusPageConfig.model_validate({"components": [{"name": "API"}]})
    today = (NOW.date() - date(1970, 1, 1)).days
    incident = Incident(
        id="i1",
        page="main",
        name="Errors",
        status="resolved",
        impact="minor",
        draft=False,
        created_at=NOW - timedelta(days=1, hours=2),
        updated_at=NOW - timedelta(days=1),
        started_at=NOW - timedelta(days=1, hours=2),
        monitoring_at=None,
        resolved_at=NOW - timedelta(days=1),
        components={"API": "degraded_performance"},
    )
    view = build_page(
        config,
        position=0,
        public_url="http://wk",
        checks=[CheckInput("api", "up", "high", {"component": "API", "check": "api"})],
        incidents=[incident],
        maintenances=[],
        daily={"api": {today: (100, 100, 0), today - 1: (100, 100, 0), today - 2: (10, 9, 1)}},
        since={},
        now=NOW,
        data_as_of=NOW,
        stale=False,
        created_at=NOW,
    )
    (api,) = view.components
    assert len(api.days) == 90 and api.days[-1].day == NOW.date()
    assert [d.status for d in api.days[-3:]] == [
        "partial_outage",
        "degraded_performance",
        "operational",
    ]
    assert api.days[-2].incidents == ("Errors",) and api.days[-3].uptime == 0.9
    assert api.days[0].status == "none" and api.days[0].uptime is None
    assert view.uptime(api, 1) == 1.0
    badge = render.uptime_badge(view, api, 3).decode()
    assert "uptime 3d" in badge and "96.67%" in badge
    assert "operational" in render.status_badge(api).decode()


def test_config_short_form_pages_and_clear_errors() -> None:
    config = Config.model_validate(
        {
            "status_page": {"title": "Ours", "components": [{"name": "API"}]},
            "status_pages": [{"slug": "team", "title": "Team", "auto_incidents": False}],
        }
    )
    assert [p.slug for p in config.pages] == ["main", "team"]
    assert config.pages[1].auto_incidents == "off"  # YAML's bare `off`
    bad = [
        ({"status_pages": [{"slug": "a"}, {"slug": "a"}]}, "status_pages[1].slug"),
        ({"status_pages": [{"slug": "x"}, {"slug": "history"}]}, "reserved"),
        ({"status_pages": [{"colours": {"brand": "red"}}]}, "colour"),
        ({"status_pages": [{"logo": "javascript:alert(1)"}]}, "logo"),
        ({"status_pages": [{"components": [{"name": "A"}, {"name": "A"}]}]}, "components[1]"),
        ({"status_pages": [{"auto_incidents": "always"}]}, "auto_incidents"),
        ({"status_pages": [{"domain": "not a host"}]}, "domain"),
    ]
    for document, needle in bad:
        with pytest.raises(ValidationError) as caught:
            Config.model_validate(document)
        assert needle in str(caught.value), (document, str(caught.value))


async def test_without_a_status_page_the_paths_go_on_to_the_app() -> None:
    from types import SimpleNamespace

    from watchkeeper.http.status_pages import StatusPageMiddleware

    sent: list[dict[str, object]] = []
    reached: list[str] = []

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        reached.append(str(scope["path"]))

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    async def receive() -> dict[str, object]:
        return {"type": "http.request"}

    pages = SimpleNamespace(builds=0, first=None, domains={}, snapshot=lambda slug=None: None)
    middleware = StatusPageMiddleware(app, lambda: pages)  # type: ignore[arg-type]
    scope = {"type": "http", "method": "GET", "path": "/status", "headers": [], "query_string": b""}
    await middleware(scope, receive, send)
    assert sent[0]["status"] == 503 and reached == []  # not built yet: starting
    pages.builds = 1
    await middleware(scope, receive, send)
    await middleware({**scope, "path": "/status/summary.json"}, receive, send)
    assert reached == ["/status", "/status/summary.json"]  # none configured: the app's 404
