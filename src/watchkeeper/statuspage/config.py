"""The `status_pages:` section (and its short form `status_page:`): what each public page shows.

    status_pages:
      - slug: main                      # /status (the first page); others at /status/{slug}
        title: Example status
        logo: https://example.com/logo.svg
        colours: {brand: "#0b5fff"}
        links: [{title: Support, url: "https://example.com/support"}]
        components:
          - {name: API, description: Public REST API, group: Core, order: 1}
          - {name: Database, checks: [postgres, replica]}   # else: checks with component: Database
        noindex: false
        domain: status.example.com      # also served at / when the Host header matches
        auto_incidents: off             # off | draft | publish

The short form `status_page: {title, components}` is the first page with the slug `main`.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, field_validator, model_validator

from watchkeeper.core.model import StrictModel

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)]
"""A page's slug: its path under /status (lowercase letters, digits and '-')."""

RESERVED_SLUGS = frozenset(
    {
        "summary",
        "components",
        "incidents",
        "scheduled-maintenances",
        "history",
        "feed",
        "badge",
        "subscribe",
        "confirm",
        "unsubscribe",
        "style",
    }
)
"""Path segments of the first page's own endpoints: a page slug cannot shadow them."""

_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
COLOUR_KEYS = ("brand", "operational", "degraded", "partial", "major", "maintenance")


def _safe_url(value: str) -> str:
    if not re.match(r"^(https?://|/)[^\s\"'<>]*$", value):
        raise ValueError("must be an http(s) URL or an absolute path, without spaces or quotes")
    return value


SafeUrl = Annotated[str, StringConstraints(max_length=2000), AfterValidator(_safe_url)]


class PageLink(StrictModel):
    """A link in the page's header (support, documentation, the product)."""

    title: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    url: SafeUrl


class ComponentConfig(StrictModel):
    """A component customers see; its status comes from its checks."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00]*$")]
    description: str | None = None
    group: str | None = None
    """Components with the same group are shown together under it."""
    order: int = 0
    """Position on the page (then the order in the file)."""
    checks: list[str] | None = None
    """The checks that feed it; by default those whose `component:` is this name."""


class StatusPageConfig(StrictModel):
    """One public status page."""

    slug: Slug = "main"
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)] = "Status"
    logo: SafeUrl | None = None
    colours: dict[str, str] = Field(default_factory=dict)
    links: list[PageLink] = Field(default_factory=list)
    components: list[ComponentConfig] = Field(default_factory=list)
    noindex: bool = False
    """Ask search engines not to index the page (robots meta tag and header)."""
    domain: str | None = None
    """A host name: requests for it are served this page at `/`."""
    auto_incidents: Literal["off", "draft", "publish"] = "off"
    """A firing critical alert on a component opens an incident (a draft, or published)."""
    time_zone: str = "UTC"

    @property
    def name(self) -> str:
        """The slug: what names a page managed over the API."""
        return self.slug

    @field_validator("auto_incidents", mode="before")
    @classmethod
    def _yaml_off(cls, value: object) -> object:
        # YAML 1.1 reads a bare `off` as false.
        return "off" if value is False else value

    @field_validator("colours")
    @classmethod
    def _colours(cls, value: dict[str, str]) -> dict[str, str]:
        for key, colour in value.items():
            if key not in COLOUR_KEYS:
                raise ValueError(f"unknown colour {key!r} (one of {', '.join(COLOUR_KEYS)})")
            if not _COLOUR.match(colour):
                raise ValueError(f"{key}: {colour!r} is not a #rgb or #rrggbb colour")
        return value

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().lower()
        if not re.match(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d+)?$", value):
            raise ValueError(f"{value!r} is not a host name (e.g. status.example.com)")
        return value

    @model_validator(mode="after")
    def _unique_components(self) -> StatusPageConfig:
        seen: set[str] = set()
        for i, component in enumerate(self.components):
            if component.name in seen:
                raise ValueError(
                    f"components[{i}].name: {component.name!r} is used twice on this page"
                )
            seen.add(component.name)
        return self


def resolve_pages(
    short: StatusPageConfig | None, pages: list[StatusPageConfig]
) -> list[StatusPageConfig]:
    """Every page, the short form first; ValueError naming the field on a clash."""
    every = ([short] if short is not None else []) + list(pages)
    slugs: set[str] = set()
    domains: set[str] = set()
    for i, page in enumerate(every):
        where = "status_page" if short is not None and i == 0 else "status_pages"
        index = "" if where == "status_page" else f"[{i - (1 if short is not None else 0)}]"
        if page.slug in slugs:
            raise ValueError(f"{where}{index}.slug: {page.slug!r} is used twice")
        if i > 0 and page.slug in RESERVED_SLUGS:
            raise ValueError(f"{where}{index}.slug: {page.slug!r} is reserved (a status endpoint)")
        slugs.add(page.slug)
        if page.domain is not None:
            if page.domain in domains:
                raise ValueError(f"{where}{index}.domain: {page.domain!r} is used twice")
            domains.add(page.domain)
    return every
