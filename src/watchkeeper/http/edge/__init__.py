"""The HTTP edge: what every request passes before any route does work for it.

In order, outermost first (each a pure ASGI middleware, so streams pass untouched):

1. `headers.SecurityHeaders`: nosniff, Referrer-Policy, CSP with a nonce, HSTS over https.
2. `limits.BodyLimitMiddleware`: a body over its limit is a 413, refused on `Content-Length`
   before a byte is read, or counted as it streams.
3. `gate.AuthGate`: a body sent to a route that needs a role is authenticated (401/403)
   before it is read.
4. `json_depth.JsonDepthLimit`: a JSON body nested too deeply is a 400 before it is parsed
   (but for the routes whose parser bounds the depth itself, `depth_bounded`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from fastapi import FastAPI

from watchkeeper.http.edge.gate import AuthGate
from watchkeeper.http.edge.headers import SecurityHeaders
from watchkeeper.http.edge.json_depth import JsonDepthLimit
from watchkeeper.http.edge.limits import BodyLimitMiddleware

if TYPE_CHECKING:
    from watchkeeper.auth.credentials import Authenticator
    from watchkeeper.config.loader import ServerConfig


def install(
    app: FastAPI,
    server: ServerConfig,
    authenticator: Authenticator,
    depth_bounded: Collection[tuple[str, str]] = (),
) -> None:
    """Add the edge's middleware (after the app's own: the last added runs first).
    `depth_bounded`: (method, path) of the routes whose JSON parser bounds nesting itself."""
    app.add_middleware(JsonDepthLimit, max_depth=server.max_json_depth, exempt=depth_bounded)
    app.add_middleware(AuthGate, authenticator=authenticator)
    app.add_middleware(BodyLimitMiddleware, config=server)
    app.add_middleware(SecurityHeaders)
