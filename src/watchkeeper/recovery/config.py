"""The `recovery:` section: typed models of every action type, their guards, runbook steps.

Each action type has a *spec* (what to do: `CommandSpec`, `HttpSpec`, ...) and a named,
guarded form for the section (`CommandAction` = spec + name + guards + `on_resolved`).
`on_resolved` takes a spec without a name: it undoes a fallback when the check is UP again,
so only one-shot types fit there (not `process`, not `runbook`).

The section is either a plain list of actions (as in the contract) or a mapping with
`max_concurrent` and `actions`; both load into `RecoveryConfig`.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Container
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)
from yarl import URL

from watchkeeper.core.durations import LongSpan, ShortWait, ShutdownGrace, Timeout
from watchkeeper.core.model import Name, StrictModel, Text

MAX_ATTEMPTS = 100
"""Most attempts a guard may allow within its window: beyond it, it guards nothing."""

MAX_OUTPUT = 1024 * 1024
"""Largest `output_limit` (bytes kept of an action's output)."""

HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]

STOP_SIGNALS = ("TERM", "INT", "QUIT", "HUP", "KILL", "USR1", "USR2")
"""Signals a supervised program may be stopped with (`stop_signal`, with or without `SIG`)."""

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_UNIT = re.compile(r"^[A-Za-z0-9:_.@\\-]{1,255}$")
_CONTAINER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_DOTTED = re.compile(rf"^{_IDENT}(\.{_IDENT})*(:{_IDENT}(\.{_IDENT})*)?$")


def _argv(value: list[str]) -> list[str]:
    if not value[0]:
        raise ValueError("the program (first element) must not be empty")
    if any("\0" in arg for arg in value):
        raise ValueError("arguments must not contain NUL characters")
    return value


def _env(value: dict[str, str]) -> dict[str, str]:
    for key, item in value.items():
        if not key or "=" in key or "\0" in key or "\0" in item:
            raise ValueError(f"invalid environment variable {key!r}")
    return value


class _ProgramFields(StrictModel):
    """What a program is run with: argv (no shell), extra environment, working directory."""

    command: list[str] = Field(min_length=1)
    """argv: run directly, never through a shell."""
    env: dict[str, str] = Field(default_factory=dict)
    """Added to (and overriding) Watchkeeper's own environment."""
    cwd: str | None = Field(default=None, min_length=1)

    @field_validator("command")
    @classmethod
    def _valid_argv(cls, value: list[str]) -> list[str]:
        return _argv(value)

    @field_validator("env")
    @classmethod
    def _valid_env(cls, value: dict[str, str]) -> dict[str, str]:
        return _env(value)


class CommandSpec(_ProgramFields):
    """Run a program once; exit code 0 is success."""

    type: Literal["command"]
    timeout: Timeout = timedelta(seconds=60)
    """After this the program's whole process group is killed and the run has failed."""
    output_limit: int = Field(default=64 * 1024, ge=0, le=MAX_OUTPUT)
    """Bytes of stdout and of stderr kept; the rest is read and dropped."""


class HttpSpec(StrictModel):
    """Send one HTTP request (drain a pool member, call a heal endpoint); 2xx is success."""

    model_config = ConfigDict(hide_input_in_errors=True)  # headers may carry credentials

    type: Literal["http"]
    url: str
    method: HttpMethod = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    timeout: Timeout = timedelta(seconds=10)
    expect_status: list[int] | None = Field(default=None, min_length=1)
    """Status codes that count as success; None accepts any 2xx."""
    output_limit: int = Field(default=64 * 1024, ge=0, le=MAX_OUTPUT)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip()
        try:
            url = URL(value)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not a valid URL: {exc}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("url must be http:// or https:// with a host")
        return value

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, item in value.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"invalid header name {name!r}")
            if any(ch in item for ch in "\r\n\0"):
                raise ValueError(f"header {name!r} must not contain line breaks or NUL")
        return value

    @field_validator("expect_status")
    @classmethod
    def _codes_exist(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (bad := [c for c in value if not 100 <= c <= 599]):
            raise ValueError(f"not HTTP status codes: {bad}")
        return value


class SystemdSpec(StrictModel):
    """`systemctl VERB UNIT`."""

    type: Literal["systemd"]
    unit: str
    verb: Literal["restart", "start", "stop", "reload", "try-restart"] = "restart"
    timeout: Timeout = timedelta(seconds=90)

    @field_validator("unit")
    @classmethod
    def _unit_name(cls, value: str) -> str:
        # A name starting with '-' would be read by systemctl as an option.
        if not _UNIT.match(value) or value.startswith("-"):
            raise ValueError(f"not a systemd unit name: {value!r}")
        return value


class DockerSpec(StrictModel):
    """Restart a container over the Docker Engine API's unix socket."""

    type: Literal["docker"]
    container: str
    verb: Literal["restart", "start", "stop"] = "restart"
    socket: str = "/var/run/docker.sock"
    timeout: Timeout = timedelta(seconds=60)

    @field_validator("container")
    @classmethod
    def _container_name(cls, value: str) -> str:
        if not _CONTAINER.match(value):
            raise ValueError(f"not a container name or id: {value!r}")
        return value


class PythonSpec(StrictModel):
    """Call a Python callable (`package.module:function` or `package.module.function`)."""

    type: Literal["python"]
    callable: str
    kwargs: dict[str, Any] = Field(default_factory=dict)
    timeout: Timeout = timedelta(seconds=60)

    @field_validator("callable")
    @classmethod
    def _dotted(cls, value: str) -> str:
        if not _DOTTED.match(value) or ("." not in value and ":" not in value):
            raise ValueError(f"expected a dotted path like package.module:function, got {value!r}")
        return value


class NotifySpec(StrictModel):
    """Send a message to channels (all when `channels` is unset)."""

    type: Literal["notify"]
    message: Text = Field(min_length=1, max_length=4000)
    channels: list[Name] | None = None


# -- runbook steps -----------------------------------------------------------------------


class RunStep(StrictModel):
    """Run another named action of this section (not a runbook)."""

    action: Name


class NotifyStep(StrictModel):
    """`{action: notify, message: ...}`: tell people what the runbook is doing."""

    action: Literal["notify"]
    message: Text = Field(min_length=1, max_length=4000)
    channels: list[Name] | None = None


class WaitStep(StrictModel):
    """Pause before the next step."""

    wait: ShortWait


class VerifyStep(StrictModel):
    """Re-run a check until it is UP, for at most `timeout`."""

    verify: Name
    timeout: Timeout = timedelta(minutes=2)


class IfFailedStep(StrictModel):
    """What happens when a step before this one failed."""

    if_failed: Literal["escalate", "abort", "continue"]


_STEP_KEYS = ("wait", "verify", "if_failed", "action")


def _step_tag(value: Any) -> str | None:
    # The key a step has says its kind; `action: notify` is the built-in message step, any
    # other `action:` names an action of this section. Validated steps (models) map back.
    if isinstance(value, StrictModel):
        return _MODEL_TAGS.get(type(value))
    if not isinstance(value, dict):
        return None
    for key in _STEP_KEYS[:3]:
        if key in value:
            return key
    if "action" in value:
        return "notify" if value["action"] == "notify" else "run"
    return None


_MODEL_TAGS: dict[type, str] = {
    WaitStep: "wait",
    VerifyStep: "verify",
    IfFailedStep: "if_failed",
    NotifyStep: "notify",
    RunStep: "run",
}

Step = Annotated[
    Annotated[WaitStep, Tag("wait")]
    | Annotated[VerifyStep, Tag("verify")]
    | Annotated[IfFailedStep, Tag("if_failed")]
    | Annotated[NotifyStep, Tag("notify")]
    | Annotated[RunStep, Tag("run")],
    Discriminator(
        _step_tag,
        custom_error_type="runbook_step",
        custom_error_message=f"a step needs one of the keys {', '.join(_STEP_KEYS)}",
    ),
]
"""One runbook step, told apart by the key it has."""


class RunbookSpec(StrictModel):
    """Steps in order, optionally only after a person approved."""

    type: Literal["runbook"]
    approval: Literal["required", "none"] = "none"
    approval_timeout: LongSpan = timedelta(hours=1)
    """A request not approved or rejected by then expires, and the alert escalates."""
    steps: list[Step] = Field(min_length=1, max_length=100)


# -- named, guarded actions --------------------------------------------------------------

OneShotSpec = Annotated[
    CommandSpec | HttpSpec | SystemdSpec | DockerSpec | PythonSpec | NotifySpec,
    Field(discriminator="type"),
]
"""What `on_resolved` may do: a single action, not a process or a runbook."""


class Guards(StrictModel):
    """How often an action may run: `max_attempts` within `within`, at least `cooldown`
    apart. Once exhausted it is locked out until the check is UP again or it is reset."""

    max_attempts: int = Field(default=3, ge=1, le=MAX_ATTEMPTS)
    within: LongSpan = timedelta(minutes=15)
    cooldown: ShortWait = timedelta(minutes=1)


class _Named(Guards):
    name: Name
    description: str | None = Field(default=None, max_length=1000)
    on_resolved: OneShotSpec | None = None
    """Runs once when the check that triggered this action is UP again (undo a fallback)."""


class CommandAction(CommandSpec, _Named):
    """A named `command` action."""


class HttpAction(HttpSpec, _Named):
    """A named `http` action."""


class SystemdAction(SystemdSpec, _Named):
    """A named `systemd` action."""


class DockerAction(DockerSpec, _Named):
    """A named `docker` action."""


class PythonAction(PythonSpec, _Named):
    """A named `python` action."""


class NotifyAction(NotifySpec, _Named):
    """A named `notify` action."""


class RunbookAction(RunbookSpec, _Named):
    """A named `runbook`."""


def _signal_name(value: Any) -> Any:
    if isinstance(value, str):
        name = value.strip().upper()
        return name.removeprefix("SIG")
    return value


class ProcessAction(_ProgramFields, _Named):
    """A program Watchkeeper supervises from start (see recovery/supervisor.py).

    `max_attempts` within `within` bounds the restarts: one more exit gives up (exhausted).
    `cooldown` does not apply: a restart is immediate, then backs off on quick exits."""

    type: Literal["process"]
    cooldown: ShortWait = timedelta(0)
    startsecs: ShortWait = timedelta(seconds=1)
    """A run shorter than this is a failed start: the next start backs off."""
    stop_signal: Literal["TERM", "INT", "QUIT", "HUP", "KILL", "USR1", "USR2"] = "TERM"
    stop_timeout: ShutdownGrace = timedelta(seconds=10)
    """After `stop_signal`, how long before SIGKILL."""
    backoff: ShortWait = timedelta(seconds=1)
    """Delay before the start after the first failed start; doubles with each one more."""
    max_backoff: ShortWait = timedelta(seconds=60)
    keep_running: bool = False
    """Leave the program running when Watchkeeper stops."""
    stdout_log: str | None = Field(default=None, min_length=1)
    stderr_log: str | None = Field(default=None, min_length=1)
    """Files for the program's output; unset: `<log dir>/<name>.out.log` / `.err.log`."""
    log_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=1024**3)
    """A log file reaching this size is rotated (`.1`, `.2`, ...)."""
    log_backups: int = Field(default=3, ge=0, le=100)

    _stop_signal_name = field_validator("stop_signal", mode="before")(_signal_name)

    @model_validator(mode="after")
    def _backoff_order(self) -> ProcessAction:
        if self.max_backoff < self.backoff:
            raise ValueError("max_backoff must not be less than backoff")
        if self.on_resolved is not None:
            raise ValueError("on_resolved does not apply to a supervised process")
        return self

    @property
    def stop_signum(self) -> signal.Signals:
        """`stop_signal` as a signal number."""
        return signal.Signals[f"SIG{self.stop_signal}"]


RecoveryAction = Annotated[
    CommandAction
    | ProcessAction
    | HttpAction
    | SystemdAction
    | DockerAction
    | PythonAction
    | NotifyAction
    | RunbookAction,
    Field(discriminator="type"),
]
"""One entry of the `recovery:` section, by its `type`."""

PROGRAM_TYPES = frozenset({"command", "process", "systemd", "docker", "python"})
"""Types that run programs or code: only ever from the config file, never from the API."""


class RecoveryConfig(StrictModel):
    """The whole `recovery:` section."""

    max_concurrent: int = Field(default=4, ge=1, le=1000)
    """Most actions running at once across all targets."""
    actions: list[RecoveryAction] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _plain_list(cls, value: Any) -> Any:
        # The contract writes the section as a bare list of actions.
        return {"actions": value} if isinstance(value, list) else value

    @model_validator(mode="after")
    def _references(self) -> RecoveryConfig:
        names: dict[str, str] = {}
        for action in self.actions:
            if action.name in names:
                raise ValueError(f"duplicate recovery action name {action.name!r}")
            names[action.name] = action.type
        for action in self.actions:
            if not isinstance(action, RunbookAction):
                continue
            for index, step in enumerate(action.steps):
                if not isinstance(step, RunStep):
                    continue
                where = f"runbook {action.name!r} step {index + 1}"
                kind = names.get(step.action)
                if kind is None:
                    raise ValueError(f"{where}: unknown action {step.action!r}")
                # Runbooks calling runbooks could loop; one level keeps runs finite.
                if kind == "runbook":
                    raise ValueError(f"{where}: a runbook cannot run a runbook ({step.action!r})")
                if kind == "process":
                    raise ValueError(f"{where}: {step.action!r} is a supervised process")
        return self

    def channel_problems(self, known: Container[str]) -> list[str]:
        """Notification channels named by `notify` actions and runbook steps that are not
        configured, as messages naming where."""
        problems = []
        for action in self.actions:
            named: list[tuple[str, list[str] | None]] = []
            if isinstance(action, NotifyAction):
                named.append((f"action {action.name!r}", action.channels))
            elif isinstance(action, RunbookAction):
                named += [
                    (f"runbook {action.name!r} step {i + 1}", step.channels)
                    for i, step in enumerate(action.steps)
                    if isinstance(step, NotifyStep)
                ]
            for where, channels in named:
                problems += [
                    f"{where}: no notification channel named {c!r}"
                    for c in channels or ()
                    if c not in known
                ]
        return problems

    def names(self) -> frozenset[str]:
        """Every action's name."""
        return frozenset(a.name for a in self.actions)

    def get(self, name: str) -> RecoveryAction | None:
        """The action called `name`, if any."""
        return next((a for a in self.actions if a.name == name), None)


__all__ = [
    "PROGRAM_TYPES",
    "STOP_SIGNALS",
    "CommandAction",
    "CommandSpec",
    "DockerAction",
    "DockerSpec",
    "Guards",
    "HttpAction",
    "HttpSpec",
    "IfFailedStep",
    "NotifyAction",
    "NotifySpec",
    "NotifyStep",
    "OneShotSpec",
    "ProcessAction",
    "PythonAction",
    "PythonSpec",
    "RecoveryAction",
    "RecoveryConfig",
    "RunStep",
    "RunbookAction",
    "RunbookSpec",
    "Step",
    "SystemdAction",
    "SystemdSpec",
    "VerifyStep",
    "WaitStep",
]
