"""`command`: run a local Nagios-compatible plugin; its exit code is the status.

Exit codes follow the Nagios plugin API: 0 OK → UP, 1 WARNING → DEGRADED, 2 CRITICAL → DOWN,
3 (or anything else, including death by signal) → UNKNOWN. A plugin that outlives the timeout is
CRITICAL, as in Nagios. The first line of stdout is the reason; performance data after `|`
becomes metrics.

The command runs in its own session (hence its own process group) so that on timeout,
cancellation, or plain exit everything it started can be killed with one `killpg` (see
watchkeeper.core.programs).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator

from watchkeeper.checks.base import Check, CheckConfigBase, CheckContext
from watchkeeper.checks.registry import register
from watchkeeper.core.domain import CheckResult, Status
from watchkeeper.core.durations import format_duration
from watchkeeper.core.programs import STDERR, STDOUT, run_program, signal_name
from watchkeeper.core.redact import data_secrets, is_secret_name

OUTPUT_LIMIT = 64 * 1024
"""Bytes kept per stream (stdout, stderr); the rest is read and discarded."""

_REASON_LIMIT = 500

_EXIT_STATUS = {0: Status.UP, 1: Status.DEGRADED, 2: Status.DOWN, 3: Status.UNKNOWN}

# Nagios allows only these units. KB/MB/... are binary multiples, as the classic plugins
# (check_disk, check_swap) compute them.
_UOM_FACTOR: dict[str, float] = {
    "": 1.0,
    "s": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
    "%": 1.0,
    "B": 1.0,
    "KB": 1024.0,
    "MB": 1024.0**2,
    "GB": 1024.0**3,
    "TB": 1024.0**4,
    "c": 1.0,
}
# One `label=spec` item. Quoted labels may hold spaces and '' for a literal quote.
_PERF_ITEM = re.compile(r"\s*(?:'((?:[^']|'')*)'|([^\s'=]+))=(\S*)")
_PERF_SKIP = re.compile(r"\s*\S+")
_PERF_VALUE = re.compile(r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)(.*)")


@dataclass(frozen=True, slots=True)
class PerfDatum:
    """One performance-data item as the plugin printed it (value in its own unit)."""

    label: str
    value: float
    uom: str
    warn: str | None = None
    """Warning range, kept verbatim (ranges like `10:20` or `@~:5` are not numbers)."""
    crit: str | None = None
    min: float | None = None
    max: float | None = None

    @property
    def normalized_value(self) -> float:
        """The value in base units: seconds for s/ms/us, bytes for B/KB/MB/GB/TB."""
        return self.value * _UOM_FACTOR[self.uom]

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "value": self.value,
            "uom": self.uom,
            "warn": self.warn,
            "crit": self.crit,
            "min": self.min,
            "max": self.max,
        }


def parse_perfdata(text: str) -> list[PerfDatum]:
    """Parse Nagios perfdata (`'label'=value[UOM];warn;crit;min;max ...`).

    Malformed items (no `=`, non-numeric value, unknown unit, `U` for "undetermined") are
    skipped; the rest are returned in order.
    """
    items: list[PerfDatum] = []
    pos, end = 0, len(text)
    while pos < end:
        match = _PERF_ITEM.match(text, pos)
        if match is None:
            skip = _PERF_SKIP.match(text, pos)
            if skip is None:  # only whitespace left
                break
            pos = skip.end()
            continue
        pos = match.end()
        quoted, bare, spec = match.groups()
        label = quoted.replace("''", "'") if quoted is not None else bare
        datum = _parse_perf_spec(label, spec) if label else None
        if datum is not None:
            items.append(datum)
    return items


def _parse_perf_spec(label: str, spec: str) -> PerfDatum | None:
    fields = spec.split(";")
    value_match = _PERF_VALUE.fullmatch(fields[0])
    if value_match is None:
        return None
    value = float(value_match.group(1))
    uom = value_match.group(2)
    if uom not in _UOM_FACTOR or not math.isfinite(value):
        return None
    fields += [""] * (5 - len(fields))
    return PerfDatum(
        label=label,
        value=value,
        uom=uom,
        warn=fields[1] or None,
        crit=fields[2] or None,
        min=_optional_float(fields[3]),
        max=_optional_float(fields[4]),
    )


def _optional_float(text: str) -> float | None:
    # min/max are informational; a bad one should not cost the whole item.
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def split_plugin_output(text: str) -> tuple[str, str, str]:
    """Split plugin stdout into (message, long output, perfdata text) per the plugin API.

    The first line is `message | perfdata`; in the following lines, everything after the
    first `|` is perfdata too.
    """
    first, _, rest = text.partition("\n")
    message, _, perfdata = first.partition("|")
    long_output, bar, more_perfdata = rest.partition("|")
    if bar:
        perfdata = f"{perfdata} {more_perfdata}"
    return message.strip(), long_output.strip(), perfdata


class CommandCheckConfig(CheckConfigBase):
    """Config of a `command` check: an argv run without a shell."""

    type: Literal["command"]
    command: list[str] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    """Added to (and overriding) the service's own environment."""
    cwd: str | None = Field(default=None, min_length=1)

    @field_validator("command")
    @classmethod
    def _valid_argv(cls, value: list[str]) -> list[str]:
        if not value[0]:
            raise ValueError("the program (first element) must not be empty")
        if any("\0" in arg for arg in value):
            raise ValueError("arguments must not contain NUL characters")
        return value

    @field_validator("env")
    @classmethod
    def _valid_env(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if not key or "=" in key or "\0" in key or "\0" in item:
                raise ValueError(f"invalid environment variable {key!r}")
        return value


@register
class CommandCheck(Check[CommandCheckConfig]):
    """Runs a plugin and maps its exit code, message and perfdata into a result."""

    type = "command"
    config_model = CommandCheckConfig

    def __init__(self, config: CommandCheckConfig, context: CheckContext) -> None:
        super().__init__(config, context)
        self._timeout_text = format_duration(config.timeout)

    def secrets(self) -> list[str]:
        """Values of secret-named `env` variables, and arguments that follow a secret-named
        flag (`--password X`) or carry one (`--password=X`)."""
        cfg = self.config
        found = data_secrets(cfg.env)
        for flag, arg in zip(cfg.command, cfg.command[1:], strict=False):
            if flag.startswith("-") and "=" not in flag and is_secret_name(flag):
                found.append(arg)
        found += [
            value
            for name, _, value in (arg.partition("=") for arg in cfg.command)
            if value and is_secret_name(name)
        ]
        return found

    async def run(self) -> CheckResult:
        cfg = self.config
        try:
            ran = await run_program(
                cfg.command,
                timeout=cfg.timeout.total_seconds(),
                limit=OUTPUT_LIMIT,
                env=cfg.env,
                cwd=cfg.cwd,
            )
        except FileNotFoundError as exc:
            if cfg.cwd is not None and exc.filename == cfg.cwd:
                return CheckResult.unknown(f"working directory not found: {cfg.cwd}")
            return CheckResult.unknown(f"command not found: {cfg.command[0]}")
        except PermissionError:
            return CheckResult.unknown(f"permission denied running {cfg.command[0]}")
        except OSError as exc:
            return CheckResult.unknown(f"cannot run {cfg.command[0]}: {exc.strerror or exc}")
        elapsed = ran.duration

        out_text = ran.output[STDOUT].decode("utf-8", "replace")
        err_text = ran.output[STDERR].decode("utf-8", "replace")
        message, long_output, perf_text = split_plugin_output(out_text)
        perfdata = parse_perfdata(perf_text)
        details: dict[str, Any] = {"perfdata": [p.as_dict() for p in perfdata]}
        if long_output:
            details["long_output"] = long_output
        if err_text.strip():
            details["stderr"] = err_text
        if ran.truncated or ran.pipes_held:
            details["output_truncated"] = True
        metrics = {p.label: p.normalized_value for p in perfdata}

        if ran.timed_out or ran.returncode is None:
            reason = f"timed out after {self._timeout_text}"
            return CheckResult.down(reason, response_time=elapsed, metrics=metrics, details=details)

        returncode = ran.returncode
        details["exit_code"] = returncode
        status = _EXIT_STATUS.get(returncode, Status.UNKNOWN)
        message = message or _last_line(err_text)
        if returncode < 0:
            note = f"killed by {signal_name(-returncode)}"
        elif returncode not in _EXIT_STATUS:
            note = f"exit code {returncode}"
        else:
            note = ""
        if message and note:
            reason = f"{message} ({note})"
        else:
            reason = message or note or f"exit code {returncode}"
        if len(reason) > _REASON_LIMIT:
            reason = reason[: _REASON_LIMIT - 1] + "…"
        return CheckResult(status, reason, response_time=elapsed, metrics=metrics, details=details)


def _last_line(text: str) -> str:
    # For stderr the last line is the useful one (a traceback ends with the exception).
    for line in reversed(text.splitlines()):
        if line.strip():
            return line.strip()
    return ""


__all__ = [
    "OUTPUT_LIMIT",
    "CommandCheck",
    "CommandCheckConfig",
    "PerfDatum",
    "parse_perfdata",
    "split_plugin_output",
]
