"""Engine creation for SQLite and PostgreSQL, and migrations on start."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import Connection as SyncConnection
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from watchkeeper.core.redact import redact_url
from watchkeeper.store.json_text import JSON_CODEC

if TYPE_CHECKING:
    # Alembic is imported by the methods that migrate or read revisions: most `watchkeeper`
    # commands (--help, validate, check) import this module but never migrate, and Alembic
    # costs ~0.1 s of CPU to import.
    from alembic.config import Config as AlembicConfig

log = logging.getLogger(__name__)

Connection = AsyncConnection
"""A connection in a transaction (`async with db.begin() as conn`), for the store's functions
that run inside their caller's transaction."""

_MIGRATIONS = Path(__file__).parent / "migrations"

T = TypeVar("T")

BUSY_TIMEOUT_MS = 10_000
"""How long a connection (but the loop's own) waits for another's lock before failing."""


def async_url(url: str) -> str:
    """Map the user-facing URL to the async driver SQLAlchemy needs."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return str(parsed.set(drivername="sqlite+aiosqlite"))
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported storage url {redact_url(url)!r}")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while the scheduler writes; NORMAL sync is durable against a
    # process crash (SIGKILL), which is what "nothing lost" means for a single node.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _loop_pragmas(dbapi_connection: Any, record: Any) -> None:
    """`_sqlite_pragmas`, but never waiting for a lock (the caller blocks the event loop)
    and never checkpointing (the service's other writers do: a checkpoint may take long)."""
    _sqlite_pragmas(dbapi_connection, record)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=0")
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def newest_revision() -> str:
    """The newest migration's revision, from the file names alone (`NNNN_what.py` holds
    revision NNNN): most starts find the schema there already and never import Alembic.
    tests/test_store.py checks it against Alembic's own head."""
    return max(p.name[:4] for p in (_MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


async def _schema_revision(conn: AsyncConnection) -> str | None:
    """The revision Alembic recorded in this database (None: none, or not just one)."""
    if conn.dialect.name == "postgresql":
        found = "SELECT to_regclass('alembic_version') IS NOT NULL"
    else:
        found = "SELECT count(*) > 0 FROM sqlite_master WHERE name = 'alembic_version'"
    if not (await conn.execute(text(found))).scalar_one():
        return None
    rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
    return str(rows[0][0]) if len(rows) == 1 else None


def _alembic_config(connection: SyncConnection) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig  # lazy: startup cost (see the top)

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


class Database:
    """Owns the engine. Every component gets the same Database from the app factory."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        sa_url = async_url(url)
        # Parameters are session and token hashes, CSRF tokens, password hashes: never put
        # them in SQL logs (debug level) or in the text of a database error.
        kwargs: dict[str, Any] = {"hide_parameters": True, **JSON_CODEC}
        if not sa_url.startswith("sqlite"):
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(sa_url, **kwargs)
        self.dialect = self.engine.dialect.name
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.migrated = False
        self._loop_engine: Engine | None = None
        self._worker_engine: Engine | None = None
        self._loop_writes_resumed: asyncio.Event | None = None
        self.loop_wrote = asyncio.Event()
        """Set by each commit on the loop's connection (`on_loop`, grouped pings), which
        never checkpoints: cleared by the task that does (see watchkeeper.store.checkpoints)."""

    def loop_engine(self) -> Engine | None:
        """SQLite in a file only: a synchronous engine for small writes made on the event
        loop's own thread (a group of heartbeat pings: about 0.1 ms), which never waits for
        a lock (it fails at once instead: the caller falls back to `begin`). Each statement
        through the async engine is a trip to aiosqlite's thread and back, and under load
        each return waits its turn behind every ready callback of the loop: a commit of
        five trips then takes tens of milliseconds. None for other databases."""
        if self.dialect != "sqlite":
            return None
        if self._loop_engine is None:
            url = self.engine.url
            database = url.database or ""
            if database in ("", ":memory:") or "mode=memory" in str(url):
                return None
            self._loop_engine = create_engine(
                url.set(drivername="sqlite+pysqlite"),
                hide_parameters=True,
                connect_args={"timeout": 0, "check_same_thread": False},
                **JSON_CODEC,
            )
            event.listen(self._loop_engine, "connect", _loop_pragmas)
        return self._loop_engine

    def worker_engine(self) -> Engine | None:
        """SQLite in a file only: a synchronous engine for a whole transaction run in a
        worker thread (`asyncio.to_thread`), in one trip. Through the async engine each
        statement is a trip to aiosqlite's thread and back to the loop, and the write lock
        stays held meanwhile: under load for tens of milliseconds, in which the loop's own
        writer (`loop_engine`) finds the database busy. Waits for locks and checkpoints as
        the async engine does. None for other databases."""
        if self.dialect != "sqlite" or self.loop_engine() is None:
            return None
        if self._worker_engine is None:
            self._worker_engine = create_engine(
                self.engine.url.set(drivername="sqlite+pysqlite"),
                hide_parameters=True,
                connect_args={"check_same_thread": False},
                **JSON_CODEC,
            )
            event.listen(self._worker_engine, "connect", _sqlite_pragmas)
        return self._worker_engine

    def begin(self) -> Any:
        """A transaction: `async with db.begin() as conn:`."""
        return self.engine.begin()

    async def on_loop(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """`await work(conn)` in one transaction, committed when it returns. On SQLite in a
        file it runs on the loop's own connection (see `loop_engine`): every statement
        executes at once, with no trip to aiosqlite's thread and back, which is most of
        the time of a small transaction when the machine is busy. Should the database be
        locked by another writer, that attempt is rolled back and `work` runs again as
        `begin` runs it (so `work` must change nothing outside the transaction before it
        returns). Meant for a few small statements: the loop waits for SQLite meanwhile."""
        engine = self.loop_engine()
        if engine is not None:
            await self.loop_writes_resumed()
            try:
                with engine.begin() as sync:
                    done = await work(cast(Connection, _OnLoop(sync)))
                self.loop_wrote.set()
                return done
            except OperationalError as exc:
                if not _locked(exc):
                    raise
        async with self.engine.begin() as conn:
            return await work(conn)

    def connect(self) -> Any:
        return self.engine.connect()

    async def loop_writes_resumed(self) -> None:
        """Return once writes on the loop's connection are not paused (at once if not)."""
        resumed = self._loop_writes_resumed
        if resumed is not None:
            await resumed.wait()

    @contextlib.asynccontextmanager
    async def loop_writes_paused(self) -> AsyncIterator[None]:
        """While inside, `on_loop` waits before it begins a transaction on the loop's
        connection (instead of finding the file locked and taking the slower path): for a
        short exclusive operation in another thread, such as truncating the write-ahead log.
        Does not nest."""
        resumed = self._loop_writes_resumed = asyncio.Event()
        try:
            yield
        finally:
            self._loop_writes_resumed = None
            resumed.set()

    async def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent)."""
        async with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                # Several nodes may start at once; one migrates, the others wait.
                await conn.execute(text("SELECT pg_advisory_xact_lock(7427001)"))
            # Already there (every start but the first after an upgrade): Alembic, its
            # templates and every SQL dialect it loads (~0.15 s of CPU) are not needed.
            if await _schema_revision(conn) != newest_revision():
                from alembic import command  # lazy: startup cost (see the top)

                await conn.run_sync(lambda c: command.upgrade(_alembic_config(c), "head"))
        self.migrated = True

    async def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext  # lazy: startup cost (see the top)

        async with self.engine.connect() as conn:
            return await conn.run_sync(
                lambda c: MigrationContext.configure(c).get_current_revision()
            )

    @staticmethod
    def head_revision() -> str | None:
        from alembic.script import ScriptDirectory  # lazy: startup cost (see the top)

        script = ScriptDirectory(str(_MIGRATIONS))
        return script.get_current_head()

    async def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def size_bytes(self) -> int | None:
        """How large the database is on disk (None: the engine cannot tell)."""
        async with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                pages = (await conn.execute(text("PRAGMA page_count"))).scalar_one()
                page_size = (await conn.execute(text("PRAGMA page_size"))).scalar_one()
                return int(pages) * int(page_size)
            if self.dialect == "postgresql":
                query = text("SELECT pg_database_size(current_database())")
                return int((await conn.execute(query)).scalar_one())
        return None

    async def close(self) -> None:
        if self._loop_engine is not None:
            self._loop_engine.dispose()
            self._loop_engine = None
        if self._worker_engine is not None:
            self._worker_engine.dispose()
            self._worker_engine = None
        await self.engine.dispose()


class _OnLoop:
    """The part of `AsyncConnection` the store's functions use, over a synchronous
    connection: each `await conn.execute(...)` runs at once on the calling thread."""

    def __init__(self, sync: SyncConnection) -> None:
        self._sync = sync
        self.dialect = sync.dialect

    async def execute(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        return self._sync.execute(statement, parameters, **kwargs)

    async def scalar(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        return self._sync.scalar(statement, parameters, **kwargs)

    async def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return fn(self._sync, *args, **kwargs)


def _locked(exc: OperationalError) -> bool:
    """Whether SQLite refused because another connection holds the database (the loop's
    own connection never waits for it: see `_loop_pragmas`)."""
    if not isinstance(exc.orig, sqlite3.OperationalError):
        return False
    message = str(exc.orig).lower()
    return "locked" in message or "busy" in message


async def upsert(
    conn: AsyncConnection, table: Any, values: list[dict[str, Any]], key: list[str]
) -> None:
    """INSERT … ON CONFLICT (key) DO UPDATE, on either engine."""
    if not values:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(table)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(table)  # type: ignore[assignment]
    update = {c: stmt.excluded[c] for c in values[0] if c not in key}
    await conn.execute(stmt.on_conflict_do_update(index_elements=key, set_=update), values)
