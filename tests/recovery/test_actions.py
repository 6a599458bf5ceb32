"""Action types run for real: programs (command, python) and HTTP requests on loopback."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.support.servers import Server, wait_until
from watchkeeper.recovery.actions import (
    ACTIONS,
    ActionContext,
    ActionOutcome,
    OutcomeStatus,
    build_action,
)
from watchkeeper.recovery.config import RecoveryConfig


def action(**spec: Any) -> Any:
    """The action of one named entry of a `recovery:` section."""
    config = RecoveryConfig.model_validate([{"name": "a", **spec}])
    return build_action(config.actions[0])


async def run(**spec: Any) -> ActionOutcome:
    return await action(**spec).run(ActionContext(check="web"))


def gone(pid: int) -> bool:
    """Whether `pid` has exited (a zombie waiting for init to reap it has)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):  # ESRCH: it went while being read
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_every_type_of_the_contract_is_registered() -> None:
    assert sorted(ACTIONS.types) == [
        "command",
        "docker",
        "http",
        "notify",
        "process",
        "python",
        "runbook",
        "systemd",
    ]


# -- command ---------------------------------------------------------------------------------


async def test_command_succeeds_with_exit_zero_and_keeps_its_output_in_order() -> None:
    outcome = await run(type="command", command=["sh", "-c", "echo one; echo two >&2; echo three"])
    assert outcome.status is OutcomeStatus.SUCCEEDED and outcome.ok
    assert outcome.exit_code == 0 and outcome.output == "one\ntwo\nthree\n"
    assert not outcome.truncated and outcome.duration > 0


async def test_command_fails_with_its_exit_code() -> None:
    outcome = await run(type="command", command=["sh", "-c", "echo cannot restart >&2; exit 3"])
    assert outcome.status is OutcomeStatus.FAILED
    assert (outcome.exit_code, outcome.reason) == (3, "exit code 3")
    assert outcome.output == "cannot restart\n"


async def test_command_runs_without_a_shell_with_env_and_cwd(tmp_path: Path) -> None:
    show = "import os, sys; print(os.environ['MODE'], os.getcwd(), sys.argv[1:])"
    outcome = await run(
        type="command",
        command=[sys.executable, "-c", show, "$HOME;", "*"],
        env={"MODE": "prod"},
        cwd=str(tmp_path),
    )
    assert outcome.ok
    assert outcome.output == f"prod {tmp_path} ['$HOME;', '*']\n"


async def test_command_output_is_truncated_to_its_limit_and_the_program_still_finishes() -> None:
    # 4 MB is far more than a pipe holds: the program only finishes if we keep reading.
    outcome = await run(
        type="command",
        command=[sys.executable, "-c", "import sys; sys.stdout.write('x' * 4_000_000)"],
        output_limit=100,
    )
    assert outcome.ok and outcome.truncated
    assert outcome.output == "x" * 100


async def test_command_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    script = f"sleep 30 & echo $! > {pidfile}; echo $$ >> {pidfile}; wait"
    outcome = await run(type="command", command=["sh", "-c", script], timeout="300ms")
    assert outcome.status is OutcomeStatus.TIMED_OUT
    assert outcome.reason == "timed out after 300ms"
    pids = [int(p) for p in pidfile.read_text().split()]
    assert len(pids) == 2
    await wait_until(lambda: all(gone(p) for p in pids), 5, "the program and its child killed")


async def test_cancelling_a_command_kills_its_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    task = asyncio.create_task(
        run(type="command", command=["sh", "-c", f"echo $$ > {pidfile}; exec sleep 30"])
    )
    await wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), 5, "started")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    pid = int(pidfile.read_text())
    await wait_until(lambda: gone(pid), 5, "the cancelled command killed")


async def test_a_missing_program_or_directory_is_an_error_not_an_exception(tmp_path: Path) -> None:
    outcome = await run(type="command", command=["/nonexistent/heal"])
    assert outcome.status is OutcomeStatus.ERROR
    assert outcome.reason == "program not found: /nonexistent/heal"
    outcome = await run(type="command", command=["true"], cwd=str(tmp_path / "nope"))
    assert outcome.reason == f"working directory not found: {tmp_path / 'nope'}"


async def test_systemd_asks_systemctl_to_restart_the_unit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in systemctl first on PATH, recording how it was called.
    fake = tmp_path / "systemctl"
    fake.write_text('#!/bin/sh\necho "systemctl $*"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    outcome = await run(type="systemd", unit="web.service")
    assert outcome.ok and outcome.output == "systemctl restart -- web.service\n"


# -- http ------------------------------------------------------------------------------------


class Pool(Server):
    """A load balancer's pool API: drain answers 200, broken 503, stuck never answers."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str, str]] = []
        self.never = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{what}", self._handle)
        super().__init__(app)

    async def _handle(self, request: web.Request) -> web.Response:
        what = request.match_info["what"]
        body = await request.text()
        self.requests.append((request.method, what, request.headers.get("X-Pool", ""), body))
        if what == "stuck":
            await self.never.wait()
        if what == "broken":
            return web.Response(status=503, text="pool is locked")
        if what == "big":
            return web.Response(text="y" * 100_000)
        return web.Response(text=f"{what}ed")


@pytest.fixture
async def pool() -> Any:
    server = await Pool().start()
    yield server
    server.never.set()
    await server.close()


async def test_http_sends_the_configured_request_and_succeeds_on_2xx(pool: Pool) -> None:
    outcome = await run(
        type="http", url=f"{pool.url}/drain", headers={"X-Pool": "web"}, body="member=web-1"
    )
    assert outcome.ok and outcome.http_status == 200 and outcome.output == "drained"
    assert pool.requests == [("POST", "drain", "web", "member=web-1")]


async def test_on_resolved_is_an_action_of_its_own(pool: Pool) -> None:
    failover = action(
        type="http",
        url=f"{pool.url}/drain",
        on_resolved={"type": "http", "url": f"{pool.url}/undrain", "method": "DELETE"},
    )
    assert (await failover.run(ActionContext())).ok
    undo = build_action(failover.config.on_resolved)
    assert (await undo.run(ActionContext())).output == "undrained"
    assert [r[:2] for r in pool.requests] == [("POST", "drain"), ("DELETE", "undrain")]


async def test_http_fails_on_an_unexpected_status(pool: Pool) -> None:
    outcome = await run(type="http", url=f"{pool.url}/broken", method="put")
    assert outcome.status is OutcomeStatus.FAILED
    assert (outcome.http_status, outcome.reason, outcome.output) == (
        503,
        "HTTP 503",
        "pool is locked",
    )
    outcome = await run(type="http", url=f"{pool.url}/broken", expect_status=[503])
    assert outcome.ok


async def test_http_times_out(pool: Pool) -> None:
    outcome = await run(type="http", url=f"{pool.url}/stuck", timeout="200ms")
    assert outcome.status is OutcomeStatus.TIMED_OUT and outcome.reason == "timed out after 200ms"


async def test_http_body_is_truncated_to_the_limit(pool: Pool) -> None:
    outcome = await run(type="http", url=f"{pool.url}/big", method="GET", output_limit=10)
    assert outcome.ok and outcome.truncated and outcome.output == "y" * 10


async def test_http_to_a_closed_port_is_an_error(pool: Pool) -> None:
    url = pool.url
    await pool.close()
    outcome = await run(type="http", url=f"{url}/drain")
    assert (
        outcome.status is OutcomeStatus.ERROR and "failed: ClientConnectorError" in outcome.reason
    )


# -- python ----------------------------------------------------------------------------------


def heal(service: str) -> str:
    return f"healed {service}"


async def refuse() -> bool:
    await asyncio.sleep(0)
    return False


def explode() -> None:
    raise RuntimeError("disk full")


async def test_python_calls_a_function_by_its_dotted_path() -> None:
    outcome = await run(type="python", callable=f"{__name__}:heal", kwargs={"service": "web"})
    assert outcome.ok and outcome.output == "healed web"


async def test_python_false_or_an_exception_is_a_failure_and_a_bad_path_an_error() -> None:
    outcome = await run(type="python", callable=f"{__name__}.refuse")
    assert outcome.status is OutcomeStatus.FAILED and outcome.reason == "returned False"
    outcome = await run(type="python", callable=f"{__name__}:explode")
    assert outcome.status is OutcomeStatus.FAILED and outcome.output == "RuntimeError: disk full"
    outcome = await run(type="python", callable=f"{__name__}:missing")
    assert outcome.status is OutcomeStatus.ERROR and outcome.reason.startswith("cannot load")


# -- docker ----------------------------------------------------------------------------------


@pytest.fixture
async def engine(tmp_path: Path) -> Any:
    """A Docker Engine API stand-in on a unix socket: knows container `web` only."""
    calls: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        calls.append(f"{request.method} {request.path}")
        if request.match_info["name"] != "web":
            return web.json_response({"message": "No such container"}, status=404)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/containers/{name}/{verb}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    socket_path = tmp_path / "docker.sock"
    await web.UnixSite(runner, str(socket_path)).start()
    yield socket_path, calls
    await runner.cleanup()


async def test_docker_restarts_the_container_over_the_engine_socket(engine: Any) -> None:
    socket_path, calls = engine
    outcome = await run(type="docker", container="web", socket=str(socket_path))
    assert outcome.ok and outcome.http_status == 204
    outcome = await run(type="docker", container="db", socket=str(socket_path))
    assert outcome.status is OutcomeStatus.FAILED and outcome.reason == "no container 'db'"
    assert "No such container" in outcome.output
    assert calls == ["POST /containers/web/restart", "POST /containers/db/restart"]


async def test_docker_without_an_engine_is_an_error(tmp_path: Path) -> None:
    outcome = await run(type="docker", container="web", socket=str(tmp_path / "none.sock"))
    assert outcome.status is OutcomeStatus.ERROR
    assert outcome.reason == f"no Docker socket at {tmp_path / 'none.sock'}"
