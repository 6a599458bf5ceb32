"""Roles and the access rule every route declares.

Each router states its rule once, at router level, with per-route overrides for writes:

    router = APIRouter(prefix="/api/v1/silences", dependencies=[Depends(require(Role.VIEWER))])

    @router.post("", dependencies=[Depends(require(Role.OPERATOR))])

`api.routes.include_all` refuses to mount a route without a rule, and tests/test_authz.py
checks each rule against real requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.routing import APIRoute
from fastapi.security import APIKeyCookie, HTTPBearer
from starlette.routing import BaseRoute

from watchkeeper.auth.principals import (
    CHALLENGE,
    LOGIN_NEEDED,
    SAFE_METHODS,
    Principal,
    Role,
    role_refusal,
)
from watchkeeper.http.deps import get_authenticator, get_config

if TYPE_CHECKING:
    from fastapi.dependencies.models import Dependant

AccessRule = Role | Literal["public", "metrics"]
"""A role needed; `public` (anyone); `metrics` (as `auth.metrics` says: open, token, off)."""


# Declared so the OpenAPI document (and /api/docs' Authorize button) shows both schemes; the
# checking itself is done by the runtime's Authenticator.
_bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer wk_…`")
_cookie = APIKeyCookie(
    name="wk_session",
    auto_error=False,
    description="A browser session from `POST /auth/login`; writes also need `X-CSRF-Token`.",
)


async def authorize(request: Request, needed: Role) -> Principal:
    """The caller, if it holds `needed` or better; else 401 (nobody) or 403 (too little).

    A request with a body was authenticated before it was read (`edge.gate`): its principal
    is in `request.state` already."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        principal = await get_authenticator(request).authenticate(request)
        if principal is None:
            raise HTTPException(401, LOGIN_NEEDED, headers=CHALLENGE)
        request.state.principal = principal
    refusal = role_refusal(principal, needed)
    if refusal is not None:
        raise HTTPException(403, refusal)
    return principal


class RequireRole:
    """The dependency `require(role)` returns: resolves to the Principal."""

    def __init__(self, role: Role) -> None:
        self.access_rule: AccessRule = role
        self.role = role

    async def __call__(
        self,
        request: Request,
        _bearer: Any = Depends(_bearer),
        _cookie: Any = Depends(_cookie),
    ) -> Principal:
        return await authorize(request, self.role)

    def __repr__(self) -> str:
        return f"require(Role.{self.role.name})"


class Public:
    """No login needed: probes, heartbeat pings, the login itself, the OpenAPI document."""

    access_rule: AccessRule = "public"

    async def __call__(self) -> None:
        return None

    def __repr__(self) -> str:
        return "PUBLIC"


class MetricsAccess:
    """`/metrics` as `auth.metrics` says: open, a viewer token (or session), or 404."""

    access_rule: AccessRule = "metrics"

    async def __call__(self, request: Request, _bearer: Any = Depends(_bearer)) -> None:
        mode = get_config(request).auth.metrics
        if mode == "off":
            raise HTTPException(404, "metrics are turned off (auth.metrics: off)")
        if mode == "token":
            await authorize(request, Role.VIEWER)

    def __repr__(self) -> str:
        return "METRICS"


class HealthDetailsAccess:
    """The detailed health documents as `server.health_details` says: a viewer token (or
    session), the default, or `public`. Declares the viewer rule it needs by default."""

    access_rule: AccessRule = Role.VIEWER

    async def __call__(
        self,
        request: Request,
        _bearer: Any = Depends(_bearer),
        _cookie: Any = Depends(_cookie),
    ) -> None:
        if get_config(request).server.health_details != "public":
            await authorize(request, Role.VIEWER)

    def __repr__(self) -> str:
        return "HEALTH_DETAILS"


_REQUIRE = {role: RequireRole(role) for role in Role}
PUBLIC = Public()
METRICS = MetricsAccess()
HEALTH_DETAILS = HealthDetailsAccess()


def require(role: Role) -> RequireRole:
    """The dependency for routes that need `role` (one instance per role, so FastAPI runs it
    once per request however often it is declared)."""
    return _REQUIRE[role]


def access_rule(route: APIRoute) -> AccessRule | None:
    """The rule a route enforces (the strictest declared), or None when it declares none."""
    rules: list[AccessRule] = []

    def walk(dependant: Dependant) -> None:
        for dep in dependant.dependencies:
            rule = getattr(dep.call, "access_rule", None)
            if rule is not None:
                rules.append(rule)
            walk(dep)

    walk(route.dependant)
    roles = [r for r in rules if isinstance(r, Role)]
    if roles:
        return max(roles, key=lambda r: r.rank)
    return rules[0] if rules else None


def api_routes(app: FastAPI) -> list[APIRoute]:
    """Every API route of the app, through included routers, as declared.

    FastAPI (0.16x) includes routers lazily and builds each route's per-app copy on first
    use, at several milliseconds a route: asking it for all of them cost ~0.5 s per app
    (paid by every test that builds one). The declared routes already hold their router's
    prefix and dependencies, and we include routers with neither, so they are the routes
    requests reach; an inclusion that adds either is refused here rather than missed."""
    found: list[APIRoute] = []

    def walk(routes: Sequence[BaseRoute]) -> None:
        for route in routes:
            included = getattr(route, "original_router", None)
            if included is None:
                if isinstance(route, APIRoute):
                    found.append(route)
                continue
            context = route.include_context  # type: ignore[attr-defined]
            if context.prefix or context.dependencies:
                raise RuntimeError(
                    "include_router with a prefix or dependencies: declare them on the "
                    "APIRouter itself (http/roles.py reads routes as declared)"
                )
            walk(included.routes)

    walk(app.routes)
    return found


__all__ = ["CHALLENGE", "LOGIN_NEEDED", "SAFE_METHODS", "Principal", "Role", "role_refusal"]
