"""Confirm and unsubscribe tokens: `<subscriber id>.<MAC>`, the MAC (HMAC-SHA256) over the
purpose, the subscriber's id, its random salt, page, kind and normalised address, under a key
derived from a secret generated once and kept in the database.

Tokens are never stored: a link is checked by recomputing its MAC from the row it names. So a
token cannot be forged without the key, does not work for another purpose, another address or
another page, and stops working when its subscriber is deleted (a new subscription of the same
address gets a new salt).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from typing import Literal

from watchkeeper.store import settings
from watchkeeper.store.database import Database
from watchkeeper.store.status_subscribers import Subscriber

SECRET_SETTING = "statuspage.subscriptions.secret"
_DERIVE = b"watchkeeper status page subscription tokens v1"
_MAC_BYTES = 18  # 144 bits, 24 characters of base64url
_TOKEN = re.compile(r"^([1-9][0-9]{0,18})\.([A-Za-z0-9_-]{24})$")

Purpose = Literal["confirm", "unsubscribe"]


async def load_key(db: Database, *, secret: Callable[[str], None] = lambda _s: None) -> bytes:
    """The signing key: derived from the install's stored secret (generated on first use;
    `secret` learns it before it is written, so logs can mask it)."""

    def make() -> str:
        value = secrets.token_urlsafe(32)
        secret(value)
        return value

    stored = await settings.get_or_create(db, SECRET_SETTING, make)
    secret(stored)
    return hmac.new(stored.encode(), _DERIVE, hashlib.sha256).digest()


def new_salt() -> str:
    return secrets.token_hex(16)


def address_key(kind: str, address: str) -> str:
    """What identifies an address on a page: its kind and the address, trimmed and in lower
    case (mail servers treat local parts alike in practice), hashed to a fixed length."""
    return hashlib.sha256(f"{kind}:{address.strip().lower()}".encode()).hexdigest()


class Signer:
    """Makes and checks tokens; holds the key once the runtime has loaded it."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key

    def use_key(self, key: bytes) -> None:
        self._key = key

    def _mac(self, purpose: Purpose, subscriber: Subscriber) -> str:
        if self._key is None:
            raise RuntimeError("the subscription signing key is not loaded yet")
        text = "\n".join(
            (
                purpose,
                str(subscriber.id),
                subscriber.salt,
                subscriber.page,
                subscriber.kind,
                subscriber.address_key,
            )
        )
        digest = hmac.new(self._key, text.encode(), hashlib.sha256).digest()[:_MAC_BYTES]
        return base64.urlsafe_b64encode(digest).decode()

    def token(self, purpose: Purpose, subscriber: Subscriber) -> str:
        return f"{subscriber.id}.{self._mac(purpose, subscriber)}"

    @staticmethod
    def subscriber_id(token: str) -> int | None:
        """The id a well-formed token names (None: not a token; nothing to look up)."""
        match = _TOKEN.match(token)
        return int(match.group(1)) if match else None

    def matches(self, purpose: Purpose, token: str, subscriber: Subscriber) -> bool:
        expected = self.token(purpose, subscriber)
        return hmac.compare_digest(expected.encode(), token.encode())
