"""The `command` check: Nagios exit codes, perfdata, timeouts and process-group cleanup."""

from __future__ import annotations

import asyncio
import math
import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.support.required import unavailable
from tests.support.servers import wait_until
from watchkeeper.checks import CheckContext, build_check
from watchkeeper.checks.command import (
    OUTPUT_LIMIT,
    CommandCheck,
    CommandCheckConfig,
    PerfDatum,
    parse_perfdata,
    split_plugin_output,
)
from watchkeeper.core.domain import Status

PY = sys.executable


def python(code: str) -> list[str]:
    return [PY, "-c", code]


@pytest.fixture
def make_check(context: CheckContext) -> Callable[..., CommandCheck]:
    def make(command: list[str], **fields: Any) -> CommandCheck:
        config = CommandCheckConfig.model_validate(
            {"name": "plugin", "type": "command", "command": command, **fields}
        )
        return CommandCheck(config, context)

    return make


def _is_gone(pid: int) -> bool:
    # A zombie is dead: orphans are reparented to PID 1, and some container inits never reap
    # them, so os.kill(pid, 0) alone would keep "finding" a killed grandchild.
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def wait_until_gone(*pids: int) -> None:
    # Another process's exit cannot be awaited from here: poll it, bounded.
    await wait_until(lambda: all(_is_gone(pid) for pid in pids), 5, f"pids {pids} to exit")


async def wait_for_pid_file(path: Path) -> int:
    await wait_until(lambda: path.exists() and path.read_text().strip(), 5, f"the pid file {path}")
    return int(path.read_text())


def _needs_sh() -> None:
    if shutil.which("sh") is None or shutil.which("sleep") is None:
        unavailable("needs sh and sleep")


def hanging_family(tmp_path: Path) -> list[str]:
    """sh that records its own pid and a background child's pid, then waits forever."""
    _needs_sh()
    script = f"sleep 100 & echo $! > {tmp_path}/child.pid; echo $$ > {tmp_path}/parent.pid; wait"
    return ["sh", "-c", script]


# --- exit codes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status"),
    [(0, Status.UP), (1, Status.DEGRADED), (2, Status.DOWN), (3, Status.UNKNOWN)],
)
async def test_nagios_exit_codes_map_to_statuses(
    make_check: Callable[..., CommandCheck], code: int, status: Status
) -> None:
    result = await make_check(
        python(f"print('plugin said {code}'); raise SystemExit({code})")
    ).run()

    assert result.status is status
    assert result.reason == f"plugin said {code}"
    assert result.details["exit_code"] == code
    assert result.response_time is not None and result.response_time > 0


async def test_exit_code_0_is_up(make_check: Callable[..., CommandCheck]) -> None:
    assert (await make_check(python("print('OK')")).run()).status is Status.UP


async def test_exit_code_2_is_down(make_check: Callable[..., CommandCheck]) -> None:
    result = await make_check(python("print('CRITICAL - on fire'); raise SystemExit(2)")).run()

    assert result.status is Status.DOWN
    assert result.reason == "CRITICAL - on fire"


async def test_exit_codes_above_3_are_unknown_and_say_so(
    make_check: Callable[..., CommandCheck],
) -> None:
    result = await make_check(python("print('weird'); raise SystemExit(4)")).run()

    assert result.status is Status.UNKNOWN
    assert result.reason == "weird (exit code 4)"


async def test_a_plugin_killed_by_a_signal_is_unknown(
    make_check: Callable[..., CommandCheck],
) -> None:
    result = await make_check(
        python("import os, signal; os.kill(os.getpid(), signal.SIGTERM)")
    ).run()

    assert result.status is Status.UNKNOWN
    assert result.reason == "killed by SIGTERM"


async def test_empty_output_falls_back_to_the_last_stderr_line(
    make_check: Callable[..., CommandCheck],
) -> None:
    code = "import sys; sys.stderr.write('starting\\nno route to db\\n'); sys.exit(2)"

    result = await make_check(python(code)).run()

    assert result.status is Status.DOWN
    assert result.reason == "no route to db"
    assert result.details["stderr"] == "starting\nno route to db\n"


async def test_no_output_at_all_names_the_exit_code(
    make_check: Callable[..., CommandCheck],
) -> None:
    result = await make_check(python("raise SystemExit(1)")).run()

    assert result.status is Status.DEGRADED
    assert result.reason == "exit code 1"


async def test_a_missing_program_is_unknown_with_a_clear_reason(
    make_check: Callable[..., CommandCheck], tmp_path: Path
) -> None:
    missing = str(tmp_path / "no-such-plugin")

    result = await make_check([missing, "--flag"]).run()

    assert result.status is Status.UNKNOWN
    assert result.reason == f"command not found: {missing}"


async def test_a_program_not_on_path_is_unknown(make_check: Callable[..., CommandCheck]) -> None:
    result = await make_check(["watchkeeper-no-such-plugin-xyz"]).run()

    assert result.status is Status.UNKNOWN
    assert result.reason == "command not found: watchkeeper-no-such-plugin-xyz"


async def test_a_missing_working_directory_is_unknown(
    make_check: Callable[..., CommandCheck], tmp_path: Path
) -> None:
    missing = str(tmp_path / "gone")

    result = await make_check(python("print('hi')"), cwd=missing).run()

    assert result.status is Status.UNKNOWN
    assert result.reason == f"working directory not found: {missing}"


async def test_env_is_added_to_the_inherited_environment_and_cwd_is_used(
    make_check: Callable[..., CommandCheck], tmp_path: Path
) -> None:
    code = "import os; print(os.environ['WK_GREETING'], 'PATH' in os.environ, os.getcwd())"

    result = await make_check(python(code), env={"WK_GREETING": "hello"}, cwd=str(tmp_path)).run()

    assert result.reason == f"hello True {tmp_path.resolve()}"


async def test_a_plugin_does_not_read_the_services_stdin(
    make_check: Callable[..., CommandCheck],
) -> None:
    result = await make_check(python("import sys; print(repr(sys.stdin.read()))")).run()

    assert result.reason == "''"


# --- output and perfdata ---------------------------------------------------------------------


async def test_perfdata_becomes_normalised_metrics_and_details(
    make_check: Callable[..., CommandCheck],
) -> None:
    output = "DISK OK - 50% free | '/ used'=512MB;800;900;0;1024 time=15ms load=0.5;;;;"

    result = await make_check(python(f"print({output!r})")).run()

    assert result.status is Status.UP
    assert result.reason == "DISK OK - 50% free"
    assert result.metrics == {"/ used": 512 * 1024**2, "time": 0.015, "load": 0.5}
    assert result.details["perfdata"] == [
        {
            "label": "/ used",
            "value": 512.0,
            "uom": "MB",
            "warn": "800",
            "crit": "900",
            "min": 0.0,
            "max": 1024.0,
        },
        {
            "label": "time",
            "value": 15.0,
            "uom": "ms",
            "warn": None,
            "crit": None,
            "min": None,
            "max": None,
        },
        {
            "label": "load",
            "value": 0.5,
            "uom": "",
            "warn": None,
            "crit": None,
            "min": None,
            "max": None,
        },
    ]


async def test_perfdata_in_the_long_output_section_is_parsed_too(
    make_check: Callable[..., CommandCheck],
) -> None:
    output = "OK - 3 items | a=1\nitem one\nitem two | b=2s\nc=3%\n"

    result = await make_check(python(f"import sys; sys.stdout.write({output!r})")).run()

    assert result.reason == "OK - 3 items"
    assert result.details["long_output"] == "item one\nitem two"
    assert result.metrics == {"a": 1.0, "b": 2.0, "c": 3.0}


async def test_malformed_perfdata_never_fails_the_check(
    make_check: Callable[..., CommandCheck],
) -> None:
    output = "WARNING - odd | garbage ==; x=abc 'open=1 ok=7;;; =5"

    result = await make_check(python(f"print({output!r}); raise SystemExit(1)")).run()

    assert result.status is Status.DEGRADED
    assert result.metrics == {"ok": 7.0}


async def test_huge_output_is_capped_without_blocking_the_plugin(
    make_check: Callable[..., CommandCheck],
) -> None:
    code = "import sys; sys.stdout.write('OK - big\\n' + 'x' * 1_000_000); sys.exit(0)"

    result = await make_check(python(code)).run()

    assert result.status is Status.UP
    assert result.reason == "OK - big"
    assert result.details["output_truncated"] is True
    assert len(result.details["long_output"]) < OUTPUT_LIMIT


async def test_a_very_long_first_line_is_shortened_in_the_reason(
    make_check: Callable[..., CommandCheck],
) -> None:
    result = await make_check(python("print('y' * 5000)")).run()

    assert len(result.reason) <= 500


# --- timeouts, cancellation, process groups --------------------------------------------------


async def test_a_hanging_command_is_down_and_killed_with_its_children_at_the_timeout(
    make_check: Callable[..., CommandCheck], tmp_path: Path
) -> None:
    check = make_check(hanging_family(tmp_path), timeout="300ms")

    result = await check.run()

    assert result.status is Status.DOWN
    assert result.reason == "timed out after 300ms"
    await wait_until_gone(
        int((tmp_path / "parent.pid").read_text()), int((tmp_path / "child.pid").read_text())
    )


async def test_cancelling_run_kills_the_whole_process_group(
    make_check: Callable[..., CommandCheck], tmp_path: Path
) -> None:
    check = make_check(hanging_family(tmp_path), timeout="60s")
    task = asyncio.create_task(check.run())
    child = await wait_for_pid_file(tmp_path / "child.pid")
    parent = await wait_for_pid_file(tmp_path / "parent.pid")

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    await wait_until_gone(parent, child)


async def test_the_schedulers_timeout_around_run_kills_the_whole_process_group(
    make_check: Callable[..., CommandCheck], tmp_path: Path
) -> None:
    # The scheduler's own timeout cancels run() from outside before the check's timeout.
    check = make_check(hanging_family(tmp_path), timeout="60s")

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await check.run()

    await wait_until_gone(
        int((tmp_path / "parent.pid").read_text()), int((tmp_path / "child.pid").read_text())
    )


@pytest.mark.parametrize("yields", [0, 1, 2, 3, 5, 8])
async def test_cancelling_run_while_the_process_is_being_spawned_leaves_nothing_behind(
    make_check: Callable[..., CommandCheck], yields: int
) -> None:
    marker = f"wk-spawn-cancel-{uuid.uuid4()}"
    check = make_check(
        [*python("import threading; threading.Event().wait()"), marker], timeout="60s"
    )
    task = asyncio.create_task(check.run())
    for _ in range(yields):
        await asyncio.sleep(0)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    def survivors() -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter(["cmdline", "status"]):
            if marker in (proc.info["cmdline"] or []) and proc.info["status"] != "zombie":
                found.append(proc)
        return found

    await wait_until(lambda: not survivors(), 5, "the plugin's children to be killed")


async def test_background_children_left_by_a_finished_plugin_are_killed(
    make_check: Callable[..., CommandCheck], tmp_path: Path
) -> None:
    _needs_sh()
    # The leftover sleep holds stdout open; without the group kill this would hang 100s.
    script = f"sleep 100 & echo $! > {tmp_path}/child.pid; echo 'OK - started'"

    result = await make_check(["sh", "-c", script], timeout="30s").run()

    assert result.status is Status.UP
    assert result.reason == "OK - started"
    await wait_until_gone(int((tmp_path / "child.pid").read_text()))


# --- parse_perfdata --------------------------------------------------------------------------


def test_parse_perfdata_reads_all_five_fields() -> None:
    assert parse_perfdata("time=0.5s;1;2;0;10") == [
        PerfDatum("time", 0.5, "s", "1", "2", 0.0, 10.0)
    ]


def test_parse_perfdata_reads_quoted_labels_with_spaces_and_escaped_quotes() -> None:
    [datum] = parse_perfdata("'disk ''root'' used'=10%")

    assert datum.label == "disk 'root' used"
    assert (datum.value, datum.uom) == (10.0, "%")


def test_parse_perfdata_keeps_ranges_verbatim() -> None:
    [datum] = parse_perfdata("x=5;@10:20;~:30")

    assert (datum.warn, datum.crit) == ("@10:20", "~:30")


def test_parse_perfdata_splits_on_any_whitespace() -> None:
    labels = [d.label for d in parse_perfdata("  a=1   b=2\n\tc=3  ")]

    assert labels == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("v=2", 2.0),
        ("v=2s", 2.0),
        ("v=250ms", 0.25),
        ("v=1500us", 0.0015),
        ("v=42%", 42.0),
        ("v=10B", 10.0),
        ("v=2KB", 2048.0),
        ("v=3MB", 3 * 1024.0**2),
        ("v=1.5GB", 1.5 * 1024.0**3),
        ("v=1TB", 1024.0**4),
        ("v=12345c", 12345.0),
        ("v=-1.5e3ms", -1.5),
        ("v=.5", 0.5),
    ],
)
def test_parse_perfdata_normalises_units(item: str, expected: float) -> None:
    [datum] = parse_perfdata(item)

    assert datum.normalized_value == pytest.approx(expected)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "novalue",
        "a=",
        "a=U",
        "a=abc",
        "a=1xyz",
        "a=1KiB",
        "a=inf",
        "a=nan",
        "a=1e999",
        "=5",
        "''=5",
        "'unterminated=3",
        "a=1,5",
    ],
)
def test_parse_perfdata_skips_malformed_items(text: str) -> None:
    assert parse_perfdata(text) == []


def test_parse_perfdata_keeps_good_items_around_bad_ones() -> None:
    data = parse_perfdata("bad=x good=1;2 'worse ugly=3 fine=4;;;zero;max")

    assert [(d.label, d.value) for d in data] == [("good", 1.0), ("ugly", 3.0), ("fine", 4.0)]
    assert (data[2].min, data[2].max) == (None, None)


@given(st.text())
def test_parse_perfdata_never_raises_and_yields_finite_values(text: str) -> None:
    for datum in parse_perfdata(text):
        assert datum.label
        assert math.isfinite(datum.value)


def test_split_plugin_output_separates_message_long_output_and_perfdata() -> None:
    text = "OK - fine | a=1\nline 1\nline 2 | b=2\nc=3\n"

    message, long_output, perfdata = split_plugin_output(text)

    assert message == "OK - fine"
    assert long_output == "line 1\nline 2"
    assert [d.label for d in parse_perfdata(perfdata)] == ["a", "b", "c"]


# --- config ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"command": []},
        {"command": [""]},
        {"command": "check_disk -w 10"},
        {"command": ["a\0b"]},
        {"command": ["true"], "env": {"A=B": "x"}},
        {"command": ["true"], "env": {"": "x"}},
        {"command": ["true"], "cwd": ""},
        {"command": ["true"], "shell": True},
    ],
)
def test_invalid_config_is_rejected(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CommandCheckConfig.model_validate({"name": "plugin", "type": "command", **fields})


def test_the_command_type_is_registered(context: CheckContext) -> None:
    config = CommandCheckConfig.model_validate(
        {"name": "plugin", "type": "command", "command": ["true"]}
    )

    assert isinstance(build_check(config, context), CommandCheck)
