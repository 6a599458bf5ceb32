"""SIGKILL at arbitrary moments while a target flaps: nothing is lost, nothing doubles."""

from __future__ import annotations

import asyncio
import random
import signal
from pathlib import Path

from tests.support.auth import cli_token
from tests.support.process import WatchkeeperProcess
from tests.support.servers import FlippingTarget, WebhookReceiver, wait_until
from tests.test_end_to_end import write_config


async def test_sigkill_at_random_moments_loses_no_page_and_opens_no_duplicate(
    tmp_path: Path, target: FlippingTarget, receiver: WebhookReceiver, monkeypatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", receiver.secret)
    config = write_config(tmp_path, target, receiver)
    rng = random.Random(20261126)
    token = await cli_token(config)
    for _round in range(4):
        wk = await WatchkeeperProcess(config, tmp_path, token=token).start()
        # Flap the target and make the receiver flaky while the clock runs to a random kill.
        target.status = 500 if target.status == 200 else 200
        receiver.reply_status = rng.choice([200, 200, 503])
        deadline = asyncio.get_running_loop().time() + rng.uniform(1.5, 4.0)
        await wait_until(
            lambda d=deadline: asyncio.get_running_loop().time() >= d, 10, "the kill moment"
        )
        await wk.stop(signal.SIGKILL)

    # Settle: target healthy, receiver accepting, one clean run until everything is delivered.
    target.status = 200
    receiver.reply_status = 200
    wk = await WatchkeeperProcess(config, tmp_path, token=token).start()
    try:

        async def settled() -> bool:
            alerts = (await wk.get("/api/v1/alerts"))["items"]
            if any(a["status"] != "resolved" for a in alerts):
                return False
            health = await wk.get("/health")
            return bool(health["checks"]["outbox:depth"][0]["observedValue"] == 0)

        await wait_until(settled, 30, "all alerts resolved and every notification delivered")
        alerts = (await wk.get("/api/v1/alerts"))["items"]
    finally:
        assert await wk.stop() == 0

    assert alerts, "the flapping target should have opened at least one alert"
    delivered = {(d.payload["alert"]["id"], d.event) for d in receiver.processed.values()}
    expected = {(a["id"], e) for a in alerts for e in ("alert.firing", "alert.resolved")}
    assert delivered == expected
    # Each accepted key was processed once, however many times it was (re)sent.
    assert len(receiver.processed) == len(expected)
    assert all(receiver.signature_ok(d) for d in receiver.processed.values())
