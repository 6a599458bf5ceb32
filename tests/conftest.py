"""Shared fixtures: databases on both engines, loopback peers."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.servers import FlippingTarget, WebhookReceiver
from watchkeeper.store.database import Database

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


@contextlib.asynccontextmanager
async def fresh_pg_database() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    admin = await _pg_admin()
    name = f"wk_test_{uuid.uuid4().hex[:12]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
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
    """Each storage test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'watchkeeper.db'}"
        return
    async with fresh_pg_database() as url:
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
