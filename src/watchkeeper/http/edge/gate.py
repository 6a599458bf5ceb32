"""Authentication before the body: a request that carries one to a route needing a role is
authenticated (and its role checked) from its headers first.

FastAPI reads and parses a route's body before the route's dependencies run, so without this
an anonymous client could make the service read and parse any body before its 401. The rule
per route is the one the route declares (`auth.roles.access_rule`): public routes (login,
pings) pass untouched, bounded by the size limit alone. The principal found is kept in
`request.state`, where `auth.roles.authorize` takes it instead of authenticating again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI, HTTPException, Request
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from watchkeeper.auth import sessions
from watchkeeper.auth.credentials import CSRF_MISSING
from watchkeeper.http import problems
from watchkeeper.http.edge.limits import CLOSE
from watchkeeper.http.roles import (
    CHALLENGE,
    LOGIN_NEEDED,
    SAFE_METHODS,
    AccessRule,
    Principal,
    Role,
    access_rule,
    api_routes,
    role_refusal,
)

if TYPE_CHECKING:
    from watchkeeper.auth.credentials import Authenticator


def has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


class AuthGate:
    """Pure ASGI middleware; see the module docstring."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator
        self._rules: list[tuple[APIRoute, AccessRule | None]] | None = None
        self._static: dict[tuple[str, str], AccessRule] = {}
        """Rules found for paths without parameters, by (method, path): the route list is
        scanned once for each (at most one entry per such route)."""

    def rule(self, scope: Scope) -> AccessRule | None:
        """The access rule of the route the router will pick, or None (no route: a 404/405
        that reads no body)."""
        key = (scope["method"], scope["path"])
        if key in self._static:
            return self._static[key]
        if self._rules is None:  # the routes are all mounted by the first request
            app: FastAPI = scope["app"]
            self._rules = [(route, access_rule(route)) for route in api_routes(app)]
        for route, rule in self._rules:
            if route.matches(scope)[0] is Match.FULL:
                if rule is not None and not route.param_convertors:
                    self._static[key] = rule
                return rule
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not has_body(scope):
            await self.app(scope, receive, send)
            return
        needed = self.rule(scope)
        if not isinstance(needed, Role):  # public, /metrics (no body), or no such route
            await self.app(scope, receive, send)
            return
        # No `receive`: reading the body here would be a bug, and raises.
        request = Request(scope)
        try:
            principal = await self.authenticator.identify(request)
            if principal is None:
                raise HTTPException(401, LOGIN_NEEDED, headers=CHALLENGE)
            refusal = role_refusal(principal, needed)
            if refusal is not None:
                raise HTTPException(403, refusal)
            settled = _csrf_settled(principal, request)
        except HTTPException as exc:
            headers = {**(exc.headers or {}), **CLOSE}
            response = problems.problem(
                exc.status_code,
                str(exc.detail),
                instance=scope["path"],
                headers=headers,
                accept=request.headers.get("accept"),
            )
            await response(scope, receive, send)
            return
        if settled:
            request.state.principal = principal
        await self.app(scope, receive, send)


def _csrf_settled(principal: Principal, request: Request) -> bool:
    """Whether the principal is final: a session's write must carry its CSRF token. In the
    header it is checked here (a 403 if wrong); in a form field it can only be read with the
    body, which the route's dependency does (bounded by the size limit), so it is not kept."""
    if principal.kind != "user" or request.method in SAFE_METHODS:
        return True
    given = request.headers.get(sessions.CSRF_HEADER)
    if given:
        if not sessions.tokens_match(principal.csrf_token, given):
            raise HTTPException(403, CSRF_MISSING)
        return True
    if sessions.is_form(request):
        return False
    raise HTTPException(403, CSRF_MISSING)
