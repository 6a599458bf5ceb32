"""`mysql`: a query on a held MySQL/MariaDB connection succeeds (and returns what is expected).

One aiomysql connection is kept between runs; see `_pooled` for reconnects, the single retry
on a stale connection, timeouts and password scrubbing. The connection runs in autocommit
mode: otherwise InnoDB would keep the first run's REPEATABLE READ snapshot open, and a query
like `SELECT COUNT(*) FROM jobs` would return the same stale answer forever.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field, field_validator

from watchkeeper.checks._pooled import NO_ROWS, PooledCheckConfig, PooledConnectionCheck
from watchkeeper.checks.base import CheckContext
from watchkeeper.checks.registry import register
from watchkeeper.core.redact import url_secrets

if TYPE_CHECKING:
    # aiomysql and pymysql are imported where a check uses them: every `watchkeeper` command
    # imports this module (the registry loads all check types), and they cost ~0.1 s of CPU.
    import aiomysql

_SCHEMES = ("mysql", "mariadb")
_DEFAULT_PORT = 3306
_PARAMETERS = ("charset", "unix_socket")
# Client/server error codes meaning the session is gone: server gone away, lost connection,
# can't connect, commands out of sync, lost connection (reading packet), server shutdown,
# connection killed (MariaDB), read/write timeouts on the server side.
_CONNECTION_ERRORS = frozenset({2003, 2006, 2013, 2014, 2055, 1053, 1927, 1158, 1159, 1160, 1161})


@dataclass(frozen=True, slots=True)
class MysqlDsn:
    """The pieces of a `mysql://user:password@host:port/database` URL."""

    host: str
    port: int
    user: str | None
    password: str
    database: str | None
    charset: str | None = None
    unix_socket: str | None = None

    @property
    def target(self) -> str:
        return self.unix_socket or f"{self.host}:{self.port}"


def parse_mysql_dsn(dsn: str) -> MysqlDsn:
    """Parse a MySQL URL; ValueError messages never quote the URL (it may hold a password)."""
    try:
        parts = urlsplit(dsn)
        port = parts.port
    except ValueError:
        raise ValueError("is not a valid URL (check the port)") from None
    if parts.scheme not in _SCHEMES:
        raise ValueError("must be a URL starting with mysql:// or mariadb://")
    params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = sorted(set(params) - set(_PARAMETERS))
    if unknown:
        raise ValueError(
            f"unsupported parameter(s) {', '.join(unknown)}; supported: {', '.join(_PARAMETERS)}"
        )
    if not parts.hostname and not params.get("unix_socket"):
        raise ValueError("needs a host (mysql://user:password@host:3306/database)")
    database = unquote(parts.path.lstrip("/"))
    if "/" in database:
        raise ValueError("the path must be just the database name")
    return MysqlDsn(
        host=parts.hostname or "localhost",
        port=port or _DEFAULT_PORT,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password or ""),
        database=database or None,
        charset=params.get("charset") or None,
        unix_socket=params.get("unix_socket") or None,
    )


class MysqlCheckConfig(PooledCheckConfig):
    """Config of a `mysql` check (MySQL and MariaDB): a URL and a query."""

    type: Literal["mysql"]
    dsn: str
    """`mysql://user:password@host:3306/database`, optional `?charset=...&unix_socket=...`;
    percent-encode special characters in the password."""
    query: str = Field(default="SELECT 1", min_length=1)

    @field_validator("dsn")
    @classmethod
    def _valid_dsn(cls, value: str) -> str:
        parse_mysql_dsn(value)
        return value


@register
class MysqlCheck(PooledConnectionCheck[MysqlCheckConfig, "aiomysql.Connection"]):
    """Runs `query` on one kept aiomysql connection; compares the first column if `expect`."""

    type = "mysql"
    config_model = MysqlCheckConfig

    def __init__(self, config: MysqlCheckConfig, context: CheckContext) -> None:
        self._dsn = parse_mysql_dsn(config.dsn)
        self._raw_password = urlsplit(config.dsn).password
        super().__init__(config, context)

    @property
    def target(self) -> str:
        return self._dsn.target

    def _secrets(self) -> Iterable[str]:
        found = {s for s in (self._dsn.password, self._raw_password) if s}
        return found | set(url_secrets(self.config.dsn))

    async def _connect(self, timeout: float) -> aiomysql.Connection:
        # Imported here, not at the top: startup cost of every `watchkeeper` command.
        import aiomysql

        dsn = self._dsn
        options: dict[str, Any] = {}
        if dsn.charset:
            options["charset"] = dsn.charset
        return await aiomysql.connect(
            host=dsn.host,
            port=dsn.port,
            user=dsn.user,
            password=dsn.password,
            db=dsn.database,
            unix_socket=dsn.unix_socket,
            connect_timeout=timeout,
            autocommit=True,
            program_name=f"watchkeeper/{self.name}",
            **options,
        )

    async def _probe(self, conn: aiomysql.Connection) -> Any:
        # No `async with`: closing a cursor on a dead connection can raise and hide the error.
        cursor = await conn.cursor()
        await cursor.execute(self.config.query)  # no args: `%` in the query stays literal
        row = await cursor.fetchone()
        await cursor.close()
        if row is None:
            return NO_ROWS
        return row[0] if len(row) else None

    def _is_connection_error(self, conn: aiomysql.Connection, exc: Exception) -> bool:
        import pymysql  # loaded by `_connect` already; lazy for startup cost (see the top)

        if conn.closed:
            return True
        if isinstance(exc, pymysql.err.OperationalError | pymysql.err.InternalError) and exc.args:
            return exc.args[0] in _CONNECTION_ERRORS
        return isinstance(exc, OSError | pymysql.err.InterfaceError)

    async def _abort(self, conn: aiomysql.Connection) -> None:
        conn.close()

    async def _close_gracefully(self, conn: aiomysql.Connection) -> None:
        await conn.ensure_closed()

    def _describe(self, exc: BaseException) -> str:
        import pymysql  # loaded by `_connect` already; lazy for startup cost (see the top)

        if isinstance(exc, pymysql.err.MySQLError) and len(exc.args) == 2:
            code, message = exc.args
            text = f"{message} ({code})"
            cause = exc.__cause__
            if isinstance(cause, OSError):  # "Can't connect to MySQL server" does not say why
                text = f"{text}: {super()._describe(cause)}"
            return text
        return super()._describe(exc)
