"""TokenService on a real SQLite database: expiry from the service's clock, revocation,
and the refusals the API and the CLI show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.clock import FakeClock
from watchkeeper.auth import tokens
from watchkeeper.auth.principals import Role
from watchkeeper.core.errors import Invalid, NotFound
from watchkeeper.services.tokens import TokenService
from watchkeeper.store.database import Database

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def service(sqlite_db: Database, clock: FakeClock) -> TokenService:
    return TokenService(sqlite_db, clock)


async def test_create_returns_a_token_that_authenticates(service: TokenService) -> None:
    token, secret = await service.create(name="ci", role=Role.OPERATOR, created_by="cli")
    assert (token.name, token.role, token.created_by, token.created_at) == (
        "ci",
        Role.OPERATOR,
        "cli",
        T0,
    )
    assert token.expires_at is None and secret.startswith(token.prefix)
    found = await tokens.authenticate_token(service.db, secret, T0)
    assert found is not None and found.id == token.id
    assert [t.id for t in await service.list()] == [token.id]


async def test_expires_in_counts_from_the_services_clock(service: TokenService) -> None:
    token, _ = await service.create(name="ci", role=Role.VIEWER, expires_in=timedelta(days=30))
    assert token.expires_at == T0 + timedelta(days=30)
    at, _ = await service.create(name="ci2", role=Role.VIEWER, expires_at=T0 + timedelta(minutes=1))
    assert at.expires_at == T0 + timedelta(minutes=1)


async def test_an_expiry_not_in_the_future_is_invalid(service: TokenService) -> None:
    with pytest.raises(Invalid) as refused:
        await service.create(name="ci", role=Role.VIEWER, expires_at=T0)
    assert refused.value.detail == "expiry must be in the future"
    assert await service.list() == []


async def test_revoke_stamps_the_clock_and_the_token_stops_working(
    service: TokenService, clock: FakeClock
) -> None:
    token, secret = await service.create(name="ci", role=Role.ADMIN)
    clock.advance(timedelta(minutes=5))
    revoked = await service.revoke(token.id)
    assert revoked.revoked_at == T0 + timedelta(minutes=5)
    assert revoked.state(service.now()) == "revoked"
    assert await tokens.authenticate_token(service.db, secret, service.now()) is None


async def test_revoking_an_unknown_token_is_not_found(service: TokenService) -> None:
    with pytest.raises(NotFound) as missing:
        await service.revoke("no-such-id")
    assert missing.value.detail == "no such token"
