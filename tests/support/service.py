"""A started runtime with its API in-process, as the API tests use it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.auth import bearer, token_for
from watchkeeper.app import Runtime
from watchkeeper.config.loader import Config
from watchkeeper.core.clock import Clock
from watchkeeper.http.factory import create_app
from watchkeeper.http.roles import Role


@dataclass
class Service:
    runtime: Runtime
    client: httpx.AsyncClient
    """Authenticated as an admin."""

    async def as_role(self, role: Role) -> dict[str, str]:
        return bearer(await token_for(self.runtime, role, name=role.value))


@contextlib.asynccontextmanager
async def running(
    config: Config | dict[str, Any], *, clock: Clock | None = None
) -> AsyncIterator[Service]:
    if not isinstance(config, Config):
        config = Config.model_validate(config)
    runtime = Runtime(config, clock=clock)
    await runtime.start()
    try:
        app = create_app(config, runtime=runtime)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://wk",
            headers=bearer(await token_for(runtime, Role.ADMIN)),
        ) as client:
            yield Service(runtime, client)
    finally:
        await runtime.stop()
