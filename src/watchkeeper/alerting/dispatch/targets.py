"""Who an alert pages first, and by which escalation policy (if any) it escalates.

The only module of the dispatch stages that names the config models: the others reach the
`alerting:` settings and the policies through `Targets`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field

from watchkeeper.alerting.config import AlertingConfig, EscalationPolicy
from watchkeeper.alerting.dispatch.context import Pass
from watchkeeper.alerting.routes import Route, route_channels
from watchkeeper.core.domain import Alert


@dataclass(slots=True)
class Routing:
    """Where an alert goes when nobody configured an escalation policy."""

    channels: Sequence[str]
    by_check: Mapping[str, Sequence[str] | None] = field(default_factory=dict)
    by_rule: Mapping[str, Sequence[str] | None] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)

    def channels_for(self, alert: Alert) -> list[str]:
        """A check's or rule's own `notify` first, then the routing tree, then everyone."""
        routed = None
        if alert.check:
            routed = self.by_check.get(alert.check)
        elif alert.rule:
            routed = self.by_rule.get(alert.rule)
        if routed is None and self.routes:
            routed = route_channels(self.routes, alert.match_labels)
        return list(self.channels if routed is None else routed)


class Targets:
    """The `alerting:` settings, the policies and the routing, as one pass uses them.

    `unusable`: policies that could not be evaluated this pass (see `unusable_policies`);
    alerts naming them route as if they named none."""

    def __init__(
        self,
        config: AlertingConfig,
        policies: Mapping[str, EscalationPolicy],
        routing: Routing,
        unusable: Set[str] = frozenset(),
    ) -> None:
        self.config = config
        self._policies = policies
        self._routing = routing
        self._unusable = unusable

    def policy(self, alert: Alert) -> EscalationPolicy | None:
        """The alert's own policy, else the default one; None when neither (or unusable)."""
        name = alert.escalation_policy or self.config.default_escalation
        if not name or name in self._unusable:
            return None
        return self._policies.get(name)

    def first_channels(self, alert: Alert) -> list[str]:
        """Who the first page goes to: the policy's first step, else the routing."""
        policy = self.policy(alert)
        return list(policy.steps[0].notify) if policy else self._routing.channels_for(alert)


def unusable_policies(policies: Mapping[str, EscalationPolicy], at: Pass) -> set[str]:
    """The names of the policies that cannot be evaluated at `at.now` (each reported broken)."""
    return {name for name, policy in policies.items() if not _usable(policy, at)}


def _usable(policy: EscalationPolicy, at: Pass) -> bool:
    """Whether every instant the policy can schedule is computable (a stored policy from
    before delays were bounded may overflow); an unusable one is reported broken."""
    try:
        for step in policy.steps:
            _ = at.now + step.after - policy.steps[0].after
        if policy.repeat is not None:
            _ = at.now + policy.repeat
    except Exception as exc:
        at.found[("escalation_policy", policy.name)] = exc
        return False
    return True
