"""A small, bounded pool for argon2: password hashing never runs on the event loop, and a
burst of logins cannot take every core.

argon2id costs about 115 ms of CPU per hash or verification by design. Run on the event
loop it would stall every check and page for that long; run through `asyncio.to_thread`,
80 concurrent logins would occupy the default executor's threads. Here at most `size`
run at once; the others wait in line on the loop (cancellable: a client that gives up never
costs a hash), and the pool's threads end when the runtime stops.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

Runner = Callable[..., Awaitable[Any]]
"""How password work is run: `PasswordWorkers.run`, or `in_thread` outside a runtime."""

DEFAULT_SIZE = 2
"""Hashes at once: enough to keep logins flowing, few enough to leave the checks a core."""


class PasswordWorkers:
    """Runs password hashing and verification off the event loop, `size` at a time."""

    THREAD_PREFIX = "watchkeeper-passwords"

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self.size = size
        self._executor: ThreadPoolExecutor | None = None
        self._slots: asyncio.Semaphore | None = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on one of the pool's threads, waiting for a free one first."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.size)
        async with self._slots:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.size, self.THREAD_PREFIX)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    async def shutdown(self) -> None:
        """Let the hashes in hand finish, drop queued ones, and end the threads."""
        executor, self._executor, self._slots = self._executor, None, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, True, cancel_futures=True)


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Where no runtime owns a pool (the CLI's one-off commands): a worker thread."""
    return await asyncio.to_thread(fn, *args)
