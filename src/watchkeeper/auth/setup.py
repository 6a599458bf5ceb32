"""The first-run setup token: while no dashboard user exists, each start makes a random token
that lets one browser create the first admin account, once, within an hour.

Only its SHA-256 is kept (in the settings table, with its expiry), replacing the previous
start's: the token itself exists in the URL printed at start and nowhere else. Comparing is
constant-time, and using it deletes the stored hash only if it is still the one checked, so
of two concurrent uses (or processes sharing the database) exactly one gets through.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from watchkeeper.store import settings
from watchkeeper.store.database import Database

SETUP_SETTING = "auth.setup_token"
SETUP_TTL = timedelta(hours=1)
TOKEN_BYTES = 32
"""Random bytes of a token (43 URL-safe characters)."""
MAX_TOKEN_LENGTH = 200
"""Longer input is no token of ours; it is refused before hashing."""


class Verdict(enum.Enum):
    """What a presented setup token is."""

    VALID = "valid"
    WRONG = "wrong"
    """Not the token of the latest start (or none was made)."""
    EXPIRED = "expired"
    USED = "used"
    """It was valid when checked, and someone else used it meanwhile."""


@dataclass(frozen=True, slots=True)
class Stored:
    """The stored form of a token: its hash and when it stops working."""

    digest: str
    expires_at: datetime

    def encode(self) -> str:
        return json.dumps({"sha256": self.digest, "expires_at": self.expires_at.isoformat()})

    @classmethod
    def decode(cls, value: str) -> Stored | None:
        try:
            data = json.loads(value)
            return cls(str(data["sha256"]), datetime.fromisoformat(data["expires_at"]))
        except (ValueError, KeyError, TypeError):
            return None  # unreadable: no token works until the next start makes one


def token_hash(token: str) -> str:
    """What is kept of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def issue(db: Database, now: datetime, ttl: timedelta = SETUP_TTL) -> str:
    """A new token valid until `now + ttl`, replacing any earlier one; only its hash is
    stored, so the caller shows it once and forgets it."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    await settings.replace(db, SETUP_SETTING, Stored(token_hash(token), now + ttl).encode())
    return token


async def discard(db: Database) -> None:
    """Forget the stored token (a user exists: setup is over)."""
    await settings.delete(db, SETUP_SETTING)


async def check(db: Database, token: str, now: datetime) -> Verdict:
    """Whether `token` is the valid one, without using it up."""
    verdict, _value = await _check(db, token, now)
    return verdict


async def use(db: Database, token: str, now: datetime) -> tuple[Verdict, str | None]:
    """Check `token` and, when valid, use it up (VALID is answered to one caller only); with
    VALID comes what was stored, for `restore`."""
    verdict, value = await _check(db, token, now)
    if verdict is not Verdict.VALID or value is None:
        return verdict, None
    if not await settings.take(db, SETUP_SETTING, value):
        return Verdict.USED, None
    return Verdict.VALID, value


async def restore(db: Database, taken: str) -> None:
    """Make a token that `use` took valid again (the account it was for could not be made),
    with its original expiry; a newer token stored meanwhile is kept."""
    await settings.get_or_create(db, SETUP_SETTING, lambda: taken)


async def _check(db: Database, token: str, now: datetime) -> tuple[Verdict, str | None]:
    value = await settings.get(db, SETUP_SETTING)
    stored = Stored.decode(value) if value is not None else None
    given = token_hash(token) if 0 < len(token) <= MAX_TOKEN_LENGTH else "-" * 64
    # Constant-time: the answer time says nothing about how much of the hash matched.
    if stored is None or not hmac.compare_digest(stored.digest, given):
        return Verdict.WRONG, None
    if now >= stored.expires_at:
        return Verdict.EXPIRED, None
    return Verdict.VALID, value
