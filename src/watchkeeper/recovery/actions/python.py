"""`python`: call a Python callable by its dotted path, with keyword arguments.

A coroutine function is awaited under the timeout (and cancelled after it); a plain function
runs in a worker thread, which a timeout cannot stop: the run is reported as timed out and
the thread finishes on its own. Returning `False` is a failure, anything else success; an
exception is a failure whose message is the output.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from collections.abc import Callable
from functools import partial
from time import perf_counter
from typing import Any

from watchkeeper.core.durations import format_duration
from watchkeeper.recovery.actions.base import (
    ACTIONS,
    Action,
    ActionContext,
    ActionOutcome,
    OutcomeStatus,
)
from watchkeeper.recovery.config import PythonSpec

_OUTPUT_LIMIT = 16 * 1024


def resolve(path: str) -> Callable[..., Any]:
    """`package.module:attr.attr` or `package.module.attr`: the object it names."""
    module_name, _, attrs = path.partition(":")
    if not attrs:
        module_name, _, attrs = path.rpartition(".")
    target: Any = importlib.import_module(module_name)
    for attr in attrs.split("."):
        target = getattr(target, attr)
    if not callable(target):
        raise TypeError(f"{path} is not callable")
    return target  # type: ignore[no-any-return]


@ACTIONS.register
class PythonRecovery(Action[PythonSpec]):
    """Calls `callable(**kwargs)`; see the module docstring for what counts as success."""

    type = "python"
    config_model = PythonSpec

    async def run(self, context: ActionContext) -> ActionOutcome:
        cfg = self.config
        started = perf_counter()
        try:
            func = resolve(cfg.callable)
        except (ImportError, AttributeError, TypeError, ValueError) as exc:
            reason = f"cannot load {cfg.callable}: {exc}"
            return ActionOutcome(OutcomeStatus.ERROR, perf_counter() - started, reason=reason)
        try:
            async with asyncio.timeout(cfg.timeout.total_seconds()):
                if inspect.iscoroutinefunction(func):
                    result = await func(**cfg.kwargs)
                else:
                    result = await asyncio.to_thread(partial(func, **cfg.kwargs))
        except TimeoutError:
            reason = f"timed out after {format_duration(cfg.timeout)}"
            return ActionOutcome(OutcomeStatus.TIMED_OUT, perf_counter() - started, reason=reason)
        except Exception as exc:
            text = f"{exc.__class__.__name__}: {exc}"[:_OUTPUT_LIMIT]
            return ActionOutcome(
                OutcomeStatus.FAILED, perf_counter() - started, text, reason="raised " + text[:200]
            )
        ok = result is not False
        return ActionOutcome(
            OutcomeStatus.SUCCEEDED if ok else OutcomeStatus.FAILED,
            perf_counter() - started,
            "" if result is None else str(result)[:_OUTPUT_LIMIT],
            reason="returned" if ok else "returned False",
        )
