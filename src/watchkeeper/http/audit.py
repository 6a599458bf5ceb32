"""The audit log: who changed what, when, from where.

`AuditMiddleware` records every successful write (POST, PUT, PATCH, DELETE) under `/api/v1/`
and `/auth/`, with the principal the route's access rule established, before the response
leaves: a client that saw success can find its entry. Routes add specifics with
`add_detail(request, ...)`; failed logins are recorded by the login route itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from watchkeeper.core.redact import redact_data, redact_text
from watchkeeper.http.roles import Principal
from watchkeeper.store import audit as audit_store
from watchkeeper.store.database import Database

if TYPE_CHECKING:
    from watchkeeper.core.clock import Clock

log = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
AUDITED_PREFIXES = ("/api/v1/", "/auth/", "/dashboard/")
NOT_AUDITED = frozenset({"POST /api/v1/metrics"})
"""Pushed metric samples are observations arriving every few seconds, not changes anyone made."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
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


def add_detail(request: Request, **detail: Any) -> None:
    """Say what a write did, for its audit entry (ids made, names; never secrets)."""
    current = getattr(request.state, "audit_detail", None) or {}
    request.state.audit_detail = {**current, **detail}


class AuditMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): streaming and background tasks pass untouched."""

    def __init__(self, app: ASGIApp, db: Database, clock: Clock) -> None:
        self.app = app
        self.db = db
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})

        async def audited_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                await self._record(scope, state, message["status"])
            await send(message)

        await self.app(scope, receive, audited_send)

    async def _record(self, scope: Scope, state: dict[str, Any], status: int) -> None:
        template = getattr(scope.get("route"), "path", None)
        if not isinstance(template, str) or not template.startswith(AUDITED_PREFIXES):
            return
        action = f"{scope['method']} {template}"
        if action in NOT_AUDITED:
            return
        principal: Principal | None = state.get("principal")
        client = scope.get("client")
        detail = dict(state.get("audit_detail") or {})
        if principal is not None and principal.kind == "token":
            detail.setdefault("token_id", principal.id)
        try:
            await record(
                self.db,
                at=self.clock.now(),
                actor=principal.name if principal else "anonymous",
                actor_kind=principal.kind if principal else "anonymous",
                action=action,
                target=scope["path"],
                status=status,
                detail=detail,
                source_ip=principal.source_ip if principal else (client[0] if client else None),
            )
        except Exception:
            # The change is made already; losing its entry must not turn success into a 500.
            log.exception("could not write the audit entry for %s %s", action, scope["path"])
