"""Access for HTML pages: the API's roles, but an anonymous browser is sent to the login page
(to the first-run setup page while no user exists)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import RedirectResponse

from watchkeeper.http.deps import get_services
from watchkeeper.http.roles import Principal, RequireRole, Role, _bearer, _cookie, authorize

LOGIN_PATH = "/dashboard/login"
SETUP_PATH = "/setup"
"""Where an anonymous browser goes instead while no user exists (web/setup.py)."""


class LoginRequired(Exception):
    """Raised for an anonymous browser: answered with a redirect to the login page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


class PageRole(RequireRole):
    """`require(role)` for pages: same rule (the route walker sees it), friendlier to people."""

    async def __call__(
        self,
        request: Request,
        _bearer: Any = Depends(_bearer),
        _cookie: Any = Depends(_cookie),
    ) -> Principal:
        try:
            return await authorize(request, self.role)
        except HTTPException as exc:
            if exc.status_code == 401 and request.method == "GET" and wants_html(request):
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                raise LoginRequired(target) from None
            raise

    def __repr__(self) -> str:
        return f"page(Role.{self.role.name})"


_PAGE = {role: PageRole(role) for role in Role}


def page(role: Role) -> PageRole:
    """The dependency for dashboard routes that need `role`."""
    return _PAGE[role]


def safe_next(value: str | None) -> str:
    """Where to go after login: only a path on this site (no open redirect)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/dashboard"


def install_login_redirect(app: FastAPI) -> None:
    async def redirect(request: Request, exc: Exception) -> RedirectResponse:
        assert isinstance(exc, LoginRequired)
        if await get_services(request).setup.needed():
            # Nobody could log in: the first-run page says how to get its one-time link.
            return RedirectResponse(SETUP_PATH, 303)
        return RedirectResponse(f"{LOGIN_PATH}?next={quote(exc.next_url, safe='')}", 303)

    app.add_exception_handler(LoginRequired, redirect)
