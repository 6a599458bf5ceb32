"""SilenceService: creating, reading and expiring silences."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.services.test_alerts import Wakes
from tests.support.clock import FakeClock
from watchkeeper.alerting.ingest import AlertIngest
from watchkeeper.core.errors import Invalid, NotFound
from watchkeeper.services.alerts import AlertService
from watchkeeper.services.silences import SilenceService
from watchkeeper.store.database import Database


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def wakes() -> Wakes:
    return Wakes()


@pytest.fixture
def silences(sqlite_db: Database, clock: FakeClock, wakes: Wakes) -> SilenceService:
    return SilenceService(db=sqlite_db, clock=clock, wake_dispatcher=wakes)


async def test_create_stores_the_silence_and_wakes_the_dispatcher(
    silences: SilenceService, clock: FakeClock, wakes: Wakes
) -> None:
    ends = clock.now() + timedelta(hours=2)
    created = await silences.create(
        ["check=api", {"name": "severity", "value": "crit.*", "isRegex": True}],
        ends_at=ends,
        created_by="ann",
        comment="deploy",
    )
    assert wakes.count == 1
    stored = await silences.get(created.id)
    assert [str(m) for m in stored.matchers] == ["check=api", "severity=~crit.*"]
    assert (stored.starts_at, stored.ends_at, stored.created_by, stored.comment) == (
        clock.now(),
        ends,
        "ann",
        "deploy",
    )
    assert [s.id for s in await silences.list_silences()] == [created.id]


@pytest.mark.parametrize(
    ("matchers", "hours", "message"),
    [
        (["check"], 1, "check"),
        ([], 1, "at least one matcher"),
        (["check=api"], -1, "ends_at must be after starts_at"),
        (["check=api"], 24 * 400, "ends_at: a silence lasts at most"),
    ],
)
async def test_an_invalid_silence_is_refused_and_nothing_is_stored(
    silences: SilenceService,
    clock: FakeClock,
    wakes: Wakes,
    matchers: list[str],
    hours: int,
    message: str,
) -> None:
    with pytest.raises(Invalid, match=message) as caught:
        await silences.create(
            matchers, ends_at=clock.now() + timedelta(hours=hours), created_by="ann"
        )
    assert caught.value.field is None  # the API's 422 carries the message only
    assert await silences.list_silences() == []
    assert wakes.count == 0


async def test_create_for_a_typed_length_names_the_duration_when_it_is_bad(
    silences: SilenceService, clock: FakeClock
) -> None:
    made = await silences.create_for(["check=api"], "90m", created_by="ann")
    assert (made.starts_at, made.ends_at) == (clock.now(), clock.now() + timedelta(minutes=90))
    with pytest.raises(Invalid, match=r"^duration: "):
        await silences.create_for(["check=api"], "soon", created_by="ann")
    # A bad matcher is reported before a bad length, as the form always did.
    with pytest.raises(Invalid) as caught:
        await silences.create_for(["check"], "soon", created_by="ann")
    assert not caught.value.detail.startswith("duration")


async def test_silencing_an_alert_matches_its_name_and_check(
    sqlite_db: Database, silences: SilenceService, clock: FakeClock, wakes: Wakes
) -> None:
    alerts = AlertService(
        db=sqlite_db, clock=clock, wake_dispatcher=wakes, posted=AlertIngest(sqlite_db, clock)
    )
    [alert] = await alerts.ingest({"name": "disk", "labels": {"check": "db"}})
    silence = await silences.silence_alert(alert.id, "1h", created_by="ann")
    assert [str(m) for m in silence.matchers] == ["alertname=disk"]
    assert silence.comment == f"silenced from alert {alert.id}"
    assert silence.ends_at == clock.now() + timedelta(hours=1)
    assert wakes.count == 2

    with pytest.raises(NotFound, match="no such alert"):
        await silences.silence_alert("nope", "1h", created_by="ann")
    with pytest.raises(Invalid, match="duration"):
        await silences.silence_alert(alert.id, "never", created_by="ann")


async def test_expire_ends_the_silence_now_and_wakes_the_dispatcher(
    silences: SilenceService, clock: FakeClock, wakes: Wakes
) -> None:
    made = await silences.create_for(["check=api"], "1h", created_by="ann")
    clock.advance(60)
    expired = await silences.expire(made.id)
    assert expired.ends_at == clock.now() and expired.state(clock.now()) == "expired"
    assert wakes.count == 2
    assert await silences.list_silences(ended_since=clock.now() + timedelta(seconds=1)) == []


async def test_an_unknown_silence_is_not_found(silences: SilenceService, wakes: Wakes) -> None:
    with pytest.raises(NotFound, match="no such silence"):
        await silences.get("nope")
    with pytest.raises(NotFound, match="no such silence"):
        await silences.expire("nope")
    assert wakes.count == 0
