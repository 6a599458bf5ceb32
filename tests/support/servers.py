"""Real HTTP peers on loopback: a check target whose status can flip, a webhook receiver."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

POLL = 0.05  # seconds between looks at something we cannot be told about (another process)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `predicate` (sync or async) until truthy; fail with `what` after `timeout` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                value = predicate()
                if asyncio.iscoroutine(value):
                    value = await value
                if value:
                    return value
                await asyncio.sleep(POLL)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None


class Server:
    """An aiohttp app on 127.0.0.1 with an ephemeral port."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.runner = web.AppRunner(app, access_log=None)
        self.port = 0

    async def start(self) -> Server:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def close(self) -> None:
        await self.runner.cleanup()


class FlippingTarget(Server):
    """A service whose /health answers `status` (200 or 500, set by the test)."""

    def __init__(self) -> None:
        self.status = 200
        self.hits = 0
        app = web.Application()
        app.router.add_get("/health", self._health)
        super().__init__(app)

    async def _health(self, _request: web.Request) -> web.Response:
        self.hits += 1
        return web.Response(status=self.status, text="ok" if self.status == 200 else "boom")


@dataclass
class Delivery:
    event: str
    key: str | None
    signature: str | None
    body: bytes
    payload: dict[str, Any]
    answered: int


@dataclass
class WebhookReceiver(Server):
    """Records every POST; answers `reply_status`; honours Idempotency-Key like a real receiver."""

    secret: str | None = None
    reply_status: int = 200
    retry_after: str | None = None
    """Sent as the Retry-After header of every answer when set."""
    hold: asyncio.Event | None = None
    """When set, each answer waits for this event (a delivery kept in hand)."""
    attempts: list[Delivery] = field(default_factory=list)
    processed: dict[str, Delivery] = field(default_factory=dict)
    duplicates: int = 0
    accepted_per_key: Counter[str] = field(default_factory=Counter)
    """How many times each Idempotency-Key was accepted: above 1 is a redelivery."""

    def __post_init__(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._arrived = asyncio.Condition()
        Server.__init__(self, app)

    @property
    def hook_url(self) -> str:
        return f"{self.url}/hook"

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        payload = json.loads(body)
        delivery = Delivery(
            event=payload.get("event", ""),
            key=request.headers.get("Idempotency-Key"),
            signature=request.headers.get("X-Watchkeeper-Signature"),
            body=body,
            payload=payload,
            answered=self.reply_status,
        )
        self.attempts.append(delivery)
        if self.reply_status < 300 and delivery.key is not None:
            self.accepted_per_key[delivery.key] += 1
            if delivery.key in self.processed:
                self.duplicates += 1
            else:
                self.processed[delivery.key] = delivery
        async with self._arrived:
            self._arrived.notify_all()
        if self.hold is not None:
            await self.hold.wait()
        headers = {"Retry-After": self.retry_after} if self.retry_after is not None else None
        return web.Response(status=self.reply_status, headers=headers)

    def signature_ok(self, delivery: Delivery) -> bool:
        assert self.secret is not None
        expected = (
            "sha256=" + hmac.new(self.secret.encode(), delivery.body, hashlib.sha256).hexdigest()
        )
        return hmac.compare_digest(expected, delivery.signature or "")

    @property
    def redeliveries(self) -> dict[str, int]:
        """Idempotency-Key -> how many times it was accepted again after the first."""
        return {key: n - 1 for key, n in self.accepted_per_key.items() if n > 1}

    def accepted(self, event: str | None = None) -> list[Delivery]:
        return [d for d in self.processed.values() if event is None or d.event == event]

    async def wait_for(
        self, predicate: Callable[[WebhookReceiver], Any], timeout: float, what: str
    ) -> Any:
        """Wait until `predicate(self)` holds, woken by each arriving request."""
        try:
            async with asyncio.timeout(timeout):
                async with self._arrived:
                    return await self._arrived.wait_for(lambda: predicate(self))
        except TimeoutError:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what}; got "
                f"{[(d.event, d.answered) for d in self.attempts]}"
            ) from None
