"""A target alternating every check pages once ("flapping"), not ten firing/resolved pairs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.clock import FakeClock
from watchkeeper.alerting.check_alerts import CheckAlerts
from watchkeeper.alerting.dispatcher import build_dispatcher
from watchkeeper.alerting.flap_alerts import FlapTracker
from watchkeeper.checks import CheckContext, build_check
from watchkeeper.config.loader import Config
from watchkeeper.core.checkstate import CheckState
from watchkeeper.core.domain import CheckResult
from watchkeeper.engine.pipeline import ResultPipeline
from watchkeeper.prometheus.service import ServiceMetrics
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store.database import Database
from watchkeeper.store.results import ResultWriter

T0 = datetime(2026, 9, 1, tzinfo=UTC)


@pytest.fixture
def db(sqlite_db: Database) -> Database:
    return sqlite_db


async def run_alternating(db: Database, results: int, alerting: dict[str, object]) -> list[str]:
    config = Config.model_validate(
        {
            "checks": [
                {"name": "api", "type": "tcp", "host": "127.0.0.1", "port": 9, "interval": "1s"}
            ],
            "notifications": [{"name": "ops", "type": "webhook", "url": "http://127.0.0.1:9/"}],
            "alerting": alerting,
        }
    )
    clock = FakeClock(T0)
    states: dict[str, CheckState] = {}
    flaps = FlapTracker(db, config.alerting.flapping)
    dispatcher = build_dispatcher(db, clock, config, states=states, is_flapping=flaps.is_flapping)
    pipeline = ResultPipeline(
        states,
        ResultWriter(db, states.get),
        CheckAlerts(db, {c.name: c for c in config.checks}),
        ServiceMetrics(),
        flaps=flaps,
    )
    check = build_check(config.checks[0], CheckContext(http=None))  # type: ignore[arg-type]
    for i in range(results):
        clock.set(T0 + timedelta(seconds=i))
        result = CheckResult.down("refused") if i % 2 else CheckResult.up()
        await pipeline.handle(check, clock.now(), result)
        await dispatcher.dispatch_once()
    clock.advance(timedelta(minutes=1))  # past any group_wait
    await dispatcher.dispatch_once()
    entries = await outbox_store.list_entries(db, limit=1000)
    return [f"{e.event} {e.payload['alert']['summary']}" for e in reversed(entries)]


async def test_an_alternating_target_pages_once_as_flapping_in_21_checks(db: Database) -> None:
    sent = await run_alternating(db, 21, {"group_wait": "10s"})
    assert len(sent) == 1
    assert sent[0].startswith("alert.firing api is flapping: 100% state change")


async def test_without_grouping_delay_pairs_are_sent_until_flapping_is_detected(
    db: Database,
) -> None:
    # With group_wait 0 every flip pages at once until the detector has a full window:
    # the delay above is what keeps the first 20 flips quiet.
    sent = await run_alternating(db, 21, {"group_wait": "0s", "flapping": {"enabled": False}})
    assert sent.count("alert.firing refused") == 10
    assert sent.count("alert.resolved refused") == 10
