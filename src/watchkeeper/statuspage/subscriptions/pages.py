"""Which status pages take subscribers, their titles and components (what the subscribe form
offers and a subscription may filter on). The status page feeds it from its config."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class PageInfo:
    title: str
    components: tuple[str, ...] = ()


@dataclass(slots=True)
class PageDirectory:
    """Pages by slug; the first is the one at `/status`. Replaced whole by `use` (on start
    and on a reload), read on every request."""

    pages: dict[str, PageInfo] = field(default_factory=dict)

    def use(self, pages: Mapping[str, PageInfo]) -> None:
        self.pages = dict(pages)

    def default(self) -> str | None:
        return next(iter(self.pages), None)

    def get(self, slug: str) -> PageInfo | None:
        return self.pages.get(slug)

    def unknown_components(self, slug: str, names: Sequence[str]) -> list[str]:
        page = self.pages.get(slug)
        known = set(page.components) if page else set()
        return [n for n in names if n not in known]
