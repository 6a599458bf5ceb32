"""Watchkeeper: self-hosted operations monitor. Library surface:

from watchkeeper import Monitor, CheckResult, Status, Severity
"""

from watchkeeper.domain import CheckResult, Severity, Status
from watchkeeper.monitor import Monitor

__all__ = ["CheckResult", "Monitor", "Severity", "Status"]
__version__ = "0.1.0"
