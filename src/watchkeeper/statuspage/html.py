"""The status page's HTML and stylesheet, server-rendered from a PageView (no JavaScript)."""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from watchkeeper.statuspage.model import LABELS, Incident
from watchkeeper.statuspage.render import markdown
from watchkeeper.statuspage.views import HISTORY_DAYS, PageView

TEMPLATES = Path(__file__).parent / "templates"
HISTORY_PER_PAGE = 20


def _when(value: datetime | None) -> str:
    if value is None:
        return "never"
    return value.astimezone(UTC).strftime("%b %d, %Y %H:%M UTC").replace(" 0", " ", 1)


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else ""


def _pct(value: float | None) -> str:
    if value is None:
        return "no data"
    if value >= 1:
        return "100%"
    return f"{min(value * 100, 99.99):.2f}%"


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(
        when=_when,
        iso=_iso,
        pct=_pct,
        markdown=lambda source: Markup(markdown(source or "")),
    )
    env.globals["labels"] = LABELS
    return env


class PageRenderer:
    """Renders pages with one compiled template set."""

    def __init__(self) -> None:
        self.env = environment()

    def stylesheet(self, page: PageView) -> bytes:
        return self.env.get_template("style.css").render(c=page.config.colours).encode()

    def css_version(self, page: PageView) -> str:
        return hashlib.sha256(self.stylesheet(page)).hexdigest()[:10]

    def page(self, page: PageView, css_version: str) -> bytes:
        return (
            self.env.get_template("page.html")
            .render(page=page, days=HISTORY_DAYS, css_version=css_version)
            .encode()
        )

    def history(self, page: PageView, number: int, css_version: str) -> bytes | None:
        """One page of the incident history (None past the last page)."""
        pages = max(1, math.ceil(len(page.incidents) / HISTORY_PER_PAGE))
        if number < 1 or number > pages:
            return None
        start = (number - 1) * HISTORY_PER_PAGE
        items = page.incidents[start : start + HISTORY_PER_PAGE]
        return (
            self.env.get_template("history.html")
            .render(page=page, items=items, number=number, pages=pages, css_version=css_version)
            .encode()
        )

    def incident(self, page: PageView, incident: Incident, css_version: str) -> bytes:
        return (
            self.env.get_template("incident.html")
            .render(page=page, incident=incident, css_version=css_version)
            .encode()
        )
