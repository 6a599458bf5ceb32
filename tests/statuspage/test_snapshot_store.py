"""The snapshot keeper on a real database (both engines): incidents and day bars read back,
maintenance start and end told to the sink as the clock moves."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from tests.support.clock import FakeClock
from watchkeeper.alerting.maintenance import MaintenanceWindow
from watchkeeper.checks.tcp import TcpCheckConfig
from watchkeeper.core.changes import ChangeFeed
from watchkeeper.core.checkstate import CheckState
from watchkeeper.core.domain import Status
from watchkeeper.statuspage.config import StatusPageConfig
from watchkeeper.statuspage.events import StatusEvent
from watchkeeper.statuspage.snapshot import StatusPages
from watchkeeper.store import rollups, status_incidents
from watchkeeper.store.database import Database

START = datetime(2030, 1, 10, 12, 0, tzinfo=UTC)


class Sink:
    def __init__(self) -> None:
        self.events: list[StatusEvent] = []

    async def publish(self, event: StatusEvent) -> None:
        self.events.append(event)


async def test_snapshot_reads_incidents_and_history_and_tells_maintenance(db: Database) -> None:
    clock = FakeClock(START)
    check = TcpCheckConfig.model_validate(
        {"name": "pg", "type": "tcp", "host": "127.0.0.1", "port": 5432, "component": "Database"}
    )
    state = CheckState(name="pg", status=Status.UP, since=START)
    window = MaintenanceWindow.model_validate(
        {
            "name": "upgrade",
            "starts_at": (START + timedelta(hours=1)).isoformat(),
            "ends_at": (START + timedelta(hours=2)).isoformat(),
            "checks": ["pg"],
            "comment": "Database upgrade",
        }
    )
    page = StatusPageConfig.model_validate({"components": [{"name": "Database"}]})
    sink = Sink()
    pages = StatusPages(
        db=db,
        clock=clock,
        pages=lambda: [page],
        checks={"pg": check},
        states={"pg": state},
        windows=lambda: [window],
        changes=ChangeFeed(),
        public_url="http://wk",
        sink=sink,
    )
    rows = [
        {
            "check_name": "pg",
            "started_at": START - timedelta(days=d, hours=h),
            "status": s,
            "response_time": 0.01,
        }
        for d in (1, 2)
        for h, s in ((1, "up"), (2, "down" if d == 2 else "up"))
    ]
    async with db.begin() as conn:
        await rollups.add_results(conn, rows)
        await status_incidents.insert_incident(
            conn,
            {
                "id": "abc123def456",
                "page": "main",
                "name": "Replica lag",
                "status": "monitoring",
                "impact": "minor",
                "draft": False,
                "created_at": START - timedelta(hours=3),
                "updated_at": START - timedelta(hours=3),
                "started_at": START - timedelta(hours=3),
                "monitoring_at": START - timedelta(hours=3),
                "resolved_at": None,
            },
        )
        await status_incidents.set_components(
            conn, "abc123def456", {"Database": "degraded_performance"}
        )
        await status_incidents.add_update(
            conn,
            {
                "id": "u1",
                "incident_id": "abc123def456",
                "status": "monitoring",
                "body": "Watching it.",
                "created_at": START - timedelta(hours=3),
                "display_at": START - timedelta(hours=3),
                "affected": [],
            },
        )

    await pages.rebuild()
    snapshot = pages.snapshot()
    assert snapshot is not None
    summary = json.loads(snapshot.fixed["/summary.json"].body)
    assert summary["components"][0]["status"] == "degraded_performance"  # the incident's
    assert summary["incidents"][0]["incident_updates"][0]["body"] == "Watching it."
    assert [m["status"] for m in summary["scheduled_maintenances"]] == ["scheduled"]
    (component,) = snapshot.view.components
    assert [d.status for d in component.days[-3:-1]] == ["major_outage", "operational"]
    assert component.days[-3].uptime == 0.5
    assert sink.events == []

    clock.advance(timedelta(hours=1, minutes=1))
    await pages.rebuild()
    assert [(e.kind, e.status, e.components) for e in sink.events] == [
        ("maintenance.started", "in_progress", ("Database",))
    ]
    clock.advance(timedelta(hours=1))
    await pages.rebuild()
    assert [e.kind for e in sink.events] == ["maintenance.started", "maintenance.completed"]
    await pages.rebuild()
    assert len(sink.events) == 2  # told once
