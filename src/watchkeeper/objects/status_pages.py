"""Status pages managed over the API (admin): the same fields as `status_pages:` entries.

They follow the config file's pages (the first page at /status is the file's first, if it
has any); a page's `slug` is its name here."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from watchkeeper.objects.base import Managed, ObjectKind, from_validation_error, invalid
from watchkeeper.statuspage.config import RESERVED_SLUGS, StatusPageConfig
from watchkeeper.store.objects import Kind


class StatusPageObjects(ObjectKind[StatusPageConfig]):
    """Status pages: the status page keeper reads `managed` (after the file's) when it
    rebuilds, and is told of each change."""

    kind = Kind.STATUS_PAGE

    def in_config(self, name: str) -> bool:
        return any(p.slug == name for p in self.catalog.config.pages)

    def validate(self, body: dict[str, Any]) -> StatusPageConfig:
        body = dict(body)
        name = body.pop("name", None)  # a replacement carries the name in the path
        if "slug" not in body:
            if name is None:
                raise invalid("slug", "Field required")
            body["slug"] = name
        elif name is not None and name != body["slug"]:
            raise invalid("slug", f"must be {name!r}, the slug in the path")
        try:
            page = StatusPageConfig.model_validate(body)
        except ValidationError as exc:
            raise from_validation_error(exc) from None
        if page.slug in RESERVED_SLUGS:
            raise invalid("slug", f"{page.slug!r} is reserved (a status endpoint)")
        if page.domain is not None:
            taken = [p.domain for p in self.catalog.config.pages] + [
                m.value.domain for n, m in self.managed.items() if n != page.slug
            ]
            if page.domain in taken:
                raise invalid("domain", f"{page.domain!r} is used by another status page")
        return page

    async def apply(self, managed: Managed[StatusPageConfig]) -> None:
        self.hold(managed)

    async def remove(self, name: str, *, replacing: bool) -> None:
        self.managed.pop(name, None)

    def announce(self) -> None:
        self.catalog.target.status_pages_changed()
