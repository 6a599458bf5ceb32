"""A dispatcher pass over many alerts and silences shares the event loop: it ran every
alert against every silence without giving the loop back, so with 1,000 alerts and a few
hundred silences `/health/live` waited about a second per pass, and every pass (each new
silence starts one) stretched the API's SQLite transactions until concurrent writes failed
with `database is locked` (500)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.support.service import Service, running
from watchkeeper.alerting.matchers import parse_matcher
from watchkeeper.alerting.silences import create_silence

ALERTS = 1000
SILENCES = 150


async def test_a_pass_gives_the_loop_back_between_alerts(tmp_path: Path) -> None:
    async with running({"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}}) as service:
        posted = await service.client.post(
            "/api/v1/alerts",
            json=[{"name": f"a{i}", "labels": {"team": "x"}} for i in range(ALERTS)],
        )
        assert posted.status_code == 200, posted.text
        for i in range(SILENCES):
            made = await service.client.post(
                "/api/v1/silences",
                json={
                    "matchers": [f"team=~(a|b|c)*d{i}", "x=y"],
                    "ends_at": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
                },
            )
            assert made.status_code == 201, made.text
        await assert_passes_share_the_loop(service)


async def assert_passes_share_the_loop(service: Service) -> None:
    """Time one pass of the runtime's own dispatcher; fail if the loop waited a large part of
    it (a loaded machine may still pause this process now and then, hence a third)."""
    dispatcher = service.runtime.dispatcher
    assert dispatcher is not None
    passed = asyncio.Event()
    dispatcher._on_pass = passed.set  # the runtime's own loop runs the passes

    async def one_pass() -> float:
        passed.clear()
        await passed.wait()  # settle: let a pass that was under way end
        passed.clear()
        started = time.perf_counter()
        dispatcher.wake()
        await passed.wait()
        return time.perf_counter() - started

    await one_pass()
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    dispatcher.wake()
    took = await one_pass()
    ticking.cancel()
    assert max(gaps) < took / 3, (max(gaps), took, len(gaps))


async def test_a_pass_gives_the_loop_back_while_reading_silences(tmp_path: Path) -> None:
    """Each pass reads every silence and compiles its regexes: 300 silences of 50 regex
    matchers are about a second of RE2 compiling."""
    async with running({"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}}) as service:
        posted = await service.client.post("/api/v1/alerts", json={"name": "a", "severity": "low"})
        assert posted.status_code == 200, posted.text
        now = datetime.now(UTC)
        for i in range(300):
            matchers = [parse_matcher(f"x{j}=~(a|b|c)*d{i}") for j in range(50)]
            await create_silence(
                service.runtime.db, matchers, now, now + timedelta(days=1), "t", "", now
            )
        await assert_passes_share_the_loop(service)
