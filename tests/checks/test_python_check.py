"""The `python` check: import targets, every return form, exceptions, threads and timeouts."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.checks import pytargets
from watchkeeper.checks import CheckContext, build_check
from watchkeeper.checks.python import (
    IN_PROCESS,
    PythonCheck,
    PythonCheckConfig,
    interpret,
    resolve_target,
)
from watchkeeper.config.loader import Config
from watchkeeper.core.domain import CheckResult, Status

T = "tests.checks.pytargets"


@pytest.fixture
def make_check(context: CheckContext) -> Callable[..., PythonCheck]:
    def make(target: str, **fields: Any) -> PythonCheck:
        config = PythonCheckConfig.model_validate(
            {"name": "job", "type": "python", "target": target, **fields}
        )
        return PythonCheck(config, context)

    return make


@pytest.fixture
def released() -> Iterator[threading.Event]:
    """`pytargets.release`, cleared for the test and set afterwards so no thread stays blocked."""
    pytargets.release.clear()
    yield pytargets.release
    pytargets.release.set()


@pytest.mark.parametrize(
    ("target", "fields", "status", "reason"),
    [
        (f"{T}:returns_true", {}, Status.UP, "OK"),
        (f"{T}:returns_none", {}, Status.UP, "OK"),
        (f"{T}:returns_false", {}, Status.DOWN, "returned False"),
        (f"{T}:returns_message", {}, Status.UP, "3 jobs queued"),
        (f"{T}:returns_pair", {"args": {"ok": True, "message": "fine"}}, Status.UP, "fine"),
        (f"{T}:returns_pair", {"args": {"ok": False, "message": "stale"}}, Status.DOWN, "stale"),
        (f"{T}:returns_result", {}, Status.DEGRADED, "replica lag 12s"),
        (f"{T}:async_true", {}, Status.UP, "OK"),
        (f"{T}:async_pair", {"args": {"ok": False, "message": "no"}}, Status.DOWN, "no"),
    ],
)
async def test_each_return_form_maps_to_a_status_and_reason(
    make_check: Callable[..., PythonCheck],
    target: str,
    fields: dict[str, Any],
    status: Status,
    reason: str,
) -> None:
    result = await make_check(target, **fields).run()

    assert result.status is status
    assert result.reason == reason
    assert result.response_time is not None and result.response_time >= 0


async def test_a_returned_check_result_keeps_its_metrics(
    make_check: Callable[..., PythonCheck],
) -> None:
    result = await make_check(f"{T}:returns_result").run()

    assert result.metrics == {"lag_seconds": 12.0}


async def test_an_unsupported_return_value_is_unknown_and_names_its_type(
    make_check: Callable[..., PythonCheck],
) -> None:
    result = await make_check(f"{T}:returns_number").run()

    assert result.status is Status.UNKNOWN
    assert result.reason.startswith("returned an unsupported int")


async def test_args_are_passed_as_keyword_arguments(
    make_check: Callable[..., PythonCheck],
) -> None:
    result = await make_check(f"{T}:greet", args={"name": "ops", "punctuation": "?"}).run()

    assert result.reason == "hello ops?"


async def test_a_dotted_target_without_a_colon_works_too(
    make_check: Callable[..., PythonCheck],
) -> None:
    result = await make_check(f"{T}.returns_message").run()

    assert result.reason == "3 jobs queued"


async def test_an_attribute_path_after_the_colon_reaches_a_method(
    make_check: Callable[..., PythonCheck],
) -> None:
    result = await make_check(f"{T}:Probes.ping").run()

    assert result.reason == "pong"


async def test_an_exception_is_down_with_its_type_and_message(
    make_check: Callable[..., PythonCheck],
) -> None:
    result = await make_check(f"{T}:raises").run()

    assert result.status is Status.DOWN
    assert result.reason == "ConnectionError: connection refused"
    assert result.details["exception"] == "ConnectionError"
    assert "raise ConnectionError(message)" in result.details["traceback"]


async def test_an_async_exception_is_down_with_its_type_and_message(
    make_check: Callable[..., PythonCheck],
) -> None:
    result = await make_check(f"{T}:async_raises").run()

    assert result.status is Status.DOWN
    assert result.reason == "RuntimeError: disk full"


async def test_sys_exit_in_a_check_is_a_failure_not_a_shutdown(
    make_check: Callable[..., PythonCheck],
) -> None:
    result = await make_check(f"{T}:exits").run()

    assert result.status is Status.DOWN
    assert result.reason == "SystemExit: 3"


async def test_a_sync_callable_runs_in_its_own_thread(
    make_check: Callable[..., PythonCheck],
) -> None:
    pytargets.CALLER_THREADS.clear()

    result = await make_check(f"{T}:record_thread").run()

    assert result.status is Status.UP
    assert pytargets.CALLER_THREADS == ["watchkeeper-check-job"]


async def test_a_blocking_sync_callable_leaves_the_event_loop_free(context: CheckContext) -> None:
    # The function returns True only if the loop runs our code while it waits; called on the
    # loop itself it would wait in vain and return False.
    loop_ran = threading.Event()
    check = PythonCheck.from_callable("blocker", lambda: loop_ran.wait(5), context)

    task = asyncio.create_task(check.run())
    await asyncio.sleep(0)
    loop_ran.set()
    result = await task

    assert (result.status, result.reason) == (Status.UP, "OK")


async def test_an_async_callable_that_hangs_times_out(
    make_check: Callable[..., PythonCheck],
) -> None:
    result = await make_check(f"{T}:async_hangs", timeout="100ms").run()

    assert result.status is Status.DOWN
    assert result.reason == "timed out after 100ms"


async def test_a_hung_sync_callable_is_not_called_again_until_it_returns(
    make_check: Callable[..., PythonCheck], released: threading.Event
) -> None:
    check = make_check(f"{T}:blocks_until_released", timeout="100ms")

    first = await check.run()
    second = await check.run()
    released.set()
    assert check._pending is not None
    await asyncio.to_thread(check._pending.join, 5)
    third = await check.run()

    assert first.status is Status.DOWN
    assert first.reason == "timed out after 100ms"
    assert second.status is Status.DOWN
    assert second.reason.startswith("an earlier call has not returned")
    assert third.status is Status.UP


async def test_a_timeout_error_raised_by_the_function_is_reported_as_its_exception(
    context: CheckContext,
) -> None:
    async def fn() -> None:
        raise TimeoutError("upstream took too long")

    result = await PythonCheck.from_callable("t", fn, context).run()

    assert result.status is Status.DOWN
    assert result.reason == "TimeoutError: upstream took too long"


async def test_a_cancelled_error_raised_by_the_function_does_not_cancel_the_check(
    context: CheckContext,
) -> None:
    async def fn() -> None:
        raise asyncio.CancelledError

    result = await PythonCheck.from_callable("c", fn, context).run()

    assert result.status is Status.DOWN
    assert result.reason == "CancelledError"


async def test_cancelling_the_run_still_cancels_it(context: CheckContext) -> None:
    started = asyncio.Event()

    async def fn() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(PythonCheck.from_callable("c", fn, context).run())
    await started.wait()
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task


async def test_from_callable_builds_a_check_around_a_sync_function(
    context: CheckContext,
) -> None:
    check = PythonCheck.from_callable(
        "cache", lambda size: (size < 10, f"{size} entries"), context, args={"size": 3}
    )

    result = await check.run()

    assert check.config.target == IN_PROCESS
    assert check.name == "cache"
    assert (result.status, result.reason) == (Status.UP, "3 entries")


async def test_from_callable_builds_a_check_around_an_async_function(
    context: CheckContext,
) -> None:
    async def probe() -> CheckResult:
        return CheckResult.unknown("no data yet")

    result = await PythonCheck.from_callable("probe", probe, context).run()

    assert (result.status, result.reason) == (Status.UNKNOWN, "no data yet")


async def test_a_partial_of_an_async_function_is_awaited(context: CheckContext) -> None:
    partial = functools.partial(pytargets.async_pair, True)

    result = await PythonCheck.from_callable("p", partial, context, args={"message": "hi"}).run()

    assert result.reason == "hi"


def test_from_callable_applies_config_overrides(context: CheckContext) -> None:
    check = PythonCheck.from_callable(
        "cache", pytargets.returns_true, context, timeout="2s", labels={"team": "web"}
    )

    assert check.config.timeout.total_seconds() == 2
    assert check.config.labels == {"team": "web"}


def test_from_callable_checks_args_against_the_signature(context: CheckContext) -> None:
    with pytest.raises(ValidationError, match="args do not fit"):
        PythonCheck.from_callable("g", pytargets.greet, context, args={"nom": "x"})


async def test_an_in_process_config_can_be_built_through_the_registry(
    context: CheckContext,
) -> None:
    config = PythonCheckConfig.for_callable("cache", pytargets.returns_message)

    check = build_check(config.model_copy(), context)

    assert isinstance(check, PythonCheck)
    assert (await check.run()).reason == "3 jobs queued"


def test_an_in_process_target_without_a_function_cannot_be_built(context: CheckContext) -> None:
    config = PythonCheckConfig.model_validate({"name": "x", "type": "python", "target": IN_PROCESS})

    with pytest.raises(ValueError, match="no function"):
        PythonCheck(config, context)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("nope.mod:fn", "cannot import 'nope.mod:fn': No module named 'nope'"),
        (f"{T}:missing", f"cannot import '{T}:missing': '{T}' has no attribute 'missing'"),
        (f"{T}:Probes.nope", f"'{T}:Probes' has no attribute 'nope'"),
        (f"{T}:NOT_CALLABLE", f"'{T}:NOT_CALLABLE' is not callable (it is a int)"),
        ("justaname", "target must look like 'package.module:function'"),
        ("pkg.mod:", "target must look like"),
        ("pkg mod:fn", "target must look like"),
    ],
)
def test_a_target_that_cannot_be_imported_is_a_config_error(target: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        PythonCheckConfig.model_validate({"name": "x", "type": "python", "target": target})

    assert message in str(info.value)


def test_a_module_that_fails_on_import_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "wk_broken_target.py").write_text("raise RuntimeError('no config file')\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    with pytest.raises(ValidationError) as info:
        PythonCheckConfig.model_validate(
            {"name": "x", "type": "python", "target": "wk_broken_target:fn"}
        )

    assert "cannot import 'wk_broken_target:fn': RuntimeError: no config file" in str(info.value)


@pytest.mark.parametrize(
    "args",
    [{}, {"name": "a", "colour": "red"}],
)
def test_args_that_do_not_fit_the_signature_are_a_config_error(args: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match=f"args do not fit '{T}:greet'"):
        PythonCheckConfig.model_validate(
            {"name": "x", "type": "python", "target": f"{T}:greet", "args": args}
        )


def test_a_python_check_in_the_whole_config_reports_import_errors() -> None:
    with pytest.raises(ValidationError, match="No module named 'nope'"):
        Config.model_validate(
            {"checks": [{"name": "x", "type": "python", "target": "nope.mod:fn"}]}
        )


def test_the_python_type_is_registered(context: CheckContext) -> None:
    config = PythonCheckConfig.model_validate(
        {"name": "x", "type": "python", "target": f"{T}:returns_true"}
    )

    check = build_check(config, context)

    assert isinstance(check, PythonCheck)
    assert check.fn is pytargets.returns_true


def test_resolve_target_returns_the_function() -> None:
    assert resolve_target(f"{T}:greet") is pytargets.greet


@pytest.mark.parametrize(
    ("value", "status"),
    [((True, "x", 1), Status.UNKNOWN), ((1, "x"), Status.UNKNOWN), ("", Status.UP)],
)
def test_interpret_rejects_lookalike_tuples_and_defaults_empty_reasons(
    value: Any, status: Status
) -> None:
    result = interpret(value, 0.0)

    assert result.status is status
    assert result.reason


@pytest.mark.parametrize("own", [float("nan"), float("inf"), float("-inf"), None])
def test_a_returned_result_without_a_finite_response_time_gets_the_measured_one(
    own: float | None,
) -> None:
    result = interpret(CheckResult(Status.UP, "fine", response_time=own), 0.125)
    assert (result.status, result.reason, result.response_time) == (Status.UP, "fine", 0.125)


def test_a_returned_result_keeps_its_own_finite_response_time() -> None:
    assert interpret(CheckResult(Status.UP, "fine", response_time=2.5), 0.125).response_time == 2.5
