"""`postgres`: a query on a held connection succeeds (and optionally returns what is expected).

One asyncpg connection is kept between runs; see `_pooled` for reconnects, the single retry
on a stale connection, timeouts and password scrubbing. The connection identifies itself as
`application_name=watchkeeper/<check name>` (unless the DSN sets one), so DBAs can tell it
apart in `pg_stat_activity`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field, field_validator

from watchkeeper.checks._pooled import NO_ROWS, PooledCheckConfig, PooledConnectionCheck
from watchkeeper.checks.base import CheckContext
from watchkeeper.checks.registry import register
from watchkeeper.core.redact import url_secrets

if TYPE_CHECKING:
    # asyncpg is imported where a check uses it: every `watchkeeper` command imports this
    # module (the registry loads all check types), and asyncpg costs ~0.1 s of CPU to import.
    import asyncpg

_DEFAULT_PORT = 5432
_HAS_PORT = re.compile(r":\d+$")
# The server ends (or refuses) the session: admin_shutdown (pg_terminate_backend, fast
# shutdown), crash_shutdown, cannot_connect_now (starting up / shutting down).
_SESSION_ENDING_STATES = frozenset({"57P01", "57P02", "57P03"})


class PostgresCheckConfig(PooledCheckConfig):
    """Config of a `postgres` check: a libpq-style URL and a query."""

    type: Literal["postgres"]
    dsn: str
    """`postgresql://user:password@host:5432/db?sslmode=require`; percent-encode special
    characters in the password."""
    query: str = Field(default="SELECT 1", min_length=1)

    @field_validator("dsn")
    @classmethod
    def _valid_dsn(cls, value: str) -> str:
        # Messages never quote the value: it may hold a password.
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a URL starting with postgresql:// or postgres://")
        try:
            urlsplit(value)
        except ValueError:
            raise ValueError("is not a valid URL") from None
        return value


@register
class PostgresCheck(PooledConnectionCheck[PostgresCheckConfig, "asyncpg.Connection"]):
    """Runs `query` on one kept asyncpg connection; compares the first column if `expect`."""

    type = "postgres"
    config_model = PostgresCheckConfig

    def __init__(self, config: PostgresCheckConfig, context: CheckContext) -> None:
        parts = urlsplit(config.dsn)
        self._params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self._password = parts.password
        self._target = _target(parts.netloc.rpartition("@")[2], self._params)
        super().__init__(config, context)

    @property
    def target(self) -> str:
        return self._target

    def _secrets(self) -> Iterable[str]:
        candidates = [self._password, self._params.get("password")]
        secrets = {s for s in candidates if s}
        # url_secrets: `?password=`, `?sslpassword=` (the TLS key's) and the like.
        return secrets | {unquote(s) for s in secrets} | set(url_secrets(self.config.dsn))

    async def _connect(self, timeout: float) -> asyncpg.Connection:
        # Imported here, not at the top: startup cost of every `watchkeeper` command.
        import asyncpg

        settings = {}
        if "application_name" not in self._params:
            settings["application_name"] = f"watchkeeper/{self.name}"
        return await asyncpg.connect(
            self.config.dsn,
            timeout=timeout,
            server_settings=settings,
            # Unnamed statements only: works behind PgBouncer in transaction mode, and one
            # query per interval gains nothing from a statement cache.
            statement_cache_size=0,
        )

    async def _probe(self, conn: asyncpg.Connection) -> Any:
        row = await conn.fetchrow(self.config.query)
        if row is None:
            return NO_ROWS
        return row[0] if len(row) else None

    def _is_connection_error(self, conn: asyncpg.Connection, exc: Exception) -> bool:
        import asyncpg  # loaded by `_connect` already; lazy for startup cost (see the top)

        if conn.is_closed():
            return True
        if isinstance(exc, asyncpg.PostgresError):
            state = exc.sqlstate or ""
            return state.startswith("08") or state in _SESSION_ENDING_STATES
        return isinstance(exc, OSError | asyncpg.InterfaceError)

    def _is_open(self, conn: asyncpg.Connection) -> bool:
        # asyncpg reads continuously, so it notices a server-side close while idle.
        return not conn.is_closed()

    async def _abort(self, conn: asyncpg.Connection) -> None:
        conn.terminate()

    async def _close_gracefully(self, conn: asyncpg.Connection) -> None:
        await conn.close()

    def _describe(self, exc: BaseException) -> str:
        import asyncpg  # loaded by `_connect` already; lazy for startup cost (see the top)

        if isinstance(exc, asyncpg.PostgresError) and exc.sqlstate:
            return f"{exc} (SQLSTATE {exc.sqlstate})"
        return super()._describe(exc)


def _target(hostspec: str, params: dict[str, str]) -> str:
    """`host:port` for messages, filling in what libpq would default to."""
    hostspec = hostspec or params.get("host", "") or "localhost"
    if hostspec.startswith("/") or "," in hostspec:
        return hostspec  # a socket directory, or several hosts (each may carry its port)
    if _HAS_PORT.search(hostspec):
        return hostspec
    return f"{hostspec}:{params.get('port', _DEFAULT_PORT)}"
