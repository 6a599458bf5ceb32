"""Request-scoped access to what the app factory wired: the services of the running runtime,
and for the HTTP plumbing (role checks) the authenticator and the config."""

from __future__ import annotations

from fastapi import Request

from watchkeeper.auth.credentials import Authenticator
from watchkeeper.config.loader import Config
from watchkeeper.services import Services


def get_services(request: Request) -> Services:
    """The services of the current run (a runtime started again builds new ones)."""
    services: Services = request.app.state.runtime.services
    return services


def get_authenticator(request: Request) -> Authenticator:
    """Who a request's credentials name (sessions, tokens)."""
    authenticator: Authenticator = request.app.state.runtime.authenticator
    return authenticator


def get_config(request: Request) -> Config:
    """The running config (read-only)."""
    config: Config = request.app.state.runtime.config
    return config


async def services_dep(request: Request) -> Services:
    """`get_services` as a coroutine, for hot routes: FastAPI runs a plain function
    dependency in its thread pool, a thread hop per request for an attribute read."""
    return get_services(request)


async def config_dep(request: Request) -> Config:
    """`get_config` as a coroutine (see `services_dep`)."""
    return get_config(request)
