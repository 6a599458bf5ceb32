"""What every kind of API-managed object shares: the errors a write answers with, what the
running service offers (`ObjectTarget`), what definitions refer to (`Catalog`) and the
interface each kind implements (`ObjectKind`)."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import ValidationError

from watchkeeper.alerting.rule_config import RuleConfig
from watchkeeper.checks.base import Check, CheckConfigBase
from watchkeeper.config.loader import Config, EscalationPolicy
from watchkeeper.config.references import unknown_channel, unknown_policy
from watchkeeper.core.redact import redact_text
from watchkeeper.store.database import Connection
from watchkeeper.store.objects import Kind, ManagedRecord

T = TypeVar("T")


class ManagedError(Exception):
    """A write that cannot be done: `status` and `detail` become the problem response."""

    def __init__(
        self, status: int, detail: str, errors: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors


def invalid(field: str | None, message: str) -> ManagedError:
    """A 422 naming the field of the definition that is wrong."""
    loc = field.split(".") if field else []
    return ManagedError(
        422,
        f"{field or 'body'}: {message}",
        [{"loc": loc, "msg": message, "type": "value_error"}],
    )


def from_validation_error(exc: ValidationError, tag: str | None = None) -> ManagedError:
    """pydantic's errors as a 422, each located by field (without union tags)."""
    errors = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        loc: list[str | int] = list(error["loc"])
        if tag is not None and loc[:1] == [tag]:
            loc = loc[1:]  # the discriminated union's tag: not a field the user wrote
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc = ["type"]
        message = redact_text(error["msg"].removeprefix("Value error, "))
        errors.append({"loc": loc, "msg": message, "type": error["type"]})
    detail = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in errors)
    return ManagedError(422, detail or "the definition is invalid", errors)


@dataclass(frozen=True, slots=True)
class Managed(Generic[T]):
    """One API-managed object: its stored record and what it became when applied."""

    record: ManagedRecord
    value: T


class ObjectTarget(Protocol):
    """What API-managed objects change in the running service; the runtime implements it.

    Every change takes effect from the next result or alert on."""

    @property
    def check_configs(self) -> Mapping[str, CheckConfigBase]:
        """Every check's config, the config file's and the managed ones, by name."""
        ...

    async def add_check(self, check: Check[Any], *, run: bool = True) -> None:
        """Make `check` known (alerting, redaction) and, when `run` and enabled, run it: on the
        scheduler, or for a push check, on the heartbeat monitor. At start the runtime runs
        the loaded checks itself (`run=False`)."""
        ...

    async def remove_check(self, name: str, check: Check[Any] | None) -> None:
        """Stop the check `name` (`check` is what runs, if anything) and forget its config."""
        ...

    async def flush_results(self) -> None:
        """Store the results and states written so far."""
        ...

    def forget_check(self, name: str) -> None:
        """Drop what the result pipeline remembers of a deleted check."""
        ...

    def checks_changed(self) -> None:
        """Say that the list of checks changed (open overviews re-fetch it)."""
        ...

    async def put_rule(self, rule: RuleConfig) -> None:
        """Evaluate `rule` (a replaced rule keeps its series)."""
        ...

    async def remove_rule(self, name: str) -> None:
        """Stop evaluating the rule `name` and resolve its open alerts."""
        ...

    def reconfigure_alerting(
        self, *, rules: Iterable[RuleConfig], policies: Iterable[EscalationPolicy]
    ) -> None:
        """Route and escalate by these rules and policies (and `check_configs`) from now on."""
        ...

    def wake_dispatcher(self) -> None:
        """Let the dispatcher decide now (an alert resolved, say)."""
        ...

    def status_pages_changed(self) -> None:
        """Rebuild the public status pages (a page was made, replaced or deleted)."""
        ...


class Catalog:
    """What definitions may refer to: the config, the running service's checks, and every
    escalation policy and rule of the config file and the API together."""

    def __init__(self, config: Config, target: ObjectTarget) -> None:
        self.config = config
        self.target = target
        self.channels = frozenset(c.name for c in config.notifications)
        self.policies: dict[str, EscalationPolicy] = {p.name: p for p in config.escalation}
        self.rules: dict[str, RuleConfig] = {r.name: r for r in config.rules}

    def known_channels(self, field: str, channels: Iterable[str]) -> None:
        """Refuse a definition naming a channel the config file does not define."""
        if (problem := unknown_channel(channels, self.channels)) is not None:
            raise invalid(field, problem)

    def known_policy(self, name: str | None) -> None:
        """Refuse a definition naming an escalation policy that does not exist."""
        if (problem := unknown_policy(name, self.policies)) is not None:
            raise invalid("escalation", problem)


class ObjectKind(abc.ABC, Generic[T]):
    """One kind of API-managed object: how a definition is validated, applied to the running
    service and taken out of it, and what refers to an object of the kind.

    `managed` holds the API-managed objects of the kind; `ManagedObjects` stores, orders and
    undoes the changes, and tells the dispatcher after each `apply` and `remove`."""

    kind: ClassVar[Kind]

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.managed: dict[str, Managed[T]] = {}

    @property
    def what(self) -> str:
        """The kind as messages name it (`escalation policy`)."""
        return self.kind.value.replace("_", " ")

    @abc.abstractmethod
    def in_config(self, name: str) -> bool:
        """Whether the config file defines an object of this kind named `name`."""

    @abc.abstractmethod
    def validate(self, body: dict[str, Any]) -> T:
        """The object `body` defines, validated as the config file's would be, references
        included; ManagedError says what is wrong."""

    def validate_stored(self, body: dict[str, Any]) -> T:
        """A stored definition at start; kinds whose objects refer to each other check the
        references together in `adopt`."""
        return self.validate(body)

    async def adopt(
        self, loaded: dict[str, Managed[T]], skip: Callable[[ManagedRecord, str], None]
    ) -> None:
        """Take the objects loaded at start in, before anything runs (`skip` one that does not
        hold together with the rest, saying why)."""
        for managed in loaded.values():
            self.hold(managed)

    def hold(self, managed: Managed[T]) -> None:
        """Count the object among the kind's (what definitions and the dispatcher see)."""
        self.managed[managed.record.name] = managed

    @abc.abstractmethod
    async def apply(self, managed: Managed[T]) -> None:
        """Put the object into the running service."""

    @abc.abstractmethod
    async def remove(self, name: str, *, replacing: bool) -> None:
        """Take the object `name` out of the running service (`replacing`: its new definition
        is applied next)."""

    def references(self, name: str) -> list[str]:
        """What refers to the object `name` (it cannot be deleted while anything does)."""
        return []

    async def before_delete(self, name: str) -> None:
        """Settle what the running service still writes for the object, before its row goes."""

    async def forget(self, conn: Connection, name: str, now: datetime, who: str) -> None:
        """Delete what is stored about the object besides its definition (same transaction)."""

    async def release(self, old: Managed[T], *, deleted: bool) -> None:
        """Release what a replaced or deleted object held."""

    def announce(self) -> None:
        """Say that the objects of this kind changed."""
