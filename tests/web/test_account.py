"""The dashboard's account page: changing your own password with the form, CSRF-protected."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.auth import bearer, token_for
from tests.web.test_dashboard import HTML, PASSWORD, csrf_of, log_in
from watchkeeper.app import Runtime
from watchkeeper.auth import users
from watchkeeper.config.loader import Config
from watchkeeper.http.factory import create_app
from watchkeeper.http.roles import Role

NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[tuple[Runtime, object]]:
    config = Config.model_validate({"storage": {"url": f"sqlite:///{tmp_path / 'wk.db'}"}})
    runtime = Runtime(config)
    await runtime.start()
    await users.create_user(runtime.db, "viewer", PASSWORD, Role.VIEWER, runtime.clock.now())
    try:
        yield runtime, create_app(config, runtime=runtime)
    finally:
        await runtime.stop()


def client(app: tuple[Runtime, object]) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app[1])  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://wk")


def form(csrf: str, current: str = PASSWORD, new: str = NEW_PASSWORD) -> dict[str, str]:
    return {
        "csrf_token": csrf,
        "current_password": current,
        "new_password": new,
        "confirm_password": new,
    }


async def test_the_user_name_in_the_header_leads_to_the_account_page(app) -> None:
    async with client(app) as browser:
        await log_in(browser, "viewer")
        overview = await browser.get("/dashboard")
        assert 'href="/dashboard/account"' in overview.text
        page = await browser.get("/dashboard/account")
    assert page.status_code == 200
    assert "Change password" in page.text and 'name="current_password"' in page.text
    assert 'hx-boost="false"' in page.text  # a plain post: password managers see it


async def test_a_viewer_changes_their_password_with_the_form_and_other_sessions_end(
    app,
) -> None:
    async with client(app) as browser, client(app) as elsewhere:
        await log_in(browser, "viewer")
        await log_in(elsewhere, "viewer")
        csrf = csrf_of(await browser.get("/dashboard/account"))
        done = await browser.post("/dashboard/account/password", data=form(csrf))
        assert done.status_code == 303
        assert done.headers["location"] == (
            "/dashboard/account?notice=password%20changed%3B%201%20other%20session%20ended"
        )
        page = await browser.get(done.headers["location"])
        assert page.status_code == 200 and "password changed; 1 other session ended" in page.text
        assert (await elsewhere.get("/dashboard", headers=HTML)).status_code == 303  # to login
    runtime = app[0]
    assert await users.check_password(runtime.db, "viewer", NEW_PASSWORD) is not None
    assert await users.check_password(runtime.db, "viewer", PASSWORD) is None


async def test_the_form_is_refused_without_csrf_and_says_what_is_wrong(app) -> None:
    async with client(app) as browser:
        await log_in(browser, "viewer")
        csrf = csrf_of(await browser.get("/dashboard/account"))
        forged = await browser.post("/dashboard/account/password", data=form(""))
        assert forged.status_code == 403
        assert "CSRF" in forged.json()["detail"]

        wrong = await browser.post("/dashboard/account/password", data=form(csrf, "a guess"))
        assert wrong.status_code == 403
        assert "The current password is wrong." in wrong.text
        mismatch = {**form(csrf), "confirm_password": "something else entirely"}
        differs = await browser.post("/dashboard/account/password", data=mismatch)
        assert differs.status_code == 422 and "do not match" in differs.text
        weak = await browser.post("/dashboard/account/password", data=form(csrf, new="short"))
        assert weak.status_code == 422 and "at least 8 characters" in weak.text
        for text in ("a guess", PASSWORD, NEW_PASSWORD):
            assert text not in wrong.text + differs.text + weak.text
    assert await users.check_password(app[0].db, "viewer", PASSWORD) is not None


async def test_an_api_token_sees_the_account_page_without_a_password_form(app) -> None:
    token = bearer(await token_for(app[0], Role.VIEWER, name="wallboard"))
    async with client(app) as c:
        page = await c.get("/dashboard/account", headers=token)
        assert page.status_code == 200
        assert "wallboard" in page.text and 'name="current_password"' not in page.text
        refused = await c.post("/dashboard/account/password", data=form(""), headers=token)
    assert refused.status_code == 403 and "API tokens have none" in refused.text
