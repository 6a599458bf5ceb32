"""Pings answered before the router (`PingPath`): still inside the HTTP edge (security
headers, body limits), the same answers as the API routes, and a ping whose client leaves
while sending its log is not recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.service import Service, running
from watchkeeper.http.factory import create_app
from watchkeeper.store.heartbeats import load_heartbeats

UUID = "5d0b3c52-8f47-4d0e-9a51-2f6a1c7e9b20"


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    config = {
        "storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"},
        "server": {"max_body_size": "2KiB"},
        "checks": [{"name": "backup", "type": "heartbeat", "period": "1d", "uuid": UUID}],
    }
    async with running(config) as service:
        yield service


def anonymous(service: Service, base_url: str = "http://wk") -> httpx.AsyncClient:
    app = create_app(service.runtime.config, runtime=service.runtime)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


async def stored_pings(service: Service) -> int:
    return (await load_heartbeats(service.runtime.db))["backup"].ping_count


async def test_pings_carry_the_edge_headers_and_are_stored(service: Service) -> None:
    async with anonymous(service, base_url="https://wk") as client:
        answers = [
            await client.get(f"/ping/{UUID}"),
            await client.head(f"/ping/{UUID}/start"),
            await client.post(f"/ping/{UUID}/0", content=b"done"),
        ]
    for response in answers:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        assert response.headers["access-control-allow-origin"] == "*"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["strict-transport-security"] == "max-age=31536000"
        assert "content-security-policy" not in response.headers
    assert [r.content for r in answers] == [b"OK", b"", b"OK"]
    assert answers[1].headers["content-length"] == "2"  # HEAD: GET's headers, no body
    assert await stored_pings(service) == 3
    (latest, *_) = (await service.client.get("/api/v1/checks/backup/results")).json()
    assert latest["details"]["log"] == "done"


async def test_a_ping_body_over_the_limit_is_refused_and_not_stored(service: Service) -> None:
    async def streamed() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"x" * 1024

    async with anonymous(service) as client:
        declared = await client.post(f"/ping/{UUID}", content=b"x" * 3000)
        chunked = await client.post(f"/ping/{UUID}/fail", content=streamed())
    for response in (declared, chunked):
        assert response.status_code == 413
        assert "server.max_body_size" in response.json()["detail"]
    assert await stored_pings(service) == 0


async def test_a_ping_whose_client_leaves_while_sending_its_log_is_not_stored(
    service: Service,
) -> None:
    app = create_app(service.runtime.config, runtime=service.runtime)
    messages = [
        {"type": "http.request", "body": b"partial log", "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"/ping/{UUID}",
        "raw_path": f"/ping/{UUID}".encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"wk"), (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }
    await app(scope, receive, send)
    assert sent == []  # nobody to answer
    assert await stored_pings(service) == 0
    assert service.runtime.heartbeats.record("backup").ping_count == 0  # type: ignore[union-attr]


async def test_other_methods_and_shapes_get_the_routers_answers(service: Service) -> None:
    async with anonymous(service) as client:
        assert (await client.put(f"/ping/{UUID}")).status_code == 405
        assert (await client.get(f"/ping/{UUID}/a/b/c")).status_code == 404
        assert (await client.get("/ping/")).status_code == 404
        unknown = await client.get("/ping/nope")
    assert (unknown.status_code, unknown.text) == (404, "not found")
    assert await stored_pings(service) == 0
