"""Automatic recovery wired end to end, with real processes, real HTTP and a real database:
a check's hard DOWN runs its action under its guard, the run is recorded and notified, an
exhausted action escalates the alert once, and the API shows and drives it all."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.clock import FakeClock
from tests.support.servers import FlippingTarget, WebhookReceiver, free_port, wait_until
from tests.support.service import Service, running
from watchkeeper.config.model import Config
from watchkeeper.core.checkstate import Transition
from watchkeeper.core.domain import CheckResult, Status
from watchkeeper.core.redact import Redactor
from watchkeeper.http.roles import Role
from watchkeeper.notify.payload import recovery_payload
from watchkeeper.recovery.config import RecoveryConfig
from watchkeeper.recovery.coordinator import Recovery
from watchkeeper.recovery.guard import GuardState
from watchkeeper.store import recovery as run_store
from watchkeeper.store.database import Database

PY = sys.executable

SERVER = """\
import http.server, sys
port, gate = int(sys.argv[1]), sys.argv[2]
try:  # a FIFO while a test holds instances back from listening: one byte lets one through
    with open(gate, "rb", buffering=0) as held:
        held.read(1)
except FileNotFoundError:
    pass
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
"""

LAUNCHER = """\
import subprocess, sys
server, port, gate, pidfile = sys.argv[1:5]
proc = subprocess.Popen(
    [sys.executable, server, port, gate], start_new_session=True,
    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
)
with open(pidfile, "w") as f:
    f.write(str(proc.pid))
"""
"""A heal command: starts the service again, detached, and exits 0 (like systemctl)."""


def hold(gate: Path) -> int:
    """Make `gate` a FIFO that SERVER instances block on; our end (read-write, so their
    opens do not block and what we write waits for them) is returned."""
    os.mkfifo(gate)
    return os.open(gate, os.O_RDWR)


def release(gate: Path, held: int) -> None:
    """Let every waiting instance through, and every later one (the FIFO goes)."""
    os.write(held, b"\n" * 64)
    gate.unlink()
    os.close(held)


def accepts(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def scripts(tmp_path: Path) -> Iterator[dict[str, Path]]:
    server = tmp_path / "server.py"
    server.write_text(SERVER)
    launcher = tmp_path / "launcher.py"
    launcher.write_text(LAUNCHER)
    pidfile = tmp_path / "service.pid"
    yield {"server": server, "launcher": launcher, "gate": tmp_path / "gate", "pidfile": pidfile}
    # Whatever the heal command started outside Watchkeeper is ours to stop.
    if pidfile.exists():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(pidfile.read_text()), signal.SIGKILL)


def config(
    db_url: str, receiver: WebhookReceiver, check: dict[str, Any], actions: Any
) -> dict[str, Any]:
    return {
        "storage": {"url": db_url},
        "checks": [{"name": "web", "type": "http", "interval": "1s", "timeout": "2s", **check}],
        "notifications": [{"name": "hook", "type": "webhook", "url": receiver.hook_url}],
        "recovery": actions,
    }


async def check_status(service: Service) -> str:
    return str((await service.client.get("/api/v1/checks/web")).json()["status"])


async def is_status(service: Service, wanted: str) -> bool:
    return await check_status(service) == wanted


async def open_alerts(service: Service) -> list[dict[str, Any]]:
    found = await service.client.get("/api/v1/alerts", params={"status": "open", "check": "web"})
    return list(found.json()["items"])


async def runs(service: Service) -> list[dict[str, Any]]:
    return list((await service.client.get("/api/v1/recovery/runs")).json()["items"])


async def action_state(service: Service, name: str) -> dict[str, Any]:
    answer = await service.client.get(f"/api/v1/recovery/{name}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


# -- config --------------------------------------------------------------------------------


def test_a_check_must_name_a_configured_recovery_action() -> None:
    body = {
        "checks": [
            {"name": "a", "type": "tcp", "host": "127.0.0.1", "port": 9},
            {"name": "b", "type": "tcp", "host": "127.0.0.1", "port": 9, "recovery": "x"},
        ],
        "recovery": [{"name": "y", "type": "command", "command": ["true"]}],
    }
    with pytest.raises(ValueError, match=r"checks\[1\]\.recovery: no recovery action named 'x'"):
        Config.model_validate(body)
    body["checks"][1]["recovery"] = "y"  # type: ignore[index]
    assert Config.model_validate(body).checks[1].recovery == "y"


def test_the_section_is_a_list_or_a_mapping_with_max_concurrent() -> None:
    action = {"name": "y", "type": "command", "command": ["true"]}
    as_list = Config.model_validate({"recovery": [action]}).recovery
    as_mapping = Config.model_validate(
        {"recovery": {"max_concurrent": 2, "actions": [action]}}
    ).recovery
    assert as_list.max_concurrent == 4 and as_list.names() == {"y"}
    assert as_mapping.max_concurrent == 2 and as_mapping.names() == {"y"}


# -- acceptance 1: a supervised HTTP server killed with SIGKILL ------------------------------


async def test_a_killed_supervised_server_is_back_the_alert_resolves_and_succeeded_is_sent(
    sqlite_url: str, receiver: WebhookReceiver, scripts: dict[str, Path]
) -> None:
    port, gate = free_port(), scripts["gate"]
    process = {
        "name": "api",
        "type": "process",
        "command": [PY, str(scripts["server"]), str(port), str(gate)],
        "startsecs": "0s",
        "stop_timeout": "2s",
        "max_attempts": 5,
        "within": "5m",
        "cooldown": "1m",  # one restart by the check: the test opens the gate after it
    }
    check = {"url": f"http://127.0.0.1:{port}/health", "recovery": "api"}
    async with running(config(sqlite_url, receiver, check, [process])) as service:
        await wait_until(lambda: is_status(service, "up"), 15, "web up")
        program = (await action_state(service, "api"))["program"]
        assert program["state"] == "running" and program["pid"]

        held = hold(gate)  # the instances started from now on wait before they listen
        os.kill(program["pid"], signal.SIGKILL)

        await wait_until(lambda: open_alerts(service), 15, "an alert for web")
        (succeeded,) = await receiver.wait_for(
            lambda r: _of_check(r, "recovery.succeeded"), 15, "recovery.succeeded"
        )
        body = succeeded.payload["recovery"]
        assert "alert" not in succeeded.payload
        assert body["action"] == "api" and body["check"] == "web"
        assert body["attempt"] == 1 and body["status"] == "succeeded"
        assert body["started_at"] and body["finished_at"]
        assert succeeded.key == f"{body['id']}:recovery.succeeded"
        (started,) = _of_check(receiver, "recovery.started")
        assert started.payload["recovery"]["id"] == body["id"]
        # The supervisor's own restart (the kill) is a run too, of no check.
        (exit_run,) = [r for r in await runs(service) if r["trigger"] == "exit"]
        assert exit_run["action"] == "api" and exit_run["exit_code"] == -signal.SIGKILL

        release(gate, held)
        await wait_until(lambda: accepts(port), 15, "the server listening again")
        await wait_until(lambda: is_status(service, "up"), 15, "web up again")
        await receiver.wait_for(lambda r: r.accepted("alert.resolved"), 15, "alert.resolved")
        # (a loaded machine may see web DOWN again before the gate opens: a later run of the
        # check may be recorded too; the one that healed it is the one reported)
        (run,) = [r for r in await runs(service) if r["id"] == body["id"]]
        assert run["status"] == "succeeded" and run["trigger"] == "check"
        state = await action_state(service, "api")
        assert state["state"] == "ready" and state["attempts"] == 0  # UP again: reset
        assert state["program"]["restarts"] >= 1
    assert not accepts(port), "the supervised server stops with Watchkeeper"


def _of_check(receiver: WebhookReceiver, event: str) -> list[Any]:
    return [d for d in receiver.accepted(event) if d.payload["recovery"]["check"] == "web"]


async def test_each_restart_by_the_supervisor_is_a_run_and_giving_up_is_said_once(
    sqlite_url: str, receiver: WebhookReceiver, scripts: dict[str, Path]
) -> None:
    port = free_port()
    server = {
        "name": "api",
        "type": "process",
        "command": [PY, str(scripts["server"]), str(port), str(scripts["gate"])],
        "startsecs": "0s",
        "stop_timeout": "2s",
    }
    crashing = {
        "name": "crash",
        "type": "process",
        "command": [PY, "-c", "raise SystemExit(7)"],
        "startsecs": "5s",
        "backoff": "0s",
        "max_attempts": 2,
        "within": "1h",
    }
    cfg = {
        "storage": {"url": sqlite_url},
        "notifications": [{"name": "hook", "type": "webhook", "url": receiver.hook_url}],
        "recovery": [server, crashing],
    }
    async with running(cfg) as service:
        (exhausted,) = await receiver.wait_for(
            lambda r: r.accepted("recovery.exhausted"), 20, "the supervisor giving up"
        )
        assert exhausted.payload["recovery"]["action"] == "crash"
        failed = receiver.accepted("recovery.failed")
        assert {d.payload["recovery"]["action"] for d in failed} == {"crash"}
        assert (await action_state(service, "crash"))["program"]["state"] == "exhausted"

        await wait_until(lambda: accepts(port), 15, "the server listening")
        pid = (await action_state(service, "api"))["program"]["pid"]
        os.kill(pid, signal.SIGKILL)
        (succeeded,) = await receiver.wait_for(
            lambda r: r.accepted("recovery.succeeded"), 15, "recovery.succeeded"
        )
        body = succeeded.payload["recovery"]
        assert body["action"] == "api" and body["check"] is None and body["attempt"] == 1
        await wait_until(lambda: accepts(port), 15, "the server listening again")
        (run,) = [r for r in await runs(service) if r["action"] == "api"]
        assert run["trigger"] == "exit" and run["exit_code"] == -signal.SIGKILL
        assert len(receiver.accepted("recovery.exhausted")) == 1


# -- acceptance 2: a command heals; a futile one is exhausted --------------------------------


async def test_a_command_heals_a_service_started_outside(
    sqlite_url: str, receiver: WebhookReceiver, scripts: dict[str, Path]
) -> None:
    port, pidfile = free_port(), scripts["pidfile"]
    outside = await asyncio.create_subprocess_exec(
        PY,
        str(scripts["server"]),
        str(port),
        str(scripts["gate"]),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    heal = {
        "name": "heal",
        "type": "command",
        "command": [
            PY,
            str(scripts["launcher"]),
            str(scripts["server"]),
            str(port),
            str(scripts["gate"]),
            str(pidfile),
        ],
        "cooldown": "0s",
        "max_attempts": 3,
    }
    check = {"url": f"http://127.0.0.1:{port}/health", "recovery": "heal"}
    try:
        await wait_until(lambda: accepts(port), 15, "the service listening")
        async with running(config(sqlite_url, receiver, check, [heal])) as service:
            await wait_until(lambda: is_status(service, "up"), 15, "web up")
            outside.kill()
            await outside.wait()

            await receiver.wait_for(lambda r: r.accepted("alert.firing"), 15, "alert.firing")
            (succeeded,) = await receiver.wait_for(
                lambda r: r.accepted("recovery.succeeded"), 15, "recovery.succeeded"
            )
            assert succeeded.payload["recovery"]["action"] == "heal"
            await wait_until(lambda: accepts(port), 15, "the service healed")
            await wait_until(lambda: is_status(service, "up"), 15, "web up again")
            await receiver.wait_for(lambda r: r.accepted("alert.resolved"), 15, "resolved")
            (run,) = [r for r in await runs(service) if r["status"] == "succeeded"]
            assert run["exit_code"] == 0 and run["trigger"] == "check"
            assert not receiver.accepted("recovery.exhausted")
    finally:
        if outside.returncode is None:
            outside.kill()
            await outside.wait()


async def test_a_futile_command_runs_max_attempts_times_then_escalates_once_until_reset(
    sqlite_url: str, receiver: WebhookReceiver, target: FlippingTarget
) -> None:
    target.status = 500
    futile = {
        "name": "futile",
        "type": "command",
        "command": [PY, "-c", "import sys; print('token=hunter2 nope'); sys.exit(3)"],
        "cooldown": "0s",
        "max_attempts": 3,
        "within": "1h",
    }
    check = {
        "url": f"{target.url}/health",
        "recovery": "futile",
        "notify": ["hook"],
        "escalation": "on-call",
    }
    cfg = config(sqlite_url, receiver, check, [futile])
    # The next step is an hour away: exhausting the recovery brings it forward.
    cfg["notifications"].append(
        {"name": "boss", "type": "webhook", "url": f"{receiver.hook_url}?to=boss"}
    )
    cfg["escalation"] = [
        {"name": "on-call", "steps": [{"notify": ["hook"]}, {"after": "1h", "notify": ["boss"]}]}
    ]
    async with running(cfg) as service:
        await receiver.wait_for(
            lambda r: r.accepted("recovery.exhausted"), 20, "recovery.exhausted"
        )
        found = await runs(service)
        assert len(found) == 3
        assert sorted(r["attempt"] for r in found) == [1, 2, 3]
        assert {r["status"] for r in found} == {"failed"}
        assert {r["exit_code"] for r in found} == {3}
        assert all("hunter2" not in r["output"] for r in found), "output is redacted"
        await receiver.wait_for(
            lambda r: len(r.accepted("recovery.failed")) == 3, 10, "three recovery.failed"
        )
        (exhausted,) = receiver.accepted("recovery.exhausted")
        assert exhausted.payload["recovery"]["attempt"] == 3

        (alert,) = await open_alerts(service)
        events = (await service.client.get(f"/api/v1/alerts/{alert['id']}")).json()["events"]
        notes = [e for e in events if e["kind"] == "recovery_exhausted"]
        assert [e["comment"] for e in notes] == ["automatic recovery exhausted after 3 attempts"]
        assert (await action_state(service, "futile"))["state"] == "exhausted"
        (escalated,) = await receiver.wait_for(
            lambda r: r.accepted("alert.escalated"), 10, "the escalation to the next step"
        )
        assert escalated.payload["escalation"]["step"] == 1
        assert escalated.payload["alert"]["id"] == alert["id"]

        metrics = (await service.client.get("/metrics")).text
        assert 'watchkeeper_recovery_runs_total{action="futile",status="failed"} 3.0' in metrics
        assert 'watchkeeper_recovery_runs_total{action="futile",status="exhausted"} 1.0' in metrics

        # Nothing more runs while the check stays DOWN: let it run three more times.
        seen = len((await service.client.get("/api/v1/checks/web/results")).json())
        await wait_until(lambda: _more_results(service, seen + 3), 15, "three more results of web")
        assert len(await runs(service)) == 3
        assert len(receiver.accepted("recovery.exhausted")) == 1

        viewer = await service.as_role(Role.VIEWER)
        refused = await service.client.post("/api/v1/recovery/futile/reset", headers=viewer)
        assert refused.status_code == 403
        by_hand = await service.client.post("/api/v1/recovery/futile/run")
        assert by_hand.status_code == 409 and "exhausted after 3" in by_hand.json()["detail"]

    # The lock-out survives a restart of Watchkeeper.
    async with running(cfg) as service:
        assert (await action_state(service, "futile"))["state"] == "exhausted"
        assert len(await runs(service)) == 3
        reset = await service.client.post("/api/v1/recovery/futile/reset")
        assert reset.status_code == 200 and reset.json()["state"] in ("ready", "running")
        await wait_until(lambda: _runs_at_least(service, 4), 15, "a run after the reset")


async def _more_results(service: Service, wanted: int) -> bool:
    return len((await service.client.get("/api/v1/checks/web/results")).json()) >= wanted


async def _runs_at_least(service: Service, wanted: int) -> bool:
    return len(await runs(service)) >= wanted


# -- acceptance 4: max_concurrent across targets --------------------------------------------

TRACE = """\
import os, sys, time
trace = sys.argv[1]
def note(delta):
    fd = os.open(trace, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, f"{time.monotonic_ns()} {delta}\\n".encode())
    os.close(fd)
note(1)
with open(sys.argv[2], "rb", buffering=0) as gate:  # the action's work: until the test ends it
    gate.read(1)
note(-1)
"""


def _started(trace: Path) -> int:
    return trace.read_text().count(" 1\n") if trace.exists() else 0


async def test_twenty_checks_down_at_once_run_at_most_max_concurrent_actions(
    sqlite_db: Database, tmp_path: Path
) -> None:
    script, trace, gate = tmp_path / "trace.py", tmp_path / "trace.log", tmp_path / "gate"
    script.write_text(TRACE)
    held = hold(gate)  # each action runs until we write a byte: one byte ends one
    section = RecoveryConfig.model_validate(
        {
            "max_concurrent": 2,
            "actions": [
                {
                    "name": f"a{i}",
                    "type": "command",
                    "command": [PY, str(script), str(trace), str(gate)],
                }
                for i in range(20)
            ],
        }
    )
    enqueued: list[int] = []
    recovery = Recovery(
        section,
        db=sqlite_db,
        clock=FakeClock(),
        redactor=Redactor(),
        payload=recovery_payload,
        channels_for=lambda _check: ["hook"],
        on_enqueued=lambda: enqueued.append(1),
    )
    await recovery.start()
    try:
        for i in range(20):
            recovery.observe(f"c{i}", f"a{i}", Status.DOWN, None)
        for ended in range(20):
            # Two running (one at the end) before one is let go: were the limit not kept,
            # more would have started by then, and the trace shows it.
            want = min(ended + 2, 20)
            await wait_until(lambda n=want: _started(trace) >= n, 30, f"{want} actions started")
            os.write(held, b"\n")
        async with asyncio.timeout(60):
            await recovery.settled()
        assert recovery.guard.active == 0
    finally:
        await recovery.stop()
        os.close(held)
    running_now = peak = 0
    for line in sorted(trace.read_text().split("\n")[:-1], key=lambda s: int(s.split()[0])):
        running_now += int(line.split()[1])
        peak = max(peak, running_now)
    assert peak == 2, "never more than max_concurrent at once (and that many when needed)"
    rows, total = await run_store.list_runs(sqlite_db, limit=100)
    assert total == 20 and {r.status for r in rows} == {"succeeded"}
    assert len(enqueued) == 40  # started and succeeded of each run


# -- guard windows, on an injected clock ----------------------------------------------------


async def test_the_budget_slides_with_the_window_and_up_again_resets_it(
    sqlite_db: Database,
) -> None:
    section = RecoveryConfig.model_validate(
        [
            {
                "name": "fail",
                "type": "command",
                "command": [PY, "-c", "raise SystemExit(1)"],
                "max_attempts": 2,
                "within": "10m",
                "cooldown": "1m",
            }
        ]
    )
    clock = FakeClock()
    recovery = Recovery(
        section,
        db=sqlite_db,
        clock=clock,
        redactor=Redactor(),
        payload=recovery_payload,
        channels_for=lambda _check: [],
    )
    await recovery.start()
    try:
        recovery.observe("web", "fail", Status.DOWN, None)
        await recovery.settled()
        target = recovery.guard.get("fail")
        assert target is not None and target.state is GuardState.COOLING_DOWN
        recovery.observe("web", "fail", Status.DOWN, None)  # cooling down: nothing
        assert not recovery._tasks
        clock.advance(61)
        recovery.observe("web", "fail", Status.DOWN, None)
        await recovery.settled()
        assert await _runs_ended(sqlite_db, 2)
        assert target.state is GuardState.EXHAUSTED
        clock.advance(3600)  # the window slid on, but a lock-out waits for UP or a reset
        recovery.observe("web", "fail", Status.DOWN, None)
        assert not recovery._tasks and target.state is GuardState.EXHAUSTED

        up = Transition("web", Status.DOWN, Status.UP, clock.now(), CheckResult.up())
        recovery.observe("web", "fail", Status.UP, up)
        await recovery.settled()
        assert target.state is GuardState.READY and await _stored_ready(sqlite_db)
    finally:
        await recovery.stop()


async def _runs_ended(db: Database, wanted: int) -> bool:
    rows, _ = await run_store.list_runs(db, limit=100)
    return sum(r.finished_at is not None for r in rows) >= wanted


async def _stored_ready(db: Database) -> bool:
    times, exhausted = (await run_store.load_guards(db))["fail"]
    return not exhausted and not times


# -- the API ---------------------------------------------------------------------------------


@pytest.fixture
async def api_service(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Service]:
    cfg = {
        "storage": {"url": sqlite_url},
        "recovery": [
            {"name": "ok", "type": "command", "command": [PY, "-c", "print('done')"]},
        ],
    }
    async with running(cfg) as service:
        yield service


async def test_the_api_lists_runs_and_resets_by_role(api_service: Service) -> None:
    client = api_service.client
    viewer = await api_service.as_role(Role.VIEWER)
    operator = await api_service.as_role(Role.OPERATOR)
    listed = await client.get("/api/v1/recovery", headers=viewer)
    assert listed.status_code == 200
    (item,) = listed.json()["items"]
    assert item["name"] == "ok" and item["state"] == "ready" and item["program"] is None

    assert (await client.post("/api/v1/recovery/ok/run", headers=viewer)).status_code == 403
    started = await client.post("/api/v1/recovery/ok/run", headers=operator)
    assert started.status_code == 202, started.text
    run = started.json()
    assert run["trigger"] == "manual" and run["actor"] == "operator" and run["check"] is None
    done = await wait_until(lambda: _run_done(api_service, run["id"]), 15, "the run done")
    assert done["status"] == "succeeded" and done["output"].strip() == "done"
    assert (await client.get("/api/v1/recovery/nope")).status_code == 404
    assert (await client.post("/api/v1/recovery/nope/run")).status_code == 404
    assert (await client.get("/api/v1/recovery/runs/nope")).status_code == 404
    reset = await client.post("/api/v1/recovery/ok/reset", headers=operator)
    assert reset.status_code == 200 and reset.json()["attempts"] == 0

    audit = (await client.get("/api/v1/audit")).json()["items"]
    assert any(e["target"] == "/api/v1/recovery/ok/run" for e in audit)


async def _run_done(service: Service, run_id: str) -> dict[str, Any] | None:
    run = (await service.client.get(f"/api/v1/recovery/runs/{run_id}")).json()
    return dict(run) if run["finished_at"] else None


async def test_an_actions_secrets_are_known_to_the_redactor(sqlite_db: Database) -> None:
    section = RecoveryConfig.model_validate(
        [
            {
                "name": "drain",
                "type": "http",
                "url": "http://lb:secret-pw@127.0.0.1:9/drain?api_key=k3y-value",
                "headers": {"Authorization": "Bearer t0ken-value"},
                "on_resolved": {
                    "type": "command",
                    "command": ["undrain"],
                    "env": {"API_TOKEN": "env-t0ken"},
                },
            }
        ]
    )
    redactor = Redactor()
    Recovery(
        section,
        db=sqlite_db,
        clock=FakeClock(),
        redactor=redactor,
        payload=recovery_payload,
        channels_for=lambda _check: [],
    )
    shown = redactor("secret-pw k3y-value Bearer t0ken-value env-t0ken")
    for secret in ("secret-pw", "k3y-value", "t0ken-value", "env-t0ken"):
        assert secret not in shown


async def test_no_action_can_be_created_over_the_api(api_service: Service) -> None:
    """Acceptance 5: actions (above all those that run programs) come from the file only."""
    client = api_service.client
    body = {"name": "evil", "type": "command", "command": ["sh", "-c", "id"]}
    assert (await client.post("/api/v1/recovery", json=body)).status_code == 405
    assert (await client.put("/api/v1/recovery/evil", json=body)).status_code == 405
    # A managed check may name an action of the file, never one that is not there.
    check = {"name": "m", "type": "tcp", "host": "127.0.0.1", "port": 9, "interval": "1h"}
    unknown = await client.post("/api/v1/checks", json={**check, "recovery": "evil"})
    assert unknown.status_code == 422
    assert "no recovery action named 'evil'" in unknown.text
    known = await client.post("/api/v1/checks", json={**check, "recovery": "ok"})
    assert known.status_code == 201, known.text


async def test_stopping_cancels_a_run_in_progress_and_the_next_start_closes_its_record(
    sqlite_db: Database, tmp_path: Path
) -> None:
    hold = tmp_path / "hold.py"
    hold.write_text("import signal; signal.pause()\n")  # runs until it is killed
    section = RecoveryConfig.model_validate(
        [{"name": "slow", "type": "command", "command": [PY, str(hold)], "timeout": "1m"}]
    )

    def build() -> Recovery:
        return Recovery(
            section,
            db=sqlite_db,
            clock=FakeClock(),
            redactor=Redactor(),
            payload=recovery_payload,
            channels_for=lambda _check: [],
        )

    recovery = build()
    await recovery.start()
    run_id = await recovery.run("slow", actor="tests")
    await recovery.stop()
    row = await run_store.get_run(sqlite_db, run_id)
    assert row is not None and row.status == "running"
    again = build()
    await again.start()
    try:
        row = await run_store.get_run(sqlite_db, run_id)
        assert row is not None and row.status == "interrupted" and row.finished_at is not None
    finally:
        await again.stop()
