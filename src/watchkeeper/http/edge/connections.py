"""Connections that wait on their client are bounded in time and in number.

uvicorn times out only the idle gap *after* a response (`timeout_keep_alive`): a client that
connects and sends nothing, or trickles its headers or its body a byte at a time, holds its
connection (and a file descriptor) for ever. Enough of them take every descriptor the process
may open, and then the checks cannot connect and the webhooks cannot be sent: paging stops.

So each connection is *waiting* from the moment it is ready for a request (opened, or its
last response sent) until that request has arrived whole (headers and body), and

- a waiting connection is closed after `read_timeout` (`408` when nothing of an answer was
  started);
- at most `max_connections` are open: a new one makes room by closing the connection that has
  waited longest (a slow client, never one whose request is being answered, such as a live
  stream); only when none is waiting is the new one refused with `503`.

A client that sends its request promptly is never the one waiting longest, so a flood of slow
connections cannot lock out `/health/live`, and descriptors are left for the rest of the
process.
"""

from __future__ import annotations

import asyncio
import json
import resource
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

try:  # uvicorn[standard]: the C parser, several times faster per request than h11
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - only without httptools
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

_WAITING = (h11.IDLE, h11.SEND_BODY)
"""The client's h11 states in which the connection waits on it: before or inside a request."""

_BACKLOG = 2048
"""uvicorn's default listen backlog."""


def connection_limits(configured: int) -> tuple[int, int]:
    """How many connections may be open, and the listen backlog, within the open-file limit
    (`ulimit -n`, systemd's `LimitNOFILE`): open connections use at most half of it, and the
    backlog (also how many connections asyncio accepts in one go, each a descriptor before
    any can be refused) an eighth, so a burst of connections leaves three eighths for the
    rest (the database's files, sockets of checks and channels, pipes)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured, _BACKLOG
    return max(1, min(configured, soft // 2)), max(8, min(_BACKLOG, soft // 8))


def _problem(status: int, reason: str, title: str, detail: str, setting: str) -> bytes:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": title,
            "status": status,
            "detail": detail,
            "setting": setting,
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/problem+json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode()
    return head + body


class _Bounds(asyncio.Protocol):
    """The bounds over one of uvicorn's HTTP protocols (see `bounded_protocol`): the parser
    base tells `_client_waiting` (the connection waits on its client: before or inside a
    request) and `_nothing_begun` (neither a request nor an answer is under way)."""

    max_connections: int
    read_timeout: float
    full: bytes
    too_slow: bytes
    connections: set[Any]
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop

    waiting_since: float | None = None
    """Loop time since which the connection waits on its client; None: it does not."""
    _deadline: asyncio.TimerHandle | None = None

    def _client_waiting(self) -> bool:
        raise NotImplementedError

    def _nothing_begun(self) -> bool:
        raise NotImplementedError

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections and not self._make_room():
            transport.write(self.full)
            transport.close()
            return
        self._track()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._track()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._track()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def _track(self) -> None:
        if self.transport.is_closing() or not self._client_waiting():
            self._stop_waiting()
        elif self.waiting_since is None:
            self.waiting_since = self.loop.time()
            self._deadline = self.loop.call_later(self.read_timeout, self._too_slow)

    def _stop_waiting(self) -> None:
        self.waiting_since = None
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        self.cut_off(self.too_slow)

    def cut_off(self, answer: bytes) -> None:
        """Close this waiting connection, with `answer` when no answer was begun."""
        self._stop_waiting()
        if self.transport.is_closing():
            return
        if self._nothing_begun():
            self.transport.write(answer)
        # A request whose body was still coming sees a disconnect, as if the client left.
        self.transport.close()

    def _make_room(self) -> bool:
        waiting = [
            other
            for other in self.connections
            if isinstance(other, _Bounds) and other is not self and other.waiting_since is not None
        ]
        if not waiting:
            return False
        min(waiting, key=lambda other: other.waiting_since or 0.0).cut_off(self.full)
        return True


class _BoundedH11(_Bounds, H11Protocol):
    conn: h11.Connection

    def _client_waiting(self) -> bool:
        return self.conn.their_state in _WAITING

    def _nothing_begun(self) -> bool:
        return self.conn.our_state is h11.IDLE and self.conn.their_state is h11.IDLE


if HttpToolsProtocol is not None:

    class _BoundedHttpTools(_Bounds, HttpToolsProtocol):
        cycle: Any
        pipeline: Any

        def _client_waiting(self) -> bool:
            # No request yet, or the last one answered: waiting for the next (unless one
            # already arrived whole, queued behind it); else only while its body comes.
            if self.cycle is None or self.cycle.response_complete:
                return not self.pipeline
            return bool(self.cycle.more_body)

        def _nothing_begun(self) -> bool:
            return self.cycle is None or (self.cycle.response_complete and not self.pipeline)


def bounded_protocol(
    max_connections: int, read_timeout: float, *, parser: str = "auto"
) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol with these bounds (a class, as `uvicorn.Config(http=...)`
    wants): over httptools' parser (uvicorn[standard]) when installed, else h11's.
    `parser` forces one (`h11` or `httptools`)."""
    if parser not in ("auto", "h11", "httptools"):
        raise ValueError(f"parser: expected auto, h11 or httptools, not {parser!r}")
    if parser == "httptools" and HttpToolsProtocol is None:
        raise ValueError("parser: httptools is not installed")
    use_httptools = HttpToolsProtocol is not None and parser != "h11"
    base: type[_Bounds] = _BoundedHttpTools if use_httptools else _BoundedH11
    limits = {
        "max_connections": max_connections,
        "read_timeout": read_timeout,
        "too_slow": _problem(
            408,
            "Request Timeout",
            "request not received in time",
            f"the whole request must arrive within {read_timeout:g} s",
            "server.request_read_timeout",
        ),
        "full": _problem(
            503,
            "Service Unavailable",
            "too many connections",
            f"{max_connections} connections are open and none can be closed",
            "server.max_connections",
        ),
    }
    return type(f"Bounded{base.__name__.removeprefix('_Bounded')}Protocol", (base,), limits)
