"""Alertmanager's v2 API (`/api/v2/`): the shapes of Alertmanager's published OpenAPI document,
its endsAt semantics, bearer tokens with roles, and an ingest that costs nothing when nothing
changed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
import pytest_asyncio

from tests.support.auth import bearer, token_for
from watchkeeper.app import Runtime
from watchkeeper.config.loader import Config
from watchkeeper.http.factory import create_app
from watchkeeper.http.roles import Role

SCHEMA = json.loads((Path(__file__).parent / "data" / "alertmanager_v2_schema.json").read_text())
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def conforms(instance: Any, definition: str) -> None:
    """`instance` is valid against the definition of Alertmanager's v2 schema."""
    schema = {**SCHEMA, "$ref": f"#/definitions/{definition}"}
    validator = jsonschema_rs.Draft4Validator(schema, validate_formats=True)
    errors = [str(e) for e in validator.iter_errors(instance)]
    assert errors == [], errors


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def alert(name: str, ends_at: datetime | None = None, **labels: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "labels": {"alertname": name, "severity": "warning", **labels},
        "annotations": {"summary": f"{name} is wrong", "runbook_url": "http://runbooks/x"},
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
    }
    if ends_at is not None:
        body["endsAt"] = iso(ends_at)
    return body


async def test_the_bodies_these_tests_post_are_postable_alerts() -> None:
    conforms([alert("a", T0), alert("b")], "postableAlerts")


# -- one service, its real dispatcher and clock, for the shapes and roles ---------------------


class Am:
    def __init__(self, runtime: Runtime, client: httpx.AsyncClient, tokens: dict[Role, str]):
        self.runtime, self.client, self.tokens = runtime, client, tokens

    def as_(self, role: Role) -> dict[str, str]:
        return bearer(self.tokens[role])

    async def post(
        self, alerts: list[dict[str, Any]], role: Role = Role.OPERATOR
    ) -> httpx.Response:
        return await self.client.post("/api/v2/alerts", json=alerts, headers=self.as_(role))

    async def get(self, path: str, **params: Any) -> Any:
        answer = await self.client.get(path, params=params, headers=self.as_(Role.VIEWER))
        assert answer.status_code == 200, answer.text
        return answer.json()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def am(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Am]:
    db = tmp_path_factory.mktemp("am") / "wk.db"
    config = Config.model_validate(
        {
            "storage": {"url": f"sqlite:///{db}"},
            "notifications": [{"name": "ops", "type": "webhook", "url": "http://127.0.0.1:9/"}],
            "alerting": {
                "inhibit_rules": [
                    {"source_match": ["alertname=Outage"], "target_match": ["alertname=Quiet"]}
                ]
            },
        }
    )
    runtime = Runtime(config)
    await runtime.start()
    tokens = {role: await token_for(runtime, role, name=role.value) for role in Role}
    app = create_app(config, runtime=runtime)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://wk") as c:
        yield Am(runtime, c, tokens)
    await runtime.stop()


pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_posted_alerts_come_back_as_gettable_alerts(am: Am) -> None:
    later = am.runtime.clock.now() + timedelta(hours=1)
    assert (await am.post([alert("DiskFull", later, instance="db1")])).status_code == 200
    listed = await am.get("/api/v2/alerts", filter='alertname="DiskFull"')
    conforms(listed, "gettableAlerts")
    (got,) = listed
    assert got["labels"]["instance"] == "db1" and got["labels"]["alertname"] == "DiskFull"
    assert got["annotations"]["runbook_url"] == "http://runbooks/x"
    assert got["generatorURL"] == "http://prometheus:9090/graph?g0.expr=up"
    assert datetime.fromisoformat(got["endsAt"]) == later
    assert got["status"] == {"state": "active", "silencedBy": [], "inhibitedBy": []}
    # Posted again, it is the same alert (Alertmanager's fingerprint: the label set).
    await am.post([alert("DiskFull", later, instance="db1")])
    again = await am.get("/api/v2/alerts", filter="alertname=DiskFull")
    assert [a["fingerprint"] for a in again] == [got["fingerprint"]]
    groups = await am.get("/api/v2/alerts/groups", filter="alertname=DiskFull")
    conforms(groups, "alertGroups")
    assert [len(g["alerts"]) for g in groups] == [1]


async def test_a_viewer_reads_an_operator_writes_and_nobody_gets_in_without_a_token(
    am: Am,
) -> None:
    assert (await am.post([alert("Nope")], role=Role.VIEWER)).status_code == 403
    assert (await am.client.post("/api/v2/alerts", json=[alert("Nope")])).status_code == 401
    assert (await am.client.get("/api/v2/alerts")).status_code == 401
    assert (await am.client.get("/api/v2/status", headers=am.as_(Role.VIEWER))).status_code == 200
    silence = {
        "matchers": [{"name": "a", "value": "b", "isRegex": False}],
        "startsAt": iso(T0),
        "endsAt": iso(T0 + timedelta(days=3650)),
        "createdBy": "x",
        "comment": "y",
    }
    answer = await am.client.post("/api/v2/silences", json=silence, headers=am.as_(Role.VIEWER))
    assert answer.status_code == 403
    assert await am.get("/api/v2/alerts", filter="alertname=Nope") == []


async def test_a_bad_alert_is_a_400_naming_the_field_and_nothing_is_stored(am: Am) -> None:
    body = [alert("Good"), {"labels": {}}, {"labels": {"alertname": "x"}, "endsAt": "soon"}]
    answer = await am.post(body)
    assert answer.status_code == 400, answer.text
    locations = [e["loc"] for e in answer.json()["errors"]]
    assert ["body", 1, "labels"] in locations and ["body", 2, "endsAt"] in locations
    nul = await am.post([{"labels": {"alertname": "a\u0000b"}}])
    assert nul.status_code == 400 and nul.json()["errors"][0]["loc"] == [
        "body",
        0,
        "labels",
        "alertname",
    ]
    assert await am.get("/api/v2/alerts", filter="alertname=Good") == []


async def test_a_time_given_as_a_number_is_refused_not_read_as_seconds(am: Am) -> None:
    # Lax parsing read `endsAt: 5` as 1970-01-01T00:00:05Z, which counts as unset: an alert
    # meant to end became one that never does. Alertmanager takes RFC 3339 text only.
    answer = await am.post([{"labels": {"alertname": "Num"}, "endsAt": 5, "startsAt": 1.5}])
    assert answer.status_code == 400, answer.text
    locations = [e["loc"] for e in answer.json()["errors"]]
    assert locations == [["body", 0, "startsAt"], ["body", 0, "endsAt"]]
    assert await am.get("/api/v2/alerts", filter="alertname=Num") == []


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'[{"labels": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_000 + b"}]",
        b'[{"labels": {"x": "\\u0000"}, "a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]",
    ],
    ids=["arrays", "objects", "arrays-after-a-nul"],
)
async def test_a_body_nested_100000_deep_is_a_400_from_the_parser_not_a_500(
    am: Am, raw: bytes
) -> None:
    # The edge does not measure this route's bodies (edge.json_depth: its parser bounds the
    # depth itself); the refusal must still be a 400 that says why.
    headers = {**am.as_(Role.OPERATOR), "Content-Type": "application/json"}
    answer = await am.client.post("/api/v2/alerts", content=raw, headers=headers)
    assert answer.status_code == 400, answer.text
    assert "recursion limit exceeded" in answer.json()["errors"][0]["msg"]


async def test_silences_round_trip_and_mute_matching_alerts(am: Am) -> None:
    now = am.runtime.clock.now()
    await am.post([alert("Muted", now + timedelta(hours=1), job="x")])
    body = {
        "matchers": [{"name": "alertname", "value": "Muted", "isRegex": False, "isEqual": True}],
        "startsAt": iso(now - timedelta(minutes=1)),
        "endsAt": iso(now + timedelta(hours=2)),
        "createdBy": "alice",
        "comment": "maintenance",
    }
    conforms(body, "postableSilence")
    created = await am.client.post("/api/v2/silences", json=body, headers=am.as_(Role.OPERATOR))
    assert created.status_code == 200, created.text
    conforms(created.json(), "postSilencesResponse")
    sid = created.json()["silenceID"]
    one = await am.get(f"/api/v2/silence/{sid}")
    conforms(one, "gettableSilence")
    assert one["status"]["state"] == "active" and one["createdBy"] == "alice"
    listed = await am.get("/api/v2/silences", filter="alertname=Muted")
    conforms(listed, "gettableSilences")
    assert [s["id"] for s in listed] == [sid]
    assert await am.get("/api/v2/silences", filter="alertname=Other") == []

    await am.runtime.dispatcher.dispatch_once()
    (muted,) = await am.get("/api/v2/alerts", filter="alertname=Muted")
    assert muted["status"] == {"state": "suppressed", "silencedBy": [sid], "inhibitedBy": []}
    assert await am.get("/api/v2/alerts", filter="alertname=Muted", silenced="false") == []

    # Replacing it (amtool silence update) expires the old one and names the new one.
    replaced = await am.client.post(
        "/api/v2/silences",
        json={**body, "id": sid, "comment": "longer"},
        headers=am.as_(Role.OPERATOR),
    )
    new_id = replaced.json()["silenceID"]
    assert (
        new_id != sid and (await am.get(f"/api/v2/silence/{sid}"))["status"]["state"] == "expired"
    )
    # A replacement that is refused leaves the silence it would replace alone.
    refused = await am.client.post(
        "/api/v2/silences",
        json={**body, "id": new_id, "endsAt": iso(now - timedelta(hours=1))},
        headers=am.as_(Role.OPERATOR),
    )
    assert refused.status_code == 400, refused.text
    assert (await am.get(f"/api/v2/silence/{new_id}"))["status"]["state"] == "active"
    deleted = await am.client.delete(f"/api/v2/silence/{new_id}", headers=am.as_(Role.OPERATOR))
    assert deleted.status_code == 200
    assert (await am.get(f"/api/v2/silence/{new_id}"))["status"]["state"] == "expired"
    missing = await am.client.get("/api/v2/silence/nope", headers=am.as_(Role.VIEWER))
    assert missing.status_code == 404


async def test_status_and_receivers_have_alertmanagers_shapes(am: Am) -> None:
    status = await am.get("/api/v2/status")
    conforms(status, "alertmanagerStatus")
    assert status["cluster"]["status"] == "disabled"
    receivers = await am.get("/api/v2/receivers")
    conforms(receivers, "receivers")
    assert receivers == [{"name": "ops"}]


async def test_an_inhibited_alert_is_listed_only_when_inhibited_ones_are_asked_for(am: Am) -> None:
    # The module's config has an inhibit rule: a firing `Outage` mutes `Quiet`.
    later = am.runtime.clock.now() + timedelta(hours=1)
    await am.post([alert("Outage", later), alert("Quiet", later)])
    await am.runtime.dispatcher.dispatch_once()
    (got,) = await am.get("/api/v2/alerts", filter="alertname=Quiet")
    assert got["status"]["state"] == "suppressed"
    assert got["status"]["inhibitedBy"] == ["suppressed: inhibited by Outage"]
    assert await am.get("/api/v2/alerts", filter="alertname=Quiet", inhibited="false") == []
    assert await am.get("/api/v2/alerts", filter="alertname=Outage", active="false") == []


@pytest.mark.parametrize("path", ["/api/v2/alerts", "/api/v2/alerts/groups"])
async def test_both_alert_listings_refuse_a_bad_filter_or_receiver_regex_with_a_400(
    am: Am, path: str
) -> None:
    for param, value in (("filter", "alertname=~["), ("filter", "no matcher"), ("receiver", "[")):
        answer = await am.client.get(path, params={param: value}, headers=am.as_(Role.VIEWER))
        assert answer.status_code == 400, (param, value, answer.text)
        assert f"{param}: " in answer.text
