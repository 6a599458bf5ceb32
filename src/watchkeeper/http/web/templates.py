"""The dashboard's Jinja2 environment and the filters its templates use."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from watchkeeper.core.version import __version__

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
TEMPLATE_DIR = HERE / "templates"


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """`3m ago`: how long before `now` (the page's render time)."""
    if value is None:
        return "never"
    seconds = int(((now or datetime.now(UTC)) - value).total_seconds())
    if seconds < 0:
        return "in " + span(-seconds)
    return span(seconds) + " ago"


def span(seconds: float) -> str:
    seconds = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def millis(value: float | None) -> str:
    if value is None:
        return "\u2013"  # en dash: no value
    return f"{value * 1000:.0f} ms" if value < 10 else f"{value:.1f} s"


def percent(value: float | None) -> str:
    if value is None:
        return "\u2013"  # en dash: no value
    if value >= 1:
        return "100%"
    return f"{min(value * 100, 99.99):.2f}%"


def iso(value: datetime | None) -> str:
    return value.isoformat().replace("+00:00", "Z") if value else ""


def build_environment() -> Environment:
    """One environment per app: templates compile once and are cached there."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(ago=ago, millis=millis, percent=percent, iso=iso, span=span)
    env.globals["static"] = lambda path: f"/static/{path}?v={__version__}"
    env.globals["version"] = __version__
    return env
