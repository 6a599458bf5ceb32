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


# -- the cache of verified tokens: a revoked token stops working, at once or within seconds ----


@pytest.fixture
def verified(clock: FakeClock) -> tokens.VerifiedTokens:
    return tokens.VerifiedTokens(clock)


@pytest.fixture
def cached_service(
    sqlite_db: Database, clock: FakeClock, verified: tokens.VerifiedTokens
) -> TokenService:
    return TokenService(sqlite_db, clock, verified)


async def test_a_token_revoked_through_the_service_stops_working_at_once_though_cached(
    cached_service: TokenService, verified: tokens.VerifiedTokens
) -> None:
    token, secret = await cached_service.create(name="prometheus", role=Role.OPERATOR)
    db, now = cached_service.db, cached_service.now()
    assert await tokens.authenticate_token(db, secret, now, verified) == token
    assert verified.get(tokens.hash_token(secret)) == token  # the next request asks no one
    await cached_service.revoke(token.id)
    assert await tokens.authenticate_token(db, secret, cached_service.now(), verified) is None


async def test_a_token_revoked_behind_the_cache_stops_working_within_verified_for(
    cached_service: TokenService, verified: tokens.VerifiedTokens, clock: FakeClock
) -> None:
    token, secret = await cached_service.create(name="prometheus", role=Role.OPERATOR)
    db = cached_service.db
    assert await tokens.authenticate_token(db, secret, clock.now(), verified) == token
    # Revoked by another process (the CLI, another node): this one's cache does not know.
    await TokenService(db, clock).revoke(token.id)
    clock.advance(tokens.VERIFIED_FOR - 0.5)
    assert await tokens.authenticate_token(db, secret, clock.now(), verified) == token
    clock.advance(0.5)
    assert await tokens.authenticate_token(db, secret, clock.now(), verified) is None


async def test_a_cached_token_is_refused_the_moment_it_expires(
    cached_service: TokenService, verified: tokens.VerifiedTokens, clock: FakeClock
) -> None:
    token, secret = await cached_service.create(
        name="ci", role=Role.VIEWER, expires_in=timedelta(seconds=2)
    )
    db = cached_service.db
    assert await tokens.authenticate_token(db, secret, clock.now(), verified) == token
    clock.advance(2)
    assert verified.get(tokens.hash_token(secret)) == token  # still cached, yet:
    assert await tokens.authenticate_token(db, secret, clock.now(), verified) is None


async def test_a_lookup_that_began_before_a_revocation_does_not_cache_what_it_read(
    cached_service: TokenService, verified: tokens.VerifiedTokens
) -> None:
    token, secret = await cached_service.create(name="ci", role=Role.VIEWER)
    began = verified.generation
    await cached_service.revoke(token.id)
    verified.put(tokens.hash_token(secret), token, began)  # what the slow lookup read
    assert verified.get(tokens.hash_token(secret)) is None
