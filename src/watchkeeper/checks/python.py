"""`python`: call a Python function; what it returns (or raises) is the result.

The target is `package.module:function` (or `package.module.function`; after a colon, dotted
attributes such as `module:Class.method` work too) and is called with `args` as keyword
arguments. It is imported when the config is validated, so a typo is a config error with a
line number rather than a failing check. Importing runs the module's top-level code; the module
must be importable from the service's `sys.path` (installed, or on PYTHONPATH).

What the callable may return:

- `None` or `True` → UP "OK" (so a function that simply raises on failure works as is)
- `False` → DOWN "returned False"
- a `str` → UP with that text as the reason. Returning means success; to fail, raise or
  return `False` / `(False, reason)`. A message is informational ("3 jobs queued").
- `(bool, str)` → UP or DOWN with that reason
- a `CheckResult` → used as is (the way to report DEGRADED/UNKNOWN, metrics or details)
- anything else → UNKNOWN, naming the returned type

An exception is DOWN `ExceptionType: message`, with the traceback in `details`.

Async callables run on the event loop and are cancelled on timeout; they must not block.
Sync callables run in a thread of their own, never on the loop. Python threads cannot be
killed, so a sync call that outlives the timeout keeps running in the background: the run is
DOWN "timed out", and until that call returns, further runs of the check are DOWN without
calling it again, so a hung function holds at most one thread per check. The threads are
daemon threads (unlike `asyncio.to_thread`'s pool, which is joined at interpreter exit and in
`asyncio.run` on 3.11), so a hung function cannot block shutdown, and it cannot starve the
default executor that name resolution relies on.

Checks can also be made from a function object, for the library API: `PythonCheck.from_callable`
or `PythonCheckConfig.for_callable` (target `<in-process>`, nothing imported).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import importlib
import inspect
import math
import threading
import traceback
from collections.abc import Callable
from dataclasses import replace
from time import perf_counter
from typing import Any, Literal, Self

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from watchkeeper.checks.base import Check, CheckConfigBase, CheckContext
from watchkeeper.checks.registry import register
from watchkeeper.core.domain import CheckResult
from watchkeeper.core.durations import format_duration
from watchkeeper.core.redact import data_secrets

IN_PROCESS = "<in-process>"
"""The target of checks made from a function object rather than an import path."""

_REASON_LIMIT = 500
_TRACEBACK_LIMIT = 8000
# Key under which `for_callable` hands the function to the validator (to check `args`).
_CALLABLE_CONTEXT = "watchkeeper.python_callable"


def resolve_target(target: str) -> Callable[..., Any]:
    """Import `target` and return the callable it names; ValueError says what is wrong."""
    module_name, colon, attr_path = target.partition(":")
    if not colon:
        module_name, _, attr_path = target.rpartition(".")
    parts = [*module_name.split("."), *attr_path.split(".")]
    if not module_name or not attr_path or not all(p.isidentifier() for p in parts):
        raise ValueError(
            f"target must look like 'package.module:function' or 'package.module.function', "
            f"got {target!r}"
        )
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {target!r}: {exc}") from None
    except Exception as exc:
        # Whatever the module's own top-level code raised: a config error, not a crash.
        raise ValueError(f"cannot import {target!r}: {type(exc).__name__}: {exc}") from None
    where = module_name
    for attr in attr_path.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise ValueError(
                f"cannot import {target!r}: {where!r} has no attribute {attr!r}"
            ) from None
        where = f"{where}.{attr}" if ":" in where else f"{where}:{attr}"
    if not callable(obj):
        raise ValueError(f"{target!r} is not callable (it is a {type(obj).__name__})")
    return obj  # type: ignore[no-any-return]


def _check_args(fn: Callable[..., Any], args: dict[str, Any], target: str) -> None:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # some builtins have no introspectable signature; the call will tell
    try:
        signature.bind(**args)
    except TypeError as exc:
        raise ValueError(f"args do not fit {target!r}: {exc}") from None


class PythonCheckConfig(CheckConfigBase):
    """Config of a `python` check: which callable to call, with which keyword arguments."""

    type: Literal["python"]
    target: str = Field(min_length=1)
    """`package.module:function`, `package.module.function`, or `<in-process>`."""
    args: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments for the call."""

    _callable: Callable[..., Any] | None = PrivateAttr(default=None)

    @field_validator("target")
    @classmethod
    def _target_importable(cls, value: str) -> str:
        # Imported now so that a typo is reported against `target`, with its line.
        if value != IN_PROCESS:
            resolve_target(value)
        return value

    @model_validator(mode="after")
    def _args_fit(self, info: ValidationInfo) -> Self:
        if self.target != IN_PROCESS:
            # Only reached once `target` imported; now just a lookup in sys.modules.
            _check_args(resolve_target(self.target), self.args, self.target)
            return self
        fn = (info.context or {}).get(_CALLABLE_CONTEXT)
        if fn is not None:
            _check_args(fn, self.args, f"{IN_PROCESS} {_qualname(fn)}")
        # With no function (a re-validated copy, or YAML naming it) building the check fails
        # with a clear message; validation cannot tell those cases apart.
        return self

    @property
    def function(self) -> Callable[..., Any] | None:
        """The function object of an in-process check (None for import targets)."""
        return self._callable

    @classmethod
    def for_callable(cls, name: str, fn: Callable[..., Any], **overrides: Any) -> PythonCheckConfig:
        """A config for calling `fn` directly; `overrides` are other config fields.

        The function travels with the config (as a private attribute, kept by `model_copy`), so
        `build_check` can build the check from it like from any other config.
        """
        if not callable(fn):
            raise TypeError(f"expected a callable, got {type(fn).__name__}")
        data = {**overrides, "name": name, "type": "python", "target": IN_PROCESS}
        config = cls.model_validate(data, context={_CALLABLE_CONTEXT: fn})
        config._callable = fn
        return config


@register
class PythonCheck(Check[PythonCheckConfig]):
    """Calls the configured function and turns its return value or exception into a result."""

    type = "python"
    config_model = PythonCheckConfig

    def __init__(self, config: PythonCheckConfig, context: CheckContext) -> None:
        super().__init__(config, context)
        fn = config.function
        if fn is None:
            if config.target == IN_PROCESS:
                raise ValueError(
                    f"python check {config.name!r} has target {IN_PROCESS!r} but no function; "
                    "make it with PythonCheck.from_callable or PythonCheckConfig.for_callable"
                )
            fn = resolve_target(config.target)  # imported already by validation: a lookup
        self.fn: Callable[..., Any] = fn
        self._is_async = _is_async(fn)
        self._timeout_text = format_duration(config.timeout)
        self._pending: threading.Thread | None = None

    def secrets(self) -> list[str]:
        """Values of secret-named `args` (e.g. `password`, `api_token`)."""
        return data_secrets(self.config.args)

    @classmethod
    def from_callable(
        cls, name: str, fn: Callable[..., Any], context: CheckContext, **config_overrides: Any
    ) -> PythonCheck:
        """A check that calls `fn` (sync or async) with `args`; see `PythonCheckConfig`."""
        return cls(PythonCheckConfig.for_callable(name, fn, **config_overrides), context)

    async def run(self) -> CheckResult:
        if self._pending is not None and self._pending.is_alive():
            return CheckResult.down(
                f"an earlier call has not returned (it timed out after {self._timeout_text}); "
                "not calling again until it does"
            )
        started = perf_counter()
        deadline = asyncio.timeout(self.config.timeout.total_seconds())
        try:
            async with deadline:
                value = await self._call()
        except TimeoutError as exc:
            if not deadline.expired():  # the function's own TimeoutError
                return _exception_result(exc, perf_counter() - started)
            return CheckResult.down(
                f"timed out after {self._timeout_text}", response_time=perf_counter() - started
            )
        except _Raised as raised:
            return _exception_result(raised.exc, perf_counter() - started)
        except Exception as exc:
            return _exception_result(exc, perf_counter() - started)
        return interpret(value, perf_counter() - started)

    async def _call(self) -> Any:
        args = self.config.args
        if self._is_async:
            try:
                value = await self.fn(**args)
            except asyncio.CancelledError as exc:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # we are being cancelled (timeout, scheduler): not the function
                raise _Raised(exc) from None
            except SystemExit as exc:
                # sys.exit() in a check must not take the service down with it.
                raise _Raised(exc) from None
        else:
            value = await self._call_in_thread(args)
        if inspect.isawaitable(value):
            value = await value  # a sync wrapper (lambda, partial) returning a coroutine
        return value

    def _call_in_thread(self, args: dict[str, Any]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        ctx = contextvars.copy_context()  # as asyncio.to_thread does
        fn = self.fn

        def settle(value: Any, error: BaseException | None) -> None:
            if future.done():  # timed out or cancelled meanwhile
                return
            if error is not None:
                future.set_exception(_Raised(error))
            else:
                future.set_result(value)

        def work() -> None:
            value: Any = None
            error: BaseException | None = None
            try:
                value = ctx.run(fn, **args)
            except BaseException as exc:  # SystemExit too: it must not end the service
                error = exc
            # RuntimeError: the loop is closed, so nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, value, error)

        thread = threading.Thread(
            target=work, name=f"watchkeeper-check-{self.config.name}", daemon=True
        )
        thread.start()
        self._pending = thread
        return future


class _Raised(Exception):
    """Carries an exception of the called function (some of which are BaseExceptions)."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(exc)
        self.exc = exc


def interpret(value: Any, elapsed: float) -> CheckResult:
    """Turn a check function's return value into a result (see the module docstring)."""
    if isinstance(value, CheckResult):
        # Its own response time when it is a number; NaN or an infinity is not one (the
        # API could not show it, the rollups could not add it).
        own = value.response_time
        return (
            value
            if own is not None and math.isfinite(own)
            else replace(value, response_time=elapsed)
        )
    if value is None or value is True:
        return CheckResult.up("OK", response_time=elapsed)
    if value is False:
        return CheckResult.down("returned False", response_time=elapsed)
    if isinstance(value, str):
        return CheckResult.up(_cap(value) or "OK", response_time=elapsed)
    if (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], bool)
        and isinstance(value[1], str)
    ):
        ok, message = value
        if ok:
            return CheckResult.up(_cap(message) or "OK", response_time=elapsed)
        return CheckResult.down(_cap(message) or "returned False", response_time=elapsed)
    return CheckResult.unknown(
        f"returned an unsupported {type(value).__name__}; return None, a bool, a str, "
        "(bool, str) or a CheckResult",
        response_time=elapsed,
    )


def _exception_result(exc: BaseException, elapsed: float) -> CheckResult:
    message = str(exc)
    reason = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    trace = "".join(traceback.format_exception(exc))
    details = {"exception": type(exc).__name__, "traceback": trace[-_TRACEBACK_LIMIT:]}
    return CheckResult.down(_cap(reason), response_time=elapsed, details=details)


def _is_async(fn: Callable[..., Any]) -> bool:
    # iscoroutinefunction sees through functools.partial; a callable object counts when its
    # __call__ is a coroutine function.
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004
    )


def _qualname(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def _cap(reason: str) -> str:
    return reason if len(reason) <= _REASON_LIMIT else reason[: _REASON_LIMIT - 1] + "…"


__all__ = [
    "IN_PROCESS",
    "PythonCheck",
    "PythonCheckConfig",
    "interpret",
    "resolve_target",
]
