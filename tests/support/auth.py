"""Credentials for tests: tokens minted straight into a runtime's database, or by the CLI."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from watchkeeper.app import Runtime
from watchkeeper.auth import tokens
from watchkeeper.http.roles import Role


async def token_for(runtime: Runtime, role: Role = Role.ADMIN, name: str = "tests") -> str:
    """A new API token on the (started) runtime's database."""
    _, secret = await tokens.create_token(runtime.db, name=name, role=role, now=runtime.clock.now())
    return secret


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def admin_headers(runtime: Runtime, role: Role = Role.ADMIN) -> dict[str, str]:
    """Headers authenticating as a fresh token (admin unless told) on the runtime."""
    return bearer(await token_for(runtime, role))


async def cli_token(
    config: Path | None, *, cwd: Path | None = None, role: str = "admin", name: str = "tests"
) -> str:
    """`watchkeeper token create` as a script runs it: the token is stdout's last line."""
    args = ["-m", "watchkeeper", "token", "create", "--role", role, "--name", name]
    if config is not None:
        args += ["--config", str(config)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, stderr.decode(errors="replace")
    return stdout.decode().strip().splitlines()[-1]
