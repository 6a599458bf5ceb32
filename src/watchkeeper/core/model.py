"""Base for every config model: unknown keys are errors, values are validated on assignment."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints


class StrictModel(BaseModel):
    # NaN and infinities (JSON `NaN`, YAML `.nan`) are no thresholds: `x > NaN` never holds.
    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)


Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=100)]
"""Names of checks, channels, rules: lowercase letters, digits, '-' and '_'."""


_ZONE_NAME = re.compile(r"[A-Za-z0-9_+-]{1,64}(?:/[A-Za-z0-9_+-]{1,64}){0,3}")
"""How IANA names look (`Etc/GMT+5`, `America/Port-au-Prince`). ZoneInfo opens the name as
a file under its data directory: a directory, a data file that is not a zone (`zone.tab`) or
a name too long for a path raised OSError, not ValueError."""


def _known_zone(value: str) -> str:
    try:
        if not _ZONE_NAME.fullmatch(value):
            raise ValueError(value)
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        shown = value if len(value) <= 64 else value[:64] + "…"
        raise ValueError(f"unknown time zone {shown!r} (e.g. UTC, Europe/Berlin)") from None
    return value


TimeZoneName = Annotated[str, AfterValidator(_known_zone)]
"""An IANA time zone name, checked when the config loads."""


NUL_MESSAGE = "text must not contain NUL characters (\\u0000)"
"""Why text with a NUL is refused: PostgreSQL cannot store it, so no engine is given it."""

Text = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$")]
"""Text that gets stored: no NUL characters (see `nul_at` for finding where one is)."""


def nul_at(value: Any) -> str | None:
    """Where the first NUL character of a JSON value is (`labels.a`), or None."""
    loc = nul_loc(value)
    return None if loc is None else ".".join(map(str, loc)) or "body"


def nul_loc(value: Any, loc: tuple[str | int, ...] = ()) -> tuple[str | int, ...] | None:
    """`nul_at` as pydantic's `loc` (`("labels", "a")`, `("alerts", 0, "labels", "a")`)."""
    if isinstance(value, str):
        return loc if "\x00" in value else None
    items: Iterable[tuple[Any, Any]] = ()
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    for key, item in items:
        here = (*loc, key if isinstance(key, int) else str(key))
        if "\x00" in str(key):
            return here
        if (found := nul_loc(item, here)) is not None:
            return found
    return None
