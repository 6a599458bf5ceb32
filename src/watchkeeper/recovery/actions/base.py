"""What every action type shares: the outcome of a run, the context it runs in, the contract."""

from __future__ import annotations

import abc
import builtins
import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from watchkeeper.core.model import StrictModel
from watchkeeper.core.registry import Registry

if TYPE_CHECKING:
    import aiohttp

    from watchkeeper.core.clock import Clock
    from watchkeeper.recovery.supervisor import Supervisor


class OutcomeStatus(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    """It ran and said no: non-zero exit, unexpected HTTP status."""
    TIMED_OUT = "timed_out"
    ERROR = "error"
    """It could not run at all: program not found, connection refused."""


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """How one run of an action went."""

    status: OutcomeStatus
    duration: float
    """Seconds from start to end."""
    output: str = ""
    """Captured output (stdout and stderr as written, or a response body), at most the
    action's `output_limit` bytes of it; not yet redacted."""
    truncated: bool = False
    exit_code: int | None = None
    """A program's exit code; negative: killed by that signal."""
    http_status: int | None = None
    reason: str = ""
    """One line for people: `exit code 1`, `timed out after 5s`, `HTTP 503`."""
    escalate: bool = False
    """The alert of the check should escalate now (a runbook's `if_failed: escalate`)."""

    @property
    def ok(self) -> bool:
        return self.status is OutcomeStatus.SUCCEEDED


class Notifier(Protocol):
    """How a `notify` action (or runbook step) tells people: given from outside (app.py
    hands the notification outbox over), since recovery sits below notify in the layers."""

    async def send(
        self,
        message: str,
        channels: Sequence[str] | None,
        *,
        action: str,
        check: str | None,
        run_id: str | None,
    ) -> list[str]:
        """Queue `message` for `channels` (None: the check's, else every channel); return
        the channels it was queued for. Raises ValueError for an unknown channel."""
        ...


CheckProbe = Callable[[str], Awaitable[bool | None]]
"""Run the check called so once, now: whether it is UP (None: no such check)."""

StepRunner = Callable[[str], Awaitable[ActionOutcome]]
"""Run the named action of the `recovery:` section once (a runbook's `action:` step)."""


@dataclass(slots=True)
class ActionContext:
    """What a run may use; the resources are owned (and closed) by whoever made them."""

    check: str | None = None
    """The check that triggered the run, if any."""
    attempt: int = 1
    http: aiohttp.ClientSession | None = None
    """Shared HTTP session; an action without one opens its own for the run."""
    supervisor: Supervisor | None = None
    """Where `process` actions' programs live."""
    action: str | None = None
    """The name of the action run (a runbook step's action: the runbook's)."""
    run_id: str | None = None
    clock: Clock | None = None
    """For a runbook's waits and verify deadlines; None: the system clock."""
    notifier: Notifier | None = None
    probe: CheckProbe | None = None
    """For a runbook's `verify:` steps."""
    run_step: StepRunner | None = None
    """For a runbook's `action:` steps."""
    on_output: Callable[[str], None] | None = None
    """Told each line a long run (a runbook) adds to its output as it goes (live output)."""


S = TypeVar("S", bound=StrictModel)


class Action(abc.ABC, Generic[S]):
    """One configured action type. `run` may be cancelled; it must leave nothing behind."""

    type: ClassVar[str]
    config_model: ClassVar[builtins.type[StrictModel]]
    """The spec model (`CommandSpec`, ...); named actions are subclasses of it."""

    def __init__(self, config: S) -> None:
        self.config = config

    @abc.abstractmethod
    async def run(self, context: ActionContext) -> ActionOutcome:
        """Do it once and say how it went (failures are outcomes, not exceptions)."""


ACTIONS: Registry[Action[Any]] = Registry("recovery action")


def build_action(config: StrictModel) -> Action[Any]:
    """The action for a spec or named action of any registered type."""
    kind = getattr(config, "type", None)
    try:
        cls = ACTIONS.get(str(kind))
    except KeyError:
        raise ValueError(f"unknown recovery action type {kind!r}") from None
    return cls(config)


def truncate(data: bytes, limit: int) -> tuple[str, bool]:
    """`data` decoded, cut to `limit` bytes; and whether it was cut."""
    cut = len(data) > limit
    return data[:limit].decode("utf-8", "replace"), cut
