"""Concurrent writes of one unique key from requests (an HA pair of Alertmanagers posting the
same alert, a client retrying, two admins creating one name) answer 200/201 or 409, never
5xx, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.service import Service, running
from watchkeeper.store.objects import Kind, insert_object

N = 12
AM_ALERT = {
    "version": "4",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "DiskFull", "instance": "db1:9100", "severity": "critical"},
            "annotations": {"summary": "disk full"},
            "fingerprint": "a1b2c3d4e5f60718",
        }
    ],
}


@pytest.fixture
async def service(db_url: str) -> AsyncIterator[Service]:
    async with running({"storage": {"url": db_url}}) as svc:
        yield svc


async def at_once(client: httpx.AsyncClient, path: str, body: Any) -> list[httpx.Response]:
    return await asyncio.gather(*(client.post(path, json=body) for _ in range(N)))


def statuses(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(r.status_code for r in responses)


async def test_the_same_alert_posted_concurrently_is_one_alert(service: Service) -> None:
    for body in (AM_ALERT, [{"name": "backup", "labels": {"job": "nightly"}}]):
        answers = await at_once(service.client, "/api/v1/alerts", body)
        assert statuses(answers) == {200: N}, [a.text for a in answers if a.status_code != 200]
        assert len({a.json()[0]["id"] for a in answers}) == 1
    listed = (await service.client.get("/api/v1/alerts", params={"source": "external"})).json()
    assert listed["total"] == 2


async def test_concurrent_creates_of_one_name_give_one_201_and_409s(service: Service) -> None:
    bodies = {
        "/api/v1/users": {"username": "bob", "password": "correct horse battery", "role": "viewer"},
        "/api/v1/maintenances": {
            "name": "patching",
            "starts_at": "2030-01-01T00:00:00Z",
            "ends_at": "2030-01-02T00:00:00Z",
            "checks": ["api"],
        },
        "/api/v1/checks": {"name": "ping", "type": "tcp", "host": "127.0.0.1", "port": 9},
        "/api/v1/rules": {"name": "hot", "metric": "cpu", "op": ">", "threshold": 90},
    }
    for path, body in bodies.items():
        answers = await at_once(service.client, path, body)
        assert statuses(answers) == {201: 1, 409: N - 1}, (
            path,
            [a.text for a in answers if a.status_code not in (201, 409)],
        )


async def test_nodes_sharing_a_database_cannot_both_create_one_name(service: Service) -> None:
    # Within one process the managed objects' lock serialises creates; across nodes sharing
    # PostgreSQL only the database does: the losers get KeyError (a 409), not IntegrityError.
    db, now = service.runtime.db, service.runtime.clock.now()
    results = await asyncio.gather(
        *(insert_object(db, Kind.CHECK, "shared", {"name": "shared"}, "n", now) for _ in range(N)),
        return_exceptions=True,
    )
    assert Counter(type(r).__name__ for r in results) == {"ManagedRecord": 1, "KeyError": N - 1}
