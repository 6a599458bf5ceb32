"""Silences: matchers over alert labels with a start and an end."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from watchkeeper.alerting.broken import describe
from watchkeeper.alerting.matchers import Matcher, matches_all, parse_matcher
from watchkeeper.core.durations import LONG_SPAN, format_duration
from watchkeeper.store import silences as silence_store
from watchkeeper.store.database import Connection, Database


@dataclass(frozen=True, slots=True)
class Silence:
    id: str
    matchers: list[Matcher]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    created_at: datetime
    error: str | None = None
    """Set when the stored row cannot be used (matchers that no longer parse, a length beyond
    the bound): such a silence silences nothing and is reported broken."""

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def state(self, now: datetime) -> str:
        if now < self.starts_at:
            return "pending"
        return "active" if now < self.ends_at else "expired"

    def silences(self, labels: dict[str, str], now: datetime) -> bool:
        return self.error is None and self.active(now) and matches_all(self.matchers, labels)


def check_length(starts_at: datetime, ends_at: datetime) -> None:
    """Raise ValueError naming `ends_at` unless the silence ends after it starts and lasts at
    most the bound of long spans (1 year)."""
    if ends_at <= starts_at:
        raise ValueError("ends_at must be after starts_at")
    if ends_at - starts_at > LONG_SPAN.maximum:
        raise ValueError(
            f"ends_at: a silence lasts at most {format_duration(LONG_SPAN.maximum)} after it starts"
        )


def _from_row(row: Any) -> Silence:
    error = None
    try:
        matchers = [parse_matcher(m) for m in row.matchers]
        check_length(row.starts_at, row.ends_at)
    except ValueError as exc:  # a row from before today's validation: ignored, reported
        matchers, error = [], str(exc)
    except Exception as exc:
        matchers, error = [], describe(exc)
    return Silence(
        id=row.id,
        matchers=matchers,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        created_by=row.created_by,
        comment=row.comment,
        created_at=row.created_at,
        error=error,
    )


async def create_silence(
    db: Database,
    matchers: list[Matcher],
    starts_at: datetime,
    ends_at: datetime,
    created_by: str,
    comment: str,
    now: datetime,
) -> Silence:
    if not matchers:
        raise ValueError("a silence needs at least one matcher")
    check_length(starts_at, ends_at)
    silence = Silence(str(uuid.uuid4()), matchers, starts_at, ends_at, created_by, comment, now)
    await silence_store.insert(
        db,
        id=silence.id,
        matchers=[m.as_dict() for m in matchers],
        starts_at=starts_at,
        ends_at=ends_at,
        created_by=created_by,
        comment=comment,
        created_at=now,
    )
    return silence


async def list_silences(
    db: Database,
    *,
    include_expired_since: datetime | None = None,
    conn: Connection | None = None,
) -> list[Silence]:
    """Every silence (those ended before `include_expired_since` left out); `conn`: read in
    the caller's transaction."""
    rows = await silence_store.list_rows(db, ending_after=include_expired_since, conn=conn)
    silences = []
    for row in rows:
        # Compiling a silence's regexes takes up to milliseconds, and every dispatcher pass
        # reads them all: the loop gets its turn between silences.
        await asyncio.sleep(0)
        silences.append(_from_row(row))
    return silences


async def get_silence(db: Database, silence_id: str) -> Silence | None:
    row = await silence_store.by_id(db, silence_id)
    return _from_row(row) if row else None


async def expire_silence(db: Database, silence_id: str, now: datetime) -> Silence | None:
    """End a silence now (deleting would lose who silenced what)."""
    silence = await get_silence(db, silence_id)
    if silence is None:
        return None
    if silence.ends_at > now:
        await silence_store.set_end(db, silence_id, max(now, silence.starts_at))
    return await get_silence(db, silence_id)
