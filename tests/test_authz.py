"""Every route against the access policy, with real credentials of each role.

The policy, written here independently of the routers: the explicit PUBLIC set needs no
login; every other GET needs a viewer; every other write an operator; tokens, users and the
audit log an admin, and so do writes of what the config file would define (checks,
escalation policies, rules). A new route either matches the policy or fails here (and a route that
declares no rule at all is refused when the app is built).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from starlette.routing import Route

from tests.support.auth import bearer, token_for
from watchkeeper.app import Runtime
from watchkeeper.config.loader import Config
from watchkeeper.http.factory import create_app
from watchkeeper.http.roles import Role, access_rule, api_routes

pytestmark = pytest.mark.asyncio(loop_scope="module")

PINGS = [
    "/ping/{key}",
    *(f"/ping/{{key}}/{action}" for action in ("start", "fail", "log", "{exit_code}")),
    *(f"/ping/{{key}}/{{slug}}/{action}" for action in ("start", "fail", "log", "{exit_code}")),
]
PUBLIC = {
    ("GET", "/health"),
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
    ("GET", "/metrics"),  # auth.metrics: open (the default); token and off: test_auth.py
    *((m, p) for p in PINGS for m in ("GET", "HEAD", "POST")),
    ("GET", "/auth/login"),
    ("POST", "/auth/login"),
    ("GET", "/dashboard/login"),
    ("POST", "/dashboard/login"),
    ("GET", "/setup"),  # first run: 404 once a user exists, and only its token works
    ("POST", "/setup"),
    ("GET", "/api/v1/openapi.json"),
    ("HEAD", "/api/v1/openapi.json"),
    ("GET", "/api/docs"),
    ("HEAD", "/api/docs"),
    ("GET", "/api/redoc"),
    ("HEAD", "/api/redoc"),
    # Status page subscriptions: the tokens in the links are the credentials.
    *(
        (m, p)
        for p in ("/status/subscribe", "/status/{slug}/subscribe", "/status/unsubscribe/{token}")
        for m in ("GET", "POST")
    ),
    ("GET", "/status/confirm/{token}"),
}
SELF_SERVICE = {
    ("POST", "/auth/logout"),
    ("POST", "/auth/password"),
    ("POST", "/dashboard/account/password"),
}
"""Writes any logged-in principal may make about itself."""
ADMIN_ONLY = (
    "/api/v1/tokens",
    "/api/v1/users",
    "/api/v1/audit",
    "/api/v1/heartbeats/ping-key",
    "/api/v1/status-subscribers",
)
ADMIN_WRITES = {
    ("POST", "/api/v1/checks"),
    ("PUT", "/api/v1/checks/{name}"),
    ("DELETE", "/api/v1/checks/{name}"),
    ("POST", "/api/v1/escalation-policies"),
    ("PUT", "/api/v1/escalation-policies/{name}"),
    ("DELETE", "/api/v1/escalation-policies/{name}"),
    ("POST", "/api/v1/rules"),
    ("PUT", "/api/v1/rules/{name}"),
    ("DELETE", "/api/v1/rules/{name}"),
    ("POST", "/api/v1/status-pages"),
    ("PUT", "/api/v1/status-pages/{name}"),
    ("DELETE", "/api/v1/status-pages/{name}"),
    ("POST", "/api/v1/reload"),
}
"""Writes of API-managed checks, escalation policies, rules and status pages, and reloading
the config file (which defines them)."""


def policy(method: str, path: str) -> Role:
    if path.startswith(ADMIN_ONLY) or (method, path) in ADMIN_WRITES:
        return Role.ADMIN
    if method in ("GET", "HEAD") or (method, path) in SELF_SERVICE:
        return Role.VIEWER
    return Role.OPERATOR


def all_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route the app serves, API and plain (OpenAPI, docs)."""
    found = {(m, r.path) for r in api_routes(app) for m in r.methods or ()}
    for route in app.routes:
        if isinstance(route, Route) and route.methods:
            found |= {(m, route.path) for m in route.methods}
    return sorted(found, key=lambda mp: (mp[1], mp[0]))


APP = create_app(Config())
ROUTES = all_routes(APP)
PROTECTED = [mp for mp in ROUTES if mp not in PUBLIC]
WRITES = [mp for mp in PROTECTED if mp[0] not in ("GET", "HEAD") and mp not in SELF_SERVICE]


def ids(route: tuple[str, str]) -> str:
    return f"{route[0]} {route[1]}"


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


@dataclass
class Service:
    client: httpx.AsyncClient
    tokens: dict[Role, str]

    async def call(self, route: tuple[str, str], role: Role | None = None) -> httpx.Response:
        method, path = route
        headers = bearer(self.tokens[role]) if role is not None else {}
        return await self.client.request(method, concrete(path), headers=headers)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Service]:
    db = tmp_path_factory.mktemp("authz") / "wk.db"
    config = Config.model_validate({"storage": {"url": f"sqlite:///{db}"}})
    runtime = Runtime(config)
    await runtime.start()
    tokens = {role: await token_for(runtime, role, name=role.value) for role in Role}
    app = create_app(config, runtime=runtime)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://wk") as c:
        yield Service(c, tokens)
    await runtime.stop()


async def test_every_api_route_declares_an_access_rule_and_the_public_set_is_current() -> None:
    assert [r.path for r in api_routes(APP) if access_rule(r) is None] == []
    assert PUBLIC - set(ROUTES) == set(), "PUBLIC names routes that no longer exist"
    for route in api_routes(APP):
        for method in route.methods or ():
            if (method, route.path) in PUBLIC:
                assert access_rule(route) in ("public", "metrics"), (method, route.path)
            else:
                assert access_rule(route) == policy(method, route.path), (method, route.path)


@pytest.mark.parametrize("route", sorted(PUBLIC), ids=ids)
async def test_public_routes_answer_anonymous_requests(service: Service, route) -> None:
    response = await service.call(route)
    assert response.status_code not in (401, 403), response.text


@pytest.mark.parametrize("route", PROTECTED, ids=ids)
async def test_anonymous_requests_get_401_problem_with_a_bearer_challenge(
    service: Service, route
) -> None:
    response = await service.call(route)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    if route[0] != "HEAD":
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 401


@pytest.mark.parametrize("route", PROTECTED, ids=ids)
async def test_roles_below_the_policy_get_403_and_the_policy_role_gets_through(
    service: Service, route
) -> None:
    needed = policy(*route)
    for role in Role:
        response = await service.call(route, role)
        if role.allows(needed):
            assert response.status_code not in (401, 403), (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)


@pytest.mark.parametrize("route", WRITES, ids=ids)
async def test_a_viewer_token_cannot_write(service: Service, route) -> None:
    assert (await service.call(route, Role.VIEWER)).status_code == 403


@pytest.mark.parametrize(
    "route", [r for r in ROUTES if r[1].startswith(ADMIN_ONLY) or r in ADMIN_WRITES], ids=ids
)
async def test_an_operator_cannot_manage_users_tokens_or_read_the_audit_log(
    service: Service, route
) -> None:
    assert (await service.call(route, Role.OPERATOR)).status_code == 403
