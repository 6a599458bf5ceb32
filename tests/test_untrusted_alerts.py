"""Alerts POSTed by other systems are untrusted: text PostgreSQL cannot hold and oversized
labels, annotations or summaries are a 422 naming the field, the same in both shapes and on
both engines, and nothing of such a request is stored."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.service import running
from watchkeeper.alerting import external

LONG = 1024 * 1024  # a 1 MB text (a body over 10 MiB is a 413: server.max_alert_body_size)


def _am(**alert: Any) -> dict[str, Any]:
    """An Alertmanager webhook (version 4) carrying one alert."""
    return {
        "version": "4",
        "status": "firing",
        "receiver": "watchkeeper",
        "alerts": [{"status": "firing", "labels": {"alertname": "DiskFull"}, **alert}],
    }


def _config(db_url: str) -> dict[str, Any]:
    return {"storage": {"url": db_url}}


async def _refused(client: httpx.AsyncClient, body: Any, field: str) -> str:
    if isinstance(body, bytes):
        response = await client.post(
            "/api/v1/alerts", content=body, headers={"content-type": "application/json"}
        )
    else:
        response = await client.post("/api/v1/alerts", json=body)
    assert response.status_code == 422, (field, response.text[:500])
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["detail"].startswith(f"{field}: "), (field, problem["detail"][:500])
    assert [str(part) for part in problem["errors"][0]["loc"]] == ["body", *field.split(".")]
    return str(problem["detail"])


async def _nothing_stored(client: httpx.AsyncClient) -> None:
    listed = (await client.get("/api/v1/alerts")).json()
    assert listed["total"] == 0, listed


NUL_CASES: list[tuple[Any, str]] = [
    ({"name": "backup\x00"}, "name"),
    ({"name": "backup", "summary": "nightly \x00 failed"}, "summary"),
    ({"name": "backup", "labels": {"team": "ops\x00"}}, "labels.team"),
    ({"name": "backup", "labels": {"te\x00am": "ops"}}, "labels.te\x00am"),
    ({"name": "backup", "fingerprint": "\x00"}, "fingerprint"),
    ([{"name": "ok"}, {"name": "backup", "labels": {"team": "\x00"}}], "1.labels.team"),
    (_am(labels={"alertname": "DiskFull", "team": "ops\x00"}), "alerts.0.labels.team"),
    (_am(annotations={"summary": "disk \x00 full"}), "alerts.0.annotations.summary"),
    (_am(annotations={"description": "\x00"}), "alerts.0.annotations.description"),
    (_am(fingerprint="ab\x00"), "alerts.0.fingerprint"),
]


async def test_nul_in_any_field_of_either_shape_is_a_422_naming_it_and_nothing_is_stored(
    db_url: str,
) -> None:
    async with running(_config(db_url)) as svc:
        for body, field in NUL_CASES:
            detail = await _refused(svc.client, body, field)
            assert "NUL" in detail
        await _nothing_stored(svc.client)


async def test_text_no_engine_can_encode_is_a_422_too(db_url: str) -> None:
    # A lone surrogate is valid JSON (an escape) but not UTF-8: SQLite's driver failed on it.
    lone = b"\\ud800"
    async with running(_config(db_url)) as svc:
        await _refused(svc.client, b'{"name": "a", "summary": "x' + lone + b'"}', "summary")
        body = b'{"version": "4", "alerts": [{"status": "firing", "labels": {"a": "' + lone
        await _refused(svc.client, body + b'"}}]}', "alerts.0.labels.a")
        await _nothing_stored(svc.client)


def _labels(count: int) -> dict[str, str]:
    return {f"label{i}": "v" for i in range(count)}


OVERSIZED: list[tuple[Any, str, str]] = [
    ({"name": "a", "labels": _labels(10_000)}, "labels", "at most 64 labels"),
    (_am(labels={"alertname": "a", **_labels(10_000)}), "alerts.0.labels", "at most 64 labels"),
    (_am(annotations=_labels(65)), "alerts.0.annotations", "at most 64 annotations"),
    ({"name": "a", "summary": "x" * LONG}, "summary", "at most 16384 characters"),
    (_am(annotations={"summary": "x" * LONG}), "alerts.0.annotations.summary", "16384"),
    (_am(annotations={"description": "x" * 16385}), "alerts.0.annotations.description", ""),
    ({"name": "a", "labels": {"team": "x" * 4097}}, "labels.team", "at most 4096 characters"),
    (_am(labels={"alertname": "a", "t": "x" * 4097}), "alerts.0.labels.t", "4096"),
    ({"name": "a", "labels": {"x" * 257: "v"}}, f"labels.{'x' * 257}.[key]", "256"),
    (_am(labels={"alertname": "a", "x" * 257: "v"}), f"alerts.0.labels.{'x' * 257}.[key]", ""),
    # These two were a 500 on PostgreSQL (the name and fingerprint columns are 255 wide).
    (_am(labels={"alertname": "x" * 256}), "alerts.0.labels", "alertname: at most 200"),
    (_am(fingerprint="f" * 300), "alerts.0.fingerprint", "at most 200 characters"),
    ({"name": "x" * 201}, "name", "at most 200 characters"),
    ([{"name": "a"}] * 1001, "body", "at most 1000 alerts"),
    ({**_am(), "alerts": [_am()["alerts"][0]] * 1001}, "alerts", "at most 1000 alerts"),
]


async def test_oversized_labels_annotations_and_texts_are_a_422_in_both_shapes(
    db_url: str,
) -> None:
    async with running(_config(db_url)) as svc:
        for body, field, says in OVERSIZED:
            if field == "body":
                response = await svc.client.post("/api/v1/alerts", json=body)
                assert response.status_code == 422 and says in response.json()["detail"]
                continue
            assert says in await _refused(svc.client, body, field)
        await _nothing_stored(svc.client)


async def test_thousands_of_bad_fields_list_only_the_first_few(db_url: str) -> None:
    body = [{"name": "a", "labels": {"t": "x" * 4097}}] * 1000
    async with running(_config(db_url)) as svc:
        response = await svc.client.post("/api/v1/alerts", json=body)
        assert response.status_code == 422
        errors = response.json()["errors"]
        assert len(errors) == external.MAX_ERRORS + 1
        assert errors[-1]["msg"] == "and 980 more"
        await _nothing_stored(svc.client)


async def test_alerts_at_every_limit_are_stored_whole_in_both_shapes(db_url: str) -> None:
    labels = {f"{i:03d}" + "n" * 253: "v" * 4096 for i in range(63)}  # + severity: 64
    annotations = {f"{i:03d}" + "n" * 253: "d" * 16384 for i in range(63)}
    own = {"name": "n" * 200, "summary": "s" * 16384, "labels": labels, "fingerprint": "f" * 200}
    am = _am(
        labels={"alertname": "a" * 199, **labels},
        annotations={"summary": "m" * 16384, **annotations},
        fingerprint="g" * 200,
    )
    async with running(_config(db_url)) as svc:
        stored = []
        for body in (own, am):
            response = await svc.client.post("/api/v1/alerts", json=body)
            assert response.status_code == 200, response.text[:500]
            (alert,) = response.json()
            stored.append((await svc.client.get(f"/api/v1/alerts/{alert['id']}")).json())
        for alert in stored:
            assert {k: alert["labels"][k] for k in labels} == labels
        assert (stored[0]["name"], stored[0]["summary"]) == ("n" * 200, "s" * 16384)
        assert stored[0]["fingerprint"] == "ext:" + "f" * 200
        assert (stored[1]["name"], stored[1]["summary"]) == ("a" * 199, "m" * 16384)
        assert stored[1]["fingerprint"] == "am:" + "g" * 200
