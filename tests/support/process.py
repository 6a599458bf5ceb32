"""Run `watchkeeper run` as a real subprocess, the way a user (or systemd) does."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.servers import free_port, wait_until


class WatchkeeperProcess:
    def __init__(
        self,
        config: Path | None,
        workdir: Path,
        token: str | None = None,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        open_files: int | None = None,
        split_stdout: bool = False,
    ) -> None:
        self.open_files = open_files
        """RLIMIT_NOFILE (soft and hard) of the service, as a small systemd LimitNOFILE sets it."""
        self.config = config
        self.args = args
        """Extra `watchkeeper run` options (e.g. `--log-level debug`)."""
        self.env = env or {}
        self.workdir = workdir
        self.token = token
        """An API token sent with every request (see tests.support.auth.cli_token)."""
        self.port = free_port()
        self.proc: asyncio.subprocess.Process | None = None
        self.log = workdir / "watchkeeper.log"
        self.stdout = workdir / "watchkeeper.stdout" if split_stdout else self.log
        """Where stdout goes: into the log with stderr, unless `split_stdout`."""
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 20) -> WatchkeeperProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        split = self.stdout != self.log
        with (
            self.log.open("ab") as log,
            self.stdout.open("ab") if split else contextlib.nullcontext(log) as stdout,
        ):
            config = ["--config", str(self.config)] if self.config is not None else []
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "watchkeeper",
                "run",
                *config,
                "--listen",
                f"127.0.0.1:{self.port}",
                *self.args,
                cwd=self.workdir,
                env=env,
                stdout=stdout,
                stderr=log,
                preexec_fn=self._limit if self.open_files is not None else None,
            )
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        self._session = aiohttp.ClientSession(headers=headers)
        await wait_until(self._ready, timeout, f"watchkeeper ready; log:\n{self.log_text()}")
        return self

    def _limit(self) -> None:  # in the child, before exec
        assert self.open_files is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_files, self.open_files))

    async def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.returncode is not None:
            raise AssertionError(f"watchkeeper exited {self.proc.returncode}:\n{self.log_text()}")
        try:
            return (await self.get("/health/ready", raw=True)) == 200
        except aiohttp.ClientError:
            return False

    async def get(self, path: str, raw: bool = False) -> Any:
        assert self._session is not None
        async with self._session.get(self.url + path, timeout=aiohttp.ClientTimeout(5)) as r:
            if raw:
                return r.status
            r.raise_for_status()
            return await r.json(content_type=None)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def send_signal(self, sig: int) -> None:
        """Send `sig` unless the process is known to have exited.

        Not `Process.send_signal`: that polls the child first (bpo-38630), and a poll that
        finds it dead reaps it under asyncio's child watcher, which then reports 255
        instead of the real exit status ("Unknown child process pid"). A zombie keeps its
        pid until the watcher reaps it, so `os.kill` cannot reach another process."""
        assert self.proc is not None
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, sig)

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        """Send `sig` and wait for exit; returns the exit code."""
        assert self.proc is not None
        self.send_signal(sig)
        try:
            async with asyncio.timeout(timeout):
                code = await self.proc.wait()
        finally:
            if self.proc.returncode is None:
                self.send_signal(signal.SIGKILL)
                await self.proc.wait()
            if self._session is not None:
                await self._session.close()
        return code
