"""Limits before work: body size, authentication before the body, JSON nesting depth.

The 50 MB cases run against a real `watchkeeper run` and send from a raw socket, so what is
measured is what a client on the network can do: the answer, the service's memory, and how
fast `/health/live` answers while it happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import psutil
import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.auth import bearer, cli_token
from tests.support.process import WatchkeeperProcess
from tests.support.service import Service, running
from watchkeeper.http.edge.json_depth import json_depth
from watchkeeper.http.factory import create_app
from watchkeeper.http.roles import Role

MB = 1024 * 1024
BIG = 50 * MB
ALERT = b'{"labels":{"alertname":"big","instance":"host-0001"}}'
"""One alert of the hostile batch: a valid JSON list of them, so today's code parses it all."""


def alert_batch(total: int) -> AsyncIterator[bytes]:
    """A JSON list of alerts exactly `total` bytes long, made as it is sent (64 KiB pieces)."""

    async def pieces() -> AsyncIterator[bytes]:
        per = len(ALERT) + 1
        count = (total - 2 + 1) // per  # "[" + count * "ALERT," - last "," + "]"
        padding = total - (2 + count * per - 1)
        yield b"[" + b" " * padding
        block = (ALERT + b",") * 1024
        left = count
        while left > 1024:
            yield block
            left -= 1024
        yield (ALERT + b",") * (left - 1) + ALERT + b"]"

    return pieces()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int
    """Body bytes the client managed to send before the answer (and the close) came."""


async def raw_post(
    port: int,
    path: str,
    total: int,
    *,
    chunked: bool,
    headers: dict[str, str] | None = None,
) -> Answer:
    """POST a `total`-byte JSON body from a plain socket, reading the answer while sending.

    A plain socket, not asyncio's streams: when the service answers early and closes, the
    kernel resets the connection under the bytes still coming, and a stream transport would
    drop the answer already received along with it; `recv` still returns it."""
    loop = asyncio.get_running_loop()
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setblocking(False)
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}")
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    sent = 0

    async def pump() -> None:
        nonlocal sent
        with contextlib.suppress(ConnectionError):
            await loop.sock_sendall(sock, ("\r\n".join(head) + "\r\n\r\n").encode())
            async for piece in alert_batch(total):
                await loop.sock_sendall(
                    sock, b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
                )
                sent += len(piece)
            if chunked:
                await loop.sock_sendall(sock, b"0\r\n\r\n")

    async def answer() -> tuple[int, dict[str, str], bytes]:
        data = b""
        while b"\r\n\r\n" not in data:
            data += await loop.sock_recv(sock, 65536) or b"!closed before an answer"
        head_bytes, _, body = data.partition(b"\r\n\r\n")
        status_line, *lines = head_bytes.decode().split("\r\n")
        found = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
        while len(body) < int(found.get("content-length", "0")):
            body += await loop.sock_recv(sock, 65536) or b"!closed mid-answer"
        return int(status_line.split()[1]), found, body

    sending = asyncio.create_task(pump())
    try:
        async with asyncio.timeout(60):
            status, found, body = await answer()
        async with asyncio.timeout(60):
            await sending  # ends with the connection, at the latest when all is sent
    finally:
        sending.cancel()
        sock.close()
    return Answer(status, found, body, sent)


@dataclass
class Watched:
    answer: Answer
    rss_growth: int
    """From before the request to the peak while it was handled."""
    slowest_live_s: float


def peak_rss(pid: int) -> int:
    """The process's peak resident memory since `reset_peak` (Linux's VmHWM): memory used
    for a moment and given back still counts."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # 5: reset the peak to the current RSS


async def while_probing(wk: WatchkeeperProcess, send: Coroutine[Any, Any, Answer]) -> Watched:
    """Run `send` while asking `/health/live` again and again; how the service fared."""
    assert wk.proc is not None
    before = psutil.Process(wk.proc.pid).memory_info().rss
    reset_peak(wk.proc.pid)
    latencies: list[float] = []
    async with aiohttp.ClientSession() as http:

        async def probe() -> None:
            start = time.perf_counter()
            async with http.get(f"{wk.url}/health/live", timeout=aiohttp.ClientTimeout(10)) as r:
                assert r.status == 200
            latencies.append(time.perf_counter() - start)

        await probe()  # the connection is open before the body starts
        latencies.clear()
        task = asyncio.ensure_future(send)
        while not task.done() or len(latencies) < 3:
            await probe()
        answer = await task
    return Watched(answer, peak_rss(wk.proc.pid) - before, max(latencies))


def problem(answer: Answer, status: int) -> dict[str, object]:
    assert answer.status == status, (answer.status, answer.body[:500])
    assert answer.headers["content-type"] == "application/problem+json"
    document = json.loads(answer.body)
    assert document["status"] == status
    return document


@dataclass
class Served:
    wk: WatchkeeperProcess
    operator: str


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    tmp = tmp_path_factory.mktemp("limits")
    config = tmp / "watchkeeper.yaml"
    config.write_text(f"storage: {{url: 'sqlite:///{tmp / 'wk.db'}'}}\n")
    operator = await cli_token(config, cwd=tmp, role="operator")
    wk = await WatchkeeperProcess(config, tmp).start()
    try:
        yield Served(wk, operator)
    finally:
        await wk.stop()


@pytest.mark.asyncio(loop_scope="module")
async def test_an_anonymous_50_mb_body_with_its_length_is_refused_with_413_unread(
    served: Served,
) -> None:
    watched = await while_probing(
        served.wk, raw_post(served.wk.port, "/api/v1/alerts", BIG, chunked=False)
    )
    document = problem(watched.answer, 413)
    assert "10 MiB" in str(document["detail"])
    assert "server.max_alert_body_size" in str(document["detail"])
    assert watched.answer.sent < BIG  # the service closed the connection instead of reading
    assert watched.rss_growth < 20 * MB, watched.rss_growth
    assert watched.slowest_live_s < 0.1, watched.slowest_live_s


@pytest.mark.asyncio(loop_scope="module")
async def test_an_anonymous_50_mb_chunked_body_gets_its_401_before_a_byte_is_read(
    served: Served,
) -> None:
    watched = await while_probing(
        served.wk, raw_post(served.wk.port, "/api/v1/alerts", BIG, chunked=True)
    )
    problem(watched.answer, 401)
    assert watched.answer.headers["www-authenticate"].startswith("Bearer")
    assert watched.answer.sent < BIG
    assert watched.rss_growth < 20 * MB, watched.rss_growth
    assert watched.slowest_live_s < 0.1, watched.slowest_live_s


@pytest.mark.asyncio(loop_scope="module")
async def test_an_anonymous_chunked_login_is_cut_off_at_the_login_limit(served: Served) -> None:
    watched = await while_probing(
        served.wk, raw_post(served.wk.port, "/auth/login", BIG, chunked=True)
    )
    assert "64 KiB" in str(problem(watched.answer, 413)["detail"])
    assert watched.answer.sent < BIG
    assert watched.rss_growth < 20 * MB, watched.rss_growth


@pytest.mark.asyncio(loop_scope="module")
async def test_an_operators_50_mb_chunked_body_is_counted_and_refused_at_the_limit(
    served: Served,
) -> None:
    answer = await raw_post(
        served.wk.port,
        "/api/v1/alerts",
        BIG,
        chunked=True,
        headers=bearer(served.operator),
    )
    assert "10 MiB" in str(problem(answer, 413)["detail"])
    assert answer.sent < BIG
    # The service is fine afterwards, and a batch within the limit still goes in.
    assert served.wk.proc is not None and served.wk.proc.returncode is None
    async with aiohttp.ClientSession(headers=bearer(served.operator)) as http:
        batch = [{"name": "small"}]
        async with http.post(f"{served.wk.url}/api/v1/alerts", json=batch) as response:
            assert response.status < 300, await response.text()


# -- in-process: the same mechanisms for every route --------------------------------------


@pytest_asyncio.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    async with running({"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}}) as service:
        yield service


async def test_an_authenticated_body_over_the_limit_gets_413_on_its_length(
    service: Service,
) -> None:
    operator = await service.as_role(Role.OPERATOR)
    over = b"[" + b" " * MB + b"]"  # 1 MiB + 2 bytes of valid JSON
    response = await service.client.post(
        "/api/v1/silences",
        content=over,
        headers={**operator, "Content-Type": "application/json"},
    )
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "1 MiB (server.max_body_size)" in response.json()["detail"]
    assert response.json()["limit"] == MB


async def test_an_authenticated_streamed_body_over_the_limit_gets_413(service: Service) -> None:
    operator = await service.as_role(Role.OPERATOR)

    async def streamed() -> AsyncIterator[bytes]:
        for _ in range(3):  # no Content-Length: only counting can tell
            yield b" " * (MB // 2)

    response = await service.client.post(
        "/api/v1/silences",
        content=streamed(),
        headers={**operator, "Content-Type": "application/json"},
    )
    assert response.status_code == 413, response.text
    assert response.json()["limit"] == MB


async def test_a_streamed_login_form_over_64_kib_gets_413_from_the_route_reading_it(
    service: Service,
) -> None:
    async def form() -> AsyncIterator[bytes]:
        yield b"csrf_token=x&username=alice&password="
        for _ in range(100):
            yield b"a" * 1024

    app = create_app(service.runtime.config, runtime=service.runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://wk") as anonymous:
        response = await anonymous.post(
            "/dashboard/login",
            content=form(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["limit"] == 64 * 1024


async def test_a_viewer_gets_403_before_its_body_is_read(service: Service) -> None:
    viewer = await service.as_role(Role.VIEWER)
    read = 0

    async def counted() -> AsyncIterator[bytes]:
        nonlocal read
        for _ in range(4):
            read += 1
            yield b" " * 1024

    response = await service.client.post(
        "/api/v1/alerts",
        content=counted(),
        headers={**viewer, "Content-Type": "application/json"},
    )
    assert response.status_code == 403, response.text
    assert read == 0


async def test_alert_ingest_takes_batches_over_the_general_limit(service: Service) -> None:
    operator = await service.as_role(Role.OPERATOR)
    batch = [{"name": f"batch-{i}", "summary": "x" * 16_000} for i in range(100)]
    body = json.dumps(batch).encode()
    assert MB < len(body) < 10 * MB
    response = await service.client.post(
        "/api/v1/alerts", content=body, headers={**operator, "Content-Type": "application/json"}
    )
    assert response.status_code < 300, response.text


async def test_deeply_nested_json_to_the_login_is_a_400_naming_the_limit(
    service: Service,
) -> None:
    app = create_app(service.runtime.config, runtime=service.runtime)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://wk"
    ) as anonymous:
        response = await anonymous.post(
            "/auth/login",
            content=b"[" * 20_000 + b"]" * 20_000,  # within the login limit
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "deeper than 64 levels (server.max_json_depth)" in response.json()["detail"]


async def test_every_json_route_refuses_65_levels_and_takes_64(service: Service) -> None:
    operator = await service.as_role(Role.OPERATOR)
    headers = {**operator, "Content-Type": "application/json"}

    def nested(levels: int) -> dict[str, object]:
        value: object = "x"
        for _ in range(levels - 1):
            value = [value]
        return {"matchers": value}

    deep = await service.client.post("/api/v1/silences", json=nested(65), headers=headers)
    assert deep.status_code == 400, deep.text
    assert deep.json()["max_depth"] == 64
    merge = {**headers, "Content-Type": "application/merge-patch+json"}
    assert (
        await service.client.post("/api/v1/silences", json=nested(65), headers=merge)
    ).status_code == 400
    # 64 levels are parsed: what is wrong then is the silence itself (422), not its depth.
    ok = await service.client.post("/api/v1/silences", json=nested(64), headers=headers)
    assert ok.status_code == 422, ok.text
    # Brackets inside strings are text, not nesting.
    text = {"comment": "[" * 1000, "matchers": [], "starts_at": None}
    assert (
        await service.client.post("/api/v1/silences", json=text, headers=headers)
    ).status_code == 422


def nesting(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((nesting(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((nesting(v) for v in value.values()), default=0)
    return 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ ab\u00e9\n'),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(alphabet='[]{}"\\ a'), inner, max_size=3)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_the_depth_measured_without_parsing_is_the_parsed_depth(value: object) -> None:
    assert json_depth(json.dumps(value).encode()) == nesting(value)
    assert json_depth(json.dumps(value, ensure_ascii=False).encode()) == nesting(value)


async def test_the_openapi_document_declares_the_413_of_every_body(service: Service) -> None:
    document = (await service.client.get("/api/v1/openapi.json")).json()
    with_body = [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "requestBody" in operation
    ]
    assert with_body
    for path, method, operation in with_body:
        assert "413" in operation["responses"], (method, path)
