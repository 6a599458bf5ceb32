"""The `tcp` check against real loopback listeners."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pydantic import ValidationError

from watchkeeper.checks import CheckContext, build_check
from watchkeeper.checks.tcp import TcpCheck, TcpCheckConfig
from watchkeeper.core.domain import Status


@pytest.fixture
async def listening_port() -> AsyncIterator[int]:
    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def make_check(context: CheckContext) -> Callable[..., TcpCheck]:
    def make(**fields: Any) -> TcpCheck:
        config = TcpCheckConfig.model_validate({"name": "db", "type": "tcp", **fields})
        return TcpCheck(config, context)

    return make


async def test_an_accepting_port_is_up(
    listening_port: int, make_check: Callable[..., TcpCheck]
) -> None:
    result = await make_check(host="127.0.0.1", port=listening_port).run()

    assert result.status is Status.UP
    assert result.reason == f"connected to 127.0.0.1:{listening_port}"
    assert result.response_time is not None and result.response_time >= 0


async def test_a_closed_port_is_down(closed_port: int, make_check: Callable[..., TcpCheck]) -> None:
    result = await make_check(host="127.0.0.1", port=closed_port).run()

    assert result.status is Status.DOWN
    assert result.reason.startswith(f"connect to 127.0.0.1:{closed_port} failed")


async def test_a_connect_that_never_completes_times_out(
    make_check: Callable[..., TcpCheck], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Loopback never drops SYNs, so stand in for a blackholed host with a connect that hangs.
    never = asyncio.Event()

    async def hanging_open_connection(*args: Any, **kwargs: Any) -> Any:
        await never.wait()

    monkeypatch.setattr(asyncio, "open_connection", hanging_open_connection)

    result = await make_check(host="10.0.0.1", port=5432, timeout="100ms").run()

    assert result.status is Status.DOWN
    assert result.reason == "connect to 10.0.0.1:5432 timed out"


@pytest.mark.parametrize(
    "fields",
    [
        {"host": "db", "port": 0},
        {"host": "db", "port": 65536},
        {"host": "db"},
        {"port": 5432},
        {"host": "db", "port": 5432, "tls": True},
    ],
)
def test_invalid_config_is_rejected(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TcpCheckConfig.model_validate({"name": "db", "type": "tcp", **fields})


def test_the_tcp_type_is_registered(context: CheckContext) -> None:
    config = TcpCheckConfig.model_validate(
        {"name": "db", "type": "tcp", "host": "127.0.0.1", "port": 5432}
    )

    assert isinstance(build_check(config, context), TcpCheck)
