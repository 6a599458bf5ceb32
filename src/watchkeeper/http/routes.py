"""Every router, mounted in one place; a route without an access rule is refused here."""

from __future__ import annotations

from fastapi import FastAPI

from watchkeeper.http import problems, web
from watchkeeper.http.api import (
    alertmanager,
    alerts,
    audit,
    auth,
    checks,
    health,
    incidents,
    maintenance,
    objects,
    pings,
    prometheus,
    recovery,
    reload,
    rules,
    series,
    silences,
    status,
    status_subscribers,
    tokens,
    users,
)
from watchkeeper.http.roles import access_rule, api_routes

DEPTH_BOUNDED_BY_PARSER = alertmanager.DEPTH_BOUNDED_BY_PARSER
"""(method, path) of the routes that parse JSON with pydantic-core alone, which refuses deep
nesting itself (a 400): the edge does not measure their bodies first."""


def include_all(app: FastAPI) -> None:
    problems.install(app)
    for module in (
        health,
        prometheus,
        pings,
        auth,
        checks,
        alerts,
        alertmanager,
        silences,
        maintenance,
        incidents,
        rules,
        recovery,
        objects,
        reload,
        series,
        status,
        status_subscribers,
        tokens,
        users,
        audit,
    ):
        app.include_router(module.router)
    app.include_router(health.details)
    web.install(app)
    unguarded = [
        f"{sorted(r.methods or ())} {r.path}" for r in api_routes(app) if access_rule(r) is None
    ]
    if unguarded:
        raise RuntimeError(
            "routes without an access rule (add require(Role...) or PUBLIC): "
            + ", ".join(unguarded)
        )
