"""The housekeeping job that deletes email addresses never confirmed within the TTL."""

from __future__ import annotations

from datetime import timedelta

from watchkeeper.core.clock import Clock
from watchkeeper.engine.housekeeping import OK, Job, Outcome
from watchkeeper.store import status_subscribers as store
from watchkeeper.store.database import Database

JOB_NAME = "status-subscribers"


def expiry_job(db: Database, clock: Clock, ttl: timedelta, every: timedelta | None = None) -> Job:
    """`status-subscribers`: delete unconfirmed subscribers older than `ttl` (checked every
    `every`: by default a twelfth of the TTL, at most an hour)."""
    period = every or min(timedelta(hours=1), ttl / 12)

    async def run() -> Outcome:
        deleted = await store.delete_unconfirmed(db, clock.now() - ttl)
        return Outcome(OK, f"{deleted} unconfirmed deleted")

    return Job(JOB_NAME, period, run)
