"""Alert rules managed over the API."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from watchkeeper.alerting.rule_config import RuleConfig
from watchkeeper.config.references import unknown_recovery
from watchkeeper.objects.base import Managed, ObjectKind, from_validation_error, invalid
from watchkeeper.store.objects import Kind


class RuleObjects(ObjectKind[RuleConfig]):
    """Rules: the rule engine evaluates them, the dispatcher routes by `catalog.rules`."""

    kind = Kind.RULE

    def in_config(self, name: str) -> bool:
        return any(o.name == name for o in self.catalog.config.rules)

    def validate(self, body: dict[str, Any]) -> RuleConfig:
        try:
            rule = RuleConfig.model_validate(body)
        except ValidationError as exc:
            raise from_validation_error(exc) from None
        self.catalog.known_channels("notify", rule.notify or ())
        self.catalog.known_policy(rule.escalation)
        # The action itself comes from the config file: a rule may only name one.
        recovery = self.catalog.config.recovery.names()
        if (problem := unknown_recovery(rule.recovery, recovery)) is not None:
            raise invalid("recovery", problem)
        return rule

    def hold(self, managed: Managed[RuleConfig]) -> None:
        super().hold(managed)
        self.catalog.rules[managed.record.name] = managed.value

    async def apply(self, managed: Managed[RuleConfig]) -> None:
        self.hold(managed)
        await self.catalog.target.put_rule(managed.value)

    async def remove(self, name: str, *, replacing: bool) -> None:
        self.catalog.rules.pop(name, None)
        self.managed.pop(name, None)
        if not replacing:  # a replaced rule stays in the engine: `put` swaps it, keeping its series
            await self.catalog.target.remove_rule(name)  # resolves its open alerts
