"""The service as a user runs it: a subprocess, a real target, a real webhook receiver."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

from sqlalchemy import select

from tests.support.auth import cli_token
from tests.support.process import WatchkeeperProcess
from tests.support.servers import FlippingTarget, WebhookReceiver, wait_until
from watchkeeper.store import tables
from watchkeeper.store.database import Database


def write_config(
    tmp_path: Path,
    target: FlippingTarget,
    receiver: WebhookReceiver,
    more_checks: str = "",
    storage_url: str | None = None,
) -> Path:
    config = tmp_path / "watchkeeper.yaml"
    config.write_text(
        f"""
storage:
  url: "{storage_url or f"sqlite:///{tmp_path / 'wk.db'}"}"
delivery:
  backoff_initial: 200ms
  backoff_max: 1s
checks:
  - name: api
    type: http
    url: {target.url}/health
    interval: 1s
    timeout: 2s
    failure_threshold: 2
{more_checks}notifications:
  - name: ops
    type: webhook
    url: {receiver.hook_url}
    secret: "${{HOOK_SECRET}}"
""",
        encoding="utf-8",
    )
    return config


async def check_status(wk: WatchkeeperProcess, name: str) -> str:
    return str((await wk.get(f"/api/v1/checks/{name}"))["status"])


async def test_outage_pages_once_signed_and_recovery_resolves(
    tmp_path: Path, target: FlippingTarget, receiver: WebhookReceiver, monkeypatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", receiver.secret)
    config = write_config(tmp_path, target, receiver)
    token = await cli_token(config)
    wk = await WatchkeeperProcess(config, tmp_path, token=token).start()
    try:
        await wait_until(lambda: _is(wk, "api", "up"), 10, "api up")
        assert receiver.attempts == [], "no alert while healthy"

        target.status = 500
        flipped = time.monotonic()
        firing = await receiver.wait_for(
            lambda r: r.accepted("alert.firing"), 5, "alert.firing within 5 s of the flip"
        )
        assert time.monotonic() - flipped < 5
        (delivery,) = firing
        assert receiver.signature_ok(delivery)
        alert = delivery.payload["alert"]
        assert delivery.payload["version"] == 1
        assert alert["check"] == "api" and alert["status"] == "firing"
        assert alert["severity"] == "critical"
        assert "HTTP 500" in alert["summary"]
        assert delivery.key == f"{alert['id']}:alert.firing"

        target.status = 200
        (resolved,) = await receiver.wait_for(
            lambda r: r.accepted("alert.resolved"), 10, "alert.resolved after recovery"
        )
        assert receiver.signature_ok(resolved)
        assert resolved.payload["alert"]["id"] == alert["id"]
        assert resolved.payload["alert"]["resolved_at"] is not None

        alerts = await wk.get("/api/v1/alerts")
        assert alerts["total"] == 1 and alerts["items"][0]["status"] == "resolved"
    finally:
        code = await wk.stop(signal.SIGTERM, timeout=10)
    assert code == 0, wk.log_text()
    assert [d.event for d in receiver.attempts] == ["alert.firing", "alert.resolved"]
    assert receiver.secret not in wk.log_text()


async def _is(wk: WatchkeeperProcess, name: str, status: str) -> bool:
    return await check_status(wk, name) == status


async def test_notification_survives_sigkill_and_restart_without_second_alert(
    tmp_path: Path, target: FlippingTarget, receiver: WebhookReceiver, monkeypatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", receiver.secret)
    config = write_config(tmp_path, target, receiver)
    receiver.reply_status = 503
    token = await cli_token(config)
    wk = await WatchkeeperProcess(config, tmp_path, token=token).start()
    await wait_until(lambda: _is(wk, "api", "up"), 10, "api up")
    target.status = 500
    await receiver.wait_for(
        lambda r: len(r.attempts) >= 2, 10, "two refused delivery attempts of alert.firing"
    )
    await wk.stop(signal.SIGKILL)
    refused_keys = {d.key for d in receiver.attempts}
    assert len(refused_keys) == 1

    receiver.reply_status = 200
    wk = await WatchkeeperProcess(config, tmp_path, token=token).start()
    try:
        (firing,) = await receiver.wait_for(
            lambda r: r.accepted("alert.firing"), 10, "alert.firing delivered after restart"
        )
        assert firing.key in refused_keys
        assert receiver.signature_ok(firing)
        # The check is still down after the restart: it must not open another alert.
        await wait_until(lambda: _is(wk, "api", "down"), 10, "api still down after restart")
        alerts = await wk.get("/api/v1/alerts")
        assert alerts["total"] == 1, alerts

        target.status = 200
        (resolved,) = await receiver.wait_for(
            lambda r: r.accepted("alert.resolved"), 10, "alert.resolved"
        )
        assert resolved.payload["alert"]["id"] == firing.payload["alert"]["id"]
    finally:
        assert await wk.stop() == 0
    # Refused before the kill, accepted once after it: never delivered twice, and every
    # attempt (refused ones too) signed with the secret over its exact body, under the key of
    # its alert and event.
    assert receiver.duplicates == 0
    assert [d.event for d in receiver.attempts if d.answered == 200] == [
        "alert.firing",
        "alert.resolved",
    ]
    alert_id = firing.payload["alert"]["id"]
    for delivery in receiver.attempts:
        assert receiver.signature_ok(delivery), delivery.signature
        assert delivery.key == f"{alert_id}:{delivery.event}"


async def test_sigterm_finishes_the_check_and_the_delivery_in_hand_and_flushes_results(
    tmp_path: Path, target: FlippingTarget, receiver: WebhookReceiver, monkeypatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", receiver.secret)
    # A second check whose run, once armed, lasts until the test releases it (after SIGTERM).
    job = (
        "import pathlib, sys\n"
        "d = pathlib.Path(sys.argv[1])\n"
        "if (d / 'arm').exists() and not (d / 'started').exists():\n"
        "    (d / 'started').touch()\n"
        "    with open(d / 'release', 'rb', buffering=0) as release:\n"
        "        release.read(1)  # a FIFO: blocks until the test writes\n"
        "    print('finished after the signal')\n"
        "else:\n"
        "    print('quick')\n"
    )
    argv = [sys.executable, "-c", job, str(tmp_path)]
    os.mkfifo(tmp_path / "release")
    # Our end, read-write: the job's open does not block, and what we write waits for it.
    release = os.open(tmp_path / "release", os.O_RDWR)
    job_check = f"""  - name: job
    type: command
    command: {json.dumps(argv)}
    interval: 1s
    timeout: 20s
"""
    config = write_config(tmp_path, target, receiver, job_check)
    token = await cli_token(config)
    wk = await WatchkeeperProcess(config, tmp_path, token=token).start()
    receiver.hold = asyncio.Event()
    try:
        await wait_until(lambda: _is(wk, "api", "up"), 10, "api up")
        target.status = 500
        await receiver.wait_for(lambda r: r.attempts, 10, "alert.firing delivery in hand")
        (tmp_path / "arm").touch()
        await wait_until((tmp_path / "started").exists, 10, "the job's long run started")
    finally:
        assert wk.proc is not None
        wk.send_signal(signal.SIGTERM)
        try:
            # Each is released only once shutdown has reached it, so neither can finish first.
            await wait_until(
                lambda: "letting the checks in flight finish" in wk.log_text(), 10, "stopping"
            )
            os.write(release, b"x")
            await wait_until(
                lambda: "finishing the deliveries in hand" in wk.log_text(), 10, "outbox stop"
            )
        finally:
            os.write(release, b"x")  # (again, harmless: one byte is read)
            receiver.hold.set()
            code = await wk.stop(signal.SIGTERM, timeout=15)
            os.close(release)
    assert code == 0, wk.log_text()

    db = Database(f"sqlite:///{tmp_path / 'wk.db'}")
    try:
        async with db.connect() as conn:
            r, o = tables.check_results, tables.outbox
            reasons = (
                (await conn.execute(select(r.c.reason).where(r.c.check_name == "job")))
                .scalars()
                .all()
            )
            entries = (await conn.execute(select(o.c.event, o.c.status, o.c.attempts))).all()
    finally:
        await db.close()
    # The run in flight finished within the grace and its result reached the database …
    assert "finished after the signal" in " ".join(reasons), reasons
    # … and the delivery in hand was answered and recorded as delivered, not left pending.
    assert [(e.event, e.status, e.attempts) for e in entries] == [("alert.firing", "delivered", 1)]
    assert [d.event for d in receiver.attempts] == ["alert.firing"]
