"""Daily availability per check for the status page's uptime bars, from the 1-hour rollups."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select

from watchkeeper.store import tables
from watchkeeper.store.database import Database
from watchkeeper.store.rollups import ONE_HOUR

R = tables.check_rollups
DAY = 86400


async def daily_counts(
    db: Database, names: Sequence[str], since: datetime, until: datetime
) -> dict[str, dict[int, tuple[int, int, int]]]:
    """check -> UTC day number (days since the epoch) -> (results, available, down) over
    [since, until), summed from the 1-hour rollups in one query."""
    if not names:
        return {}
    lo, hi = math.floor(since.timestamp()), math.ceil(until.timestamp())
    day = R.c.bucket // DAY
    query = (
        select(
            R.c.check_name,
            day,
            func.sum(R.c["count"]),
            func.sum(R.c.available),
            func.sum(R.c.down),
        )
        .where(
            R.c.resolution == ONE_HOUR,
            R.c.bucket >= lo,
            R.c.bucket < hi,
            R.c.check_name.in_(list(names)),
        )
        .group_by(R.c.check_name, day)
    )
    out: dict[str, dict[int, tuple[int, int, int]]] = {}
    async with db.connect() as conn:
        for name, number, count, available, down in (await conn.execute(query)).all():
            out.setdefault(name, {})[int(number)] = (
                int(count or 0),
                int(available or 0),
                int(down or 0),
            )
    return out
