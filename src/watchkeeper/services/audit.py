"""The audit log: who changed what, when, from where (written by `http.audit`'s middleware
for successful writes, and by the sessions service for refused logins)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from watchkeeper.core.clock import Clock
from watchkeeper.core.redact import redact_data, redact_text
from watchkeeper.store import audit as audit_store
from watchkeeper.store.database import Database


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded write (or refused login)."""

    id: int
    at: datetime
    actor: str
    actor_kind: str
    action: str
    target: str
    status: int
    detail: dict[str, Any] | None
    source_ip: str | None


async def record(
    db: Database,
    *,
    at: datetime,
    actor: str,
    actor_kind: str,
    action: str,
    target: str,
    status: int,
    detail: dict[str, Any] | None = None,
    source_ip: str | None = None,
) -> None:
    """Append an entry; the target and the detail are redacted, long texts cut."""
    await audit_store.insert(
        db,
        at=at,
        actor=actor[:255],
        actor_kind=actor_kind,
        action=action[:255],
        target=redact_text(target[:1000]),
        status=status,
        detail=redact_data(detail) or None,
        source_ip=source_ip,
    )


async def list_entries(
    db: Database,
    *,
    limit: int = 100,
    offset: int = 0,
    actor: str | None = None,
    action: str | None = None,
) -> tuple[list[AuditEntry], int]:
    """Newest first, with the total matching count."""
    rows, total = await audit_store.page(db, limit=limit, offset=offset, actor=actor, action=action)
    entries = [
        AuditEntry(
            id=r.id,
            at=r.at,
            actor=r.actor,
            actor_kind=r.actor_kind,
            action=r.action,
            target=r.target,
            status=r.status,
            detail=r.detail,
            source_ip=r.source_ip,
        )
        for r in rows
    ]
    return entries, total


class AuditService:
    """Reads and appends the audit log of one database."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def record(
        self,
        *,
        actor: str,
        actor_kind: str,
        action: str,
        target: str,
        status: int,
        detail: dict[str, Any] | None = None,
        source_ip: str | None = None,
    ) -> None:
        """Append an entry stamped now."""
        await record(
            self.db,
            at=self.clock.now(),
            actor=actor,
            actor_kind=actor_kind,
            action=action,
            target=target,
            status=status,
            detail=detail,
            source_ip=source_ip,
        )

    async def query(
        self,
        *,
        limit: int = 100,
        offset: int = 0,
        actor: str | None = None,
        action: str | None = None,
    ) -> tuple[list[AuditEntry], int]:
        """A page of entries, newest first, and how many match in all."""
        return await list_entries(self.db, limit=limit, offset=offset, actor=actor, action=action)
