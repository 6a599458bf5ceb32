"""The `postgres`, `mysql` and `redis` checks against the real local servers.

Every backend runs the same acceptance suite; server restarts are simulated without touching
the shared system services: by killing the check's own session server-side
(`pg_terminate_backend`, `KILL`, `CLIENT KILL`), or by pointing the check at a loopback TCP
proxy that is stopped and started again on the same port.

Each server is optional locally (its tests skip, saying why) and required under CI=true.
"""

from __future__ import annotations

import abc
import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

import aiomysql
import asyncpg
import pytest
import redis.asyncio as aioredis
from pydantic import ValidationError

from watchkeeper.checks import CHECK_TYPES, CheckContext, build_check
from watchkeeper.checks._pooled import NO_ROWS, PooledConnectionCheck, matches
from watchkeeper.checks.mysql import MysqlCheckConfig, parse_mysql_dsn
from watchkeeper.checks.postgres import PostgresCheck, PostgresCheckConfig
from watchkeeper.checks.redis import RedisCheck, RedisCheckConfig
from watchkeeper.config.loader import parse_config
from watchkeeper.core.domain import Status
from watchkeeper.core.redact import redact_url

IN_CI = os.environ.get("CI") == "true"
PG_DSN = os.environ.get("WATCHKEEPER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
MYSQL_DSN = os.environ.get("WATCHKEEPER_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test")
REDIS_URL = os.environ.get("WATCHKEEPER_TEST_REDIS", "redis://127.0.0.1:6379/0")

AnyCheck = PooledConnectionCheck[Any, Any]
CheckFactory = Callable[[dict[str, Any]], AnyCheck]


def service_unavailable(service: str, url: str, exc: BaseException) -> NoReturn:
    """Skip a test whose server is not running, except under CI=true where it must fail."""
    message = f"{service} not reachable at {redact_url(url)}: {type(exc).__name__}: {exc}"
    if IN_CI:
        pytest.fail(f"{message} (the server is required under CI=true)")
    pytest.skip(message)


async def eventually(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Re-ask the server until `condition` holds; each ask is a round trip, so no sleeping."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 3.0
    while not await condition():
        if loop.time() > deadline:
            pytest.fail(f"gave up waiting for {what}")


def at_port(url: str, port: int, password: str | None = None) -> str:
    """`url` pointed at 127.0.0.1:`port`, with `password` if given."""
    parts = urlsplit(url)
    user = parts.username or ""
    secret = password if password is not None else parts.password
    auth = f"{user}:{secret}@" if secret else (f"{user}@" if user else "")
    return urlunsplit(parts._replace(netloc=f"{auth}127.0.0.1:{port}"))


class Backend(abc.ABC):
    """One kind of server: how a check points at it, and how to act on it server-side."""

    type: str
    url: str
    url_key: str
    default_port: int
    ok_reason: str
    probe_label = "query"
    metric_prefix = "db"
    probe_metric = "query_seconds"
    lost_message: str
    """Part of the driver's message when the server killed the session."""
    bad_probe: dict[str, Any]
    bad_probe_reason: str
    wrong_expect: dict[str, Any]
    wrong_expect_reason: str
    blocking_label: str

    def __init__(self) -> None:
        self.key = f"wk-test-{uuid.uuid4().hex[:12]}"

    @property
    def upstream(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname or "127.0.0.1", parts.port or self.default_port

    def fields(self, **extra: Any) -> dict[str, Any]:
        return {"type": self.type, self.url_key: self.url, **extra}

    def fields_at(self, port: int, password: str | None = None, **extra: Any) -> dict[str, Any]:
        return {"type": self.type, self.url_key: at_port(self.url, port, password), **extra}

    @abc.abstractmethod
    async def start(self) -> None:
        """Open the admin connection, or skip/fail the test if the server is not there."""

    @abc.abstractmethod
    async def stop(self) -> None: ...

    @abc.abstractmethod
    async def server_id(self, check: AnyCheck) -> int:
        """The server's id for the check's session (pid, thread id, client id)."""

    @abc.abstractmethod
    async def kill(self, session: int) -> None:
        """Kill a session server-side; return once the server has dropped it."""

    @abc.abstractmethod
    async def alive(self, session: int) -> bool: ...

    @abc.abstractmethod
    def blocking_probe(self) -> dict[str, Any]:
        """Check fields whose probe waits while `hold()` is in force."""

    @abc.abstractmethod
    async def hold(self) -> None: ...

    @abc.abstractmethod
    async def release(self) -> None: ...

    @abc.abstractmethod
    async def blocked(self, session: int) -> bool:
        """Is the session waiting in the blocking probe?"""

    @abc.abstractmethod
    def client_closed(self, conn: Any) -> bool:
        """Has the driver connection object been closed on our side?"""


class PostgresBackend(Backend):
    type = "postgres"
    url = PG_DSN
    url_key = "dsn"
    default_port = 5432
    ok_reason = "query returned 1"
    lost_message = "closed while idle"  # asyncpg sees the socket close as soon as it happens
    bad_probe = {"query": "SELEC 1"}
    bad_probe_reason = 'query failed: syntax error at or near "SELEC" (SQLSTATE 42601)'
    wrong_expect = {"expect": 2}
    wrong_expect_reason = "expected 2, got 1"
    blocking_label = "query"

    def __init__(self) -> None:
        super().__init__()
        self.lock_key = uuid.uuid4().int & (2**62 - 1)
        self.held = False

    async def start(self) -> None:
        try:
            self.admin = await asyncpg.connect(self.url, timeout=5)
        except (OSError, asyncpg.PostgresError) as exc:
            service_unavailable("PostgreSQL", self.url, exc)

    async def stop(self) -> None:
        await self.release()
        await self.admin.close()

    async def server_id(self, check: AnyCheck) -> int:
        assert check.connection is not None
        pid: int = check.connection.get_server_pid()
        name = await self.admin.fetchval(
            "SELECT application_name FROM pg_stat_activity WHERE pid = $1", pid
        )
        assert name == f"watchkeeper/{check.name}"
        return pid

    async def kill(self, session: int) -> None:
        # With a timeout, pg_terminate_backend waits until the backend has really exited.
        assert await self.admin.fetchval("SELECT pg_terminate_backend($1, 3000)", session)

    async def alive(self, session: int) -> bool:
        count = await self.admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", session
        )
        return bool(count)

    def blocking_probe(self) -> dict[str, Any]:
        # Autocommit: the transaction-level lock is released as soon as the query returns.
        return {"query": f"SELECT count(*) FROM (SELECT pg_advisory_xact_lock({self.lock_key})) s"}

    async def hold(self) -> None:
        await self.admin.execute(f"SELECT pg_advisory_lock({self.lock_key})")
        self.held = True

    async def release(self) -> None:
        if self.held:
            await self.admin.execute(f"SELECT pg_advisory_unlock({self.lock_key})")
            self.held = False

    async def blocked(self, session: int) -> bool:
        event = await self.admin.fetchval(
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", session
        )
        return bool(event == "Lock")

    def client_closed(self, conn: Any) -> bool:
        return bool(conn.is_closed())


class MysqlBackend(Backend):
    type = "mysql"
    url = MYSQL_DSN
    url_key = "dsn"
    default_port = 3306
    ok_reason = "query returned 1"
    lost_message = "Lost connection to MySQL server during query (2013)"
    bad_probe = {"query": "SELEC 1"}
    bad_probe_reason = "query failed: You have an error in your SQL syntax"
    wrong_expect = {"expect": 2}
    wrong_expect_reason = "expected 2, got 1"
    blocking_label = "query"

    async def start(self) -> None:
        dsn = parse_mysql_dsn(self.url)
        try:
            self.admin = await aiomysql.connect(
                host=dsn.host,
                port=dsn.port,
                user=dsn.user,
                password=dsn.password,
                db=dsn.database,
                connect_timeout=5,
                autocommit=True,
            )
        except Exception as exc:
            service_unavailable("MySQL/MariaDB", self.url, exc)

    async def stop(self) -> None:
        await self.release()
        self.admin.close()

    async def _value(self, sql: str, *args: Any) -> Any:
        cursor = await self.admin.cursor()
        await cursor.execute(sql, args or None)
        row = await cursor.fetchone()
        await cursor.close()
        return None if row is None else row[0]

    async def server_id(self, check: AnyCheck) -> int:
        assert check.connection is not None
        thread_id: int = check.connection.server_thread_id[0]
        assert await self.alive(thread_id)
        return thread_id

    async def kill(self, session: int) -> None:
        await self._value(f"KILL {int(session)}")
        await eventually(lambda: self._gone(session), f"MySQL thread {session} to go")

    async def _gone(self, session: int) -> bool:
        return not await self.alive(session)

    async def alive(self, session: int) -> bool:
        count = await self._value(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %s", session
        )
        return bool(count)

    def blocking_probe(self) -> dict[str, Any]:
        return {"query": f"SELECT GET_LOCK('{self.key}', 10) + RELEASE_LOCK('{self.key}')"}

    async def hold(self) -> None:
        assert await self._value("SELECT GET_LOCK(%s, 0)", self.key) == 1

    async def release(self) -> None:
        await self._value("SELECT RELEASE_LOCK(%s)", self.key)

    async def blocked(self, session: int) -> bool:
        state = await self._value(
            "SELECT STATE FROM information_schema.PROCESSLIST WHERE ID = %s", session
        )
        return bool(state == "User lock")

    def client_closed(self, conn: Any) -> bool:
        return bool(conn.closed)


class RedisBackend(Backend):
    type = "redis"
    url = REDIS_URL
    url_key = "url"
    default_port = 6379
    ok_reason = "PING returned 'PONG'"
    probe_label = "PING"
    metric_prefix = "redis"
    probe_metric = "command_seconds"
    lost_message = "Connection closed by server"
    bad_probe = {"command": ["NOSUCHCMD", "x"]}
    bad_probe_reason = "NOSUCHCMD failed: unknown command 'NOSUCHCMD'"
    wrong_expect = {"expect": "PANG"}
    wrong_expect_reason = "expected 'PANG', got 'PONG'"
    blocking_label = "BLPOP"

    async def start(self) -> None:
        self.admin = aioredis.Redis.from_url(self.url, decode_responses=True)
        try:
            await self.admin.ping()
        except Exception as exc:
            await self.admin.aclose()
            service_unavailable("Redis", self.url, exc)

    async def stop(self) -> None:
        await self.admin.delete(self.key)
        await self.admin.aclose()

    async def _clients(self) -> list[dict[str, str]]:
        clients: list[dict[str, str]] = await self.admin.client_list()
        return clients

    async def server_id(self, check: AnyCheck) -> int:
        named = [c for c in await self._clients() if c["name"] == f"watchkeeper:{check.name}"]
        assert len(named) == 1, named
        return int(named[0]["id"])

    async def kill(self, session: int) -> None:
        # Redis closes the client synchronously: it is gone when the command returns.
        assert await self.admin.client_kill_filter(_id=str(session)) == 1

    async def alive(self, session: int) -> bool:
        return any(c["id"] == str(session) for c in await self._clients())

    def blocking_probe(self) -> dict[str, Any]:
        return {"command": ["BLPOP", self.key, "10"]}

    async def hold(self) -> None:
        await self.admin.delete(self.key)

    async def release(self) -> None:
        await self.admin.rpush(self.key, "item")

    async def blocked(self, session: int) -> bool:
        return any(c["id"] == str(session) and "b" in c["flags"] for c in await self._clients())

    def client_closed(self, conn: Any) -> bool:
        return not conn.is_connected


BACKENDS: dict[str, type[Backend]] = {
    "postgres": PostgresBackend,
    "mysql": MysqlBackend,
    "redis": RedisBackend,
}


async def _started(kind: str) -> Backend:
    backend = BACKENDS[kind]()
    await backend.start()
    return backend


@pytest.fixture(params=list(BACKENDS))
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    started = await _started(request.param)
    yield started
    await started.stop()


@pytest.fixture(params=["postgres", "mysql"])
async def sql_backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    started = await _started(request.param)
    yield started
    await started.stop()


@pytest.fixture
async def checks(context: CheckContext) -> AsyncIterator[CheckFactory]:
    """Builds checks with unique names (their server-side session names) and closes them."""
    made: list[AnyCheck] = []

    def make(fields: dict[str, Any]) -> AnyCheck:
        name = f"wk-{uuid.uuid4().hex[:10]}"
        config = CHECK_TYPES[fields["type"]].config_model.model_validate({"name": name, **fields})
        check = build_check(config, context)
        assert isinstance(check, PooledConnectionCheck)
        made.append(check)
        return check

    yield make
    for check in made:
        await check.close()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TcpProxy:
    """A loopback TCP forwarder that can be stopped and started again on the same port: a
    server restart as the check sees it, without touching the shared system service."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._sessions: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and cut every forwarded connection, as a stopping server would."""
        if self._server is None:
            return
        self._server.close()
        self._server = None
        for writer in self._writers:
            writer.close()
        self._writers.clear()
        await asyncio.gather(*self._sessions, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        self._sessions.discard(task)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


class SilentServer:
    """Accepts TCP connections and never says a word: a hung server, as a client sees it."""

    def __init__(self) -> None:
        self.port = 0
        self.accepted = 0
        self.open = 0
        self.all_closed = asyncio.Event()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open += 1
        self.all_closed.clear()
        try:
            while await reader.read(65536):  # whatever the client says, until it hangs up
                pass
        except OSError:
            pass
        finally:
            writer.close()
            self.open -= 1
            if not self.open:
                self.all_closed.set()


@pytest.fixture
async def silent_server() -> AsyncIterator[SilentServer]:
    server = SilentServer()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def proxy(backend: Backend) -> AsyncIterator[TcpProxy]:
    forwarder = TcpProxy(backend.upstream)
    await forwarder.start()
    yield forwarder
    await forwarder.stop()


# -- the acceptance suite, on every backend --------------------------------------------------


async def test_a_healthy_server_is_up_and_later_runs_reuse_the_connection(
    backend: Backend, checks: CheckFactory
) -> None:
    check = checks(backend.fields())

    first = await check.run()
    session = await backend.server_id(check)
    second = await check.run()

    connect, probe = (
        f"{backend.metric_prefix}.connect_seconds",
        (f"{backend.metric_prefix}.{backend.probe_metric}"),
    )
    assert (first.status, first.reason) == (Status.UP, backend.ok_reason)
    assert set(first.metrics) == {connect, probe}
    assert first.response_time is not None and first.response_time >= first.metrics[probe]
    assert "reconnected" not in first.details
    assert (second.status, second.reason) == (Status.UP, backend.ok_reason)
    assert set(second.metrics) == {probe}
    assert await backend.server_id(check) == session


async def test_closing_the_check_ends_its_server_session(
    backend: Backend, checks: CheckFactory
) -> None:
    check = checks(backend.fields())
    await check.run()
    session = await backend.server_id(check)

    await check.close()

    assert check.connection is None

    async def gone() -> bool:
        return not await backend.alive(session)

    await eventually(gone, "the session to end after close()")


async def test_a_session_killed_server_side_is_replaced_within_the_next_run(
    backend: Backend, checks: CheckFactory
) -> None:
    check = checks(backend.fields())
    assert (await check.run()).status is Status.UP
    killed = await backend.server_id(check)

    await backend.kill(killed)
    recovered = await check.run()
    after = await check.run()

    # The stale pooled connection fails, the run retries once on a new one: UP, and it says so.
    assert recovered.status is Status.UP
    assert recovered.reason.startswith("reconnected after: connection lost: ")
    assert backend.lost_message in recovered.reason
    assert recovered.details["reconnected"] is True
    assert recovered.details["retried"] is True
    assert recovered.details["previous_error"] == recovered.reason.removeprefix(
        "reconnected after: "
    )
    assert f"{backend.metric_prefix}.connect_seconds" in recovered.metrics
    assert await backend.server_id(check) != killed
    assert (after.status, after.reason) == (Status.UP, backend.ok_reason)
    assert "reconnected" not in after.details and "retried" not in after.details


async def test_a_server_restart_is_down_while_it_is_gone_and_up_with_reconnected_when_back(
    backend: Backend, checks: CheckFactory, proxy: TcpProxy
) -> None:
    check = checks(backend.fields_at(proxy.port))
    assert (await check.run()).status is Status.UP

    await proxy.stop()
    down = await check.run()
    still_down = await check.run()
    connection_while_down = check.connection
    await proxy.start()
    back = await check.run()

    # The retry on a fresh connection fails too, so the outage is reported, not hidden.
    assert down.status is Status.DOWN
    assert down.reason.startswith(f"connect to 127.0.0.1:{proxy.port} failed: ")
    assert down.details["previous_error"].startswith("connection lost: ")
    assert connection_while_down is None
    assert (still_down.status, still_down.reason) == (Status.DOWN, down.reason)
    assert "previous_error" not in still_down.details
    assert back.status is Status.UP
    assert back.reason == f"reconnected after: {down.reason}"
    assert back.details["reconnected"] is True
    assert back.details["previous_error"] == down.reason
    assert "retried" not in back.details


async def test_a_closed_port_is_down_naming_host_and_port_but_not_the_password(
    backend: Backend, checks: CheckFactory, closed_port: int
) -> None:
    check = checks(backend.fields_at(closed_port, password="s3cret"))

    result = await check.run()

    assert result.status is Status.DOWN
    assert result.reason.startswith(f"connect to 127.0.0.1:{closed_port} failed: ")
    assert "s3cret" not in result.reason
    assert "s3cret" not in repr(result.details)
    assert check.connection is None


async def test_a_driver_message_echoing_the_url_or_password_is_scrubbed(
    backend: Backend, checks: CheckFactory, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    fields = backend.fields_at(closed_port, password="p%40ss-w0rd")
    check = checks(fields)
    url = fields[backend.url_key]

    async def echoing_connect(timeout: float) -> Any:
        raise ValueError(f"cannot use {url}: password p@ss-w0rd rejected")

    monkeypatch.setattr(check, "_connect", echoing_connect)
    result = await check.run()

    assert result.status is Status.DOWN
    assert result.reason.startswith(f"connect to 127.0.0.1:{closed_port} failed: cannot use ")
    assert "p%40ss-w0rd" not in result.reason
    assert "p@ss-w0rd" not in result.reason
    assert "***" in result.reason


@pytest.mark.parametrize("kind", list(BACKENDS))
async def test_a_server_that_accepts_but_never_answers_times_out_and_leaves_no_socket_open(
    kind: str, checks: CheckFactory, silent_server: SilentServer
) -> None:
    # No real server needed: the driver gets a TCP connection and then silence.
    backend = BACKENDS[kind]()
    check = checks(backend.fields_at(silent_server.port, timeout="300ms"))

    result = await check.run()

    assert (result.status, result.reason) == (
        Status.DOWN,
        f"connect to 127.0.0.1:{silent_server.port} timed out after 300ms",
    )
    assert silent_server.accepted >= 1
    # The abandoned handshake gives up on its own (without close()) and closes its socket.
    await asyncio.wait_for(silent_server.all_closed.wait(), timeout=3)
    assert check.connection is None


async def test_a_wrong_expectation_is_down_saying_what_came_back(
    backend: Backend, checks: CheckFactory
) -> None:
    check = checks(backend.fields(**backend.wrong_expect))

    result = await check.run()

    assert (result.status, result.reason) == (Status.DOWN, backend.wrong_expect_reason)
    assert result.response_time is not None


async def test_a_failing_query_is_down_with_the_servers_message_and_keeps_the_connection(
    backend: Backend, checks: CheckFactory
) -> None:
    check = checks(backend.fields(**backend.bad_probe))

    first = await check.run()
    session = await backend.server_id(check)
    second = await check.run()

    assert first.status is Status.DOWN
    assert first.reason.startswith(backend.bad_probe_reason)
    assert (second.status, second.reason) == (Status.DOWN, first.reason)
    assert f"{backend.metric_prefix}.connect_seconds" not in second.metrics
    assert await backend.server_id(check) == session


async def test_a_run_cancelled_mid_query_drops_its_connection_and_the_next_run_reconnects(
    backend: Backend, checks: CheckFactory
) -> None:
    check = checks(backend.fields(**backend.blocking_probe(), timeout="5s"))
    await backend.release()
    assert (await check.run()).status is Status.UP
    session = await backend.server_id(check)
    conn = check.connection

    await backend.hold()
    run = asyncio.create_task(check.run())

    async def waiting() -> bool:
        return await backend.blocked(session)

    await eventually(waiting, "the probe to block on the server")
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run

    assert check.connection is None
    assert backend.client_closed(conn)
    await backend.release()

    async def gone() -> bool:
        return not await backend.alive(session)

    await eventually(gone, "the cancelled session to end server-side")
    result = await check.run()
    assert result.status is Status.UP
    assert (
        result.reason == f"reconnected after: the previous {backend.blocking_label} was interrupted"
    )


async def test_a_query_outliving_the_timeout_is_down_and_the_next_run_reconnects(
    backend: Backend, checks: CheckFactory
) -> None:
    check = checks(backend.fields(**backend.blocking_probe(), timeout="300ms"))
    await backend.release()
    assert (await check.run()).status is Status.UP
    session = await backend.server_id(check)

    await backend.hold()
    timed_out = await check.run()
    await backend.release()
    back = await check.run()

    assert timed_out.status is Status.DOWN
    assert timed_out.reason == f"{backend.blocking_label} timed out after 300ms"
    assert back.status is Status.UP
    assert back.reason == f"reconnected after: {timed_out.reason}"
    assert await backend.server_id(check) != session


# -- SQL specifics ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expect", "status", "reason"),
    [
        ("SELECT 'ok'", "ok", Status.UP, "query returned 'ok'"),
        ("SELECT 1.50", 1.5, Status.UP, "query returned 1.50"),
        ("SELECT 1 = 1", True, Status.UP, None),
        ("SELECT 1 = 2", True, Status.DOWN, None),
        (
            "SELECT 1 FROM (SELECT 1 AS a) AS t WHERE a = 0",
            None,
            Status.UP,
            "query returned no rows",
        ),
        (
            "SELECT 1 FROM (SELECT 1 AS a) AS t WHERE a = 0",
            1,
            Status.DOWN,
            "expected 1, got no rows",
        ),
        ("SELECT NULL", 1, Status.DOWN, "expected 1, got NULL"),
    ],
)
async def test_the_first_column_of_the_first_row_is_compared_with_expect(
    sql_backend: Backend,
    checks: CheckFactory,
    query: str,
    expect: Any,
    status: Status,
    reason: str | None,
) -> None:
    fields: dict[str, Any] = {"query": query}
    if expect is not None:
        fields["expect"] = expect

    result = await checks(sql_backend.fields(**fields)).run()

    assert result.status is status
    if reason is not None:
        assert result.reason == reason


async def test_the_mysql_session_autocommits_so_each_run_sees_fresh_data(
    checks: CheckFactory,
) -> None:
    backend = await _started("mysql")
    try:
        check = checks(backend.fields(query="SELECT @@autocommit", expect=1))
        assert (await check.run()).status is Status.UP
    finally:
        await backend.stop()


# -- redis specifics -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expect", "status", "reason"),
    [
        (["ECHO", "hello"], "hello", Status.UP, "ECHO returned 'hello'"),
        (["EXISTS", "{key}"], 0, Status.UP, "EXISTS returned 0"),
        (["GET", "{key}"], None, Status.UP, "GET returned nil"),
        (["GET", "{key}"], "x", Status.DOWN, "expected 'x', got nil"),
        (["PING"], "PONG", Status.UP, "PING returned 'PONG'"),
    ],
)
async def test_redis_replies_are_compared_as_the_server_sends_them(
    checks: CheckFactory, command: list[str], expect: Any, status: Status, reason: str
) -> None:
    backend = await _started("redis")
    try:
        fields: dict[str, Any] = {"command": [a.format(key=backend.key) for a in command]}
        if expect is not None:
            fields["expect"] = expect
        result = await checks(backend.fields(**fields)).run()
    finally:
        await backend.stop()

    assert (result.status, result.reason) == (status, reason)


@pytest.mark.parametrize("kind", ["mysql", "redis"])
async def test_a_wrong_password_on_a_real_server_is_down_without_the_password(
    kind: str, checks: CheckFactory
) -> None:
    # (PostgreSQL is left out: the local server trusts every local connection.)
    backend = await _started(kind)
    try:
        fields = backend.fields_at(backend.upstream[1], password="n0t-the-password")
        result = await checks(fields).run()
    finally:
        await backend.stop()

    assert result.status is Status.DOWN
    assert result.reason.startswith(f"connect to 127.0.0.1:{backend.upstream[1]} failed: ")
    assert "n0t-the-password" not in result.reason


# -- config ----------------------------------------------------------------------------------


def test_the_three_types_load_from_the_config_file_with_env_expansion(
    context: CheckContext,
) -> None:
    config = parse_config(
        """
checks:
  - name: pg
    type: postgres
    dsn: postgresql://app:${PGPASSWORD}@127.0.0.1:5432/app
    query: SELECT count(*) FROM pg_stat_activity
  - name: maria
    type: mysql
    dsn: mysql://app:${MYSQL_PASSWORD}@127.0.0.1:3306/app
    expect: 1
  - name: cache
    type: redis
    url: redis://:${REDIS_PASSWORD}@127.0.0.1:6379/0
    command: [GET, feature-flag]
    expect: "on"
""",
        environ={"PGPASSWORD": "pg-pw", "MYSQL_PASSWORD": "my-pw", "REDIS_PASSWORD": "rd-pw"},
    )

    pg, maria, cache = config.checks
    assert isinstance(pg, PostgresCheckConfig) and "pg-pw" in pg.dsn
    assert isinstance(maria, MysqlCheckConfig) and type(maria.expect) is int
    assert isinstance(cache, RedisCheckConfig) and cache.expect == "on"
    assert isinstance(build_check(pg, context), PostgresCheck)
    assert isinstance(build_check(cache, context), RedisCheck)


@pytest.mark.parametrize(
    "fields",
    [
        {"type": "postgres", "dsn": "host=db user=app password=hunter22"},
        {"type": "postgres", "dsn": "postgresql://app:hunter22@[db:5432/app"},
        {"type": "mysql", "dsn": "postgresql://app:hunter22@db/app"},
        {"type": "mysql", "dsn": "mysql://app:hunter22@db:port/app"},
        {"type": "mysql", "dsn": "mysql://app:hunter22@db/app?sslmode=require"},
        {"type": "redis", "url": "http://:hunter22@db:6379"},
        {"type": "redis", "url": "redis://:hunter22@db:6379", "command": ["SUBSCRIBE", "x"]},
        {"type": "redis", "url": "redis://:hunter22@db:6379", "command": []},
        {"type": "redis", "url": "redis://:hunter22@db:6379/0?colour=blue"},
        {"type": "postgres", "dsn": "postgresql://db/app", "expect": [1]},
        {"type": "postgres", "dsn": "postgresql://db/app", "pool_size": 2},
    ],
)
def test_invalid_config_is_rejected_without_quoting_the_password(fields: dict[str, Any]) -> None:
    model = CHECK_TYPES[fields["type"]].config_model
    with pytest.raises(ValidationError) as caught:
        model.model_validate({"name": "db", **fields})

    # The config loader shows `msg` (never the input value): it must not carry the password.
    assert all("hunter22" not in error["msg"] for error in caught.value.errors())


@pytest.mark.parametrize(
    ("fields", "target"),
    [
        ({"type": "postgres", "dsn": "postgresql://u:pw@db.example/app"}, "db.example:5432"),
        ({"type": "postgres", "dsn": "postgres://u@[::1]:6432/app"}, "[::1]:6432"),
        ({"type": "postgres", "dsn": "postgresql:///app?host=/run/postgresql"}, "/run/postgresql"),
        ({"type": "postgres", "dsn": "postgresql://a:5432,b:5433/app"}, "a:5432,b:5433"),
        ({"type": "mysql", "dsn": "mysql://u:pw@db.example/app"}, "db.example:3306"),
        (
            {"type": "mysql", "dsn": "mariadb://u@h/app?unix_socket=/run/mysqld.sock"},
            "/run/mysqld.sock",
        ),
        ({"type": "redis", "url": "rediss://:pw@cache.example"}, "cache.example:6379"),
        ({"type": "redis", "url": "unix:///run/redis.sock?db=2"}, "/run/redis.sock"),
    ],
)
def test_messages_name_the_target_with_the_default_port_filled_in(
    fields: dict[str, Any], target: str, context: CheckContext
) -> None:
    config = CHECK_TYPES[fields["type"]].config_model.model_validate({"name": "db", **fields})
    check = build_check(config, context)

    assert isinstance(check, PooledConnectionCheck)
    assert check.target == target


# -- matching --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "actual", "result"),
    [
        (1, 1, True),
        (1, 1.0, True),
        (1.5, "1.50", True),
        (1, "1", True),
        (1, True, False),
        (1, 2, False),
        (1, "one", False),
        (True, True, True),
        (True, 1, True),
        (True, "t", True),
        (False, "f", True),
        (True, 2, False),
        (True, "PONG", False),
        ("PONG", b"PONG", True),
        ("PONG", "pong", False),
        ("t", True, True),
        ("1", 1, True),
        (1, None, False),
        ("NULL", None, False),
        (1, NO_ROWS, False),
    ],
)
def test_expect_matches_by_meaning_across_driver_types(
    expected: Any, actual: Any, result: bool
) -> None:
    assert matches(expected, actual) is result
