"""Password hashing with argon2id (RFC 9106 defaults of argon2-cffi).

Hashing is deliberately slow (about 115 ms of CPU): call these through the runtime's
`PasswordWorkers` (auth/workers.py), never on the event loop.
"""

from __future__ import annotations

import os
import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

FAST_HASHING_ENV = "WATCHKEEPER_INSECURE_FAST_PASSWORD_HASHING"
"""Set to 1 for test suites only: argon2id with 1 pass over 1 MiB instead of RFC 9106's
defaults (~0.3 ms instead of ~115 ms of CPU), so hundreds of logins do not dominate a
suite's time. The hashes stay argon2id PHC strings; a real deployment never sets it, and
`watchkeeper run` warns when it is set."""


def fast_hashing() -> bool:
    """Whether the insecure test parameters are in force (see FAST_HASHING_ENV)."""
    return os.environ.get(FAST_HASHING_ENV) == "1"


_hasher = (
    PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    if fast_hashing()
    else PasswordHasher()
)

MIN_LENGTH = 8
MAX_LENGTH = 1024


def check_strength(password: str) -> None:
    """Raise ValueError when the password cannot be accepted."""
    if len(password) < MIN_LENGTH:
        raise ValueError(f"password must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise ValueError(f"password must be at most {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    """The argon2id PHC string (`$argon2id$v=19$m=...`) for `password`."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(password_hash)


@cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def burn_time(password: str) -> None:
    """Spend as long as a real verification, for logins naming no existing user: the answer
    time does not reveal which usernames exist."""
    verify_password(_dummy_hash(), password)
