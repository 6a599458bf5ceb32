"""Fixtures shared by the check tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from watchkeeper.checks import CheckContext


@pytest.fixture
async def context() -> AsyncIterator[CheckContext]:
    """A CheckContext around one real client session, as the scheduler would share it."""
    async with aiohttp.ClientSession() as session:
        yield CheckContext(http=session)
