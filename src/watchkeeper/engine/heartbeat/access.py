"""Who may ping which heartbeat: UUIDs always, `<ping key>/<slug>`, names only if enabled;
plus the rate limits in front of every ping."""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from watchkeeper.checks.heartbeat import HeartbeatCheck
from watchkeeper.core.ratelimit import TokenBuckets
from watchkeeper.engine.heartbeat.monitor import HeartbeatMonitor, PingKind
from watchkeeper.engine.heartbeat.settings import HeartbeatsConfig
from watchkeeper.store import settings
from watchkeeper.store.database import Database

log = logging.getLogger(__name__)

PING_KEY_SETTING = "heartbeats.ping_key"

_ACTIONS = {"start": PingKind.START, "fail": PingKind.FAIL, "log": PingKind.LOG}


async def load_ping_key(
    db: Database, configured: str | None, *, secret: Callable[[str], None] = lambda _key: None
) -> tuple[str, str]:
    """The install's ping key and where it comes from (`config` or `generated`): the
    configured one, else the one generated on the first start and kept in the database.
    `secret` learns a new key before it is written (so even SQL debug logs mask it)."""
    if configured is not None:
        return configured, "config"

    def make() -> str:
        key = secrets.token_urlsafe(16)
        secret(key)
        return key

    return await settings.get_or_create(db, PING_KEY_SETTING, make), "generated"


@dataclass(frozen=True, slots=True)
class Ping:
    """What a ping URL asks for."""

    check: HeartbeatCheck
    kind: PingKind
    exit_code: int | None = None


class BadExitCode(ValueError):
    """The exit status segment is digits, but not 0-255."""


class PingAccess:
    """Turns a ping path into a `Ping` (or nothing: the caller answers one 404 for every
    unknown key, so which names exist is never revealed) and holds the rate limits."""

    def __init__(
        self,
        config: HeartbeatsConfig,
        ping_key: str,
        monotonic: Callable[[], float],
        *,
        key_source: str = "config",
    ) -> None:
        self._by_name = config.ping_by_name
        self._key = ping_key.encode()
        self.ping_key = ping_key
        self.key_source = key_source
        self._per_check = TokenBuckets(config.rate_limit.per_check, monotonic)
        self._per_address = TokenBuckets(config.rate_limit.per_address, monotonic)
        self._told_about_names = False

    def use_key(self, ping_key: str, key_source: str) -> None:
        """Take the install's ping key (the runtime loads it at start)."""
        self._key = ping_key.encode()
        self.ping_key = ping_key
        self.key_source = key_source

    def is_ping_key(self, segment: str) -> bool:
        # An empty key (not loaded yet) matches nothing.
        return bool(self._key) and hmac.compare_digest(segment.encode(), self._key)

    def parse(self, monitor: HeartbeatMonitor, segments: list[str]) -> Ping | None:
        """`[key]`, `[key, action]` or `[ping_key, slug]`, `[ping_key, slug, action]`.

        The first segment is compared with the ping key first: after the ping key, the next
        segment is always a slug (so checks named `start`, `log` or `7` can be pinged too).
        Otherwise it is a UUID (or, with `ping_by_name`, a check name), and the next segment
        is `start`, `fail`, `log` or an exit status. Raises BadExitCode for digits past 255.
        """
        first, rest = segments[0], segments[1:]
        if self.is_ping_key(first):
            if not rest:
                return None
            check = monitor.by_name(rest[0])
            rest = rest[1:]
        else:
            check = monitor.by_uuid(first)
            if check is None and self._by_name:
                check = monitor.by_name(first)
            elif check is None and not self._told_about_names and monitor.by_name(first):
                # Once per process, for whoever upgraded with jobs still pinging by name.
                self._told_about_names = True
                log.warning(
                    "a ping by check name was refused (heartbeats.ping_by_name is off): "
                    "ping the check's ping_url or /ping/<ping key>/<name> instead"
                )
        if check is None or len(rest) > 1:
            return None
        if not rest:
            return Ping(check, PingKind.SUCCESS)
        action = rest[0]
        if action in _ACTIONS:
            return Ping(check, _ACTIONS[action])
        if action.isascii() and action.isdigit():
            code = int(action) if len(action) <= 3 else 256
            if code > 255:
                raise BadExitCode(action)
            return Ping(check, PingKind.SUCCESS if code == 0 else PingKind.FAIL, code)
        return None

    def admit_address(self, address: str) -> float | None:
        """None if `address` may ping now, else the seconds to wait."""
        return self._per_address.take(address)

    def admit_check(self, name: str) -> float | None:
        """None if heartbeat `name` may be pinged now, else the seconds to wait."""
        return self._per_check.take(name)
