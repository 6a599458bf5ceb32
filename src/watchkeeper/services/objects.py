"""API-managed objects (checks, escalation policies, rules): create, replace, delete, and
read them as stored (API) or as configured (config file).

The work is `objects.managed.ManagedObjects`'s (validation, storing, applying to the running
service and undoing on failure); this service turns its refusals into domain errors, so
routes do not translate, and shows objects with their secrets masked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from watchkeeper.alerting.broken import BrokenObjects
from watchkeeper.alerting.rule_config import RuleConfig
from watchkeeper.config.loader import EscalationPolicy
from watchkeeper.core.errors import Conflict, DomainError, Invalid, NotFound, Unavailable
from watchkeeper.core.redact import Redactor
from watchkeeper.objects.managed import (
    ManagedError,
    ManagedObjects,
    definition_of,
    redact_definition,
)
from watchkeeper.statuspage.config import StatusPageConfig
from watchkeeper.store.objects import Kind, ManagedRecord

_ERRORS: dict[int, type[DomainError]] = {
    404: NotFound,
    409: Conflict,
    422: Invalid,
    503: Unavailable,
}


def domain_error(exc: ManagedError) -> DomainError:
    """A `ManagedError` as the domain error of its status, with its located `errors`."""
    return _ERRORS.get(exc.status, DomainError)(exc.detail, errors=exc.errors or None)


@dataclass(frozen=True, slots=True)
class ObjectView:
    """A config-file or API-managed escalation policy or rule, as shown."""

    name: str
    source: str
    """`config` (read-only over the API) or `api`."""
    definition: dict[str, Any]
    """As stored (API) or as the config file spells it, secrets masked."""
    broken: str | None
    """Why the object cannot be evaluated, if it cannot."""
    record: ManagedRecord | None
    """Who made it and when it last changed (None for the config file's)."""


class ObjectService:
    """The API-managed objects of one runtime, merged with the config file's."""

    def __init__(
        self, managed: ManagedObjects, *, redactor: Redactor, broken: BrokenObjects
    ) -> None:
        self.managed = managed
        self.redactor = redactor
        self.broken = broken

    # -- reads ------------------------------------------------------------------------------

    def record(self, kind: Kind, name: str) -> ManagedRecord | None:
        """The stored record of an API-managed object (None for the config file's)."""
        return self.managed.record(kind, name)

    def check_definition(self, name: str) -> dict[str, Any] | None:
        """An API-managed check's stored definition, its secrets masked."""
        return self.managed.check_definition(name)

    def policies(self) -> list[ObjectView]:
        """Every escalation policy, the config file's and the API's."""
        return [self._view(Kind.ESCALATION_POLICY, p) for p in self.managed.policies.values()]

    def policy(self, name: str) -> ObjectView:
        """One escalation policy; NotFound."""
        policy = self.managed.policies.get(name)
        if policy is None:
            raise NotFound(f"no escalation policy named {name!r}")
        return self._view(Kind.ESCALATION_POLICY, policy)

    def rule(self, name: str) -> ObjectView:
        """One rule's definition; NotFound."""
        rule = self.managed.rules.get(name)
        if rule is None:
            raise NotFound(f"no rule named {name!r}")
        return self._view(Kind.RULE, rule)

    def status_pages(self) -> list[ObjectView]:
        """Every status page, the config file's and the API's."""
        return [self._view(Kind.STATUS_PAGE, p) for p in self.managed.every_status_page()]

    def status_page(self, slug: str) -> ObjectView:
        """One status page; NotFound."""
        for page in self.managed.every_status_page():
            if page.slug == slug:
                return self._view(Kind.STATUS_PAGE, page)
        raise NotFound(f"no status page with the slug {slug!r}")

    def _view(
        self, kind: Kind, value: EscalationPolicy | RuleConfig | StatusPageConfig
    ) -> ObjectView:
        record = self.managed.record(kind, value.name)
        return ObjectView(
            name=value.name,
            source="api" if record else "config",
            definition=redact_definition(
                record.definition if record else definition_of(value), self.redactor
            ),
            broken=self.broken.error(kind.value, value.name),
            record=record,
        )

    # -- writes -----------------------------------------------------------------------------

    async def create(self, kind: Kind, body: dict[str, Any], who: str) -> ManagedRecord:
        """Validate, store and apply a new object; Invalid, Conflict (the name is taken, or
        the config file's), Unavailable (starting, or applying failed: nothing changed)."""
        try:
            return await self.managed.create(kind, body, who)
        except ManagedError as exc:
            raise domain_error(exc) from None

    async def replace(self, kind: Kind, name: str, body: dict[str, Any], who: str) -> ManagedRecord:
        """Replace an API-managed object; NotFound, Invalid, Conflict (the config file's),
        Unavailable (applying failed: it was left as it was)."""
        try:
            return await self.managed.replace(kind, name, body, who)
        except ManagedError as exc:
            raise domain_error(exc) from None

    async def delete(self, kind: Kind, name: str, who: str) -> None:
        """Delete an API-managed object; NotFound, Conflict (the config file's, or in use),
        Unavailable (it is kept)."""
        try:
            await self.managed.delete(kind, name, who)
        except ManagedError as exc:
            raise domain_error(exc) from None
