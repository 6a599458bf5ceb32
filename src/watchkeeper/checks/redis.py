"""`redis`: a command on a held Redis connection succeeds (and replies what is expected).

One redis-py connection is kept between runs; see `_pooled` for reconnects, the single retry
on a stale connection, timeouts and password scrubbing. The check drives a bare
`redis.asyncio.Connection` rather than a `Redis` client: the client's pool would reconnect and
retry behind our back (hiding the very failures this check exists to report), and its reply
callbacks would turn `PONG` into `True`. Replies are compared as the server sends them, as
`redis-cli` shows them. RESP2 is used unless the URL asks for `?protocol=3`, so servers older
than Redis 6 (no HELLO) work too. The connection is named `watchkeeper:<check name>` in
`CLIENT LIST`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, field_validator

from watchkeeper.checks._pooled import PooledCheckConfig, PooledConnectionCheck
from watchkeeper.checks.base import CheckContext
from watchkeeper.checks.registry import register
from watchkeeper.core.redact import url_secrets

if TYPE_CHECKING:
    # redis-py is imported where a check or its config uses it: every `watchkeeper` command
    # imports this module (the registry loads all check types), and redis.asyncio costs
    # ~0.15 s of CPU to import.
    from redis.asyncio.connection import AbstractConnection

# Commands that leave the connection in a state where the next command does not simply get
# its reply (pub/sub, MONITOR, MULTI) or that close or reset the session.
_FORBIDDEN_COMMANDS = frozenset(
    {"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "MONITOR", "MULTI", "QUIT", "RESET", "SYNC", "PSYNC"}
)


class RedisCheckConfig(PooledCheckConfig):
    """Config of a `redis` check: a URL and one command (default `PING`)."""

    type: Literal["redis"]
    url: str
    """`redis://[[user]:password@]host:6379/0`, `rediss://...` for TLS, or
    `unix:///path/redis.sock?db=0`."""
    command: list[str] = Field(default_factory=lambda: ["PING"], min_length=1)

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        # redis-py's messages do not quote the URL, but say it our way to be sure.
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a URL starting with redis://, rediss:// or unix://")
        # Imported here, not at the top: startup cost of every `watchkeeper` command.
        from redis.asyncio.connection import ConnectionPool

        try:
            # Building (not connecting) a connection rejects unknown `?parameters` now rather
            # than at the first run. TypeError messages name the parameter, never its value.
            ConnectionPool.from_url(value).make_connection()
        except ValueError:
            raise ValueError("is not a valid Redis URL (check the port and parameters)") from None
        except TypeError as exc:
            raise ValueError(f"has an unsupported parameter ({exc})") from None
        return value

    @field_validator("command")
    @classmethod
    def _valid_command(cls, value: list[str]) -> list[str]:
        if not value[0].strip():
            raise ValueError("the command name (first element) must not be empty")
        if value[0].split()[0].upper() in _FORBIDDEN_COMMANDS:
            raise ValueError(f"{value[0].upper()} cannot be used as a health check command")
        return value


@register
class RedisCheck(PooledConnectionCheck[RedisCheckConfig, "AbstractConnection"]):
    """Sends `command` on one kept Redis connection; compares the reply if `expect`."""

    type = "redis"
    config_model = RedisCheckConfig
    metric_prefix = "redis"
    probe_metric = "command_seconds"
    null_text = "nil"

    def __init__(self, config: RedisCheckConfig, context: CheckContext) -> None:
        # Imported here, not at the top: startup cost of every `watchkeeper` command.
        from redis.asyncio.connection import ConnectionPool
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        timeout = config.timeout.total_seconds()
        # Only used to build connections with the URL's options; it never pools anything.
        self._factory = ConnectionPool.from_url(
            config.url,
            protocol=2,
            client_name=f"watchkeeper:{config.name}",
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        kwargs = self._factory.connection_kwargs
        self._password: str | None = kwargs.get("password")
        self._raw_password = urlsplit(config.url).password
        if "path" in kwargs:
            self._target = str(kwargs["path"])
        else:
            self._target = f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
        super().__init__(config, context)

    @property
    def target(self) -> str:
        return self._target

    @property
    def probe_label(self) -> str:
        return self.config.command[0].upper()

    def _secrets(self) -> Iterable[str]:
        secrets = {s for s in (self._password, self._raw_password) if s}
        return secrets | {unquote(s) for s in secrets} | set(url_secrets(self.config.url))

    async def _connect(self, timeout: float) -> AbstractConnection:
        conn: AbstractConnection = self._factory.make_connection()
        try:
            await conn.connect()
        except BaseException:
            await conn.disconnect(nowait=True)
            raise
        return conn

    async def _probe(self, conn: AbstractConnection) -> Any:
        await conn.send_command(*self.config.command)
        return await conn.read_response()

    def _is_connection_error(self, conn: AbstractConnection, exc: Exception) -> bool:
        # Loaded by `__init__` already; lazy for startup cost (see the top).
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        if not conn.is_connected:
            return True
        return isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError)

    async def _abort(self, conn: AbstractConnection) -> None:
        # nowait: closes the transport without waiting for the peer, so it does not block.
        await conn.disconnect(nowait=True)

    async def _close_gracefully(self, conn: AbstractConnection) -> None:
        await conn.disconnect()
