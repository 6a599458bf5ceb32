"""Heartbeat records: the last ping of each push check, kept across restarts."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import select

from watchkeeper.store import tables
from watchkeeper.store.database import Database, upsert


@dataclass(slots=True)
class HeartbeatRecord:
    check_name: str
    uuid: str
    last_ping_at: datetime | None = None
    last_start_at: datetime | None = None
    last_fail_at: datetime | None = None
    last_exit_code: int | None = None
    last_duration: float | None = None
    ping_count: int = 0
    resumed_at: datetime | None = None
    """When the check's last pause ended: its deadline restarts from here."""


async def load_heartbeats(db: Database) -> dict[str, HeartbeatRecord]:
    async with db.connect() as conn:
        rows = (await conn.execute(select(tables.heartbeats))).all()
    return {row.check_name: HeartbeatRecord(**row._asdict()) for row in rows}


async def save_heartbeats(db: Database, records: list[HeartbeatRecord]) -> None:
    async with db.begin() as conn:
        await upsert(conn, tables.heartbeats, [asdict(r) for r in records], ["check_name"])
