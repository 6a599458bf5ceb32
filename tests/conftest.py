"""Shared fixtures: databases on both engines, loopback peers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

# Before anything imports watchkeeper.auth.passwords (which reads it once), and inherited by
# every `watchkeeper` subprocess: argon2id with test parameters, ~0.3 ms instead of ~115 ms
# per hash. tests/test_passwords.py checks the real parameters in a process without it.
os.environ["WATCHKEEPER_INSECURE_FAST_PASSWORD_HASHING"] = "1"

from tests.support.servers import FlippingTarget, WebhookReceiver
from watchkeeper.store.database import Database

_real_migrate = Database.migrate
_sqlite_template: list[Path] = []
"""This test process's migrated, empty SQLite database (made at its first migration)."""


async def _migrate_from_template(self: Database) -> None:
    """Database.migrate for the tests: a new SQLite file starts as a copy of one migrated
    template (about 0.1 s of CPU saved per test database); the real migration then runs on
    it, finding nothing to do. The full path from an empty file runs once per process, and
    on every database that is not a new SQLite file (existing files, PostgreSQL, and in every
    `watchkeeper` subprocess the tests start)."""
    path = self.engine.url.database if self.dialect == "sqlite" else None
    if path and path != ":memory:" and "mode=memory" not in str(self.engine.url):
        file = Path(path)
        if not file.exists() and file.parent.is_dir():
            if not _sqlite_template:
                folder = Path(tempfile.mkdtemp(prefix="wk-template-"))
                template = Database(f"sqlite:///{folder / 'template.db'}")
                await _real_migrate(template)
                await template.close()
                _sqlite_template.append(folder / "template.db")
            shutil.copyfile(_sqlite_template[0], file)
    await _real_migrate(self)


def pytest_configure(config: pytest.Config) -> None:
    Database.migrate = _migrate_from_template  # type: ignore[method-assign]


PG_ADMIN_DSN = os.environ.get("WATCHKEEPER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI") == "true"


async def _pg_admin():  # type: ignore[no-untyped-def]
    import asyncpg

    try:
        return await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {PG_ADMIN_DSN} is required under CI=true: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_DSN}: {exc}")


_pg_template: list[str] = []
"""This test process's migrated, empty PostgreSQL database (made at first use, dropped at
the end of the session)."""


def _pg_url(name: str) -> str:
    return f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"


async def _migrated_pg_template(admin) -> str:  # type: ignore[no-untyped-def]
    if not _pg_template:
        name = f"wk_template_{uuid.uuid4().hex[:12]}"
        await admin.execute(f'CREATE DATABASE "{name}"')
        _pg_template.append(name)
        template = Database(_pg_url(name))
        try:
            await _real_migrate(template)
        finally:
            await template.close()  # CREATE DATABASE ... TEMPLATE needs it unused
    return _pg_template[0]


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not _pg_template:
        return

    async def drop() -> None:
        admin = await _pg_admin()
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{_pg_template[0]}" WITH (FORCE)')
        finally:
            await admin.close()

    asyncio.run(drop())


@contextlib.asynccontextmanager
async def fresh_pg_database(migrated: bool = False) -> AsyncIterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards: empty, or (`migrated`)
    a copy of a migrated template, which costs about a tenth of migrating it."""
    admin = await _pg_admin()
    name = f"wk_test_{uuid.uuid4().hex[:12]}"
    template = f' TEMPLATE "{await _migrated_pg_template(admin)}"' if migrated else ""
    await admin.execute(f'CREATE DATABASE "{name}"{template}')
    try:
        yield _pg_url(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    async with fresh_pg_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'watchkeeper.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Each storage test runs on SQLite and on PostgreSQL. The PostgreSQL database is already
    migrated (as the SQLite file will be at its first migration, see `_migrate_from_template`)
    unless the test is marked `empty_database`."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'watchkeeper.db'}"
        return
    empty = request.node.get_closest_marker("empty_database") is not None
    async with fresh_pg_database(migrated=not empty) as url:
        yield url


@contextlib.asynccontextmanager
async def migrated_database(url: str) -> AsyncIterator[Database]:
    """A migrated Database on `url`, closed afterwards."""
    database = Database(url)
    await database.migrate()
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    """A migrated Database, once on each engine (see `db_url`)."""
    async with migrated_database(db_url) as database:
        yield database


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated SQLite Database at tmp_path/wk.db (the path tests may give a Runtime)."""
    async with migrated_database(f"sqlite:///{tmp_path / 'wk.db'}") as database:
        yield database


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """One client session for the channels and outbox under test."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def target() -> AsyncIterator[FlippingTarget]:
    server = await FlippingTarget().start()
    yield server
    await server.close()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    server = WebhookReceiver(secret="s3cret-hook-key")
    await server.start()
    yield server
    await server.close()
