"""The library API: run Watchkeeper inside an application's own event loop.

from watchkeeper import Monitor, CheckResult

monitor = Monitor("watchkeeper.yaml")        # or a Config, or None for defaults

@monitor.check("cache", interval="10s")
async def cache() -> bool:
    return await redis.ping()

async with monitor:                          # scheduler, alerts and notifications run
    ...                                      # while the application does its work
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from fastapi import FastAPI

from watchkeeper.app import Runtime
from watchkeeper.checks.base import CheckConfigBase
from watchkeeper.checks.python import PythonCheckConfig
from watchkeeper.config.loader import Config, load_config
from watchkeeper.core.clock import Clock
from watchkeeper.core.domain import Status
from watchkeeper.http.factory import create_app

F = TypeVar("F", bound=Callable[..., Any])


class Monitor:
    """Owns a Runtime built from a config plus checks registered in-process."""

    def __init__(self, config: Config | str | Path | None = None, *, clock: Clock | None = None):
        if isinstance(config, str | Path):
            config = load_config(config)
        self._base = config or Config()
        self._clock = clock
        self._extra: list[CheckConfigBase] = []
        self._runtime: Runtime | None = None

    def check(self, name: str, **options: Any) -> Callable[[F], F]:
        """Decorator registering `fn` as a check; `options` are check config fields
        (`interval="10s"`, `timeout`, `failure_threshold`, `severity`, `labels`, ...).

        `fn` may be sync or async and return bool, str, (bool, reason) or a CheckResult.
        """

        def register(fn: F) -> F:
            self.add_check(name, fn, **options)
            return fn

        return register

    def add_check(self, name: str, fn: Callable[..., Any], **options: Any) -> None:
        if self._runtime is not None:
            raise RuntimeError("add checks before start()")
        self._extra.append(PythonCheckConfig.for_callable(name, fn, **options))

    def build_config(self) -> Config:
        """The config with the in-process checks added (validated like the file's checks)."""
        fields = {name: getattr(self._base, name) for name in Config.model_fields}
        return Config.model_validate({**fields, "checks": [*self._base.checks, *self._extra]})

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise RuntimeError("the monitor is not started")
        return self._runtime

    async def start(self) -> None:
        self._runtime = Runtime(self.build_config(), clock=self._clock)
        await self._runtime.start()

    async def stop(self) -> None:
        if self._runtime is not None:
            await self._runtime.stop()
            self._runtime = None

    async def __aenter__(self) -> Monitor:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def status(self, name: str) -> Status:
        """The hard state of a check (UNKNOWN before its first result)."""
        state = self.runtime.states.get(name)
        return state.status if state else Status.UNKNOWN

    def asgi_app(self) -> FastAPI:
        """The HTTP API for this monitor, to mount in the application (e.g. at /ops).

        The monitor's own start/stop run the engine; the returned app has no lifespan of its
        own, so mount it under a parent app that does not start it again.
        """
        app = create_app(self.runtime.config, runtime=self.runtime)
        app.router.lifespan_context = _no_lifespan
        return app


class _NoLifespan:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *_exc: object) -> None:
        return None


def _no_lifespan(_app: FastAPI) -> _NoLifespan:
    return _NoLifespan()
