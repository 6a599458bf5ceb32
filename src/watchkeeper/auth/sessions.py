"""Browser sessions: a random id in an HttpOnly cookie, its SHA-256 in the database, and a
CSRF token bound to the session that every cookie-authenticated write must echo back."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request, Response

from watchkeeper.auth.users import User
from watchkeeper.auth.users import _row as _user_row
from watchkeeper.store import sessions as session_store
from watchkeeper.store.database import Database

COOKIE = "wk_session"
LOGIN_CSRF_COOKIE = "wk_login_csrf"
"""Double-submit cookie for the login form itself (there is no session yet to bind to)."""
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


@dataclass(frozen=True, slots=True)
class Session:
    id_hash: str
    user: User
    csrf_token: str
    created_at: datetime
    expires_at: datetime


def session_hash(session_id: str) -> str:
    """What the sessions table keeps of a cookie value (its `id_hash`)."""
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


async def create_session(
    db: Database, user: User, now: datetime, ttl: timedelta, source_ip: str | None
) -> tuple[str, Session]:
    """A new session for `user`; returns the cookie value (kept nowhere else) and the session."""
    session_id = secrets.token_urlsafe(32)
    session = Session(
        id_hash=session_hash(session_id),
        user=user,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + ttl,
    )
    await session_store.insert(
        db,
        id_hash=session.id_hash,
        user_id=user.id,
        csrf_token=session.csrf_token,
        created_at=now,
        expires_at=session.expires_at,
        source_ip=source_ip,
    )
    return session_id, session


async def lookup_session(db: Database, session_id: str, now: datetime) -> Session | None:
    """The live session behind a cookie value, or None (unknown, expired, user deleted)."""
    if not session_id or len(session_id) > 200:
        return None
    digest = session_hash(session_id)
    row = await session_store.with_user(db, digest)
    if row is None or row.expires_at <= now:
        return None
    return Session(
        id_hash=row.id_hash,
        user=_user_row(row),
        csrf_token=row.csrf_token,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


async def delete_session(db: Database, session_id: str) -> None:
    await session_store.delete(db, session_hash(session_id))


def cookie_secure(request: Request, public_url: str | None) -> bool:
    """Secure cookies whenever the browser reaches us over https."""
    return request.url.scheme == "https" or bool(
        public_url and public_url.lower().startswith("https://")
    )


def set_session_cookie(response: Response, session_id: str, ttl: timedelta, secure: bool) -> None:
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=int(ttl.total_seconds()),
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response, secure: bool) -> None:
    response.delete_cookie(COOKIE, path="/", secure=secure, httponly=True, samesite="lax")


def issue_login_csrf(response: Response, secure: bool, path: str = "/auth") -> str:
    """A token for a login form, set as a cookie too: the form post must carry both."""
    token = secrets.token_urlsafe(32)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        path=path,
        secure=secure,
        httponly=True,
        samesite="lax",
    )
    return token


def is_form(request: Request) -> bool:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return content_type in FORM_TYPES


async def submitted_csrf(request: Request) -> str | None:
    """The CSRF token a request carries: the `X-CSRF-Token` header, or a form's `csrf_token`."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if is_form(request):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


def tokens_match(expected: str | None, given: str | None) -> bool:
    return bool(expected and given) and hmac.compare_digest(
        str(expected).encode(), str(given).encode()
    )
