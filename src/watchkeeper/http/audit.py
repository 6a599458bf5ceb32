"""The audit log: who changed what, when, from where.

`AuditMiddleware` records every successful write (POST, PUT, PATCH, DELETE) under `/api/v1/`,
`/auth/` and `/dashboard/`, and the first-run `/setup`, with the principal the route's access
rule established, before the response leaves: a client that saw success can find its entry.
Routes add specifics with `add_detail(request, ...)`; failed logins are recorded by the
sessions service (`services.sessions`), refused setup attempts by the setup service.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from watchkeeper.http.roles import Principal
from watchkeeper.services.audit import AuditEntry, list_entries, record

if TYPE_CHECKING:
    from watchkeeper.services import Services

log = logging.getLogger(__name__)

__all__ = ["AuditEntry", "AuditMiddleware", "add_detail", "list_entries", "record"]

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
AUDITED_PREFIXES = ("/api/v1/", "/api/v2/silence", "/auth/", "/dashboard/", "/setup")
NOT_AUDITED = frozenset({"POST /api/v1/metrics"})
"""Pushed metric samples are observations arriving every few seconds, not changes anyone made."""


def add_detail(request: Request, **detail: Any) -> None:
    """Say what a write did, for its audit entry (ids made, names; never secrets)."""
    current = getattr(request.state, "audit_detail", None) or {}
    request.state.audit_detail = {**current, **detail}


class AuditMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): streaming and background tasks pass untouched."""

    def __init__(self, app: ASGIApp, services: Callable[[], Services]) -> None:
        self.app = app
        self.services = services
        """The services of the current run (a runtime started again builds new ones)."""

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
            await self.services().audit.record(
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
