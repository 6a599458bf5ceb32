"""Browser sessions: logging in (under the login throttle), logging out, and changing one's
own password.

A login attempt is counted as a failure before its password is verified (see
auth/throttle.py), and every refused attempt, throttled or wrong, is audited here (the audit
middleware records successes only). argon2 runs through `run`: the runtime's bounded password
workers, never the event loop.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from watchkeeper.auth import passwords
from watchkeeper.auth import sessions as session_store
from watchkeeper.auth import users as user_store
from watchkeeper.auth.principals import Principal
from watchkeeper.auth.sessions import Session
from watchkeeper.auth.throttle import LoginThrottle
from watchkeeper.auth.users import User
from watchkeeper.auth.workers import Runner, in_thread
from watchkeeper.core.clock import Clock
from watchkeeper.core.errors import Forbidden, Invalid, Throttled, Unauthenticated
from watchkeeper.services.audit import AuditService
from watchkeeper.store.database import Database

log = logging.getLogger(__name__)

WRONG_LOGIN = "wrong username or password"
NO_PASSWORD = (
    "only a logged-in user has a password to change: API tokens have none (an admin "
    "replaces a token by making a new one and revoking this one, and resets a user's password "
    "with PUT /api/v1/users/{username}/password)"
)
WRONG_PASSWORD = "the current password is wrong"
SESSION_ENDED = "the session has ended; log in again"


def too_many(wait: int, what: str) -> Throttled:
    """The refusal of a throttled attempt at `what` (`logins`, `attempts`)."""
    return Throttled(f"too many failed {what}; try again in {wait} s", retry_after=wait)


class SessionService:
    """Logins, logouts and password changes of one database's users."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        throttle: LoginThrottle,
        audit: AuditService,
        ttl: timedelta,
        public_url: str | None = None,
        run: Runner = in_thread,
    ) -> None:
        self.db = db
        self.clock = clock
        self.throttle = throttle
        self.audit = audit
        self.ttl = ttl
        """How long a session lasts (`auth.session_ttl`): its cookie's max-age too."""
        self.public_url = public_url
        """`server.public_url`: an https one makes the session cookies Secure."""
        self.run = run

    async def login(
        self, username: str, password: str, *, source_ip: str, where: str
    ) -> tuple[str, Session]:
        """Check a login under the throttle: a new session (its cookie value, kept nowhere
        else, and the session), or Throttled / Unauthenticated. `where` is the path the
        attempt came to, for the audit entry of a refusal."""
        name = user_store.normalize_username(username)
        anonymous = ("anonymous", "anonymous")
        wait = await self.throttle.attempt(name, source_ip)
        if wait is not None:
            # Refused without looking at the password: guessing on is pointless until then.
            detail = {"username": name, "outcome": "throttled", "retry_after": wait}
            await self._refused(where, anonymous, source_ip, 429, detail)
            raise too_many(wait, "logins")
        now = self.clock.now()
        user = await user_store.verify_login(self.db, name, password, now, run=self.run)
        if user is None:
            detail = {"username": name, "outcome": WRONG_LOGIN}
            await self._refused(where, anonymous, source_ip, 401, detail)
            raise Unauthenticated(WRONG_LOGIN)
        await self.throttle.record_success(name)
        return await session_store.create_session(self.db, user, now, self.ttl, source_ip)

    async def logout(self, session_id: str) -> None:
        """End the session behind a cookie value (an unknown one: nothing happens)."""
        await session_store.delete_session(self.db, session_id)

    async def change_password(
        self,
        principal: Principal,
        session_id: str | None,
        current: str,
        new: str,
        *,
        source_ip: str,
        where: str,
    ) -> tuple[User, int]:
        """Change the logged-in user's password: the current one is checked under the login
        throttle (so a borrowed session cannot be used to guess it), every other session of
        the user ends, this one (`session_id`) stays. The user and the number of sessions
        ended; else Forbidden (an API token, a wrong password), Invalid, Throttled, or
        Unauthenticated (the user was deleted meanwhile)."""
        if principal.kind != "user" or not session_id:
            raise Forbidden(NO_PASSWORD)
        try:
            passwords.check_strength(new)
        except ValueError as exc:
            raise Invalid(f"new_password: {exc}") from None
        username = principal.name
        actor = (username, "user")
        wait = await self.throttle.attempt(username, source_ip)
        if wait is not None:
            detail = {"outcome": "throttled", "retry_after": wait}
            await self._refused(where, actor, source_ip, 429, detail)
            raise too_many(wait, "attempts")
        if await user_store.check_password(self.db, username, current, run=self.run) is None:
            await self._refused(where, actor, source_ip, 403, {"outcome": WRONG_PASSWORD})
            raise Forbidden(WRONG_PASSWORD)
        await self.throttle.record_success(username)
        try:
            changed = await user_store.set_password(
                self.db,
                username,
                new,
                keep_session=session_store.session_hash(session_id),
                run=self.run,
            )
        except ValueError as exc:
            raise Invalid(f"new_password: {exc}") from None
        if changed is None:  # deleted between the check and the change
            raise Unauthenticated(SESSION_ENDED)
        return changed

    async def _refused(
        self,
        where: str,
        actor: tuple[str, str],
        source_ip: str,
        status: int,
        detail: dict[str, Any],
    ) -> None:
        """Audit a failed or throttled attempt."""
        try:
            await self.audit.record(
                actor=actor[0],
                actor_kind=actor[1],
                action=f"POST {where}",
                target=where,
                status=status,
                detail=detail,
                source_ip=source_ip,
            )
        except Exception:
            # The attempt is counted already; the caller still gets its refusal, not a 500.
            log.exception("could not write the audit entry for a refused %s", where)
