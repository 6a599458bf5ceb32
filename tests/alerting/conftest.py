"""The stages' own tests run on SQLite only: the SQL they call is pinned on both engines by
the store's and the dispatcher's tests; here it is the stage's decisions that matter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import migrated_database
from watchkeeper.store.database import Database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated SQLite database (overrides the two-engine `db` of tests/conftest.py)."""
    async with migrated_database(f"sqlite:///{tmp_path / 'watchkeeper.db'}") as database:
        yield database
