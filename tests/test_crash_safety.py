"""SIGKILL at seeded moments while a target flaps: nothing is lost, nothing opens twice.

Every kill moment is an event chosen by the seed (the check's new state shown, a delivery in
the receiver's hands, a delivery settled), never a wall-clock delay, so a failing seed replays
the same story. The receiver counts how often each Idempotency-Key is accepted: a delivery
killed in hand is sent again after the restart (at-least-once), and the test reports those
redeliveries. Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import signal
from pathlib import Path

import pytest

from tests.support.auth import cli_token
from tests.support.process import WatchkeeperProcess
from tests.support.servers import FlippingTarget, WebhookReceiver, wait_until
from tests.test_end_to_end import write_config

SEED = 20261126
ROUNDS = 4
MOMENTS = ("state", "in_hand", "settled")


async def outbox_depth(wk: WatchkeeperProcess) -> int:
    health = await wk.get("/health")
    return int(health["checks"]["outbox:depth"][0]["observedValue"])


async def consistent(wk: WatchkeeperProcess, target: FlippingTarget) -> bool:
    """The check shows the target's state, its alert agrees, and everything is delivered."""
    want = "up" if target.status == 200 else "down"
    if (await wk.get("/api/v1/checks/api"))["status"] != want:
        return False
    alerts = (await wk.get("/api/v1/alerts"))["items"]
    open_alerts = [a for a in alerts if a["status"] != "resolved"]
    if len(open_alerts) != (0 if want == "up" else 1):
        return False
    if any(not a["paged_channels"] for a in open_alerts):
        return False  # its page is not even queued yet
    return await outbox_depth(wk) == 0


async def test_sigkill_at_seeded_moments_loses_no_page_and_opens_no_duplicate(
    tmp_path: Path,
    target: FlippingTarget,
    receiver: WebhookReceiver,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    record_property: pytest.RecordProperty,
) -> None:
    monkeypatch.setenv("HOOK_SECRET", receiver.secret)
    storage = None if db_url.startswith("sqlite") else db_url
    config = write_config(tmp_path, target, receiver, storage_url=storage)
    rng = random.Random(SEED)
    token = await cli_token(config)
    story: list[str] = []
    must_redeliver = 0
    for round_ in range(ROUNDS):
        wk = await WatchkeeperProcess(config, tmp_path, token=token).start()
        # What the last kill left behind is finished first, so this round's flip always
        # means one new notification (firing when the target fails, resolved when it heals).
        receiver.reply_status = 200
        await wait_until(lambda wk=wk: consistent(wk, target), 30, f"round {round_} settled")

        target.status = 500 if target.status == 200 else 200
        receiver.reply_status = rng.choice([200, 200, 503])
        moment = rng.choice(MOMENTS)
        story.append(f"{target.status}/{receiver.reply_status}/{moment}")
        attempts = len(receiver.attempts)
        if moment == "state":  # the check's new state is visible; its alert may not be
            want = "up" if target.status == 200 else "down"
            await wait_until(
                lambda wk=wk, want=want: _status_is(wk, want), 15, f"api {want} ({story})"
            )
        elif moment == "in_hand":  # the receiver has the request and has not answered yet
            receiver.hold = asyncio.Event()
            await wait_until(
                lambda n=attempts: len(receiver.attempts) > n, 15, f"a delivery ({story})"
            )
            must_redeliver += receiver.reply_status == 200  # accepted, never acknowledged
        else:  # settled: delivered (or, when refused, retried once) and recorded
            wanted = 1 if receiver.reply_status == 200 else 2
            await wait_until(
                lambda n=attempts, k=wanted: len(receiver.attempts) >= n + k,
                15,
                f"the delivery attempts ({story})",
            )
            if receiver.reply_status == 200:
                await wait_until(lambda wk=wk: _depth_is_zero(wk), 15, f"settled ({story})")
        await wk.stop(signal.SIGKILL)
        if receiver.hold is not None:
            receiver.hold.set()
            receiver.hold = None

    # One clean run with the target healthy and the receiver accepting.
    target.status = 200
    receiver.reply_status = 200
    wk = await WatchkeeperProcess(config, tmp_path, token=token).start()
    try:
        await wait_until(lambda: consistent(wk, target), 30, f"the end settled ({story})")
        alerts = (await wk.get("/api/v1/alerts"))["items"]
    finally:
        assert await wk.stop() == 0

    redeliveries = receiver.redeliveries
    record_property("crash_story", story)
    record_property("redeliveries", redeliveries)
    print(f"seed {SEED}: {story}; redeliveries per key: {redeliveries}")

    assert alerts, "the flapping target should have opened at least one alert"
    delivered = {(d.payload["alert"]["id"], d.event) for d in receiver.processed.values()}
    expected = {(a["id"], e) for a in alerts for e in ("alert.firing", "alert.resolved")}
    assert delivered == expected, story
    assert set(receiver.accepted_per_key) == set(receiver.processed)
    # At least once: a delivery accepted but killed before it was recorded is sent again,
    # under the same key (which is how the receiver tells); nothing else is sent twice.
    assert sum(redeliveries.values()) >= must_redeliver, (story, redeliveries)
    for key in redeliveries:
        sent = [d.payload for d in receiver.attempts if d.key == key and d.answered == 200]
        assert all({**p, "sent_at": None} == {**sent[0], "sent_at": None} for p in sent), key
    assert all(receiver.signature_ok(d) for d in receiver.attempts)


async def _status_is(wk: WatchkeeperProcess, status: str) -> bool:
    return bool((await wk.get("/api/v1/checks/api"))["status"] == status)


async def _depth_is_zero(wk: WatchkeeperProcess) -> bool:
    return await outbox_depth(wk) == 0
