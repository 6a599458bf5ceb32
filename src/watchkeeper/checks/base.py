"""What every check type shares: its config fields, the runtime context, the Check contract."""

from __future__ import annotations

import abc
import builtins
import dataclasses
from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar, Generic, TypeVar

import aiohttp
from pydantic import Field, model_validator

from watchkeeper.core.domain import CheckResult, Severity
from watchkeeper.core.durations import Interval, LongSpan, Timeout
from watchkeeper.core.model import Name, StrictModel
from watchkeeper.core.redact import Redactor

MAX_THRESHOLD = 100
"""Most consecutive results a state change may wait for: beyond it a check never alerts."""


class BreakerSettings(StrictModel):
    """A check's circuit breaker: once `failure_rate` of its last `window` results (at
    least `min_results` of them) are DOWN it opens: the check is probed only every
    `wait_in_open` (one trial run; UP closes it, DOWN opens it again) and its recovery
    pauses."""

    failure_rate: float = Field(default=1.0, gt=0, le=1)
    min_results: int = Field(default=5, ge=1, le=1000)
    window: int = Field(default=10, ge=1, le=1000)
    wait_in_open: LongSpan = timedelta(minutes=5)

    @model_validator(mode="after")
    def _sizes(self) -> BreakerSettings:
        if self.min_results > self.window:
            raise ValueError("min_results must not be more than window")
        return self


class CheckConfigBase(StrictModel):
    """Fields common to every check. Scheduling fields left unset take `defaults:` values."""

    push: ClassVar[bool] = False
    """Push checks (heartbeats) are reported to us, not run by the scheduler."""

    name: Name
    type: str
    description: str | None = None
    interval: Interval = timedelta(seconds=30)
    timeout: Timeout = timedelta(seconds=10)
    failure_threshold: int = Field(default=1, ge=1, le=MAX_THRESHOLD)
    success_threshold: int = Field(default=1, ge=1, le=MAX_THRESHOLD)
    severity: Severity = Severity.CRITICAL
    depends_on: list[Name] = Field(default_factory=list)
    component: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    notify: list[Name] | None = None
    """Channels to notify; None means every channel."""
    recovery: Name | None = None
    escalation: Name | None = None
    enabled: bool = True
    breaker: BreakerSettings | None = None
    """Probe a target that keeps failing less often, and pause its recovery meanwhile."""


@dataclass(slots=True)
class CheckContext:
    """Shared resources handed to checks; owned and closed by whoever built them."""

    http: aiohttp.ClientSession


C = TypeVar("C", bound=CheckConfigBase)


class Check(abc.ABC, Generic[C]):
    """One configured probe. `run` is awaited under the scheduler's timeout and may be cancelled.

    Subclasses set `type` and `config_model` and implement `run`; they must release anything
    they started (processes, connections) when cancelled.
    """

    type: ClassVar[str]
    config_model: ClassVar[builtins.type[CheckConfigBase]]

    def __init__(self, config: C, context: CheckContext) -> None:
        self.config = config
        self.context = context

    @property
    def name(self) -> str:
        return self.config.name

    @abc.abstractmethod
    async def run(self) -> CheckResult:
        """Probe the target once and say how it is."""

    def secrets(self) -> list[str]:
        """Configured values that must never appear in logs (passwords, tokens)."""
        return []

    def redacted(self, result: CheckResult) -> CheckResult:
        """`result` with this check's secrets, and any the secret policy recognises by name,
        masked in its reason and details: what is stored, shown, alerted and sent."""
        redactor: Redactor | None = getattr(self, "_output_redactor", None)
        if redactor is None:
            # Built on first use: secrets() may depend on state the subclass sets up.
            redactor = self._output_redactor = Redactor(self.secrets())
        reason = redactor(result.reason)
        details = redactor.data(result.details) if result.details else result.details
        if reason == result.reason and details == result.details:
            return result
        return dataclasses.replace(result, reason=reason, details=details)

    async def close(self) -> None:
        """Release pooled resources (connections). Default: nothing to release."""
