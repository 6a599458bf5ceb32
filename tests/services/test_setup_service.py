"""SetupService on a started runtime: the first-run token kept only as a hash, refusals as
domain errors, and a token that survives an account that could not be made."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from tests.support.clock import FakeClock
from watchkeeper.app import Runtime
from watchkeeper.auth import setup as setup_token
from watchkeeper.auth import users
from watchkeeper.auth.principals import Role
from watchkeeper.core.errors import Forbidden, Invalid, NotFound
from watchkeeper.store import settings
from watchkeeper.store.database import Database

PASSWORD = "correct horse battery"


async def test_only_the_hash_and_expiry_of_a_start_token_are_stored(
    runtime: Runtime, clock: FakeClock
) -> None:
    token = await runtime.services.setup.start()
    assert token is not None
    stored = await settings.get(runtime.db, setup_token.SETUP_SETTING)
    assert stored is not None and token not in stored
    assert setup_token.Stored.decode(stored) == setup_token.Stored(
        hashlib.sha256(token.encode()).hexdigest(), clock.now() + timedelta(hours=1)
    )
    assert await setup_token.check(runtime.db, token, clock.now()) is setup_token.Verdict.VALID

    await users.create_user(runtime.db, "ops", PASSWORD, Role.VIEWER, clock.now())
    assert await runtime.services.setup.start() is None  # a user exists: setup is over
    assert await settings.get(runtime.db, setup_token.SETUP_SETTING) is None


async def test_refusals_are_domain_errors_and_a_bad_form_does_not_use_the_token(
    runtime: Runtime,
) -> None:
    setup = runtime.services.setup
    token = await setup.start()
    assert token is not None
    with pytest.raises(Forbidden, match="not valid"):
        await setup.create_admin("nope", "root", PASSWORD, PASSWORD, source_ip="10.0.0.1")
    with pytest.raises(Invalid) as weak:
        await setup.create_admin(token, "root", "short", "short", source_ip="10.0.0.1")
    assert weak.value.field == "password"
    with pytest.raises(Invalid) as differ:
        await setup.create_admin(token, "root", PASSWORD, "other", source_ip="10.0.0.1")
    assert differ.value.field == "confirm"
    user, session_id, session = await setup.create_admin(
        token, "root", PASSWORD, PASSWORD, source_ip="10.0.0.1"
    )
    assert user.role is Role.ADMIN and session.user == user and session_id
    with pytest.raises(NotFound):
        await setup.create_admin(token, "root2", PASSWORD, PASSWORD, source_ip="10.0.0.1")


async def test_a_token_used_for_an_account_that_could_not_be_made_works_again(
    runtime: Runtime, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = runtime.services.setup
    token = await setup.start()
    assert token is not None

    async def storage_fails(*_args: object) -> None:
        raise RuntimeError("the database went away")

    with monkeypatch.context() as patch:
        patch.setattr(setup.users, "create", storage_fails)
        with pytest.raises(RuntimeError):
            await setup.create_admin(token, "root", PASSWORD, PASSWORD, source_ip="10.0.0.1")
    assert await setup_token.check(runtime.db, token, clock.now()) is setup_token.Verdict.VALID
    user, _session_id, _session = await setup.create_admin(
        token, "root", PASSWORD, PASSWORD, source_ip="10.0.0.1"
    )
    assert user.username == "root"


async def test_the_token_store_works_on_sqlite_and_postgresql(db: Database) -> None:
    clock = FakeClock()
    first = await setup_token.issue(db, clock.now())
    token = await setup_token.issue(db, clock.now())  # a new start replaces the old token
    assert await setup_token.check(db, first, clock.now()) is setup_token.Verdict.WRONG
    verdict, taken = await setup_token.use(db, token, clock.now())
    assert verdict is setup_token.Verdict.VALID and taken is not None
    assert (await setup_token.use(db, token, clock.now()))[0] is setup_token.Verdict.WRONG
    await setup_token.restore(db, taken)
    clock.advance(timedelta(hours=1))
    assert await setup_token.check(db, token, clock.now()) is setup_token.Verdict.EXPIRED
    await setup_token.discard(db)
    assert await settings.get(db, setup_token.SETUP_SETTING) is None
