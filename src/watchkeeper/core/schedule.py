"""When the next ping is due: a fixed period, or a cron schedule in a time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterError, croniter


def next_cron_instant(schedule: str, tz: ZoneInfo, after: datetime) -> datetime:
    """The first instant strictly after `after` at which `schedule` fires in `tz`.

    Cron fields are wall-clock times. We iterate croniter over naive local times and attach
    the zone ourselves so DST is handled one way, explicitly: a wall time that does not exist
    (spring-forward gap) fires at the first instant after the gap, as Vixie cron does; a wall
    time that happens twice (fall-back) fires once, at its first occurrence.
    """
    local_after = after.astimezone(tz).replace(tzinfo=None)
    iterator = croniter(schedule, local_after)
    while True:
        wall: datetime = iterator.get_next(datetime)
        instant = _localize(wall, tz)
        if instant > after:
            return instant


def _localize(wall: datetime, tz: ZoneInfo) -> datetime:
    aware = wall.replace(tzinfo=tz, fold=0)
    if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall:
        return aware.astimezone(UTC)
    # Nonexistent: walk from the earliest reading to the minute the clocks jump past `wall`.
    instant = wall.replace(tzinfo=tz, fold=1).astimezone(UTC).replace(second=0, microsecond=0)
    for _ in range(24 * 60):
        if instant.astimezone(tz).replace(tzinfo=None) >= wall:
            return instant
        instant += timedelta(minutes=1)
    return aware.astimezone(UTC)


def next_expected(
    last_ping: datetime,
    *,
    period: timedelta | None,
    schedule: str | None,
    tz: ZoneInfo,
) -> datetime:
    """When the ping after `last_ping` is expected."""
    if period is not None:
        return last_ping + period
    assert schedule is not None
    return next_cron_instant(schedule, tz, last_ping)


def valid_cron(schedule: str) -> bool:
    """Whether `schedule` is a five-field cron expression that fires (`0 0 30 2 *` never
    does, and would fail every evaluation of the object holding it). croniter also reads a
    sixth field (seconds) and a seventh (year): a year range that ends stops the schedule
    firing later, when it is no longer checked, so neither is accepted."""
    if len(schedule.split()) != 5 or not croniter.is_valid(schedule):
        return False
    try:
        croniter(schedule, datetime(2001, 1, 1)).get_next(datetime)
    except (CroniterError, ValueError, OverflowError):
        return False
    return True
