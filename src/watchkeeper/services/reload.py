"""Reloading the config file while the service runs (`SIGHUP`, `POST /api/v1/reload`).

The file is read and validated first; an invalid one is refused with its located errors and
the running config stays. A valid one is compared with the running config, kind by kind
(checks, channels, rules, escalation policies, maintenance windows: added, removed, changed,
unchanged, by name), and the runtime applies the difference: a check whose name stays keeps
its state, history and open alert. Settings that only take effect at start (`server:`,
`storage:`, ...) are kept as they are and reported as needing a restart. API-managed objects
are untouched and stay merged on top; a file that clashes with them is refused.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from watchkeeper.config.loader import Config, ConfigError, ConfigFile, ConfigIssue
from watchkeeper.core.changes import ALERTS, CHECKS, ChangeFeed
from watchkeeper.core.errors import Conflict, Invalid, Unavailable
from watchkeeper.objects.managed import ManagedObjects

log = logging.getLogger(__name__)

RESTART_SECTIONS = (
    "server",
    "storage",
    "scheduler",
    "delivery",
    "auth",
    "heartbeats",
    "recovery",
    "status_subscriptions",
)
"""Sections read once at start (sockets, the database, loops' sizes, credentials, the
recovery actions and the programs they supervise, the status page's subscription settings):
a reload keeps them as they are and says which of their settings changed."""

RESTART_ALERTING = ("flapping",)
"""`alerting:` settings read once at start (the flap detector is built with them)."""

NAMED_KINDS = ("checks", "notifications", "rules", "escalation", "maintenance")
"""The config file's lists of named objects, compared by name."""


@dataclass(frozen=True, slots=True)
class KindChanges:
    """What a reload does to one kind of object of the config file, by name."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0

    @property
    def any(self) -> bool:
        return bool(self.added or self.removed or self.changed)


@dataclass(frozen=True, slots=True)
class ConfigChanges:
    """The difference between the running config and a reloaded file.

    `config` is what the service runs by from now on: the file's, with the settings that
    need a restart kept as they were (`needs_restart` names those that differ)."""

    config: Config
    kinds: dict[str, KindChanges]
    settings: list[str]
    """Other live settings that changed (`alerting.routes`, `defaults`...)."""
    needs_restart: list[str]

    @property
    def any(self) -> bool:
        """Whether anything is applied."""
        return bool(self.settings) or any(k.any for k in self.kinds.values())

    def summary(self) -> dict[str, Any]:
        """The changes as the API answers and the log says them."""
        return {
            "changed": self.any,
            **{
                kind: {
                    "added": c.added,
                    "removed": c.removed,
                    "changed": c.changed,
                    "unchanged": c.unchanged,
                }
                for kind, c in self.kinds.items()
            },
            "settings": self.settings,
            "needs_restart": self.needs_restart,
        }


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, BaseModel) and isinstance(b, BaseModel):
        return type(a) is type(b) and a.model_dump() == b.model_dump()
    if isinstance(a, Sequence) and isinstance(b, Sequence) and not isinstance(a, str):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _kind(old: Sequence[Any], new: Sequence[Any]) -> KindChanges:
    before = {o.name: o for o in old}
    after = {o.name: o for o in new}
    changed = [n for n in after if n in before and not _same(before[n], after[n])]
    return KindChanges(
        added=[n for n in after if n not in before],
        removed=[n for n in before if n not in after],
        changed=changed,
        unchanged=sum(1 for n in after if n in before) - len(changed),
    )


def _fields(section: str, old: BaseModel, new: BaseModel) -> list[str]:
    return [
        f"{section}.{name}"
        for name in type(old).model_fields
        if not _same(getattr(old, name), getattr(new, name))
    ]


def diff_config(old: Config, new: Config) -> ConfigChanges:
    """Compare the running config with a reloaded file's (both valid)."""
    kinds = {kind: _kind(getattr(old, kind), getattr(new, kind)) for kind in NAMED_KINDS}
    needs_restart: list[str] = []
    for section in RESTART_SECTIONS:
        needs_restart += _fields(section, getattr(old, section), getattr(new, section))
    alerting_restart = [
        f"alerting.{name}"
        for name in RESTART_ALERTING
        if not _same(getattr(old.alerting, name), getattr(new.alerting, name))
    ]
    needs_restart += alerting_restart
    settings = [
        f for f in _fields("alerting", old.alerting, new.alerting) if f not in alerting_restart
    ]
    if not _same(old.defaults, new.defaults):
        settings.append("defaults")  # already applied to the file's checks (changed above)
    kept = {section: getattr(old, section) for section in RESTART_SECTIONS}
    kept["alerting"] = new.alerting.model_copy(
        update={name: getattr(old.alerting, name) for name in RESTART_ALERTING}
    )
    return ConfigChanges(
        config=new.model_copy(update=kept),
        kinds=kinds,
        settings=settings,
        needs_restart=needs_restart,
    )


def _issues(issues: list[ConfigIssue], kind: str) -> list[dict[str, Any]]:
    return [
        {
            "loc": [issue.field],
            "msg": issue.message,
            "type": kind,
            "file": issue.file,
            "line": issue.line,
            "where": f"{issue.file}:{issue.line}",
        }
        for issue in issues
    ]


@dataclass(slots=True)
class ReloadService:
    """Re-reads the config file and applies what changed, one reload at a time.

    `file` is the config file (None: the service does not run from one); `current` is the
    running config; `apply` is the runtime's, taking the changes in (called with the
    API-managed objects' write lock held)."""

    file: ConfigFile | None
    current: Callable[[], Config]
    apply: Callable[[ConfigChanges], Awaitable[None]]
    managed: ManagedObjects
    changes: ChangeFeed
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def reload(self, who: str) -> dict[str, Any]:
        """Reload the config file on behalf of `who`; return what changed (`summary`).

        Invalid (422, `errors` with each problem's file and line) when the file is invalid
        or clashes with API-managed objects: the running config stays. Conflict when the
        service was not started from a config file."""
        if self.file is None:
            raise Conflict("the service runs on the built-in config: there is no file to reload")
        async with self._lock:  # one reload at a time, each against what the last left
            try:
                new = await asyncio.to_thread(self.file.load)
            except ConfigError as exc:
                for issue in exc.issues:
                    log.error("reload refused (the running config stays): %s", issue)
                raise Invalid(
                    "the config file is invalid; the running config stays",
                    errors=_issues(exc.issues, "config_invalid"),
                ) from None
            except OSError as exc:
                log.error("reload refused (the running config stays): %s", exc)
                raise Invalid(
                    f"the config file cannot be read: {exc.strerror or exc}; "
                    "the running config stays"
                ) from None
            async with self.managed.writing:
                clashes = [self.file.issue(*c) for c in self.managed.clashes(new)]
                if clashes:
                    for clash in clashes:
                        log.error("reload refused (the running config stays): %s", clash)
                    raise Invalid(
                        "the config file clashes with objects managed over the API; "
                        "the running config stays",
                        errors=_issues(clashes, "managed_clash"),
                    )
                changes = diff_config(self.current(), new)
                try:
                    await self.apply(changes)
                except Exception:
                    log.exception("applying the reloaded config failed part way")
                    raise Unavailable(
                        "applying the reloaded config failed part way; see the log, "
                        "and restart to be sure of the state"
                    ) from None
            self.changes.publish(CHECKS)
            self.changes.publish(ALERTS)
            summary = changes.summary()
            log.info("config reloaded by %s: %s", who, _said(summary))
            for setting in changes.needs_restart:
                log.warning("config reload: %s changed and needs a restart; kept", setting)
            return summary

    async def on_signal(self) -> None:
        """Reload for `SIGHUP`: the outcome goes to the log (there is no one to answer)."""
        try:
            await self.reload("SIGHUP")
        except (Invalid, Conflict, Unavailable) as exc:
            log.error("SIGHUP: config not reloaded: %s", exc.detail)
        except Exception:
            log.exception("SIGHUP: config reload failed")


def _said(summary: dict[str, Any]) -> str:
    parts = []
    for kind in NAMED_KINDS:
        c = summary[kind]
        for what in ("added", "removed", "changed"):
            if c[what]:
                parts.append(f"{kind} {what}: {', '.join(c[what])}")
    if summary["settings"]:
        parts.append(f"settings changed: {', '.join(summary['settings'])}")
    return "; ".join(parts) or "nothing changed"
