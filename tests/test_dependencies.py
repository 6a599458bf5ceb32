"""depends_on: a dependent failing behind a down dependency is recorded but nobody is paged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.alerting import DispatchingAlerts
from watchkeeper.alerting.dependencies import DependencyGraph
from watchkeeper.checks import CheckContext, build_check
from watchkeeper.config.loader import Config
from watchkeeper.core.checkstate import CheckState
from watchkeeper.core.domain import CheckResult
from watchkeeper.engine.pipeline import ResultPipeline
from watchkeeper.prometheus.service import ServiceMetrics
from watchkeeper.store import alerts as alert_store
from watchkeeper.store import outbox as outbox_store
from watchkeeper.store.database import Database
from watchkeeper.store.results import ResultWriter

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def tcp(name: str, *deps: str) -> dict[str, Any]:
    return {"name": name, "type": "tcp", "host": "127.0.0.1", "port": 9, "depends_on": list(deps)}


class Harness:
    """The real result pipeline on a real database, fed results by hand."""

    def __init__(self, db: Database, config: Config) -> None:
        self.db = db
        self.states: dict[str, CheckState] = {}
        alerts = DispatchingAlerts(db, config, states=self.states)
        writer = ResultWriter(db, self.states.get)
        self.pipeline = ResultPipeline(self.states, writer, alerts, ServiceMetrics())
        self.checks = {
            c.name: build_check(c, CheckContext(http=None))  # type: ignore[arg-type]
            for c in config.checks
        }
        self.now = T0

    async def report(self, name: str, up: bool) -> None:
        self.now += timedelta(seconds=1)
        result = CheckResult.up() if up else CheckResult.down(f"{name} refused")
        await self.pipeline.handle(self.checks[name], self.now, result)

    async def pages(self) -> list[tuple[str, str]]:
        entries = await outbox_store.list_entries(self.db)
        return sorted((e.payload["alert"]["check"], e.event) for e in entries)


CONFIG = Config.model_validate(
    {
        "checks": [tcp("database"), tcp("api", "database"), tcp("frontend", "api")],
        "notifications": [{"name": "ops", "type": "webhook", "url": "http://127.0.0.1:9/hook"}],
    }
)


async def test_a_dependent_behind_a_down_dependency_is_suppressed_not_paged(db: Database) -> None:
    h = Harness(db, CONFIG)
    await h.report("database", up=False)
    await h.report("api", up=False)
    await h.report("frontend", up=False)  # cascades: frontend → api → database
    assert await h.pages() == [("database", "alert.firing")]
    open_alerts, _ = await alert_store.list_alerts(db, status="open")
    reasons = {a.check: a.suppressed_reason for a in open_alerts}
    assert reasons == {
        "database": None,
        "api": "suppressed: database down",
        "frontend": "suppressed: api down",
    }


async def test_when_the_dependency_recovers_a_still_down_dependent_is_paged(db: Database) -> None:
    h = Harness(db, CONFIG)
    await h.report("database", up=False)
    await h.report("api", up=False)
    await h.report("database", up=True)
    assert await h.pages() == [
        ("api", "alert.firing"),
        ("database", "alert.firing"),
        ("database", "alert.resolved"),
    ]
    (api,), _ = await alert_store.list_alerts(db, status="open")
    assert api.suppressed_reason is None and api.notified_at is not None


async def test_a_suppressed_alert_that_resolves_sends_no_all_clear(db: Database) -> None:
    h = Harness(db, CONFIG)
    await h.report("database", up=False)
    await h.report("api", up=False)
    await h.report("api", up=True)
    await h.report("database", up=True)
    assert await h.pages() == [("database", "alert.firing"), ("database", "alert.resolved")]


def test_dependency_graph_finds_the_nearest_down_dependency_and_all_dependents() -> None:
    graph = DependencyGraph({"a": ["b"], "b": ["c"], "c": [], "d": ["c"]})
    assert graph.first_blocker("a", lambda n: n == "c") == "c"
    assert graph.first_blocker("a", lambda n: n in ("b", "c")) == "b"
    assert graph.first_blocker("c", lambda _n: True) is None
    assert graph.dependents_of("c") == {"a", "b", "d"}
