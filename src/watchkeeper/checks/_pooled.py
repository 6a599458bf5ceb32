"""Shared machinery for checks that keep one long-lived connection to a server between runs.

`postgres`, `mysql` and `redis` hold a single connection (no pool) and probe through it:

- The connection is opened lazily by the first run and reused by the following ones, so a
  check costs one query per interval, not a TCP + auth handshake.
- A connection-level failure (server restarted, connection killed server-side, socket reset)
  makes that run DOWN with `connection lost: ...` or `connect to host:port failed: ...`; the
  broken connection is dropped and the next run reconnects by itself.
- When a *reused* connection fails at the connection level, the run retries once, immediately,
  on a fresh connection. A connection that sat idle since the previous run may have been cut
  by a server restart, a failover or an idle-connection reaper while the service itself was
  fine; reporting DOWN for that would be a false alarm. The retry happens only for a stale
  pooled connection: a connection opened in the same run that fails is reported as is. A
  connection the driver already knows is closed (asyncpg notices while idle) is replaced
  without being probed. Either way the result carries `"retried": true`.
- The first successful connect after any failure says so: details
  `{"reconnected": true, "previous_error": ...}` and reason `reconnected after: ...`.
- The check's `timeout` bounds the whole run (connect + query + the single retry). A run that
  times out or is cancelled mid-query aborts its connection: its protocol state is unknown.
- Reasons, details and logs never carry passwords: driver messages are scrubbed of the
  configured password and of URL userinfo.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import math
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from time import perf_counter
from typing import Any, ClassVar, Generic, TypeVar

from watchkeeper.checks.base import Check, CheckConfigBase, CheckContext
from watchkeeper.core.domain import CheckResult
from watchkeeper.core.durations import format_duration
from watchkeeper.core.redact import Redactor

log = logging.getLogger(__name__)

Expected = str | int | float | bool
"""What `expect:` may hold in config."""


class _NoRows:
    def __repr__(self) -> str:
        return "NO_ROWS"


NO_ROWS = _NoRows()
"""Probe value for a query that returned no rows (distinct from a NULL first column)."""

_RENDER_LIMIT = 200
# How long `close()` waits for a polite goodbye (COM_QUIT, Terminate) before aborting.
_CLOSE_TIMEOUT = 2.0
_TRUE_WORDS = frozenset({"t", "true", "1", "yes", "y", "on"})
_FALSE_WORDS = frozenset({"f", "false", "0", "no", "n", "off"})


class PooledCheckConfig(CheckConfigBase):
    """Fields shared by the connection-holding checks (`postgres`, `mysql`, `redis`)."""

    expect: Expected | None = None
    """Expected first value of the reply; None accepts any successful reply."""


C = TypeVar("C", bound=PooledCheckConfig)
Conn = TypeVar("Conn")


@dataclass(slots=True)
class _Run:
    """Bookkeeping of one run: where it is (for timeout messages) and what it measured."""

    started: float = field(default_factory=perf_counter)
    phase: str = "lock"
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    reconnected_after: str | None = None


class PooledConnectionCheck(Check[C], Generic[C, Conn]):
    """A check holding one connection across runs; subclasses supply the driver calls.

    Subclasses implement `target`, `_connect`, `_probe`, `_is_connection_error`, `_abort` and
    optionally `_close_gracefully`, `_describe` and `_secrets`.
    """

    metric_prefix: ClassVar[str] = "db"
    probe_metric: ClassVar[str] = "query_seconds"
    null_text: ClassVar[str] = "NULL"

    def __init__(self, config: C, context: CheckContext) -> None:
        super().__init__(config, context)
        self._conn: Conn | None = None
        self._previous_error: str | None = None
        # Runs never overlap in the scheduler, but a manual "run now" could; two coroutines
        # on one connection would corrupt its protocol state.
        self._lock = asyncio.Lock()
        # Connect attempts abandoned by a cancelled run; see `_open`.
        self._orphans: set[asyncio.Task[None]] = set()
        self._redactor = Redactor(self._secrets())

    # -- driver hooks ----------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def target(self) -> str:
        """Where the check connects, for messages: `host:port` (or a socket path)."""

    @abc.abstractmethod
    async def _connect(self, timeout: float) -> Conn:
        """Open and authenticate a new connection within `timeout` seconds."""

    @abc.abstractmethod
    async def _probe(self, conn: Conn) -> Any:
        """Send the query/command; return the first value of the reply (or NO_ROWS)."""

    @abc.abstractmethod
    def _is_connection_error(self, conn: Conn, exc: Exception) -> bool:
        """True if `exc` left `conn` unusable (as opposed to an error in the query itself)."""

    @abc.abstractmethod
    async def _abort(self, conn: Conn) -> None:
        """Drop `conn` at once, without talking to the server; must not block or raise."""

    def _is_open(self, conn: Conn) -> bool:
        """False if the driver already knows `conn` is closed (it noticed while idle)."""
        return True

    async def _close_gracefully(self, conn: Conn) -> None:
        """Say goodbye to the server, then close. Default: abort."""
        await self._abort(conn)

    def _describe(self, exc: BaseException) -> str:
        """The driver's message for `exc`, before scrubbing."""
        if isinstance(exc, TimeoutError):
            return "timed out"
        if isinstance(exc, OSError) and exc.strerror:
            return exc.strerror
        return str(exc).strip() or type(exc).__name__

    def secrets(self) -> list[str]:
        return [s for s in self._secrets() if s]

    def _secrets(self) -> Iterable[str]:
        """Secret values (passwords) to mask in any text the check emits."""
        return ()

    @property
    def probe_label(self) -> str:
        """What the probe is called in reasons: `query`, or the Redis command name."""
        return "query"

    # -- public ----------------------------------------------------------------------------

    @property
    def connection(self) -> Conn | None:
        """The pooled connection, if one is open (for diagnostics and tests)."""
        return self._conn

    async def run(self) -> CheckResult:
        state = _Run()
        try:
            async with asyncio.timeout(self.config.timeout.total_seconds()):
                async with self._lock:
                    return await self._run_locked(state)
        except TimeoutError:
            limit = format_duration(self.config.timeout)
            if state.phase == "connect":
                reason = f"connect to {self.target} timed out after {limit}"
            elif state.phase == "probe":
                reason = f"{self.probe_label} timed out after {limit}"
            else:
                reason = f"timed out after {limit} waiting for a previous run to finish"
            if state.phase != "lock":
                self._previous_error = reason
            return CheckResult.down(reason, metrics=state.metrics, details=state.details)

    async def close(self) -> None:
        if self._orphans:
            # They finish (and drop what they opened) within the bound of `_connect_within`.
            _, pending = await asyncio.wait(
                self._orphans, timeout=self.config.timeout.total_seconds()
            )
            for task in pending:
                task.cancel()
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                await self._close_gracefully(conn)
        except asyncio.CancelledError:
            await self._abort(conn)
            raise
        except Exception:
            # The server may already be gone; a polite close is not owed then.
            await self._abort(conn)

    # -- internals ---------------------------------------------------------------------------

    async def _run_locked(self, state: _Run) -> CheckResult:
        for attempt in (1, 2):
            conn = self._conn
            reused = conn is not None
            if conn is None:
                opened = await self._open(state)
                if isinstance(opened, CheckResult):
                    return opened
                conn = opened
            elif not self._is_open(conn):
                # Closed between runs (server restart, session killed, idle timeout): the
                # driver already saw the socket close, so there is nothing to probe.
                await self._discard(conn, "connection lost: closed while idle")
                state.details["retried"] = True
                continue
            state.phase = "probe"
            probe_started = perf_counter()
            try:
                value = await self._guarded_probe(conn)
            except Exception as exc:
                message = self._scrub(self._describe(exc))
                if not self._is_connection_error(conn, exc):
                    # The server answered with an error: the connection is fine, keep it.
                    return self._down(f"{self.probe_label} failed: {message}", state)
                lost = f"connection lost: {message}"
                await self._discard(conn, lost)
                if reused and attempt == 1:
                    log.info("check %s: %s; retrying on a new connection", self.name, lost)
                    state.details["retried"] = True
                    continue
                return self._down(lost, state)
            state.metrics[f"{self.metric_prefix}.{self.probe_metric}"] = (
                perf_counter() - probe_started
            )
            return self._evaluate(value, state)
        raise AssertionError("unreachable: the second attempt always returns")

    async def _open(self, state: _Run) -> Conn | CheckResult:
        state.phase = "connect"
        started = perf_counter()
        timeout = self.config.timeout.total_seconds()
        task = asyncio.create_task(self._connect_within(timeout))
        try:
            # Shielded: a driver cancelled mid-handshake may leave its socket open (aiomysql
            # does not close it at every await). On cancellation the attempt carries on in the
            # background, bounded by `_connect_within`, and whatever it opens is dropped by
            # `_drop_when_connected`.
            conn = await asyncio.shield(task)
        except asyncio.CancelledError:
            self._spawn(self._drop_when_connected(task))
            raise
        except Exception as exc:
            reason = f"connect to {self.target} failed: {self._scrub(self._describe(exc))}"
            if self._previous_error not in (None, reason):  # what came before, if news
                state.details["previous_error"] = self._previous_error
            self._previous_error = reason
            return self._down(reason, state)
        state.metrics[f"{self.metric_prefix}.connect_seconds"] = perf_counter() - started
        self._conn = conn
        if self._previous_error is not None:
            state.reconnected_after = self._previous_error
            state.details["reconnected"] = True
            state.details["previous_error"] = self._previous_error
            log.info("check %s: reconnected after: %s", self.name, self._previous_error)
            self._previous_error = None
        return conn

    async def _connect_within(self, timeout: float) -> Conn:
        # Drivers bound the TCP connect but not always the handshake after it (aiomysql waits
        # for the server greeting forever); bound the whole attempt, even once orphaned.
        async with asyncio.timeout(timeout):
            return await self._connect(timeout)

    async def _guarded_probe(self, conn: Conn) -> Any:
        try:
            return await self._probe(conn)
        except asyncio.CancelledError:
            # Interrupted mid-reply, the connection's protocol state is unknown: never reuse it.
            await self._discard(conn, f"the previous {self.probe_label} was interrupted")
            raise

    async def _discard(self, conn: Conn, reason: str) -> None:
        if self._conn is conn:
            self._conn = None
        self._previous_error = reason
        try:
            await self._abort(conn)
        except Exception as exc:  # the hook must not raise, but a broken socket may surprise
            # Only the type: driver messages are not scrubbed here, tracebacks even less so.
            log.debug("check %s: %s while dropping a connection", self.name, type(exc).__name__)

    async def _drop_when_connected(self, task: asyncio.Task[Conn]) -> None:
        try:
            conn = await task
        except BaseException:
            return  # failed or cancelled: the driver cleaned up, nothing was opened
        await self._abort(conn)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._orphans.add(task)
        task.add_done_callback(self._orphans.discard)

    def _evaluate(self, value: Any, state: _Run) -> CheckResult:
        rendered = self._scrub(self.render(value))
        state.details["result"] = rendered
        expected = self.config.expect
        if expected is not None and not matches(expected, value):
            return self._down(
                f"expected {self.render(expected)}, got {rendered}",
                state,
                response_time=perf_counter() - state.started,
            )
        if state.reconnected_after is not None:
            reason = f"reconnected after: {state.reconnected_after}"
        else:
            reason = f"{self.probe_label} returned {rendered}"
        return CheckResult.up(
            reason,
            response_time=perf_counter() - state.started,
            metrics=state.metrics,
            details=state.details,
        )

    def _down(self, reason: str, state: _Run, **kwargs: Any) -> CheckResult:
        return CheckResult.down(reason, metrics=state.metrics, details=state.details, **kwargs)

    def _scrub(self, text: str) -> str:
        return self._redactor(text)  # masks the configured secrets and URL userinfo

    def render(self, value: Any) -> str:
        """A short human form of a reply value for reasons: `1`, `'PONG'`, `no rows`."""
        value = _decode(value)
        if value is NO_ROWS:
            text = "no rows"
        elif value is None:
            text = self.null_text
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str | list | tuple | dict | float):
            text = repr(value)
        else:
            text = str(value)
        return text if len(text) <= _RENDER_LIMIT else text[: _RENDER_LIMIT - 1] + "…"


def matches(expected: Expected, actual: Any) -> bool:
    """Does a reply value match `expect:`? Lenient across driver types, strict in meaning.

    Numbers compare by value whatever their type (`1`, `1.0`, `Decimal('1.00')`, `"1"` all
    match `expect: 1`); booleans accept the spellings databases use (`t`, `1`, MySQL's
    TINYINT 1); strings compare exactly with the reply's text.
    """
    actual = _decode(actual)
    if actual is NO_ROWS or actual is None:
        return False
    if isinstance(expected, bool):
        return _as_bool(actual) is expected
    if isinstance(expected, int | float):
        if isinstance(actual, bool):
            return False
        number = _as_decimal(actual)
        return number is not None and number == _as_decimal(expected)
    if isinstance(actual, bool):
        return _as_bool(expected) is actual
    if isinstance(actual, str):
        return actual == expected
    return str(actual) == expected


def _decode(value: Any) -> Any:
    # Redis replies and some MySQL types arrive as bytes; compare and show them as text.
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, list | tuple):
        return [_decode(item) for item in value]
    return value


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    return None


def _as_decimal(value: Any) -> Decimal | None:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, int | float | Decimal | str):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None
