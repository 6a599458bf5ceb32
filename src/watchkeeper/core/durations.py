"""Human durations in config and the API: "500ms", "30s", "5m", "1h", "7d", "1h30m".

One family of bounded types: every duration field says what it is for (`Interval`,
`EscalationDelay`, `MaintenanceLength`, ...) and so how long it may be. A bound keeps a
careless or hostile value (`999999999d`, `0s`) out at the edge, where it is a clear error
naming the field, instead of deep in an evaluator as an OverflowError or a division by zero.
The limits are listed in the README ("Durations and stored objects").
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

_US = {"ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000}
_US["w"] = 7 * _US["d"]
_PART = re.compile(r"([0-9]{1,20}(?:\.[0-9]{1,9})?)(ms|s|m|h|d|w)")
_MAX_TEXT = 64
"""Longer text is not a duration anyone writes; refusing it keeps parsing cheap."""
_EXPECTED = "expected a duration like 500ms, 30s, 5m, 1h or 7d"


def _microseconds(us: int | Decimal) -> timedelta:
    try:
        return timedelta(microseconds=int(us))
    except (OverflowError, ValueError):  # beyond timedelta.max (~2.7 million years)
        raise ValueError("duration is out of range") from None


def parse_duration(value: Any) -> timedelta:
    """Parse a duration string or a number of seconds; raise ValueError saying what is expected.

    Exact (decimal arithmetic, microsecond resolution), so `format_duration` round-trips. Any
    input raises ValueError at worst, never another exception."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(_EXPECTED)
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("duration is out of range")
        if value < 0:
            raise ValueError("duration must not be negative")
        try:
            return _microseconds(round(Decimal(value) * _US["s"]))
        except (InvalidOperation, OverflowError):
            raise ValueError("duration is out of range") from None
    if isinstance(value, str) and len(value) <= _MAX_TEXT:
        text = value.strip().replace(" ", "")
        pos, total = 0, Decimal(0)
        for m in _PART.finditer(text):
            if m.start() != pos:
                break
            total += Decimal(m.group(1)) * _US[m.group(2)]
            pos = m.end()
        if text and pos == len(text):
            return _microseconds(round(total))
    shown = value if not isinstance(value, str) or len(value) <= _MAX_TEXT else value[:20] + "…"
    raise ValueError(f"{_EXPECTED}, got {shown!r}")


def _decimal(numerator: int, denominator: int) -> str:
    return format((Decimal(numerator) / Decimal(denominator)).normalize(), "f")


def format_duration(value: timedelta) -> str:
    """`30s`, `5m`, `1h`, `7d`, `500ms`, `90s`; always text `parse_duration` reads back."""
    us = value // timedelta(microseconds=1)
    if 0 < us < _US["s"]:
        return f"{_decimal(us, _US['ms'])}ms"
    for unit in ("d", "h", "m"):
        if us >= _US[unit] and us % _US[unit] == 0:
            return f"{us // _US[unit]}{unit}"
    if us < _US["d"]:
        return f"{_decimal(us, _US['s'])}s"
    days, rest = divmod(us, _US["d"])
    return f"{days}d{_decimal(rest, _US['s'])}s"


_SCHEMA = WithJsonSchema(
    {
        "anyOf": [
            {"type": "string", "pattern": r"^(\d+(\.\d+)?(ms|s|m|h|d|w))+$"},
            {"type": "number", "minimum": 0},
        ],
        "examples": ["30s", "1h30m", "7d"],
    },
    mode="validation",
)


@dataclass(frozen=True, slots=True)
class Bounds:
    """What one kind of duration may be: at least `minimum` (or more than zero when
    `positive`), at most `maximum`."""

    maximum: timedelta
    minimum: timedelta = timedelta(0)
    positive: bool = False

    def check(self, value: timedelta) -> timedelta:
        """`value` if within bounds; else ValueError saying the bound."""
        if self.positive and value <= timedelta(0):
            raise ValueError("must be positive")
        if value < self.minimum:
            raise ValueError(f"must be at least {format_duration(self.minimum)}")
        if value > self.maximum:
            raise ValueError(f"must be at most {format_duration(self.maximum)}")
        return value

    def parse(self, value: Any) -> timedelta:
        """Parse and check (for forms and other text that does not go through pydantic)."""
        return self.check(parse_duration(value))


DAY = timedelta(days=1)
YEAR = timedelta(days=365)

ANY = Bounds(maximum=timedelta(days=100 * 365))
INTERVAL = Bounds(minimum=timedelta(seconds=1), maximum=timedelta(days=7))
TIMEOUT = Bounds(positive=True, maximum=timedelta(hours=1))
LONG_SPAN = Bounds(positive=True, maximum=YEAR)
ESCALATION_DELAY = Bounds(maximum=timedelta(days=30))
REPEAT = Bounds(minimum=timedelta(seconds=1), maximum=timedelta(days=30))
RULE_DELAY = Bounds(maximum=timedelta(days=30))
RETENTION = Bounds(minimum=timedelta(hours=1), maximum=timedelta(days=10 * 365))
SHORT_WAIT = Bounds(maximum=DAY)
POSITIVE_SHORT = Bounds(positive=True, maximum=DAY)
PROBE_TIME = Bounds(positive=True, maximum=timedelta(minutes=10))
SHUTDOWN = Bounds(maximum=timedelta(minutes=10))
CLIENT_WAIT = Bounds(minimum=timedelta(seconds=1), maximum=timedelta(minutes=10))
TOKEN_LIFETIME = Bounds(positive=True, maximum=timedelta(days=100 * 365))

# Annotations must be names mypy can see, so each is spelled out rather than built in a loop.
_Parsed = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    _SCHEMA,
]
Duration = Annotated[_Parsed, AfterValidator(ANY.check)]
"""Any duration up to 100 years (prefer a type below that says what it is for)."""
Interval = Annotated[_Parsed, AfterValidator(INTERVAL.check)]
"""How often a check runs: 1s to 7d."""
Timeout = Annotated[_Parsed, AfterValidator(TIMEOUT.check)]
"""How long one attempt may take (check, delivery): more than 0, at most 1h."""
LongSpan = Annotated[_Parsed, AfterValidator(LONG_SPAN.check)]
"""Maintenance occurrences, silences, heartbeat periods and grace, sessions: up to 1 year."""
EscalationDelay = Annotated[_Parsed, AfterValidator(ESCALATION_DELAY.check)]
"""An escalation step's `after`: 0 to 30d."""
Repeat = Annotated[_Parsed, AfterValidator(REPEAT.check)]
"""Re-paging (`repeat`, `repeat_interval`) and auto-resolution: 1s to 30d."""
RuleDelay = Annotated[_Parsed, AfterValidator(RULE_DELAY.check)]
"""A rule's `for`, `keep_firing_for`, `stale_after`: up to 30d."""
Retention = Annotated[_Parsed, AfterValidator(RETENTION.check)]
"""How long stored history is kept: 1h to 10 years."""
ShortWait = Annotated[_Parsed, AfterValidator(SHORT_WAIT.check)]
"""Grouping and backoff waits: 0 to 1d."""
PositiveShort = Annotated[_Parsed, AfterValidator(POSITIVE_SHORT.check)]
"""Windows and intervals that must not be 0 (login throttle, digests): up to 1d."""
ProbeTime = Annotated[_Parsed, AfterValidator(PROBE_TIME.check)]
"""Response-time limits and per-packet times inside one probe: more than 0, up to 10m."""
ShutdownGrace = Annotated[_Parsed, AfterValidator(SHUTDOWN.check)]
"""How long shutdown waits: 0 to 10m."""
ClientWait = Annotated[_Parsed, AfterValidator(CLIENT_WAIT.check)]
"""How long the server waits for a client to send its whole request: 1s to 10m."""
TokenLifetime = Annotated[_Parsed, AfterValidator(TOKEN_LIFETIME.check)]
"""How long an API token lasts: more than 0, up to 100 years."""
