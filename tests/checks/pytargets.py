"""Importable targets for the `python` check tests (`tests.checks.pytargets:<name>`)."""

from __future__ import annotations

import asyncio
import threading

from watchkeeper.core.domain import CheckResult

CALLER_THREADS: list[str] = []
"""Names of the threads `record_thread` was called in."""

NOT_CALLABLE = 42

release = threading.Event()
"""Set by a test to let `blocks_until_released` return."""


def returns_true() -> bool:
    return True


def returns_false() -> bool:
    return False


def returns_none() -> None:
    return None


def returns_message() -> str:
    return "3 jobs queued"


def returns_pair(ok: bool, message: str) -> tuple[bool, str]:
    return ok, message


def returns_result() -> CheckResult:
    return CheckResult.degraded("replica lag 12s", metrics={"lag_seconds": 12.0})


def returns_number() -> int:
    return 7


def raises(message: str = "connection refused") -> None:
    raise ConnectionError(message)


def exits() -> None:
    raise SystemExit(3)


def record_thread() -> bool:
    CALLER_THREADS.append(threading.current_thread().name)
    return True


def greet(name: str, punctuation: str = "!") -> str:
    return f"hello {name}{punctuation}"


def blocks_until_released() -> bool:
    # Bounded so a failing test cannot leave the thread behind for the rest of the session.
    return release.wait(timeout=30)


async def async_true() -> bool:
    return True


async def async_pair(ok: bool, message: str) -> tuple[bool, str]:
    await asyncio.sleep(0)
    return ok, message


async def async_raises() -> None:
    raise RuntimeError("disk full")


async def async_hangs() -> None:
    await asyncio.Event().wait()


class Probes:
    """Targets reached through an attribute path (`module:Probes.ping`)."""

    @staticmethod
    def ping() -> str:
        return "pong"


def refused_with_token(api_token: str) -> tuple[bool, str]:
    """Fails, echoing its secret argument (for the secret-policy test)."""
    return False, f"login with {api_token} refused"
