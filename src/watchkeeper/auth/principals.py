"""Who is calling and what they may do: roles, principals, and the refusal wording."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Role(StrEnum):
    """viewer < operator < admin: each role may do everything the ones before it may."""

    VIEWER = "viewer"
    """Reads everything."""
    OPERATOR = "operator"
    """Acts on alerts: acknowledge, resolve, comment, silence; pushes alerts and metrics."""
    ADMIN = "admin"
    """Everything, including users, API tokens and the audit log."""

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as established by a session cookie or a Bearer token."""

    name: str
    role: Role
    kind: Literal["user", "token", "anonymous"]
    source_ip: str | None
    id: str | None = None
    """The user's or the token's id."""
    csrf_token: str | None = field(default=None, repr=False)
    """For a browser session: the token its writes must carry."""

    def acting_as(self, claimed: str | None) -> str:
        """The name an action is recorded under (acknowledged_by, created_by). A logged-in
        user is always themselves; a token (say a chat bot) may name the person it acts
        for. The audit log records the principal itself either way."""
        if self.kind != "user" and claimed:
            return claimed
        return self.name


CHALLENGE = {"WWW-Authenticate": 'Bearer realm="watchkeeper"'}

LOGIN_NEEDED = "log in, or send an API token as `Authorization: Bearer`"


def role_refusal(principal: Principal, needed: Role) -> str | None:
    """Why `principal` may not do what needs `needed` (a 403's detail), or None if it may."""
    if principal.role.allows(needed):
        return None
    return f"this needs the {needed.value} role; {principal.name} is {principal.role.value}"
