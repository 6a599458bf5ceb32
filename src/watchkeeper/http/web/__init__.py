"""The operations dashboard: server-rendered pages, htmx, live updates by server-sent events."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from watchkeeper.http.web import (
    account,
    actions,
    docs,
    live,
    login,
    pages,
    setup,
    status_subscriptions,
)
from watchkeeper.http.web.access import install_login_redirect
from watchkeeper.http.web.templates import STATIC_DIR, build_environment

ROUTERS = (
    login.router,
    setup.router,
    live.router,
    actions.router,
    pages.router,
    account.router,
    status_subscriptions.router,
)


def install(app: FastAPI) -> None:
    """Templates, static assets (served here: no CDN) and the dashboard's routes."""
    app.state.templates = build_environment()
    app.state.live = live.live_updates(app.state.templates, lambda: app.state.runtime.services)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    docs.install(app)
    install_login_redirect(app)
    for router in ROUTERS:
        app.include_router(router)
