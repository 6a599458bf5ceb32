"""Escalation policies managed over the API."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from watchkeeper.config.loader import EscalationPolicy
from watchkeeper.objects.base import Managed, ObjectKind, from_validation_error
from watchkeeper.store.objects import Kind


class PolicyObjects(ObjectKind[EscalationPolicy]):
    """Escalation policies: the dispatcher escalates by `catalog.policies` (both sources)."""

    kind = Kind.ESCALATION_POLICY

    def in_config(self, name: str) -> bool:
        return any(o.name == name for o in self.catalog.config.escalation)

    def validate(self, body: dict[str, Any]) -> EscalationPolicy:
        try:
            policy = EscalationPolicy.model_validate(body)
        except ValidationError as exc:
            raise from_validation_error(exc) from None
        for i, step in enumerate(policy.steps):
            self.catalog.known_channels(f"steps.{i}.notify", step.notify)
        return policy

    def hold(self, managed: Managed[EscalationPolicy]) -> None:
        super().hold(managed)
        self.catalog.policies[managed.record.name] = managed.value

    async def apply(self, managed: Managed[EscalationPolicy]) -> None:
        self.hold(managed)

    async def remove(self, name: str, *, replacing: bool) -> None:
        self.catalog.policies.pop(name, None)
        self.managed.pop(name, None)

    def references(self, name: str) -> list[str]:
        checks = self.catalog.target.check_configs.values()
        return [
            *(f"check {c.name}" for c in checks if c.escalation == name),
            *(f"rule {r.name}" for r in self.catalog.rules.values() if r.escalation == name),
        ]
