"""What the store raises, so that callers never need to know SQLAlchemy's exceptions.

`StorageUnavailable`: the database could not be reached or could not answer now (a lost
connection, a locked or full disk): the same write may succeed later. `StorageRefused`: the
database refused the data itself (a NUL in text, a value too long): it never will.
`Conflict`: a unique key is taken (a refusal, but one callers tell apart: a name is taken,
another node won a race).

Repositories translate with `translated()`; the older store functions still let the
driver's exceptions through, so the predicates below accept both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError, StatementError

DriverError = DBAPIError
"""The driver's error class, for the API's exception handler: the store functions that do
not translate yet let it through (never import SQLAlchemy outside `store/` for it)."""


class StorageError(Exception):
    """A database operation failed; `sqlstate` is the database's code when it gave one."""

    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class StorageUnavailable(StorageError):
    """The database cannot do it now (connection lost, locked, disk full): retry later."""


class StorageRefused(StorageError):
    """The database refused the data itself: the same write can never succeed."""


class Conflict(StorageRefused):
    """A unique key is taken (a concurrent writer committed it first, or the name exists)."""


_REFUSED_SQLSTATES = ("22", "23", "54")
"""SQLSTATE classes of data the database refuses: data exception (e.g. a NUL in text, a
value too long), integrity violation, program limit exceeded."""


def refused_data(exc: BaseException) -> bool:
    """Whether a failed write was refused for its data, so the same write can never succeed
    (as opposed to storage being unavailable for now: retried)."""
    if isinstance(exc, StorageError):
        return isinstance(exc, StorageRefused)
    if isinstance(exc, DataError | IntegrityError | UnicodeError | ValueError | TypeError):
        return True
    if isinstance(exc, StatementError) and exc.orig is not None and exc.orig is not exc:
        code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if isinstance(code, str):
            return code[:2] in _REFUSED_SQLSTATES
        return refused_data(exc.orig)
    return False


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error (PostgreSQL's drivers give one; SQLite's do not)."""
    if isinstance(exc, StorageError):
        return exc.sqlstate
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return code if isinstance(code, str) else None


def translate(exc: SQLAlchemyError) -> StorageError:
    """The store's error for a SQLAlchemy one (see the module docstring)."""
    message = f"{type(exc).__name__}: {exc}"
    code = sqlstate(exc)
    if isinstance(exc, IntegrityError):
        return Conflict(message, code)
    if refused_data(exc):
        return StorageRefused(message, code)
    return StorageUnavailable(message, code)


@asynccontextmanager
async def translated() -> AsyncIterator[None]:
    """Raise the store's errors instead of SQLAlchemy's from the block."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise translate(exc) from exc


def from_storage(exc: BaseException) -> bool:
    """Whether `exc` is a database failure (translated or not yet)."""
    return isinstance(exc, StorageError | SQLAlchemyError)


def is_conflict(exc: BaseException) -> bool:
    """Whether `exc` is a unique-key conflict (translated or not yet)."""
    return isinstance(exc, Conflict | IntegrityError)
