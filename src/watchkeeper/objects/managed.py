"""Checks, escalation policies and rules managed over the API, merged with the config file's.

A definition is what the config file would hold for the object, validated with the same
models and the same cross-references (channels, escalation policies, `depends_on`, names
unique across both sources). The config file's objects are read-only here.

Every write is stored first and then applied to the running service; if applying fails,
the stored change is undone and the running service put back as it was, so the database and
the scheduler never disagree. At start the database is the source of truth: `load` reads
every stored object and validates it against the config of the day, and one that no longer
validates (say it names a channel since removed from the file) is logged and skipped.

What differs between kinds lives in one class per kind behind `ObjectKind` (objects/checks.py,
policies.py, rules.py); what they change in the running service goes through `ObjectTarget`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

from watchkeeper.alerting.broken import BrokenObjects
from watchkeeper.alerting.config import EscalationPolicy
from watchkeeper.alerting.rule_config import RuleConfig
from watchkeeper.checks import Check, CheckContext
from watchkeeper.config.model import Config
from watchkeeper.core.clock import Clock
from watchkeeper.core.model import NUL_MESSAGE, nul_at
from watchkeeper.core.redact import Redactor
from watchkeeper.objects.base import (
    Catalog,
    Managed,
    ManagedError,
    ObjectKind,
    ObjectTarget,
    from_validation_error,
    invalid,
)
from watchkeeper.objects.checks import HOST_CODE_TYPES, CheckObjects, api_ca_file
from watchkeeper.objects.policies import PolicyObjects
from watchkeeper.objects.rules import RuleObjects
from watchkeeper.objects.status_pages import StatusPageObjects
from watchkeeper.statuspage.config import StatusPageConfig
from watchkeeper.store.database import Database
from watchkeeper.store.objects import (
    Kind,
    ManagedRecord,
    delete_object,
    delete_row,
    insert_object,
    load_objects,
    replace_object,
    restore_object,
)

__all__ = [
    "HOST_CODE_TYPES",
    "Managed",
    "ManagedError",
    "ManagedObjects",
    "ObjectTarget",
    "api_ca_file",
    "definition_of",
    "from_validation_error",
    "invalid",
    "redact_definition",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


def redact_definition(value: Any, redactor: Redactor) -> Any:
    """The definition with secrets masked, for responses: the values `redactor` knows, and
    every field, header, body field and URL parameter the secret policy names secret."""
    return redactor.data(value)


class ManagedObjects:
    """The API-managed checks, escalation policies and rules of one runtime.

    `policies` and `rules` hold the config file's and the managed ones together (checks are
    in `target.check_configs`); every component that routes, escalates or evaluates reads
    them through the runtime, so a change applies from the next result or alert on.
    """

    def __init__(
        self,
        target: ObjectTarget,
        config: Config,
        *,
        db: Database,
        clock: Clock,
        redactor: Redactor,
        broken: BrokenObjects,
    ) -> None:
        self._target = target
        self._db = db
        self._clock = clock
        self._broken = broken
        catalog = Catalog(config, target)
        self._catalog = catalog
        self._checks = CheckObjects(catalog, redactor)
        kinds: list[ObjectKind[Any]] = [
            PolicyObjects(catalog),
            self._checks,
            RuleObjects(catalog),
            StatusPageObjects(catalog),
        ]
        self._kinds: dict[Kind, ObjectKind[Any]] = {k.kind: k for k in kinds}
        """Each kind's handler, in the order they load (checks and rules name policies)."""
        self.policies: dict[str, EscalationPolicy] = catalog.policies
        self.rules: dict[str, RuleConfig] = catalog.rules
        self.checks: dict[str, Managed[Check[Any]]] = self._checks.managed
        self.managed_policies: dict[str, Managed[EscalationPolicy]] = self._kinds[
            Kind.ESCALATION_POLICY
        ].managed
        self.managed_rules: dict[str, Managed[RuleConfig]] = self._kinds[Kind.RULE].managed
        self.status_pages: dict[str, Managed[StatusPageConfig]] = self._kinds[
            Kind.STATUS_PAGE
        ].managed
        """Status pages made over the API, by slug (shown after the config file's)."""
        self._skipped: dict[tuple[Kind, str], ManagedRecord] = {}
        """Stored objects that did not validate at start: PUT fixes them, DELETE removes."""
        self._why: dict[tuple[Kind, str], str] = {}
        """Why each skipped object was skipped (reported as broken: health, an alert)."""
        # One write at a time: each validates against the state the previous one left.
        self._lock = asyncio.Lock()

    # -- what exists ------------------------------------------------------------------------

    def source(self, kind: Kind, name: str) -> str | None:
        """`config`, `api`, or None when there is no such object."""
        handler = self._kinds[kind]
        if handler.in_config(name):
            return "config"
        return "api" if name in handler.managed else None

    def record(self, kind: Kind, name: str) -> ManagedRecord | None:
        """The stored record of an API-managed object (None for the config file's)."""
        found = self._kinds[kind].managed.get(name)
        return found.record if found is not None else None

    def every_status_page(self) -> list[StatusPageConfig]:
        """The config file's status pages, then those made over the API (by slug)."""
        return [
            *self._catalog.config.pages,
            *(m.value for _, m in sorted(self.status_pages.items())),
        ]

    def check_definition(self, name: str) -> dict[str, Any] | None:
        """A managed check's stored definition with its secrets masked."""
        found = self.checks.get(name)
        if found is None:
            return None
        return redact_definition(found.record.definition, Redactor(found.value.secrets()))

    # -- a reloaded config file -----------------------------------------------------------

    @property
    def writing(self) -> asyncio.Lock:
        """Held by every write; a reload holds it too, so no write validates against a config
        that is being replaced."""
        return self._lock

    def clashes(self, config: Config) -> list[tuple[tuple[int | str, ...], str]]:
        """What in `config` (a reloaded config file) does not hold together with the
        API-managed objects, each with where in the file (`("checks", 2, "name")`): a name
        taken by one, or a channel, escalation policy or check one refers to that `config` no
        longer defines (located at the section). Empty when `config` can be used."""
        problems: list[tuple[tuple[int | str, ...], str]] = []
        for kind, section, names in (
            (Kind.CHECK, "checks", [c.name for c in config.checks]),
            (Kind.ESCALATION_POLICY, "escalation", [p.name for p in config.escalation]),
            (Kind.RULE, "rules", [r.name for r in config.rules]),
            (Kind.STATUS_PAGE, "status_pages", [p.slug for p in config.pages]),
        ):
            what = self._kinds[kind].what
            problems += [
                (
                    (section, i, "name"),
                    f"{what} {name!r} is managed over the API; delete it there or rename this one",
                )
                for i, name in enumerate(names)
                if name in self._kinds[kind].managed
            ]
        channels = {c.name for c in config.notifications}
        policies = {p.name for p in config.escalation} | set(self.managed_policies)
        checks = {c.name for c in config.checks} | set(self.checks)

        def gone(what: str, name: str, refers: str, missing: str) -> str:
            return (
                f"{what} {name!r} (managed over the API) {refers} {missing!r}, which the file "
                "no longer defines"
            )

        def refer(what: str, name: str, notify: Any, escalation: str | None) -> None:
            problems.extend(
                (("notifications",), gone(what, name, "notifies channel", channel))
                for channel in notify or ()
                if channel not in channels
            )
            if escalation is not None and escalation not in policies:
                problems.append(
                    (("escalation",), gone(what, name, "names escalation policy", escalation))
                )

        for name, check in self.checks.items():
            refer("check", name, check.value.config.notify, check.value.config.escalation)
            problems.extend(
                (("checks",), gone("check", name, "depends on check", other))
                for other in check.value.config.depends_on
                if other not in checks
            )
        for name, rule in self.managed_rules.items():
            refer("rule", name, rule.value.notify, rule.value.escalation)
        for name, policy in self.managed_policies.items():
            notify = [c for step in policy.value.steps for c in step.notify]
            refer("escalation policy", name, notify, None)
        return problems

    def use_config(self, config: Config) -> None:
        """Follow a reloaded config file (`clashes` found nothing): its policies and rules
        replace the old file's, the API-managed ones stay, and new definitions are
        validated against it. The caller holds `writing`."""
        catalog = self._catalog
        catalog.config = config
        catalog.channels = frozenset(c.name for c in config.notifications)
        self._checks.config_checks = {c.name for c in config.checks}
        # In place: the dispatcher and the rule service read these very dicts.
        _follow(self.policies, self.managed_policies, {p.name: p for p in config.escalation})
        _follow(self.rules, self.managed_rules, {r.name: r for r in config.rules})

    # -- validation -------------------------------------------------------------------------

    def parse_check(self, body: dict[str, Any]) -> Check[Any]:
        """Validate a check definition as the config file would and build the check."""
        return self._checks.validate(body)

    def parse_policy(self, body: dict[str, Any]) -> EscalationPolicy:
        """Validate an escalation policy definition as the config file would."""
        policy: EscalationPolicy = self._kinds[Kind.ESCALATION_POLICY].validate(body)
        return policy

    def parse_rule(self, body: dict[str, Any]) -> RuleConfig:
        """Validate a rule definition as the config file would."""
        rule: RuleConfig = self._kinds[Kind.RULE].validate(body)
        return rule

    # -- start ------------------------------------------------------------------------------

    async def load(self, context: CheckContext) -> list[Check[Any]]:
        """Read the stored objects into the runtime (before anything is scheduled); return the
        managed checks to run. An object that no longer validates is logged and skipped."""
        self._checks.context = context
        records = await load_objects(self._db)
        for kind, handler in self._kinds.items():
            loaded: dict[str, Managed[Any]] = {}
            for record in (r for r in records if r.kind is kind):
                value = self._load_one(record, handler)
                if value is not None:
                    loaded[value.name] = Managed(record, value)
            await handler.adopt(loaded, self._skip)
        if records:
            log.info(
                "loaded %d checks, %d escalation policies and %d rules managed over the API",
                len(self.checks),
                len(self.managed_policies),
                len(self.managed_rules),
            )
        return [m.value for m in self.checks.values() if m.value.config.enabled]

    def _load_one(self, record: ManagedRecord, handler: ObjectKind[Any]) -> Any:
        if self.source(record.kind, record.name) == "config":
            self._skip(record, "the config file now defines one with this name, and it wins")
            return None
        try:
            value = handler.validate_stored(record.definition)
        except ManagedError as exc:
            self._skip(record, exc.detail)
            return None
        except Exception as exc:  # never let one stored object stop the service
            self._skip(record, f"{type(exc).__name__}: {exc}")
            return None
        if value.name != record.name:
            self._skip(record, f"its definition names {value.name!r}")
            return None
        return value

    def _skip(self, record: ManagedRecord, why: str) -> None:
        shadowed = self.source(record.kind, record.name) == "config"
        if not shadowed:
            self._skipped[(record.kind, record.name)] = record
            self._why[(record.kind, record.name)] = why
            self._report_skipped()
        log.error(
            "%s %r (created over the API by %s) is not loaded: %s. %s",
            self._kinds[record.kind].what,
            record.name,
            record.created_by,
            why,
            "Rename or remove the config file's to use it again."
            if shadowed
            else "Fix it with PUT or remove it with DELETE.",
        )

    # -- writes -----------------------------------------------------------------------------

    async def create(self, kind: Kind, body: dict[str, Any], who: str) -> ManagedRecord:
        """Validate, store and apply a new object; ManagedError says why not."""
        handler = self._kinds[kind]
        async with self._lock:
            value = self._parse(handler, body)
            name = value.name
            self._refuse_taken(kind, name)
            now = self._clock.now()
            try:
                record = await insert_object(self._db, kind, name, body, who, now)
            except KeyError:
                raise ManagedError(409, f"a {handler.what} named {name!r} exists") from None
            try:
                await self._attach(handler, Managed(record, value))
            except Exception:
                log.exception("applying the new %s %r failed; undoing it", handler.what, name)
                await self._detach_quietly(handler, name)
                try:
                    await delete_object(self._db, kind, name)
                except Exception:
                    log.exception("undoing failed: it stays stored and loads at the next start")
                    self._skipped[(kind, name)] = record
                raise ManagedError(
                    503, f"could not apply the {handler.what}; nothing changed"
                ) from None
            handler.announce()
            log.info("%s %s created over the API by %s", handler.what, name, who)
            return record

    async def replace(self, kind: Kind, name: str, body: dict[str, Any], who: str) -> ManagedRecord:
        """Validate, store and apply a new definition of an API-managed object."""
        handler = self._kinds[kind]
        async with self._lock:
            self._refuse_config(kind, name)
            old = handler.managed.get(name)
            previous = old.record if old is not None else self._skipped.get((kind, name))
            if previous is None:
                raise ManagedError(404, f"no {handler.what} named {name!r}")
            body = {"name": name, **body}
            if body["name"] != name:
                raise invalid(
                    "name",
                    f"must be {name!r}, the name in the path (to rename, "
                    "create the new one and delete the old)",
                )
            value = self._parse(handler, body)
            now = self._clock.now()
            try:
                record = await replace_object(self._db, kind, name, body, who, now)
            except KeyError:
                raise ManagedError(404, f"no {handler.what} named {name!r}") from None
            try:
                if old is not None:
                    await self._detach(handler, name, replacing=True)
                await self._attach(handler, Managed(record, value))
            except Exception:
                log.exception("applying the new %s %r failed; undoing it", handler.what, name)
                await self._detach_quietly(handler, name)
                if old is not None:
                    await self._reattach(handler, old)
                try:
                    await restore_object(self._db, previous)
                except Exception:
                    log.exception("undoing failed: the new definition loads at the next start")
                raise ManagedError(
                    503, f"could not apply the {handler.what}; it was left as it was"
                ) from None
            self._skipped.pop((kind, name), None)
            self._report_skipped()
            if old is not None:
                await handler.release(old, deleted=False)
            handler.announce()
            log.info("%s %s replaced over the API by %s", handler.what, name, who)
            return record

    async def delete(self, kind: Kind, name: str, who: str) -> None:
        """Take an API-managed object out of the service and the database."""
        handler = self._kinds[kind]
        async with self._lock:
            self._refuse_config(kind, name)
            old = handler.managed.get(name)
            if old is None and (kind, name) in self._skipped:
                async with self._db.begin() as conn:  # never loaded: only the row to go
                    await delete_row(conn, kind, name)
                    await handler.forget(conn, name, self._clock.now(), who)
                del self._skipped[(kind, name)]
                self._report_skipped()
                return
            if old is None:
                raise ManagedError(404, f"no {handler.what} named {name!r}")
            users = handler.references(name)
            if users:
                raise ManagedError(
                    409, f"the {handler.what} {name!r} is in use by {', '.join(users)}"
                )
            try:
                await self._detach(handler, name, replacing=False)
                await handler.before_delete(name)
                async with self._db.begin() as conn:
                    await delete_row(conn, kind, name)
                    await handler.forget(conn, name, self._clock.now(), who)
            except Exception:
                log.exception("deleting the %s %r failed; keeping it", handler.what, name)
                await self._detach_quietly(handler, name)
                await self._reattach(handler, old)
                raise ManagedError(
                    503, f"could not delete the {handler.what}; it is kept"
                ) from None
            await handler.release(old, deleted=True)
            self._target.wake_dispatcher()
            handler.announce()
            log.info("%s %s deleted over the API by %s", handler.what, name, who)

    # -- helpers ----------------------------------------------------------------------------

    def _report_skipped(self) -> None:
        """Skipped objects count as broken (fail-open: they are absent, and said to be)."""
        self._broken.update(
            "managed",
            {
                (kind.value, name): self._why.get((kind, name), "not loaded")
                for kind, name in self._skipped
            },
            self._clock.now(),
            logged=True,  # `_skip` said why
        )

    @staticmethod
    def _parse(handler: ObjectKind[Any], body: dict[str, Any]) -> Any:
        if (where := nul_at(body)) is not None:
            # Stored text (alert summaries, labels) cannot hold it on PostgreSQL.
            raise invalid(where, NUL_MESSAGE)
        return handler.validate(body)

    def _refuse_config(self, kind: Kind, name: str) -> None:
        if self.source(kind, name) == "config":
            raise ManagedError(
                409,
                f"the {self._kinds[kind].what} {name!r} is defined in the config file; "
                "edit it there",
            )

    def _refuse_taken(self, kind: Kind, name: str) -> None:
        what = self._kinds[kind].what
        self._refuse_config(kind, name)
        if (kind, name) in self._skipped:
            raise ManagedError(
                409,
                f"a {what} named {name!r} is stored but did not validate at start; "
                "PUT replaces it, DELETE removes it",
            )
        if self.source(kind, name) == "api":
            raise ManagedError(409, f"a {what} named {name!r} exists; PUT replaces it")

    async def _attach(self, handler: ObjectKind[Any], managed: Managed[Any]) -> None:
        await handler.apply(managed)
        self._reconfigure()

    async def _detach(self, handler: ObjectKind[Any], name: str, *, replacing: bool) -> None:
        await handler.remove(name, replacing=replacing)
        self._reconfigure()

    async def _reattach(self, handler: ObjectKind[Any], old: Managed[Any]) -> None:
        """Put back what was running before a failed change (its record was never lost)."""
        try:
            await self._attach(handler, old)
        except Exception:
            log.exception(
                "putting %s %r back failed; it runs again at the next start",
                handler.what,
                old.record.name,
            )
            self._skipped[(handler.kind, old.record.name)] = old.record

    async def _detach_quietly(self, handler: ObjectKind[Any], name: str) -> None:
        try:
            await self._detach(handler, name, replacing=False)
        except Exception:
            log.exception("taking %s %r out of the running service failed", handler.what, name)

    def _reconfigure(self) -> None:
        rules, policies = self.rules.values(), self.policies.values()
        self._target.reconfigure_alerting(rules=rules, policies=policies)


def _follow(merged: dict[str, T], managed: Mapping[str, Any], of_file: dict[str, T]) -> None:
    """`merged` (both sources) with the config file's entries replaced by `of_file`'s."""
    for name in [n for n in merged if n not in managed]:
        del merged[name]
    merged.update(of_file)


def definition_of(value: BaseModel) -> dict[str, Any]:
    """A policy's or rule's definition as the config file would spell it."""
    return value.model_dump(mode="json", by_alias=True, exclude_unset=True)
