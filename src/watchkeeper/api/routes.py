"""Every router, mounted in one place."""

from __future__ import annotations

from fastapi import FastAPI

from watchkeeper.api import alerts, checks, health, pings, prometheus, rules, silences


def include_all(app: FastAPI) -> None:
    for module in (health, prometheus, pings, checks, alerts, silences, rules):
        app.include_router(module.router)
