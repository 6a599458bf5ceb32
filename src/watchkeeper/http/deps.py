"""Request-scoped access to what the app factory wired: the services of the running runtime."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

from watchkeeper.services import Services

if TYPE_CHECKING:
    from watchkeeper.app import Runtime


def get_runtime(request: Request) -> Runtime:
    """The runtime itself: only for the HTTP plumbing (`http.factory`, `http.edge`), not for
    routes or pages, which call services."""
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_services(request: Request) -> Services:
    """The services of the current run (a runtime started again builds new ones)."""
    services: Services = request.app.state.runtime.services
    return services
