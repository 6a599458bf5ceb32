"""Alert rows and their event timeline."""

from __future__ import annotations

import functools
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import bindparam, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from watchkeeper.core.domain import Alert, AlertStatus, Severity
from watchkeeper.store import tables
from watchkeeper.store.database import Database
from watchkeeper.store.rawsql import Statement, insert_sql

A = tables.alerts


_COLUMNS = tuple(c.name for c in A.columns)


def alert_from_row(row: Any) -> Alert:
    """The alert of a row of `select(A)` (every column, in the table's order)."""
    if len(row) != len(_COLUMNS):  # (comparing the names, `row._fields`, cost a third)
        raise ValueError(f"not a row of select(alerts): {len(row)} columns")
    # Unpacked by position: by name, each of the 28 columns was a lookup in the row's
    # keys, most of the time of turning a row into an alert (the pass over every open
    # alert turns thousands).
    (
        id_, fingerprint, name, check_name, rule_name, severity, status, summary, labels,
        started_at, resolved_at, acknowledged_at, acknowledged_by, updated_at,
        suppressed_reason, notified_at, source, silenced_by, escalation_policy,
        escalation_step, next_escalation_at, paged_channels, ack_notified_at,
        resolved_notified_at, group_key, ends_at, annotations, generator_url,
    ) = row  # fmt: skip
    return Alert(
        id_, fingerprint, name, check_name, rule_name, _SEVERITIES[severity],
        _STATUSES[status], started_at, resolved_at, summary, dict(labels or {}),
        suppressed_reason, notified_at, source, silenced_by, acknowledged_at,
        acknowledged_by, escalation_policy, escalation_step, next_escalation_at,
        list(paged_channels) if paged_channels is not None else None, ack_notified_at,
        resolved_notified_at, group_key, updated_at, ends_at, dict(annotations or {}),
        generator_url,
    )  # fmt: skip


_SEVERITIES = {s.value: s for s in Severity}
_STATUSES = {s.value: s for s in AlertStatus}


async def open_alert(conn: AsyncConnection, fingerprint: str) -> Alert | None:
    row = (
        await conn.execute(
            select(A).where(A.c.fingerprint == fingerprint, A.c.status != AlertStatus.RESOLVED)
        )
    ).first()
    return alert_from_row(row) if row else None


async def open_check_alerts(conn: AsyncConnection) -> set[str]:
    """Names of checks that have an open alert."""
    rows = await conn.execute(
        select(A.c.check_name).where(
            A.c.status != AlertStatus.RESOLVED, A.c.check_name.is_not(None)
        )
    )
    return {row.check_name for row in rows}


async def insert_alert(conn: AsyncConnection, alert: Alert) -> None:
    alert.updated_at = alert.updated_at or alert.started_at
    await conn.execute(
        A.insert().values(
            id=alert.id,
            fingerprint=alert.fingerprint,
            name=alert.name,
            check_name=alert.check,
            rule_name=alert.rule,
            severity=alert.severity.value,
            status=alert.status.value,
            summary=alert.summary,
            labels=alert.labels,
            started_at=alert.started_at,
            resolved_at=alert.resolved_at,
            updated_at=alert.updated_at,
            suppressed_reason=alert.suppressed_reason,
            notified_at=alert.notified_at,
            source=alert.source,
            escalation_policy=alert.escalation_policy,
            escalation_step=alert.escalation_step,
            ends_at=alert.ends_at,
            annotations=alert.annotations or None,
            generator_url=alert.generator_url,
        )
    )


async def mark_resolved(conn: AsyncConnection, alert: Alert, at: datetime) -> None:
    alert.status, alert.resolved_at = AlertStatus.RESOLVED, at
    await conn.execute(
        A.update()
        .where(A.c.id == alert.id)
        .values(status=AlertStatus.RESOLVED.value, resolved_at=at, updated_at=at)
    )


async def add_event(
    conn: AsyncConnection,
    alert_id: str,
    kind: str,
    at: datetime,
    actor: str | None = None,
    comment: str | None = None,
) -> None:
    await conn.execute(
        tables.alert_events.insert().values(
            alert_id=alert_id, kind=kind, at=at, actor=actor, comment=comment
        )
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def list_alerts(
    db: Database,
    *,
    status: str | None = None,
    check: str | None = None,
    severity: str | None = None,
    source: str | None = None,
    silenced: bool | None = None,
    q: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Alert], int]:
    """Newest first. `status` is a stored status, `open` (not resolved) or `silenced` (open
    and muted); `silenced` alone selects muted (or unmuted) alerts of any status; `q` is a
    case-insensitive substring of the name or the summary."""
    muted = A.c.silenced_by.is_not(None) | A.c.suppressed_reason.is_not(None)
    conditions: list[Any] = []
    if status in ("open", "silenced"):
        conditions.append(A.c.status != AlertStatus.RESOLVED)
        if status == "silenced":
            conditions.append(muted)
    elif status:
        conditions.append(A.c.status == status)
    if check:
        conditions.append(A.c.check_name == check)
    if severity:
        conditions.append(A.c.severity == severity)
    if source:
        conditions.append(A.c.source == source)
    if silenced is not None:
        conditions.append(muted if silenced else ~muted)
    if q:
        pattern = f"%{_escape_like(q.lower())}%"
        conditions.append(
            func.lower(A.c.name).like(pattern, escape="\\")
            | func.lower(A.c.summary).like(pattern, escape="\\")
        )
    query = select(A).where(*conditions)
    count = select(func.count()).select_from(A).where(*conditions)
    query = query.order_by(A.c.started_at.desc(), A.c.id).limit(limit).offset(offset)
    async with db.connect() as conn:
        rows = (await conn.execute(query)).all()
        total = (await conn.execute(count)).scalar_one()
    return [alert_from_row(r) for r in rows], int(total)


async def get_alert(db: Database, alert_id: str) -> tuple[Alert, list[Any]] | None:
    async with db.connect() as conn:
        row = (await conn.execute(select(A).where(A.c.id == alert_id))).first()
        if row is None:
            return None
        events = (
            await conn.execute(
                select(tables.alert_events)
                .where(tables.alert_events.c.alert_id == alert_id)
                .order_by(tables.alert_events.c.at, tables.alert_events.c.id)
            )
        ).all()
    return alert_from_row(row), list(events)


# -- the lifecycle's writes (inside the caller's transaction) ----------------------------------


_BY_IDS = select(A).where(A.c.id.in_(bindparam("ids", expanding=True)))


async def by_ids(conn: AsyncConnection, ids: list[str]) -> dict[str, Alert]:
    """The alerts of these ids, by id."""
    found: dict[str, Alert] = {}
    for start in range(0, len(ids), _CHUNK):
        # Built once: making the statement cost as much as running it for a few rows.
        rows = await conn.execute(_BY_IDS, {"ids": ids[start : start + _CHUNK]})
        found.update((r.id, alert_from_row(r)) for r in rows)
    return found


async def by_id(conn: AsyncConnection, alert_id: str) -> Alert | None:
    row = (await conn.execute(select(A).where(A.c.id == alert_id))).first()
    return alert_from_row(row) if row is not None else None


async def refresh(conn: AsyncConnection, alert_id: str, at: datetime, **changes: Any) -> None:
    """A re-assertion of an open alert: `updated_at`, and its changed severity/labels."""
    await conn.execute(A.update().where(A.c.id == alert_id).values(updated_at=at, **changes))


async def stop_escalation(conn: AsyncConnection, alert_id: str) -> None:
    await conn.execute(A.update().where(A.c.id == alert_id).values(next_escalation_at=None))


async def mark_acknowledged(conn: AsyncConnection, alert_id: str, actor: str, at: datetime) -> None:
    await conn.execute(
        A.update()
        .where(A.c.id == alert_id)
        .values(
            status=AlertStatus.ACKNOWLEDGED.value,
            acknowledged_at=at,
            acknowledged_by=actor,
            next_escalation_at=None,
            updated_at=at,
        )
    )


async def open_fingerprints(
    conn: AsyncConnection, source: str, *, rule: str | None = None, prefix: str | None = None
) -> list[str]:
    """The fingerprints of the open alerts from `source` (of one rule, starting with
    `prefix`)."""
    query = select(A.c.fingerprint).where(
        A.c.source == source, A.c.status != AlertStatus.RESOLVED.value
    )
    if rule is not None:
        query = query.where(A.c.rule_name == rule)
    if prefix is not None:
        query = query.where(A.c.fingerprint.startswith(prefix, autoescape=True))
    return [r.fingerprint for r in (await conn.execute(query)).all()]


async def open_rule_alerts(conn: AsyncConnection) -> list[Any]:
    """`rule_name`, `labels` and `severity` of every open rule alert."""
    query = select(A.c.rule_name, A.c.labels, A.c.severity).where(
        A.c.source == "rule", A.c.status != AlertStatus.RESOLVED.value
    )
    return list((await conn.execute(query)).all())


async def open_counts(conn: AsyncConnection) -> list[tuple[str, str, bool, int]]:
    """Open alerts counted by (status, severity, muted: silenced or suppressed)."""
    muted = (A.c.silenced_by.is_not(None)) | (A.c.suppressed_reason.is_not(None))
    query = (
        select(A.c.status, A.c.severity, muted.label("muted"), func.count())
        .where(A.c.status != AlertStatus.RESOLVED.value)
        .group_by(A.c.status, A.c.severity, muted)
    )
    return [(r[0], r[1], bool(r[2]), int(r[3])) for r in (await conn.execute(query)).all()]


# -- the dispatcher's reads and claims ---------------------------------------------------------


async def dispatchable(conn: AsyncConnection, *, paged: bool | None = None) -> list[Alert]:
    """Alerts the dispatcher has to look at: open, or resolved but not yet told so; with
    `paged`, only those already paged (True) or only those not yet paged (False)."""
    query = select(A).where(
        or_(
            A.c.status != AlertStatus.RESOLVED.value,
            (A.c.notified_at.is_not(None) & A.c.resolved_notified_at.is_(None)),
        )
    )
    if paged is not None:
        query = query.where(A.c.notified_at.is_not(None) if paged else A.c.notified_at.is_(None))
    rows = await conn.execute(query)
    return [alert_from_row(r) for r in rows.all()]


async def dispatchable_of(conn: AsyncConnection, ids: Collection[str]) -> list[Alert]:
    """The alerts of these ids that `dispatchable` would return."""
    found = await by_ids(conn, sorted(ids))
    return [
        a
        for a in found.values()
        if a.status is not AlertStatus.RESOLVED
        or (a.notified_at is not None and a.resolved_notified_at is None)
    ]


async def set_suppression(
    conn: AsyncConnection, alert_id: str, reason: str | None, silenced_by: str | None
) -> None:
    await conn.execute(
        A.update()
        .where(A.c.id == alert_id)
        .values(suppressed_reason=reason, silenced_by=silenced_by)
    )


_CLAIM_COLUMNS = ("notified_at", "paged_channels", "group_key", "next_escalation_at", "id")
"""A first-page claim's values (`_claim_row`); bound as `b_<column>` through SQLAlchemy."""

_CLAIM_FIRST_PAGE = (
    A.update()
    .where(A.c.id == bindparam("b_id"), A.c.notified_at.is_(None), A.c.status == "firing")
    .values(
        notified_at=bindparam("b_notified_at"),
        paged_channels=bindparam("b_paged_channels"),
        group_key=bindparam("b_group_key"),
        escalation_step=0,
        next_escalation_at=bindparam("b_next_escalation_at"),
    )
)

_CLAIM_FIRST_PAGE_SQLITE = Statement(
    A,
    _CLAIM_COLUMNS,
    "UPDATE alerts SET notified_at = ?, paged_channels = ?, group_key = ?,"
    " escalation_step = 0, next_escalation_at = ?"
    " WHERE id = ? AND notified_at IS NULL AND status = 'firing'",
)
"""`_CLAIM_FIRST_PAGE` for a batch on SQLite, run on the driver (see `_INSERT_OPEN_SQLITE`)."""


def _claim_row(
    alert_id: str, at: datetime, channels: list[str], group_key: str, next_at: datetime | None
) -> dict[str, Any]:
    return dict(zip(_CLAIM_COLUMNS, (at, channels, group_key, next_at, alert_id), strict=True))


def _bound(row: dict[str, Any]) -> dict[str, Any]:
    """A `_claim_row` as `_CLAIM_FIRST_PAGE`'s parameters."""
    return {f"b_{column}": value for column, value in row.items()}


async def claim_first_page(
    conn: AsyncConnection,
    alert_id: str,
    *,
    at: datetime,
    channels: list[str],
    group_key: str,
    next_escalation_at: datetime | None,
) -> bool:
    """Record the first page of a firing, never-paged alert; False if another pass (or
    node) paged it, or it is no longer firing."""
    row = _claim_row(alert_id, at, channels, group_key, next_escalation_at)
    result = await conn.execute(_CLAIM_FIRST_PAGE, _bound(row))
    return bool(result.rowcount)


@dataclass(frozen=True, slots=True)
class FirstPageClaim:
    """One alert's first page, for `claim_first_pages`."""

    alert_id: str
    channels: list[str]
    group_key: str
    next_escalation_at: datetime | None


class FirstPagesContested(Exception):
    """`claim_first_pages` found some alerts paged or no longer firing: the caller rolls the
    transaction back and claims them one by one (`exact=True`)."""


async def claim_first_pages(
    conn: AsyncConnection, claims: list[FirstPageClaim], *, at: datetime, exact: bool = False
) -> set[str]:
    """`claim_first_page` for many alerts in one statement run; the ids claimed. When the
    driver counts the rows of a batch and not every alert could be claimed (another pass or
    node paged one, or it stopped firing), raises FirstPagesContested with the rows changed:
    roll back and call again with `exact=True`, which claims them one at a time."""
    if not claims:
        return set()
    # In id order: two passes (nodes) claiming the same alerts wait, not deadlock.
    claims = sorted(claims, key=lambda c: c.alert_id)
    rows = [
        _claim_row(c.alert_id, at, c.channels, c.group_key, c.next_escalation_at) for c in claims
    ]
    if exact or not conn.dialect.supports_sane_multi_rowcount:
        return {
            c.alert_id
            for c, row in zip(claims, rows, strict=True)
            if (await conn.execute(_CLAIM_FIRST_PAGE, _bound(row))).rowcount
        }
    if conn.dialect.name == "sqlite":
        claimed = await _run_on_driver(conn, _CLAIM_FIRST_PAGE_SQLITE, rows)
    else:
        claimed = (await conn.execute(_CLAIM_FIRST_PAGE, [_bound(r) for r in rows])).rowcount
    if claimed != len(claims):
        raise FirstPagesContested(f"{len(claims) - claimed} of {len(claims)} taken")
    return {c.alert_id for c in claims}


async def advance_escalation(
    conn: AsyncConnection,
    alert_id: str,
    *,
    from_step: int,
    step: int,
    next_escalation_at: datetime | None,
    paged_channels: list[str] | None = None,
) -> bool:
    """Move a firing alert from `from_step` to `step` (and record who is paged now, when
    given); False if it was acknowledged, resolved or moved on meanwhile."""
    values: dict[str, Any] = {"escalation_step": step, "next_escalation_at": next_escalation_at}
    if paged_channels is not None:
        values["paged_channels"] = paged_channels
    result = await conn.execute(
        A.update()
        .where(
            A.c.id == alert_id,
            A.c.status == AlertStatus.FIRING.value,
            A.c.escalation_step == from_step,
        )
        .values(**values)
    )
    return bool(result.rowcount)


async def mark_told(
    conn: AsyncConnection,
    alert_id: str,
    mark: Literal["ack_notified_at", "resolved_notified_at"],
    at: datetime,
) -> bool:
    """Set `mark` once; False if it was set already (someone else told them)."""
    result = await conn.execute(
        A.update().where(A.c.id == alert_id, A.c[mark].is_(None)).values({mark: at})
    )
    return bool(result.rowcount)


# -- set-based writes of posted alerts (alerting.ingest) -----------------------------------

_CHUNK = 400
"""Rows per multi-row statement: well under either engine's limit on bound parameters."""
_OPEN_WHERE = text("status != 'resolved'")


@functools.cache
def _insert_open(dialect: str) -> Any:
    """INSERT … ON CONFLICT (open fingerprint) DO NOTHING, built once per dialect."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt: Any = pg_insert(A)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(A)
    return stmt.on_conflict_do_nothing(index_elements=["fingerprint"], index_where=_OPEN_WHERE)


_ROW_COLUMNS = (
    "id", "fingerprint", "name", "check_name", "rule_name", "severity", "status", "summary",
    "labels", "started_at", "resolved_at", "updated_at", "source", "escalation_policy",
    "escalation_step", "ends_at", "annotations", "generator_url",
)  # fmt: skip
"""The columns of `alert_row`."""

_INSERT_OPEN_SQLITE = Statement(
    A,
    _ROW_COLUMNS,
    insert_sql(A, _ROW_COLUMNS)
    + " ON CONFLICT (fingerprint) WHERE status != 'resolved' DO NOTHING",
)
"""`_insert_open` on SQLite, run on the driver (see watchkeeper.store.rawsql): SQLAlchemy's
parameter handling of each row was most of the insert's cost in a burst of new alerts."""

_INSERT_EVENTS_SQLITE = Statement(
    tables.alert_events,
    ("alert_id", "kind", "at", "actor", "comment"),
    insert_sql(tables.alert_events, ("alert_id", "kind", "at", "actor", "comment")),
)


async def _run_on_driver(conn: AsyncConnection, statement: Statement, rows: list[Any]) -> int:
    """Run `statement` for every row on the driver's connection (in the caller's
    transaction); how many rows it changed."""
    params = statement.params(conn.dialect, rows)
    return int(
        await conn.run_sync(lambda sync: sync.exec_driver_sql(statement.sql, params).rowcount)
    )


def alert_row(alert: Alert) -> dict[str, Any]:
    """The row of a new alert, as `insert_open_alerts` takes it."""
    return {
        "id": alert.id,
        "fingerprint": alert.fingerprint,
        "name": alert.name,
        "check_name": alert.check,
        "rule_name": alert.rule,
        "severity": alert.severity.value,
        "status": alert.status.value,
        "summary": alert.summary,
        "labels": alert.labels,
        "started_at": alert.started_at,
        "resolved_at": None,
        "updated_at": alert.updated_at or alert.started_at,
        "source": alert.source,
        "escalation_policy": alert.escalation_policy,
        "escalation_step": 0,
        "ends_at": alert.ends_at,
        "annotations": alert.annotations or None,
        "generator_url": alert.generator_url,
    }


async def insert_open_alerts(conn: AsyncConnection, rows: list[dict[str, Any]]) -> set[str]:
    """Insert new open alerts (one statement, compiled once, run for every row); a
    fingerprint that is open already (a concurrent request's, committed first) is skipped,
    not an error. Returns the ids inserted."""
    if not rows:
        return set()
    stmt = _insert_open(conn.dialect.name)
    ids = [row["id"] for row in rows]
    if conn.dialect.supports_sane_multi_rowcount:
        # Without RETURNING the driver runs the rows itself (SQLAlchemy's multi-row VALUES
        # for RETURNING cost more than the inserts); the rows' ids are new, so when some
        # fingerprint was taken, the ids found are the rows inserted.
        if conn.dialect.name == "sqlite":
            inserted = await _run_on_driver(conn, _INSERT_OPEN_SQLITE, rows)
        else:
            inserted = (await conn.execute(stmt, rows)).rowcount
        if inserted == len(rows):
            return set(ids)
        found: set[str] = set()
        for start in range(0, len(ids), _CHUNK):
            query = select(A.c.id).where(A.c.id.in_(ids[start : start + _CHUNK]))
            found.update((await conn.execute(query)).scalars())
        return found
    return {r.id for r in await conn.execute(stmt.returning(A.c.id), rows)}


async def add_events(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Insert many events (`alert_id`, `kind`, `at`, `actor`, `comment`) at once."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        await _run_on_driver(conn, _INSERT_EVENTS_SQLITE, rows)
    else:
        await conn.execute(tables.alert_events.insert(), rows)


async def open_by_fingerprint(conn: AsyncConnection, fingerprints: list[str]) -> dict[str, Alert]:
    """The open alerts of these fingerprints, by fingerprint."""
    found: dict[str, Alert] = {}
    for start in range(0, len(fingerprints), _CHUNK):
        chunk = fingerprints[start : start + _CHUNK]
        rows = await conn.execute(
            select(A).where(A.c.fingerprint.in_(chunk), A.c.status != AlertStatus.RESOLVED.value)
        )
        for row in rows:
            found[row.fingerprint] = alert_from_row(row)
    return found


async def update_open(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """One statement run for each row: `b_id` names the alert, the other keys (all rows
    alike) are the new values. Resolved alerts are left as they are."""
    if not rows:
        return
    values: dict[str, Any] = {k: bindparam(f"b_{k}") for k in rows[0] if k != "id"}
    stmt = (
        A.update()
        .where(A.c.id == bindparam("b_id"), A.c.status != AlertStatus.RESOLVED.value)
        .values(values)
    )
    await conn.execute(stmt, [{f"b_{k}": v for k, v in row.items()} for row in rows])


async def resolve_open(conn: AsyncConnection, ids: list[str], at: datetime) -> list[str]:
    """Resolve these alerts (those still open); the ids that were."""
    done: list[str] = []
    for start in range(0, len(ids), _CHUNK):
        stmt = (
            A.update()
            .where(A.c.id.in_(ids[start : start + _CHUNK]), A.c.status != "resolved")
            .values(
                status=AlertStatus.RESOLVED.value,
                resolved_at=at,
                updated_at=at,
                next_escalation_at=None,
            )
            .returning(A.c.id)
        )
        done.extend(r.id for r in await conn.execute(stmt))
    return done


async def touch_open(
    conn: AsyncConnection, seen: list[tuple[str, datetime, datetime | None]]
) -> set[str]:
    """Record that open alerts were re-sent: (id, last seen, new `ends_at`) each. Returns
    the ids that are no longer open (resolved meanwhile, e.g. by another node)."""
    await update_open(conn, [{"id": i, "updated_at": at, "ends_at": ends} for i, at, ends in seen])
    closed: set[str] = set()
    ids = [i for i, _, _ in seen]
    for start in range(0, len(ids), _CHUNK):
        rows = await conn.execute(
            select(A.c.id).where(A.c.id.in_(ids[start : start + _CHUNK]), A.c.status == "resolved")
        )
        closed.update(r.id for r in rows)
    return closed


async def open_posted(conn: AsyncConnection) -> list[Alert]:
    """Every open alert posted by another system (the ingest index is built from them)."""
    rows = await conn.execute(
        select(A).where(A.c.source == "external", A.c.status != AlertStatus.RESOLVED.value)
    )
    return [alert_from_row(r) for r in rows]


async def open_alerts(conn: AsyncConnection) -> list[Alert]:
    """Every open alert, oldest first."""
    rows = await conn.execute(
        select(A).where(A.c.status != AlertStatus.RESOLVED.value).order_by(A.c.started_at, A.c.id)
    )
    return [alert_from_row(r) for r in rows]
