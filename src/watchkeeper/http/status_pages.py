"""The public status pages over HTTP: ready bytes from the in-memory snapshot.

A pure ASGI middleware, outermost, answers GET and HEAD for the page paths before routing,
authentication or the database are involved: the pages keep answering when everything else
is on fire, and fast (`bench/status_page.py`). It sets its own security headers (a strict
CSP: the pages have no script at all). Other paths, and methods other than GET and HEAD
(`POST /status/subscribe`), go on to the app.

Paths, under `/status` (the first page) or `/status/{slug}`, or `/` for a page whose
`domain` is the request's Host: the page, `/history?page=N`, `/incidents/{id}`,
`/style.css`, the Statuspage v2 JSON (`/summary.json`, `/status.json`, `/components.json`,
`/incidents.json`, `/incidents/unresolved.json`, `/scheduled-maintenances.json`,
`/scheduled-maintenances/upcoming.json`, `/scheduled-maintenances/active.json`),
`/feed.atom`, `/feed.rss`, `/badge/{component}.svg`, `/badge/{component}/uptime.svg?days=N`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import unquote

from starlette.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from watchkeeper.statuspage.snapshot import PageSnapshot, Rendered, StatusPages

CSP = (
    b"default-src 'none'; style-src 'self'; img-src 'self' https: data:; base-uri 'none'; "
    b"form-action 'self'; frame-ancestors 'none'"
)
CACHE = b"public, max-age=10, stale-while-revalidate=30, stale-if-error=86400"
_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", CACHE),
    (b"vary", b"Accept-Encoding"),
]
_HTML_EXTRA = [(b"content-security-policy", CSP), (b"x-frame-options", b"DENY")]
_NOT_FOUND = b"Not Found"
_APP_PATHS = ("/subscribe", "/confirm", "/unsubscribe")
"""Under a page's prefix, the subscription pages' own routes (served by the app)."""


def _split(path: str, pages: StatusPages) -> tuple[PageSnapshot | None, str] | None:
    """(the page's snapshot, the path under its prefix) when `path` is a status path."""
    if not (path == "/status" or path.startswith("/status/")):
        return None
    first = pages.snapshot()
    if first is None and pages.builds:
        return None  # no status page is configured
    if path == "/status" or path == "/status/":
        return first, ""
    rest = path[len("/status") :]
    if first is not None and (rest in first.fixed or _dynamic(rest)):
        return first, rest
    slug, _, under = rest[1:].partition("/")
    snapshot = pages.snapshot(slug)
    if snapshot is not None and slug != pages.first:
        under = "/" + under if under else ""
        return snapshot, under.rstrip("/") if under != "/" else ""
    return (None, rest) if first is None else None


def _dynamic(rest: str) -> bool:
    return rest == "/history" or rest.startswith(("/incidents/", "/badge/"))


class StatusPageMiddleware:
    def __init__(self, app: ASGIApp, pages: Callable[[], StatusPages]) -> None:
        self.app = app
        self.pages = pages
        """The current run's status pages (a runtime started again builds new ones)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        pages = self.pages()
        found: tuple[PageSnapshot | None, str] | None = None
        if path.startswith("/status"):
            found = _split(unquote(path) if "%" in path else path, pages)
        elif pages.domains:
            host = _header(scope, b"host")
            if host is not None:
                snapshot = pages.for_host(host.decode("latin-1").lower())
                if snapshot is not None and (
                    path == "/" or path in snapshot.fixed or _dynamic(path)
                ):
                    found = (snapshot, "" if path == "/" else path)
        if found is None:
            await self.app(scope, receive, send)
            return
        snapshot, under = found
        if snapshot is None:
            if under.startswith(_APP_PATHS):
                await self.app(scope, receive, send)  # they answer without a snapshot
                return
            await _send(send, scope, 503, b"text/plain", b"The status page is starting.", [])
            return
        query = scope.get("query_string", b"").decode("latin-1")
        rendered = snapshot.get(under, query)
        if rendered is None:
            if under.startswith(_APP_PATHS):
                await self.app(scope, receive, send)  # the subscription pages' own routes
                return
            await _send(send, scope, 404, b"text/plain", _NOT_FOUND, [])
            return
        await self._answer(scope, send, snapshot, rendered)

    async def _answer(
        self, scope: Scope, send: Send, snapshot: PageSnapshot, rendered: Rendered
    ) -> None:
        headers = [
            *_COMMON,
            (b"etag", rendered.etag.encode()),
            (b"last-modified", snapshot.last_modified.encode()),
            (b"age", str(int(snapshot.age)).encode()),
        ]
        view = snapshot.view
        if view.stale and view.data_as_of is not None:
            headers.append((b"x-status-data-as-of", view.data_as_of.isoformat().encode()))
        if view.config.noindex:
            headers.append((b"x-robots-tag", b"noindex, nofollow"))
        if rendered.content_type.startswith("text/html"):
            headers.extend(_HTML_EXTRA)
        if rendered.content_type.startswith("application/json"):
            headers.append((b"access-control-allow-origin", b"*"))
        if scope.get("scheme") == "https":
            headers.append((b"strict-transport-security", b"max-age=31536000"))
        match = _header(scope, b"if-none-match")
        if match is not None:
            fresh = rendered.etag.encode() in match
        else:  # If-Modified-Since counts only without If-None-Match (RFC 9110)
            fresh = _header(scope, b"if-modified-since") == snapshot.last_modified.encode()
        if fresh:
            await _send(send, scope, 304, None, b"", headers)
            return
        body = rendered.body
        if rendered.gzipped is not None and b"gzip" in (_header(scope, b"accept-encoding") or b""):
            body = rendered.gzipped
            headers.append((b"content-encoding", b"gzip"))
        await _send(send, scope, 200, rendered.content_type.encode(), body, headers)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def _send(
    send: Send,
    scope: Scope,
    status: int,
    content_type: bytes | None,
    body: bytes,
    headers: list[tuple[bytes, bytes]],
) -> None:
    out = list(headers)
    if content_type is not None:
        out.append((b"content-type", content_type))
    if status != 304:
        out.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
