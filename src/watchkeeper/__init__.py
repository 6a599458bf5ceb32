"""Watchkeeper: self-hosted operations monitor. Library surface:

from watchkeeper import Monitor, CheckResult, Status, Severity, CircuitBreaker
"""

from typing import TYPE_CHECKING, Any

from watchkeeper.core.domain import CheckResult, Severity, Status
from watchkeeper.core.version import __version__

if TYPE_CHECKING:
    from watchkeeper.monitor import Monitor
    from watchkeeper.recovery.breaker import CircuitBreaker

__all__ = ["CheckResult", "CircuitBreaker", "Monitor", "Severity", "Status", "__version__"]


def __getattr__(name: str) -> Any:
    # Monitor pulls in the whole service (FastAPI, drivers); the CLI's quick commands
    # (validate, init) should not pay for that on every start.
    if name == "Monitor":
        from watchkeeper.monitor import Monitor

        return Monitor
    if name == "CircuitBreaker":
        from watchkeeper.recovery.breaker import CircuitBreaker

        return CircuitBreaker
    raise AttributeError(f"module 'watchkeeper' has no attribute {name!r}")
