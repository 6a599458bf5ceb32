"""Security headers: `nosniff` and `Referrer-Policy` on every response; a Content Security
Policy with a per-request nonce and `frame-ancestors 'none'` on every HTML page; HSTS when
the request came over https.

Scripts run only with this request's nonce (`<script nonce="{{ nonce }}">`, see
`csp_nonce`): no inline script or handler an attacker manages to inject runs, and nothing
needs `eval` (htmx is configured without it in base.html). A page that needs another policy
(the API docs) sets its own `Content-Security-Policy`; it is kept.
"""

from __future__ import annotations

import secrets

from fastapi import Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

NONCE_KEY = "csp_nonce"
HSTS = "max-age=31536000"
"""A year; not `includeSubDomains`: other hosts of the domain are not ours to decide for."""


def policy(nonce: str, *, inline_styles: bool = False, workers: bool = False) -> str:
    """The CSP of an HTML page; the API docs' renderers need inline styles and a worker."""
    directives = [
        "default-src 'self'",
        f"script-src 'nonce-{nonce}'",
        "style-src 'self'" + (" 'unsafe-inline'" if inline_styles else ""),
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        *(["worker-src 'self' blob:"] if workers else []),
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


def csp_nonce(request: Request) -> str:
    """This request's script nonce (made by the first call; the middleware puts the same
    one in the page's Content-Security-Policy)."""
    state = request.scope.setdefault("state", {})
    nonce: str = state.get(NONCE_KEY) or state.setdefault(NONCE_KEY, secrets.token_urlsafe(18))
    return nonce


class SecurityHeaders:
    """Pure ASGI middleware; see the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The nonce is made by the first page that needs it (`csp_nonce`), or here for an
        # HTML answer that used none: most answers (API, pings) are not HTML.
        state = scope.setdefault("state", {})
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                if https:
                    headers.setdefault("Strict-Transport-Security", HSTS)
                if headers.get("content-type", "").startswith("text/html"):
                    nonce = state.get(NONCE_KEY) or state.setdefault(
                        NONCE_KEY, secrets.token_urlsafe(18)
                    )
                    headers.setdefault("Content-Security-Policy", policy(nonce))
                    headers.setdefault("X-Frame-Options", "DENY")
            await send(message)

        await self.app(scope, receive, send_with_headers)
