"""What every action type shares: the outcome of a run, the context it runs in, the contract."""

from __future__ import annotations

import abc
import builtins
import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from watchkeeper.core.model import StrictModel
from watchkeeper.core.registry import Registry

if TYPE_CHECKING:
    import aiohttp

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

    @property
    def ok(self) -> bool:
        return self.status is OutcomeStatus.SUCCEEDED


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


class NotYetImplemented(Action[StrictModel]):
    """Base of the types whose config is accepted but whose run is still to be built."""

    what: ClassVar[str] = ""

    async def run(self, context: ActionContext) -> ActionOutcome:
        raise NotImplementedError(
            f"recovery action type {self.type!r} is not implemented yet ({self.what}; issue #17)"
        )
