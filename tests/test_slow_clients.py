"""Slow and idle clients against a real `watchkeeper run`: connections that never finish their
request are cut off, and a flood of them cannot take the file descriptors that checks and
notifications need, so an outage is still paged and `/health/live` still answers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.auth import cli_token
from tests.support.process import WatchkeeperProcess
from tests.support.servers import FlippingTarget, WebhookReceiver, wait_until

TRICKLE = 0.2
"""Seconds between the bytes of a trickling client (the attack's pace, not a wait)."""


async def connect(port: int) -> socket.socket:
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    return sock


async def trickle(sock: socket.socket, head: bytes, then: bytes) -> None:
    """Send `head`, then one byte of `then` every TRICKLE seconds until the service hangs up."""
    loop = asyncio.get_running_loop()
    with contextlib.suppress(OSError):
        await loop.sock_sendall(sock, head)
        for i in range(len(then)):
            await asyncio.sleep(TRICKLE)
            await loop.sock_sendall(sock, then[i : i + 1])


async def until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the service sends until it closes the connection."""
    loop = asyncio.get_running_loop()
    data = b""
    async with asyncio.timeout(timeout):
        while True:
            try:
                piece = await loop.sock_recv(sock, 65536)
            except ConnectionResetError:
                return data
            if not piece:
                return data
            data += piece


@pytest.fixture
async def quick(tmp_path: Path) -> AsyncIterator[WatchkeeperProcess]:
    config = tmp_path / "watchkeeper.yaml"
    config.write_text(
        f"storage: {{url: 'sqlite:///{tmp_path / 'wk.db'}'}}\n"
        "server: {request_read_timeout: 1s}\n",
        encoding="utf-8",
    )
    wk = await WatchkeeperProcess(config, tmp_path).start()
    try:
        yield wk
    finally:
        await wk.stop()


async def test_clients_that_never_finish_their_request_are_cut_off(
    quick: WatchkeeperProcess,
) -> None:
    silent = await connect(quick.port)
    headers = await connect(quick.port)
    body = await connect(quick.port)
    started = time.monotonic()
    senders = [
        asyncio.create_task(
            trickle(headers, b"GET /health/live HTTP/1.1\r\n", b"X-A: b\r\n" * 200)
        ),
        asyncio.create_task(
            trickle(
                body,
                b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000\r\n\r\n",
                b"x" * 1000,
            )
        ),
    ]
    try:
        # The trickles would take 200 and 40 seconds; the service gives each 1 s.
        answers = [await until_closed(s, 15) for s in (silent, headers, body)]
    finally:
        for task in senders:
            task.cancel()
        for s in (silent, headers, body):
            s.close()
    assert time.monotonic() - started < 10
    silent_answer, headers_answer, _ = answers
    for answer in (silent_answer, headers_answer):
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert b"application/problem+json" in answer
        assert b"request_read_timeout" in answer
    async with aiohttp.ClientSession() as http, http.get(f"{quick.url}/health/live") as r:
        assert r.status == 200, "the service is fine afterwards"
    assert "Traceback" not in quick.log_text()


def write_config(tmp_path: Path, target: FlippingTarget, receiver: WebhookReceiver) -> Path:
    config = tmp_path / "watchkeeper.yaml"
    config.write_text(
        f"""
storage: {{url: "sqlite:///{tmp_path / "wk.db"}"}}
delivery: {{backoff_initial: 200ms, backoff_max: 1s}}
checks:
  - {{name: api, type: http, url: "{target.url}/health", interval: 1s, timeout: 2s}}
notifications:
  - {{name: ops, type: webhook, url: "{receiver.hook_url}"}}
""",
        encoding="utf-8",
    )
    return config


async def test_a_connection_flood_cannot_stop_paging_or_liveness(
    tmp_path: Path, target: FlippingTarget, receiver: WebhookReceiver
) -> None:
    """600 idle connections against a service allowed 256 open files (the default read timeout,
    30 s, outlasts the test): before, they took every descriptor, so the check could not
    connect, the page could not be sent and `/health/live` went unanswered."""
    config = write_config(tmp_path, target, receiver)
    token = await cli_token(config, cwd=tmp_path)
    wk = await WatchkeeperProcess(config, tmp_path, token=token, open_files=256).start()
    flood: list[socket.socket] = []
    try:
        await wait_until(lambda: _status(wk, "api", "up"), 15, "the check up before the flood")
        for _ in range(600):
            flood.append(await connect(wk.port))

        target.status = 500
        await receiver.wait_for(
            lambda r: r.accepted("alert.firing"), 20, "alert.firing during the flood"
        )
        async with aiohttp.ClientSession() as http:
            started = time.monotonic()
            async with http.get(f"{wk.url}/health/live", timeout=aiohttp.ClientTimeout(10)) as r:
                assert r.status == 200
            assert time.monotonic() - started < 5
        assert "Too many open files" not in wk.log_text()
    finally:
        for s in flood:
            s.close()
        await wk.stop()


async def _status(wk: WatchkeeperProcess, name: str, status: str) -> bool:
    return str((await wk.get(f"/api/v1/checks/{name}"))["status"]) == status
