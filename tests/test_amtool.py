"""The real `amtool` (Debian's prometheus-alertmanager) against a running Watchkeeper, as
against an Alertmanager: `silence add`, `silence query`, `silence expire`, `alert add`,
`alert query`, with a bearer token from `--http.config.file`. One server for the module."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import uvicorn

from tests.support.auth import token_for
from tests.support.required import unavailable
from watchkeeper.app import Runtime
from watchkeeper.config.loader import Config
from watchkeeper.http.factory import create_app
from watchkeeper.http.roles import Role

AMTOOL = "/usr/bin/amtool"
pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Served:
    url: str
    operator: Path
    viewer: Path
    runtime: Runtime

    async def amtool(self, *args: str, as_: Path | None = None) -> str:
        proc = await asyncio.create_subprocess_exec(
            AMTOOL,
            f"--alertmanager.url={self.url}",
            f"--http.config.file={as_ or self.operator}",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(20):
            out, err = await proc.communicate()
        if proc.returncode != 0:
            raise AssertionError(f"amtool {' '.join(args)}: exit {proc.returncode}: {err.decode()}")
        return out.decode()

    async def amtool_json(self, *args: str) -> Any:
        return json.loads(await self.amtool(*args, "--output=json"))


def http_config(path: Path, token: str) -> Path:
    path.write_text(f"authorization:\n  type: Bearer\n  credentials: {token}\n")
    return path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    if shutil.which(AMTOOL) is None:
        unavailable(f"{AMTOOL} is not installed (Debian package prometheus-alertmanager)")
    tmp = tmp_path_factory.mktemp("amtool")
    config = Config.model_validate({"storage": {"url": f"sqlite:///{tmp / 'wk.db'}"}})
    runtime = Runtime(config)
    await runtime.start()
    # Listening before uvicorn starts: a request that comes first waits in the backlog.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(config, runtime=runtime), log_level="warning", lifespan="off")
    )
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield Served(
            url=f"http://127.0.0.1:{port}",
            operator=http_config(tmp / "operator.yml", await token_for(runtime, Role.OPERATOR)),
            viewer=http_config(tmp / "viewer.yml", await token_for(runtime, Role.VIEWER)),
            runtime=runtime,
        )
    finally:
        server.should_exit = True
        await serving
        sock.close()
        await runtime.stop()


async def test_amtool_adds_queries_and_expires_a_silence(served: Served) -> None:
    out = await served.amtool(
        "silence", "add", "alertname=DiskFull", "instance=~db.*",
        "--comment=disk swap", "--author=alice", "--duration=2h",
    )  # fmt: skip
    silence_id = out.strip()
    assert len(silence_id) == 36, out
    (listed,) = await served.amtool_json("silence", "query", "alertname=DiskFull")
    assert listed["id"] == silence_id
    assert listed["createdBy"] == "alice" and listed["comment"] == "disk swap"
    assert {(m["name"], m["value"], m["isRegex"]) for m in listed["matchers"]} == {
        ("alertname", "DiskFull", False),
        ("instance", "db.*", True),
    }
    quiet = await served.amtool("silence", "query", "-q", as_=served.viewer)
    assert silence_id in quiet.split()
    await served.amtool("silence", "expire", silence_id)
    assert await served.amtool_json("silence", "query", "alertname=DiskFull") == []
    expired = await served.amtool_json("silence", "query", "--expired", "alertname=DiskFull")
    assert [s["id"] for s in expired] == [silence_id]


async def test_amtool_adds_and_queries_alerts(served: Served) -> None:
    await served.amtool(
        "alert", "add", "alertname=QueueBacklog", "queue=mail", "severity=critical",
        "--annotation=summary=mail queue is backing up",
    )  # fmt: skip
    (got,) = await served.amtool_json("alert", "query", "alertname=QueueBacklog")
    assert got["labels"]["queue"] == "mail"
    assert got["annotations"]["summary"] == "mail queue is backing up"
    assert got["status"]["state"] == "active"
    simple = await served.amtool("alert", "query", as_=served.viewer)
    assert "QueueBacklog" in simple and "mail queue is backing up" in simple
    # A viewer's token may read, not write.
    with pytest.raises(AssertionError, match=r"403"):
        await served.amtool("alert", "add", "alertname=Nope", as_=served.viewer)
    # Its error comes as `application/json`: amtool can read it (not "no consumer").
    with pytest.raises(AssertionError, match=r"status 403"):
        await served.amtool("silence", "add", "alertname=Nope", "--comment=c", as_=served.viewer)
