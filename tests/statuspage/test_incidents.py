"""Incidents over `/api/v1/incidents`: the lifecycle shows on the page, in the JSON and in
valid Atom and RSS feeds; subscribers' sink hears of it; Markdown is rendered without HTML."""

from __future__ import annotations

import asyncio
import contextlib
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.auth import bearer, token_for
from watchkeeper.app import Runtime
from watchkeeper.config.loader import Config
from watchkeeper.http.factory import create_app
from watchkeeper.http.roles import Role
from watchkeeper.statuspage.events import StatusEvent

ATOM = "{http://www.w3.org/2005/Atom}"


class Sink:
    def __init__(self) -> None:
        self.events: list[StatusEvent] = []

    async def publish(self, event: StatusEvent) -> None:
        self.events.append(event)


@contextlib.asynccontextmanager
async def started(
    config: dict[str, Any], sink: Sink
) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    cfg = Config.model_validate(config)
    runtime = Runtime(cfg, status_sink=sink)
    await runtime.start()
    try:
        app = create_app(cfg, runtime=runtime)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://wk",
            headers=bearer(await token_for(runtime, Role.OPERATOR)),
        ) as client:
            yield runtime, client
    finally:
        await runtime.stop()


def base_config(tmp_path: Path) -> dict[str, Any]:
    return {
        "storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"},
        "server": {"public_url": "https://status.example.com"},
        "status_pages": [
            {
                "slug": "main",
                "title": "Example status",
                "components": [{"name": "API"}, {"name": "Web", "description": "Website"}],
            },
            {
                "slug": "internal",
                "title": "Internal",
                "components": [{"name": "Builds"}],
                "noindex": True,
                "domain": "internal.example.com",
            },
        ],
    }


@pytest.fixture
async def sink() -> Sink:
    return Sink()


@pytest.fixture
async def svc(tmp_path: Path, sink: Sink) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    async with started(base_config(tmp_path), sink) as pair:
        yield pair


async def test_lifecycle_shows_on_the_page_json_and_feeds_and_reaches_the_sink(
    svc: tuple[Runtime, httpx.AsyncClient], sink: Sink
) -> None:
    _runtime, client = svc
    created = await client.post(
        "/api/v1/incidents",
        json={
            "name": "Login failures",
            "impact": "major",
            "components": {"API": "partial_outage"},
            "body": "Some logins **fail**. <script>alert(1)</script> [x](javascript:alert(1))",
        },
    )
    assert created.status_code == 201, created.text
    incident = created.json()
    iid = incident["id"]
    assert incident["status"] == "investigating" and incident["components"] == {
        "API": "partial_outage"
    }

    page = (await client.get("/status")).text
    assert "Login failures" in page and "Partial System Outage" in page
    assert "<strong>fail</strong>" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert 'href="javascript:' not in page
    assert '<a class="subscribe" href="/status/subscribe">Subscribe to updates</a>' in page
    unresolved = (await client.get("/status/incidents/unresolved.json")).json()["incidents"]
    assert [i["id"] for i in unresolved] == [iid]
    assert unresolved[0]["shortlink"] == f"https://status.example.com/status/incidents/{iid}"

    identified = await client.patch(
        f"/api/v1/incidents/{iid}", json={"status": "identified", "body": "Now identified."}
    )
    assert identified.status_code == 200, identified.text
    monitoring = await client.post(
        f"/api/v1/incidents/{iid}/updates", json={"status": "monitoring", "body": "Now monitoring."}
    )
    assert monitoring.status_code == 201, monitoring.text
    assert monitoring.json()["incident_updates"][0]["body"] == "Now monitoring."
    assert (await client.post(f"/api/v1/incidents/{iid}/resolve", json={})).status_code == 200
    again = await client.post(f"/api/v1/incidents/{iid}/resolve", json={})
    assert again.status_code == 409
    reopened = await client.patch(f"/api/v1/incidents/{iid}", json={"status": "investigating"})
    assert reopened.status_code == 409
    postmortem = await client.patch(
        f"/api/v1/incidents/{iid}", json={"status": "postmortem", "postmortem": "Root cause: DNS."}
    )
    assert postmortem.status_code == 200, postmortem.text

    detail = (await client.get(f"/api/v1/incidents/{iid}")).json()
    assert [u["status"] for u in detail["incident_updates"]] == [
        "postmortem",
        "resolved",
        "monitoring",
        "identified",
        "investigating",
    ]
    assert detail["monitoring_at"] and detail["resolved_at"]
    resolved_update = detail["incident_updates"][1]
    assert resolved_update["affected_components"] == [
        {"name": "API", "old_status": "partial_outage", "new_status": "operational"}
    ]

    summary = (await client.get("/status/summary.json")).json()
    assert summary["incidents"] == [] and summary["status"]["indicator"] == "none"
    listed = (await client.get("/status/incidents.json")).json()["incidents"]
    assert listed[0]["status"] == "postmortem" and len(listed[0]["incident_updates"]) == 5

    atom = await client.get("/status/feed.atom")
    assert atom.headers["content-type"].startswith("application/atom+xml")
    feed = ET.fromstring(atom.content)
    assert feed.tag == f"{ATOM}feed"
    for required in ("id", "title", "updated", "author"):
        assert feed.find(f"{ATOM}{required}") is not None, required
    (entry,) = feed.findall(f"{ATOM}entry")
    for required in ("id", "title", "updated", "link", "content"):
        assert entry.find(f"{ATOM}{required}") is not None, required
    assert entry.findtext(f"{ATOM}title") == "Login failures"
    assert "<strong>fail</strong>" in (entry.findtext(f"{ATOM}content") or "")
    rss = ET.fromstring((await client.get("/status/feed.rss")).content)
    (item,) = rss.findall("channel/item")
    assert item.findtext("title") == "Login failures" and item.findtext("pubDate")

    history = (await client.get("/status/history")).text
    assert "Login failures" in history and "Root cause: DNS." in history
    one = await client.get(f"/status/incidents/{iid}")
    assert one.status_code == 200 and "Now identified." in one.text

    kinds = [(e.kind, e.status) for e in sink.events if e.subject_id == iid]
    assert kinds == [
        ("incident.created", "investigating"),
        ("incident.updated", "identified"),
        ("incident.updated", "monitoring"),
        ("incident.resolved", "resolved"),
        ("incident.updated", "postmortem"),
    ]
    first = sink.events[0]
    assert first.page == "main" and first.components == ("API",) and first.impact == "major"
    assert first.url == f"https://status.example.com/status/incidents/{iid}"

    audit = (
        await client.get("/api/v1/audit", headers=bearer(await token_for(_runtime, Role.ADMIN)))
    ).json()
    actions = [e["action"] for e in audit["items"]]
    assert "POST /api/v1/incidents" in actions
    assert "POST /api/v1/incidents/{incident_id}/resolve" in actions


async def test_drafts_stay_hidden_until_published_and_bad_input_names_the_field(
    svc: tuple[Runtime, httpx.AsyncClient], sink: Sink
) -> None:
    _runtime, client = svc
    draft = await client.post(
        "/api/v1/incidents",
        json={
            "name": "Builds slow",
            "page": "internal",
            "draft": True,
            "impact": "minor",
            "components": {"Builds": "degraded_performance"},
        },
    )
    assert draft.status_code == 201, draft.text
    iid = draft.json()["id"]
    doc = (await client.get("/status/internal/summary.json")).json()
    assert doc["incidents"] == [] and doc["components"][0]["status"] == "operational"
    assert sink.events == []
    published = await client.patch(f"/api/v1/incidents/{iid}", json={"draft": False})
    assert published.status_code == 200
    doc = (await client.get("/status/internal/summary.json")).json()
    assert [i["name"] for i in doc["incidents"]] == ["Builds slow"]
    assert doc["components"][0]["status"] == "degraded_performance"
    assert [e.kind for e in sink.events] == ["incident.created"]
    # The other page is untouched; the internal one is also served at / for its domain.
    assert (await client.get("/status/summary.json")).json()["incidents"] == []
    by_host = await client.get("/", headers={"Host": "internal.example.com"})
    assert by_host.status_code == 200 and "Builds slow" in by_host.text
    assert by_host.headers["x-robots-tag"] == "noindex, nofollow"
    assert '<meta name="robots" content="noindex' in by_host.text

    unknown = await client.post(
        "/api/v1/incidents", json={"name": "x", "components": {"Nope": "major_outage"}}
    )
    assert unknown.status_code == 422 and "Nope" in unknown.text
    bad = await client.post("/api/v1/incidents", json={"name": "x", "impact": "huge"})
    assert bad.status_code == 422 and "impact" in bad.text
    no_page = await client.post("/api/v1/incidents", json={"name": "x", "page": "nope"})
    assert no_page.status_code == 422 and "page" in no_page.text
    assert (await client.get("/api/v1/incidents/nope")).status_code == 404
    viewer = bearer(await token_for(_runtime, Role.VIEWER, name="v"))
    refused = await client.post("/api/v1/incidents", json={"name": "x"}, headers=viewer)
    assert refused.status_code == 403


async def test_a_firing_critical_alert_on_a_component_opens_one_draft_incident(
    tmp_path: Path, sink: Sink
) -> None:
    config = base_config(tmp_path)
    config["status_pages"][0]["auto_incidents"] = "draft"
    async with started(config, sink) as (runtime, client):
        alert = {
            "name": "ApiDown",
            "severity": "critical",
            "summary": "API is down",
            "labels": {"component": "API"},
        }
        posted = await client.post(
            "/api/v1/alerts", json=alert, headers=bearer(await token_for(runtime, Role.ADMIN))
        )
        assert posted.status_code in (200, 201), posted.text
        # The status page loop opens it once the dispatcher has seen the alert.
        pages = runtime.status_pages
        build = pages.builds
        for _ in range(20):
            made, _ = await runtime.services.incidents.list_incidents()
            if made:
                break
            build = await pages.wait_built(build, timeout=5)
        assert [(i.name, i.draft, i.components) for i in made] == [
            ("API: API is down", True, {"API": "major_outage"})
        ]
        assert await runtime.services.incidents.open_for_alerts() == []  # once per alert
        listed = (await client.get("/api/v1/incidents")).json()["items"]
        assert [i["source"] for i in listed] == ["auto"]
        assert (await client.get("/status/summary.json")).json()["incidents"] == []


async def summary_once(
    client: httpx.AsyncClient, pages: Any, slug: str, ok: Callable[[httpx.Response], bool]
) -> httpx.Response:
    """The page's summary.json once `ok` holds: a build that began before a change may end
    after it without it, so each later build is another chance (5 s in all)."""
    async with asyncio.timeout(5):
        while True:
            build = pages.builds  # before the read: a build ending meanwhile is not missed
            response = await client.get(f"/status/{slug}/summary.json")
            if ok(response):
                return response
            await pages.wait_built(build, timeout=5)


async def test_status_pages_are_managed_over_the_api_by_admins(
    svc: tuple[Runtime, httpx.AsyncClient],
) -> None:
    runtime, client = svc
    admin = bearer(await token_for(runtime, Role.ADMIN, name="admin"))
    page = {"slug": "partners", "title": "Partner status", "components": [{"name": "Feeds"}]}
    refused = await client.post("/api/v1/status-pages", json=page)  # an operator
    assert refused.status_code == 403
    pages = runtime.status_pages
    created = await client.post("/api/v1/status-pages", json=page, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["source"] == "api" and created.json()["name"] == "partners"
    # The pages are rebuilt on the change.
    served = await summary_once(client, pages, "partners", lambda r: r.status_code == 200)
    summary = served.json()
    assert summary["page"]["name"] == "Partner status"
    assert [c["name"] for c in summary["components"]] == ["Feeds"]
    listed = (await client.get("/api/v1/status-pages")).json()["items"]
    assert [(p["name"], p["source"]) for p in listed] == [
        ("main", "config"),
        ("internal", "config"),
        ("partners", "api"),
    ]
    incident = await client.post(
        "/api/v1/incidents",
        json={
            "name": "Feed delays",
            "page": "partners",
            "components": {"Feeds": "degraded_performance"},
        },
    )
    assert incident.status_code == 201, incident.text
    replaced = await client.put(
        "/api/v1/status-pages/partners", json={**page, "title": "Partners"}, headers=admin
    )
    assert replaced.status_code == 200, replaced.text
    renamed = await summary_once(
        client, pages, "partners", lambda r: r.json()["page"]["name"] != "Partner status"
    )
    summary = renamed.json()
    assert summary["page"]["name"] == "Partners"
    assert [i["name"] for i in summary["incidents"]] == ["Feed delays"]

    reserved = await client.post("/api/v1/status-pages", json={"slug": "history"}, headers=admin)
    assert reserved.status_code == 422 and "slug" in reserved.text
    taken = await client.post("/api/v1/status-pages", json={"slug": "main"}, headers=admin)
    assert taken.status_code == 409
    config_one = await client.delete("/api/v1/status-pages/main", headers=admin)
    assert config_one.status_code == 409
    gone = await client.delete("/api/v1/status-pages/partners", headers=admin)
    assert gone.status_code == 204
    await summary_once(client, pages, "partners", lambda r: r.status_code == 404)


async def test_operators_open_and_update_incidents_from_the_dashboard(
    svc: tuple[Runtime, httpx.AsyncClient], sink: Sink
) -> None:
    from tests.web.test_dashboard import PASSWORD, csrf_of, log_in
    from watchkeeper.auth.users import create_user

    runtime, _ = svc
    await create_user(runtime.db, "olga", PASSWORD, Role.OPERATOR, runtime.clock.now())
    app = create_app(runtime.config, runtime=runtime)
    # public_url is https: the session cookie is Secure, so the browser speaks https.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://status.example.com"
    ) as browser:
        assert (await log_in(browser, "olga")).status_code == 303
        page = await browser.get("/dashboard/incidents")
        assert page.status_code == 200 and "Open an incident" in page.text
        opened = await browser.post(
            "/dashboard/incidents",
            data={
                "csrf_token": csrf_of(page),
                "page": "main",
                "name": "Checkout errors",
                "impact": "major",
                "components": ["API"],
                "body": "Looking.",
            },
        )
        assert opened.status_code == 303 and "incident%20opened" in opened.headers["location"]
        (incident,) = (await runtime.services.incidents.list_incidents())[0]
        assert incident.components == {"API": "partial_outage"}
        page = await browser.get("/dashboard/incidents")
        assert f'data-incident="{incident.id}"' in page.text
        resolved = await browser.post(
            f"/dashboard/incidents/{incident.id}/update",
            data={"csrf_token": csrf_of(page), "status": "resolved", "body": "Fixed."},
        )
        assert resolved.status_code == 303
        forged = await browser.post(
            f"/dashboard/incidents/{incident.id}/update", data={"status": "monitoring"}
        )
        assert forged.status_code == 403
    done = await runtime.services.incidents.get(incident.id)
    assert done.status == "resolved" and done.updates[0].body == "Fixed."
    assert [e.kind for e in sink.events] == ["incident.created", "incident.resolved"]
