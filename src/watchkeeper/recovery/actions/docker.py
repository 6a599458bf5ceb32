"""`docker`: restart (start, stop) a container over the Docker Engine API's unix socket.

`POST /containers/{name}/{verb}` answers 204 when done; 304 (already started or stopped)
counts as success too; 404 is an unknown container. The engine waits its own default (10 s)
for the container to stop before killing it, inside this action's `timeout`.
"""

from __future__ import annotations

import asyncio
from time import perf_counter

import aiohttp

from watchkeeper.core.durations import format_duration
from watchkeeper.recovery.actions.base import (
    ACTIONS,
    Action,
    ActionContext,
    ActionOutcome,
    OutcomeStatus,
    truncate,
)
from watchkeeper.recovery.config import DockerSpec

_OUTPUT_LIMIT = 16 * 1024


@ACTIONS.register
class DockerRecovery(Action[DockerSpec]):
    """Asks the Docker engine to restart the container and waits for its answer."""

    type = "docker"
    config_model = DockerSpec

    async def run(self, context: ActionContext) -> ActionOutcome:
        cfg = self.config
        started = perf_counter()
        # The host part is ignored over a unix socket; the API path is what matters.
        url = f"http://docker/containers/{cfg.container}/{cfg.verb}"
        try:
            async with (
                asyncio.timeout(cfg.timeout.total_seconds()),
                aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=cfg.socket)) as s,
                s.post(url) as response,
            ):
                body = await response.content.read(_OUTPUT_LIMIT + 1)
        except TimeoutError:
            reason = f"timed out after {format_duration(cfg.timeout)}"
            return ActionOutcome(OutcomeStatus.TIMED_OUT, perf_counter() - started, reason=reason)
        except aiohttp.ClientError as exc:
            missing = isinstance(exc, aiohttp.ClientConnectorError) and isinstance(
                exc.os_error, FileNotFoundError
            )
            if missing:
                reason = f"no Docker socket at {cfg.socket}"
            else:
                reason = f"Docker engine at {cfg.socket} failed: {exc.__class__.__name__}"
            return ActionOutcome(OutcomeStatus.ERROR, perf_counter() - started, reason=reason)
        output, cut = truncate(body, _OUTPUT_LIMIT)
        ok = response.status in (204, 304)
        if response.status == 404:
            reason = f"no container {cfg.container!r}"
        else:
            reason = f"{cfg.verb} {cfg.container}: HTTP {response.status}"
        return ActionOutcome(
            OutcomeStatus.SUCCEEDED if ok else OutcomeStatus.FAILED,
            perf_counter() - started,
            output,
            cut,
            http_status=response.status,
            reason=reason,
        )
