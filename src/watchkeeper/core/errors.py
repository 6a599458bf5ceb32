"""Domain errors: what a service refuses, in words an API client or a page can show.

Services raise these and never an HTTP exception; `http.problems` maps each class to one
status (NotFound 404, Invalid 422, Conflict 409, Forbidden 403, Unavailable 503,
Unauthenticated 401, Throttled 429), and the
dashboard and the CLI show `detail` as it is.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal with a reason (`detail`) and, where one field is to blame, its name."""

    status = 400
    """The HTTP status `http.problems` answers with."""

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.errors = errors
        """Where several things are wrong: one entry each (`loc`, `msg`, `type`), shown as
        they are instead of the one `field`."""


class NotFound(DomainError):
    """No such object (a check, an alert, a silence, a user…)."""

    status = 404


class Invalid(DomainError):
    """The request is well-formed but its content is not acceptable."""

    status = 422


class Conflict(DomainError):
    """The object's current state does not allow this (e.g. the name is taken)."""

    status = 409


class Forbidden(DomainError):
    """The caller may not do this to this object (beyond what its role allows)."""

    status = 403


class Unavailable(DomainError):
    """Cannot be done now (e.g. the service is starting or stopping); try again later."""

    status = 503


class Unauthenticated(DomainError):
    """No valid credentials: a wrong username or password, or a session that has ended."""

    status = 401


class Throttled(DomainError):
    """Too many failed attempts: refused without looking, until `retry_after` seconds pass."""

    status = 429

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
