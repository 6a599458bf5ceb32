"""An answered ping is stored: `kill -9` right after 1,000 pings were answered 200 finds
every one of them in the database (pings are group-committed, each answered after its
transaction commits)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import uuid
from collections import Counter
from pathlib import Path

import aiohttp

from tests.support.process import WatchkeeperProcess

HEARTBEATS = 20
ANSWERED = 1_000
CONNECTIONS = 50


def ping_uuid(i: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"watchkeeper-test-ping-{i}"))


async def test_every_answered_ping_survives_kill_9(tmp_path: Path) -> None:
    checks = "".join(
        f"  - {{name: job-{i}, type: heartbeat, period: 1h, uuid: '{ping_uuid(i)}'}}\n"
        for i in range(HEARTBEATS)
    )
    config = tmp_path / "watchkeeper.yaml"
    config.write_text(
        f"storage: {{url: 'sqlite:///{tmp_path / 'wk.db'}'}}\n"
        "heartbeats:\n  rate_limit:\n"
        "    per_check: {rate: 1000000, burst: 1000000}\n"
        "    per_address: {rate: 1000000, burst: 1000000}\n"
        f"checks:\n{checks}",
        encoding="utf-8",
    )
    wk = await WatchkeeperProcess(config, tmp_path).start()
    assert wk.proc is not None
    answered: Counter[str] = Counter()
    sent: Counter[str] = Counter()
    killed = asyncio.Event()

    async def pinger(session: aiohttp.ClientSession, first: int) -> None:
        i = first
        while not killed.is_set():
            name = f"job-{i % HEARTBEATS}"
            url = f"{wk.url}/ping/{ping_uuid(i % HEARTBEATS)}"
            i += CONNECTIONS
            sent[name] += 1
            try:
                async with session.get(url, headers={"Connection": "close"}) as response:
                    await response.read()
                    ok = response.status == 200
            except aiohttp.ClientError:
                return  # killed under it
            if ok:
                answered[name] += 1
                if answered.total() >= ANSWERED and not killed.is_set():
                    wk.send_signal(signal.SIGKILL)  # at once, before any other answer
                    killed.set()

    try:
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session, asyncio.timeout(60):
            await asyncio.gather(*(pinger(session, n) for n in range(CONNECTIONS)))
    finally:
        code = await wk.stop(signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert answered.total() >= ANSWERED

    with contextlib.closing(sqlite3.connect(tmp_path / "wk.db")) as db:
        stored = dict(db.execute("SELECT check_name, ping_count FROM heartbeats").fetchall())
    lost = {name: n - stored.get(name, 0) for name, n in answered.items()}
    lost = {name: n for name, n in lost.items() if n > 0}
    assert not lost, f"answered but not stored: {lost}"
    # Nothing stored that was never sent (the count is each ping's own, not a guess).
    assert all(stored[name] <= sent[name] for name in sent)
