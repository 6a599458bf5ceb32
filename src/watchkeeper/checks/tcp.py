"""`tcp`: the target accepts a TCP connection within the timeout."""

from __future__ import annotations

import asyncio
import time
from typing import Literal

from pydantic import Field

from watchkeeper.checks.base import Check, CheckConfigBase
from watchkeeper.checks.registry import register
from watchkeeper.core.domain import CheckResult


class TcpCheckConfig(CheckConfigBase):
    type: Literal["tcp"]
    host: str
    port: int = Field(ge=1, le=65535)


@register
class TcpCheck(Check[TcpCheckConfig]):
    type = "tcp"
    config_model = TcpCheckConfig

    async def run(self) -> CheckResult:
        cfg = self.config
        target = f"{cfg.host}:{cfg.port}"
        started = time.perf_counter()
        try:
            async with asyncio.timeout(cfg.timeout.total_seconds()):
                _, writer = await asyncio.open_connection(cfg.host, cfg.port)
        except TimeoutError:
            return CheckResult.down(f"connect to {target} timed out")
        except OSError as exc:
            return CheckResult.down(f"connect to {target} failed: {exc.strerror or exc}")
        elapsed = time.perf_counter() - started
        writer.close()
        try:
            async with asyncio.timeout(1):
                await writer.wait_closed()
        except (TimeoutError, OSError):
            pass
        return CheckResult.up(f"connected to {target}", response_time=elapsed)
