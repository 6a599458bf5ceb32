"""`http`: send one request (drain a pool member, call a heal endpoint); 2xx is success."""

from __future__ import annotations

import asyncio
from time import perf_counter

import aiohttp

from watchkeeper.core.durations import format_duration
from watchkeeper.core.redact import redact_url
from watchkeeper.recovery.actions.base import (
    ACTIONS,
    Action,
    ActionContext,
    ActionOutcome,
    OutcomeStatus,
    truncate,
)
from watchkeeper.recovery.config import HttpSpec


@ACTIONS.register
class HttpRecovery(Action[HttpSpec]):
    """Sends the request within `timeout`; the (truncated) response body is the output."""

    type = "http"
    config_model = HttpSpec

    async def run(self, context: ActionContext) -> ActionOutcome:
        started = perf_counter()
        try:
            if context.http is not None:
                return await self._send(context.http, started)
            async with aiohttp.ClientSession() as session:
                return await self._send(session, started)
        except TimeoutError:
            reason = f"timed out after {format_duration(self.config.timeout)}"
            return ActionOutcome(OutcomeStatus.TIMED_OUT, perf_counter() - started, reason=reason)
        except aiohttp.ClientError as exc:
            reason = f"request to {redact_url(self.config.url)} failed: {exc.__class__.__name__}"
            detail = str(exc)
            return ActionOutcome(
                OutcomeStatus.ERROR, perf_counter() - started, redact_url(detail), reason=reason
            )

    async def _send(self, session: aiohttp.ClientSession, started: float) -> ActionOutcome:
        cfg = self.config
        # One deadline for connect, send and reading the body.
        async with (
            asyncio.timeout(cfg.timeout.total_seconds()),
            session.request(
                cfg.method,
                cfg.url,
                headers=cfg.headers,
                data=cfg.body.encode() if cfg.body is not None else None,
                allow_redirects=False,
            ) as response,
        ):
            body = await response.content.read(cfg.output_limit + 1)
        output, cut = truncate(body, cfg.output_limit)
        expected = cfg.expect_status
        ok = response.status in expected if expected else 200 <= response.status < 300
        return ActionOutcome(
            OutcomeStatus.SUCCEEDED if ok else OutcomeStatus.FAILED,
            perf_counter() - started,
            output,
            cut,
            http_status=response.status,
            reason=f"HTTP {response.status}",
        )
