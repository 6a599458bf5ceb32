"""Every router, mounted in one place."""

from __future__ import annotations

from fastapi import FastAPI

from watchkeeper.api import alerts, checks, health, prometheus


def include_all(app: FastAPI) -> None:
    for module in (health, prometheus, checks, alerts):
        app.include_router(module.router)
