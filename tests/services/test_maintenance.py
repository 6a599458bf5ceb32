"""MaintenanceService: listing, creating and deleting windows."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.services.test_alerts import Wakes
from tests.support.clock import FakeClock
from watchkeeper.alerting.broken import BrokenObjects
from watchkeeper.alerting.maintenance import MaintenanceWindow
from watchkeeper.core.errors import Conflict, Invalid, NotFound
from watchkeeper.services.maintenance import MaintenanceService
from watchkeeper.store.database import Database


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def wakes() -> Wakes:
    return Wakes()


@pytest.fixture
def service(sqlite_db: Database, clock: FakeClock, wakes: Wakes) -> MaintenanceService:
    nightly = MaintenanceWindow.model_validate(
        {"name": "nightly", "schedule": "0 2 * * *", "duration": "1h", "checks": ["db"]}
    )
    return MaintenanceService(
        db=sqlite_db,
        clock=clock,
        configured=[nightly],
        broken=BrokenObjects(),
        wake_dispatcher=wakes,
    )


def _window(clock: FakeClock, name: str = "deploy", hours: int = 1) -> MaintenanceWindow:
    return MaintenanceWindow.model_validate(
        {
            "name": name,
            "starts_at": clock.now(),
            "ends_at": clock.now() + timedelta(hours=hours),
            "checks": ["api"],
        }
    )


async def test_create_stores_an_active_window_listed_after_the_config_files(
    service: MaintenanceService, clock: FakeClock, wakes: Wakes
) -> None:
    made = await service.create(_window(clock), "ann")
    assert (made.name, made.source, made.active, made.broken) == ("deploy", "api", True, None)
    assert made.next_change == clock.now() + timedelta(hours=1)
    assert wakes.count == 1
    listed = await service.list_windows()
    assert [(w.name, w.source) for w in listed] == [("nightly", "config"), ("deploy", "api")]
    timed = await service.timed_windows()
    assert [(t.window.name, t.source, t.active) for t in timed] == [
        ("nightly", "config", False),
        ("deploy", "api", True),
    ]


async def test_a_taken_name_is_a_conflict_whether_configured_or_stored(
    service: MaintenanceService, clock: FakeClock, wakes: Wakes
) -> None:
    with pytest.raises(Conflict, match="a maintenance window named 'nightly' exists"):
        await service.create(_window(clock, "nightly"), "ann")
    await service.create(_window(clock), "ann")
    with pytest.raises(Conflict, match="a maintenance window named 'deploy' exists"):
        await service.create(_window(clock), "bob")
    assert wakes.count == 1


async def test_start_now_validates_the_length_and_the_fields(
    service: MaintenanceService, clock: FakeClock
) -> None:
    made = await service.start_now("deploy", "30m", checks=["api"], created_by="ann")
    assert made.definition["ends_at"].startswith("2030-01-01T12:30")
    with pytest.raises(Invalid, match=r"^duration: "):
        await service.start_now("later", "whenever", created_by="ann")
    with pytest.raises(Invalid, match=r"^name: "):
        await service.start_now("", "1h", checks=["api"], created_by="ann")
    with pytest.raises(Conflict):
        await service.start_now("deploy", "1h", checks=["api"], created_by="ann")


async def test_delete_removes_a_stored_window_only(
    service: MaintenanceService, clock: FakeClock, wakes: Wakes
) -> None:
    await service.create(_window(clock), "ann")
    await service.delete("deploy")
    assert wakes.count == 2
    assert [w.name for w in await service.list_windows()] == ["nightly"]
    with pytest.raises(NotFound, match="no such maintenance window"):
        await service.delete("deploy")
    with pytest.raises(Conflict, match="comes from the config file"):
        await service.delete("nightly")
    assert wakes.count == 2


async def test_a_window_that_cannot_be_evaluated_is_listed_broken_not_raised(
    service: MaintenanceService, clock: FakeClock
) -> None:
    service.broken.update(
        "dispatcher", {("maintenance", "nightly"): ValueError("zone went away")}, clock.now()
    )
    [nightly] = await service.list_windows()
    assert nightly.broken is not None and "zone went away" in nightly.broken
