"""The root of the config file: one model per section, each owned by its subsystem, and the
references between sections (a check's `notify`, a policy's channels, `depends_on`) checked."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field, model_validator

from watchkeeper import checks as _checks
from watchkeeper.alerting.config import AlertingConfig, EscalationPolicy
from watchkeeper.alerting.maintenance import MaintenanceWindow
from watchkeeper.alerting.routes import validate_channels
from watchkeeper.alerting.rule_config import RuleConfig
from watchkeeper.auth.config import AuthConfig
from watchkeeper.checks.base import CheckConfigBase
from watchkeeper.config.references import (
    dependency_problem,
    unknown_channel,
    unknown_policy,
    unknown_recovery,
)
from watchkeeper.config.server import ServerConfig
from watchkeeper.core.model import StrictModel
from watchkeeper.engine.config import DefaultsConfig, SchedulerConfig, apply_defaults
from watchkeeper.engine.heartbeat.settings import HeartbeatsConfig
from watchkeeper.engine.selfwatch import SelfWatchConfig
from watchkeeper.engine.watchdog import WatchdogConfig
from watchkeeper.notify import channels as _channels
from watchkeeper.notify.channels.base import ChannelConfigBase
from watchkeeper.notify.config import DeliveryConfig
from watchkeeper.recovery.config import RecoveryConfig
from watchkeeper.statuspage.config import StatusPageConfig, resolve_pages
from watchkeeper.statuspage.subscriptions.config import StatusSubscriptionsConfig
from watchkeeper.store.config import StorageConfig


def _tagged_union(models: tuple[type[Any], ...]) -> Any:
    # The union is built from the registries so a new check or channel module needs no edit here.
    return Annotated[Union[models], Field(discriminator="type")]  # noqa: UP007


if TYPE_CHECKING:
    CheckConfig = CheckConfigBase
    ChannelConfig = ChannelConfigBase
else:
    CheckConfig = _tagged_union(_checks.config_models())
    ChannelConfig = _tagged_union(_channels.config_models())


class Config(StrictModel):
    """The whole config file: every section, with the names they refer to checked."""

    server: ServerConfig = Field(default_factory=ServerConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    defaults: DefaultsConfig = Field(default_factory=DefaultsConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    checks: list[CheckConfig] = Field(default_factory=list)
    notifications: list[ChannelConfig] = Field(default_factory=list)
    rules: list[RuleConfig] = Field(default_factory=list)
    maintenance: list[MaintenanceWindow] = Field(default_factory=list)
    alerting: AlertingConfig = Field(default_factory=AlertingConfig)
    escalation: list[EscalationPolicy] = Field(default_factory=list)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    heartbeats: HeartbeatsConfig = Field(default_factory=HeartbeatsConfig)
    recovery: RecoveryConfig = Field(default_factory=RecoveryConfig)
    """A list of actions, or `{max_concurrent, actions}` (see recovery/config.py)."""
    selfwatch: SelfWatchConfig = Field(default_factory=SelfWatchConfig)
    watchdog: WatchdogConfig | None = None
    status_page: StatusPageConfig | None = None
    """The short form of one public status page (the first one, at /status)."""
    status_pages: list[StatusPageConfig] = Field(default_factory=list)
    """Public status pages (see watchkeeper.statuspage.config)."""
    status_subscriptions: StatusSubscriptionsConfig = Field(
        default_factory=StatusSubscriptionsConfig
    )
    """Email and webhook subscribers of the public status page."""

    @model_validator(mode="after")
    def _apply_defaults_and_references(self) -> Config:
        for check in self.checks:
            apply_defaults(check, self.defaults)
        _unique("checks", [c.name for c in self.checks])
        _unique("notifications", [n.name for n in self.notifications])
        check_names = {c.name for c in self.checks}
        channel_names = {n.name for n in self.notifications}
        for i, check in enumerate(self.checks):
            if problem := dependency_problem(check.name, check.depends_on, check_names):
                raise ValueError(f"checks[{i}].depends_on: {problem}")
            if problem := unknown_channel(check.notify or (), channel_names):
                raise ValueError(f"checks[{i}].notify: {problem}")
            if problem := unknown_recovery(check.recovery, self.recovery.names()):
                raise ValueError(f"checks[{i}].recovery: {problem}")
        _unique("escalation", [p.name for p in self.escalation])
        policies = {p.name for p in self.escalation}
        for i, policy in enumerate(self.escalation):
            for j, step in enumerate(policy.steps):
                for channel in step.notify:
                    if channel not in channel_names:
                        raise ValueError(
                            f"escalation[{i}].steps: step {j} notifies unknown channel {channel!r}"
                        )
        for i, check in enumerate(self.checks):
            if problem := unknown_policy(check.escalation, policies):
                raise ValueError(f"checks[{i}].escalation: {problem}")
        _unique("rules", [r.name for r in self.rules])
        for i, rule in enumerate(self.rules):
            if problem := unknown_recovery(rule.recovery, self.recovery.names()):
                raise ValueError(f"rules[{i}].recovery: {problem}")
        for problem in self.recovery.channel_problems(channel_names):
            raise ValueError(f"recovery: {problem}")
        _unique("maintenance", [w.name for w in self.maintenance])
        route_errors = validate_channels(
            self.alerting.routes, channel_names, path="alerting.routes"
        )
        if route_errors:
            raise ValueError(route_errors[0])
        for i, rule in enumerate(self.rules):
            if problem := unknown_channel(rule.notify or (), channel_names):
                raise ValueError(f"rules[{i}].notify: {problem}")
            if problem := unknown_policy(rule.escalation, policies):
                raise ValueError(f"rules[{i}].escalation: {problem}")
        if problem := unknown_policy(self.alerting.default_escalation, policies):
            raise ValueError(f"alerting.default_escalation: {problem}")
        resolve_pages(self.status_page, self.status_pages)
        channel_types = {n.name: n.type for n in self.notifications}
        if problem := self.status_subscriptions.channel_problem(channel_types):
            raise ValueError(f"status_subscriptions.email_channel: {problem}")
        cycle = find_cycle({c.name: list(c.depends_on) for c in self.checks})
        if cycle:
            raise ValueError(f"checks: depends_on has a cycle: {' -> '.join(cycle)}")
        return self

    @property
    def pages(self) -> list[StatusPageConfig]:
        """Every public status page: the short form `status_page:` first."""
        return resolve_pages(self.status_page, self.status_pages)

    def check(self, name: str) -> CheckConfigBase:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def policy(self, name: str | None) -> EscalationPolicy | None:
        """The named escalation policy, or the default one when `name` is None."""
        wanted = name or self.alerting.default_escalation
        return next((p for p in self.escalation if p.name == wanted), None)

    def channel(self, name: str) -> ChannelConfigBase:
        for channel in self.notifications:
            if channel.name == name:
                return channel
        raise KeyError(name)


def _unique(section: str, names: list[str]) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise ValueError(f"{section}[{i}].name: {name!r} is used twice; names must be unique")
        seen.add(name)


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A cycle of `graph` (node -> the nodes it points to) as a path `[a, b, a]`, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state and (found := visit(node)):
            return found
    return None
