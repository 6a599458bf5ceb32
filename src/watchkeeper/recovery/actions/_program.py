"""Run a program once, as `command` and `systemd` actions do (see watchkeeper.core.programs).

stdout and stderr share one pipe, so the output reads in the order it was written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from time import perf_counter

from watchkeeper.core.durations import format_duration
from watchkeeper.core.programs import STDOUT, signal_name
from watchkeeper.core.programs import run_program as run
from watchkeeper.recovery.actions.base import ActionOutcome, OutcomeStatus, truncate


async def run_program(
    argv: Sequence[str],
    *,
    timeout: float,
    limit: int,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> ActionOutcome:
    """Run `argv` once and describe how it went; never raises for the program's failures."""
    started = perf_counter()
    try:
        ran = await run(argv, timeout=timeout, limit=limit, env=env, cwd=cwd, merge_stderr=True)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError) and cwd is not None and exc.filename == cwd:
            reason = f"working directory not found: {cwd}"
        elif isinstance(exc, FileNotFoundError):
            reason = f"program not found: {argv[0]}"
        else:
            reason = f"cannot run {argv[0]}: {exc.strerror or exc}"
        return ActionOutcome(OutcomeStatus.ERROR, perf_counter() - started, reason=reason)
    output, cut = truncate(ran.output[STDOUT], limit)
    cut = cut or ran.truncated
    if ran.timed_out or ran.returncode is None:
        return ActionOutcome(
            OutcomeStatus.TIMED_OUT,
            ran.duration,
            output,
            cut,
            reason=f"timed out after {format_duration(timedelta(seconds=timeout))}",
        )
    code = ran.returncode
    if code == 0:
        return ActionOutcome(OutcomeStatus.SUCCEEDED, ran.duration, output, cut, 0, reason="exit 0")
    reason = f"killed by {signal_name(-code)}" if code < 0 else f"exit code {code}"
    return ActionOutcome(OutcomeStatus.FAILED, ran.duration, output, cut, code, reason=reason)
