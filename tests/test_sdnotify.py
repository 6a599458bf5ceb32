"""systemd's notify protocol, against a socket bound here the way systemd binds
NOTIFY_SOCKET: readiness, watchdog keep-alives only while the core loops run, stopping."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import uuid
from pathlib import Path
from types import TracebackType

import aiohttp
import pytest

from tests.support.process import WatchkeeperProcess
from tests.support.servers import wait_until
from tests.support.service import running
from watchkeeper.core.sdnotify import Notifier, notify_address, watchdog_interval


class NotifySocket:
    """The receiving end of NOTIFY_SOCKET: one message per datagram, awaited with timeouts."""

    def __init__(self, address: str | bytes) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.setblocking(False)
        self.seen: list[str] = []

    def __enter__(self) -> NotifySocket:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.sock.close()

    async def next(self, timeout: float = 10) -> str:
        async with asyncio.timeout(timeout):
            data = await asyncio.get_running_loop().sock_recv(self.sock, 4096)
        self.seen.append(data.decode())
        return self.seen[-1]

    async def until(self, line: str, timeout: float = 20) -> str:
        """Read messages until one holds `line`; return that message."""
        async with asyncio.timeout(timeout):
            while line not in (message := await self.next(timeout)).splitlines():
                pass
        return message

    def drain(self) -> list[str]:
        """Messages already queued (the sender has exited, so nothing is in flight)."""
        while True:
            try:
                self.seen.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return self.seen


def lines(messages: list[str]) -> list[str]:
    return [line for message in messages for line in message.splitlines()]


def test_notify_socket_addresses_include_the_abstract_namespace() -> None:
    assert notify_address("/run/systemd/notify") == "/run/systemd/notify"
    assert notify_address("@wk/notify") == b"\0wk/notify"
    assert notify_address("") is None
    assert notify_address("vsock:2:1234") is None


def test_watchdog_keep_alive_is_due_at_half_of_watchdog_usec_for_this_process_only() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}, pid=42) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}, pid=42) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "7"}, pid=42) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}, pid=42) is None
    assert watchdog_interval({}, pid=42) is None


async def test_keep_alives_pause_while_a_core_loop_is_stalled(tmp_path: Path) -> None:
    with NotifySocket(str(tmp_path / "notify")) as notify:
        env = {"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "20000"}
        notifier = Notifier(env)
        problem: list[str] = []
        notifier.ready("watching 0 checks", lambda: problem[0] if problem else None)
        try:
            assert await notify.next() == "READY=1\nSTATUS=watching 0 checks"
            assert await notify.next() == "WATCHDOG=1"

            problem.append("outbox loop ended")
            await notify.until("STATUS=stalled: outbox loop ended")
            # Every later tick while stalled says so and sends no keep-alive.
            assert await notify.next() == "STATUS=stalled: outbox loop ended"
            assert await notify.next() == "STATUS=stalled: outbox loop ended"

            problem.clear()
            assert await notify.next() == "WATCHDOG=1\nSTATUS=running"
        finally:
            await notifier.stopping()
        assert notify.drain()[-1] == "STOPPING=1\nSTATUS=stopping"


async def test_without_notify_socket_nothing_is_sent_and_no_task_runs() -> None:
    notifier = Notifier({"WATCHDOG_USEC": "20000"})
    assert not notifier.enabled and not notifier.send("READY=1")
    notifier.ready("up", lambda: None)
    assert notifier._watchdog is None
    await notifier.stopping()


async def test_runtime_reports_a_core_loop_that_ended(tmp_path: Path) -> None:
    async with running({"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}}) as service:
        runtime = service.runtime
        assert runtime.stalled() is None
        assert runtime.outbox is not None
        runtime.outbox.stop()
        await wait_until(runtime.stalled, 10, "the outbox loop to end")
        assert runtime.stalled() == "outbox loop ended"


async def test_service_under_systemd_is_ready_once_it_serves_and_stops_keep_alives_on_sigterm(
    tmp_path: Path,
) -> None:
    name = f"wk-test-{uuid.uuid4().hex}"
    with NotifySocket(b"\0" + name.encode()) as notify:
        wk = WatchkeeperProcess(
            None, tmp_path, env={"NOTIFY_SOCKET": f"@{name}", "WATCHDOG_USEC": "200000"}
        )
        started = asyncio.create_task(wk.start(timeout=60))
        try:
            ready = await notify.until("READY=1", timeout=60)
            assert wk.proc is not None
            # Freeze it at once: if READY=1 came before the socket listened, it cannot
            # start listening now. A listening socket accepts into its backlog meanwhile.
            os.kill(wk.proc.pid, signal.SIGSTOP)
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", wk.port), timeout=5
                )
                writer.close()
            finally:
                os.kill(wk.proc.pid, signal.SIGCONT)
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"{wk.url}/health/ready", timeout=aiohttp.ClientTimeout(10)) as answer,
            ):
                assert answer.status == 200
            assert "STATUS=watching 2 checks on http://127.0.0.1:" in ready
            await started

            for _ in range(3):
                await notify.until("WATCHDOG=1", timeout=10)
        finally:
            if not started.done():
                started.cancel()
            code = await wk.stop(signal.SIGTERM, timeout=30)
        assert code == 0, wk.log_text()

        sent = lines(notify.drain())
        assert "WATCHDOG=1" not in sent[: sent.index("READY=1")]
        stopping = sent.index("STOPPING=1")
        assert "WATCHDOG=1" not in sent[stopping:]
        assert sent[-2:] == ["STOPPING=1", "STATUS=stopping"]


async def test_a_service_that_cannot_listen_never_says_ready(tmp_path: Path) -> None:
    # Its runtime starts (the app's lifespan) before uvicorn binds: READY=1 must wait for both.
    with socket.socket() as taken, NotifySocket(str(tmp_path / "notify")) as notify:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "watchkeeper",
            "run",
            "--listen",
            f"127.0.0.1:{port}",
            cwd=tmp_path,
            env={**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify")},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(60):
            _, stderr = await proc.communicate()
        assert proc.returncode != 0
        assert b"address already in use" in stderr
        assert "READY=1" not in lines(notify.drain())


@pytest.mark.parametrize("value", ["@", "relative/path"])
def test_unusable_notify_socket_values_turn_notification_off(value: str) -> None:
    assert not Notifier({"NOTIFY_SOCKET": value}).enabled
