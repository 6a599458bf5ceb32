"""Series of the figures check results carry in `metrics` (CPU %, disk %, TLS days left …).

Averaged per time bucket by the database itself (SQLite `json_each`, PostgreSQL
`json_each`), so a chart never pulls every raw result into Python. They read raw results,
so they reach back as far as `storage.retention.results`.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, text

from watchkeeper.store.database import Database
from watchkeeper.store.types import UTCDateTime

_SQLITE = """
SELECT {group}, (CAST(strftime('%s', r.started_at) AS INTEGER) - :since) / :step AS i,
       AVG(j.value)
FROM check_results AS r, json_each(r.metrics) AS j
WHERE {where} AND r.started_at >= :lo AND r.started_at < :hi
  AND j.type IN ('integer', 'real')
GROUP BY 1, 2
"""

_POSTGRES = """
SELECT {group}, (floor(extract(epoch FROM r.started_at))::bigint - :since) / :step AS i,
       AVG((j.value #>> '{{}}')::float8)
FROM check_results AS r,
     json_each(CASE WHEN json_typeof(r.metrics) = 'object' THEN r.metrics ELSE '{{}}'::json END)
       AS j
WHERE {where} AND r.started_at >= :lo AND r.started_at < :hi
  AND json_typeof(j.value) = 'number'
GROUP BY 1, 2
"""


def _points(since: datetime, until: datetime, step: timedelta) -> tuple[int, int, int]:
    step_s = int(step.total_seconds())
    since_s = math.floor(since.timestamp())
    n = max(0, -(-(math.ceil(until.timestamp()) - since_s) // step_s))
    return since_s, step_s, n


async def _series(
    db: Database,
    group: str,
    where: str,
    params: dict[str, object],
    since: datetime,
    until: datetime,
    step: timedelta,
) -> dict[str, list[float | None]]:
    since_s, step_s, n = _points(since, until, step)
    template = _POSTGRES if db.dialect == "postgresql" else _SQLITE
    query = text(template.format(group=group, where=where)).bindparams(
        bindparam("lo", type_=UTCDateTime()), bindparam("hi", type_=UTCDateTime())
    )
    values = {
        **params,
        "since": since_s,
        "step": step_s,
        "lo": datetime.fromtimestamp(since_s, UTC),
        "hi": datetime.fromtimestamp(since_s + n * step_s, UTC),
    }
    async with db.connect() as conn:
        rows = (await conn.execute(query, values)).all()
    series: dict[str, list[float | None]] = {}
    for key, i, value in rows:
        points = series.get(key)
        if points is None:
            points = series[key] = [None] * n
        if 0 <= int(i) < n:
            points[int(i)] = float(value)
    return dict(sorted(series.items()))


async def check_metrics(
    db: Database, check: str, since: datetime, until: datetime, step: timedelta
) -> dict[str, list[float | None]]:
    """Every metric one check's results carry: metric name -> average per bucket (None when
    no result in the bucket had it). Buckets as in `rollups.load_series`."""
    return await _series(db, "j.key", "r.check_name = :check", {"check": check}, since, until, step)


async def metric_by_check(
    db: Database, metric: str, since: datetime, until: datetime, step: timedelta
) -> dict[str, list[float | None]]:
    """One metric across checks: check name -> average per bucket."""
    # The key as it is spelled inside the stored JSON: a cheap text test skips the rows
    # that cannot hold it before any JSON is parsed.
    needle = json.dumps(metric)
    if db.dialect == "postgresql":
        where = "strpos(r.metrics::text, :needle) > 0 AND j.key = :metric"
    else:
        where = "instr(r.metrics, :needle) > 0 AND j.key = :metric"
    return await _series(
        db, "r.check_name", where, {"metric": metric, "needle": needle}, since, until, step
    )
