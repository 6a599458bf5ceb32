"""The ASGI app factory: the HTTP face of a runtime, and the lifespan that starts and stops it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.middleware.gzip import GZipMiddleware

from watchkeeper.app import Runtime
from watchkeeper.config.loader import Config
from watchkeeper.core.version import __version__
from watchkeeper.http import edge, routes
from watchkeeper.http.api import pings
from watchkeeper.http.audit import AuditMiddleware
from watchkeeper.http.edge.head import HeadAsGet
from watchkeeper.http.status_pages import StatusPageMiddleware


def create_app(config: Config, *, runtime: Runtime | None = None) -> FastAPI:
    """The ASGI app; its lifespan starts and stops the runtime."""
    rt = runtime or Runtime(config)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await rt.start()
        try:
            yield
        finally:
            await rt.stop()

    app = FastAPI(
        title="Watchkeeper",
        version=__version__,
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # served by web.docs, with the assets vendored under /static
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.runtime = rt
    app.add_middleware(AuditMiddleware, services=lambda: rt.services)
    # Pages of 1,000 checks are about a megabyte of HTML, a tenth of that compressed;
    # event streams are left alone by the middleware.
    app.add_middleware(GZipMiddleware, minimum_size=2048, compresslevel=6)
    # Pings are answered here, inside the edge, without the router (see PingPath).
    app.add_middleware(pings.PingPath, services=lambda: rt.services)
    # Body limits, authentication before bodies, JSON depth, security headers.
    edge.install(app, rt.config.server, rt.authenticator, routes.DEPTH_BOUNDED_BY_PARSER)
    # HEAD for every GET route (the status pages answer HEAD themselves, before it).
    app.add_middleware(HeadAsGet)
    # Outermost: the public status pages answer from memory before anything else runs.
    app.add_middleware(StatusPageMiddleware, pages=lambda: rt.services.status_pages)
    routes.include_all(app)
    return app
