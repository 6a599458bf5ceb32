"""First run in the browser: while no dashboard user exists, the one-time setup URL printed by
`watchkeeper run` creates the first admin account (see auth/setup.py for the token).

Once any user exists, setup is over: the page is not found. Attempts are counted by the login
throttle, per client address (the token is 256 random bits: guessing is hopeless anyway,
and a limit shared by all addresses would let anyone lock the operator out of the first
run). Refused attempts are audited here; the account made is audited by the audit
middleware, with its name (never the password or the token).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from watchkeeper.auth import passwords
from watchkeeper.auth import sessions as session_store
from watchkeeper.auth import setup as setup_token
from watchkeeper.auth import users as user_store
from watchkeeper.auth.principals import Role
from watchkeeper.auth.sessions import Session
from watchkeeper.auth.throttle import LoginThrottle
from watchkeeper.auth.users import User
from watchkeeper.core.clock import Clock
from watchkeeper.core.errors import Forbidden, Invalid, NotFound
from watchkeeper.services.audit import AuditService
from watchkeeper.services.sessions import too_many
from watchkeeper.services.users import UserService
from watchkeeper.store.database import Database

log = logging.getLogger(__name__)

SETUP_PATH = "/setup"
SETUP_DONE = "setup is done: a user exists (log in at /dashboard/login)"
HOW_TO_GET_ONE = (
    "see the output of `watchkeeper run` (a new link is printed at each start while no user "
    "exists), or run `watchkeeper user create --username NAME --role admin`"
)
WRONG_TOKEN = f"this setup link is not valid (only the latest start's works): {HOW_TO_GET_ONE}"
EXPIRED_TOKEN = f"this setup link has expired (it works for 1 hour): {HOW_TO_GET_ONE}"
USED_TOKEN = "this setup link has been used already"
PASSWORDS_DIFFER = "the two passwords differ"


def throttle_key(source_ip: str) -> str:
    """The throttle's "account" for setup attempts from one address (no username can look
    like this: they start with a letter or digit)."""
    return f"(setup) {source_ip}"


class SetupService:
    """The first admin account, made with the setup token of the latest start."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        enabled: bool,
        users: UserService,
        throttle: LoginThrottle,
        audit: AuditService,
        session_ttl: timedelta,
        token_ttl: timedelta = setup_token.SETUP_TTL,
    ) -> None:
        self.db = db
        self.clock = clock
        self.enabled = enabled
        """`auth.enabled`: without authentication there is nobody to set up."""
        self.users = users
        self.throttle = throttle
        self.audit = audit
        self.session_ttl = session_ttl
        self.token_ttl = token_ttl

    async def needed(self) -> bool:
        """True while authentication is on and no user exists: a browser cannot log in."""
        return self.enabled and await self.users.count() == 0

    async def start(self) -> str | None:
        """At each start: a new setup token when setup is needed (shown once by the caller,
        only its hash is kept), else None, and any earlier token is forgotten."""
        if await self.needed():
            return await setup_token.issue(self.db, self.clock.now(), self.token_ttl)
        await setup_token.discard(self.db)
        return None

    async def create_admin(
        self,
        token: str,
        username: str,
        password: str,
        confirm: str,
        *,
        source_ip: str,
    ) -> tuple[User, str, Session]:
        """Create the first admin with the setup token and log them in: the user and their
        new session (cookie value, session). NotFound once a user exists; Throttled; Forbidden
        for a wrong, expired or used token; Invalid for the name or the passwords (the token
        then stays valid)."""
        if not await self.needed():
            raise NotFound(SETUP_DONE)
        key = throttle_key(source_ip)
        wait = await self.throttle.attempt(key, source_ip)
        if wait is not None:
            await self._refused(source_ip, 429, {"outcome": "throttled", "retry_after": wait})
            raise too_many(wait, "setup attempts")
        now = self.clock.now()
        verdict = await setup_token.check(self.db, token, now)
        if verdict is not setup_token.Verdict.VALID:
            raise await self._bad_token(verdict, source_ip)
        await self.throttle.record_success(key)
        name = self._validate(username, password, confirm)
        verdict, taken = await setup_token.use(self.db, token, now)
        if verdict is not setup_token.Verdict.VALID or taken is None:
            raise await self._bad_token(verdict, source_ip)
        if await self.users.count():  # one was made meanwhile (`watchkeeper user create`)
            raise NotFound(SETUP_DONE)
        try:
            user = await self.users.create(name, password, Role.ADMIN)
        except Exception:
            # The account was not made: the link must still work, or only a restart helps.
            try:
                await setup_token.restore(self.db, taken)
            except Exception:
                log.exception("could not restore the setup token after a failed setup")
            raise
        session_id, session = await session_store.create_session(
            self.db, user, self.clock.now(), self.session_ttl, source_ip
        )
        log.info("first-run setup: admin user %r created", user.username)
        return user, session_id, session

    @staticmethod
    def _validate(username: str, password: str, confirm: str) -> str:
        """The normalized username; Invalid (with the field) before the token is used up."""
        try:
            name = user_store.check_username(username)
        except ValueError as exc:
            raise Invalid(str(exc), field="username") from None
        try:
            passwords.check_strength(password)
        except ValueError as exc:
            raise Invalid(str(exc), field="password") from None
        if password != confirm:
            raise Invalid(PASSWORDS_DIFFER, field="confirm")
        return name

    async def _bad_token(self, verdict: setup_token.Verdict, source_ip: str) -> Forbidden:
        message = {
            setup_token.Verdict.EXPIRED: EXPIRED_TOKEN,
            setup_token.Verdict.USED: USED_TOKEN,
        }.get(verdict, WRONG_TOKEN)
        await self._refused(source_ip, 403, {"outcome": verdict.value})
        return Forbidden(message)

    async def _refused(self, source_ip: str, status: int, detail: dict[str, Any]) -> None:
        """Audit a refused attempt (never with the token)."""
        try:
            await self.audit.record(
                actor="anonymous",
                actor_kind="anonymous",
                action=f"POST {SETUP_PATH}",
                target=SETUP_PATH,
                status=status,
                detail=detail,
                source_ip=source_ip,
            )
        except Exception:
            log.exception("could not write the audit entry for a refused setup attempt")
