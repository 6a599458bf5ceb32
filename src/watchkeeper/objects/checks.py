"""Checks managed over the API: validated and built like the config file's, then run by the
scheduler (or, push checks, the heartbeat monitor)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, get_args

from pydantic import TypeAdapter, ValidationError

from watchkeeper.alerting import lifecycle
from watchkeeper.alerting.check_alerts import check_fingerprint
from watchkeeper.alerting.flap_alerts import flapping_fingerprint
from watchkeeper.checks import Check, CheckContext, build_check
from watchkeeper.checks.base import CheckConfigBase
from watchkeeper.checks.registry import config_models
from watchkeeper.config.loader import CheckConfig, apply_defaults, find_cycle
from watchkeeper.config.references import dependency_problem, unknown_recovery
from watchkeeper.core.redact import Redactor, redact_text
from watchkeeper.objects.base import (
    Catalog,
    Managed,
    ManagedError,
    ObjectKind,
    from_validation_error,
    invalid,
)
from watchkeeper.store import results as result_store
from watchkeeper.store.database import Connection
from watchkeeper.store.objects import Kind, ManagedRecord

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


class CheckObjects(ObjectKind[Check[Any]]):
    """Checks: their configs join `target.check_configs`, which alerting reads."""

    kind = Kind.CHECK

    def __init__(self, catalog: Catalog, redactor: Redactor) -> None:
        super().__init__(catalog)
        self._redactor = redactor
        self.config_checks = {c.name for c in catalog.config.checks}
        """The names of the config file's checks (a reload replaces them)."""
        self.context: CheckContext | None = None
        """The HTTP session checks share; set at start, before which nothing is built."""

    def in_config(self, name: str) -> bool:
        return name in self.config_checks

    def validate(self, body: dict[str, Any]) -> Check[Any]:
        config = self._model(body)
        self._check_references(config, self.catalog.target.check_configs)
        return self._build(config)

    def validate_stored(self, body: dict[str, Any]) -> Check[Any]:
        return self._build(self._model(body))

    def _model(self, body: dict[str, Any]) -> CheckConfigBase:
        tag = body.get("type") if isinstance(body.get("type"), str) else None
        if tag in HOST_CODE_TYPES:
            raise invalid(
                "type",
                f"{tag} checks run programs on the Watchkeeper host; "
                "define them in the config file",
            )
        config = self.catalog.config
        if tag in _CA_FILE_TYPES:
            # Before validation, which opens the file: its answer tells whether a path exists.
            api_ca_file(body.get("ca_file"), config.server.api_ca_dir)
        try:
            check = _CHECK_MODEL.validate_python(body)
        except ValidationError as exc:
            raise from_validation_error(exc, tag) from None
        apply_defaults(check, config.defaults)
        return check

    def _check_references(
        self, config: CheckConfigBase, others: Mapping[str, CheckConfigBase]
    ) -> None:
        """What Config validates across checks, against `others` (the config file's and
        managed ones) with `config` taking the place of the check of its name."""
        checks = {**others, config.name: config}
        if (problem := dependency_problem(config.name, config.depends_on, checks)) is not None:
            raise invalid("depends_on", problem)
        self.catalog.known_channels("notify", config.notify or ())
        self.catalog.known_policy(config.escalation)
        # The action itself comes from the config file: a check may only name one.
        recovery = self.catalog.config.recovery.names()
        if (problem := unknown_recovery(config.recovery, recovery)) is not None:
            raise invalid("recovery", problem)
        cycle = find_cycle({c.name: list(c.depends_on) for c in checks.values()})
        if cycle:
            raise invalid("depends_on", f"depends_on would make a cycle: {' -> '.join(cycle)}")

    def _build(self, config: CheckConfigBase) -> Check[Any]:
        if self.context is None:
            raise ManagedError(503, "the service is starting; try again shortly")
        try:
            check = build_check(config, self.context)
        except (ValueError, OSError) as exc:
            raise invalid(None, f"the check cannot be set up: {redact_text(str(exc))}") from None
        # Known to the log redactor before the definition is stored (or logged) anywhere.
        self._redactor.add(check.secrets())
        return check

    async def adopt(
        self, loaded: dict[str, Managed[Check[Any]]], skip: Callable[[ManagedRecord, str], None]
    ) -> None:
        # Checks may depend on each other: validate them together, dropping failures until
        # what is left holds together.
        target = self.catalog.target
        checks = dict(loaded)
        while True:
            configs = {**target.check_configs, **{n: m.value.config for n, m in checks.items()}}
            failed: tuple[str, ManagedError] | None = None
            for name, managed in checks.items():
                try:
                    self._check_references(managed.value.config, configs)
                except ManagedError as exc:
                    failed = (name, exc)
                    break
            if failed is None:
                break
            name, error = failed
            skip(checks[name].record, error.detail)
            del checks[name]
        for managed in checks.values():
            self.hold(managed)
            await target.add_check(managed.value, run=False)  # the runtime runs them at start

    async def apply(self, managed: Managed[Check[Any]]) -> None:
        self.hold(managed)
        await self.catalog.target.add_check(managed.value)

    async def remove(self, name: str, *, replacing: bool) -> None:
        managed = self.managed.pop(name, None)
        await self.catalog.target.remove_check(name, managed.value if managed else None)

    def references(self, name: str) -> list[str]:
        return [
            f"check {c.name}"
            for c in self.catalog.target.check_configs.values()
            if name in c.depends_on and c.name != name
        ]

    async def before_delete(self, name: str) -> None:
        await self.catalog.target.flush_results()  # its last results and state, before they go

    async def forget(self, conn: Connection, name: str, now: datetime, who: str) -> None:
        """A deleted check's open alerts resolve and its state goes; its results stay until
        retention removes them."""
        for fingerprint in (check_fingerprint(name), flapping_fingerprint(name)):
            await lifecycle.resolve(conn, fingerprint, now, comment="check deleted", actor=who)
        await result_store.forget_check(conn, name)

    async def release(self, old: Managed[Check[Any]], *, deleted: bool) -> None:
        """Release what the check held (pooled connections)."""
        if deleted:
            self.catalog.target.forget_check(old.record.name)
        try:
            await old.value.close()
        except Exception:
            log.exception("closing the check %s failed", old.value.name)

    def announce(self) -> None:
        self.catalog.target.checks_changed()
