"""Checks, escalation policies and rules managed over the API, merged with the config file's.

A definition is what the config file would hold for the object, validated with the same
models and the same cross-references (channels, escalation policies, `depends_on`, names
unique across both sources). The config file's objects are read-only here.

Every write is stored first and then applied to the running service; if applying fails,
the stored change is undone and the running service put back as it was, so the database and
the scheduler never disagree. At start the database is the source of truth: `load` reads
every stored object and validates it against the config of the day, and one that no longer
validates (say it names a channel since removed from the file) is logged and skipped.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar, get_args

from pydantic import BaseModel, TypeAdapter, ValidationError

from watchkeeper.alerting import lifecycle
from watchkeeper.alerting.check_alerts import check_fingerprint
from watchkeeper.alerting.config import EscalationPolicy
from watchkeeper.alerting.flap_alerts import flapping_fingerprint
from watchkeeper.alerting.rule_config import RuleConfig
from watchkeeper.checks import Check, CheckContext, build_check
from watchkeeper.checks.base import CheckConfigBase
from watchkeeper.checks.registry import config_models
from watchkeeper.config.model import CheckConfig, find_cycle
from watchkeeper.core.changes import CHECKS
from watchkeeper.core.model import NUL_MESSAGE, nul_at
from watchkeeper.core.redact import Redactor, redact_text
from watchkeeper.engine.config import apply_defaults
from watchkeeper.store import results as result_store
from watchkeeper.store.database import Connection as AsyncConnection
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

if TYPE_CHECKING:
    from watchkeeper.app import Runtime

log = logging.getLogger(__name__)

HOST_CODE_TYPES = frozenset({"command", "python"})
"""Check types that run programs or import code on the Watchkeeper host: an API token must
not become a shell, so these stay in the config file."""

_CHECK_MODEL: TypeAdapter[CheckConfigBase] = TypeAdapter(CheckConfig)

_CA_FILE_TYPES = frozenset(
    get_args(model.model_fields["type"].annotation)[0]  # the Literal tag
    for model in config_models()
    if "ca_file" in model.model_fields
)
"""Check types that read a CA bundle from the server's disk (`http`, `tls`)."""

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


def redact_definition(value: Any, redactor: Redactor) -> Any:
    """The definition with secrets masked, for responses: the values `redactor` knows, and
    every field, header, body field and URL parameter the secret policy names secret."""
    return redactor.data(value)


def api_ca_file(value: Any, ca_dir: str | None) -> None:
    """Refuse a `ca_file` of an API-created check unless it lies in `server.api_ca_dir`:
    an admin's token must not become a way to probe or read the server's files."""
    if value is None:
        return
    if ca_dir is None:
        raise invalid(
            "ca_file",
            "checks created over the API may name a ca_file only when the config sets "
            "server.api_ca_dir; define this check in the config file or set it",
        )
    if not isinstance(value, str) or not value or "\0" in value:
        return  # validation names the type or content error
    base = os.path.realpath(ca_dir)
    path = os.path.realpath(value)  # as the check will open it (symlinks followed)
    if os.path.commonpath([base, path]) != base:
        raise invalid("ca_file", "must be a file under server.api_ca_dir")


@dataclass(frozen=True, slots=True)
class Managed(Generic[T]):
    """One API-managed object: its stored record and what it became when applied."""

    record: ManagedRecord
    value: T


class ManagedObjects:
    """The API-managed checks, escalation policies and rules of one runtime.

    `policies` and `rules` hold the config file's and the managed ones together (checks are
    in `runtime.check_configs`); every component that routes, escalates or evaluates reads
    them through the runtime, so a change applies from the next result or alert on.
    """

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime
        config = runtime.config
        self.policies: dict[str, EscalationPolicy] = {p.name: p for p in config.escalation}
        self.rules: dict[str, RuleConfig] = {r.name: r for r in config.rules}
        self.checks: dict[str, Managed[Check[Any]]] = {}
        self.managed_policies: dict[str, Managed[EscalationPolicy]] = {}
        self.managed_rules: dict[str, Managed[RuleConfig]] = {}
        self._config_checks = {c.name for c in config.checks}
        self._channels = {c.name for c in config.notifications}
        self._context: CheckContext | None = None
        self._skipped: dict[tuple[Kind, str], ManagedRecord] = {}
        """Stored objects that did not validate at start: PUT fixes them, DELETE removes."""
        self._why: dict[tuple[Kind, str], str] = {}
        """Why each skipped object was skipped (reported as broken: health, an alert)."""
        # One write at a time: each validates against the state the previous one left.
        self._lock = asyncio.Lock()

    # -- what exists ------------------------------------------------------------------------

    def source(self, kind: Kind, name: str) -> str | None:
        """`config`, `api`, or None when there is no such object."""
        if kind is Kind.CHECK:
            in_config = name in self._config_checks
        elif kind is Kind.ESCALATION_POLICY:
            in_config = any(p.name == name for p in self._rt.config.escalation)
        else:
            in_config = any(r.name == name for r in self._rt.config.rules)
        if in_config:
            return "config"
        return "api" if name in self._managed(kind) else None

    def record(self, kind: Kind, name: str) -> ManagedRecord | None:
        found = self._managed(kind).get(name)
        return found.record if found is not None else None

    def check_definition(self, name: str) -> dict[str, Any] | None:
        """A managed check's stored definition with its secrets masked."""
        found = self.checks.get(name)
        if found is None:
            return None
        return redact_definition(found.record.definition, Redactor(found.value.secrets()))

    # -- validation -------------------------------------------------------------------------

    def parse_check(self, body: dict[str, Any]) -> Check[Any]:
        """Validate a check definition as the config file would and build the check."""
        config = self._check_model(body)
        self._check_references(config)
        return self._build(config)

    def _check_model(self, body: dict[str, Any]) -> CheckConfigBase:
        tag = body.get("type") if isinstance(body.get("type"), str) else None
        if tag in HOST_CODE_TYPES:
            raise invalid(
                "type",
                f"{tag} checks run programs on the Watchkeeper host; "
                "define them in the config file",
            )
        if tag in _CA_FILE_TYPES:
            # Before validation, which opens the file: its answer tells whether a path exists.
            api_ca_file(body.get("ca_file"), self._rt.config.server.api_ca_dir)
        try:
            config = _CHECK_MODEL.validate_python(body)
        except ValidationError as exc:
            raise from_validation_error(exc, tag) from None
        apply_defaults(config, self._rt.config.defaults)
        return config

    def _check_references(self, config: CheckConfigBase) -> None:
        """What Config validates across checks, against the config file's and managed ones
        (with `config` taking the place of the check of its name)."""
        checks = {**self._rt.check_configs, config.name: config}
        for dep in config.depends_on:
            if dep == config.name:
                raise invalid("depends_on", "a check cannot depend on itself")
            if dep not in checks:
                raise invalid("depends_on", f"no check named {dep!r}")
        self._known_channels("notify", config.notify or ())
        self._known_policy(config.escalation)
        cycle = find_cycle({c.name: list(c.depends_on) for c in checks.values()})
        if cycle:
            raise invalid("depends_on", f"depends_on would make a cycle: {' -> '.join(cycle)}")

    def _build(self, config: CheckConfigBase) -> Check[Any]:
        if self._context is None:
            raise ManagedError(503, "the service is starting; try again shortly")
        try:
            check = build_check(config, self._context)
        except (ValueError, OSError) as exc:
            raise invalid(None, f"the check cannot be set up: {redact_text(str(exc))}") from None
        # Known to the log redactor before the definition is stored (or logged) anywhere.
        self._rt.redactor.add(check.secrets())
        return check

    def parse_policy(self, body: dict[str, Any]) -> EscalationPolicy:
        try:
            policy = EscalationPolicy.model_validate(body)
        except ValidationError as exc:
            raise from_validation_error(exc) from None
        for i, step in enumerate(policy.steps):
            self._known_channels(f"steps.{i}.notify", step.notify)
        return policy

    def parse_rule(self, body: dict[str, Any]) -> RuleConfig:
        try:
            rule = RuleConfig.model_validate(body)
        except ValidationError as exc:
            raise from_validation_error(exc) from None
        self._known_channels("notify", rule.notify or ())
        self._known_policy(rule.escalation)
        return rule

    def _known_channels(self, field: str, channels: Iterable[str]) -> None:
        for channel in channels:
            if channel not in self._channels:
                raise invalid(field, f"no notification channel named {channel!r}")

    def _known_policy(self, name: str | None) -> None:
        if name is not None and name not in self.policies:
            raise invalid("escalation", f"no escalation policy {name!r}")

    # -- start ------------------------------------------------------------------------------

    async def load(self, context: CheckContext) -> list[Check[Any]]:
        """Read the stored objects into the runtime (before anything is scheduled); return the
        managed checks to run. An object that no longer validates is logged and skipped."""
        self._context = context
        records = await load_objects(self._rt.db)
        for record in (r for r in records if r.kind is Kind.ESCALATION_POLICY):
            policy = self._load_one(record, self.parse_policy)
            if policy is not None:
                self.policies[policy.name] = policy
                self.managed_policies[policy.name] = Managed(record, policy)
        checks: dict[str, Managed[Check[Any]]] = {}
        for record in (r for r in records if r.kind is Kind.CHECK):
            check = self._load_one(record, lambda body: self._build(self._check_model(body)))
            if check is not None:
                checks[check.name] = Managed(record, check)
        # Checks may depend on each other: validate them together, dropping failures until
        # what is left holds together.
        while True:
            self._rt.check_configs.update({n: m.value.config for n, m in checks.items()})
            failed: tuple[str, ManagedError] | None = None
            for name, managed in checks.items():
                try:
                    self._check_references(managed.value.config)
                except ManagedError as exc:
                    failed = (name, exc)
                    break
            if failed is None:
                break
            name, error = failed
            self._skip(checks[name].record, error.detail)
            del checks[name]
            del self._rt.check_configs[name]
        for name, managed in checks.items():
            self.checks[name] = managed
            self._rt.redactor.add(managed.value.secrets())
        for record in (r for r in records if r.kind is Kind.RULE):
            rule = self._load_one(record, self.parse_rule)
            if rule is not None:
                self.rules[rule.name] = rule
                self.managed_rules[rule.name] = Managed(record, rule)
        if records:
            log.info(
                "loaded %d checks, %d escalation policies and %d rules managed over the API",
                len(self.checks),
                len(self.managed_policies),
                len(self.managed_rules),
            )
        return [m.value for m in self.checks.values() if m.value.config.enabled]

    def _load_one(self, record: ManagedRecord, parse: Any) -> Any:
        if self.source(record.kind, record.name) == "config":
            self._skip(record, "the config file now defines one with this name, and it wins")
            return None
        try:
            value = parse(record.definition)
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
            _what(record.kind),
            record.name,
            record.created_by,
            why,
            "Rename or remove the config file's to use it again."
            if shadowed
            else "Fix it with PUT or remove it with DELETE.",
        )

    # -- writes -----------------------------------------------------------------------------

    async def create(self, kind: Kind, body: dict[str, Any], who: str) -> ManagedRecord:
        async with self._lock:
            value = self._parse(kind, body)
            name = value.name
            self._refuse_taken(kind, name)
            now = self._rt.clock.now()
            try:
                record = await insert_object(self._rt.db, kind, name, body, who, now)
            except KeyError:
                raise ManagedError(409, f"a {_what(kind)} named {name!r} exists") from None
            try:
                await self._attach(kind, Managed(record, value))
            except Exception:
                log.exception("applying the new %s %r failed; undoing it", _what(kind), name)
                await self._detach_quietly(kind, name)
                try:
                    await delete_object(self._rt.db, kind, name)
                except Exception:
                    log.exception("undoing failed: it stays stored and loads at the next start")
                    self._skipped[(kind, name)] = record
                raise ManagedError(
                    503, f"could not apply the {_what(kind)}; nothing changed"
                ) from None
            self._announce(kind)
            log.info("%s %s created over the API by %s", _what(kind), name, who)
            return record

    async def replace(self, kind: Kind, name: str, body: dict[str, Any], who: str) -> ManagedRecord:
        async with self._lock:
            self._refuse_config(kind, name)
            old = self._managed(kind).get(name)
            previous = old.record if old is not None else self._skipped.get((kind, name))
            if previous is None:
                raise ManagedError(404, f"no {_what(kind)} named {name!r}")
            body = {"name": name, **body}
            if body["name"] != name:
                raise invalid(
                    "name",
                    f"must be {name!r}, the name in the path (to rename, "
                    "create the new one and delete the old)",
                )
            value = self._parse(kind, body)
            now = self._rt.clock.now()
            try:
                record = await replace_object(self._rt.db, kind, name, body, who, now)
            except KeyError:
                raise ManagedError(404, f"no {_what(kind)} named {name!r}") from None
            try:
                if old is not None:
                    await self._detach(kind, name, replacing=True)
                await self._attach(kind, Managed(record, value))
            except Exception:
                log.exception("applying the new %s %r failed; undoing it", _what(kind), name)
                await self._detach_quietly(kind, name)
                if old is not None:
                    await self._reattach(kind, old)
                try:
                    await restore_object(self._rt.db, previous)
                except Exception:
                    log.exception("undoing failed: the new definition loads at the next start")
                raise ManagedError(
                    503, f"could not apply the {_what(kind)}; it was left as it was"
                ) from None
            self._skipped.pop((kind, name), None)
            self._report_skipped()
            if old is not None:
                await self._close(kind, old)
            self._announce(kind)
            log.info("%s %s replaced over the API by %s", _what(kind), name, who)
            return record

    async def delete(self, kind: Kind, name: str, who: str) -> None:
        async with self._lock:
            self._refuse_config(kind, name)
            old = self._managed(kind).get(name)
            if old is None and (kind, name) in self._skipped:
                async with self._rt.db.begin() as conn:  # never loaded: only the row to go
                    await delete_row(conn, kind, name)
                    if kind is Kind.CHECK:
                        await _forget_check(conn, name, self._rt.clock.now(), who)
                del self._skipped[(kind, name)]
                self._report_skipped()
                return
            if old is None:
                raise ManagedError(404, f"no {_what(kind)} named {name!r}")
            users = self._users(kind, name)
            if users:
                raise ManagedError(
                    409, f"the {_what(kind)} {name!r} is in use by {', '.join(users)}"
                )
            try:
                await self._detach(kind, name, replacing=False)
                if kind is Kind.CHECK:
                    await self._rt.writer.flush()  # its last results and state, before they go
                async with self._rt.db.begin() as conn:
                    await delete_row(conn, kind, name)
                    if kind is Kind.CHECK:
                        await _forget_check(conn, name, self._rt.clock.now(), who)
            except Exception:
                log.exception("deleting the %s %r failed; keeping it", _what(kind), name)
                await self._detach_quietly(kind, name)
                await self._reattach(kind, old)
                raise ManagedError(503, f"could not delete the {_what(kind)}; it is kept") from None
            if kind is Kind.CHECK:
                self._rt.pipeline.forget(name)
                await self._close(kind, old)
            self._rt.wake_dispatcher()
            self._announce(kind)
            log.info("%s %s deleted over the API by %s", _what(kind), name, who)

    # -- helpers ----------------------------------------------------------------------------

    def _report_skipped(self) -> None:
        """Skipped objects count as broken (fail-open: they are absent, and said to be)."""
        self._rt.broken.update(
            "managed",
            {
                (kind.value, name): self._why.get((kind, name), "not loaded")
                for kind, name in self._skipped
            },
            self._rt.clock.now(),
            logged=True,  # `_skip` said why
        )

    def _announce(self, kind: Kind) -> None:
        if kind is Kind.CHECK:
            self._rt.changes.publish(CHECKS)  # open overviews re-fetch their list

    def _parse(self, kind: Kind, body: dict[str, Any]) -> Any:
        if (where := nul_at(body)) is not None:
            # Stored text (alert summaries, labels) cannot hold it on PostgreSQL.
            raise invalid(where, NUL_MESSAGE)
        if kind is Kind.CHECK:
            return self.parse_check(body)
        if kind is Kind.ESCALATION_POLICY:
            return self.parse_policy(body)
        return self.parse_rule(body)

    def _managed(self, kind: Kind) -> dict[str, Managed[Any]]:
        if kind is Kind.CHECK:
            return self.checks  # type: ignore[return-value]
        if kind is Kind.ESCALATION_POLICY:
            return self.managed_policies  # type: ignore[return-value]
        return self.managed_rules  # type: ignore[return-value]

    def _refuse_config(self, kind: Kind, name: str) -> None:
        if self.source(kind, name) == "config":
            raise ManagedError(
                409, f"the {_what(kind)} {name!r} is defined in the config file; edit it there"
            )

    def _refuse_taken(self, kind: Kind, name: str) -> None:
        self._refuse_config(kind, name)
        if (kind, name) in self._skipped:
            raise ManagedError(
                409,
                f"a {_what(kind)} named {name!r} is stored but did not validate at start; "
                "PUT replaces it, DELETE removes it",
            )
        if self.source(kind, name) == "api":
            raise ManagedError(409, f"a {_what(kind)} named {name!r} exists; PUT replaces it")

    def _users(self, kind: Kind, name: str) -> list[str]:
        """What refers to the object (it cannot be deleted while anything does)."""
        if kind is Kind.CHECK:
            return [
                f"check {c.name}"
                for c in self._rt.check_configs.values()
                if name in c.depends_on and c.name != name
            ]
        if kind is Kind.ESCALATION_POLICY:
            return [
                *(
                    f"check {c.name}"
                    for c in self._rt.check_configs.values()
                    if c.escalation == name
                ),
                *(f"rule {r.name}" for r in self.rules.values() if r.escalation == name),
            ]
        return []

    @staticmethod
    async def _close(kind: Kind, old: Managed[Any]) -> None:
        """Release what a replaced or deleted check held (pooled connections)."""
        if kind is Kind.CHECK:
            check: Check[Any] = old.value
            try:
                await check.close()
            except Exception:
                log.exception("closing the check %s failed", check.name)

    async def _attach(self, kind: Kind, managed: Managed[Any]) -> None:
        rt = self._rt
        name = managed.record.name
        if kind is Kind.CHECK:
            check: Check[Any] = managed.value
            rt.check_configs[name] = check.config
            self.checks[name] = managed
            rt.redactor.add(check.secrets())
            if check.config.enabled:
                if check.config.push:
                    await rt.heartbeats.add(check)  # type: ignore[arg-type]
                else:
                    rt.checks.append(check)
                    rt.scheduler.add(check)
        elif kind is Kind.ESCALATION_POLICY:
            self.policies[name] = managed.value
            self.managed_policies[name] = managed
        else:
            self.rules[name] = managed.value
            self.managed_rules[name] = managed
            await rt.rules.put(managed.value)
        self._reconfigure()

    async def _detach(self, kind: Kind, name: str, *, replacing: bool) -> None:
        """Take an object out of the running service (a replaced rule stays in the engine:
        `put` swaps it keeping its series)."""
        rt = self._rt
        if kind is Kind.CHECK:
            managed = self.checks.pop(name, None)
            if managed is not None:
                check = managed.value
                if check.config.push:
                    rt.heartbeats.remove(name)
                else:
                    await rt.scheduler.remove(name)
                    if check in rt.checks:
                        rt.checks.remove(check)
            rt.check_configs.pop(name, None)
        elif kind is Kind.ESCALATION_POLICY:
            self.policies.pop(name, None)
            self.managed_policies.pop(name, None)
        else:
            self.rules.pop(name, None)
            self.managed_rules.pop(name, None)
            if not replacing:
                await rt.rules.remove(name)  # resolves its open alerts
        self._reconfigure()

    async def _reattach(self, kind: Kind, old: Managed[Any]) -> None:
        """Put back what was running before a failed change (its record was never lost)."""
        try:
            await self._attach(kind, old)
        except Exception:
            log.exception(
                "putting %s %r back failed; it runs again at the next start",
                _what(kind),
                old.record.name,
            )
            self._skipped[(kind, old.record.name)] = old.record

    async def _detach_quietly(self, kind: Kind, name: str) -> None:
        try:
            await self._detach(kind, name, replacing=False)
        except Exception:
            log.exception("taking %s %r out of the running service failed", _what(kind), name)

    def _reconfigure(self) -> None:
        self._rt.dispatcher.reconfigure(
            checks=self._rt.check_configs.values(),
            rules=self.rules.values(),
            policies=self.policies.values(),
        )


def _what(kind: Kind) -> str:
    return kind.value.replace("_", " ")


async def _forget_check(conn: AsyncConnection, name: str, now: datetime, who: str) -> None:
    """A deleted check's open alerts resolve and its state goes; its results stay until
    retention removes them."""
    for fingerprint in (check_fingerprint(name), flapping_fingerprint(name)):
        await lifecycle.resolve(conn, fingerprint, now, comment="check deleted", actor=who)
    await result_store.forget_check(conn, name)


def definition_of(value: BaseModel) -> dict[str, Any]:
    """A policy's or rule's definition as the config file would spell it."""
    return value.model_dump(mode="json", by_alias=True, exclude_unset=True)
